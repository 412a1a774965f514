"""How a scorer's raw outputs become scores on the grid (``data.score_decoding``).

Regression predictions shrink towards the mean, and QWK punishes that: a model
whose outputs are well ordered but squeezed into the middle of the scale
scores a low QWK when rounded plainly. Three rules, each fitted once after
training (on the validation outputs, :meth:`RegressionTask.fit_decoding`) and
stored in ``task.json``, so ``evaluate``, ``predict``, the SavedModel and the
card decode identically:

============== ======================================================= ======================
rule           what it does                                            parameters per target
============== ======================================================= ======================
``round``      unscale, clip, round to the nearest grid value          none
``stretch``    first map the outputs linearly so that their mean and   ``(scale, shift)``
               spread (on validation) match the training targets'
``thresholds`` the grid value is the number of cut points an output    one cut per grid gap
               reaches (an "optimized rounder": cuts start at the
               stretched midpoints and move to maximise validation QWK)
============== ======================================================= ======================

Parameters live in the model's output space (scores scaled to [0, 1]) and are
float32 values, so NumPy (float64) and the graph (float32) compare the same
numbers.

Example:
    >>> rng = np.random.default_rng(0)
    >>> true = rng.uniform(0, 1, 200)
    >>> pred = 0.5 + 0.3 * (true - 0.5)                        # squeezed towards the mean
    >>> scale, shift = fit_stretch(pred[:, None], true[:, None])[0]
    >>> round(scale, 2), round(shift, 2)
    (3.33, -1.17)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tfslm.tasks.metrics import quadratic_weighted_kappa

__all__ = ["SCORE_DECODINGS", "DEFAULT_SCORE_DECODING", "MAX_STRETCH", "fit_stretch", "fit_thresholds", "apply_stretch", "threshold_index"]

SCORE_DECODINGS = ("round", "stretch", "thresholds")
DEFAULT_SCORE_DECODING = "stretch"

#: Candidate positions tried per cut point and pass of the threshold search.
_CANDIDATES = 24
_PASSES = 3
#: A stretch never multiplies the outputs' spread by more than this (a model that predicts a constant
#: would otherwise be blown up to noise).
MAX_STRETCH = 20.0


def _f32(values) -> np.ndarray:
    """Values as the float32 numbers the graph will hold, back in float64."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def fit_stretch(outputs, train_targets) -> list[tuple[float, float]]:
    """``(scale, shift)`` per target so that ``outputs * scale + shift`` has the training targets' mean and std.

    Args:
        outputs: ``[rows, targets]`` model outputs (validation), scaled to [0, 1].
        train_targets: ``[rows, targets]`` training targets on the same scale.
    """
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    targets = np.asarray(train_targets, dtype=np.float64).reshape(len(train_targets), -1)
    params = []
    for j in range(outputs.shape[1]):
        spread = float(outputs[:, j].std()) if len(outputs) else 0.0
        scale = float(targets[:, j].std()) / spread if spread > 1e-9 else 1.0
        scale = min(scale, MAX_STRETCH)
        mean = float(outputs[:, j].mean()) if len(outputs) else 0.0
        shift = float(targets[:, j].mean()) - scale * mean
        params.append(tuple(float(v) for v in _f32([scale, shift])))
    return params


def apply_stretch(xp, outputs, params: Sequence[Sequence[float]]):
    """``outputs * scale + shift`` per target column, with ``xp`` NumPy or the graph (:mod:`tfslm.tasks.ops`)."""
    scales = xp.constant([p[0] for p in params])
    shifts = xp.constant([p[1] for p in params])
    return outputs * scales + shifts


def threshold_index(xp, outputs, cuts: Sequence[Sequence[float]]):
    """Per target: how many of its cut points each output reaches (the grid index of the score)."""
    return xp.count_at_least(outputs, xp.constant(cuts))


def _grid_index(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    return (values[:, None] >= cuts[None, :]).sum(axis=1)


def _qwk(values: np.ndarray, true_ids: np.ndarray, cuts: np.ndarray, num_grid: int) -> float:
    return quadratic_weighted_kappa(true_ids, _grid_index(values, cuts), num_grid)


def _initial_cuts(stretch: tuple[float, float], grid_scaled: np.ndarray) -> np.ndarray:
    """The midpoints between grid values, mapped back through the stretch into the output space."""
    scale, shift = stretch
    midpoints = (grid_scaled[:-1] + grid_scaled[1:]) / 2.0
    return (midpoints - shift) / scale


def _search_cut(values, true_ids, cuts, k: int, num_grid: int, lower: float, upper: float) -> float:
    """The best position of cut ``k`` between its neighbours (ties: the one nearest its current place)."""
    low = cuts[k - 1] if k > 0 else lower
    high = cuts[k + 1] if k + 1 < len(cuts) else upper
    if not high > low:
        return float(cuts[k])
    best, best_key = float(cuts[k]), None
    for candidate in np.linspace(low, high, _CANDIDATES + 2)[1:-1].tolist() + [float(cuts[k])]:
        trial = cuts.copy()
        trial[k] = candidate
        key = (_qwk(values, true_ids, trial, num_grid), -abs(candidate - cuts[k]))
        if best_key is None or key > best_key:
            best, best_key = candidate, key
    return best


def fit_thresholds(outputs, true_ids, grid_scaled, stretch: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """Cut points per target that maximise QWK of ``outputs`` against ``true_ids`` (coordinate search).

    Args:
        outputs: ``[rows, targets]`` validation outputs (scaled to [0, 1]).
        true_ids: ``[rows, targets]`` grid index of each true score.
        grid_scaled: the grid values scaled to [0, 1].
        stretch: ``(scale, shift)`` per target (:func:`fit_stretch`): where the search starts.
    """
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    true_ids = np.asarray(true_ids, dtype=np.int64).reshape(len(outputs), -1)
    grid_scaled = np.asarray(grid_scaled, dtype=np.float64)
    num_grid = len(grid_scaled)
    params = []
    for j in range(outputs.shape[1]):
        values = _f32(outputs[:, j])
        cuts = np.sort(_f32(_initial_cuts(stretch[j], grid_scaled)))
        span = float(values.max() - values.min()) if len(values) else 1.0
        lower, upper = float(min(values.min(), cuts[0]) - span), float(max(values.max(), cuts[-1]) + span)
        for _ in range(_PASSES):
            before = cuts.copy()
            for k in range(len(cuts)):
                cuts[k] = _search_cut(values, true_ids[:, j], cuts, k, num_grid, lower, upper)
            cuts = np.sort(_f32(cuts))
            if np.array_equal(cuts, before):
                break
        params.append(tuple(float(c) for c in cuts))
    return params
