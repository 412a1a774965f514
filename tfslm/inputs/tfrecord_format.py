"""The on-disk format of ``tfslm prepare`` directories: file names, version, local and remote paths.

Shared by the writer (:mod:`tfslm.inputs.tfrecord_writer`), the reader
(:mod:`tfslm.inputs.tfrecord_reader`) and the checks
(:mod:`tfslm.inputs.tfrecord_checks`); :mod:`tfslm.inputs.tfrecords`
describes the layout.

Example:
    >>> shard_name("train", 3, 8)
    'train-00003-of-00008.tfrecord'
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

__all__ = [
    "PREPARED_FILE", "TOKENIZER_DIR", "FORMAT", "FORMAT_VERSION", "DEFAULT_SHARDS", "SPLITS", "COMPRESSIONS",
    "shard_name", "is_remote", "join", "read_json", "op_message",
]

PREPARED_FILE = "prepared.json"
TOKENIZER_DIR = "tokenizer"
FORMAT = "tfslm-tfrecords"
FORMAT_VERSION = 1
# 8 files per split: enough for AutoShardPolicy.FILE on up to 8 input workers
# (a v4-32 pod slice has 4 hosts); use --shards for more (a multiple of the workers).
DEFAULT_SHARDS = 8
SPLITS = ("train", "validation", "test")
COMPRESSIONS = ("none", "gzip")


def shard_name(split: str, index: int, count: int, compression: str | None = None) -> str:
    """The file name of one shard: ``train-00000-of-00008.tfrecord`` (``.tfrecord.gz`` when GZIP-compressed).

    Example:
        >>> shard_name("train", 3, 8, "gzip")
        'train-00003-of-00008.tfrecord.gz'
    """
    suffix = ".tfrecord.gz" if (compression or "none").lower() == "gzip" else ".tfrecord"
    return f"{split}-{index:05d}-of-{count:05d}{suffix}"


def is_remote(path: str) -> bool:
    """``gs://``, ``ram://`` and other URLs go through ``tf.io.gfile``."""
    return "://" in str(path)


def join(directory: str, name: str) -> str:
    return posixpath.join(directory, name) if is_remote(directory) else os.path.join(directory, name)


def read_json(path: str) -> dict[str, Any]:
    """A JSON file, local or remote (``tf.io.gfile``)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())


def op_message(exc: BaseException) -> str:
    """A TF (or other) error's message on one line, at most 200 characters."""
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(text.split())[:200]
