"""Evaluation metrics in plain NumPy: accuracy, macro-F1, per-label P/R/F1, quadratic weighted kappa, MAE.

Each takes integer label ids (and the number of labels where it matters) so it
can be tested alone and used outside Keras.

Example:
    >>> quadratic_weighted_kappa([0, 1, 2, 2], [0, 1, 1, 2], num_labels=3)
    0.8
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "softmax",
    "sigmoid",
    "accuracy",
    "macro_f1",
    "confusion_matrix",
    "quadratic_weighted_kappa",
    "mean_absolute_error",
    "root_mean_squared_error",
    "adjacent_agreement",
    "classification_metrics",
    "score_metrics",
    "softmax",
    "precision_recall_f1",
    "per_label_metrics",
]


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits.

    Example:
        >>> softmax([[0.0, 0.0]]).tolist()
        [[0.5, 0.5]]
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits) -> np.ndarray:
    """The logistic function, elementwise, in float64 (no overflow warnings for large logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(logits)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    exp = np.exp(logits[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out


def _ids(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of exact matches.

    Example:
        >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
        0.75
    """
    y_true, y_pred = _ids(y_true), _ids(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """Counts: rows are true labels, columns predicted labels."""
    y_true, y_pred = _ids(y_true), _ids(y_pred)
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> float:
    """Unweighted mean of per-label F1 over the labels present in truth or prediction.

    Matches ``sklearn.metrics.f1_score(average="macro")`` (labels absent from
    both sides are left out, and an undefined F1 counts as 0).

    Example:
        >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], num_labels=2), 4)
        0.7333
    """
    matrix = confusion_matrix(y_true, y_pred, num_labels).astype(np.float64)
    tp = np.diag(matrix)
    support_true, support_pred = matrix.sum(axis=1), matrix.sum(axis=0)
    present = (support_true + support_pred) > 0
    if not present.any():
        return 0.0
    denom = support_true + support_pred
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def quadratic_weighted_kappa(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> float:
    """Cohen's kappa with quadratic weights over ordered label ids 0..num_labels-1.

    Matches ``sklearn.metrics.cohen_kappa_score(weights="quadratic")``; 1.0 when
    both sides are one and the same constant (sklearn returns NaN there).

    Example:
        >>> quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3], num_labels=4)
        1.0
    """
    matrix = confusion_matrix(y_true, y_pred, num_labels).astype(np.float64)
    total = matrix.sum()
    if total == 0:
        return 0.0
    idx = np.arange(num_labels, dtype=np.float64)
    weights = (idx[:, None] - idx[None, :]) ** 2
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / total
    denom = float((weights * expected).sum())
    if denom == 0.0:
        return 1.0 if float((weights * matrix).sum()) == 0.0 else 0.0
    return float(1.0 - (weights * matrix).sum() / denom)


def mean_absolute_error(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Mean absolute difference, in the units of the values given.

    Example:
        >>> mean_absolute_error([600, 800], [640, 720])
        60.0
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return float(np.mean(np.abs(y_true - y_pred))) if y_true.size else 0.0


def root_mean_squared_error(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Square root of the mean squared difference, in the units of the values given."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2))) if y_true.size else 0.0


def adjacent_agreement(y_true: Sequence[int], y_pred: Sequence[int], tolerance: int = 1) -> float:
    """Share of predictions within ``tolerance`` steps of the truth on an ordered scale (ids)."""
    y_true, y_pred = _ids(y_true), _ids(y_pred)
    return float(np.mean(np.abs(y_true - y_pred) <= tolerance)) if y_true.size else 0.0


def score_metrics(y_true: Sequence[float], y_pred: Sequence[float], grid: Sequence[float] | None = None) -> dict[str, float]:
    """Metrics of predicted scores on their original scale.

    ``mae`` and ``rmse`` always; with the score ``grid`` (e.g. 0, 40, ..., 1000),
    both sides are snapped to the nearest grid point and ``qwk``, ``exact``
    (same grid point) and ``adjacent`` (within one grid step) are added.

    Example:
        >>> score_metrics([0, 40, 80], [0, 80, 80], grid=[0, 40, 80])["adjacent"]
        1.0
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    out = {"mae": mean_absolute_error(y_true, y_pred), "rmse": root_mean_squared_error(y_true, y_pred)}
    if grid is not None:
        grid = np.asarray(grid, dtype=np.float64)
        t, p = grid_ids(y_true, grid), grid_ids(y_pred, grid)
        out["qwk"] = quadratic_weighted_kappa(t, p, len(grid))
        out["exact"] = accuracy(t, p)
        out["adjacent"] = adjacent_agreement(t, p)
    return out


def grid_ids(values: Sequence[float], grid: Sequence[float]) -> np.ndarray:
    """Index of the nearest grid point of each value."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    grid = np.asarray(grid, dtype=np.float64)
    if not values.size:
        return np.zeros((0,), dtype=np.int64)
    return np.abs(values[:, None] - grid[None, :]).argmin(axis=1).astype(np.int64)


def classification_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_labels: int,
    *,
    ordered: bool = False,
    values: Sequence[float] | None = None,
) -> dict[str, float]:
    """The standard metric set for a label space.

    Args:
        y_true, y_pred: label ids.
        num_labels: size of the label space.
        ordered: add quadratic weighted kappa (``qwk``) for ordered labels.
        values: numeric value of each label (scores); adds ``mae`` and ``rmse`` on that scale.

    Example:
        >>> classification_metrics([0, 1, 2], [0, 2, 2], 3, ordered=True)["accuracy"]
        0.6666666666666666
    """
    out = {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, num_labels),
    }
    if ordered:
        out["qwk"] = quadratic_weighted_kappa(y_true, y_pred, num_labels)
        out["adjacent"] = adjacent_agreement(y_true, y_pred)
    if values is not None:
        scale = np.asarray(values, dtype=np.float64)
        out["mae"] = mean_absolute_error(scale[_ids(y_true)], scale[_ids(y_pred)])
        out["rmse"] = root_mean_squared_error(scale[_ids(y_true)], scale[_ids(y_pred)])
    return out


def precision_recall_f1(true_positives, predicted, actual) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from counts (arrays or numbers); 0 where undefined, as sklearn's ``zero_division=0``.

    Example:
        >>> [v.tolist() for v in precision_recall_f1([2], [4], [2])]
        [[0.5], [1.0], [0.6666666666666666]]
    """
    tp = np.asarray(true_positives, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = predicted + actual
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def per_label_metrics(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each label of a single-label task (one-vs-rest), by label name.

    Example:
        >>> per_label_metrics([0, 0, 1], [0, 1, 1], ["a", "b"])["b"]
        {'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666, 'support': 1}
    """
    matrix = confusion_matrix(y_true, y_pred, len(names))
    precision, recall, f1 = precision_recall_f1(np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1))
    support = matrix.sum(axis=1)
    return {
        str(name): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }
