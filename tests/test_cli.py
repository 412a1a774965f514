"""The `tfslm` command end to end (real processes) and every user error (exit 2, one line)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import MINILM, assert_one_line_error, make_rows, needs_minilm, tiny_config_dict, write_csv
from tfslm.cli import main

TFSLM = [sys.executable, "-m", "tfslm.cli"]


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*TFSLM, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One real `tfslm train` in a subprocess, shared by the evaluate/predict tests."""
    tmp = tmp_path_factory.mktemp("cli")
    train_file = write_csv(tmp / "train.csv", make_rows(150, seed=2))
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config_dict(tmp, train_file, training={"epochs": 3})))
    result = run_cli("train", config, "--set", "training.epochs=4", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    run_dir = tmp / "runs" / "tiny"
    return tmp, config, run_dir, result


@pytest.mark.slow
def test_train_end_to_end(trained_run):
    tmp, _, run_dir, result = trained_run
    assert "validation:" in result.stdout and f"run directory: {run_dir}" in result.stdout
    assert "Traceback" not in result.stderr
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["training"]["epochs"] == 4  # the --set override is what was recorded
    assert len((run_dir / "logs" / "history.csv").read_text().strip().splitlines()) >= 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] > 0.5  # 3 balanced classes: chance is 1/3


@pytest.mark.slow
def test_rerun_refuses_then_overwrites(trained_run):
    _, config, run_dir, _ = trained_run
    refused = run_cli("train", config, "--set", "training.epochs=1", "--verbose", "0")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("tfslm: error:") and "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_predict_and_evaluate(trained_run, tmp_path):
    tmp, _, run_dir, _ = trained_run
    rows = make_rows(40, seed=9)
    frame = pd.DataFrame({"id": range(40), "text": [r["text"] for r in rows]})
    frame.loc[3, "text"] = "['First paragraph about the goal.', 'Second about the team.']"
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = run_cli("predict", run_dir, "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv", "--batch-size", "7")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "text", "predicted_label", "prob_food", "prob_science", "prob_sports"]
    assert out["id"].tolist() == list(range(40)) and out["text"].tolist() == frame["text"].tolist()
    assert ((out[["prob_food", "prob_science", "prob_sports"]].sum(axis=1) - 1).abs() < 1e-4).all()
    assert set(out["predicted_label"]) <= {"food", "science", "sports"}

    write_csv(tmp_path / "labelled.csv", rows)
    result = run_cli("evaluate", run_dir, "--data", tmp_path / "labelled.csv")
    assert result.returncode == 0, result.stderr
    saved = json.loads((run_dir / "evaluations" / "labelled.json").read_text())
    truth = [r["label"] for r in rows]
    majority = max(truth.count(label) for label in set(truth)) / len(truth)  # 14/40: predict one class for all
    assert saved["num_examples"] == 40 and "macro_f1" in saved
    assert saved["accuracy"] > majority + 0.15, (saved["accuracy"], majority)  # topic words give the label away
    assert saved["macro_f1"] > 1 / 3 + 0.15, saved["macro_f1"]  # above one class for all (F1 1/6 then)
    predicted = pd.read_csv(tmp_path / "out.csv")
    agree = (predicted["predicted_label"] != pd.Series([r["label"] for r in rows])).copy()
    agree.iloc[3] = False  # row 3's text was replaced above
    assert saved["accuracy"] == pytest.approx(1 - agree.iloc[[i for i in range(40) if i != 3]].mean(), abs=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".tsv"])
