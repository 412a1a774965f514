"""Splitting: a seeded, stratified validation split when there is no validation file.

Example:
    >>> train, val = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
    >>> len(train), len(val)
    (6, 2)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tfslm.config import DataConfig, resolve_path
from tfslm.errors import DataError

__all__ = ["stratified_split", "split_off_validation"]


def stratified_split(label_ids: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train, validation), keeping each label's share; seeded.

    Every label with at least two rows keeps one in train and gets at least one
    in validation; a label with one row stays in train.

    Example:
        >>> train, val = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
        >>> sorted(np.asarray([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
        [0, 1]
    """
    label_ids = np.asarray(label_ids)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(label_ids):
        members = np.flatnonzero(label_ids == label)
        rng.shuffle(members)
        n_val = int(round(len(members) * fraction))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def split_off_validation(encoded: dict, strata, cfg: DataConfig, seed: int) -> None:
    """Hold out ``cfg.validation_split`` of train, stratified by ``strata``, when there is no validation file."""
    train_idx, val_idx = stratified_split(strata, cfg.validation_split, seed)
    if len(val_idx) == 0:
        raise DataError(
            f"{resolve_path(cfg.train_file)}: too few rows ({encoded['train'].num_rows}) to split off a validation set; "
            "add rows, raise data.validation_split, or give data.validation_file"
        )
    full = encoded["train"]
    encoded["train"], encoded["validation"] = full.select(train_idx), full.select(val_idx)
