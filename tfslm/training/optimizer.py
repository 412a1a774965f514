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

    Example:
        >>> optimizer, schedule = create_optimizer_for(cfg.training, steps_per_epoch=100)   # doctest: +SKIP
        >>> float(schedule(0)), float(schedule(10))                                          # doctest: +SKIP
    """
    from tfslm.backends import get_backend

    total, warmup = schedule_steps(training, steps_per_epoch)
    return get_backend().create_optimizer(
        learning_rate=training.learning_rate, total_steps=total, warmup_steps=warmup,
        weight_decay=training.weight_decay, schedule=training.schedule,
    )


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
