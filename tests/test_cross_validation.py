"""`tfslm cv`: stratified folds of the training file, out-of-fold predictions, mean ± std, reruns of one fold."""

from __future__ import annotations

import copy
import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import assert_one_line_error, make_rows, tiny_config_dict, write_csv
from tfslm.config import DataConfig, config_from_dict
from tfslm.data.loading import load_data
from tfslm.data.splits import stratified_folds
from tfslm.errors import ConfigError, DataError, RunDirError
from tfslm.training.cross_validation import aggregate_folds, cross_validate, fold_config, fold_statistics


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- folds (fast)
def test_folds_keep_each_class_share_and_sizes():
    strata = np.repeat([0, 1, 2], [30, 12, 6])
    folds = stratified_folds(strata, 3, seed=7)
    assert sorted(Counter(folds.tolist()).values()) == [16, 16, 16]
    for label, total in ((0, 30), (1, 12), (2, 6)):
        per_fold = [int(np.sum((folds == f) & (strata == label))) for f in (1, 2, 3)]
        assert sum(per_fold) == total and max(per_fold) - min(per_fold) <= 1, (label, per_fold)
    assert np.array_equal(folds, stratified_folds(strata, 3, seed=7))  # seeded
    assert not np.array_equal(folds, stratified_folds(strata, 3, seed=8))


def test_load_data_holds_out_one_fold_with_row_numbers(tmp_path):
    rows = make_rows(60, seed=1)
    rows[5]["text"] = ""  # skipped: the row numbers of the others survive
    train = write_csv(tmp_path / "train.csv", rows)
    seen = []
    for fold in (1, 2, 3):
        cfg = DataConfig(train_file=str(train), folds=3, fold=fold, validation_split=0.2, on_bad_rows="skip")
        data = load_data(cfg, seed=0)
        assert data.splits == ["train", "validation", "test"]
        assert data.labels.names == ("food", "science", "sports")  # the whole file's label space in every fold
        assert set(data.rows["test"]).isdisjoint(data.rows["train"] + data.rows["validation"])
        assert len(data.rows["train"]) + len(data.rows["validation"]) + len(data.rows["test"]) == 59
        names = [data.labels.names[i] for i in data["test"]["label"]]
        assert [rows[r - 1]["label"] for r in data.rows["test"]] == names  # row numbers name the file's rows
        assert Counter(names) and max(Counter(names).values()) - min(Counter(names).values()) <= 1
        seen += data.rows["test"]
    assert sorted(seen) == [r for r in range(1, 61) if r != 6]  # every row in exactly one test fold


def test_too_many_folds_is_a_data_error(tmp_path):
    train = write_csv(tmp_path / "train.csv", make_rows(4))
    with pytest.raises(DataError, match="data.folds is 5 but the training file has only 4"):
        load_data(DataConfig(train_file=str(train), folds=5, fold=1), seed=0)


