"""Optimizer and learning-rate schedule: transformers' ``create_optimizer`` with warmup.

Example:
    >>> optimizer, schedule = create_optimizer_for(cfg.training, steps_per_epoch=100)  # doctest: +SKIP
    >>> compile_model(model, cfg.training, steps_per_epoch=100)                        # doctest: +SKIP
"""

from __future__ import annotations

from tfslm.config import TrainingConfig

__all__ = ["create_optimizer_for", "compile_model", "schedule_steps"]

_NO_DECAY = ["LayerNorm", "layer_norm", "bias"]


def schedule_steps(training: TrainingConfig, steps_per_epoch: int) -> tuple[int, int]:
    """``(total_steps, warmup_steps)`` over all epochs."""
    total = max(1, int(steps_per_epoch) * training.epochs)
    return total, int(round(training.warmup_ratio * total))


def create_optimizer_for(training: TrainingConfig, steps_per_epoch: int):
    """An AdamW optimizer with linear warmup then the configured decay; returns ``(optimizer, schedule)``.

    "linear" and "polynomial" (power 2) are ``transformers.create_optimizer``
    itself; "cosine" and "constant" put a Keras decay behind the same warmup.

    Args:
        training: the ``training`` section (learning_rate, warmup_ratio, weight_decay, schedule, epochs).
        steps_per_epoch: optimizer steps in one epoch.
    """
    import tensorflow as tf
    from transformers import create_optimizer
    from transformers.optimization_tf import AdamWeightDecay, WarmUp

    total, warmup = schedule_steps(training, steps_per_epoch)
    lr = training.learning_rate
    if training.schedule in ("linear", "polynomial"):
        return create_optimizer(
            init_lr=lr,
            num_train_steps=total,
            num_warmup_steps=warmup,
            weight_decay_rate=training.weight_decay,
            power=1.0 if training.schedule == "linear" else 2.0,
        )
    decay_steps = max(1, total - warmup)
    if training.schedule == "cosine":
        schedule = tf.keras.optimizers.schedules.CosineDecay(lr, decay_steps=decay_steps)
    else:  # constant
        schedule = tf.keras.optimizers.schedules.PolynomialDecay(lr, decay_steps, end_learning_rate=lr)
    if warmup:
        schedule = WarmUp(initial_learning_rate=lr, decay_schedule_fn=schedule, warmup_steps=warmup)
    if training.weight_decay > 0:
        optimizer = AdamWeightDecay(
            learning_rate=schedule, weight_decay_rate=training.weight_decay, epsilon=1e-8,
            exclude_from_weight_decay=_NO_DECAY,
        )
    else:
        optimizer = tf.keras.optimizers.Adam(learning_rate=schedule, epsilon=1e-8)
    return optimizer, schedule


def compile_model(model, training: TrainingConfig, *, steps_per_epoch: int, task=None, **compile_options):
    """Compile ``model`` with the configured optimizer and the task's loss (``task.keras_loss``).

    ``task``: the run's :class:`~tfslm.tasks.base.Task` (None: single-label
    classification). The loss is explicit, so the model trains under any Keras ``fit`` loop, not
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
    from tfslm.tasks.base import Task

    task = Task.resolve(task)
    optimizer, _ = create_optimizer_for(training, steps_per_epoch)
    model.compile(optimizer=optimizer, loss=task.keras_loss(), metrics=task.keras_metrics(), **compile_options)
    return model
