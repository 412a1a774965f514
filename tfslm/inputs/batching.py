"""The batching core shared by the bucketed pipeline and the TFRecord reader: pure TF, no Python per batch.

Both readers form batches the same way, so the pieces live here once:

- rows are sorted by their *padded* length band (a multiple of 8) within
  windows of 50 batches, stable, so a batch holds rows of nearly one length
  while rows of one band keep their shuffled order (:func:`band_order`);
  with fewer than 16 batches per epoch rows stay random (:func:`groups_by_length`);
- a batch is padded to its longest row rounded up to a multiple of 8, or
  with ``static_shapes`` to the bucket edge at or above it (:func:`target_length`,
  :func:`pad_to_length`);
- ``attention_mask`` and ``token_type_ids`` are derived from the row lengths
  (single texts: ones over the tokens, zeros) (:func:`features_from`).

Example:
    >>> round_up(13)
    16
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = [
    "MULTIPLE",
    "WINDOW_BATCHES",
    "MIN_BATCHES_TO_GROUP",
    "round_up",
    "groups_by_length",
    "band_order",
    "target_length",
    "pad_to_length",
    "features_from",
    "batch_count",
]

MULTIPLE = 8  # pad lengths to a multiple of 8: tensor-core / oneDNN friendly tiles
WINDOW_BATCHES = 50  # rows are sorted by length within windows of 50 batches (as HF's group_by_length)
# Below this many batches per epoch, batches stay random unless asked
# (training.group_by_length: true): grouping by length also groups by label
# when the two correlate (essay scores do), and with few batches each skewed
# batch is a large share of an epoch. Measured: a 120-row, 8-batch tiny model
# learned visibly slower with grouping (tests/test_cli.py).
MIN_BATCHES_TO_GROUP = 16


def round_up(value: int, multiple: int = MULTIPLE) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (Python ints)."""
    return int(math.ceil(value / multiple) * multiple)


def groups_by_length(rows: int, batch_size: int, setting: bool | None = None) -> bool:
    """Whether training batches are formed from rows sorted by length within windows.

    ``setting`` True or False decides; None (auto): only an epoch of at least
    ``MIN_BATCHES_TO_GROUP`` batches is grouped.

    Example:
        >>> groups_by_length(192, 16), groups_by_length(192, 16, True), groups_by_length(512, 16)
        (False, True, True)
    """
    if setting is not None:
        return bool(setting)
    return rows >= batch_size * MIN_BATCHES_TO_GROUP


def band_order(lengths):
    """Positions that sort rows by padded length band (a multiple of 8), stable (pure TF).

    Sorting by the band, not the exact length, keeps rows of one band in
    their shuffled order, so a batch is not a run of equal-length rows
    (length often correlates with the label).
    """
    import tensorflow as tf

    bands = (lengths + MULTIPLE - 1) // MULTIPLE
    return tf.argsort(bands, stable=True)


def target_length(longest, edges, static_shapes: bool, cap: int):
    """The padded length of a batch whose longest row is ``longest`` (pure TF).

    ``static_shapes``: the bucket edge at or above ``longest``; otherwise
    ``longest`` rounded up to a multiple of 8, at most ``cap``.
    """
    import tensorflow as tf

    if static_shapes:
        return tf.gather(edges, tf.searchsorted(edges, tf.reshape(longest, [1]), side="left"))[0]
    target = tf.minimum((longest + MULTIPLE - 1) // MULTIPLE * MULTIPLE, cap)
    return tf.maximum(target, longest)


def pad_to_length(ids, target, pad_token_id: int):
    """Dense ``[batch, length]`` ids padded on the right with ``pad_token_id`` to ``target`` columns."""
    import tensorflow as tf

    return tf.pad(ids, [[0, 0], [0, target - tf.shape(ids)[1]]], constant_values=pad_token_id)


def features_from(ids, lengths, feature_names: Sequence[str]) -> dict:
    """The model's features for padded ``ids`` and the rows' ``lengths``: ids, mask from lengths, zero token types."""
    import tensorflow as tf

    out = {"input_ids": ids}
    if "attention_mask" in feature_names:
        out["attention_mask"] = tf.ensure_shape(tf.sequence_mask(lengths, tf.shape(ids)[1], dtype=tf.int32), ids.shape)
    if "token_type_ids" in feature_names:
        out["token_type_ids"] = tf.zeros_like(ids)
    return out


def batch_count(rows: int, batch_size: int, *, drop_remainder: bool) -> int:
    """Batches in one epoch of ``rows``."""
    return rows // batch_size if drop_remainder else -(-rows // batch_size)
