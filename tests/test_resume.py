"""Preemption safety: TrainingBackup with Keras' own fit, and `tfslm train` killed with SIGKILL and rerun."""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import make_rows, tiny_config_dict, wait_for, write_csv
from tfslm.cli import main
from tfslm.errors import RunDirError

STEPS = 10  # steps per epoch of the toy fit below


def _scripted_metric(scores):
    """Stands in for ValidationMetrics: a scripted val_score per epoch, so the best epoch is known."""
    import tensorflow as tf

    class ScriptedMetric(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = []

        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = scores[epoch]
            self.history.append({"epoch": epoch + 1, "score": scores[epoch]})

    return ScriptedMetric()


def _probe(crash_at=None):
    """Keeps each epoch's weights and the optimizer step at the first epoch begin; crashes at (epoch, step) on cue."""
    import tensorflow as tf

    class Probe(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights, self.start_iterations, self.epoch = {}, None, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            if self.start_iterations is None:
                self.start_iterations = int(self.model.optimizer.iterations)

        def on_train_batch_end(self, batch, logs=None):
            if crash_at and (self.epoch, batch) >= crash_at:
                raise KeyboardInterrupt("simulated preemption")

        def on_epoch_end(self, epoch, logs=None):
            self.weights[epoch] = [w.copy() for w in self.model.get_weights()]

    return Probe()


def _toy_fit(tmp_path, scores, *, epochs, patience=None, save_every_steps=None, crash_at=None,
             steps_per_execution=1, delete_checkpoint=True, seed=0, backup_cls=None):
    """A Dense model on 40 rows (10 steps of 4) with the callbacks in default_callbacks' order."""
    import tensorflow as tf

    from tfslm.training.callbacks import EarlyStoppingWithTieBreak
    from tfslm.training.backup import TrainingBackup

    tf.keras.utils.set_random_seed(seed)  # a second "process" starts from other weights
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=1).batch(4)
    model = tf.keras.Sequential([tf.keras.layers.Dense(3, activation="relu"), tf.keras.layers.Dense(1)])
    model.build((None, 4))
    model.compile(tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(0.05, 60)), loss="mse",
                  steps_per_execution=steps_per_execution)
    metric = _scripted_metric(scores)
    es = EarlyStoppingWithTieBreak(monitor="val_score", mode="max", patience=patience or epochs + 1, restore_best_weights=True)
    csv_path = tmp_path / "logs" / "history.csv"
    csv_path.parent.mkdir(exist_ok=True)
    backup = (backup_cls or TrainingBackup)(tmp_path / "backup", save_every_steps, early_stopping=es, validation_metrics=metric,
                                             csv_path=csv_path, delete_checkpoint=delete_checkpoint)
    probe = _probe(crash_at)
    callbacks = [metric, es, backup, tf.keras.callbacks.CSVLogger(str(csv_path), append=True), probe]
    try:
        history = model.fit(ds, epochs=epochs, callbacks=callbacks, verbose=0)
    except KeyboardInterrupt:
        history = None
    return model, history, backup, es, metric, probe


