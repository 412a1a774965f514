import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, mean_absolute_error as sk_mae, mean_squared_error

from tfslm.tasks.metrics import (
    accuracy, adjacent_agreement, classification_metrics, confusion_matrix, macro_f1, mean_absolute_error,
    quadratic_weighted_kappa, root_mean_squared_error, score_metrics,
)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    y_true = rng.integers(0, k, 200)
    y_pred = np.clip(y_true + rng.integers(-2, 3, 200), 0, k - 1)
    assert accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert macro_f1(y_true, y_pred, k) == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert quadratic_weighted_kappa(y_true, y_pred, k) == pytest.approx(cohen_kappa_score(y_true, y_pred, weights="quadratic"), abs=1e-9)
    assert mean_absolute_error(y_true * 40, y_pred * 40) == pytest.approx(sk_mae(y_true * 40, y_pred * 40))


def test_confusion_and_edge_cases():
    assert confusion_matrix([0, 1, 1], [0, 1, 0], 3).tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert quadratic_weighted_kappa([1, 1], [1, 1], 3) == 1.0
    assert quadratic_weighted_kappa([], [], 3) == 0.0


def test_classification_metrics_for_scores():
    out = classification_metrics([0, 1, 2], [0, 2, 2], 3, ordered=True, values=[0.0, 40.0, 80.0])
    assert set(out) == {"accuracy", "macro_f1", "qwk", "mae", "rmse", "adjacent"}
    assert out["mae"] == pytest.approx(40.0 / 3)
    assert out["rmse"] == pytest.approx(np.sqrt(40.0 ** 2 / 3))


@pytest.mark.parametrize("seed", range(5))
def test_score_metrics_match_sklearn(seed):
    """Scores on the ENEM grid (0..1000 step 40): QWK over the whole grid, MAE/RMSE on the original scale."""
    rng = np.random.default_rng(seed)
    grid = np.arange(0, 1001, 40)
    true = rng.choice(grid[5:], 150)
    pred = np.clip(true + rng.normal(0, 90, 150), 0, 1000)
    out = score_metrics(true, pred, grid)
    t, p = np.rint(true / 40).astype(int), np.rint(pred / 40).astype(int)
    labels = list(range(len(grid)))  # the full grid: sklearn otherwise keeps only the values it sees
    assert out["qwk"] == pytest.approx(cohen_kappa_score(t, p, weights="quadratic", labels=labels), abs=1e-9)
    assert out["mae"] == pytest.approx(sk_mae(true, pred), abs=1e-9)
    assert out["rmse"] == pytest.approx(np.sqrt(mean_squared_error(true, pred)), abs=1e-9)
    assert out["exact"] == pytest.approx(accuracy_score(t, p), abs=1e-12)
    assert out["adjacent"] == pytest.approx(np.mean(np.abs(t - p) <= 1), abs=1e-12)
    assert root_mean_squared_error(true, pred) == out["rmse"]


def test_adjacent_agreement():
    assert adjacent_agreement([0, 1, 2, 3], [1, 1, 0, 5]) == 0.5
    assert adjacent_agreement([0, 2], [2, 0], tolerance=2) == 1.0
