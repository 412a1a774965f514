"""The bucketed input pipeline: tokenize once (cached), then pure-TF length buckets.

Why: ``prepare_tf_dataset`` collates every batch in Python (``tf.numpy_function``)
and pads each batch to its longest row, wherever that row came from. Here

1. the ``text`` column is tokenized once with the batched fast tokenizer
   through ``datasets.map`` into an Arrow file named by the fingerprint of
   data + tokenizer + max_length (reused by the next run, invalidated when any
   of the three changes); only ``input_ids`` and ``length`` are stored;
2. the token ids are read from Arrow (offsets + values, no Python lists) into
   one flat TF tensor; a row is a slice of it;
3. ``tf.data`` shuffles row indices with the seed, sorts them by padded
   length within windows of 50 batches (so a batch holds rows of nearly one
   length: the bucketing of HF's ``group_by_length``, in the graph; only from
   16 batches per epoch, see ``_MIN_BATCHES_TO_GROUP``), batches
   neighbours, pads to a multiple of 8 (or, with ``static_shapes``, to the
   bucket edge above: edges from the length quantiles, multiples of 8),
   builds ``attention_mask`` from the lengths, shuffles the batches with the
   seed and prefetches. No Python runs per batch, so the pipeline also works where
   there is none (TPU hosts, tf.data service).

Training epochs see every row exactly once (``static_shapes`` drops the
epoch's last partial batch: fixed shapes, at most ``batch_size - 1`` rows
left out of an epoch, different rows every epoch). Validation and test
datasets keep every row in the split's order, so ``model.predict(val_ds)``
lines up with ``data["validation"]``.

Example:
    >>> train_ds, val_ds = bucketed_datasets(data, model, tokenizer, batch_size=16, max_length=256, seed=42)  # doctest: +SKIP
    >>> train_ds.padding_stats["padding_fraction"]                                                          # doctest: +SKIP
    0.04
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = [
    "TokenizedSplit",
    "BucketSpec",
    "tokenize_cached",
    "tokenizer_fingerprint",
    "bucket_boundaries",
    "bucketed_dataset",
    "bucketed_datasets",
    "epoch_padding_stats",
    "CACHE_SUBDIR",
]

log = logging.getLogger("tfslm")

CACHE_SUBDIR = "tfslm-tokens"
_CACHE_VERSION = "1"  # bump when the cached columns change
_MULTIPLE = 8  # pad lengths to a multiple of 8: tensor-core / oneDNN friendly tiles
_NUM_PROC_MIN_ROWS = 50_000  # below this, worker start-up costs more than it saves


# ---------------------------------------------------------------- tokenizing
def tokenizer_fingerprint(tokenizer) -> str:
    """A stable hash of what decides the token ids: vocabulary, normaliser, specials.

    A fast tokenizer's backend JSON also records the truncation/padding state
    of its last call, which says nothing about the ids; those keys are dropped.
    """
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        h.update(json.dumps(spec, sort_keys=True).encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extras = {
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "pad": tokenizer.pad_token_id,
        "side": getattr(tokenizer, "truncation_side", "right"),
        "lower": getattr(tokenizer, "do_lower_case", None),
    }
    h.update(json.dumps(extras, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


@dataclass
class TokenizedSplit:
    """One split tokenized for bucketing: Arrow-backed ``input_ids`` (int32), ``length``, ``label``."""

    dataset: Any  # datasets.Dataset
    fingerprint: str
    cache_file: str | None
    cache_hit: bool

    @property
    def lengths(self) -> np.ndarray:
        return _column_numpy(self.dataset, "length").astype(np.int64)


def _cache_root() -> Path:
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / CACHE_SUBDIR


def tokenize_cached(dataset, tokenizer, max_length: int, *, num_proc: int | None = None, cache_dir: str | Path | None = None) -> TokenizedSplit:
    """Tokenize a ``text``/``label`` split once; later calls with the same inputs reuse the Arrow file.

    The cache file is named by a hash of the dataset's ``datasets``
    fingerprint, :func:`tokenizer_fingerprint` and ``max_length``; change any
    of them and the split is tokenized again.

    Args:
        dataset: a ``datasets.Dataset`` with a ``text`` column.
        tokenizer: a transformers tokenizer (fast ones are batched in Rust).
        max_length: truncation length in tokens.
        num_proc: worker processes for ``datasets.map``; None picks 1 below
            50k rows (the Rust tokenizer already uses every core) and the CPU
            count above.
        cache_dir: where the Arrow files go (default: ``$HF_DATASETS_CACHE/tfslm-tokens``).

    Example:
        >>> split = tokenize_cached(data["train"], tokenizer, 256)    # doctest: +SKIP
        >>> split.cache_hit, split.lengths[:3]                        # doctest: +SKIP
        (True, array([231, 256, 198]))
    """
    import os

    import datasets

    from tfslm.data.loading import _quiet_datasets

    fingerprint = hashlib.sha256(
        "|".join([_CACHE_VERSION, dataset._fingerprint, tokenizer_fingerprint(tokenizer), str(int(max_length))]).encode()
    ).hexdigest()[:24]
    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    cache_file = root / f"tokens-{fingerprint}.arrow"
    if num_proc is None:
        num_proc = (os.cpu_count() or 1) if dataset.num_rows >= _NUM_PROC_MIN_ROWS else 1
    num_proc = max(1, min(int(num_proc), dataset.num_rows))
    shard_files = list(root.glob(f"tokens-{fingerprint}_*_of_*.arrow"))
    cache_hit = cache_file.exists() or bool(shard_files)

    def encode(batch):
        enc = tokenizer(
            batch["text"], truncation=True, max_length=max_length,
            return_attention_mask=False, return_token_type_ids=False,
        )
        ids = enc["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    features = dataset.features.copy()
    del features["text"]
    features["input_ids"] = datasets.Sequence(datasets.Value("int32"))
    features["length"] = datasets.Value("int32")
    with _quiet_datasets():
        if cache_hit and shard_files and not cache_file.exists():
            # A multi-process run left shards; datasets reassembles them with the same num_proc.
            num_proc = len(shard_files)
        out = dataset.map(
            encode,
            batched=True,
            batch_size=1000,
            remove_columns=["text"],
            features=features,
            cache_file_name=str(cache_file),
            load_from_cache_file=True,
            new_fingerprint=fingerprint,
            num_proc=num_proc if num_proc > 1 else None,
            desc="Tokenizing",
        )
    return TokenizedSplit(out, fingerprint, str(cache_file), cache_hit)


def _label_numpy(dataset) -> np.ndarray:
    """Labels as NumPy: int64 class ids, float32 scores, or float32 ``[rows, targets]`` for list cells."""
    import pyarrow as pa

    column = dataset.with_format("arrow")["label"] if dataset._indices is not None else dataset.data.column("label")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(column), -1)
    values = column.to_numpy(zero_copy_only=False)
    return values.astype(np.int64) if np.issubdtype(values.dtype, np.integer) else values.astype(np.float32)


def _column_numpy(dataset, name: str) -> np.ndarray:
    column = dataset.with_format("arrow")[name] if dataset._indices is not None else dataset.data.column(name)
    return column.to_numpy()


def _flat_ids(dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(values, row_splits)`` of the ``input_ids`` list column, straight from Arrow buffers."""
    import pyarrow as pa

    column = dataset.with_format("arrow")["input_ids"] if dataset._indices is not None else dataset.data.column("input_ids")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column.flatten().to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    return values.astype(np.int32, copy=False), offsets - offsets[0]


