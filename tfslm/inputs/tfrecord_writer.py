"""``tfslm prepare``: a config's tokenized, labelled splits as sharded TFRecords plus ``prepared.json`` and the tokenizer.

See :mod:`tfslm.inputs.tfrecords` for the layout and why.

Example:
    >>> info = prepare(load_config("configs/quickstart.yaml"), "prepared/quickstart")   # doctest: +SKIP
    >>> info["splits"]["train"]["rows"]                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
from typing import Any

import numpy as np

from tfslm.inputs.tfrecord_checks import check_output, check_prepare_arguments
from tfslm.inputs.tfrecord_format import (
    DEFAULT_SHARDS,
    FORMAT,
    FORMAT_VERSION,
    PREPARED_FILE,
    SPLITS,
    TOKENIZER_DIR,
    is_remote,
    join,
    shard_name,
)

__all__ = ["prepare"]

log = logging.getLogger("tfslm")


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
    from tfslm.backends import use_backend

    use_backend(cfg.model.backend)  # the tokenizer is the one that backend trains and saves
    output = output or cfg.data.tfrecord_dir
    compression = check_prepare_arguments(output, train_file=cfg.data.train_file, shards=shards, compression=compression)
    check_output(output, overwrite)
    data, task, tokenizer, tokenized, edges = _tokenized_splits(cfg)
    info = _prepared_info(cfg, data, task, tokenizer, edges, compression)

    def write_all(directory: str) -> None:
        for split, tok in tokenized.items():
            info["splits"][split] = _write_split(directory, split, tok, seed=cfg.training.seed, shards=shards, compression=compression)
        _save_tokenizer(tokenizer, join(directory, TOKENIZER_DIR))
        _write_info(directory, info)  # last: its presence says the directory is complete

    _write_into(output, write_all)
    return info


def _tokenized_splits(cfg):
    """Load and label the data as ``tfslm train`` does, tokenize every split, and pick the shared bucket edges."""
    from tfslm.backends import get_backend
    from tfslm.data.loading import load_data
    from tfslm.inputs.bucketing import shared_edges
    from tfslm.inputs.token_cache import tokenize_cached
    from tfslm.tasks.base import Task

    task = Task.from_config(cfg)
    data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    tokenizer = get_backend().build_tokenizer(cfg.model, train_texts=data["train"]["text"])
    max_length = cfg.model.max_length
    tokenized = {s: tokenize_cached(data[s], tokenizer, max_length) for s in SPLITS if s in data}
    # An evaluation row longer than every train row still gets a bucket.
    edges = shared_edges({s: t.lengths for s, t in tokenized.items()}, max_length, batch_size=cfg.training.batch_size)
    return data, task, tokenizer, tokenized, edges


def _prepared_info(cfg, data, task, tokenizer, edges, compression: str) -> dict[str, Any]:
    """``prepared.json`` without its ``splits`` entries (filled as each split is written)."""
    from tfslm._version import __version__
    from tfslm.inputs.token_cache import tokenizer_fingerprint

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfslm_version": __version__,
        "compression": compression,
        "max_length": cfg.model.max_length,
        "features": {
            "input_ids": {"dtype": "int64", "shape": [None], "stored_as": "int64_list",
                          "meaning": "token ids with special tokens, truncated at max_length, not padded"},
            "label": task.tfrecord_label_feature(data.labels),
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


def _write_split(directory: str, split: str, tok, *, seed: int, shards: int, compression: str) -> dict[str, Any]:
    """One split's shards; returns its ``prepared.json`` entry."""
    import tensorflow as tf

    from tfslm.inputs.token_cache import flat_ids, label_numpy

    values, offsets = flat_ids(tok.dataset)
    labels = label_numpy(tok.dataset)
    n = len(offsets) - 1
    # Train rows are dealt in a seeded random order, so every shard (and
    # every worker's share of shards) is a fair sample of the split.
    order = np.random.default_rng(seed).permutation(n) if split == "train" else np.arange(n)
    count = max(1, min(shards, n))
    names = [shard_name(split, i, count, compression) for i in range(count)]
    options = tf.io.TFRecordOptions(compression_type="GZIP" if compression == "gzip" else "")
    writers = [tf.io.TFRecordWriter(join(directory, name), options) for name in names]
    try:
        for position, row in enumerate(order):
            ids = values[offsets[row]:offsets[row + 1]]
            writers[position % count].write(_example(ids, labels[row], int(row)))
    finally:
        for writer in writers:
            writer.close()
    lengths = tok.lengths
    log.info("prepare %s: %d rows in %d shard(s)", split, n, count)
    return {
        "rows": int(n),
        "tokens": int(lengths.sum()),
        "longest": int(lengths.max()),
        "mean_length": round(float(lengths.mean()), 2),
        "order": "shuffled with source.seed, dealt round-robin" if split == "train" else "split order, dealt round-robin",
        "shards": names,
    }


def _write_info(directory: str, info: dict[str, Any]) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(join(directory, PREPARED_FILE), "w") as handle:
        handle.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def _write_into(output: str, write_all) -> None:
    """Run ``write_all(directory)``: into a temporary sibling renamed into place locally, straight into ``output`` remotely."""
    import tensorflow as tf

    if is_remote(output):
        # Object stores have no atomic directory rename; prepared.json, written
        # last, marks the directory complete, and readers refuse one without it.
        if tf.io.gfile.exists(output):
            tf.io.gfile.rmtree(output)
        tf.io.gfile.makedirs(output)
        write_all(output)
        return
    from tfslm.atomic import atomic_directory

    with atomic_directory(output) as tmp:
        write_all(os.fspath(tmp))


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

    if not is_remote(target):
        tokenizer.save_pretrained(target)
        return
    with tempfile.TemporaryDirectory(prefix="tfslm-tokenizer-") as local:
        tokenizer.save_pretrained(local)
        tf.io.gfile.makedirs(target)
        for name in sorted(os.listdir(local)):
            tf.io.gfile.copy(os.path.join(local, name), posixpath.join(target, name), overwrite=True)
