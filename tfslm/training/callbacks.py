"""Keras callbacks: whole-validation-set metrics each epoch, early stopping, logs.

``ValidationMetrics`` puts ``val_accuracy``, ``val_macro_f1`` (and ``val_qwk``
for ordered labels, ``val_mae`` for scores) into the epoch logs, so any Keras
callback listed after it (``EarlyStopping(monitor="val_qwk")``, ``CSVLogger``,
``ModelCheckpoint``) can use them.

Example:
    >>> callbacks = default_callbacks("runs/demo", val_ds, data.labels, cfg.training)   # doctest: +SKIP
    >>> model.fit(train_ds, epochs=3, callbacks=callbacks)   # no validation_data: val_loss comes from here too  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import tensorflow as tf

from tfslm.config import TrainingConfig
from tfslm.training.evaluation import evaluate_model
from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import Task
from tfslm.training.backup import TrainingBackup, _TrainingBackupLogic, has_backup

__all__ = ["ValidationMetrics", "EarlyStoppingWithTieBreak", "TrainingBackup", "default_callbacks", "resolve_monitor", "find_callback",
           "for_keras"]

log = logging.getLogger("tfslm")

_LOWER_IS_BETTER = ("loss", "mae", "rmse", "error")


class _ValidationMetricsLogic:
    """The body of :class:`ValidationMetrics`, on whichever Keras's ``Callback`` (see :func:`for_keras`)."""

    def __init__(self, validation_data, labels: LabelSpace, prefix: str = "val_", task=None, windows=None, train_targets=None,
                 scoring_model=None):
        super().__init__()
        self.scoring_model = scoring_model
        self.windows = windows
        self.train_targets = train_targets
        self.validation_data = validation_data
        self.labels = labels
        self.task = Task.resolve(task)
        self.prefix = prefix
        self.history: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        scored = self.scoring_model(self.model) if self.scoring_model is not None else self.model
        metrics = self.task.epoch_logs(evaluate_model(scored, self.validation_data, self.labels, task=self.task, windows=self.windows,
                                                      tune_decoding=True, train_targets=self.train_targets))
        if logs is not None:
            for key, value in metrics.items():
                logs[self.prefix + key] = value
        self.history.append({"epoch": epoch + 1, **metrics})


class ValidationMetrics(_ValidationMetricsLogic, tf.keras.callbacks.Callback):
    """Compute classification metrics over the whole validation set at each epoch end.

    Args:
        validation_data: a ``(features, label)`` ``tf.data.Dataset``.
        labels: the label space (decides whether QWK/MAE are reported).
        prefix: prefix of the log keys.
        task: the run's :class:`~tfslm.tasks.base.Task` (None: single-label classification);
            ``task.epoch_logs`` picks the scalars that go into the logs.
        windows: ``doc_index`` when ``validation_data`` holds text windows.
        train_targets: the training targets; each epoch's metrics are then those of the decoding
            fitted on that epoch's outputs (a score stretch, thresholds), as the run will be saved.
        scoring_model: ``model -> the model to score`` (None: the training model itself), e.g. a
            :class:`~tfslm.training.float32_twin.Float32Twin`, so a mixed-precision run is scored in
            float32, as tfslm saves and serves it (``tfslm train`` scores its epochs on the training
            model: a float32 pass each epoch costs twice the bf16 one).
    """


class _TieBreakLogic:
    """The body of :class:`EarlyStoppingWithTieBreak`, on whichever Keras's ``EarlyStopping`` (see :func:`for_keras`)."""

    best_loss = float("inf")  # val_loss of the best epoch (saved and restored by TrainingBackup)
    current_loss = float("inf")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best_loss = float("inf")
        self.current_loss = float("inf")

    def _is_improvement(self, monitor_value, reference_value):
        # A tf-keras hook, overridden (so it stays here); EarlyStopping's own test is reached through the backend.
        from tfslm.backends import get_backend

        if get_backend().keras_internals.is_improvement(self, monitor_value, reference_value):
            return True
        return bool(monitor_value == reference_value and self.current_loss < self.best_loss)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        self.current_loss = float(loss) if loss is not None else float("inf")
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch:
            self.best_loss = self.current_loss


class EarlyStoppingWithTieBreak(_TieBreakLogic, tf.keras.callbacks.EarlyStopping):
    """``EarlyStopping`` where a tie on the monitored metric goes to the epoch with the lower ``val_loss``.

    QWK, accuracy or exact agreement often tie early in training (a model that
    still predicts one value scores a QWK of exactly 0 epoch after epoch); plain
    early stopping would then keep the first epoch although the loss improved.
    """


_KINDS = {ValidationMetrics: (_ValidationMetricsLogic, "Callback"), EarlyStoppingWithTieBreak: (_TieBreakLogic, "EarlyStopping"),
          TrainingBackup: (_TrainingBackupLogic, "BackupAndRestore")}
_VARIANTS: dict[tuple[type, str], type] = {}


def for_keras(kind: type, keras=None) -> type:
    """``kind`` (:class:`ValidationMetrics`, :class:`EarlyStoppingWithTieBreak`, :class:`TrainingBackup`) built on ``keras``'s callback class.

    The classes above subclass tf-keras's (transformers' models train there); a Keras 3
    model (the keras_hub backend) needs Keras 3 callbacks: one class per Keras, made once.

    Example:
        >>> import keras                                             # doctest: +SKIP
        >>> for_keras(ValidationMetrics, keras).__mro__[-3].__module__  # doctest: +SKIP
        'keras.src.callbacks.callback'
    """
    from tfslm.backends import keras_module

    keras = keras or keras_module()
    if keras is tf.keras or kind not in _KINDS:
        return kind
    key = (kind, keras.__name__)
    if key not in _VARIANTS:
        logic, base = _KINDS[kind]
        _VARIANTS[key] = type(kind.__name__, (logic, getattr(keras.callbacks, base)),
                              {"__doc__": kind.__doc__, "__module__": __name__, "tfslm_kind": kind})
    return _VARIANTS[key]