def _csv_epochs(path):
    return [int(row["epoch"]) for row in csv.DictReader(open(path))]


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_execution, resume_step", [(1, 6), (3, 9)])
def test_mid_epoch_resume_skips_done_steps_and_keeps_callback_state(tmp_path, steps_per_execution, resume_step):
    scores = [0.5, 0.9, 0.3, 0.2]  # best epoch: 2 (index 1), long before the crash
    _, history, _, _, _, first = _toy_fit(tmp_path, scores, epochs=4, save_every_steps=3, crash_at=(2, 6),
                                          steps_per_execution=steps_per_execution)
    assert history is None and (tmp_path / "backup" / "chief" / "checkpoint").is_file()
    # Step backups at 23 and 26 optimizer steps (and 29 when an execution of 3 steps ends at step 9).
    model, history, backup, es, metric, second = _toy_fit(tmp_path, scores, epochs=4, save_every_steps=3, seed=7,
                                                          steps_per_execution=steps_per_execution)
    assert backup.resumed_from == {"epoch": 3, "step": resume_step, "steps_per_epoch": STEPS}
    assert second.start_iterations == 2 * STEPS + resume_step  # optimizer state restored
    assert int(model.optimizer.iterations) == 4 * STEPS  # no step repeated, none skipped
    assert history.epoch == [0, 1, 2, 3] and len(history.history["loss"]) == 4
    assert history.history["val_score"] == scores
    assert [h["epoch"] for h in metric.history] == [1, 2, 3, 4]
    assert es.best_epoch == 1 and es.best == 0.9
    for restored, best in zip(model.get_weights(), first.weights[1]):  # restored from before the kill
        np.testing.assert_array_equal(restored, best)
    assert _csv_epochs(tmp_path / "logs" / "history.csv") == [0, 1, 2, 3]
    assert not (tmp_path / "backup").exists()  # delete_checkpoint=True: fit finished, backup gone


def test_run_that_early_stopping_ended_stays_ended(tmp_path):
    scores = [0.5, 0.9, 0.3, 0.2, 0.95, 0.99]
    _, history, _, es, _, first = _toy_fit(tmp_path, scores, epochs=6, patience=2, delete_checkpoint=False)
    assert es.stopped_epoch == 3 and len(history.epoch) == 4
    # As if the process died after fit (while evaluating or exporting): the same fit again.
    model, history, backup, es, _, second = _toy_fit(tmp_path, scores, epochs=6, patience=2, seed=3, delete_checkpoint=False)
    assert second.start_iterations is None  # no epoch ran
    assert backup.resumed_from["epoch"] == 5 and es.stopped_epoch == 3 and es.best_epoch == 1
    assert history is not None and history.epoch == [0, 1, 2, 3] and history.history["val_score"] == scores[:4]
    for restored, best in zip(model.get_weights(), first.weights[1]):
        np.testing.assert_array_equal(restored, best)
    assert _csv_epochs(tmp_path / "logs" / "history.csv") == [0, 1, 2, 3]


