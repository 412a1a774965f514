"""Tokenize a split once, cache it as Arrow, read it back as flat NumPy buffers.

The ``text`` column is tokenized with the batched fast tokenizer through
``datasets.map`` into an Arrow file named by the fingerprint of data +
tokenizer + max_length (reused by the next run, invalidated when any of
the three changes); only ``input_ids`` and ``length`` are stored. The
readers (:mod:`tfslm.inputs.bucketing`, :mod:`tfslm.inputs.tfrecord_writer`)
take the token ids straight from the Arrow buffers (offsets + values, no
Python lists).

Example:
    >>> split = tokenize_cached(data["train"], tokenizer, 256)    # doctest: +SKIP
    >>> values, row_splits = flat_ids(split.dataset)               # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TokenizedSplit",
    "tokenize_cached",
    "tokenizer_fingerprint",
    "flat_ids",
    "label_numpy",
    "column_numpy",
    "CACHE_SUBDIR",
]

CACHE_SUBDIR = "tfslm-tokens"
_CACHE_VERSION = "1"  # bump when the cached columns change
_NUM_PROC_MIN_ROWS = 50_000  # below this, worker start-up costs more than it saves


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
        return column_numpy(self.dataset, "length").astype(np.int64)


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

    from tfslm.data.readers import _quiet_datasets

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


def label_numpy(dataset) -> np.ndarray:
    """Labels as NumPy: int64 class ids, float32 scores, or float32 ``[rows, targets]`` for list cells."""
    import pyarrow as pa

    column = dataset.with_format("arrow")["label"] if dataset._indices is not None else dataset.data.column("label")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(column), -1)
    values = column.to_numpy(zero_copy_only=False)
    return values.astype(np.int64) if np.issubdtype(values.dtype, np.integer) else values.astype(np.float32)


def column_numpy(dataset, name: str) -> np.ndarray:
    column = dataset.with_format("arrow")[name] if dataset._indices is not None else dataset.data.column(name)
    return column.to_numpy()


def flat_ids(dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(values, row_splits)`` of the ``input_ids`` list column, straight from Arrow buffers."""
    import pyarrow as pa

    column = dataset.with_format("arrow")["input_ids"] if dataset._indices is not None else dataset.data.column("input_ids")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column.flatten().to_numpy(zero_copy_only=False)
    offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    return values.astype(np.int32, copy=False), offsets - offsets[0]
