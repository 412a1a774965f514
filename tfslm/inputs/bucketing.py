"""The bucketed input pipeline: tokenize once (cached), then pure-TF length buckets.

Why: ``prepare_tf_dataset`` collates every batch in Python (``tf.numpy_function``)
and pads each batch to its longest row, wherever that row came from. Here

1. the ``text`` column is tokenized once and cached as Arrow
   (:mod:`tfslm.inputs.token_cache`);
2. the token ids are read from Arrow (offsets + values, no Python lists) into
   one flat TF tensor; a row is a slice of it;
3. ``tf.data`` shuffles row indices with the seed, sorts them by padded
   length within windows of 50 batches (so a batch holds rows of nearly one
   length: the bucketing of HF's ``group_by_length``, in the graph; by
   default only from 16 batches per epoch; ``group_by_length`` overrides),
   batches neighbours, pads to a multiple of 8 (or,
   with ``static_shapes``, to the bucket edge above: edges from the length
   quantiles, multiples of 8), builds ``attention_mask`` from the lengths,
   shuffles the batches with the seed and prefetches
   (:mod:`tfslm.inputs.batching`, shared with the TFRecord reader). No Python
   runs per batch, so the pipeline also works where there is none (TPU
   hosts, tf.data service).

Training epochs see every row exactly once (``static_shapes`` drops the
epoch's last partial batch: fixed shapes, at most ``batch_size - 1`` rows
left out of an epoch, different rows every epoch). Validation and test
datasets keep every row in the split's order, so ``model.predict(val_ds)``
lines up with ``data["validation"]``.

Example:
    >>> inputs = bucketed_inputs(data, model, tokenizer, batch_size=16, max_length=256, seed=42)  # doctest: +SKIP
    >>> inputs.statistics.padding["train"]["padding_fraction"]                                 # doctest: +SKIP
    0.04
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from tfslm.inputs.batching import (
    WINDOW_BATCHES,
    band_order,
    batch_count,
    features_from,
    groups_by_length,
    pad_to_length,
    round_up,
    target_length,
)
from tfslm.inputs.input_data import InputData, InputStatistics, steps_per_epoch_of
from tfslm.inputs.token_cache import TokenizedSplit, flat_ids, label_numpy, tokenize_cached

__all__ = [
    "BucketSpec",
    "bucket_boundaries",
    "shared_edges",
    "bucketed_dataset",
    "bucketed_inputs",
    "bucketed_datasets",
    "epoch_padding_stats",
]

log = logging.getLogger("tfslm")


# ---------------------------------------------------------------- buckets
@dataclass
class BucketSpec:
    """Bucket edges (each the longest length in its bucket) and how batches are formed."""

    edges: list[int]
    batch_size: int
    static_shapes: bool = False
    max_length: int = 512
    group_by_length: bool | None = None  # None: from MIN_BATCHES_TO_GROUP batches per epoch

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "batch_size": self.batch_size, "static_shapes": self.static_shapes,
                "group_by_length": self.group_by_length}


def bucket_boundaries(lengths: Sequence[int], max_length: int, *, batch_size: int, max_buckets: int = 12) -> list[int]:
    """Bucket edges from the length distribution: quantiles rounded up to multiples of 8.

    Each bucket is meant to hold several batches (so few batches are partial);
    the last edge is the longest length (at most ``max_length``).

    Example:
        >>> bucket_boundaries([10] * 50 + [100] * 50, 128, batch_size=8)
        [16, 104]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return [max(1, min(round_up(8), max_length))]
    longest = int(min(lengths.max(), max_length))
    cap = min(round_up(longest), max_length)
    n = int(np.clip(lengths.size // (batch_size * 4), 1, max_buckets))
    quantiles = np.quantile(lengths, np.linspace(0, 1, n + 1)[1:], method="higher")
    edges = sorted({min(round_up(int(q)), cap) for q in quantiles} | {cap})
    return edges


def shared_edges(lengths: Mapping[str, np.ndarray], max_length: int, *, batch_size: int, reference: str = "train") -> list[int]:
    """Edges from the ``reference`` split's lengths, plus one for an evaluation row longer than every reference row.

    Every split shares them, so ``static_shapes`` bounds the shapes of evaluation batches too.

    Example:
        >>> shared_edges({"train": np.array([10] * 40), "validation": np.array([30])}, 64, batch_size=8)
        [16, 32]
    """
    ref = lengths[reference] if reference in lengths else next(iter(lengths.values()))
    edges = bucket_boundaries(ref, max_length, batch_size=batch_size)
    longest_any = max(int(v.max()) if len(v) else 0 for v in lengths.values())
    if longest_any > edges[-1]:
        edges = edges + [min(round_up(longest_any), max_length)]
    return edges


# ---------------------------------------------------------------- tf.data
def _row_order(n: int, lengths, *, shuffle: bool, seed: int | None, batch_size: int, group: bool | None = None):
    """Row indices in batching order: a seeded shuffle, then sorted by length band within windows.

    Consecutive rows then have nearly equal lengths, so a batch of them needs
    almost no padding; which rows meet in a batch changes every epoch.
    """
    import tensorflow as tf

    rows = tf.data.Dataset.range(n)
    if not shuffle:
        return rows
    # Shuffling indices (not rows) keeps the buffer small; reshuffled every epoch from the seed.
    rows = rows.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    if not groups_by_length(n, batch_size, group):
        return rows
    window = batch_size * WINDOW_BATCHES

    def by_length(idx):
        return tf.gather(idx, band_order(tf.gather(lengths, idx)))

    return rows.batch(window).map(by_length).unbatch()


def bucketed_dataset(
    split: TokenizedSplit,
    *,
    spec: BucketSpec,
    feature_names: Sequence[str],
    pad_token_id: int = 0,
    shuffle: bool = False,
    seed: int | None = None,
):
    """A ``tf.data.Dataset`` of ``(features, label)`` batches from a tokenized split.

    With ``shuffle`` (training): a seeded index shuffle, rows sorted by length
    within windows of 50 batches, batches of neighbours, then a seeded
    shuffle of the batches. Without it (evaluation): the split's order, every
    row. Each batch is padded to its longest row rounded up to a multiple of
    8 or, with ``static_shapes``, to the bucket edge at or above it (training
    then drops the epoch's last partial batch, so every batch has one of
    ``len(spec.edges)`` shapes).

    The dataset has a known length (``len(ds)``); its padding figures come
    from :func:`epoch_padding_stats` (:func:`bucketed_inputs` reports them).
    """
    import tensorflow as tf

    from tfslm.training.distribute import shard_options

    values_np, splits_np = flat_ids(split.dataset)
    lengths_np = np.diff(splits_np).astype(np.int32)
    labels_np = label_numpy(split.dataset)  # class ids, or scaled scores for regression tasks
    n = len(lengths_np)
    values, starts = tf.constant(values_np), tf.constant(splits_np[:-1])
    del values_np, splits_np
    lengths, labels = tf.constant(lengths_np), tf.constant(labels_np)
    edges = tf.constant(spec.edges, dtype=tf.int32)
    batch_size = int(spec.batch_size)
    drop_remainder = bool(spec.static_shapes and shuffle)
    cap = int(spec.edges[-1])
    names = list(feature_names)

    def fetch(i):
        length = lengths[i]
        ids = tf.slice(values, [starts[i]], [tf.cast(length, tf.int64)])
        return ids, length, labels[i]

    def finish(batch_ids, batch_lengths, batch_labels):
        target = target_length(tf.reduce_max(batch_lengths), edges, spec.static_shapes, cap)
        ids = pad_to_length(batch_ids, target, pad_token_id)
        if drop_remainder:
            ids = tf.ensure_shape(ids, [batch_size, None])
        return features_from(ids, batch_lengths, names), batch_labels

    padded = (tf.TensorShape([None]), tf.TensorShape([]), tf.TensorShape(labels_np.shape[1:]))
    pad_values = (tf.constant(pad_token_id, tf.int32), tf.constant(0, tf.int32), tf.constant(0, labels.dtype))
    options = tf.data.Options()
    options.deterministic = True
    # Built in memory, not from files: in a multi-worker cluster every worker builds the same
    # seeded batches and keeps its share of each (AUTO would try FILE first, fail and warn).
    options = shard_options("data", options)

    order = _row_order(n, lengths, shuffle=shuffle, seed=seed, batch_size=batch_size, group=spec.group_by_length)
    rows = order.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = rows.padded_batch(batch_size, padded, pad_values, drop_remainder=drop_remainder)
    ds = batches.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        # Mix the sorted batches of a window (and the windows' short and long ends).
        ds = ds.shuffle(2 * WINDOW_BATCHES, seed=None if seed is None else seed + 1, reshuffle_each_iteration=True)
    n_batches = batch_count(n, batch_size, drop_remainder=drop_remainder)
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).with_options(options).prefetch(tf.data.AUTOTUNE)


def epoch_padding_stats(lengths: np.ndarray, spec: BucketSpec, *, shuffle: bool, seed: int | None) -> dict[str, Any]:
    """Pad tokens / all tokens of one epoch, from the same tf.data row order on lengths alone.

    The same seed gives the same first-epoch batches as the real pipeline, so
    the figure is that epoch's exactly, at the cost of a pass over integers.
    """
    import tensorflow as tf

    lengths = np.asarray(lengths, dtype=np.int32)
    n = len(lengths)
    lens = tf.constant(lengths)
    edges = tf.constant(np.asarray(spec.edges, dtype=np.int32))
    batch_size = int(spec.batch_size)
    drop_remainder = bool(spec.static_shapes and shuffle)
    cap = int(spec.edges[-1])
    order = _row_order(n, lens, shuffle=shuffle, seed=seed, batch_size=batch_size, group=spec.group_by_length)
    batches = order.map(lambda i: lens[i]).batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(lambda b: (tf.shape(b)[0], target_length(tf.reduce_max(b), edges, spec.static_shapes, cap), tf.reduce_sum(b)))
    real = padded_total = n_batches = rows_seen = 0
    shapes: set[tuple[int, int]] = set()
    for rows, target, total in batches.as_numpy_iterator():
        real += int(total)
        padded_total += int(target) * int(rows)
        rows_seen += int(rows)
        n_batches += 1
        shapes.add((int(rows), int(target)))
    fraction = 0.0 if padded_total == 0 else 1.0 - real / padded_total
    return {
        "padding_fraction": round(fraction, 4),
        "real_tokens": real,
        "padded_tokens": padded_total,
        "rows": rows_seen,
        "rows_in_split": n,
        "grouped_by_length": bool(shuffle and groups_by_length(n, batch_size, spec.group_by_length)),
        "batches": n_batches,
        "distinct_shapes": len(shapes),
        "shapes": sorted(shapes),
    }


def bucketed_inputs(
    data,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int = 128,
    splits: Sequence[str] = ("train", "validation"),
    seed: int | None = 42,
    static_shapes: bool = False,
    num_proc: int | None = None,
    group_by_length: bool | None = None,
) -> InputData:
    """The named splits of ``data`` as bucketed ``tf.data.Dataset``s in an :class:`~tfslm.inputs.input_data.InputData`; train is shuffled.

    Bucket edges come from the train split's lengths and are shared by every
    split (:func:`shared_edges`). ``statistics.padding`` holds each split's
    :func:`epoch_padding_stats` (the first epoch's, exactly).

    Args:
        data: a :class:`tfslm.TextData` (or a ``DatasetDict``) with ``text``/``label`` splits.
        model: the model (its call signature picks the feature names); may be None.
        tokenizer: the model's tokenizer.
        batch_size: rows per batch.
        max_length: truncation length.
        splits: which splits, in this order.
        seed: seeds the shuffles (None: TF's global seed).
        static_shapes: pad to bucket edges and drop each epoch's partial batch in training.
        num_proc: tokenization worker processes (see :func:`~tfslm.inputs.token_cache.tokenize_cached`).
        group_by_length: sort training rows by length within windows; None: from 16 batches per epoch.

    Example:
        >>> inputs = bucketed_inputs(data, model, tokenizer, batch_size=16, max_length=256)  # doctest: +SKIP
        >>> model.fit(inputs.train, validation_data=inputs.validation)                     # doctest: +SKIP
    """
    from tfslm.backends import get_backend

    splits = tuple(splits)
    tokenized = {s: tokenize_cached(data[s], tokenizer, max_length, num_proc=num_proc) for s in splits}
    edges = shared_edges({s: t.lengths for s, t in tokenized.items()}, max_length, batch_size=batch_size)
    spec = BucketSpec(edges=edges, batch_size=batch_size, static_shapes=static_shapes, max_length=max_length,
                      group_by_length=group_by_length)
    names = get_backend().input_names(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    datasets, padding = {}, {}
    for s in splits:
        shuffle = s == "train"
        datasets[s] = bucketed_dataset(tokenized[s], spec=spec, feature_names=names, pad_token_id=pad_id, shuffle=shuffle, seed=seed)
        stats = padding[s] = epoch_padding_stats(tokenized[s].lengths, spec, shuffle=shuffle, seed=seed)
        log.info(
            "input pipeline %s: bucketed, edges %s, %d batches%s, padding %.1f%%, %d distinct batch shapes%s",
            s, edges, stats["batches"], " grouped by length" if stats["grouped_by_length"] else "",
            100 * stats["padding_fraction"], stats["distinct_shapes"], ", tokens from cache" if tokenized[s].cache_hit else "",
        )
    rows = {s: int(t.dataset.num_rows) for s, t in tokenized.items()}
    return InputData(
        datasets=datasets,
        steps_per_epoch=steps_per_epoch_of(datasets, rows, batch_size),
        batch_size=batch_size,
        rows=rows,
        shard_policy="data",
        statistics=InputStatistics("bucketed", static_shapes=static_shapes, bucket_edges=list(edges), padding=padding),
    )


def bucketed_datasets(data, model, tokenizer, **kwargs) -> tuple:
    """:func:`bucketed_inputs`' datasets as a tuple in ``splits`` order (its statistics: use :func:`bucketed_inputs`).

    Example:
        >>> train_ds, val_ds = bucketed_datasets(data, model, tokenizer, batch_size=16, max_length=256)  # doctest: +SKIP
    """
    return bucketed_inputs(data, model, tokenizer, **kwargs).as_tuple()