@pytest.mark.slow
def test_kill_between_state_and_checkpoint_at_an_epoch_end(tmp_path):
    """The per-epoch record and a new best's weights are written, the checkpoint is not: resume redoes that epoch."""
    from tfslm.training.backup import TrainingBackup

    class DiesBeforeCheckpoint(TrainingBackup):
        def _backup(self, epoch, batch=0):
            if len(self._records) == 3:  # epoch 3's record is on disk, its checkpoint is next
                raise KeyboardInterrupt("killed")
            super()._backup(epoch, batch)

    scores = [0.5, 0.6, 0.9, 0.2]
    assert _toy_fit(tmp_path, scores, epochs=4, backup_cls=DiesBeforeCheckpoint)[1] is None  # killed
    state_dir = tmp_path / "backup" / "tfslm"
    assert len(json.loads((state_dir / "state.json").read_text())["epochs"]) == 3
    assert {p.name for p in state_dir.glob("*.npz")} == {"best-epoch-2.npz", "best-epoch-3.npz"}
    log = tmp_path / "logs" / "history.csv"
    lines = log.read_text().splitlines(keepends=True)
    assert len(lines) == 3  # header, epochs 0 and 1: the logger comes after the backup
    # A logger listed before the backup would have written epoch 2's row; and a lost row of a covered epoch.
    log.write_text(lines[0] + lines[2] + lines[2].replace("1,", "2,", 1))

    state_file = state_dir / "state.json"
    good = state_file.read_text()
    state_file.write_text(good.replace(f'"steps_per_epoch": {STEPS}', '"steps_per_epoch": 12'))
    with pytest.raises(RunDirError, match="12 steps per epoch, the training data now gives 10"):
        _toy_fit(tmp_path, scores, epochs=4, seed=5)
    state_file.write_text(good)

    model, history, backup, es, _, second = _toy_fit(tmp_path, scores, epochs=4, seed=5)
    assert backup.resumed_from == {"epoch": 3, "step": 0, "steps_per_epoch": STEPS}
    assert second.start_iterations == 2 * STEPS
    assert history.epoch == [0, 1, 2, 3] and es.best_epoch == 2
    rows = list(csv.DictReader(open(log)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[0]["val_score"]) == 0.5 and float(rows[2]["val_score"]) == 0.9


def _fake_backup(backup_dir, epoch, step):
    import tensorflow as tf

    ckpt = tf.train.Checkpoint(ckpt_saved_epoch=tf.Variable(epoch, dtype=tf.int64), ckpt_saved_batch=tf.Variable(step, dtype=tf.int64))
    tf.train.CheckpointManager(ckpt, str(backup_dir / "chief"), max_to_keep=1).save()


def test_resume_with_another_config_is_refused_in_one_line(tmp_path, capsys):
    from tfslm.config import config_from_dict, config_to_dict
    from tfslm.training.backup import check_unfinished_run

    train_file = write_csv(tmp_path / "train.csv", make_rows(30))
    values = tiny_config_dict(tmp_path, train_file)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(values))
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    saved = config_to_dict(config_from_dict(values))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    _fake_backup(run_dir / "backup", epoch=1, step=3)

    code = main(["train", str(config), "--set", "training.epochs=5", "--set", "training.backup_every_steps=10"])
    # One error line, last; an info line before it (the backend chosen) is logged once per process, so
    # whether it shows depends on the tests that ran before: only the error lines are counted.
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("tfslm: error:")]
    assert code == 2 and len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err)
    assert "backup at epoch 2, step 4" in errors[0]
    assert "training.epochs (2 in the run, 5 now)" in errors[0] and "backup_every_steps" not in errors[0]
    assert "rerun with the same config" in errors[0] and "--overwrite" in errors[0]

    changed = dict(saved, hub=dict(saved["hub"], push=True, repo_id="me/x"), training=dict(saved["training"], backup_every_steps=7))
    assert check_unfinished_run(run_dir, changed) == {"epoch": 1, "step": 3}  # safe keys may change
    with pytest.raises(RunDirError, match="model.hidden_size"):
        check_unfinished_run(run_dir, dict(saved, model=dict(saved["model"], hidden_size=64)))
    assert check_unfinished_run(run_dir, saved, overwrite=True) is None
    assert not (run_dir / "backup").exists()


