"""tfslm.training.callbacks: whole-set validation metrics in the logs, tie-breaking early stopping, the monitor.

No training: a Keras model whose output is its input (identity kernel) turns
hand-written logits into "predictions", and early stopping is driven with
hand-written epoch logs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfslm.config import TrainingConfig
from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import Task
from tfslm.training.callbacks import EarlyStoppingWithTieBreak, ValidationMetrics, resolve_monitor

tf = pytest.importorskip("tensorflow")


def _identity_model(width: int):
    """Outputs its input: the dataset's features are the logits."""
    model = tf.keras.Sequential([tf.keras.layers.Dense(width, use_bias=False, kernel_initializer="identity")])
    model.build((None, width))
    return model


# Six rows, 3 classes; predictions (argmax) 0, 1, 1, 1, 2, 0 for truths 0, 0, 1, 1, 2, 2.
LOGITS = np.array([[2, 0, 0], [0, 2, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2], [2, 0, 0]], dtype=np.float32)
Y_TRUE = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
# per class F1: class 0 P=1/2 R=1/2 -> 1/2; class 1 P=2/3 R=1 -> 4/5; class 2 P=1 R=1/2 -> 2/3
MACRO_F1 = (1 / 2 + 4 / 5 + 2 / 3) / 3
# softmax of a 2 among zeros: e^2 / (e^2 + 2) on the arg max, 1 / (e^2 + 2) elsewhere; 4 right, 2 wrong
LOSS = -(4 * math.log(math.e**2 / (math.e**2 + 2)) + 2 * math.log(1 / (math.e**2 + 2))) / 6


def _dataset(batch_size: int = 4):
    return tf.data.Dataset.from_tensor_slices((LOGITS, Y_TRUE)).batch(batch_size)


def test_validation_metrics_puts_val_keys_in_the_logs():
    callback = ValidationMetrics(_dataset(), LabelSpace(("a", "b", "c")))
    callback.set_model(_identity_model(3))
    logs = {"loss": 0.9, "val_loss": 123.0}
    callback.on_epoch_end(0, logs)
    assert logs["loss"] == 0.9, "training keys are left alone"
    assert logs["val_accuracy"] == pytest.approx(4 / 6)
    assert logs["val_macro_f1"] == pytest.approx(MACRO_F1)
    assert logs["val_loss"] == pytest.approx(LOSS, rel=1e-6), "the whole-set loss replaces Keras' batch mean"
    assert "val_num_examples" not in logs and "val_qwk" not in logs
    callback.on_epoch_end(1, {})
    assert [h["epoch"] for h in callback.history] == [1, 2]
    assert callback.history[0]["accuracy"] == pytest.approx(4 / 6)


def test_validation_metrics_adds_qwk_for_ordered_labels_and_takes_a_prefix():
    callback = ValidationMetrics(_dataset(batch_size=5), LabelSpace(("1", "2", "3"), kind="numeric", ordered=True), prefix="dev_")
    callback.set_model(_identity_model(3))
    logs = {}
    callback.on_epoch_end(0, logs)
    assert {"dev_accuracy", "dev_macro_f1", "dev_qwk", "dev_adjacent", "dev_mae", "dev_rmse"} <= set(logs)
    assert logs["dev_mae"] == pytest.approx((0 + 1 + 0 + 0 + 0 + 2) / 6)  # label values 1, 2, 3
    assert logs["dev_adjacent"] == pytest.approx(5 / 6)
    assert not any(k.startswith("val_") for k in logs)


