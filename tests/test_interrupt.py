"""SIGTERM (docker stop, Slurm, Kubernetes, timeout) is handled like SIGINT: a backup at the next step, one line, exit 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from conftest import make_rows, tiny_config_dict, wait_for, write_csv

pytestmark = pytest.mark.slow


def test_sigterm_backs_up_at_the_next_step_and_the_rerun_resumes_there(tmp_path):
    train_file = write_csv(tmp_path / "train.csv", make_rows(480, seed=3))
    config = tmp_path / "tiny.yaml"
    # No periodic step backups: without the SIGTERM backup a rerun would restart epoch 2 from its first step.
    training = {"epochs": 2, "batch_size": 8, "backup_every_steps": None, "early_stopping_patience": None}
    config.write_text(yaml.safe_dump(tiny_config_dict(tmp_path, train_file, training=training, export={"saved_model": False})))
    run_dir = tmp_path / "runs" / "tiny"
    command = [sys.executable, "-m", "tfslm.cli", "train", str(config), "--verbose", "0"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    history = run_dir / "logs" / "history.csv"

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        epoch_1_done = lambda: history.is_file() and len(history.read_text().splitlines()) >= 2  # noqa: E731
        assert wait_for(epoch_1_done, proc, 240), proc.stderr.read()[-2000:] if proc.poll() is not None else "timed out"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = stderr.strip().splitlines()
    assert proc.returncode == 143, stderr[-2000:]
    assert lines[-1].startswith("tfslm: error: interrupted: stopped by SIGTERM; the backup under ") and "rerun the same command" in lines[-1]
    assert not any("Traceback" in line for line in lines)
    assert not (run_dir / "metrics.json").exists()

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    resumed = metrics["resumed_from"]
    # Resumed inside epoch 2 at the step the signal interrupted, not at its start.
    assert resumed["epoch"] == 2 and 1 <= resumed["step"] < metrics["training"]["steps_per_epoch"], resumed
    assert metrics["epochs_trained"] == 2
