"""``hub.push: epoch``: push the best-so-far model after each improving epoch, in the background.

The course pushes during training with ``PushToHubCallback``; here
:class:`EpochHubPush` snapshots the model (``save_pretrained`` into a temporary
run directory with the run's ``labels.json``, ``task.json`` and ``config.yaml``)
at the end of an epoch that improved ``training.monitor``, and one background
thread uploads it as one commit (:func:`tfslm.publish.hub.push_run`), so
training does not wait for the network. One push at a time: if the previous
one is still running, only the latest snapshot waits (older ones are dropped).
A failed epoch push logs one line and training goes on; the final push after
training (always run) first waits for the background one (:meth:`EpochHubPush.wait`).

Example:
    >>> pusher = EpochHubPush("runs/tiny", "me/tiny", tokenizer, monitor="val_macro_f1")   # doctest: +SKIP
    >>> model.fit(train_ds, epochs=3, callbacks=[*callbacks, pusher]); pusher.wait()       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
from pathlib import Path

import tensorflow as tf

from tfslm.errors import one_line
from tfslm.run_dir import CONFIG_FILE, LABELS_FILE, METRICS_FILE, MODEL_DIR, TASK_FILE

__all__ = ["EpochHubPush"]

log = logging.getLogger("tfslm")


class EpochHubPush(tf.keras.callbacks.Callback):
    """Push the best-so-far model as one commit after each epoch that improved ``monitor``.

    Args:
        run_dir: the run directory being written (its labels/task/config files go up with the model).
        repo_id: ``owner/name`` of the Hub repository.
        tokenizer: the run's tokenizer, saved beside the weights.
        monitor: the ``logs`` key to watch, e.g. ``val_macro_f1``; ``mode`` "max" or "min".
        private, revision, timeout: as :func:`tfslm.publish.hub.push_run`.
    """

    def __init__(self, run_dir, repo_id: str, tokenizer, *, monitor: str, mode: str = "max", private: bool = False,
                 revision: str | None = None, timeout: float = 30.0) -> None:
        super().__init__()
        self.run_dir, self.repo_id, self.tokenizer = Path(run_dir), repo_id, tokenizer
        self.monitor, self.mode = monitor, mode
        self.private, self.revision, self.timeout = private, revision, timeout
        self.best = math.inf if mode == "min" else -math.inf
        self.pushed: list[int] = []  # epochs (1-based) whose push landed
        self.failed: list[int] = []  # epochs whose push failed (logged)
        self._lock = threading.Lock()
        self._pending: tuple[int, Path, str] | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ Keras hooks
    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if not (value < self.best if self.mode == "min" else value > self.best):
            return
        self.best = value
        try:
            snapshot = self._snapshot(epoch + 1, value)
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop training either
            log.warning("hub: epoch %d not pushed: snapshot failed (%s: %s)", epoch + 1, type(exc).__name__, one_line(exc))
            self.failed.append(epoch + 1)
            return
        self._submit(epoch + 1, snapshot, f"epoch {epoch + 1}: {self.monitor} {value:.4g}")

    # ------------------------------------------------------------ snapshot and upload
    def _snapshot(self, epoch: int, value: float) -> Path:
        """The model now (in the training thread: the weights change once fit goes on) as a small run directory.

        Its ``metrics.json`` says which epoch it is; the final push replaces it with the run's own.
        """
        from tfslm.atomic import atomic_write_json
        from tfslm.backends import get_backend
        from tfslm.training.documents import window_model_of

        root = Path(tempfile.mkdtemp(prefix="tfslm-epoch-push-"))
        try:
            get_backend().save_pretrained(window_model_of(self.model), self.tokenizer, root / MODEL_DIR)
            for name in (LABELS_FILE, TASK_FILE, CONFIG_FILE):
                if (self.run_dir / name).is_file():
                    shutil.copy2(self.run_dir / name, root / name)
            atomic_write_json(root / METRICS_FILE, {"snapshot": "best so far, pushed during training", "epoch": epoch,
                                                    "monitor": self.monitor, self.monitor: value})
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return root

    def _submit(self, epoch: int, snapshot: Path, message: str) -> None:
        with self._lock:
            if self._pending is not None:  # still waiting behind a running push: only the latest matters
                shutil.rmtree(self._pending[1], ignore_errors=True)
            self._pending = (epoch, snapshot, message)
            if self._thread is None:  # the drain thread clears it under this lock as it exits: no lost job
                self._thread = threading.Thread(target=self._drain, name="tfslm-epoch-push", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        from tfslm.publish.hub import push_run

        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._thread = None  # under the lock: a later _submit starts a new thread
                    return
            epoch, snapshot, message = job
            try:
                push_run(snapshot, self.repo_id, private=self.private, revision=self.revision,
                         commit_message=message, timeout=self.timeout)
                self.pushed.append(epoch)
                log.info("hub: pushed epoch %d to %s", epoch, self.repo_id)
            except Exception as exc:  # noqa: BLE001 - any push fault is logged; push_run's messages are one line, token-free
                self.failed.append(epoch)
                log.warning("hub: epoch %d not pushed (%s); training goes on, the final push follows", epoch, one_line(exc))
            finally:
                shutil.rmtree(snapshot, ignore_errors=True)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background push (and the snapshot queued behind it) is done."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
