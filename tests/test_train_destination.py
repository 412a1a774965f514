"""`tfslm train` writes only what it created: foreign directories refused, --overwrite swapped in atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import assert_one_line_error, make_rows, tiny_config_dict, write_csv
from tfslm.cli import main

pytestmark = pytest.mark.slow


def _config(tmp_path, train_csv, **training):
    path = tmp_path / "tiny.yaml"
    cfg = tiny_config_dict(tmp_path, train_csv, training={"epochs": 1, **training}, export={"saved_model": False})
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "runs" / "tiny"


def test_a_directory_that_is_not_a_run_or_holds_foreign_files_is_refused(tmp_path, train_csv, capsys):
    config, run = _config(tmp_path, train_csv)
    run.mkdir(parents=True)
    (run / "README.md").write_text("my notes")
    assert_one_line_error(capsys, main(["train", str(config)]), "is not a tfslm run")
    assert (run / "README.md").read_text() == "my notes"

    (run / "README.md").unlink()
    assert main(["train", str(config)]) == 0
    (run / "model" / "notes.txt").write_text("mine")
    (run / "metrics.json").unlink()  # an unfinished run: a rerun would resume and rewrite model/
    assert_one_line_error(capsys, main(["train", str(config)]), "holds model/notes.txt, which tfslm did not write")
    assert (run / "model" / "notes.txt").read_text() == "mine"


def test_output_dir_that_is_a_file_or_under_one(tmp_path, train_csv, capsys):
    config, run = _config(tmp_path, train_csv)
    (tmp_path / "runs").write_text("a file")
    assert_one_line_error(capsys, main(["train", str(config)]), "is not a directory (")
    assert (tmp_path / "runs").read_text() == "a file"


def test_a_failed_first_train_leaves_no_run_directory(tmp_path, capsys):
    bad = write_csv(tmp_path / "bad.csv", [{"text": "only", "label": "one"}] * 5)
    config, run = _config(tmp_path, bad)
    code = main(["train", str(config)])
    assert code == 2, capsys.readouterr().err
    assert not run.exists()


def test_overwrite_replaces_the_whole_run_and_leaves_no_stale_files(tmp_path, train_csv):
    import stat

    config, run = _config(tmp_path, train_csv)
    previous = os.umask(0o022)
    try:
        assert main(["train", str(config)]) == 0
    finally:
        os.umask(previous)
    # Readable by a TF Serving process or a colleague, like cp or save_pretrained output.
    modes = {stat.S_IMODE(p.stat().st_mode) for p in [run, *run.rglob("*")] if not p.is_symlink()}
    assert modes == {0o644, 0o755}, sorted(oct(m) for m in modes)
    (run / "evaluations").mkdir()
    (run / "evaluations" / "old.json").write_text("{}")
    (run / "plots" / "stale.png").write_bytes(b"x")
    assert main(["train", str(config), "--overwrite"]) == 0
    assert (run / "metrics.json").is_file() and (run / "model" / "tf_model.h5").is_file()
    assert not (run / "evaluations").exists() and not (run / "plots" / "stale.png").exists()
    assert [p.name for p in run.parent.iterdir()] == ["tiny"]  # no staging directory left beside it
    assert "# Run report: tiny" in (run / "report.md").read_text()


def test_an_interrupted_overwrite_leaves_the_old_run_whole(tmp_path):
    train_csv = write_csv(tmp_path / "train.csv", make_rows(480, seed=3))
    config, run = _config(tmp_path, train_csv, batch_size=8)
    assert main(["train", str(config)]) == 0
    before = {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    yaml_cfg = yaml.safe_load(config.read_text())
    yaml_cfg["training"]["epochs"] = 2
    config.write_text(yaml.safe_dump(yaml_cfg))
    command = [sys.executable, "-m", "tfslm.cli", "train", str(config), "--overwrite", "--verbose", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        staged = lambda: any(p.name.startswith(".tiny.") and (p / "logs" / "history.csv").is_file() for p in run.parent.iterdir())  # noqa: E731
        deadline = time.monotonic() + 240
        while not staged() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr[-2000:]
    after = {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # the old finished run, byte for byte
    assert [p.name for p in run.parent.iterdir()] == ["tiny"]
    assert json.loads((run / "metrics.json").read_text())["epochs_trained"] == 1
