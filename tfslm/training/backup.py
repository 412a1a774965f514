"""Preemption-safe training: back up while fitting, resume after a crash or ``kill -9``.

:class:`TrainingBackup` is Keras' ``BackupAndRestore`` (model weights,
optimizer state, epoch and step in a ``tf.train.CheckpointManager`` under
``backup_dir/chief``; on the keras_hub backend, Keras 3's ``epoch-N.weights.h5``
and the ``position.json`` that names it under ``backup_dir/keras``, at epoch ends only,
as Keras 3 resumes at epoch starts) plus the state of tfslm's own callbacks under
``backup_dir/tfslm``: early stopping's best value, patience count, best epoch
and best weights, the per-epoch validation metrics and logs. A ``fit`` started
again with the same callbacks and backup directory continues where the backup
stopped, mid-epoch included, and ends as an uninterrupted run would: the same
number of epochs, one ``history.csv`` row per epoch, the best epoch's weights.

``tfslm train`` backs up under ``run_dir/backup`` at every epoch end and every
``training.backup_every_steps`` optimizer steps, and deletes the backup once
``metrics.json`` is written; re-running the same command resumes.

Example (your own ``fit``; rerun the same script after a crash):
    >>> callbacks = tfslm.default_callbacks("runs/mine", val_ds, data.labels, cfg.training,
    ...                                     backup_dir="runs/mine/backup")       # doctest: +SKIP
    >>> model.fit(train_ds, epochs=3, callbacks=callbacks)   # doctest: +SKIP

What a resume reproduces: weights, optimizer slots and step counter (so the
learning-rate schedule continues), the epoch and step, early stopping and the
logs, and the data order. Keras skips the steps already done by running
fewer steps in the resumed epoch, but from a fresh iterator, which would
restart that epoch's shuffled order (some rows twice, some not at all);
``tfslm train`` therefore feeds ``fit`` one seeded stream over all epochs
started after the steps the backup covers (:func:`training_stream`), so the
resumed run gets exactly the batches the interrupted one had left. Keras
users with their own ``fit`` can do the same. What differs: dropout draws
(the random state is not in the checkpoint), so a resumed run is close to,
not bitwise equal to, an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfslm.atomic import atomic_file, atomic_write_json, atomic_write_text
from tfslm.errors import RunDirError
from tfslm.training.interrupt import TrainingInterrupted, stop_requested

__all__ = [
    "TrainingBackup", "BACKUP_DIRNAME", "has_backup", "backup_position", "check_unfinished_run", "delete_backup",
    "steps_done", "training_stream",
]

log = logging.getLogger("tfslm")

BACKUP_DIRNAME = "backup"  # run_dir/backup, present only while a run is unfinished
_STATE_DIRNAME = "tfslm"  # beside Keras' chief/ (and workertemp_*/) inside the backup directory
_STATE_FILE = "state.json"
_STATE_VERSION = 1
# Keys that may change between an interrupted run and its resume: they do not
# touch the training math (where the run lives, what happens after training).
_RESUME_SAFE_KEYS = ("output_dir", "run_name", "training.backup_every_steps", "export.", "hub.")


# ----------------------------------------------------------------- helpers
def _internals():
    """tf-keras' private state, reached only through the backend (:class:`tfslm.backends.hf_tf.KerasInternals`)."""
    from tfslm.backends import get_backend

    return get_backend().keras_internals


def has_backup(backup_dir: str | os.PathLike) -> bool:
    """Whether ``backup_dir`` holds a checkpoint that a new ``fit`` would resume from."""
    return _internals().latest_backup(backup_dir) is not None


def backup_position(backup_dir: str | os.PathLike) -> dict[str, int] | None:
    """``{"epoch": e, "step": s}`` (0-based) of the checkpoint in ``backup_dir``, read without a model; None if absent."""
    path = _internals().latest_backup(backup_dir)
    if path is None:
        return None
    try:
        epoch, step = _internals().backup_counters(path)
    except (tf.errors.OpError, OSError, ValueError, KeyError):
        return None
    return {"epoch": epoch, "step": step}


