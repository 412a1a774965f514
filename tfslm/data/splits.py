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

__all__ = ["split_off_fold", "split_off_validation", "stratified_folds", "stratified_split"]


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


def stratified_folds(strata: Sequence, folds: int, seed: int) -> np.ndarray:
    """The fold (1..``folds``) of each row: every stratum spread evenly over the folds; seeded.

    Rows are shuffled within each stratum, the strata laid end to end and dealt
    out to the folds in turn, so fold sizes differ by at most one row and each
    stratum's count differs by at most one between folds.

    Example:
        >>> stratified_folds([0, 0, 0, 1, 1, 1], 3, seed=0).tolist()
        [2, 3, 1, 3, 2, 1]
    """
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    order = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        rng.shuffle(members)
        order.append(members)
    out = np.zeros(len(strata), dtype=np.int64)
    # One running counter over all strata: a stratum starts where the previous one stopped, so small
    # strata do not all land in fold 1.
    out[np.concatenate(order) if order else np.zeros(0, dtype=np.int64)] = np.arange(len(strata)) % folds + 1
    return out


def split_off_fold(encoded: dict, strata, cfg: DataConfig, seed: int) -> np.ndarray:
    """Cross-validation: fold ``cfg.fold`` of ``cfg.folds`` of the training file becomes ``test``, the rest ``train``.

    Returns the strata of the remaining training rows (for the validation split).
    """
    full = encoded["train"]
    if full.num_rows < cfg.folds:
        raise DataError(
            f"{resolve_path(cfg.train_file)}: data.folds is {cfg.folds} but the training file has only {full.num_rows} "
            f"usable rows; use data.folds of at most {full.num_rows}, or add rows"
        )
    strata = np.asarray(strata)
    assignment = stratified_folds(strata, cfg.folds, seed)
    held_out = assignment == cfg.fold
    encoded["train"], encoded["test"] = full.select(np.flatnonzero(~held_out)), full.select(np.flatnonzero(held_out))
    return strata[~held_out]
