"""Whole documents (``data.long_text: document``): batches of documents, each a set of windows pooled in the model.

``chunk`` trains on every window with a copy of its document's label; here a
batch holds ``batch_size`` whole documents, cut into the windows of
:mod:`tfslm.inputs.chunking` (``model.max_length`` tokens, ``data.chunk_stride``
of overlap), and the model (:class:`tfslm.DocumentModel`) pools the windows of
each document into one output, so the loss is one per document.

A batch is ``(features, labels)``: ``input_ids`` and ``attention_mask``
``[W, L]`` (the W windows of the batch's documents, flattened, a document's
windows consecutive), ``doc_index`` ``[W]`` (0..B-1: the document of each
window within the batch) and ``labels`` ``[B]`` (or ``[B, targets]``).

A document of more than ``max_windows`` windows keeps ``max_windows`` evenly
spaced ones, the first and the last included (:func:`select_windows`): the
opening and the conclusion of an essay both count, and the cost of a document
is bounded (at most ``batch_size * max_windows`` windows a batch). Evaluation,
:class:`tfslm.Predictor` and the SavedModel select the same windows and pool
them by the same rule, the mean of the logits (:func:`mean_logits`).

The pipeline is pure TF after the one tokenization: documents are shuffled
with the seed every epoch, sorted by their longest window within windows of 50
batches (as the bucketed pipeline sorts rows), batched, and their windows
gathered and padded to a multiple of 8.

Example:
    >>> inputs = document_inputs(data, model, tokenizer, batch_size=8, max_length=512, stride=128)  # doctest: +SKIP
    >>> features, labels = next(iter(inputs.train))                                                 # doctest: +SKIP
    >>> features["doc_index"].shape[0] == features["input_ids"].shape[0], labels.shape               # doctest: +SKIP
    (True, TensorShape([8]))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tfslm.inputs.batching import (
    WINDOW_BATCHES,
    batch_count,
    features_from,
    target_length,
)
from tfslm.inputs.chunking import chunk_encode
from tfslm.inputs.input_data import InputData, InputStatistics, steps_per_epoch_of

log = logging.getLogger("tfslm")

__all__ = [
    "DEFAULT_MAX_WINDOWS",
    "DocumentWindows",
    "document_dataset",
    "document_inputs",
    "document_windows",
    "mean_logits",
    "mean_logits_graph",
    "select_windows",
    "select_windows_graph",
]

# 8 windows of 512 tokens (stride 128) cover ~3,100 tokens: every Essay-BR essay but a few
# outliers, and a batch of 8 documents is at most 64 windows (the memory of a 64-row chunk batch).
DEFAULT_MAX_WINDOWS = 8


# ---------------------------------------------------------------- which windows, and their pooling
def select_windows(doc_index: np.ndarray, max_windows: int | None) -> np.ndarray:
    """Positions of the windows kept: all of a document's up to ``max_windows``, else that many evenly spaced.

    Window ``floor(j * (n - 1) / (max_windows - 1))`` of a document of ``n``
    windows, ``j = 0 .. max_windows - 1`` (the first and the last included);
    ``doc_index`` must list a document's windows consecutively.

    Example:
        >>> select_windows(np.array([0, 1, 1, 1, 1, 1]), 3).tolist()
        [0, 1, 3, 5]
    """
    doc_index = np.asarray(doc_index, dtype=np.int64)
    if max_windows is None or not len(doc_index):
        return np.arange(len(doc_index))
    num_docs = int(doc_index.max()) + 1
    counts = np.bincount(doc_index, minlength=num_docs)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kept = np.minimum(counts, max_windows)
    doc = np.repeat(np.arange(num_docs), kept)
    j = np.arange(len(doc)) - np.repeat(np.cumsum(kept) - kept, kept)  # number within its document
    n = counts[doc]
    k = np.where(n > max_windows, j * (n - 1) // max(max_windows - 1, 1), j)
    return starts[doc] + k


def select_windows_graph(doc_index, max_windows: int | None):
    """:func:`select_windows` as graph ops (``doc_index`` int32, consecutive per document); returns int32 positions."""
    import tensorflow as tf

    if max_windows is None:
        return tf.range(tf.size(doc_index), dtype=tf.int32)
    num_docs = _num_docs_graph(doc_index)
    counts = tf.math.bincount(doc_index, minlength=num_docs, dtype=tf.int32)
    starts = tf.cumsum(counts, exclusive=True)
    kept = tf.minimum(counts, max_windows)
    doc = tf.repeat(tf.range(num_docs), kept)
    j = tf.ragged.range(kept).flat_values  # number within its document
    n = tf.gather(counts, doc)
    k = tf.where(n > max_windows, j * (n - 1) // max(max_windows - 1, 1), j)
    return tf.gather(starts, doc) + k


def _num_docs_graph(doc_index):
    """The largest ``doc_index`` + 1; 0 for no windows (a request with no texts)."""
    import tensorflow as tf

    return tf.reduce_max(tf.concat([tf.reshape(doc_index, [-1]), tf.constant([-1], doc_index.dtype)], 0)) + 1


def _mean_logits(xp, logits, doc_index, num_docs):
    return xp.segment_mean(logits, doc_index, num_docs)


def mean_logits(logits: np.ndarray, doc_index: np.ndarray, num_docs: int) -> np.ndarray:
    """The document rule: the mean of each document's window logits (NumPy; the model pools the same in TF).

    The mean of the logits is the head applied to the mean of the windows'
    pooled features (the head is linear), so it is a document representation,
    for classes (probabilities: a softmax of it) and scores alike.

    Example:
        >>> mean_logits(np.array([[1.0], [3.0], [5.0]]), np.array([0, 0, 1]), 2).tolist()
        [[2.0], [5.0]]
    """
    from tfslm.tasks.ops import NUMPY

    return np.asarray(_mean_logits(NUMPY, NUMPY.asarray(logits), np.asarray(doc_index, np.int64), num_docs), np.float32)


def mean_logits_graph(logits, doc_index, num_docs=None):
    """:func:`mean_logits` as graph ops, float32 (``num_docs`` default: the largest ``doc_index`` + 1)."""
    import tensorflow as tf

    from tfslm.tasks.ops import graph_ops

    if num_docs is None:
        num_docs = _num_docs_graph(doc_index)
    return _mean_logits(graph_ops(), tf.cast(logits, tf.float32), doc_index, num_docs)


# ---------------------------------------------------------------- tokens
@dataclass
class DocumentWindows:
    """One split's windows, flat: token ids, window offsets, each document's first window and count, labels."""

    values: np.ndarray          # int32 token ids of every kept window, concatenated
    window_starts: np.ndarray   # int64 offset of each window in ``values``
    window_lengths: np.ndarray  # int32 tokens of each window
    doc_starts: np.ndarray      # int64 first window of each document
    doc_counts: np.ndarray      # int64 windows kept of each document
    labels: np.ndarray
    windows_before: int         # windows before ``max_windows`` applied

    @property
    def num_docs(self) -> int:
        return len(self.doc_counts)

    def doc_lengths(self) -> np.ndarray:
        """Each document's longest window (its batch is padded to at least that)."""
        if not self.num_docs:
            return np.zeros((0,), np.int32)
        return np.maximum.reduceat(self.window_lengths, self.doc_starts.astype(np.int64)).astype(np.int32)