def steps_done(position: dict[str, int] | None, steps_per_epoch: int) -> int:
    """Optimizer steps a backup at ``position`` (from :func:`backup_position`) covers.

    Mirrors how tf_keras resumes (``maybe_load_initial_counters_from_ckpt``):
    a step recorded on an epoch's last step means the next epoch starts fresh.
    """
    if not position or position.get("epoch", -1) < 0:
        return 0
    epoch, step = int(position["epoch"]), int(position.get("step", -1))
    if step < 0 or step >= steps_per_epoch - 1:
        return (epoch + 1) * steps_per_epoch
    return epoch * steps_per_epoch + step + 1


def training_stream(train_ds, steps_per_epoch: int, position: dict[str, int] | None = None, *, file_shards: int = 1):
    """The training batches as one seeded stream over all epochs, started after the steps a backup covers.

    ``fit(training_stream(ds, n, pos), steps_per_epoch=n)`` sees epoch k as
    the k-th pass over ``ds``, so a run resumed mid-epoch gets exactly the
    batches the uninterrupted run had left: no row seen twice, none skipped.
    (Iterating ``ds`` afresh would restart the interrupted epoch's order.)

    With ``file_shards`` > 1 (a multi-worker cluster reading its own files,
    ``AutoShardPolicy.FILE``), each worker's stream holds 1/``file_shards`` of
    the batches, so each skips that share; the order is then approximate
    (workers' files differ in size).

    Example:
        >>> model.fit(training_stream(train_ds, len(train_ds), {"epoch": 1, "step": 36}),
        ...           steps_per_epoch=len(train_ds), epochs=3)                    # doctest: +SKIP
    """
    stream = train_ds.repeat()
    done = steps_done(position, steps_per_epoch) // max(1, file_shards)
    return stream.skip(done) if done else stream


def delete_backup(backup_dir: str | os.PathLike) -> None:
    """Remove a backup directory (a finished run no longer needs it)."""
    shutil.rmtree(backup_dir, ignore_errors=True)


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _config_differences(saved: dict, current: dict) -> list[str]:
    old, new = _flatten(saved), _flatten(current)
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k) and not any(k == s or (s.endswith(".") and k.startswith(s)) for s in _RESUME_SAFE_KEYS)]


def check_unfinished_run(run_dir: str | os.PathLike, config: dict, *, overwrite: bool = False) -> dict[str, int] | None:
    """Decide what to do with an unfinished run's backup before training into ``run_dir``.

    With ``overwrite`` the backup is deleted (training starts over). Otherwise
    the run's ``config.yaml`` must equal ``config`` (the resolved config as
    nested dicts) except for keys that do not change training (``output_dir``,
    ``run_name``, ``training.backup_every_steps``, ``export.*``, ``hub.*``);
    a difference raises a one-line :class:`RunDirError` naming the keys,
    because resuming would silently mix two configurations.

    Returns the backup's position (``{"epoch", "step"}``, 0-based) when the
    run will resume, else None.

    Example:
        >>> check_unfinished_run("runs/demo", config_to_dict(cfg))   # doctest: +SKIP
        {'epoch': 1, 'step': 36}
    """
    import yaml

    run_dir = Path(run_dir)
    backup_dir = run_dir / BACKUP_DIRNAME
    if not backup_dir.exists():
        return None
    if overwrite:
        log.info("--overwrite: discarding the unfinished run's backup under %s", backup_dir)
        delete_backup(backup_dir)
        return None
    if not has_backup(backup_dir):
        return None  # killed before its first backup: nothing to resume, nothing to mix
    position = backup_position(backup_dir) or {"epoch": -1, "step": -1}
    where = "a backup" if position["epoch"] < 0 else f"backup at epoch {position['epoch'] + 1}" + (
        f", step {position['step'] + 1}" if position["step"] >= 0 else ""
    )
    fix = "rerun with the same config (and --set values) to resume it, or pass --overwrite to start over"
    config_path = run_dir / "config.yaml"
    try:
        saved = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise RunDirError(f"{run_dir}: holds an unfinished run ({where}) but its config.yaml is missing or unreadable; pass --overwrite to start over") from None
    differing = _config_differences(saved if isinstance(saved, dict) else {}, config)
    if differing:
        old, new = _flatten(saved), _flatten(config)
        shown = ", ".join(f"{k} ({old.get(k)!r} in the run, {new.get(k)!r} now)" for k in differing[:4])
        more = f" and {len(differing) - 4} more" if len(differing) > 4 else ""
        raise RunDirError(f"{run_dir}: holds an unfinished run ({where}) whose config differs in {shown}{more}; {fix}")
    return position


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tf.Tensor):
        return _jsonable(value.numpy())
    return value


