"""predict, evaluate and export write only what they created: no input column, run artefact or user file replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import assert_one_line_error, write_csv
from tfslm.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runs-0.1.0" / "classification"


@pytest.fixture
def run(tmp_path) -> Path:
    """The 0.1.0 classification run (labels sports/science/food), copied so commands may write into it."""
    run = tmp_path / "runs" / "classification"
    shutil.copytree(FIXTURE, run)
    return run


def _rows():
    return [{"text": "The striker scored a goal.", "label": "sports"}, {"text": "A lab experiment.", "label": "science"},
            {"text": "Bread from the oven.", "label": "food"}]


def test_predict_refuses_to_replace_input_columns_or_an_existing_file(run, tmp_path, capsys):
    scored = write_csv(tmp_path / "in.csv", [{**r, "predicted_label": "x"} for r in _rows()])
    out = tmp_path / "out.csv"
    assert_one_line_error(capsys, main(["predict", str(run), "--input", str(scored), "--output", str(out)]),
                          "already has column(s) predicted_label")
    assert not out.exists() and not list(tmp_path.glob(".out.csv.*"))

    clean = write_csv(tmp_path / "clean.csv", _rows())
    assert main(["predict", str(run), "--input", str(clean), "--output", str(out)]) == 0
    first = out.read_text()
    assert_one_line_error(capsys, main(["predict", str(run), "--input", str(clean), "--output", str(out)]),
                          "exists; pass --overwrite")
    assert main(["predict", str(run), "--input", str(clean), "--output", str(out), "--overwrite"]) == 0
    assert out.read_text() == first
    assert_one_line_error(capsys, main(["predict", str(run), "--input", str(clean), "--output", str(clean), "--overwrite"]),
                          "is also the input file")


def test_predict_and_evaluate_fixes_name_their_own_flags(run, tmp_path, capsys):
    body = write_csv(tmp_path / "body.csv", [{"body": r["text"], "topic": r["label"]} for r in _rows()])
    assert_one_line_error(capsys, main(["predict", str(run), "--input", str(body), "--output", str(tmp_path / "o.csv")]),
                          "pass --text-column")
    assert_one_line_error(capsys, main(["evaluate", str(run), "--data", str(body)]), "pass --text-column / --label-column")
    assert main(["evaluate", str(run), "--data", str(body), "--text-column", "body", "--label-column", "topic"]) == 0
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\nCaf\xe9 and bread,food\n".encode("latin-1"))
    assert_one_line_error(capsys, main(["predict", str(run), "--input", str(latin), "--output", str(tmp_path / "l.csv")]),
                          "pass --encoding")
    assert main(["predict", str(run), "--input", str(latin), "--output", str(tmp_path / "l.csv"), "--encoding", "latin-1"]) == 0
    holes = write_csv(tmp_path / "holes.csv", _rows() + [{"text": "", "label": "food"}])
    assert_one_line_error(capsys, main(["evaluate", str(run), "--data", str(holes)]), "pass --skip-bad-rows")
    assert main(["evaluate", str(run), "--data", str(holes), "--skip-bad-rows"]) == 0


def test_evaluate_never_replaces_run_artefacts(run, tmp_path, capsys):
    data = write_csv(tmp_path / "eval.csv", _rows())
    metrics = (run / "metrics.json").read_bytes()
    assert_one_line_error(capsys, main(["evaluate", str(run), "--data", str(data), "--output", str(run / "metrics.json"), "--overwrite"]),
                          "run's own metrics.json")
    assert_one_line_error(capsys, main(["evaluate", str(run), "--data", str(data), "--output", str(tmp_path)]), "is a directory")
    assert (run / "metrics.json").read_bytes() == metrics
    assert main(["evaluate", str(run), "--data", str(data)]) == 0
    assert main(["evaluate", str(run), "--data", str(data)]) == 0  # its own evaluations/eval.json: replaced
    assert (run / "evaluations" / "eval.json").is_file()


def test_export_refuses_the_run_itself_and_foreign_directories(run, tmp_path, capsys):
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    for target, fragment in [(run, "is or holds the run directory"), (run / "model", "run's own model"),
                             (run.parent, "is or holds the run directory"), (run / "config.yaml", "not a directory")]:
        assert_one_line_error(capsys, main(["export", str(run), "--output", str(target), "--overwrite"]), fragment)
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert_one_line_error(capsys, main(["export", str(run), "--output", str(mine)]), "not empty and not written by tfslm")
    assert (mine / "notes.txt").read_text() == "keep"


@pytest.mark.slow
def test_export_replaces_its_own_savedmodel_without_overwrite(run, tmp_path):
    out = tmp_path / "served" / "1"
    assert main(["export", str(run), "--output", str(out)]) == 0
    assert main(["export", str(run), "--output", str(out), "--tokenizer-ops", "tf_text"]) == 0  # its own: replaced in one step
    info = json.loads((out / "assets.extra" / "tfslm_export.json").read_text())
    assert info["tokenizer_ops"] == "tf_text"
    assert main(["export", str(run)]) == 0 and (run / "saved_model" / "saved_model.pb").is_file()
    yaml.safe_load((run / "config.yaml").read_text())
