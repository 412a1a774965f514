"""Read ``tfslm prepare`` directories: :func:`load_prepared`, and pure-graph batches with :func:`tfrecord_dataset`.

See :mod:`tfslm.inputs.tfrecords` for the layout and why. Batches are formed
by the batching core the bucketed pipeline uses (:mod:`tfslm.inputs.batching`).

Example:
    >>> prepared = load_prepared("gs://my-bucket/prepared")                                # doctest: +SKIP
    >>> train_ds = tfrecord_dataset(prepared, "train", batch_size=128, seed=42)            # doctest: +SKIP
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

from tfslm.data.labels import LabelSpace
from tfslm.errors import ConfigError
from tfslm.inputs.batching import (
    WINDOW_BATCHES,
    band_order,
    batch_count,
    features_from,
    groups_by_length,
    pad_to_length,
    target_length,
)
from tfslm.inputs.input_data import InputData, InputStatistics, steps_per_epoch_of
from tfslm.inputs.tfrecord_checks import check_config, check_edges, check_prepared_info, check_tokenizer
from tfslm.inputs.tfrecord_format import PREPARED_FILE, SPLITS, TOKENIZER_DIR, is_remote, join, op_message, read_json

__all__ = ["PreparedData", "load_prepared", "tfrecord_dataset", "tfrecord_inputs", "read_examples"]

_MAX_OPEN_READERS = 16  # training: files read at once (each a reader with its own buffer)
_SHUFFLE_ROWS = 10_000  # training: row shuffle buffer, on top of the file shuffle and the prepare-time shuffle


# ---------------------------------------------------------------- loading
@dataclass
class PreparedData:
    """A directory written by :func:`~tfslm.inputs.tfrecord_writer.prepare`: its label space, task, tokenizer and splits.

    Stands in for :class:`tfslm.TextData` in ``tfslm train`` (``labels``,
    ``task``, ``splits``, ``summary()``, ``"test" in data``).
    """

    directory: str
    info: dict[str, Any]
    labels: LabelSpace
    task: Any
    tokenizer: Any
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.info["splits"]]

    def __contains__(self, split: str) -> bool:
        return split in self.info["splits"]

    def num_rows(self, split: str) -> int:
        return int(self.info["splits"][split]["rows"])

    def files(self, split: str) -> list[str]:
        """The shard paths of ``split``, in shard order."""
        return [join(self.directory, name) for name in self.info["splits"][split]["shards"]]

    def summary(self) -> dict[str, Any]:
        """Row counts per split (and per label), as :meth:`tfslm.TextData.summary` gave them at prepare time."""
        return dict(self.info.get("summary") or {s: {"rows": self.num_rows(s)} for s in self.splits})

    def tf_datasets(self, model, tokenizer, *, batch_size: int, splits: Sequence[str] = ("train", "validation"),
                    seed: int | None = 42, static_shapes: bool = True):
        """The named splits as ``tf.data.Dataset``s for ``model`` (see :func:`tfrecord_dataset`); train is shuffled.

        ``tokenizer`` must be the one the rows were prepared with (a checkpoint
        that brings a different one is a ConfigError). :func:`tfrecord_inputs`
        gives the same datasets with their statistics.
        """
        return tfrecord_inputs(self, model, tokenizer, batch_size=batch_size, splits=splits, seed=seed,
                               static_shapes=static_shapes).as_tuple()


def load_prepared(directory: str, *, config=None, key: str = "data.tfrecord_dir") -> PreparedData:
    """Open a directory written by :func:`~tfslm.inputs.tfrecord_writer.prepare` (local or ``gs://``); with ``config``, check it matches.

    The label space, task and tokenizer come from the directory. With a
    config, ``model.max_length``, the task and label keys, and the from-scratch
    tokenizer keys must match what was prepared, else a one-line ConfigError
    names the key and the fix.

    Example:
        >>> prepared = load_prepared("gs://my-bucket/prepared")                  # doctest: +SKIP
        >>> prepared.labels.names, prepared.num_rows("train")                    # doctest: +SKIP
    """
    import tensorflow as tf

    from tfslm.tasks.base import Task

    directory = str(directory)
    if not is_remote(directory):
        directory = os.path.expanduser(directory)
    path = join(directory, PREPARED_FILE)
    try:
        if not tf.io.gfile.exists(path):
            what = "does not exist" if not tf.io.gfile.exists(directory) else f"has no {PREPARED_FILE} (not written by `tfslm prepare`, or it did not finish)"
            raise ConfigError(f"{key}: {directory} {what}; run `tfslm prepare CONFIG --output {directory}` first")
        info = read_json(path)
        present = set(tf.io.gfile.listdir(directory))
    except tf.errors.OpError as exc:
        raise ConfigError(
            f"{key}: cannot read {directory} ({op_message(exc)}); check the path and your access to it "
            "(gs:// needs credentials on this machine)"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{key}: {path} is not valid JSON ({exc}); run `tfslm prepare` again") from None
    check_prepared_info(info, present, directory=directory, path=path, key=key)
    labels = LabelSpace.from_dict(info["labels"])
    task = Task.from_dict(info["task"])
    if config is not None:
        check_config(config, info, directory)
    tokenizer = _load_tokenizer(join(directory, TOKENIZER_DIR), key)
    return PreparedData(directory, info, labels, task, tokenizer, dict((info.get("summary") or {}).get("skipped_rows") or {}))


def _load_tokenizer(path: str, key: str):
    import tensorflow as tf

    from tfslm.backends import get_backend

    backend = get_backend()
    try:
        if not is_remote(path):
            return backend.load_tokenizer(path)
        # Tokenizers load from local files only: copy the few tokenizer files over.
        local = tempfile.mkdtemp(prefix="tfslm-tokenizer-")
        try:
            for name in tf.io.gfile.listdir(path):
                tf.io.gfile.copy(posixpath.join(path, name), os.path.join(local, name.rstrip("/")), overwrite=True)
            return backend.load_tokenizer(local)
        finally:
            shutil.rmtree(local, ignore_errors=True)
    except (OSError, ValueError, TypeError, tf.errors.OpError) as exc:
        raise ConfigError(f"{key}: cannot load the tokenizer from {path} ({op_message(exc)}); run `tfslm prepare` again") from None


def _open_info_only(directory: str) -> PreparedData:
    """A :class:`PreparedData` without its tokenizer (the reader needs only prepared.json)."""
    from tfslm.tasks.base import Task

    directory = str(directory)
    try:
        info = read_json(join(directory, PREPARED_FILE))
    except Exception as exc:  # not found, unreadable, not JSON
        raise ConfigError(f"{directory}: no readable {PREPARED_FILE} ({op_message(exc)}); run `tfslm prepare CONFIG --output {directory}` first") from None
    return PreparedData(directory, info, LabelSpace.from_dict(info["labels"]), Task.from_dict(info["task"]), None)


# ---------------------------------------------------------------- reading
def _parse_spec(info: dict[str, Any]):
    import tensorflow as tf

    label = info["features"]["label"]
    dtype = tf.int64 if label["dtype"] == "int64" else tf.float32
    return {
        "input_ids": tf.io.RaggedFeature(tf.int64),
        "label": tf.io.FixedLenFeature(label["shape"], dtype),
        "row": tf.io.FixedLenFeature([], tf.int64),
    }


def _records(files: list[str], compression: str, *, shuffle: bool, seed: int | None, cycle_length: int):
    """One dataset of serialized records from a dataset of file names.

    The file-name dataset is what ``AutoShardPolicy.FILE`` splits between
    input workers; without ``shuffle``, reading all files one record at a
    time restores the round-robin split order.
    """
    import tensorflow as tf

    paths = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    compression_type = "GZIP" if compression == "gzip" else ""
    return paths.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression_type),
        cycle_length=cycle_length, block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE if cycle_length > 1 else None, deterministic=True,
    )


def read_examples(source, split: str):
    """The rows of one split as written, unbatched and unpadded: ``{"input_ids", "label", "row"}`` per row.

    For inspection and tests; train rows come in their prepared (shuffled) order.

    Example:
        >>> next(iter(read_examples("prepared/quickstart", "validation")))["row"]   # doctest: +SKIP
        0
    """
    import tensorflow as tf

    prepared = source if isinstance(source, PreparedData) else _open_info_only(source)
    files = prepared.files(split)
    spec = _parse_spec(prepared.info)
    records = _records(files, prepared.info.get("compression", "none"), shuffle=False, seed=None, cycle_length=len(files))
    return records.map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@dataclass
class _Reader:
    """What one :func:`tfrecord_dataset` call reads and how it pads (resolved arguments)."""

    prepared: PreparedData
    split: str
    batch_size: int
    shuffle: bool
    seed: int | None
    static_shapes: bool
    pad_final_batch: bool
    names: list[str]
    edges: list[int]
    group_by_length: bool | None = None

    @property
    def rows(self) -> int:
        return self.prepared.num_rows(self.split)

    def pad_to_bucket(self, ragged_ids):
        """Ragged ids as dense int32 ``[batch, edge]`` (or a multiple of 8) and the row lengths."""
        import tensorflow as tf

        pad_id = int(self.prepared.info["pad_token_id"])
        lengths = tf.cast(ragged_ids.row_lengths(), tf.int32)
        edges = tf.constant(self.edges, dtype=tf.int32)
        target = target_length(tf.reduce_max(lengths), edges, self.static_shapes, self.edges[-1])
        dense = tf.cast(ragged_ids.to_tensor(default_value=pad_id), tf.int32)
        return pad_to_length(dense, target, pad_id), lengths


def _resolve_reader(source, split, *, batch_size, shuffle, seed, static_shapes, pad_final_batch, feature_names, edges,
                    group_by_length=None) -> _Reader:
    prepared = source if isinstance(source, PreparedData) else _open_info_only(source)
    info = prepared.info
    if split not in info["splits"]:
        raise ConfigError(
            f"{prepared.directory}: no {split!r} split (prepared splits: {', '.join(prepared.splits)}); read one of those, "
            f"or give the config a {split} file and run `tfslm prepare` again"
        )
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    edges_list = [int(e) for e in (edges if edges is not None else info["bucket_edges"])]
    check_edges(edges_list, split, info["splits"][split]["longest"])
    return _Reader(
        prepared, split, int(batch_size),
        shuffle=(split == "train") if shuffle is None else bool(shuffle),
        seed=seed, static_shapes=static_shapes,
        pad_final_batch=static_shapes if pad_final_batch is None else bool(pad_final_batch),
        names=list(feature_names) if feature_names is not None else list(info["model_input_names"]),
        edges=edges_list, group_by_length=group_by_length,
    )


def _training_batches(reader: _Reader):
    """Shuffled files and rows, sorted by length band within windows, batched, padded; returns ``(dataset, batches)``."""
    import tensorflow as tf

    seed, batch_size, rows = reader.seed, reader.batch_size, reader.rows
    seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
    files = reader.prepared.files(reader.split)
    compression = reader.prepared.info.get("compression", "none")
    spec = _parse_spec(reader.prepared.info)
    records = _records(files, compression, shuffle=True, seed=seeds[0], cycle_length=min(len(files), _MAX_OPEN_READERS))
    records = records.shuffle(max(1, min(rows, _SHUFFLE_ROWS)), seed=seeds[1], reshuffle_each_iteration=True)
    group = groups_by_length(rows, batch_size, reader.group_by_length)  # as the bucketed pipeline: few batches stay random
    window = batch_size * (WINDOW_BATCHES if group else 1)

    def parse_window(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        ids, labels = parsed["input_ids"], parsed["label"]
        if group:
            order = band_order(tf.cast(ids.row_lengths(), tf.int32))
            ids, labels = tf.gather(ids, order), tf.gather(labels, order)
        return ids, labels

    def finish(ragged_ids, labels):
        ids, lengths = reader.pad_to_bucket(ragged_ids)
        if reader.static_shapes:
            ids = tf.ensure_shape(ids, [batch_size, None])
        return features_from(ids, lengths, reader.names), labels

    ds = records.batch(window).map(parse_window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    ds = ds.ragged_batch(batch_size, drop_remainder=reader.static_shapes)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if group:
        ds = ds.shuffle(2 * WINDOW_BATCHES, seed=seeds[2], reshuffle_each_iteration=True)
    return ds, batch_count(rows, batch_size, drop_remainder=reader.static_shapes)


def _evaluation_batches(reader: _Reader):
    """Every row once, in split order; with ``pad_final_batch``, weighted-out dummy rows fill the last batch."""
    import tensorflow as tf

    batch_size = reader.batch_size
    files = reader.prepared.files(reader.split)
    records = _records(files, reader.prepared.info.get("compression", "none"), shuffle=False, seed=None, cycle_length=len(files))
    spec = _parse_spec(reader.prepared.info)
    label_shape = list(reader.prepared.info["features"]["label"]["shape"])
    pad_id = int(reader.prepared.info["pad_token_id"])

    def finish_eval(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        ids, lengths = reader.pad_to_bucket(parsed["input_ids"])
        labels = parsed["label"]
        if not reader.pad_final_batch:
            return features_from(ids, lengths, reader.names), labels
        real = tf.shape(ids)[0]
        missing = batch_size - real
        # Dummy rows hold one pad token (mask 1 on it): a row with no attended
        # token would make attention softmax over nothing (NaN in low precision).
        ids = tf.pad(ids, [[0, missing], [0, 0]], constant_values=pad_id)
        lengths = tf.concat([lengths, tf.ones([missing], tf.int32)], axis=0)
        labels = tf.pad(labels, [[0, missing]] + [[0, 0]] * (labels.shape.rank - 1))
        weights = tf.concat([tf.ones([real], tf.float32), tf.zeros([missing], tf.float32)], axis=0)
        ids = tf.ensure_shape(ids, [batch_size, None])
        labels = tf.ensure_shape(labels, [batch_size] + label_shape)
        weights = tf.ensure_shape(weights, [batch_size])
        return features_from(ids, lengths, reader.names), labels, weights

    ds = records.batch(batch_size).map(finish_eval, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds, batch_count(reader.rows, batch_size, drop_remainder=False)


def tfrecord_dataset(
    source,
    split: str,
    *,
    batch_size: int,
    shuffle: bool | None = None,
    seed: int | None = 42,
    static_shapes: bool = True,
    pad_final_batch: bool | None = None,
    feature_names: Sequence[str] | None = None,
    edges: Sequence[int] | None = None,
    group_by_length: bool | None = None,
):
    """A pure-graph ``tf.data.Dataset`` of ``(features, label)`` batches from a :func:`~tfslm.inputs.tfrecord_writer.prepare` directory.

    Training (``shuffle``, the default for ``train``): files shuffled and read
    interleaved, rows shuffled (seeded, reshuffled each epoch) and sorted by
    length within windows of 50 batches so a batch holds rows of nearly one
    length, batches padded to the bucket edge at or above their longest row
    and, with ``static_shapes``, the epoch's last partial batch dropped: every
    batch is ``[batch_size, edge]`` for one of ``prepared.json``'s
    ``bucket_edges``. Evaluation (no ``shuffle``): every row once, in split
    order; with ``pad_final_batch`` (default: ``static_shapes``) the last
    batch is filled with one-token dummy rows and the dataset yields
    ``(features, label, sample_weight)``, weight 0 on the dummies (Keras's
    ``evaluate``/``fit`` weigh them out; :func:`tfslm.training.evaluation.collect_predictions` drops them).

    ``batch_size`` is the batch the dataset yields: under ``tf.distribute``
    with Keras that is the global batch, split between the replicas.

    Args:
        source: a directory (local or ``gs://``) or a :class:`PreparedData`.
        split: ``train``, ``validation`` or ``test``.
        batch_size: rows per batch.
        shuffle: default: ``split == "train"``.
        seed: seeds every shuffle; None uses TF's global seed.
        static_shapes: pad to bucket edges (else to a multiple of 8) and drop
            the partial training batch.
        pad_final_batch: evaluation: fill the last batch with weighted-out dummy rows.
        feature_names: which features to yield (default: the tokenizer's
            ``model_input_names``); ``attention_mask`` and ``token_type_ids`` are derived.
        edges: override the bucket edges (each a padded length, ascending).
        group_by_length: training: sort rows by length within windows; None: from 16 batches per epoch.

    Example:
        >>> train_ds = tfrecord_dataset("prepared/quickstart", "train", batch_size=32, seed=42)   # doctest: +SKIP
        >>> val_ds = tfrecord_dataset("prepared/quickstart", "validation", batch_size=32)          # doctest: +SKIP
        >>> model.fit(train_ds, validation_data=val_ds, epochs=3)                                 # doctest: +SKIP
    """
    import tensorflow as tf

    from tfslm.training.distribute import shard_options

    reader = _resolve_reader(source, split, batch_size=batch_size, shuffle=shuffle, seed=seed, static_shapes=static_shapes,
                             pad_final_batch=pad_final_batch, feature_names=feature_names, edges=edges,
                             group_by_length=group_by_length)
    ds, n_batches = _training_batches(reader) if reader.shuffle else _evaluation_batches(reader)
    options = tf.data.Options()
    options.deterministic = True
    options = shard_options("file", options)
    # A known length lets Keras size its progress bar and the schedule; the
    # auto-shard rewrite removes the assertion, so workers that read only
    # their own files (AutoShardPolicy.FILE) are not held to the total.
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def tfrecord_inputs(prepared: PreparedData, model, tokenizer, *, batch_size: int, splits: Sequence[str] = ("train", "validation"),
                    seed: int | None = 42, static_shapes: bool = True, group_by_length: bool | None = None) -> InputData:
    """The named splits of a prepared directory as :func:`tfrecord_dataset`s in an :class:`~tfslm.inputs.input_data.InputData`.

    ``tokenizer`` must be the one the rows were prepared with (a checkpoint
    that brings a different one is a ConfigError); the model's call
    signature and the tokenizer pick the features.

    Example:
        >>> inputs = tfrecord_inputs(load_prepared("prepared/qs"), model, tokenizer, batch_size=32)   # doctest: +SKIP
        >>> inputs.shard_policy                                                                      # doctest: +SKIP
        'file'
    """
    from tfslm.backends import get_backend

    check_tokenizer(prepared.info, prepared.directory, tokenizer)
    names = get_backend().input_names(model, tokenizer) if tokenizer is not None else None
    datasets = {
        split: tfrecord_dataset(prepared, split, batch_size=batch_size, shuffle=(split == "train"), seed=seed,
                                static_shapes=static_shapes, feature_names=names, group_by_length=group_by_length)
        for split in splits
    }
    rows = {split: prepared.num_rows(split) for split in splits}
    return InputData(
        datasets=datasets, steps_per_epoch=steps_per_epoch_of(datasets, rows, batch_size), batch_size=batch_size,
        rows=rows, shard_policy="file",
        statistics=InputStatistics("tfrecords", static_shapes=static_shapes, bucket_edges=[int(e) for e in prepared.info["bucket_edges"]]),
    )