def test_predict_output_formats(trained_run, tmp_path, suffix):
    _, _, run_dir, _ = trained_run
    write_csv(tmp_path / "in.csv", [{"text": r["text"]} for r in make_rows(10)])
    out = tmp_path / f"out{suffix}"
    assert main(["predict", str(run_dir), "--input", str(tmp_path / "in.csv"), "--output", str(out)]) == 0
    frame = {".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet, ".tsv": lambda p: pd.read_csv(p, sep="\t")}[suffix](out)
    assert len(frame) == 10 and "predicted_label" in frame


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda t, d: ["train", str(t / "missing.yaml")], "config file not found"),
        (lambda t, d: (t.joinpath("bad.yaml").write_text("data: [oops\n"), ["train", str(t / "bad.yaml")])[1], "invalid YAML"),
        (lambda t, d: ["train", _cfg(t, d, training={"epoch": 2})], "unknown key training.epoch; valid keys in 'training'"),
        (lambda t, d: ["train", _cfg(t, d), "--set", "training.epochs=-1"], "training.epochs: expected an integer >= 1, got -1"),
        (lambda t, d: ["train", _cfg(t, d, data={"text_column": "body"})], "no column 'body'"),
        (lambda t, d: ["train", _cfg(t, d, data={"labels": ["food", "science"]})], "unknown label 'sports'"),
        (lambda t, d: ["train", _cfg(t, d, data={"label_type": "numeric"})], "non-numeric score 'sports'"),
        (lambda t, d: ["train", _cfg(t, d, data={"train_file": str(t / "empty.csv")})], "file is empty"),
        (lambda t, d: ["train", _cfg(t, d, data={"train_file": str(t / "latin1.csv")})], "not valid utf-8 text"),
        (lambda t, d: ["train", _cfg(t, d, data={"train_file": str(t / "nope.csv")})], "file not found"),
        (lambda t, d: ["train", _cfg(t, d, model={"architecture": None, "checkpoint": str(t / "no-model")})], "not found"),
        (lambda t, d: ["predict", str(t / "no-run"), "--input", str(d), "--output", str(t / "o.csv")], "run directory not found"),
        (lambda t, d: ["evaluate", str(t), "--data", str(d)], "not a tfslm run directory"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, make, fragment):
    data = write_csv(tmp_path / "train.csv", make_rows(30))
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,food\n".encode("latin-1"))
    code = main(make(tmp_path, data))
    assert_one_line_error(capsys, code, fragment)
    assert not (tmp_path / "runs" / "tiny" / "metrics.json").exists()


@needs_minilm
def test_max_length_above_checkpoint_limit(tmp_path, capsys):
    data = write_csv(tmp_path / "train.csv", make_rows(30))
    config = _cfg(tmp_path, data, model={"architecture": None, "checkpoint": str(MINILM), "max_length": 1024})
    assert_one_line_error(capsys, main(["train", config]), "model.max_length: 1024 exceeds the 512 tokens")


@pytest.mark.slow
def test_predict_errors(trained_run, tmp_path, capsys):
    _, _, run_dir, _ = trained_run
    write_csv(tmp_path / "in.csv", [{"body": "x"}])
    assert_one_line_error(capsys, main(["predict", str(run_dir), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]), "no column 'text'")
    write_csv(tmp_path / "in2.csv", [{"text": "x"}])
    assert_one_line_error(capsys, main(["predict", str(run_dir), "--input", str(tmp_path / "in2.csv"), "--output", str(tmp_path / "o.xlsx")]), "unsupported output type")
    write_csv(tmp_path / "lab.csv", [{"text": "x", "label": "politics"}])
    assert_one_line_error(capsys, main(["evaluate", str(run_dir), "--data", str(tmp_path / "lab.csv")]), "unknown label 'politics'")
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv*"))


@pytest.mark.slow
def test_subprocess_error_has_no_traceback(tmp_path):
    result = run_cli("train", tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"tfslm: error: {tmp_path / 'missing.yaml'}: config file not found; pass the path of a YAML file such as configs/quickstart.yaml"]


def _cfg(tmp_path: Path, train_file: Path, **sections) -> str:
    path = tmp_path / "cfg.yaml"
    cfg = tiny_config_dict(tmp_path, train_file, **sections)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)
