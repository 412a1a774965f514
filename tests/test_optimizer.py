"""tfslm.training.optimizer: warmup and decay steps from the config, the learning rate along the schedule, the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfslm.config import TrainingConfig
from tfslm.tasks.base import Task
from tfslm.training.optimizer import compile_model, create_optimizer_for, schedule_steps

tf = pytest.importorskip("tensorflow")

LR = 1e-3


def _lr(schedule, step: int) -> float:
    return float(schedule(tf.constant(step, tf.int64)))


@pytest.mark.parametrize(
    "epochs, steps_per_epoch, warmup_ratio, expected",
    [(2, 50, 0.1, (100, 10)), (3, 7, 0.25, (21, 5)), (1, 10, 0.0, (10, 0)), (1, 0, 0.1, (1, 0)), (4, 25, 0.06, (100, 6))],
)
def test_schedule_steps(epochs, steps_per_epoch, warmup_ratio, expected):
    assert schedule_steps(TrainingConfig(epochs=epochs, warmup_ratio=warmup_ratio), steps_per_epoch) == expected


def test_linear_warmup_then_linear_decay_to_zero():
    training = TrainingConfig(epochs=2, warmup_ratio=0.1, learning_rate=LR, schedule="linear")
    optimizer, schedule = create_optimizer_for(training, steps_per_epoch=50)  # 100 steps, 10 of warmup
    assert _lr(schedule, 0) == 0.0
    assert _lr(schedule, 5) == pytest.approx(LR / 2)
    assert _lr(schedule, 10) == pytest.approx(LR)  # end of warmup: the peak
    assert _lr(schedule, 55) == pytest.approx(LR / 2)  # halfway through the 90 decay steps
    assert _lr(schedule, 100) == pytest.approx(0.0, abs=1e-12)  # the end
    assert type(optimizer).__name__ == "AdamWeightDecay"  # weight_decay 0.01 by default
    assert optimizer.weight_decay_rate == pytest.approx(0.01)


def test_polynomial_decay_is_quadratic():
    training = TrainingConfig(epochs=1, warmup_ratio=0.1, learning_rate=LR, schedule="polynomial")
    _, schedule = create_optimizer_for(training, steps_per_epoch=110)  # 11 warmup, 99 decay steps
    assert _lr(schedule, 11) == pytest.approx(LR)
    assert _lr(schedule, 11 + 33) == pytest.approx(LR * (2 / 3) ** 2)
    assert _lr(schedule, 110) == pytest.approx(0.0, abs=1e-12)


def test_cosine_after_warmup():
    training = TrainingConfig(epochs=2, warmup_ratio=0.1, learning_rate=LR, schedule="cosine")
    _, schedule = create_optimizer_for(training, steps_per_epoch=50)
    assert _lr(schedule, 0) == 0.0
    assert _lr(schedule, 10) == pytest.approx(LR)
    assert _lr(schedule, 10 + 30) == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi / 3)))
    assert _lr(schedule, 100) == pytest.approx(0.0, abs=1e-9)


def test_constant_after_warmup_and_no_warmup():
    training = TrainingConfig(epochs=1, warmup_ratio=0.2, learning_rate=LR, schedule="constant")
    _, schedule = create_optimizer_for(training, steps_per_epoch=20)
    assert _lr(schedule, 0) == 0.0 and _lr(schedule, 2) == pytest.approx(LR / 2)
    assert _lr(schedule, 4) == pytest.approx(LR) and _lr(schedule, 20) == pytest.approx(LR)
    no_warmup = TrainingConfig(epochs=1, warmup_ratio=0.0, learning_rate=LR, schedule="cosine", weight_decay=0.0)
    optimizer, schedule = create_optimizer_for(no_warmup, steps_per_epoch=20)
    assert _lr(schedule, 0) == pytest.approx(LR), "no warmup: the first step runs at the full rate"
    assert type(optimizer).__name__ == "Adam"  # no weight decay: plain Adam


def _compiled(width: int, task=None):
    model = tf.keras.Sequential([tf.keras.layers.Dense(width)])
    model.build((None, 2))
    return compile_model(model, TrainingConfig(), steps_per_epoch=4, task=task)


def test_compile_model_classification_loss_is_cross_entropy_on_logits():
    model = _compiled(2)
    loss = float(model.loss(tf.constant([1]), tf.constant([[0.0, math.log(3.0)]])))
    assert loss == pytest.approx(-math.log(3 / 4), rel=1e-5)
    x, y = np.zeros((4, 2), np.float32), np.array([0, 1, 1, 0])
    assert "accuracy" in model.evaluate(x, y, verbose=0, return_dict=True)


def test_compile_model_regression_loss_is_mse_on_scaled_targets():
    model = _compiled(1, Task(problem_type="regression", score_range=(0, 10)))
    loss = float(model.loss(tf.constant([0.5, 1.0]), tf.constant([[0.25], [1.0]])))
    assert loss == pytest.approx(0.25**2 / 2)


def _train_embedding(optimizer, steps=4):
    """A 50 x 4 embedding trained on repeated token ids (sparse gradients); returns its table and the gradient types."""
    tf.keras.utils.set_random_seed(0)
    embedding = tf.keras.layers.Embedding(50, 4)
    head = tf.keras.layers.Dense(1)
    kinds = set()
    for step in range(steps):
        ids = tf.constant([[1, 1, 2, 7 + step], [1, 3, 3, 9]])  # repeated rows, and rows that change from step to step
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(head(tf.reduce_mean(embedding(ids), axis=1)) ** 2)
        variables = embedding.trainable_variables + head.trainable_variables
        grads = tape.gradient(loss, variables)
        kinds.add(type(grads[0]).__name__)
        optimizer.apply_gradients(zip(grads, variables))
    return embedding.embeddings.numpy(), kinds


def _without_dense_updates(optimizer):
    for name in ("_resource_apply_sparse_duplicate_indices", "update_step"):
        optimizer.__dict__.pop(name, None)  # back to the class's own sparse path
    return optimizer


@pytest.mark.parametrize("schedule, weight_decay", [("linear", 0.01), ("linear", 0.0), ("cosine", 0.01), ("cosine", 0.0)])
def test_sparse_embedding_gradients_are_applied_as_dense_with_the_same_result(schedule, weight_decay):
    # tf-keras' Adam is not lazy: its sparse path updates every row anyway, in several whole-table passes;
    # tfslm's optimizers apply the summed dense gradient instead (one fused kernel). Same numbers, every row.
    training = TrainingConfig(epochs=1, warmup_ratio=0.0, learning_rate=0.05, schedule=schedule, weight_decay=weight_decay)
    patched, _ = create_optimizer_for(training, steps_per_epoch=4)
    assert {"_resource_apply_sparse_duplicate_indices", "update_step"} & set(patched.__dict__)
    reference, _ = create_optimizer_for(training, steps_per_epoch=4)
    fast, kinds = _train_embedding(patched)
    slow, _ = _train_embedding(_without_dense_updates(reference))
    assert kinds == {"IndexedSlices"}  # the sparse path is what was exercised
    assert not np.allclose(fast, _train_embedding(tf.keras.optimizers.SGD(0.0))[0])  # it trained
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-7)
