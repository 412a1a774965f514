"""tfslm.write_report (tfslm.publish.report): report.md and plots from a run's files, no model loaded.

Runs on copies of the 0.1.0 fixture runs (tests/fixtures/runs-0.1.0), whose
metrics are known: the classification run scored accuracy 1/3 (it predicts
"food" for every text), the regression run MAE 502.86.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tfslm
from tfslm.data.labels import LabelSpace
from tfslm.errors import RunDirError
from tfslm.publish.report import read_history, save_predictions
from tfslm.tasks.base import Task

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs-0.1.0"
PNG = b"\x89PNG\r\n\x1a\n"


def _copy(kind: str, tmp_path: Path) -> Path:
    run = tmp_path / kind
    shutil.copytree(FIXTURES / kind, run)
    (run / "report.md").unlink()  # written again below, from the other files
    return run


def test_classification_report_mentions_the_metrics_and_its_plots_exist(tmp_path):
    run = _copy("classification", tmp_path)
    paths = tfslm.write_report(run)
    assert set(paths) == {"report", "learning_curves", "confusion_matrix"}
    assert paths["report"] == run / "report.md"
    for key in ("learning_curves", "confusion_matrix"):
        assert paths[key].parent == run / "plots" and paths[key].read_bytes()[:8] == PNG, key
    report = paths["report"].read_text(encoding="utf-8")
    assert report.startswith("# Run report: classification\n")
    assert "- **task**: single_label_classification" in report
    assert "- **model**: bert from scratch (TFBertForSequenceClassification, 7,859 parameters)" in report
    assert "- **labels**: 3 (categorical)" in report and "- **monitor**: val_macro_f1" in report
    assert "- **rows**: train 72, validation 18" in report
    assert "| split | loss | accuracy | macro_f1 | examples |" in report
    assert "| validation | 1.0988 | 0.3333 | 0.1667 | 18 |" in report
    assert "| 1 | 0.3194 | 1.1011 | 0.3333 | 1.0988 | 0.1667 |" in report  # the one epoch of logs/history.csv
    assert "![Learning curves](plots/learning_curves.png)" in report
    assert "![Confusion matrix (validation)](plots/confusion_matrix.png)" in report
    assert not list(run.rglob(".*.tmp")), "no temporary files left"


@pytest.mark.slow
def test_regression_report_has_the_score_plot_and_the_score_metrics(tmp_path):
    run = _copy("regression", tmp_path)
    paths = tfslm.write_report(run)
    assert {"report", "learning_curves", "confusion_matrix", "scores"} <= set(paths)
    assert paths["scores"].read_bytes()[:8] == PNG
    report = paths["report"].read_text(encoding="utf-8")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["validation"]
    assert "- **targets**: score in [0, 1000], step 40" in report
    assert "| split | loss | qwk | mae | rmse | exact | adjacent | examples |" in report
    assert f"| {metrics['mae']:.1f} | {metrics['rmse']:.1f} |" in report and "502.9" in report
    assert "MAE and RMSE are on the original score scale" in report
    assert "![Predicted vs true score (validation)](plots/scores.png)" in report


def test_report_without_history_or_predictions_still_writes(tmp_path):
    run = _copy("classification", tmp_path)
    (run / "logs" / "history.csv").unlink()
    shutil.rmtree(run / "predictions")
    paths = tfslm.write_report(run)
    assert set(paths) == {"report", "confusion_matrix"}  # the matrix comes from metrics.json
    report = paths["report"].read_text(encoding="utf-8")
    assert "## Per epoch" not in report and "learning_curves.png" not in report


def test_report_of_an_unfinished_or_missing_run_is_a_run_dir_error(tmp_path):
    with pytest.raises(RunDirError, match="run directory not found"):
        tfslm.write_report(tmp_path / "nowhere")
    run = _copy("classification", tmp_path)
    (run / "metrics.json").unlink()
    with pytest.raises(RunDirError, match="no metrics.json"):
        tfslm.write_report(run)
    assert not (run / "report.md").exists() and not (run / "plots").exists()


def test_read_history_gives_columns_of_floats(tmp_path):
    history = read_history(FIXTURES / "classification")
    assert history["epoch"] == [0.0] and history["val_macro_f1"] == pytest.approx([1 / 6])
    assert read_history(tmp_path) == {}


def test_save_predictions_writes_true_and_predicted_per_row(tmp_path):
    labels = LabelSpace(("neg", "pos"))
    path = save_predictions(tmp_path, "validation", np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), [0, 0, 1], labels)
    assert path == tmp_path / "predictions" / "validation.csv"
    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    assert rows == [{"true_label": "neg", "predicted_label": "neg"}, {"true_label": "neg", "predicted_label": "pos"},
                    {"true_label": "pos", "predicted_label": "neg"}]
    task = Task(problem_type="regression", score_range=(0, 100), score_step=10)
    path = save_predictions(tmp_path, "test", np.array([[0.52], [0.1]]), [0.5, 0.25], labels, task=task)
    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    assert rows == [{"true_score": "50", "predicted_score": "50"}, {"true_score": "25", "predicted_score": "10"}]
