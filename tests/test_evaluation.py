"""tfslm.training.evaluation: predictions over a whole dataset, and metrics checked against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import Task
from tfslm.training.evaluation import collect_predictions, evaluate_predictions, softmax

# Six rows, 3 classes; predictions (argmax) 0, 1, 1, 1, 2, 0 for truths 0, 0, 1, 1, 2, 2.
LOGITS = np.array([[2, 0, 0], [0, 2, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2], [2, 0, 0]], dtype=np.float32)
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
LABELS = LabelSpace(("food", "science", "sports"))


def test_classification_metrics_equal_the_hand_computed_ones():
    metrics = evaluate_predictions(LOGITS, Y_TRUE, LABELS, with_confusion=True)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # per class F1: food P=1/2 R=1/2 -> 1/2; science P=2/3 R=1 -> 4/5; sports P=1 R=1/2 -> 2/3
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    right, wrong = math.e**2 / (math.e**2 + 2), 1 / (math.e**2 + 2)
    assert metrics["loss"] == pytest.approx(-(4 * math.log(right) + 2 * math.log(wrong)) / 6, rel=1e-9)
    assert metrics["num_examples"] == 6
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows: truth, columns: prediction
    assert "qwk" not in metrics and "mae" not in metrics
    assert "confusion_matrix" not in evaluate_predictions(LOGITS, Y_TRUE, LABELS)


def test_ordered_numeric_labels_add_qwk_and_score_errors():
    labels = LabelSpace(("0", "40", "80"), kind="numeric", ordered=True)
    metrics = evaluate_predictions(LOGITS, Y_TRUE, labels)
    # QWK = 1 - sum(W*O) / sum(W*E), W = (i-j)^2/4, O the confusion matrix above, E = outer(true, pred counts)/n
    # = outer([2,2,2], [2,3,1])/6: sum(W*O) = 1/4 + 1 = 5/4, sum(W*E) = (3.5 + 1.5 + 5.5)/6 = 7/4, QWK = 2/7
    assert metrics["qwk"] == pytest.approx(2 / 7)
    assert metrics["mae"] == pytest.approx((0 + 40 + 0 + 0 + 0 + 80) / 6)
    assert metrics["rmse"] == pytest.approx(math.sqrt((40**2 + 80**2) / 6))
    assert metrics["adjacent"] == pytest.approx(5 / 6)


def test_perfect_and_empty_predictions():
    perfect = evaluate_predictions(np.eye(3, dtype=np.float32) * 50, np.arange(3), LABELS)
    assert perfect["accuracy"] == 1.0 and perfect["macro_f1"] == 1.0 and perfect["loss"] < 1e-12
    empty = evaluate_predictions(np.zeros((0, 3), np.float32), np.zeros((0,), np.int64), LABELS)
    assert empty["num_examples"] == 0 and empty["loss"] == 0.0


def test_regression_metrics_on_the_original_scale():
    task = Task(problem_type="regression", score_range=(0, 100), score_step=10)
    labels = LabelSpace(tuple(str(v) for v in range(0, 101, 10)), kind="numeric", ordered=True)
    scaled_pred = np.array([[0.1], [0.52], [0.9], [0.3]])
    scaled_true = np.array([0.1, 0.5, 1.0, 0.6])
    metrics = evaluate_predictions(scaled_pred, scaled_true, labels, task=task, with_confusion=True)
    # predictions on the grid: 10, 50 (52 snapped), 90, 30 against 10, 50, 100, 60
    assert metrics["loss"] == pytest.approx((0 + 0.02**2 + 0.1**2 + 0.3**2) / 4)  # MSE on the scaled targets
    assert metrics["mae"] == pytest.approx((0 + 0 + 10 + 30) / 4)
    assert metrics["rmse"] == pytest.approx(math.sqrt((10**2 + 30**2) / 4))
    assert metrics["exact"] == pytest.approx(2 / 4)
    assert metrics["adjacent"] == pytest.approx(3 / 4)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (11, 11) and matrix.sum() == 4
    assert matrix[10, 9] == 1 and matrix[6, 3] == 1 and matrix[1, 1] == 1 and matrix[5, 5] == 1


def test_softmax_rows_sum_to_one_and_are_shift_invariant():
    logits = np.array([[1000.0, 1000.0], [0.0, math.log(3.0)]])
    probs = softmax(logits)
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(softmax(logits + 7.0), probs)


# ---------------------------------------------------------------- collect_predictions
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _linear_model(tf, kernel, bias):
    model = tf.keras.Sequential([tf.keras.layers.Dense(kernel.shape[1])])
    model.build((None, kernel.shape[0]))
    model.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def test_collect_predictions_runs_every_batch_in_order(tf):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 4)).astype(np.float32)
    labels = np.array([2, 0, 1, 1, 0, 2, 2])
    kernel, bias = rng.normal(size=(4, 3)), np.array([0.1, -0.2, 0.3])
    model = _linear_model(tf, kernel, bias)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(3)  # 3 + 3 + 1 rows
    logits, y_true = collect_predictions(model, dataset)
    np.testing.assert_allclose(logits, features @ kernel + bias, atol=1e-5)
    assert logits.dtype == np.float32 and y_true.dtype == np.int64 and y_true.tolist() == labels.tolist()
    metrics = evaluate_predictions(logits, y_true, LABELS)
    assert metrics["accuracy"] == pytest.approx(np.mean((features @ kernel + bias).argmax(1) == labels))


def test_collect_predictions_drops_rows_of_weight_zero(tf):
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    model = _linear_model(tf, np.eye(2), np.zeros(2))
    weights = np.array([1, 1, 1, 1, 0, 0], dtype=np.float32)  # a last batch padded to a static shape
    dataset = tf.data.Dataset.from_tensor_slices((features, np.arange(6), weights)).batch(4)
    logits, y_true = collect_predictions(model, dataset)
    np.testing.assert_allclose(logits, features[:4])
    assert y_true.tolist() == [0, 1, 2, 3]


def test_collect_predictions_keeps_float_targets_and_handles_an_empty_dataset(tf):
    model = _linear_model(tf, np.ones((2, 1)), np.zeros(1))
    features = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((features, np.array([0.25, 0.75]))).batch(8)
    logits, y_true = collect_predictions(model, dataset)
    np.testing.assert_allclose(logits[:, 0], [0.3, 0.7], atol=1e-6)
    assert y_true.dtype == np.float32 and y_true.tolist() == [0.25, 0.75]
    logits, y_true = collect_predictions(model, dataset.take(0))
    assert logits.shape[0] == 0 and y_true.shape == (0,)