def document_windows(dataset, tokenizer, *, max_length: int, stride: int, max_windows: int | None) -> DocumentWindows:
    """Cut a ``datasets.Dataset`` (``text``, ``label``) into the kept windows of each document."""
    from tfslm.inputs.token_cache import label_numpy

    encodings, doc_index = chunk_encode(dataset["text"], tokenizer, max_length=max_length, stride=stride)
    keep = select_windows(doc_index, max_windows)
    ids = [encodings["input_ids"][i] for i in keep]
    lengths = np.asarray([len(w) for w in ids], dtype=np.int32)
    counts = np.bincount(doc_index[keep], minlength=dataset.num_rows).astype(np.int64)
    return DocumentWindows(
        values=np.asarray([t for w in ids for t in w], dtype=np.int32),
        window_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        window_lengths=lengths,
        doc_starts=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
        doc_counts=counts,
        labels=label_numpy(dataset),
        windows_before=len(doc_index),
    )


# ---------------------------------------------------------------- tf.data
def document_dataset(windows: DocumentWindows, *, batch_size: int, feature_names: Sequence[str], cap: int,
                     pad_token_id: int = 0, shuffle: bool = False, seed: int | None = None,
                     group_by_length: bool | None = None):
    """A ``tf.data.Dataset`` of ``(features with doc_index, labels)`` batches of ``batch_size`` documents.

    With ``shuffle`` (training): a seeded shuffle of the documents every
    epoch, sorted by longest window within windows of 50 batches, then a
    seeded shuffle of the batches. Without: the split's order, every document.
    The dataset has a known length (``len(ds)``).
    """
    import tensorflow as tf

    from tfslm.inputs.bucketing import _row_order
    from tfslm.training.distribute import shard_options

    values, w_starts, w_lengths = (tf.constant(a) for a in (windows.values, windows.window_starts, windows.window_lengths))
    d_starts, d_counts, labels = tf.constant(windows.doc_starts), tf.constant(windows.doc_counts), tf.constant(windows.labels)
    names = list(feature_names)
    edges = tf.constant([cap], tf.int32)

    def assemble(docs):
        counts = tf.gather(d_counts, docs)
        first = tf.gather(d_starts, docs)
        positions = tf.ragged.range(first, first + counts).flat_values  # the batch's windows, document by document
        doc_index = tf.repeat(tf.range(tf.size(docs, out_type=tf.int32)), tf.cast(counts, tf.int32))
        lengths = tf.gather(w_lengths, positions)
        start = tf.gather(w_starts, positions)
        tokens = tf.ragged.range(start, start + tf.cast(lengths, tf.int64))
        ids = tokens.with_flat_values(tf.gather(values, tokens.flat_values))
        target = target_length(tf.reduce_max(lengths), edges, False, cap)
        ids = ids.to_tensor(default_value=pad_token_id, shape=tf.stack([tf.size(positions), target]))
        features = features_from(ids, lengths, names)
        features["doc_index"] = doc_index
        return features, tf.gather(labels, docs)

    options = tf.data.Options()
    options.deterministic = True
    options = shard_options("data", options)
    order = _row_order(windows.num_docs, tf.constant(windows.doc_lengths()), shuffle=shuffle, seed=seed, batch_size=batch_size,
                       group=group_by_length)
    ds = order.batch(batch_size).map(assemble, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(2 * WINDOW_BATCHES, seed=None if seed is None else seed + 1, reshuffle_each_iteration=True)
    n_batches = batch_count(windows.num_docs, batch_size, drop_remainder=False)
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).with_options(options).prefetch(tf.data.AUTOTUNE)