def resolve_monitor(training: TrainingConfig, labels: LabelSpace, task: Task | None = None) -> tuple[str, str]:
    """``(monitor, mode)``: ``auto`` watches ``task.default_monitor`` (val_qwk for ordered labels and scores
    on a grid, val_mae for scores without a grid, val_macro_f1 otherwise)."""
    monitor = training.monitor
    if monitor == "auto":
        monitor = Task.resolve(task).default_monitor(labels)
    mode = "min" if any(word in monitor for word in _LOWER_IS_BETTER) else "max"
    return monitor, mode


def default_callbacks(
    run_dir, validation_data, labels: LabelSpace, training: TrainingConfig, task=None, windows=None, *,
    backup_dir=None, delete_backup: bool = True, train_targets=None, scoring_model=None,
) -> list:
    """The callbacks ``tfslm train`` uses, for your own ``model.fit``.

    Whole-set validation metrics (every ``val_`` key, ``val_loss`` included: pass no
    ``validation_data`` to ``fit``, which would run the same forward pass again), early stopping on ``training.monitor`` that
    restores the best epoch's weights at the end (also when patience is off),
    ``logs/history.csv`` and TensorBoard events under ``logs/``; with
    ``backup_dir``, a :class:`~tfslm.training.backup.TrainingBackup` there (every epoch
    end and every ``training.backup_every_steps`` steps), so running the same
    ``fit`` again after a crash resumes instead of starting over.

    Args:
        run_dir: the run directory; logs go to ``run_dir/logs``.
        validation_data: the validation ``tf.data.Dataset``.
        labels: the label space.
        training: the ``training`` config section.
        task: the :class:`~tfslm.tasks.base.Task` (``data.task``); None for classification.
        windows: ``doc_index`` when ``validation_data`` holds text windows (``data.long_text: chunk``).
        backup_dir: back up there and resume from there (None: no backup).
        delete_backup: delete the backup when ``fit`` returns (``tfslm train``
            keeps it until the run directory is complete).
        train_targets: the training split's targets (``data["train"]["label"]``), so a score
            stretch is fitted to their spread each epoch (None: the validation targets').
        scoring_model: passed to :class:`ValidationMetrics` (e.g. ``Float32Twin(model)`` for a
            mixed-precision model whose float32 copy you will save).

    Example:
        >>> callbacks = default_callbacks("runs/mine", val_ds, data.labels, cfg.training,
        ...                               backup_dir="runs/mine/backup")          # doctest: +SKIP
        >>> model.fit(train_ds, epochs=3, callbacks=callbacks)   # doctest: +SKIP
    """
    logs = Path(run_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    resuming = backup_dir is not None and has_backup(backup_dir)
    tensorboard_dir = logs / "tensorboard"
    if tensorboard_dir.exists() and not resuming:  # events of an earlier, unfinished attempt would mix in
        shutil.rmtree(tensorboard_dir)
    from tfslm.backends import get_backend

    keras = get_backend().keras
    task = Task.resolve(task)
    monitor, mode = resolve_monitor(training, labels, task)
    patience = training.early_stopping_patience or training.epochs + 1
    validation_metrics = for_keras(ValidationMetrics, keras)(validation_data, labels, task=task, windows=windows, train_targets=train_targets,
                                                           scoring_model=scoring_model)
    # The last epoch is always watched, so there is a best epoch to restore.
    start = min(getattr(training, "min_epochs", 0), training.epochs - 1)
    early_stopping = for_keras(EarlyStoppingWithTieBreak, keras)(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True, verbose=1,
                                               start_from_epoch=start)
    callbacks = [validation_metrics, early_stopping]
    if backup_dir is not None:
        # After the two above (it saves what they computed for the epoch) and
        # before CSVLogger (it trims history.csv to the backup before the logger opens it).
        callbacks.append(
            for_keras(TrainingBackup, keras)(
                backup_dir, getattr(training, "backup_every_steps", None), early_stopping=early_stopping,
                validation_metrics=validation_metrics, csv_path=logs / "history.csv", delete_checkpoint=delete_backup,
            )
        )
    callbacks += [
        # With a backup the file is appended to: TrainingBackup empties it for a fresh start.
        keras.callbacks.CSVLogger(os.fspath(logs / "history.csv"), append=backup_dir is not None),
        keras.callbacks.TensorBoard(log_dir=os.fspath(tensorboard_dir), write_graph=False, profile_batch=0),
    ]
    return callbacks


def find_callback(callbacks, kind):
    """The first callback in ``callbacks`` that is a ``kind``; a ValueError naming the kinds present if none is.

    Example:
        >>> early_stopping = find_callback(default_callbacks(...), EarlyStoppingWithTieBreak)   # doctest: +SKIP
    """
    for callback in callbacks:
        if isinstance(callback, kind) or getattr(callback, "tfslm_kind", None) is kind:  # for_keras variants too
            return callback
    present = ", ".join(type(c).__name__ for c in callbacks) or "none"
    raise ValueError(f"callbacks: no {kind.__name__} among them (got {present}); add one, e.g. with tfslm.default_callbacks")
