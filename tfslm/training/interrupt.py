"""SIGTERM and SIGINT while training: back up at the next step boundary, then stop with one line.

Slurm, ``docker stop``, Kubernetes, ``timeout`` and a TPU/GCE preemption
notice send SIGTERM and give tens of seconds before SIGKILL. Inside
:func:`graceful_stop` the first SIGTERM or SIGINT only records the request;
:class:`~tfslm.training.backup.TrainingBackup` sees it at the end of the
current optimizer step, writes a backup (weights, optimizer state, epoch and
step) and raises :class:`TrainingInterrupted`, so a rerun of the same command
resumes from that step, not from the last periodic backup (on the keras_hub
backend, whose Keras 3 ``fit`` resumes at epoch starts only, the rerun repeats
the interrupted epoch from the last epoch-end backup). A second signal
stops at once. Outside training, SIGTERM raises :class:`TrainingInterrupted`
straight away, as Ctrl-C raises ``KeyboardInterrupt``.

Example:
    >>> with graceful_stop():                        # doctest: +SKIP
    ...     model.fit(train_ds, callbacks=[TrainingBackup("runs/x/backup")])
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

__all__ = ["TrainingInterrupted", "graceful_stop", "stop_requested", "raise_on_sigterm", "exit_code_for"]

log = logging.getLogger("tfslm")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_state = {"requested": None}


class TrainingInterrupted(KeyboardInterrupt):
    """A stop signal ended the command; ``backup`` is where training resumes from (None if none was written).

    A ``KeyboardInterrupt`` subclass, so ``except Exception`` in user code does not swallow it.
    """

    def __init__(self, signum: int, backup: str | None = None):
        self.signum = int(signum)
        self.backup = backup
        name = signal.Signals(self.signum).name
        where = f"; the backup under {backup} resumes it: rerun the same command" if backup else ""
        super().__init__(f"stopped by {name}{where}")

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.signum)


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal number (143 for SIGTERM, 130 for SIGINT)."""
    return 128 + int(signum)


def stop_requested() -> int | None:
    """The signal number of a pending stop request inside :func:`graceful_stop`, else None."""
    return _state["requested"]


def _defer(signum, frame) -> None:
    if _state["requested"] is not None:  # a second signal: stop now
        raise TrainingInterrupted(signum)
    _state["requested"] = signum
    log.warning("%s received: stopping at the end of this step, with a backup to resume from (send it again to stop at once)",
                signal.Signals(signum).name)


@contextlib.contextmanager
def graceful_stop() -> Iterator[None]:
    """Defer SIGTERM/SIGINT to the next step boundary while inside (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    _state["requested"] = None
    for s in _SIGNALS:
        signal.signal(s, _defer)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state["requested"] = None


def _raise_now(signum, frame) -> None:
    raise TrainingInterrupted(signum)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`TrainingInterrupted` (as SIGINT raises ``KeyboardInterrupt``); main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_now)