def _sync_history_csv(path: Path, records: list[dict], separator: str = ",") -> None:
    """Make a ``CSVLogger`` file hold exactly one row per epoch the backup covers.

    Rows of epochs the backup does not cover (written before a kill that came
    before the epoch's backup) are dropped: that epoch runs again. A covered
    epoch without a row (a kill between the backup and the row) gets its row
    back from the saved logs. Existing rows are kept byte for byte.
    """
    covered = len(records)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines = text.splitlines(keepends=True)
    if not lines:
        if not covered:
            return
        keys = sorted(records[0]["logs"])
        header = ["epoch"] + keys
        lines = [_csv_line(header, separator)]
    header = next(csv.reader([lines[0]], delimiter=separator))
    rows: dict[int, str] = {}
    for line in lines[1:]:
        fields = next(csv.reader([line], delimiter=separator), None)
        try:
            epoch = int(fields[0]) if fields else -1
        except ValueError:
            continue
        if 0 <= epoch < covered and epoch not in rows:
            rows[epoch] = line if line.endswith(("\n", "\r")) else line + "\r\n"
    for record in records:
        if record["epoch"] not in rows:
            logs = record["logs"]
            rows[record["epoch"]] = _csv_line([record["epoch"]] + [logs.get(k, "NA") for k in header[1:]], separator)
    new_text = lines[0] + "".join(rows[e] for e in sorted(rows))
    if new_text != text:
        atomic_write_text(path, new_text)


def _csv_line(values: list, separator: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator).writerow(values)  # excel dialect, as CSVLogger writes
    return buffer.getvalue()


