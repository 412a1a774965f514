"""Long texts as overlapping windows (``data.long_text: chunk``), pooled back per document.

A text longer than ``model.max_length`` tokens is cut into windows of
``max_length`` tokens (special tokens included) that overlap by
``data.chunk_stride`` tokens (the fast tokenizer's ``return_overflowing_tokens``
with ``stride``). Training sees every window with its document's target;
evaluation and prediction average the windows of each document: the class
probabilities (returned as log-probabilities, so a softmax gives the mean
probability back) or the scores.

:class:`tfslm.Predictor` pools in Python; the SavedModel of a chunk run cuts
the same windows and pools them in the graph (:mod:`tfslm.serving.saved_model`).

Example:
    >>> windows, doc = chunk_encode(["a long essay ..."], tokenizer, max_length=512, stride=128)  # doctest: +SKIP
    >>> pooled = pool_windows(window_logits, doc, num_docs=1, task=task)                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from tfslm.inputs.input_data import InputData, InputStatistics, steps_per_epoch_of

log = logging.getLogger("tfslm")

__all__ = ["chunk_encode", "pool_windows", "chunked_tf_dataset", "chunked_inputs", "check_stride"]


def check_stride(tokenizer, max_length: int, stride: int) -> None:
    """The overlap must leave room for new tokens in each window."""
    from tfslm.errors import ConfigError

    room = max_length - tokenizer.num_special_tokens_to_add()
    if stride >= room:
        raise ConfigError(
            f"data.chunk_stride: {stride} tokens of overlap leave no new text in a window of model.max_length "
            f"{max_length} ({room} text tokens); use a stride below {room}, e.g. {room // 4}"
        )


def chunk_encode(texts: Sequence[str], tokenizer, *, max_length: int, stride: int) -> tuple[dict, np.ndarray]:
    """Tokenize ``texts`` into overlapping windows; return ``(encodings, doc_index)``.

    ``encodings`` holds one row per window (``input_ids``, ``attention_mask``,
    ``token_type_ids`` where the tokenizer makes them); ``doc_index[i]`` is the
    position in ``texts`` of window ``i``. Windows of a document are consecutive.
    """
    check_stride(tokenizer, max_length, stride)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
    doc_index = np.asarray(enc.pop("overflow_to_sample_mapping"), dtype=np.int64)
    return {k: list(v) for k, v in enc.items()}, doc_index


def pool_windows(logits: np.ndarray, doc_index: np.ndarray, num_docs: int, task=None) -> np.ndarray:
    """Average window outputs per document, as ``task.pool_windows`` does (None: single-label classification).

    Regression: the mean of the outputs (scaled scores). Classes: the mean of
    the window probabilities, returned as log-probabilities.
    """
    from tfslm.tasks.base import Task

    return Task.resolve(task).pool_windows(logits, doc_index, num_docs)


def chunked_tf_dataset(dataset, model, tokenizer, *, batch_size: int, max_length: int, stride: int, shuffle: bool = False):
    """A ``datasets.Dataset`` (``text``, ``label``) as a ``tf.data.Dataset`` of windows; returns ``(tf_dataset, doc_index)``.

    Each window carries its document's label; unshuffled datasets keep the
    window order of ``doc_index`` (for :func:`pool_windows`).
    """
    import datasets

    from tfslm.backends import get_backend
    from tfslm.training.distribute import shard_by_data

    encodings, doc_index = chunk_encode(dataset["text"], tokenizer, max_length=max_length, stride=stride)
    labels = dataset["label"]
    encodings["label"] = [labels[i] for i in doc_index]
    windows = datasets.Dataset.from_dict(encodings, features=_features(encodings, dataset.features["label"]))
    tf_dataset = get_backend().prepare_tf_dataset(model, windows, tokenizer, batch_size=batch_size, shuffle=shuffle)
    return shard_by_data(tf_dataset), doc_index


def chunked_inputs(data, model, tokenizer, *, batch_size: int = 16, max_length: int = 128, stride: int = 128,
                   splits: Sequence[str] = ("train", "validation")) -> InputData:
    """The named splits of ``data`` as datasets of overlapping windows (``data.long_text: chunk``); train is shuffled.

    ``windows`` holds each split's ``doc_index``, for pooling window outputs
    per document (:func:`pool_windows`); ``rows`` counts windows.

    Example:
        >>> inputs = chunked_inputs(data, model, tokenizer, batch_size=8, max_length=512, stride=128)  # doctest: +SKIP
        >>> len(inputs.windows["validation"]), data["validation"].num_rows                           # doctest: +SKIP
        (412, 100)
    """
    datasets, windows = {}, {}
    for split in splits:
        datasets[split], windows[split] = chunked_tf_dataset(
            data[split], model, tokenizer, batch_size=batch_size, max_length=max_length, stride=stride, shuffle=(split == "train"),
        )
    log.info("long texts in windows: %s", ", ".join(f"{s} {len(windows[s])} windows" for s in splits))
    rows = {s: len(w) for s, w in windows.items()}
    return InputData(
        datasets=datasets,
        steps_per_epoch=steps_per_epoch_of(datasets, rows, batch_size),
        batch_size=batch_size,
        rows=rows,
        shard_policy="data",
        statistics=InputStatistics("prepare_tf_dataset (windows)"),
        windows=windows,
    )


def _features(encodings: dict, label_feature):
    import datasets

    out = {k: datasets.Sequence(datasets.Value("int32")) for k in encodings if k != "label"}
    out["label"] = label_feature
    return datasets.Features(out)
