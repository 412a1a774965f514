"""The document model (``data.long_text: document``): a window classifier whose windows are pooled per document.

:class:`DocumentModel` wraps a sequence-classification model (the *window
model*): its call runs the window model on the flattened windows of a batch of
documents and averages the window logits of each document (``doc_index``), so
``fit`` computes the task's loss once per document and its gradients reach
every encoder weight through the mean. Mean pooling has no weights of its own:
``model/`` stays the window model's plain ``save_pretrained`` directory and
serving pools the same way (:func:`tfslm.inputs.documents.mean_logits_graph`).

Example:
    >>> model, tokenizer = tfslm.build_model(cfg.model, data.labels)                          # doctest: +SKIP
    >>> inputs = tfslm.build_inputs(data, model, tokenizer, long_text="document", max_length=256)  # doctest: +SKIP
    >>> doc_model = DocumentModel(model)                                                       # doctest: +SKIP
    >>> tfslm.compile_model(doc_model, cfg.training, steps_per_epoch=inputs.steps_per_epoch)    # doctest: +SKIP
    >>> doc_model.fit(inputs.train, validation_data=inputs.validation)                          # doctest: +SKIP
"""

from __future__ import annotations

import tensorflow as tf

from tfslm.config import DOCUMENT_POOLINGS

__all__ = ["DocumentModel", "window_model_of"]


def window_model_of(model):
    """The window model inside a :class:`DocumentModel`; any other model as it is.

    Example:
        >>> window_model_of(DocumentModel(model)) is model   # doctest: +SKIP
        True
    """
    return getattr(model, "window_model", model)


class DocumentModel(tf.keras.Model):
    """Windows of each document pooled into one output: ``features`` (with ``doc_index``) -> logits ``[documents, outputs]``.

    Args:
        window_model: a sequence-classification model (e.g. from :func:`tfslm.build_model`).
        pooling: ``mean``: the mean of each document's window logits, in float32 (also under mixed precision).

    Example:
        >>> doc_model = DocumentModel(model)                           # doctest: +SKIP
        >>> doc_model({"input_ids": ids, "attention_mask": mask, "doc_index": tf.constant([0, 0, 1])}).shape  # doctest: +SKIP
        TensorShape([2, 3])
    """

    def __init__(self, window_model, pooling: str = "mean", **kwargs):
        if pooling not in DOCUMENT_POOLINGS:
            raise ValueError(f"pooling: got {pooling!r}, expected one of: {', '.join(DOCUMENT_POOLINGS)}")
        kwargs.setdefault("dtype", "float32")  # the pooled logits and the loss stay float32
        super().__init__(**kwargs)
        self.window_model = window_model
        self.pooling = pooling
        if getattr(window_model, "built", False):
            self.built = True  # mean pooling adds no weights: built as soon as the window model is

    def call(self, inputs, training=False):
        from tfslm.backends import get_backend
        from tfslm.inputs.documents import mean_logits_graph

        features = {k: v for k, v in inputs.items() if k != "doc_index"}
        logits = get_backend().logits(self.window_model(features, training=training))
        return mean_logits_graph(logits, inputs["doc_index"])