@pytest.mark.slow
def test_crash_after_training_resumes_without_training_again(tmp_path, train_csv, monkeypatch):
    """A crash while exporting keeps the backup; the rerun trains no more and finishes the run."""
    import tfslm.backends.hf_tf
    from tfslm.config import config_from_dict
    from tfslm.training.fit import train

    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, training={"epochs": 2}, export={"saved_model": False}))
    real = tfslm.backends.hf_tf.save_pretrained

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(tfslm.backends.hf_tf, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, verbose=0)
    run = cfg.run_dir
    assert (run / "backup" / "chief" / "checkpoint").is_file() and not (run / "metrics.json").exists()
    before = (run / "logs" / "history.csv").read_text()
    monkeypatch.setattr(tfslm.backends.hf_tf, "save_pretrained", real)
    result = train(cfg, verbose=0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2 and metrics["resumed_from"]["epoch"] == 3
    assert (run / "logs" / "history.csv").read_text() == before
    rows = list(csv.DictReader(open(run / "logs" / "history.csv")))
    history = [float(r["val_macro_f1"]) for r in rows]
    assert metrics["validation"]["macro_f1"] == pytest.approx(max(history), abs=1e-6)  # the best epoch's weights
    # the best epoch: highest macro-F1, a tie going to the lower val_loss (EarlyStoppingWithTieBreak)
    best = min(range(len(rows)), key=lambda i: (-history[i], float(rows[i]["val_loss"])))
    assert metrics["best_epoch"] == 1 + best
    assert len(result.history["loss"]) == 2
    assert not (run / "backup").exists()


def _checkpoint_number(run_dir):
    index = run_dir / "backup" / "chief" / "checkpoint"
    try:
        first = index.read_text().splitlines()[0]  # model_checkpoint_path: "ckpt-N"
        return int(first.rsplit("-", 1)[1].rstrip('"'))
    except (OSError, IndexError, ValueError):
        return None


@pytest.mark.slow
def test_train_killed_with_sigkill_during_epoch_2_resumes(tmp_path):
    """Real processes: `tfslm train`, SIGKILL after a step backup in epoch 2, the same command again."""
    train_file = write_csv(tmp_path / "train.csv", make_rows(400, seed=3))
    config = tmp_path / "tiny.yaml"
    # 40 steps per epoch, a step backup every 5: the kill lands well inside epoch 2.
    training = {"epochs": 3, "batch_size": 8, "backup_every_steps": 5, "early_stopping_patience": None}
    config.write_text(yaml.safe_dump(tiny_config_dict(tmp_path, train_file, training=training, export={"saved_model": False})))
    run_dir = tmp_path / "runs" / "tiny"
    command = [sys.executable, "-m", "tfslm.cli", "train", str(config), "--verbose", "0"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            history = run_dir / "logs" / "history.csv"
            epoch_1_done = lambda: history.is_file() and len(history.read_text().splitlines()) >= 2  # noqa: E731
            assert wait_for(epoch_1_done, proc, 240), (tmp_path / "first.log").read_text()[-2000:]
            at_epoch_end = _checkpoint_number(run_dir)
            # The next checkpoint is a step backup inside epoch 2.
            assert wait_for(lambda: (_checkpoint_number(run_dir) or 0) > at_epoch_end, proc, 120)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = history.read_text().splitlines()
    assert len(before) == 2, "killed after epoch 2 ended: make epochs longer"
    assert not (run_dir / "metrics.json").exists()

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "tfslm: resuming from epoch 2, step " in second.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps = metrics["training"]["steps_per_epoch"]
    resumed = metrics["resumed_from"]
    assert resumed["epoch"] == 2 and 5 <= resumed["step"] < steps and resumed["step"] % 5 == 0
    assert metrics["epochs_trained"] == 3
    assert _csv_epochs(history) == [0, 1, 2]
    assert history.read_text().splitlines()[:2] == before  # epoch 1 was not trained again
    assert not (run_dir / "backup").exists()


def test_resumed_stream_continues_with_the_batches_the_run_had_left():
    """After a resume, epoch k is still the k-th seeded pass: the interrupted epoch's remaining batches, then the rest."""
    import tensorflow as tf

    from tfslm.training.backup import steps_done, training_stream

    def batches():  # rebuilt, as a new process would
        ds = tf.data.Dataset.range(10).shuffle(10, seed=3, reshuffle_each_iteration=True).batch(2)
        return ds.apply(tf.data.experimental.assert_cardinality(5))

    full = [b.numpy().tolist() for b in training_stream(batches(), 5).take(15)]
    for epoch in range(3):
        assert sorted(sum(full[5 * epoch:5 * epoch + 5], [])) == list(range(10))  # every row once per epoch
    assert full[0:5] != full[5:10]  # reshuffled each epoch
    # Killed after step 3 of epoch 2 (0-based epoch 1, last step done 2): the rest of epoch 2, then epoch 3.
    resumed = [b.numpy().tolist() for b in training_stream(batches(), 5, {"epoch": 1, "step": 2}).take(7)]
    assert resumed == full[8:15]
    assert steps_done({"epoch": 1, "step": 4}, 5) == 10  # a backup on an epoch's last step: the next epoch starts
    assert steps_done({"epoch": 0, "step": -1}, 5) == 5 and steps_done(None, 5) == 0