@pytest.mark.parametrize(("data", "fragment"), [
    ({"fold": 1}, "data.fold: 1 given without data.folds"),
    ({"folds": 1, "fold": 1}, "data.folds: expected an integer >= 2, got 1"),
    ({"folds": 3, "fold": 4}, "data.fold: expected the held-out fold, 1 to 3"),
    ({"folds": 3}, "data.fold: expected the held-out fold, 1 to 3 (data.folds), got none"),
    ({"folds": 3, "fold": 1, "test_file": "t.csv"}, "the held-out fold is the test split; remove data.test_file"),
])
def test_fold_config_errors(data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        config_from_dict({"data": {"train_file": "x.csv", **data}, "model": {"architecture": "bert"}})


def test_fold_config_drops_test_file_and_push(tmp_path):
    cfg = config_from_dict({"data": {"train_file": "x.csv", "test_file": "t.csv"}, "model": {"architecture": "bert"},
                            "hub": {"push": True, "repo_id": "me/x"}, "output_dir": str(tmp_path), "run_name": "demo"})
    fold = fold_config(cfg, 5, 2)
    assert (fold.data.folds, fold.data.fold, fold.data.test_file, fold.hub.push) == (5, 2, None, False)
    assert fold.run_dir == tmp_path / "demo-cv" / "fold-2"
    assert cfg.data.test_file == "t.csv"  # the caller's config is untouched
    with pytest.raises(ConfigError, match="--fold: expected a fold from 1 to 5"):
        cross_validate(cfg, folds=5, fold=6)
    with pytest.raises(ConfigError, match="--folds: expected an integer >= 2"):
        cross_validate(cfg, folds=1)


# ---------------------------------------------------------------- aggregation (fast, synthetic folds)
def test_fold_statistics_mean_and_sample_std():
    mean, std = fold_statistics([{"qwk": 0.5, "mae": 100.0, "num_examples": 10, "per_label": {}},
                                 {"qwk": 0.7, "mae": 80.0, "num_examples": 10},
                                 {"qwk": 0.6, "mae": 90.0, "num_examples": 9, "only_here": 1.0}])
    assert mean == pytest.approx({"qwk": 0.6, "mae": 90.0})
    assert std["qwk"] == pytest.approx(np.std([0.5, 0.7, 0.6], ddof=1)) and std["mae"] == pytest.approx(10.0)
    assert fold_statistics([{"qwk": 0.5}]) == ({"qwk": 0.5}, {"qwk": None})


def _fake_fold(root: Path, n: int, rows: list[int], accuracy: float, baseline: float | None = None) -> None:
    run = root / f"fold-{n}"
    (run / "predictions").mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    (run / "labels.json").write_text(json.dumps({"names": ["a", "b"], "kind": "categorical"}))
    metrics = {"test": {"loss": 1.0 - accuracy, "accuracy": accuracy, "macro_f1": accuracy, "num_examples": len(rows)}}
    if baseline is not None:
        metrics["baseline"] = {"test": {"loss": 0.9, "accuracy": baseline, "macro_f1": baseline}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    lines = ["row,true_label,predicted_label"] + [f"{r},{'ab'[r % 2]},{'ab'[r % 2] if r % 3 else 'a'}" for r in rows]
    (run / "predictions" / "test.csv").write_text("\n".join(lines) + "\n")


def test_aggregate_writes_cv_json_oof_and_report(tmp_path):
    root = tmp_path / "demo-cv"
    _fake_fold(root, 1, [1, 4, 7], 0.5, baseline=0.4)
    _fake_fold(root, 2, [2, 5, 8], 0.7, baseline=0.5)
    _fake_fold(root, 3, [3, 6], 0.6, baseline=0.6)
    result = aggregate_folds(root, 3, seed=42)
    assert result.complete and result.mean["accuracy"] == pytest.approx(0.6) and result.std["accuracy"] == pytest.approx(0.1)
    assert result.baseline_mean["accuracy"] == pytest.approx(0.5) and result.baseline_std["accuracy"] == pytest.approx(0.1)
    oof = _read_csv(root / "oof_predictions.csv")
    assert [int(r["row"]) for r in oof] == list(range(1, 9))
    assert [int(r["fold"]) for r in oof] == [1, 2, 3, 1, 2, 3, 1, 2]
    truth = [r["true_label"] for r in oof]
    pred = [r["predicted_label"] for r in oof]
    assert result.pooled["accuracy"] == pytest.approx(np.mean([t == p for t, p in zip(truth, pred)]))
    saved = json.loads((root / "cv.json").read_text())
    assert saved["folds"] == 3 and saved["seed"] == 42 and saved["out_of_fold_rows"] == 8
    assert saved["fold_metrics"]["2"]["accuracy"] == 0.7 and saved["baseline"]["mean"]["accuracy"] == pytest.approx(0.5)
    report = (root / "report.md").read_text()
    assert "| fold | loss | accuracy | macro_f1 |" in report
    assert "| **mean ± std** | 0.4000 ± 0.1000 | 0.6000 ± 0.1000 |" in report
    assert "| baseline mean ± std |" in report and "pooled out-of-fold (8 rows)" in report


def test_aggregate_partial_and_without_baseline(tmp_path):
    root = tmp_path / "demo-cv"
    _fake_fold(root, 1, [1, 3], 0.5)
    _fake_fold(root, 3, [2], 0.7)
    result = aggregate_folds(root, 3)
    assert result.finished == [1, 3] and result.missing == [2] and not result.baseline_mean
    assert json.loads((root / "cv.json").read_text())["baseline"] is None
    assert "**Incomplete:** fold(s) 2" in (root / "report.md").read_text()


def test_aggregate_refuses_a_row_in_two_folds(tmp_path):
    root = tmp_path / "demo-cv"
    _fake_fold(root, 1, [1, 2], 0.5)
    _fake_fold(root, 2, [2, 3], 0.5)
    with pytest.raises(RunDirError, match=r"row\(s\) \[2\] predicted by two folds"):
        aggregate_folds(root, 2)


def test_cv_refuses_foreign_files(tmp_path):
    cfg = config_from_dict({"data": {"train_file": "x.csv"}, "model": {"architecture": "bert"},
                            "output_dir": str(tmp_path), "run_name": "demo"})
    (tmp_path / "demo-cv").mkdir()
    (tmp_path / "demo-cv" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holds notes.txt, which `tfslm cv` did not write"):
        cross_validate(cfg, folds=3)


# ---------------------------------------------------------------- real training (tiny model)
@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cv")
    train = write_csv(tmp / "train.csv", make_rows(45, seed=4))
    values = tiny_config_dict(tmp, train, training={"epochs": 1, "early_stopping_patience": None},
                              export={"saved_model": False})
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(values))
    cfg = config_from_dict(values)
    result = cross_validate(cfg, folds=3, verbose=0)
    return tmp, config, cfg, result


@pytest.mark.slow
def test_each_row_predicted_exactly_once_out_of_fold(cv_run):
    _, _, cfg, result = cv_run
    assert result.complete and result.trained == [1, 2, 3]
    oof = _read_csv(result.cv_dir / "oof_predictions.csv")
    assert sorted(int(r["row"]) for r in oof) == list(range(1, 46))
    source = _read_csv(Path(cfg.data.train_file))
    assert all(r["true_label"] == source[int(r["row"]) - 1]["label"] for r in oof)
    assert Counter(r["fold"] for r in oof) == {"1": 15, "2": 15, "3": 15}
    for n in (1, 2, 3):  # each fold is an ordinary run that records its fold
        saved = yaml.safe_load((result.cv_dir / f"fold-{n}" / "config.yaml").read_text())
        assert saved["data"]["folds"] == 3 and saved["data"]["fold"] == n and saved["data"]["test_file"] is None
    assert set(result.mean) >= {"accuracy", "macro_f1", "loss"} and result.std["accuracy"] is not None
    assert "| **mean ± std** |" in (result.cv_dir / "report.md").read_text()


@pytest.mark.slow
def test_rerun_one_fold_leaves_the_others_untouched(cv_run):
    _, _, cfg, result = cv_run
    stamps = {n: (result.cv_dir / f"fold-{n}" / "metrics.json").stat().st_mtime_ns for n in (1, 2, 3)}
    again = cross_validate(cfg, folds=3, verbose=0)  # everything finished: nothing retrained
    assert again.trained == [] and again.mean == result.mean
    redo = cross_validate(cfg, folds=3, fold=2, overwrite=True, verbose=0)
    assert redo.trained == [2]
    after = {n: (result.cv_dir / f"fold-{n}" / "metrics.json").stat().st_mtime_ns for n in (1, 2, 3)}
    assert after[1] == stamps[1] and after[3] == stamps[3] and after[2] != stamps[2]
    changed = copy.deepcopy(cfg)
    changed.training.learning_rate = 1e-3
    with pytest.raises(RunDirError, match="a finished fold of another config"):
        cross_validate(changed, folds=3, verbose=0)


@pytest.mark.slow
def test_cli_cv_end_to_end(cv_run, capsys):
    from tfslm.cli import main

    _, config, _, result = cv_run
    assert main(["cv", str(config), "--folds", "3", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "folds finished: 3 of 3" in out and "accuracy: " in out and " ± " in out
    assert f"cross-validation directory: {result.cv_dir}" in out
    code = main(["cv", str(config), "--folds", "3", "--fold", "4"])
    assert_one_line_error(capsys, code, "--fold: expected a fold from 1 to 3")


def test_aggregate_pools_scores_on_the_grid(tmp_path):
    from tfslm.tasks.base import Task
    from tfslm.tasks.metrics import score_metrics

    root = tmp_path / "essay-cv"
    task = Task(problem_type="regression", score_range=(0.0, 200.0), score_step=40.0)
    truth = {1: 40.0, 2: 120.0, 3: 200.0, 4: 80.0}
    pred = {1: 80.0, 2: 120.0, 3: 160.0, 4: 80.0}
    for n, rows in ((1, [1, 3]), (2, [2, 4])):
        run = root / f"fold-{n}"
        (run / "predictions").mkdir(parents=True)
        (run / "labels.json").write_text(json.dumps({"names": ["0", "40", "80", "120", "160", "200"], "kind": "numeric", "ordered": True}))
        task.save(run)
        (run / "metrics.json").write_text(json.dumps({"test": {"loss": 0.1, "qwk": 0.5 + n / 10, "mae": 20.0}}))
        (run / "predictions" / "test.csv").write_text(
            "row,true_score,predicted_score\n" + "".join(f"{r},{truth[r]:g},{pred[r]:g}\n" for r in rows))
    result = aggregate_folds(root, 2)
    expected = score_metrics(list(truth.values()), list(pred.values()), grid=[0, 40, 80, 120, 160, 200])
    assert result.pooled == pytest.approx(expected)
    assert result.headline == ["loss", "qwk", "mae"] and result.std["qwk"] == pytest.approx(np.std([0.6, 0.7], ddof=1))
