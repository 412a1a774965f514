"""Where each epoch's wall time goes: the training steps, Keras' validation pass, and every epoch-end callback.

:func:`timed_callbacks` puts an :class:`EpochTiming` in front of a callback list and
times each callback's ``on_epoch_end`` (whole-validation metrics, early stopping's
best-weights copy, the backup, the CSV log, TensorBoard, an epoch push). ``tfslm train``
logs one line per epoch and writes ``epoch_seconds`` and ``epoch_overhead`` to
``metrics.json``, so the cost of what tfslm adds to a bare ``fit`` is measured on every
run, not guessed.

Example:
    >>> callbacks, timing = timed_callbacks(default_callbacks(...))   # doctest: +SKIP
    >>> model.fit(train_ds, epochs=3, callbacks=callbacks)             # doctest: +SKIP
    >>> timing.epochs[-1]                                              # doctest: +SKIP
    {'epoch': 3, 'seconds': 70.4, 'training': 66.1, 'validation_metrics': 2.3, 'training_backup': 1.6, ...}
"""

from __future__ import annotations

import logging
import re
import time

import tensorflow as tf

__all__ = ["EpochTiming", "timed_callbacks"]

log = logging.getLogger("tfslm")


_PART_NAMES = {"ValidationMetrics": "validation_metrics", "EarlyStoppingWithTieBreak": "early_stopping",
               "TrainingBackup": "backup", "CSVLogger": "history_csv", "TensorBoard": "tensorboard", "EpochHubPush": "hub_push"}


def _part_name(callback) -> str:
    """``ValidationMetrics`` -> ``validation_metrics``: the key a callback's epoch-end time is reported under."""
    name = getattr(getattr(callback, "tfslm_kind", None), "__name__", None) or type(callback).__name__
    return _PART_NAMES.get(name) or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class _TimingLogic:
    """The body of :class:`EpochTiming`; the Keras base class comes from the active backend."""

    def __init__(self):
        super().__init__()
        self.epochs: list[dict] = []
        self._begin = self._test_begin = None
        self._current: dict = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._begin, self._test_begin = time.perf_counter(), None
        self._current = {"epoch": epoch + 1}

    def on_test_begin(self, logs=None):  # Keras' own validation pass (fit's validation_data)
        if self._begin is not None:
            self._test_begin = time.perf_counter()

    def on_test_end(self, logs=None):
        if self._test_begin is not None:
            self._current["keras_validation"] = time.perf_counter() - self._test_begin

    def on_epoch_end(self, epoch, logs=None):
        # Called first of the epoch-end hooks: what came before is training (and Keras' validation).
        now = time.perf_counter()
        if self._begin is not None:
            self._current["training"] = now - self._begin - self._current.get("keras_validation", 0.0)

    def _record(self, part: str, seconds: float) -> None:
        self._current[part] = self._current.get(part, 0.0) + seconds

    def _close_epoch(self) -> None:
        if self._begin is None:
            return
        record = {"epoch": self._current.pop("epoch"), "seconds": time.perf_counter() - self._begin, **self._current}
        record = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in record.items()}
        self.epochs.append(record)
        self._begin = None
        extra = {k: v for k, v in record.items() if k not in ("epoch", "seconds", "training")}
        share = sum(extra.values()) / record["seconds"] if record["seconds"] else 0.0
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in extra.items())
        log.info("epoch %d: %.1f s (training steps %.1f s; %s: %.1f%% of the epoch)",
                 record["epoch"], record["seconds"], record.get("training", 0.0), parts or "nothing else", 100 * share)

    def summary(self) -> dict:
        """``{"epoch_seconds": [...], "epoch_overhead": [{part: seconds}, ...]}`` for ``metrics.json``."""
        return {"epoch_seconds": [e["seconds"] for e in self.epochs],
                "epoch_overhead": [{k: v for k, v in e.items() if k not in ("epoch", "seconds")} for e in self.epochs]}


class EpochTiming(_TimingLogic, tf.keras.callbacks.Callback):
    """Per-epoch wall time: training steps, Keras' validation pass, and each timed callback's epoch end.

    Put it first in a ``fit``'s callbacks through :func:`timed_callbacks`, which wraps the others.
    """


_VARIANTS: dict[str, type] = {}


def _timing_for(keras) -> EpochTiming:
    """An :class:`EpochTiming` on ``keras``'s ``Callback`` (tf-keras, or Keras 3 for the keras_hub backend)."""
    if keras is None or keras is tf.keras:
        return EpochTiming()
    if keras.__name__ not in _VARIANTS:
        _VARIANTS[keras.__name__] = type("EpochTiming", (_TimingLogic, keras.callbacks.Callback),
                                         {"__doc__": EpochTiming.__doc__, "__module__": __name__})
    return _VARIANTS[keras.__name__]()


def _timed(timing, part: str | None, method, last: bool):
    def on_epoch_end(epoch, logs=None):
        start = time.perf_counter()
        try:
            return method(epoch, logs)
        finally:
            if part is not None:
                timing._record(part, time.perf_counter() - start)
            if last:
                timing._close_epoch()

    return on_epoch_end


def timed_callbacks(callbacks: list, keras=None):
    """``([timing, *callbacks], timing)``: each callback's ``on_epoch_end`` timed into ``timing.epochs``.

    The callbacks are the same objects (their ``on_epoch_end`` is wrapped on the
    instance), so ``find_callback`` and resume work unchanged. ``keras``: the Keras
    the model trains in (default: the active backend's).

    Example:
        >>> callbacks, timing = timed_callbacks([ValidationMetrics(val_ds, labels)])   # doctest: +SKIP
    """
    from tfslm.backends import keras_module

    timing = _timing_for(keras or keras_module())
    for i, callback in enumerate(callbacks):
        callback.on_epoch_end = _timed(timing, _part_name(callback), callback.on_epoch_end, last=i == len(callbacks) - 1)
    if not callbacks:
        timing.on_epoch_end = _timed(timing, None, timing.on_epoch_end, last=True)
    return [timing, *callbacks], timing
