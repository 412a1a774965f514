"""A float32 twin of a mixed-precision model, kept in step with it: the model tfslm saves, serves and scores.

tfslm saves and serves a float32 model whatever it trained in. Scored on the
bf16 training model, ``metrics.json`` would describe a different model: an
output near a rounding boundary (a score grid step, a class tie) decodes one
way in bf16 and the other in float32, so ``metrics.json`` would disagree with
``tfslm predict`` on the run it describes. ``tfslm train`` scores the twin
after training; the epochs are scored on the training model (a float32 pass
each epoch would double the validation's share of a bf16 epoch). To score
every epoch in float32 in your own ``fit``, pass a twin to
:class:`~tfslm.training.callbacks.ValidationMetrics` as ``scoring_model``.
The twin is built once (outside any ``tf.distribute`` scope when made there:
plain variables) and takes the training model's weights each time it is asked for.

Example:
    >>> twin = Float32Twin(model)                  # doctest: +SKIP
    >>> callbacks = tfslm.default_callbacks("runs/mine", val_ds, labels, cfg.training, scoring_model=twin)  # doctest: +SKIP
    >>> twin(model).compute_dtype                  # the twin, with model's current weights  # doctest: +SKIP
    'float32'
"""

from __future__ import annotations

__all__ = ["Float32Twin", "computes_in_float32"]


def computes_in_float32(model) -> bool:
    """Whether ``model`` (a window model, or the :class:`~tfslm.training.documents.DocumentModel` around one) computes in float32."""
    from tfslm.training.documents import window_model_of

    inner = window_model_of(model)
    return str(getattr(inner, "compute_dtype", "float32")) == "float32"


class Float32Twin:
    """``twin(model)``: a float32 model with ``model``'s current weights (``model`` itself when it is float32 already).

    Args:
        model: the training model; its twin is rebuilt by the backend (``float32_copy``), and a
            :class:`~tfslm.training.documents.DocumentModel` gets a DocumentModel around the twin of its window model.
    """

    def __init__(self, model):
        self.source = model
        self.model = None if computes_in_float32(model) else _build_twin(model)

    def __call__(self, model=None):
        model = self.source if model is None else model
        if self.model is None or model is not self.source:
            return model
        # Variables in the same order (the twin is the same class from the same config); assign in
        # place: the twin's traced forward functions stay valid, and nothing is rebuilt.
        for target, variable in zip(self.model.weights, model.weights):
            target.assign(variable)
        return self.model


def _build_twin(model):
    from tfslm.training.documents import DocumentModel, window_model_of
    from tfslm.training.performance import float32_copy

    twin = float32_copy(window_model_of(model))
    if isinstance(model, DocumentModel):
        twin = DocumentModel(twin, pooling=model.pooling)
    return twin