def test_validation_metrics_regression_reports_on_the_score_scale():
    task = Task(problem_type="regression", score_range=(0.0, 100.0), score_step=10.0)
    scaled_pred = np.array([[0.1], [0.52], [0.9]], dtype=np.float32)
    scaled_true = np.array([0.1, 0.5, 1.0], dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((scaled_pred, scaled_true)).batch(2)
    labels = LabelSpace(tuple(str(v) for v in range(0, 101, 10)), kind="numeric", ordered=True)
    callback = ValidationMetrics(dataset, labels, task=task)
    callback.set_model(_identity_model(1))
    logs = {}
    callback.on_epoch_end(0, logs)
    # predictions 10, 50 (52 snapped to the grid), 90 against 10, 50, 100
    assert logs["val_mae"] == pytest.approx(10 / 3, abs=1e-4)
    assert logs["val_exact"] == pytest.approx(2 / 3)
    assert logs["val_loss"] == pytest.approx((0 + 0.02**2 + 0.1**2) / 3, rel=1e-4)


# ---------------------------------------------------------------- early stopping
def _drive(callback, epochs, weights=None):
    """Feed ``epochs`` (dicts of logs) to the callback as Keras' fit would; return the model."""
    model = _identity_model(1)
    callback.set_model(model)
    callback.on_train_begin({})
    for epoch, logs in enumerate(epochs):
        if weights is not None:
            model.set_weights([np.array([[weights[epoch]]], dtype=np.float32)])
        callback.on_epoch_end(epoch, dict(logs))
        if model.stop_training:
            break
    callback.on_train_end({})
    return model


def test_tie_on_the_monitor_goes_to_the_lower_val_loss():
    epochs = [
        {"val_qwk": 0.0, "val_loss": 1.00},
        {"val_qwk": 0.0, "val_loss": 0.80},  # tie on QWK, lower loss: the new best
        {"val_qwk": 0.0, "val_loss": 0.90},  # tie, higher loss: not better
    ]
    callback = EarlyStoppingWithTieBreak(monitor="val_qwk", mode="max", patience=5, restore_best_weights=True)
    model = _drive(callback, epochs, weights=[1.0, 2.0, 3.0])
    assert callback.best_epoch == 1
    assert float(model.get_weights()[0][0, 0]) == 2.0, "the weights of the tie-winning epoch are restored"

    plain = tf.keras.callbacks.EarlyStopping(monitor="val_qwk", mode="max", patience=5, restore_best_weights=True)
    _drive(plain, epochs, weights=[1.0, 2.0, 3.0])
    assert plain.best_epoch == 0, "plain Keras keeps the first of tied epochs (what the tie-break fixes)"


def test_a_real_improvement_still_wins_over_a_lower_loss():
    epochs = [
        {"val_macro_f1": 0.5, "val_loss": 0.5},
        {"val_macro_f1": 0.6, "val_loss": 0.9},  # better metric, worse loss: better
        {"val_macro_f1": 0.55, "val_loss": 0.1},  # worse metric, best loss: not better
    ]
    callback = EarlyStoppingWithTieBreak(monitor="val_macro_f1", mode="max", patience=5)
    _drive(callback, epochs)
    assert callback.best_epoch == 1 and callback.best == pytest.approx(0.6)


def test_ties_with_no_lower_loss_use_up_the_patience():
    epochs = [{"val_qwk": 0.3, "val_loss": 0.5}] + [{"val_qwk": 0.3, "val_loss": 0.6}] * 5
    callback = EarlyStoppingWithTieBreak(monitor="val_qwk", mode="max", patience=2)
    model = _drive(callback, epochs)
    assert model.stop_training and callback.stopped_epoch == 2 and callback.best_epoch == 0


def test_min_mode_tie_break_and_missing_val_loss():
    epochs = [{"val_mae": 40.0, "val_loss": 0.3}, {"val_mae": 40.0, "val_loss": 0.2}, {"val_mae": 40.0}]
    callback = EarlyStoppingWithTieBreak(monitor="val_mae", mode="min", patience=5)
    _drive(callback, epochs)
    assert callback.best_epoch == 1, "an epoch without val_loss never wins a tie"


# ---------------------------------------------------------------- the monitor
CLASSES = LabelSpace(("neg", "pos"))
GRADES = LabelSpace(("0", "1", "2"), kind="numeric", ordered=True)


@pytest.mark.parametrize(
    "monitor, labels, task, expected",
    [
        ("auto", CLASSES, None, ("val_macro_f1", "max")),
        ("auto", GRADES, None, ("val_qwk", "max")),
        ("auto", GRADES, Task(problem_type="ordinal"), ("val_qwk", "max")),
        ("auto", GRADES, Task(problem_type="regression", score_range=(0, 10), score_step=1), ("val_qwk", "max")),
        ("auto", GRADES, Task(problem_type="regression", score_range=(0, 10)), ("val_mae", "min")),
        ("val_loss", CLASSES, None, ("val_loss", "min")),
        ("val_accuracy", CLASSES, None, ("val_accuracy", "max")),
        ("val_rmse", GRADES, None, ("val_rmse", "min")),
        ("val_qwk", CLASSES, None, ("val_qwk", "max")),
    ],
)
def test_resolve_monitor(monitor, labels, task, expected):
    assert resolve_monitor(TrainingConfig(monitor=monitor), labels, task) == expected
