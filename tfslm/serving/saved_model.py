"""Export a trained classifier as a TensorFlow SavedModel that takes raw strings.

The SavedModel holds the model's weights, the label names and, for WordPiece
tokenizers (BERT, DistilBERT, ELECTRA, MiniLM, tfslm's from-scratch models), the
whole tokenizer as graph ops, so a server that never imports tfslm or
transformers can call it with text:

    serving_default(text: tf.string [None])
        -> logits, probabilities (float32 [None, num_labels]),
           label_id (int64 [None]), label (tf.string [None])
    serve_tokens(input_ids, attention_mask: int32 [None, None]) -> the same outputs
    tokenize(text: tf.string [None]) -> input_ids, attention_mask (int32 [None, None])

Runs trained with ``data.long_text: chunk`` (``chunk_stride``) pool in the graph:
``serving_default`` tokenizes each text without truncation, cuts it into the
overlapping windows of :mod:`tfslm.inputs.chunking`, runs the model on all windows of
the request as one batch and averages them per text (mean probability, mean
score for regression), so it returns what :class:`tfslm.Predictor` returns;
``tokenize_windows(text) -> input_ids, attention_mask, doc_index`` shows the
windows. ``serve_tokens`` scores each row it is given (one window).
Runs trained with ``data.long_text: document`` serve the same way with the
document rule they trained with: at most ``max_windows`` evenly spaced windows
a text (:func:`tfslm.inputs.documents.select_windows`), pooled as the mean of
their logits, then decoded by the task.

The in-graph tokenizer reproduces the Python (fast) tokenizer id for id: its
normalizer (clean-up of control characters, CJK padding, accent stripping,
lower-casing) and pre-tokenizer (whitespace and punctuation) are measured on
every Unicode code point when exporting and compiled into regular expressions
and a lookup table. The WordPiece step is chosen by ``tokenizer_ops``:

- ``core``: greedy longest-match-first over a ``tf.lookup`` table in bounded
  loops (:mod:`tfslm.serving.wordpiece_core`); the graph holds core TensorFlow
  ops only, so ``saved_model_cli``, TF Serving's stock image and any process
  that imports only ``tensorflow`` can call it;
- ``tf_text``: ``tensorflow_text``'s ``FastWordpieceTokenizer``; a consumer
  must ``import tensorflow_text`` before ``tf.saved_model.load`` (it registers
  the op) and a TF Serving binary must be built with it;
- ``auto`` (the default): ``core`` when it passes the export's parity check on
  tricky probe texts, else ``tf_text``.

Added tokens written literally in the text (``[SEP]``, ``[MASK]``) become their
ids as in transformers; texts are truncated to ``max_length`` tokens, special
tokens included, and padded to the longest text of the batch:

    import tensorflow as tf
    model = tf.saved_model.load("runs/demo/saved_model")  # a tf_text export: import tensorflow_text first
    out = model.signatures["serving_default"](text=tf.constant(["Um texto."]))
    out["label"], out["probabilities"]

Tokenizers without an in-graph equivalent (BPE, SentencePiece/Unigram, or a
WordPiece tokenizer whose normalizer cannot be expressed per character) get
``serve_tokens`` alone, also registered as ``serving_default``; the returned
``note`` says why. That SavedModel needs TensorFlow only.
"""


from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from tfslm.atomic import atomic_directory
from tfslm.serving.wordpiece_core import CORE_TOKENIZER
from tfslm.serving.wordpiece_graph import (
    CONSUMER_IMPORT,
    IN_GRAPH_TOKENIZER,
    UnsupportedTokenizerError,
    build_in_graph_tokenizer,
    verify_windows,
)

__all__ = ["export_saved_model", "export_run", "build_in_graph_tokenizer", "UnsupportedTokenizerError", "TOKENIZER_OPS_CHOICES"]

TOKENIZER_OPS_CHOICES = ("auto", "core", "tf_text")
_TOKENIZER_NAMES = {"core": CORE_TOKENIZER, "tf_text": IN_GRAPH_TOKENIZER}


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


# ------------------------------------------------------------- the SavedModel
def _request_windows(text_tokenizer: Any, text, chunk_stride: int, max_windows: int | None):
    """The windows of a request's texts; a document run keeps those it trained on (``select_windows``)."""
    tf = _tf()
    from tfslm.inputs.documents import select_windows_graph

    input_ids, attention_mask, doc_index = text_tokenizer.windows(text, chunk_stride)
    if max_windows is not None:
        keep = select_windows_graph(doc_index, max_windows)
        input_ids, attention_mask, doc_index = (tf.gather(t, keep) for t in (input_ids, attention_mask, doc_index))
    return input_ids, attention_mask, doc_index


