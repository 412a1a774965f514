"""Per-epoch timing of what a fit does besides training (tfslm.training.epoch_timing)."""

import time

import numpy as np
import pytest


def _tiny_fit(callbacks, epochs=2, validation=False):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks,
              validation_data=(x, y) if validation else None)


def test_each_epoch_end_callback_is_timed_under_its_own_name(caplog):
    import tensorflow as tf

    from tfslm.training.epoch_timing import timed_callbacks

    class SlowBackup(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.2)

    slow = SlowBackup()
    logger = tf.keras.callbacks.CSVLogger("/dev/null")
    callbacks, timing = timed_callbacks([slow, logger], tf.keras)
    assert callbacks[1:] == [slow, logger]  # the same objects: find_callback and resume see them unchanged
    with caplog.at_level("INFO", logger="tfslm"):
        _tiny_fit(callbacks, validation=True)
    assert [e["epoch"] for e in timing.epochs] == [1, 2]
    for epoch in timing.epochs:
        assert epoch["slow_backup"] >= 0.2 and "history_csv" in epoch and epoch["keras_validation"] > 0
        parts = epoch["training"] + epoch["keras_validation"] + epoch["slow_backup"] + epoch["history_csv"]
        assert epoch["seconds"] == pytest.approx(parts, abs=0.02)
    summary = timing.summary()
    assert summary["epoch_seconds"] == [e["seconds"] for e in timing.epochs]
    assert summary["epoch_overhead"][0]["slow_backup"] >= 0.2
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(lines) == 2 and "slow backup 0.2" in lines[0] and "% of the epoch" in lines[0]


def test_no_callbacks_still_gives_epoch_times():
    import tensorflow as tf

    from tfslm.training.epoch_timing import timed_callbacks

    callbacks, timing = timed_callbacks([], tf.keras)
    _tiny_fit(callbacks, epochs=3)
    assert len(timing.summary()["epoch_seconds"]) == 3 and all(s > 0 for s in timing.summary()["epoch_seconds"])