def document_inputs(data, model, tokenizer, *, batch_size: int = 8, max_length: int = 512, stride: int = 128,
                    max_windows: int | None = DEFAULT_MAX_WINDOWS, splits: Sequence[str] = ("train", "validation"),
                    seed: int | None = 42, group_by_length: bool | None = None) -> InputData:
    """The named splits of ``data`` as batches of whole documents (``data.long_text: document``); train is shuffled.

    ``batch_size`` counts documents; ``rows`` too. Train the model wrapped in
    :class:`tfslm.DocumentModel`, whose output is one row per document (so
    ``InputData.windows`` is None: nothing is left to pool).

    Args:
        data: a :class:`tfslm.TextData` (or a ``DatasetDict``) with ``text``/``label`` splits.
        model: the model (or its :class:`~tfslm.DocumentModel`); its call signature picks the feature names.
        tokenizer: the model's tokenizer.
        batch_size: documents per batch.
        max_length: tokens per window, special tokens included.
        stride: tokens of overlap between consecutive windows.
        max_windows: windows kept per document (evenly spaced; None: all).
        splits: which splits, in this order.
        seed: seeds the shuffles.
        group_by_length: sort training documents by their longest window; None: from 16 batches per epoch.

    Example:
        >>> inputs = document_inputs(data, model, tokenizer, batch_size=8, max_length=256, stride=64)  # doctest: +SKIP
        >>> DocumentModel(model).fit(inputs.train, validation_data=inputs.validation)                 # doctest: +SKIP
    """
    from tfslm.backends import get_backend

    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows: got {max_windows}, expected an integer >= 1 or None (every window)")
    names = get_backend().input_names(getattr(model, "window_model", model), tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    datasets, rows = {}, {}
    for s in splits:
        windows = document_windows(data[s], tokenizer, max_length=max_length, stride=stride, max_windows=max_windows)
        datasets[s] = document_dataset(windows, batch_size=batch_size, feature_names=names, cap=max_length,
                                       pad_token_id=pad_id, shuffle=(s == "train"), seed=seed,
                                       group_by_length=group_by_length)
        rows[s] = windows.num_docs
        log.info("documents %s: %d, %d windows (%.2f a document; %d before max_windows %s)", s, windows.num_docs,
                 len(windows.window_lengths), len(windows.window_lengths) / max(windows.num_docs, 1),
                 windows.windows_before, max_windows)
    return InputData(
        datasets=datasets, steps_per_epoch=steps_per_epoch_of(datasets, rows, batch_size), batch_size=batch_size,
        rows=rows, shard_policy="data", statistics=InputStatistics("bucketed (documents)"),
    )
