"""Optimizer and learning-rate schedule: warmup then decay, from the model backend (transformers' ``create_optimizer``).

Example:
    >>> optimizer, schedule = create_optimizer_for(cfg.training, steps_per_epoch=100)  # doctest: +SKIP
    >>> compile_model(model, cfg.training, steps_per_epoch=100)                        # doctest: +SKIP
"""

from __future__ import annotations

from tfslm.config import TrainingConfig

__all__ = ["create_optimizer_for", "compile_model", "schedule_steps"]


def schedule_steps(training: TrainingConfig, steps_per_epoch: int) -> tuple[int, int]:
    """``(total_steps, warmup_steps)`` over all epochs."""
    total = max(1, int(steps_per_epoch) * training.epochs)
    return total, int(round(training.warmup_ratio * total))


def create_optimizer_for(training: TrainingConfig, steps_per_epoch: int):
    """An AdamW optimizer with linear warmup then the configured decay; returns ``(optimizer, schedule)``.

    "linear" and "polynomial" (power 2) are ``transformers.create_optimizer``
    itself; "cosine" and "constant" put a Keras decay behind the same warmup
    (:meth:`tfslm.backends.base.Backend.create_optimizer`).

    Args:
        training: the ``training`` section (learning_rate, warmup_ratio, weight_decay, schedule, epochs).
        steps_per_epoch: optimizer steps in one epoch.
    """
    from tfslm.backends import get_backend

    total, warmup = schedule_steps(training, steps_per_epoch)
    return get_backend().create_optimizer(
        learning_rate=training.learning_rate, total_steps=total, warmup_steps=warmup,
        weight_decay=training.weight_decay, schedule=training.schedule,
    )


def _ScaledMSE():
    """MSE between the ``[batch, targets]`` outputs and targets given as ``[batch]`` or ``[batch, targets]``."""
    import tensorflow as tf

    class ScaledMSE(tf.keras.losses.Loss):
        def call(self, y_true, y_pred):
            y_pred = tf.cast(y_pred, tf.float32)
            y_true = tf.reshape(tf.cast(y_true, tf.float32), tf.shape(y_pred))
            return tf.reduce_mean(tf.square(y_pred - y_true), axis=-1)

    return ScaledMSE(name="mse")


def compile_model(model, training: TrainingConfig, *, steps_per_epoch: int, task=None, **compile_options):
    """Compile ``model`` with the configured optimizer and the task's loss.

    The loss is explicit, so the model trains under any Keras ``fit`` loop, not
    only transformers' built-in loss: sparse categorical cross-entropy on
    logits for classes (ordinal included), mean squared error on the [0, 1]
    scaled targets for regression. (transformers' own TF loss picks sparse
    cross-entropy whenever ``num_labels > 1``, which is wrong for several
    regression targets.) Losses are computed in float32, also under mixed
    precision. ``compile_options`` (``jit_compile``, ``steps_per_execution``)
    go to ``model.compile``; see :func:`tfslm.training.performance.resolve_performance`.

    Example:
        >>> model = compile_model(model, cfg.training, steps_per_epoch=len(train_ds))  # doctest: +SKIP
    """
    import tensorflow as tf

    from tfslm.training.performance import Float32SparseCategoricalCrossentropy

    optimizer, _ = create_optimizer_for(training, steps_per_epoch)
    if task is not None and task.is_regression:
        model.compile(optimizer=optimizer, loss=_ScaledMSE(), **compile_options)
        return model
    model.compile(
        optimizer=optimizer,
        loss=Float32SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        **compile_options,
    )
    return model
