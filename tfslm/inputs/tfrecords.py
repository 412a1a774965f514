"""Sharded TFRecords for TPUs and remote workers: ``tfslm prepare`` writes them, a pure-graph reader trains on them.

A TPU host, a tf.data service worker or any remote input pipeline cannot
call back into Python, so it cannot read a CSV with ``datasets`` or run a
Python tokenizer. ``tfslm prepare CONFIG --output DIR`` does that work once,
exactly as ``tfslm train`` would (read, clean, label, split with
``training.seed``, tokenize at ``model.max_length``), and writes::

    DIR/
      train-00000-of-00008.tfrecord       tf.train.Example records, one per row
      ...
      validation-00000-of-00008.tfrecord
      test-00000-of-00008.tfrecord        when data.test_file is set
      tokenizer/                          the tokenizer the ids came from
      prepared.json                       features, shapes, dtypes, max_length, label space, task,
                                          bucket edges, rows and shards per split; written last

A record holds ``input_ids`` (int64 list, the row's tokens with special
tokens, truncated, not padded), ``label`` (int64 class id, or float32 scaled
target(s) for regression) and ``row`` (the row's position in its split, in
``tfslm.load_data`` order). ``attention_mask`` and ``token_type_ids`` are not
stored: for single texts they are ones over the tokens and zeros, so the
reader derives them in the graph from the row length after padding.

Rows are dealt to shards round-robin (row ``r`` to shard ``r mod k``); train
rows are shuffled with the seed first, so a shard is a fair sample even when
the source file is sorted. Reading every shard interleaved one record at a
time restores the split order, which is how evaluation keeps predictions in
line with the rows.

:func:`tfrecord_dataset` reads them with ``tf.data`` ops only (no
``py_function``): a dataset of file names interleaved into
``TFRecordDataset`` readers, so ``tf.data``'s ``AutoShardPolicy.FILE`` gives
each input worker its own files. Training batches are padded to a bucket edge
(from the train length quantiles, stored in ``prepared.json``) and the last
partial batch is dropped: ``len(bucket_edges)`` shapes, all
``[batch_size, edge]``. Evaluation batches keep every row: the last batch is
filled up to ``batch_size`` with one-token dummy rows and the dataset yields
``(features, label, sample_weight)`` with weight 0 on them, so shapes stay
static and :func:`tfslm.training.evaluation.collect_predictions` drops the dummies.

Example:
    $ tfslm prepare configs/tpu.yaml --output gs://my-bucket/prepared
    $ tfslm train configs/tpu.yaml --set data.tfrecord_dir=gs://my-bucket/prepared

    >>> ds = tfrecord_dataset("gs://my-bucket/prepared", "train", batch_size=128, seed=42)  # doctest: +SKIP
    >>> model.fit(ds, epochs=3)                                                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfslm.errors import ConfigError, RunDirError
from tfslm.data.labels import LabelSpace

__all__ = [
    "prepare",
    "load_prepared",
    "PreparedData",
    "tfrecord_dataset",
    "read_examples",
    "shard_name",
    "PREPARED_FILE",
    "DEFAULT_SHARDS",
]

log = logging.getLogger("tfslm")

PREPARED_FILE = "prepared.json"
TOKENIZER_DIR = "tokenizer"
FORMAT = "tfslm-tfrecords"
FORMAT_VERSION = 1
# 8 files per split: enough for AutoShardPolicy.FILE on up to 8 input workers
# (a v4-32 pod slice has 4 hosts); use --shards for more (a multiple of the workers).
DEFAULT_SHARDS = 8
SPLITS = ("train", "validation", "test")
COMPRESSIONS = ("none", "gzip")
_MAX_OPEN_READERS = 16  # training: files read at once (each a reader with its own buffer)
_SHUFFLE_ROWS = 10_000  # training: row shuffle buffer, on top of the file shuffle and the prepare-time shuffle


def shard_name(split: str, index: int, count: int, compression: str | None = None) -> str:
    """The file name of one shard: ``train-00000-of-00008.tfrecord`` (``.tfrecord.gz`` when GZIP-compressed).

    Example:
        >>> shard_name("train", 3, 8)
        'train-00003-of-00008.tfrecord'
    """
    suffix = ".tfrecord.gz" if (compression or "none").lower() == "gzip" else ".tfrecord"
    return f"{split}-{index:05d}-of-{count:05d}{suffix}"


def _is_remote(path: str) -> bool:
    return "://" in str(path)


def _join(directory: str, name: str) -> str:
    return posixpath.join(directory, name) if _is_remote(directory) else os.path.join(directory, name)


# ---------------------------------------------------------------- writing
def prepare(cfg, output: str | None = None, *, shards: int = DEFAULT_SHARDS, overwrite: bool = False, compression: str = "none") -> dict[str, Any]:
    """Write the config's tokenized, labelled splits as sharded TFRecords plus ``prepared.json`` and the tokenizer.

    Reads the data exactly as ``tfslm train`` does (:func:`tfslm.load_data`,
    the validation split seeded by ``training.seed``) and tokenizes it with the
    tokenizer :func:`tfslm.build_model` would use: a checkpoint's, or a
    WordPiece vocabulary built from the train texts (saved to ``DIR/tokenizer``
    so training uses the very same one).

    Args:
        cfg: a validated :class:`~tfslm.config.Config` with ``data.train_file``.
        output: the directory, local or ``gs://...``; default ``data.tfrecord_dir``.
        shards: files per split (fewer when a split has fewer rows); pick a
            multiple of the number of input workers.
        overwrite: replace a non-empty ``output``.
        compression: ``none`` or ``gzip`` (smaller files, slower reads; see the README).

    Returns:
        the contents of ``prepared.json``.

    Example:
        >>> info = prepare(load_config("configs/quickstart.yaml"), "prepared/quickstart")   # doctest: +SKIP
        >>> info["splits"]["train"]["rows"]                                                # doctest: +SKIP
    """
    import tensorflow as tf

    from tfslm import __version__
    from tfslm.inputs.bucketing import bucket_boundaries, tokenize_cached, tokenizer_fingerprint, _round_up
    from tfslm.data.loading import load_data
    from tfslm.backends.hf_tf import build_tokenizer
    from tfslm.tasks.base import Task

    output = output or cfg.data.tfrecord_dir
    if not output:
        raise ConfigError("--output: required (or set data.tfrecord_dir in the config); give a local directory or gs://bucket/path")
    if not cfg.data.train_file:
        raise ConfigError("data.train_file: required by `tfslm prepare`; give the CSV, TSV, JSON/JSONL or Parquet file to prepare")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"--shards: expected a positive integer, got {shards!r}")
    compression = str(compression).lower()
    if compression not in COMPRESSIONS:
        raise ConfigError(f"--compression: got {compression!r}, expected one of: {', '.join(COMPRESSIONS)}")
    _check_output(output, overwrite)

    task = Task.from_config(cfg)
    data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    tokenizer = build_tokenizer(cfg.model, train_texts=data["train"]["text"])
    max_length = cfg.model.max_length
    tokenized = {s: tokenize_cached(data[s], tokenizer, max_length) for s in SPLITS if s in data}
    edges = bucket_boundaries(tokenized["train"].lengths, max_length, batch_size=cfg.training.batch_size)
    longest_any = max(int(t.lengths.max()) for t in tokenized.values())
    if longest_any > edges[-1]:  # an evaluation row longer than every train row still gets a bucket
        edges = edges + [min(_round_up(longest_any), max_length)]

    label_feature = task.tfrecord_label_feature(data.labels)
    info: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfslm_version": __version__,
        "compression": compression,
        "max_length": max_length,
        "features": {
            "input_ids": {"dtype": "int64", "shape": [None], "stored_as": "int64_list",
                          "meaning": "token ids with special tokens, truncated at max_length, not padded"},
            "label": label_feature,
            "row": {"dtype": "int64", "shape": [], "stored_as": "int64_list", "meaning": "position of the row in its split"},
        },
        "derived_features": {
            "attention_mask": "1 for each stored token, 0 for padding",
            "token_type_ids": "0 (single texts)",
        },
        "model_input_names": list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])),
        "pad_token_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "bucket_edges": [int(e) for e in edges],
        "bucket_edges_batch_size": cfg.training.batch_size,
        "labels": data.labels.to_dict(),
        "task": task.to_dict(),
        "model": {
            "checkpoint": cfg.model.checkpoint, "architecture": cfg.model.architecture,
            "vocab_size": cfg.model.vocab_size if cfg.model.architecture else None,
            "lowercase": cfg.model.lowercase if cfg.model.architecture else None,
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        },
        "source": {
            "train_file": cfg.data.train_file, "validation_file": cfg.data.validation_file, "test_file": cfg.data.test_file,
            "validation_split": cfg.data.validation_split, "seed": cfg.training.seed,
            "text_column": cfg.data.text_column, "label_column": cfg.data.label_column,
        },
        "summary": data.summary(),
        "splits": {},
    }

    def write_all(directory: str) -> None:
        from tfslm.inputs.bucketing import _flat_ids, _label_numpy

        for split, tok in tokenized.items():
            values, offsets = _flat_ids(tok.dataset)
            labels = _label_numpy(tok.dataset)
            n = len(offsets) - 1
            # Train rows are dealt in a seeded random order, so every shard (and
            # every worker's share of shards) is a fair sample of the split.
            order = np.random.default_rng(cfg.training.seed).permutation(n) if split == "train" else np.arange(n)
            count = max(1, min(shards, n))
            names = [shard_name(split, i, count, compression) for i in range(count)]
            options = tf.io.TFRecordOptions(compression_type="GZIP" if compression == "gzip" else "")
            writers = [tf.io.TFRecordWriter(_join(directory, name), options) for name in names]
            try:
                for position, row in enumerate(order):
                    ids = values[offsets[row]:offsets[row + 1]]
                    writers[position % count].write(_example(ids, labels[row], int(row)))
            finally:
                for writer in writers:
                    writer.close()
            lengths = tok.lengths
            info["splits"][split] = {
                "rows": int(n),
                "tokens": int(lengths.sum()),
                "longest": int(lengths.max()),
                "mean_length": round(float(lengths.mean()), 2),
                "order": "shuffled with source.seed, dealt round-robin" if split == "train" else "split order, dealt round-robin",
                "shards": names,
            }
            log.info("prepare %s: %d rows in %d shard(s)", split, n, count)
        _save_tokenizer(tokenizer, _join(directory, TOKENIZER_DIR))
        # prepared.json last: its presence says the directory is complete.
        with tf.io.gfile.GFile(_join(directory, PREPARED_FILE), "w") as handle:
            handle.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")

    if _is_remote(output):
        # Object stores have no atomic directory rename; prepared.json, written
        # last, marks the directory complete, and readers refuse one without it.
        if tf.io.gfile.exists(output):
            tf.io.gfile.rmtree(output)
        tf.io.gfile.makedirs(output)
        write_all(output)
    else:
        from tfslm.atomic import atomic_directory

        with atomic_directory(output) as tmp:
            write_all(os.fspath(tmp))
    return info


def _check_output(output: str, overwrite: bool) -> None:
    import tensorflow as tf

    try:
        exists = tf.io.gfile.exists(output)
        if exists and not tf.io.gfile.isdir(output):
            raise RunDirError(f"{output}: exists and is not a directory; choose another --output")
        if exists and tf.io.gfile.listdir(output) and not overwrite:
            raise RunDirError(f"{output}: not empty; pass --overwrite to replace it, or choose another --output")
    except tf.errors.OpError as exc:
        raise ConfigError(f"--output: cannot access {output} ({_op_message(exc)})") from None


def _example(ids: np.ndarray, label, row: int) -> bytes:
    import tensorflow as tf

    label = np.asarray(label)
    if np.issubdtype(label.dtype, np.integer):
        label_feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    else:
        label_feature = tf.train.Feature(float_list=tf.train.FloatList(value=label.reshape(-1).tolist()))
    return tf.train.Example(features=tf.train.Features(feature={
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids.tolist())),
        "label": label_feature,
        "row": tf.train.Feature(int64_list=tf.train.Int64List(value=[row])),
    })).SerializeToString()


def _save_tokenizer(tokenizer, target: str) -> None:
    """``save_pretrained`` to ``target``, through a local directory when it is remote (gs://)."""
    import tensorflow as tf

    if not _is_remote(target):
        tokenizer.save_pretrained(target)
        return
    with tempfile.TemporaryDirectory(prefix="tfslm-tokenizer-") as local:
        tokenizer.save_pretrained(local)
        tf.io.gfile.makedirs(target)
        for name in sorted(os.listdir(local)):
            tf.io.gfile.copy(os.path.join(local, name), posixpath.join(target, name), overwrite=True)


# ---------------------------------------------------------------- loading
@dataclass
class PreparedData:
    """A directory written by :func:`prepare`: its label space, task, tokenizer and splits.

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
        return [_join(self.directory, name) for name in self.info["splits"][split]["shards"]]

    def summary(self) -> dict[str, Any]:
        """Row counts per split (and per label), as :meth:`tfslm.TextData.summary` gave them at prepare time."""
        return dict(self.info.get("summary") or {s: {"rows": self.num_rows(s)} for s in self.splits})

    def tf_datasets(self, model, tokenizer, *, batch_size: int, splits: Sequence[str] = ("train", "validation"),
                    seed: int | None = 42, static_shapes: bool = True):
        """The named splits as ``tf.data.Dataset``s for ``model`` (see :func:`tfrecord_dataset`); train is shuffled.

        ``tokenizer`` must be the one the rows were prepared with (a checkpoint
        that brings a different one is a ConfigError).
        """
        from tfslm.inputs.bucketing import _feature_names, tokenizer_fingerprint

        prepared = self.info["model"].get("tokenizer_fingerprint")
        if tokenizer is not None and prepared and tokenizer_fingerprint(tokenizer) != prepared:
            # Only a checkpoint brings its own tokenizer; from-scratch models take the prepared one.
            origin = self.info["model"].get("checkpoint") or f"{self.info['model'].get('architecture')} from scratch"
            raise ConfigError(
                f"model.checkpoint: its tokenizer differs from the one {self.directory} was prepared with ({origin}); "
                "train the checkpoint it was prepared for, or run `tfslm prepare` again with this config"
            )
        names = _feature_names(model, tokenizer) if tokenizer is not None else None
        out = []
        for split in splits:
            out.append(tfrecord_dataset(self, split, batch_size=batch_size, shuffle=(split == "train"), seed=seed,
                                        static_shapes=static_shapes, feature_names=names))
        return tuple(out)


def _read_json(path: str) -> dict[str, Any]:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())


def load_prepared(directory: str, *, config=None, key: str = "data.tfrecord_dir") -> PreparedData:
    """Open a directory written by :func:`prepare` (local or ``gs://``); with ``config``, check it matches.

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
    if not _is_remote(directory):
        directory = os.path.expanduser(directory)
    path = _join(directory, PREPARED_FILE)
    try:
        if not tf.io.gfile.exists(path):
            what = "does not exist" if not tf.io.gfile.exists(directory) else f"has no {PREPARED_FILE} (not written by `tfslm prepare`, or it did not finish)"
            raise ConfigError(f"{key}: {directory} {what}; run `tfslm prepare CONFIG --output {directory}` first")
        info = _read_json(path)
        present = set(tf.io.gfile.listdir(directory))
    except tf.errors.OpError as exc:
        raise ConfigError(f"{key}: cannot read {directory} ({_op_message(exc)})") from None
    except ValueError as exc:
        raise ConfigError(f"{key}: {path} is not valid JSON ({exc}); run `tfslm prepare` again") from None
    if info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{key}: {path} is format {info.get('format')!r} version {info.get('format_version')!r}; "
            f"this tfslm reads {FORMAT} version {FORMAT_VERSION}: run `tfslm prepare` again"
        )
    for split, entry in info["splits"].items():
        missing = [name for name in entry["shards"] if name not in present]
        if missing:
            raise ConfigError(f"{key}: {directory} lacks {len(missing)} {split} shard(s), e.g. {missing[0]}; copy the whole directory or run `tfslm prepare` again")
    labels = LabelSpace.from_dict(info["labels"])
    task = Task.from_dict(info["task"])
    if config is not None:
        _check_config(config, info, directory)
    tokenizer = _load_tokenizer(_join(directory, TOKENIZER_DIR), key)
    return PreparedData(directory, info, labels, task, tokenizer, dict((info.get("summary") or {}).get("skipped_rows") or {}))


def _check_config(cfg, info: dict[str, Any], directory: str) -> None:
    """What was fixed at prepare time must not silently differ from the training config."""
    from tfslm.tasks.base import Task

    again = "or run `tfslm prepare` again with this config"
    m = cfg.model
    if m.max_length != info["max_length"]:
        raise ConfigError(f"model.max_length: {m.max_length}, but was prepared with {info['max_length']} ({directory}); "
                          f"set model.max_length: {info['max_length']}, {again}")
    prepared_task, task = info["task"], Task.from_config(cfg).to_dict()
    for name in ("problem_type", "target_names", "score_range", "score_step", "derive_total", "bins", "bin_width"):
        if prepared_task.get(name) != task.get(name):
            section = "model" if name == "problem_type" else "data"
            raise ConfigError(f"{section}.{name}: {task.get(name)!r}, but {directory} was prepared with {prepared_task.get(name)!r}; "
                              f"set it back, {again}")
    names = info["labels"]["names"]
    if cfg.data.labels is not None and [str(x) for x in cfg.data.labels] != list(names):
        raise ConfigError(f"data.labels: {cfg.data.labels}, but {directory} was prepared with {names}; set them back, {again}")
    ordered = Task.from_config(cfg).ordered_labels(cfg.data)
    if ordered is not None and bool(ordered) != bool(info["labels"].get("ordered")):
        raise ConfigError(f"data.ordered: {cfg.data.ordered!r}, but {directory} was prepared with ordered "
                          f"{bool(info['labels'].get('ordered'))}; set it back, {again}")
    prepared_model = info["model"]
    if m.checkpoint and prepared_model.get("architecture"):
        raise ConfigError(f"model.checkpoint: {m.checkpoint!r}, but {directory} was prepared with a from-scratch "
                          f"{prepared_model['architecture']} tokenizer; set model.architecture: {prepared_model['architecture']}, {again}")
    if m.architecture:
        if not prepared_model.get("architecture"):
            raise ConfigError(f"model.architecture: {m.architecture!r} from scratch, but {directory} was prepared with the tokenizer "
                              f"of checkpoint {prepared_model.get('checkpoint')!r}; use model.checkpoint, {again}")
        # The architecture too: a DistilBERT tokenizer is saved without token_type_ids, a BERT one with them.
        for name in ("architecture", "vocab_size", "lowercase"):
            if getattr(m, name) != prepared_model.get(name):
                raise ConfigError(f"model.{name}: {getattr(m, name)!r}, but the tokenizer in {directory} was built with "
                                  f"{prepared_model.get(name)!r}; set model.{name}: {prepared_model.get(name)!r}, {again}")


def _load_tokenizer(path: str, key: str):
    import tensorflow as tf

    from tfslm.backends.hf_tf import _transformers

    auto = _transformers().AutoTokenizer
    try:
        if not _is_remote(path):
            return auto.from_pretrained(path)
        # transformers reads local files only: copy the few tokenizer files over.
        local = tempfile.mkdtemp(prefix="tfslm-tokenizer-")
        try:
            for name in tf.io.gfile.listdir(path):
                tf.io.gfile.copy(posixpath.join(path, name), os.path.join(local, name.rstrip("/")), overwrite=True)
            return auto.from_pretrained(local)
        finally:
            shutil.rmtree(local, ignore_errors=True)
    except (OSError, ValueError, TypeError, tf.errors.OpError) as exc:
        raise ConfigError(f"{key}: cannot load the tokenizer from {path} ({_op_message(exc)}); run `tfslm prepare` again") from None


def _op_message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(text.split())[:200]


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


def _open_info_only(directory: str) -> PreparedData:
    """A :class:`PreparedData` without its tokenizer (the reader needs only prepared.json)."""
    from tfslm.tasks.base import Task

    directory = str(directory)
    try:
        info = _read_json(_join(directory, PREPARED_FILE))
    except Exception as exc:  # not found, unreadable, not JSON
        raise ConfigError(f"{directory}: no readable {PREPARED_FILE} ({_op_message(exc)}); run `tfslm prepare CONFIG --output {directory}` first") from None
    return PreparedData(directory, info, LabelSpace.from_dict(info["labels"]), Task.from_dict(info["task"]), None)


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
):
    """A pure-graph ``tf.data.Dataset`` of ``(features, label)`` batches from a :func:`prepare` directory.

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

    Example:
        >>> train_ds = tfrecord_dataset("prepared/quickstart", "train", batch_size=32, seed=42)   # doctest: +SKIP
        >>> val_ds = tfrecord_dataset("prepared/quickstart", "validation", batch_size=32)          # doctest: +SKIP
        >>> model.fit(train_ds, validation_data=val_ds, epochs=3)                                 # doctest: +SKIP
    """
    import tensorflow as tf

    from tfslm.inputs.bucketing import _MIN_BATCHES_TO_GROUP, _MULTIPLE, _WINDOW_BATCHES, _target_length

    prepared = source if isinstance(source, PreparedData) else _open_info_only(source)
    info = prepared.info
    if split not in info["splits"]:
        raise ConfigError(f"{prepared.directory}: no {split!r} split (prepared splits: {', '.join(prepared.splits)})")
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)
    shuffle = (split == "train") if shuffle is None else bool(shuffle)
    pad_final_batch = static_shapes if pad_final_batch is None else bool(pad_final_batch)
    names = list(feature_names) if feature_names is not None else list(info["model_input_names"])
    edges_list = [int(e) for e in (edges if edges is not None else info["bucket_edges"])]
    edges_t = tf.constant(edges_list, dtype=tf.int32)
    cap = edges_list[-1]
    if info["splits"][split]["longest"] > cap:
        raise ValueError(f"edges: the last edge {cap} is shorter than the longest {split} row ({info['splits'][split]['longest']})")
    pad_id = int(info["pad_token_id"])
    spec = _parse_spec(info)
    label_spec = info["features"]["label"]
    rows = prepared.num_rows(split)
    files = prepared.files(split)
    compression = info.get("compression", "none")
    seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)

    def features_of(ids, lengths):
        out = {"input_ids": ids}
        target = tf.shape(ids)[1]
        if "attention_mask" in names:
            out["attention_mask"] = tf.ensure_shape(tf.sequence_mask(lengths, target, dtype=tf.int32), ids.shape)
        if "token_type_ids" in names:
            out["token_type_ids"] = tf.zeros_like(ids)
        return out

    def pad_to_bucket(ragged_ids):
        lengths = tf.cast(ragged_ids.row_lengths(), tf.int32)
        target = _target_length(tf.reduce_max(lengths), edges_t, static_shapes, cap)
        dense = tf.cast(ragged_ids.to_tensor(default_value=pad_id), tf.int32)
        dense = tf.pad(dense, [[0, 0], [0, target - tf.shape(dense)[1]]], constant_values=pad_id)
        return dense, lengths

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE

    if shuffle:
        records = _records(files, compression, shuffle=True, seed=seeds[0], cycle_length=min(len(files), _MAX_OPEN_READERS))
        records = records.shuffle(max(1, min(rows, _SHUFFLE_ROWS)), seed=seeds[1], reshuffle_each_iteration=True)
        group = rows >= batch_size * _MIN_BATCHES_TO_GROUP  # as the bucketed pipeline: few batches stay random
        window = batch_size * (_WINDOW_BATCHES if group else 1)

        def parse_window(serialized):
            parsed = tf.io.parse_example(serialized, spec)
            ids, labels = parsed["input_ids"], parsed["label"]
            if group:
                # Sort by padded length (a multiple of 8), stable: rows of one band keep
                # their shuffled order, so a batch is not a run of equal-length rows.
                bands = (tf.cast(ids.row_lengths(), tf.int32) + _MULTIPLE - 1) // _MULTIPLE
                order = tf.argsort(bands, stable=True)
                ids, labels = tf.gather(ids, order), tf.gather(labels, order)
            return ids, labels

        def finish(ragged_ids, labels):
            ids, lengths = pad_to_bucket(ragged_ids)
            if static_shapes:
                ids = tf.ensure_shape(ids, [batch_size, None])
            return features_of(ids, lengths), labels

        ds = records.batch(window).map(parse_window, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
        ds = ds.ragged_batch(batch_size, drop_remainder=static_shapes)
        ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if group:
            ds = ds.shuffle(2 * _WINDOW_BATCHES, seed=seeds[2], reshuffle_each_iteration=True)
        n_batches = rows // batch_size if static_shapes else -(-rows // batch_size)
    else:
        records = _records(files, compression, shuffle=False, seed=None, cycle_length=len(files))

        def finish_eval(serialized):
            parsed = tf.io.parse_example(serialized, spec)
            ids, lengths = pad_to_bucket(parsed["input_ids"])
            labels = parsed["label"]
            if not pad_final_batch:
                return features_of(ids, lengths), labels
            real = tf.shape(ids)[0]
            missing = batch_size - real
            # Dummy rows hold one pad token (mask 1 on it): a row with no attended
            # token would make attention softmax over nothing (NaN in low precision).
            ids = tf.pad(ids, [[0, missing], [0, 0]], constant_values=pad_id)
            lengths = tf.concat([lengths, tf.ones([missing], tf.int32)], axis=0)
            labels = tf.pad(labels, [[0, missing]] + [[0, 0]] * (labels.shape.rank - 1))
            weights = tf.concat([tf.ones([real], tf.float32), tf.zeros([missing], tf.float32)], axis=0)
            ids = tf.ensure_shape(ids, [batch_size, None])
            labels = tf.ensure_shape(labels, [batch_size] + list(label_spec["shape"]))
            weights = tf.ensure_shape(weights, [batch_size])
            return features_of(ids, lengths), labels, weights

        ds = records.batch(batch_size).map(finish_eval, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        n_batches = -(-rows // batch_size)
    # A known length lets Keras size its progress bar and the schedule; the
    # auto-shard rewrite removes the assertion, so workers that read only
    # their own files (AutoShardPolicy.FILE) are not held to the total.
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_batches))
    ds = ds.with_options(options).prefetch(tf.data.AUTOTUNE)
    ds.rows = rows
    ds.bucket_edges = edges_list
    return ds