def _pool_request(task: Any, document: bool, logits, doc_index, num_texts):
    """Window logits to one row per text by the run's rule: the mean logit (document runs), else the task's."""
    from tfslm.inputs.documents import mean_logits_graph

    if document:
        return mean_logits_graph(logits, doc_index, num_texts)
    return task.pool_windows_graph(logits, doc_index, num_texts)


def _make_serving_module(
    model: Any, label_names: Sequence[str], text_tokenizer: Any, task: Any, labels: Any = None, chunk_stride: int | None = None,
    document: bool = False, max_windows: int | None = None,
):
    tf = _tf()
    from tfslm.backends import get_backend

    backend = get_backend()
    backend.ensure_built(model)
    uses_token_types = "token_type_ids" in backend.input_names(model)

    class _Holder:  # keeps the Keras model out of the SavedModel's object graph
        def __init__(self, keras_model):
            self.model = keras_model

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__(name="tfslm_classifier")
            self._holder = _Holder(model)
            # The weights are tracked directly: saving the Keras model object itself would
            # also trace every layer's call for Keras, slowly and to no use when serving.
            self.model_variables = list(model.variables)
            self.text_tokenizer = text_tokenizer

        def _logits(self, input_ids, attention_mask):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if uses_token_types:
                inputs["token_type_ids"] = tf.zeros_like(input_ids)
            outputs = self._holder.model(inputs, training=False)
            logits = backend.logits(outputs)
            return tf.cast(logits, tf.float32)

        def _outputs(self, logits):
            return task.serving_outputs(logits, label_names, labels)

        def _predict(self, input_ids, attention_mask):
            return self._outputs(self._logits(input_ids, attention_mask))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
            ]
        )
        def serve_tokens(self, input_ids, attention_mask):
            return self._predict(input_ids, attention_mask)

    class TextServingModule(ServingModule):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(self, text):
            input_ids, attention_mask = self.text_tokenizer(text)
            return self._predict(input_ids, attention_mask)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize(self, text):
            input_ids, attention_mask = self.text_tokenizer(text)
            return {"input_ids": input_ids, "attention_mask": attention_mask}

    class WindowServingModule(TextServingModule):
        """``data.long_text: chunk`` runs: every text is scored in windows, pooled per text in the graph."""

        def _windows(self, text):
            return _request_windows(self.text_tokenizer, text, chunk_stride, max_windows)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(self, text):
            input_ids, attention_mask, doc_index = self._windows(text)
            # All windows of the request go through the model as one batch; a text's windows are
            # then averaged by the rule the run trained with: the mean logit (document runs,
            # as DocumentModel), else the task's pooling rule (task.pool_windows in NumPy).
            logits = self._logits(input_ids, attention_mask)
            return self._outputs(_pool_request(task, document, logits, doc_index, tf.shape(text)[0]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize_windows(self, text):
            input_ids, attention_mask, doc_index = self._windows(text)
            return {"input_ids": input_ids, "attention_mask": attention_mask, "doc_index": doc_index}

    if text_tokenizer is None:
        return ServingModule()
    return WindowServingModule() if chunk_stride is not None else TextServingModule()


def _check_export_arguments(model: Any, tokenizer: Any, label_names: Sequence[str], max_length: int, chunk_stride: int | None) -> None:
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if num_labels is not None and len(label_names) != num_labels:
        raise ValueError(
            f"label_names has {len(label_names)} names but the model has {num_labels} labels; pass one name per label"
        )
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        raise ValueError(
            f"max_length={max_length} exceeds the model's max_position_embeddings={positions}; "
            f"pass max_length <= {positions}"
        )
    if chunk_stride is not None:
        if not isinstance(chunk_stride, int) or isinstance(chunk_stride, bool) or chunk_stride < 1:
            raise ValueError(f"chunk_stride must be a positive integer or None, got {chunk_stride!r}")
        from tfslm.inputs.chunking import check_stride

        check_stride(tokenizer, max_length, chunk_stride)


def _build_checked(tokenizer: Any, max_length: int, chunk_stride: int | None, ops: str):
    """The in-graph tokenizer with ``ops``, checked against ``tokenizer`` (probes, and windows for chunk runs)."""
    text_tokenizer = build_in_graph_tokenizer(tokenizer, max_length, ops=ops)
    if chunk_stride is not None:
        verify_windows(text_tokenizer, tokenizer, max_length, chunk_stride)
    return text_tokenizer


def _text_tokenizer(tokenizer: Any, max_length: int, chunk_stride: int | None, fallback_reason: str | None,
                    tokenizer_ops: str = "auto", document: bool = False):
    """``(in-graph tokenizer or None, note)``: None with the reason when raw text cannot be served exactly.

    ``auto`` tries the core-ops WordPiece first and keeps it when it passes the
    parity check; otherwise tensorflow-text's, with a note saying why.
    """
    note = fallback_reason
    text_tokenizer = None
    if note is None:
        tried = ["core", "tf_text"] if tokenizer_ops == "auto" else [tokenizer_ops]
        reasons = []
        for ops in tried:
            try:
                text_tokenizer = _build_checked(tokenizer, max_length, chunk_stride, ops)
                break
            except UnsupportedTokenizerError as exc:
                reasons.append(f"{ops}: {exc}" if len(tried) > 1 else str(exc))
        if text_tokenizer is None:
            note = f"raw-text signature left out: {'; '.join(reasons)}; serve_tokens takes ids from the Python tokenizer"
        elif reasons:  # auto fell back to tensorflow-text
            note = f"tokenizer_ops auto chose tf_text ({reasons[0]}); consumers must import tensorflow_text"
    if text_tokenizer is None and chunk_stride is not None:
        note += (
            "; this run scores long texts in windows: send each window as a row (tfslm.inputs.chunking.chunk_encode) "
            + ("keeping those tfslm.inputs.documents.select_windows keeps, and average their logits per text" if document else
               "and average them per text") + ", or use tfslm.Predictor"
        )
    return text_tokenizer, note


def _check_tokenizer_ops(tokenizer_ops: Any) -> None:
    if tokenizer_ops not in TOKENIZER_OPS_CHOICES:
        raise ValueError(
            f"tokenizer_ops must be one of {', '.join(TOKENIZER_OPS_CHOICES)}, got {tokenizer_ops!r}; "
            "use 'auto' (core TensorFlow ops when they pass the parity check)"
        )


def export_saved_model(
    model: Any,
    tokenizer: Any,
    label_names: Sequence[str],
    max_length: int,
    output_dir: str | os.PathLike,
    *,
    fallback_reason: str | None = None,
    task: Any = None,
    labels: Any = None,
    chunk_stride: int | None = None,
    document: bool = False,
    max_windows: int | None = None,
    tokenizer_ops: str = "auto",
) -> dict[str, Any]:
    """Write a TF SavedModel with serving signatures to ``output_dir`` atomically.

    ``serving_default`` takes raw strings (``text``) and tokenizes them in the
    graph exactly as ``tokenizer`` does; ``serve_tokens`` takes ``input_ids`` and
    ``attention_mask``; ``tokenize`` returns the ids. Both prediction signatures
    return ``logits``, ``probabilities``, ``label_id`` and ``label``. When the
    tokenizer has no in-graph equivalent, or ``fallback_reason`` is given, only
    ``serve_tokens`` is exported (also as ``serving_default``) and ``note`` says
    why. Loading a ``tf_text`` export needs ``import tensorflow_text`` first.

    Args:
        model: a trained transformers TF sequence-classification model.
        tokenizer: its transformers fast tokenizer.
        label_names: one name per output class, in label-id order.
        max_length: the most tokens per text, special tokens included.
        output_dir: where the SavedModel goes; replaced in one step if it exists.
        fallback_reason: export the token signature only, giving this reason.
        task: the run's :class:`~tfslm.tasks.base.Task`. Regression runs return
            ``logits``, ``scores`` (``[None, targets]``, original scale, rounded to
            the score grid) and ``score`` (the single target or the derived
            total) instead of the class outputs; ordinal runs add ``score`` to
            them. None or single-label classification: the outputs above, unchanged.
        labels: the run's :class:`~tfslm.data.labels.LabelSpace` (label values for ordinal scores).
        chunk_stride: set for ``data.long_text: chunk`` runs: ``serving_default``
            then cuts each text into overlapping windows of ``max_length`` tokens
            (``chunk_stride`` tokens of overlap, as :mod:`tfslm.inputs.chunking`), runs the
            model on all windows of the request as one batch and averages them per
            text (mean probability; mean score for regression), with the same
            outputs; ``tokenize_windows`` returns the windows and their
            ``doc_index``. ``serve_tokens`` still scores each row it is given.
        document: with ``chunk_stride``, a ``data.long_text: document`` run: windows
            are pooled as the mean of their logits (as :class:`tfslm.DocumentModel`), then decoded.
        max_windows: with ``chunk_stride``: at most this many evenly spaced windows a
            text (:func:`tfslm.inputs.documents.select_windows`; None: all).
        tokenizer_ops: how the raw-text signatures' WordPiece step is built:
            ``"core"`` (core TensorFlow ops only: loads in ``saved_model_cli`` and
            TF Serving's stock image), ``"tf_text"`` (tensorflow-text's op: the
            consumer must ``import tensorflow_text``), or ``"auto"`` (``core``
            when it passes the export's parity check, else ``tf_text``).

    Returns:
        ``{"path", "signatures", "in_graph_tokenizer", "consumer_imports",
        "labels", "max_length", "long_text", "pooling", "note"}`` (plus
        ``chunk_stride`` for chunk and document runs, ``max_windows`` and
        ``document_pooling`` for document runs); ``in_graph_tokenizer`` is None and
        ``note`` a one-line reason when the text signature was left out;
        ``pooling`` says where windows are averaged ("in_graph"; "client" when
        a chunk run has no text signature; None for truncation); ``tokenizer_ops``
        is the choice made (``"core"``, ``"tf_text"``, None without a text signature).

    Example:
        >>> info = export_saved_model(model, tokenizer, ["neg", "pos"], 256, "runs/demo/saved_model")  # doctest: +SKIP
        >>> info["signatures"]  # doctest: +SKIP
        ['serving_default', 'serve_tokens', 'tokenize']
    """
    from tfslm.tasks.base import Task

    task = Task.resolve(task)
    label_names = task.output_names(label_names)  # one per output: the target names of a scorer
    _check_export_arguments(model, tokenizer, label_names, max_length, chunk_stride)
    if (document or max_windows is not None) and chunk_stride is None:
        raise ValueError("document and max_windows need chunk_stride (the windows of a document run); pass chunk_stride")
    _check_tokenizer_ops(tokenizer_ops)
    text_tokenizer, note = _text_tokenizer(tokenizer, max_length, chunk_stride, fallback_reason, tokenizer_ops, document)
    module = _make_serving_module(model, label_names, text_tokenizer, task, labels, chunk_stride, document, max_windows)
    ops = text_tokenizer.ops if text_tokenizer is not None else None
    if text_tokenizer is not None:
        signatures = {
            "serving_default": module.serve_text.get_concrete_function(),
            "serve_tokens": module.serve_tokens.get_concrete_function(),
            "tokenize": module.tokenize.get_concrete_function(),
        }
        if chunk_stride is not None:
            signatures["tokenize_windows"] = module.tokenize_windows.get_concrete_function()
    else:
        tokens = module.serve_tokens.get_concrete_function()
        signatures = {"serving_default": tokens, "serve_tokens": tokens}
    info = {
        "path": str(Path(output_dir)),
        "signatures": list(signatures),
        "in_graph_tokenizer": _TOKENIZER_NAMES[ops] if ops else None,
        "consumer_imports": [CONSUMER_IMPORT] if ops == "tf_text" else [],
        "tokenizer_ops": ops,
        "labels": label_names,
        "max_length": max_length,
        "long_text": "document" if document else "chunk" if chunk_stride is not None else "truncate",
        "pooling": None if chunk_stride is None else ("in_graph" if text_tokenizer is not None else "client"),
        "note": note,
    }
    if chunk_stride is not None:
        info["chunk_stride"] = chunk_stride
    if document:
        info.update(max_windows=max_windows, document_pooling="mean")
    info["task"] = task.to_dict()
    tf = _tf()
    with atomic_directory(output_dir) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        extra = Path(tmp) / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / "tfslm_export.json").write_text(
            json.dumps({k: v for k, v in info.items() if k != "path"}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    return info


def export_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, *, overwrite: bool = False,
               tokenizer_ops: str | None = None) -> dict[str, Any]:
    """Export a finished run's SavedModel (``tfslm export``); return :func:`export_saved_model`'s info.

    ``tokenizer_ops`` (None: the run's ``export.tokenizer_ops``) is passed to
    :func:`export_saved_model`.

    The destination is checked before the model is loaded: the run's own
    ``saved_model/`` (the default) or another SavedModel tfslm wrote is
    replaced atomically; a non-empty directory tfslm did not write needs
    ``overwrite``; the run's other files are never a destination.

    Example:
        >>> export_run("runs/quickstart", "/srv/models/reviews/1")["signatures"]   # doctest: +SKIP
        ['serving_default', 'serve_tokens', 'tokenize']
    """
    from tfslm.destinations import check_output_dir
    from tfslm.run_dir import SAVED_MODEL_DIR, RunDir
    from tfslm.serving.predictor import Predictor

    run = RunDir(run_dir).require(command="`tfslm export`")
    output = Path(output) if output is not None else run.saved_model
    check_output_dir(output, overwrite=overwrite, run_dir=run.root, allowed_in_run=(SAVED_MODEL_DIR,))
    if tokenizer_ops is None:
        from tfslm.serving.predictor import load_run_config

        tokenizer_ops = getattr(getattr(load_run_config(run.root), "export", None), "tokenizer_ops", "auto")
    _check_tokenizer_ops(tokenizer_ops)
    predictor = Predictor.from_run(run.root)
    return export_saved_model(
        predictor.model, predictor.tokenizer, list(predictor.labels.names), predictor.max_length, output,
        task=predictor.task, labels=predictor.labels, chunk_stride=predictor.chunk_stride, tokenizer_ops=tokenizer_ops,
        document=predictor.document, max_windows=predictor.max_windows,
    )