# ----------------------------------------------------------------- callback
class _TrainingBackupLogic:
    """The body of :class:`TrainingBackup`, on whichever Keras's ``BackupAndRestore`` (see :func:`for_keras`).

    What differs between the two Keras lives in the backend's ``keras_internals``: how a
    checkpoint is written and restored, and whether a backup can resume mid-epoch (tf-keras
    can; Keras 3 resumes at epoch starts, so there the backups are made at epoch ends only).
    """

    def __init__(self, backup_dir, save_every_steps: int | None = None, *, early_stopping=None,
                 validation_metrics=None, csv_path=None, delete_checkpoint: bool = True):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint)
        if save_every_steps is not None and (isinstance(save_every_steps, bool) or int(save_every_steps) < 1):
            raise ValueError(f"save_every_steps: expected None or an integer >= 1, got {save_every_steps!r}")
        self.save_every_steps = int(save_every_steps) if save_every_steps else None
        self.early_stopping = early_stopping
        self.validation_metrics = validation_metrics
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.resumed_from: dict[str, int] | None = None
        self._records: list[dict] = []
        self._restored_logs: list[dict] = []
        self._steps: int | None = None
        self._last_backup_step = 0
        self._epochs_run = 0
        self._saved_best = None

    # -- paths and roles
    @property
    def _state_dir(self) -> Path:
        return Path(self.backup_dir) / _STATE_DIRNAME

    def _is_chief(self) -> bool:
        # Under MultiWorkerMirroredStrategy every worker saves the checkpoint (a
        # collective), but only the chief's lands in backup_dir; our files follow suit.
        return bool(getattr(self.model.distribute_strategy.extended, "should_checkpoint", True))

    def _implements_train_batch_hooks(self):
        # A tf-keras hook, overridden (so it stays here): Keras asks it when it builds
        # its CallbackList, before on_train_begin, whether to call the batch hooks at all.
        # Always: a SIGTERM is answered with a backup at the next step boundary.
        return True

    # -- Keras hooks
    def on_train_begin(self, logs=None):
        self._steps = (self.params or {}).get("steps")
        if self._steps:
            # The integer mode makes Keras resume at the recorded step; epoch ends
            # record the epoch's last step, which Keras reads as "next epoch".
            self.save_freq = self.save_every_steps or int(self._steps)
        else:
            self.save_freq = "epoch"
            if self.save_every_steps:
                log.warning("backup: the training dataset's size is unknown, so backups happen at epoch ends only")
        self._epochs_run = 0
        self.resumed_from = None
        self._restored_logs = []
        internals = _internals()
        if self.save_every_steps and not internals.step_backups:
            log.info("backup: at epoch ends only (training.backup_every_steps is ignored: %s)", internals.step_backups_missing)
        restored = internals.restore_backup(self, logs)  # the checkpoint, if there is one, into the model and optimizer
        epoch, step = internals.initial_counters(self.model, self._steps)
        if not restored:
            self._start_fresh()
            return
        self._restore_state(epoch)
        self._last_backup_step = epoch * (self._steps or 0) + step
        total_epochs = (self.params or {}).get("epochs")
        es = self.early_stopping
        stopped = bool(es is not None and getattr(es, "stopped_epoch", 0))
        if stopped and total_epochs:
            # Early stopping had ended this run before the kill: no more epochs.
            internals.set_backup_position(self.model, epoch=total_epochs - 1, step=self._steps - 1 if self._steps else None)
        self.resumed_from = {"epoch": int(epoch) + 1, "step": int(step), "steps_per_epoch": int(self._steps or 0)}
        if stopped:
            what = f"after early stopping at epoch {es.stopped_epoch + 1}"
        elif total_epochs and epoch >= total_epochs:
            what = f"after the last epoch ({total_epochs})"
        else:
            what = f"from epoch {epoch + 1}, step {step}" + (f" of {self._steps}" if self._steps else "")
        log.info("resuming %s (backup under %s)", what, self.backup_dir)

    def on_train_batch_begin(self, batch, logs=None):
        pass  # the step is recorded when a backup is made (see on_train_batch_end)

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last step this execution ran (Keras passes
        # step + steps_per_execution - 1), so counts are in optimizer steps.
        signum = stop_requested()
        internals = _internals()
        if self._steps and batch + 1 >= self._steps:
            return  # the epoch's last step: the epoch-end backup follows (and stops on a pending signal)
        if not self._steps or not internals.step_backups:
            if signum is not None:
                # No step backup is possible (unknown epoch length, or a Keras that resumes at epoch starts):
                # stop now; the rerun resumes from the last epoch-end backup and repeats this epoch's steps.
                backed_up = has_backup(self.backup_dir)
                log.warning("backup: none mid-epoch (%s); a rerun %s", internals.step_backups_missing or "the epoch length is unknown",
                            "repeats this epoch from its start" if backed_up else "starts over")
                raise TrainingInterrupted(signum, self.backup_dir if backed_up else None)
            return
        current_epoch = internals.current_epoch(self)
        done = current_epoch * self._steps + batch + 1
        if signum is not None or (self.save_every_steps and done - self._last_backup_step >= self.save_every_steps):
            internals.set_backup_position(self.model, step=batch)
            internals.write_backup(self, epoch=current_epoch, batch=batch)
            self._last_backup_step = done
        if signum is not None:
            raise TrainingInterrupted(signum, self.backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        self._epochs_run += 1
        chief = self._is_chief()
        if chief:
            best_file = self._save_best_weights()
            self._records.append(self._epoch_record(epoch, logs, best_file))
            self._write_state()
        internals = _internals()
        internals.set_backup_position(self.model, epoch=epoch, step=self._steps - 1 if self._steps else None)
        internals.write_backup(self, epoch=epoch)
        self._last_backup_step = (epoch + 1) * (self._steps or 0)
        if chief:
            self._prune_best_weights()
        signum = stop_requested()
        if signum is not None:
            raise TrainingInterrupted(signum, self.backup_dir)

    def on_train_end(self, logs=None):
        self._merge_history()
        _internals().fit_ended(self.model)
        super().on_train_end(logs)
        if self.delete_checkpoint and self._is_chief():
            delete_backup(self.backup_dir)

    # -- state
    def _start_fresh(self) -> None:
        """No checkpoint: leftovers of an attempt killed before its first backup must not leak in."""
        self._records = []
        self._last_backup_step = 0
        if self._is_chief():
            shutil.rmtree(self._state_dir, ignore_errors=True)
            if self.csv_path is not None and self.csv_path.exists():
                self.csv_path.unlink()
            self._write_state()

    def _load_state(self) -> dict:
        import json

        path = self._state_dir / _STATE_FILE
        if not path.is_file():
            return {"version": _STATE_VERSION, "steps_per_epoch": self._steps, "epochs": []}
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{path}: unreadable backup state ({exc}); delete {self.backup_dir} (or pass --overwrite) to start over") from None
        if state.get("version") != _STATE_VERSION:
            raise RunDirError(f"{path}: backup state version {state.get('version')!r}, expected {_STATE_VERSION}; delete {self.backup_dir} (or pass --overwrite) to start over")
        return state

    def _restore_state(self, epoch: int) -> None:
        state = self._load_state()
        saved_steps = state.get("steps_per_epoch")
        if saved_steps and self._steps and saved_steps != self._steps:
            raise RunDirError(
                f"{self.backup_dir}: the backup was made with {saved_steps} steps per epoch, the training data now gives "
                f"{self._steps}; the data changed since the interrupted run. Restore it, or delete the backup (--overwrite) to start over"
            )
        records = [r for r in state.get("epochs", []) if r["epoch"] < epoch]  # what the checkpoint covers
        if [r["epoch"] for r in records] != list(range(epoch)):
            raise RunDirError(
                f"{self.backup_dir}: the checkpoint is at epoch {epoch + 1} but the saved callback state covers "
                f"{len(records)} epochs; delete the backup (--overwrite) to start over"
            )
        self._records = records
        self._restored_logs = [r["logs"] for r in records]
        if self.validation_metrics is not None:
            self.validation_metrics.history = [r["validation"] for r in records if r.get("validation") is not None]
        if records and self.early_stopping is not None:
            self._restore_early_stopping(records[-1]["early_stopping"])
        if self._is_chief():
            self._write_state()  # drop records the checkpoint does not cover
            self._prune_best_weights()
            if self.csv_path is not None:
                _sync_history_csv(self.csv_path, records)

    def _restore_early_stopping(self, saved: dict) -> None:
        es = self.early_stopping
        es.wait = saved["wait"]
        es.stopped_epoch = saved["stopped_epoch"]
        es.best = saved["best"]
        es.best_epoch = saved["best_epoch"]
        if "best_loss" in saved and hasattr(es, "best_loss"):
            es.best_loss = saved["best_loss"]
        es.best_weights = None
        if saved.get("best_weights"):
            path = self._state_dir / saved["best_weights"]
            if not path.is_file():
                raise RunDirError(f"{path}: missing from the backup (early stopping's best weights); delete the backup (--overwrite) to start over")
            with np.load(path) as stored:
                es.best_weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        self._saved_best = es.best_weights

    def _epoch_record(self, epoch: int, logs, best_file: str | None) -> dict:
        record: dict[str, Any] = {"epoch": int(epoch), "logs": _jsonable(dict(logs or {}))}
        vm = self.validation_metrics
        if vm is not None and vm.history and vm.history[-1].get("epoch") == epoch + 1:
            record["validation"] = _jsonable(vm.history[-1])
        es = self.early_stopping
        if es is not None:
            record["early_stopping"] = {
                "wait": int(es.wait),
                "stopped_epoch": int(es.stopped_epoch),
                "best": None if es.best is None else float(es.best),  # Keras 3: None before the first watched epoch
                "best_epoch": int(es.best_epoch),
                "best_weights": best_file,
            }
            if hasattr(es, "best_loss"):
                record["early_stopping"]["best_loss"] = float(es.best_loss)
        return record

    def _save_best_weights(self) -> str | None:
        """Write early stopping's best weights when they changed this epoch; return the file's name."""
        es = self.early_stopping
        if es is None or getattr(es, "best_weights", None) is None:
            return None
        name = f"best-epoch-{int(es.best_epoch) + 1}.npz"
        if es.best_weights is not self._saved_best or not (self._state_dir / name).is_file():
            # EarlyStopping assigns a new list on every improvement, so identity tells a new best.
            with atomic_file(self._state_dir / name, "wb", encoding=None) as handle:
                np.savez(handle, *es.best_weights)
            self._saved_best = es.best_weights
        return name

    def _prune_best_weights(self) -> None:
        keep = None
        if self._records and self._records[-1].get("early_stopping"):
            keep = self._records[-1]["early_stopping"].get("best_weights")
        for path in self._state_dir.glob("best-epoch-*.npz"):
            if path.name != keep:
                path.unlink(missing_ok=True)

    def _write_state(self) -> None:
        state = {"version": _STATE_VERSION, "steps_per_epoch": self._steps, "epochs": self._records}
        atomic_write_json(self._state_dir / _STATE_FILE, state)

    def _merge_history(self) -> None:
        """Put the epochs before the resume in front of this fit's ``History`` (the one ``fit`` returns)."""
        if not self._restored_logs:
            return
        from tfslm.backends import get_backend

        history_cls = get_backend().keras.callbacks.History
        history = getattr(self.model, "history", None)
        if self._epochs_run == 0 or not isinstance(history, history_cls):
            # No epoch ran in this fit (all were done, or early stopping had ended
            # the run): Keras never set model.history, so fit would return None.
            history = history_cls()
            history.set_model(self.model)
            history.on_train_begin()
            history.set_params(self.params)
            self.model.history = history
        earlier = len(self._restored_logs)
        keys = list(dict.fromkeys([k for logs in self._restored_logs for k in logs] + list(history.history)))
        history.history = {
            key: [logs.get(key, math.nan) for logs in self._restored_logs]
            + list(history.history.get(key, [math.nan] * len(history.epoch)))
            for key in keys
        }
        history.epoch = list(range(earlier)) + list(history.epoch)


class TrainingBackup(_TrainingBackupLogic, tf.keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` at every epoch end and every ``save_every_steps`` steps, with tfslm's callback state.

    Put it after ``ValidationMetrics`` and the early stopping callback, and
    before ``CSVLogger`` (``append=True``), as :func:`tfslm.default_callbacks`
    does: its ``on_epoch_end`` then sees their results for the epoch, and on a
    resume it restores their state after they have reset themselves.

    An epoch end writes, in this order: the best weights if early stopping
    found a new best (``backup_dir/tfslm/best-epoch-N.npz``), the per-epoch
    record (logs, validation metrics, early-stopping state), then the Keras
    checkpoint. A kill between two of these leaves records that the checkpoint
    does not cover yet; a resume keeps only the records of the epochs the
    checkpoint covers, so everything agrees on where training stands. Old
    best-weights files are removed only after a later checkpoint supersedes
    them.

    Differences from Keras' ``BackupAndRestore``: with ``save_every_steps`` it
    still backs up at every epoch end (Keras does one or the other); it counts
    optimizer steps, also with ``steps_per_execution`` > 1, and records the last
    step done (Keras records the first step of the last execution, which
    repeats steps on resume); it skips a step backup on an epoch's last step,
    as the epoch-end backup with the validation results follows; a run that
    early stopping ended stays ended when resumed.

    Args:
        backup_dir: a directory for this run's backup only.
        save_every_steps: also back up every this many optimizer steps
            (None: only at epoch ends). Needs a training dataset of known size.
        early_stopping: the ``EarlyStopping`` callback whose state to keep.
        validation_metrics: the :class:`~tfslm.training.callbacks.ValidationMetrics` whose ``history`` to keep.
        csv_path: the ``CSVLogger`` file to keep in step with the backup.
        delete_checkpoint: delete the backup when ``fit`` ends (``tfslm train``
            passes False and deletes it once the run is saved, so a crash while
            evaluating or exporting does not repeat the training).

    Attributes:
        resumed_from: ``{"epoch", "step", "steps_per_epoch"}`` (epoch 1-based,
            step = steps of it already done) when this ``fit`` resumed, else None.

    Example:
        >>> es = tf.keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)  # doctest: +SKIP
        >>> backup = TrainingBackup("runs/mine/backup", 500, early_stopping=es)                # doctest: +SKIP
        >>> model.fit(train_ds, validation_data=val_ds, epochs=3, callbacks=[es, backup])      # doctest: +SKIP
        >>> backup.resumed_from      # after a rerun that resumed                              # doctest: +SKIP
        {'epoch': 2, 'step': 500, 'steps_per_epoch': 1200}
    """