# ---------------------------------------------------------------- buckets
@dataclass
class BucketSpec:
    """Bucket edges (each the longest length in its bucket) and how batches are formed."""

    edges: list[int]
    batch_size: int
    static_shapes: bool = False
    max_length: int = 512

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "batch_size": self.batch_size, "static_shapes": self.static_shapes}


def _round_up(value: int, multiple: int = _MULTIPLE) -> int:
    return int(math.ceil(value / multiple) * multiple)


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
        return [max(1, min(_round_up(8), max_length))]
    longest = int(min(lengths.max(), max_length))
    cap = min(_round_up(longest), max_length)
    n = int(np.clip(lengths.size // (batch_size * 4), 1, max_buckets))
    quantiles = np.quantile(lengths, np.linspace(0, 1, n + 1)[1:], method="higher")
    edges = sorted({min(_round_up(int(q)), cap) for q in quantiles} | {cap})
    return edges


def _feature_names(model, tokenizer) -> list[str]:
    names = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
    if model is not None:
        params = inspect.signature(model.call).parameters
        names = [n for n in names if n in params]
    if "input_ids" not in names:
        names.insert(0, "input_ids")
    return names


# ---------------------------------------------------------------- tf.data
_WINDOW_BATCHES = 50  # rows are sorted by length within windows of 50 batches (as HF's group_by_length)
# Below this many batches per epoch, batches stay random: grouping by length
# also groups by label when the two correlate (essay scores do), and with few
# batches each skewed batch is a large share of an epoch. Measured: a 120-row,
# 8-batch tiny model learned visibly slower with grouping (tests/test_cli.py).
_MIN_BATCHES_TO_GROUP = 16


def _row_order(n: int, lengths, *, shuffle: bool, seed: int | None, batch_size: int):
    """Row indices in batching order: a seeded shuffle, then sorted by length within windows.

    Consecutive rows then have nearly equal lengths, so a batch of them needs
    almost no padding; which rows meet in a batch changes every epoch.
    """
    import tensorflow as tf

    rows = tf.data.Dataset.range(n)
    if not shuffle:
        return rows
    # Shuffling indices (not rows) keeps the buffer small; reshuffled every epoch from the seed.
    rows = rows.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    if n < batch_size * _MIN_BATCHES_TO_GROUP:
        return rows
    window = batch_size * _WINDOW_BATCHES

    def by_length(idx):
        # Sort by the padded length (a multiple of 8), not the exact one: rows in
        # the same band keep their shuffled order, so a batch is not a run of
        # equal-length rows (length often correlates with the label).
        bands = (tf.gather(lengths, idx) + _MULTIPLE - 1) // _MULTIPLE
        return tf.gather(idx, tf.argsort(bands, stable=True))

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

    The dataset has a known length (``len(ds)``) and carries
    ``ds.padding_stats`` (pad tokens / all tokens of its first epoch, batch
    count, distinct shapes).
    """
    import tensorflow as tf

    values_np, splits_np = _flat_ids(split.dataset)
    lengths_np = np.diff(splits_np).astype(np.int32)
    labels_np = _label_numpy(split.dataset)  # class ids, or scaled scores for regression tasks
    n = len(lengths_np)
    values = tf.constant(values_np)
    starts = tf.constant(splits_np[:-1])
    del values_np, splits_np
    lengths = tf.constant(lengths_np)
    labels = tf.constant(labels_np)
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
        longest = tf.reduce_max(batch_lengths)
        target = _target_length(longest, edges, spec.static_shapes, cap)
        ids = tf.pad(batch_ids, [[0, 0], [0, target - tf.shape(batch_ids)[1]]], constant_values=pad_token_id)
        if drop_remainder:
            ids = tf.ensure_shape(ids, [batch_size, None])
        features = {"input_ids": ids}
        if "attention_mask" in names:
            features["attention_mask"] = tf.sequence_mask(batch_lengths, target, dtype=tf.int32)
        if "token_type_ids" in names:
            features["token_type_ids"] = tf.zeros_like(ids)
        return features, batch_labels

    padded = (tf.TensorShape([None]), tf.TensorShape([]), tf.TensorShape(labels_np.shape[1:]))
    pad_values = (tf.constant(pad_token_id, tf.int32), tf.constant(0, tf.int32), tf.constant(0, labels.dtype))
    options = tf.data.Options()
    options.deterministic = True
    # Built in memory, not from files: in a multi-worker cluster every worker builds the same
    # seeded batches and keeps its share of each (AUTO would try FILE first, fail and warn).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    order = _row_order(n, lengths, shuffle=shuffle, seed=seed, batch_size=batch_size)
    rows = order.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = rows.padded_batch(batch_size, padded, pad_values, drop_remainder=drop_remainder)
    ds = batches.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        # Mix the sorted batches of a window (and the windows' short and long ends).
        ds = ds.shuffle(2 * _WINDOW_BATCHES, seed=None if seed is None else seed + 1, reshuffle_each_iteration=True)
    n_batches = n // batch_size if drop_remainder else -(-n // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches)).with_options(options).prefetch(tf.data.AUTOTUNE)
    ds.padding_stats = epoch_padding_stats(lengths_np, spec, shuffle=shuffle, seed=seed)
    ds.bucket_spec = spec
    ds.tokenized = split
    return ds


def _target_length(longest, edges, static_shapes: bool, cap: int):
    """The padded length of a batch whose longest row is ``longest`` (pure TF)."""
    import tensorflow as tf

    if static_shapes:
        return tf.gather(edges, tf.searchsorted(edges, tf.reshape(longest, [1]), side="left"))[0]
    target = tf.minimum((longest + _MULTIPLE - 1) // _MULTIPLE * _MULTIPLE, cap)
    return tf.maximum(target, longest)


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
    order = _row_order(n, lens, shuffle=shuffle, seed=seed, batch_size=batch_size)
    batches = order.map(lambda i: lens[i]).batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(lambda b: (tf.shape(b)[0], _target_length(tf.reduce_max(b), edges, spec.static_shapes, cap), tf.reduce_sum(b)))
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
        "batches": n_batches,
        "distinct_shapes": len(shapes),
        "shapes": sorted(shapes),
    }


def bucketed_datasets(
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
):
    """The named splits of ``data`` as bucketed ``tf.data.Dataset``s; train is shuffled.

    Bucket edges come from the train split's lengths and are shared by every
    split, so ``static_shapes`` bounds the shapes of evaluation batches too.

    Args:
        data: a :class:`tfslm.TextData` (or a ``DatasetDict``) with ``text``/``label`` splits.
        model: the transformers TF model (its call signature picks the feature names); may be None.
        tokenizer: the model's tokenizer.
        batch_size: rows per batch.
        max_length: truncation length.
        splits: which splits, in the order returned.
        seed: seeds the shuffles (None: TF's global seed).
        static_shapes: pad to bucket edges and drop each bucket's partial batch in training.
        num_proc: tokenization worker processes (see :func:`tokenize_cached`).

    Example:
        >>> train_ds, val_ds = bucketed_datasets(data, model, tokenizer, batch_size=16, max_length=256)  # doctest: +SKIP
    """
    tokenized = {s: tokenize_cached(data[s], tokenizer, max_length, num_proc=num_proc) for s in splits}
    reference = tokenized["train"] if "train" in tokenized else tokenized[splits[0]]
    edges = bucket_boundaries(reference.lengths, max_length, batch_size=batch_size)
    longest_any = max(int(t.lengths.max()) if t.dataset.num_rows else 0 for t in tokenized.values())
    if longest_any > edges[-1]:  # an evaluation row longer than any training row
        edges = edges + [min(_round_up(longest_any), max_length)]
    spec = BucketSpec(edges=edges, batch_size=batch_size, static_shapes=static_shapes, max_length=max_length)
    names = _feature_names(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for s in splits:
        ds = bucketed_dataset(tokenized[s], spec=spec, feature_names=names, pad_token_id=pad_id, shuffle=(s == "train"), seed=seed)
        stats = ds.padding_stats
        log.info(
            "input pipeline %s: bucketed, edges %s, %d batches, padding %.1f%%, %d distinct batch shapes%s",
            s, edges, stats["batches"], 100 * stats["padding_fraction"], stats["distinct_shapes"],
            ", tokens from cache" if tokenized[s].cache_hit else "",
        )
        out.append(ds)
    return tuple(out)
