"""The TF-IDF baseline: it trains and reports for every task type, beats chance, and lands in the run's files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_rows, tiny_config_dict, write_csv
from test_multi_label import make_multi_rows
from test_tasks import make_score_rows

from tfslm.config import config_from_dict
from tfslm.errors import ConfigError
from tfslm.tasks.base import Task

SCORES = {"data": {"label_column": "score", "score_range": [0, 600], "score_step": 40}}
# name: (config sections, rows, the headline metric, the least it must reach: chance is far below)
CASES = {
    "classification": ({}, "topics", "accuracy", 0.7),
    "ordinal": ({**SCORES, "model": {"problem_type": "ordinal"}}, "scores", "qwk", 0.4),
    "regression": ({**SCORES, "model": {"problem_type": "regression"}}, "scores", "qwk", 0.5),
    "multi_target": ({"data": {"label_column": "parts", "score_range": [0, 200], "score_step": 40, "target_names": ["a", "b", "c"],
                               "derive_total": True}, "model": {"problem_type": "multi_target_regression"}}, "scores", "qwk", 0.5),
    "multi_label": ({"model": {"problem_type": "multi_label_classification"}}, "multi", "micro_f1", 0.7),
}
ROWS = {"topics": lambda: make_rows(150, seed=1), "scores": lambda: make_score_rows(150, seed=1),
        "multi": lambda: make_multi_rows(150, seed=1)}


def _data(tmp_path, name):
    from tfslm.data.loading import load_data

    sections, rows, _, _ = CASES[name]
    path = write_csv(tmp_path / f"{name}.csv", ROWS[rows]())
    cfg = config_from_dict(tiny_config_dict(tmp_path, path, **sections))
    task = Task.from_config(cfg)
    return load_data(cfg.data, seed=cfg.training.seed, task=task), task


@pytest.mark.parametrize("name", list(CASES))
def test_baseline_trains_and_reports_for_every_task_type(tmp_path, name):
    from tfslm.training.baseline import evaluate_baseline, fit_baseline

    data, task = _data(tmp_path, name)
    baseline = fit_baseline(data, task, seed=42)
    val_texts = data["validation"]["text"]
    out = baseline.outputs(val_texts)
    assert out.dtype == np.float32 and out.shape == (len(val_texts), task.num_outputs(data.labels))
    assert np.array_equal(out, fit_baseline(data, task, seed=42).outputs(val_texts))  # deterministic
    report = evaluate_baseline(baseline, data, task, run_dir=tmp_path)
    _, _, key, least = CASES[name]
    assert report["validation"][key] >= least, report["validation"]
    assert set(report["validation"]) >= {"loss", key, "num_examples"}
    assert report["method"] == ("tfidf + ridge" if task.is_regression else "tfidf + logistic regression")
    assert report["features"] > 0 and report["params"] and report["fit_seconds"] < 30
    assert (tmp_path / "predictions" / "baseline-validation.csv").is_file()
    if name == "multi_label":
        assert set(report["decoding"]) == {"thresholds"}
    json.dumps(report)  # goes into metrics.json as it is


def test_baseline_output_space_is_the_models(tmp_path):
    """Classes: log-probabilities (rows exponentiate to 1); scores: scaled to about [0, 1]."""
    from tfslm.training.baseline import fit_baseline

    data, task = _data(tmp_path, "classification")
    out = fit_baseline(data, task).outputs(["goal match team", "oven recipe bread"])
    assert np.allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-4)
    assert [data.labels.names[i] for i in out.argmax(axis=1)] == ["sports", "food"]
    data, task = _data(tmp_path, "regression")
    scores = fit_baseline(data, task).outputs(data["validation"]["text"])
    assert scores.shape[1] == 1 and -0.3 < scores.min() and scores.max() < 1.3


def test_a_class_absent_from_training_gets_a_very_low_log_probability(tmp_path):
    from tfslm.data.labels import LabelSpace
    from tfslm.training.baseline import ABSENT_LOG_PROB, fit_baseline

    data, task = _data(tmp_path, "classification")
    labels = LabelSpace((*data.labels.names, "art"), kind="categorical")
    out = fit_baseline(data, task, labels=labels).outputs(["goal match"])
    assert out.shape == (1, 4) and out[0, 3] == ABSENT_LOG_PROB


def test_training_baseline_config(tmp_path):
    cfg = tiny_config_dict(tmp_path, tmp_path / "x.csv")
    assert config_from_dict(cfg).training.baseline == "tfidf"
    cfg["training"]["baseline"] = "bow"
    with pytest.raises(ConfigError, match=r"training.baseline: got 'bow', expected one of: tfidf, none"):
        config_from_dict(cfg)


@pytest.mark.slow
def test_cli_train_writes_the_baseline_into_metrics_report_and_card(tmp_path, capsys):
    import yaml

    from tfslm.cli import main

    sections, rows, _, _ = CASES["regression"]
    path = write_csv(tmp_path / "scores.csv", ROWS[rows]())
    cfg = tiny_config_dict(tmp_path, path, export={"saved_model": False}, **sections)
    cfg["training"].update(epochs=1, early_stopping_patience=None)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(config), "--verbose", "0"]) == 0
    run = tmp_path / "runs" / "tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    baseline = metrics["baseline"]
    assert baseline["method"] == "tfidf + ridge" and set(baseline["validation"]) >= set(metrics["validation"]) - {"confusion_matrix"}
    assert (run / "predictions" / "baseline-validation.csv").is_file() and (run / "plots" / "scores.png").is_file()
    report = (run / "report.md").read_text()
    assert "## Baseline" in report and "| validation | baseline |" in report
    card = (run / "README.md").read_text()
    assert "**Baseline** (tfidf + ridge" in card and f"{baseline['validation']['qwk']:.4f} on validation" in card
    assert "baseline: tfidf + ridge" in capsys.readouterr().err


@pytest.mark.slow
def test_training_baseline_none_leaves_no_baseline(tmp_path):
    from tfslm.training.fit import train

    path = write_csv(tmp_path / "topics.csv", make_rows(90, seed=3))
    cfg = tiny_config_dict(tmp_path, path, export={"saved_model": False})
    cfg["training"].update(epochs=1, early_stopping_patience=None, baseline="none")
    result = train(config_from_dict(cfg), verbose=0)
    assert "baseline" not in result.metrics
    assert not list((result.run_dir / "predictions").glob("baseline-*"))
    assert "Baseline" not in (result.run_dir / "report.md").read_text()
    assert "Baseline" not in (result.run_dir / "README.md").read_text()
