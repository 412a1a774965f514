"""tfslm.Predictor and tfslm.predict_file (tfslm.serving.predictor).

Fast tests use a tiny model built in the test (untrained: the checks are about
shapes, batching and decoding) and the 0.1.0 fixture run; the slow ones train
a tiny run with ``tfslm.train`` and check that its predictions are right.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tfslm
from conftest import make_rows, tiny_config_dict, write_csv
from tfslm.config import config_from_dict
from tfslm.errors import DataError, RunDirError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runs-0.1.0" / "classification"
TEXTS = ["Goal!", "A long text about the new physics experiment in the lab and the theory behind it, really", "",
         "bread oven", "the coach of the team saw the match", "Spice"]


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predictor")
    cfg = config_from_dict(tiny_config_dict(tmp, write_csv(tmp / "train.csv", make_rows(60))))
    data = tfslm.load_data(cfg.data)
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    return model, tokenizer, data.labels


def test_predict_proba_rows_sum_to_one(untrained):
    model, tokenizer, labels = untrained
    predictor = tfslm.Predictor(model, tokenizer, labels, max_length=32)
    probs = predictor.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs > 0).all()
    assert predictor.predict_proba([]).shape == (0, 3)


def test_predict_returns_the_label_names_of_the_arg_max(untrained):
    model, tokenizer, labels = untrained
    predictor = tfslm.Predictor(model, tokenizer, labels, max_length=32)
    predicted = predictor.predict(TEXTS)
    assert predicted == [labels.names[i] for i in predictor.logits(TEXTS).argmax(axis=1)]
    assert set(predicted) <= set(labels.names) and all(isinstance(p, str) for p in predicted)


def test_logits_do_not_depend_on_batching_or_order(untrained):
    """Texts are batched in length order inside; each row must come back to its own text."""
    model, tokenizer, labels = untrained
    predictor = tfslm.Predictor(model, tokenizer, labels, max_length=32, batch_size=32)
    whole = predictor.logits(TEXTS)
    predictor.batch_size = 1  # one traced function for all: reduce_retracing keeps it to a couple of traces
    one = predictor.logits(TEXTS)
    predictor.batch_size = 4
    reverse = predictor.logits(TEXTS[::-1])[::-1]
    for other in (one, reverse):
        np.testing.assert_allclose(other, whole, atol=1e-5)
    assert not np.allclose(whole[0], whole[1], atol=1e-6), "different texts, different logits"


def test_predict_proba_refuses_a_regression_run():
    # Predictor.predict_proba returns task.probabilities(logits): a scorer has none and says what to call instead.
    task = tfslm.Task(problem_type="regression", score_range=(0, 10))
    with pytest.raises(TypeError, match="predict_scores"):
        task.probabilities(np.zeros((1, 1), dtype=np.float32))


@pytest.fixture
def fixture_run(tmp_path):
    run = tmp_path / "classification"
    shutil.copytree(FIXTURE, run)
    return run


def test_predict_file_writes_the_input_columns_plus_predictions(fixture_run, tmp_path):
    frame = pd.DataFrame({"id": [10, 11, 12], "text": ["The team scored.", "Lab theory", "Oven bread"], "note": ["a", "b", "c"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert tfslm.predict_file(fixture_run, tmp_path / "in.csv", tmp_path / "out.csv", batch_size=2) == 3
    out = pd.read_csv(tmp_path / "out.csv")
    names = ["food", "science", "sports"]
    assert list(out.columns) == ["id", "text", "note", "predicted_label", *[f"prob_{n}" for n in names]]
    pd.testing.assert_frame_equal(out[["id", "text", "note"]], frame)
    probs = out[[f"prob_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert out["predicted_label"].tolist() == [names[i] for i in probs.argmax(axis=1)]
    predictor = tfslm.Predictor.from_run(fixture_run)
    np.testing.assert_allclose(probs, predictor.predict_proba(frame["text"].tolist()), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classification", "in.csv", "out.csv"]


def test_predict_file_errors_leave_no_output(fixture_run, tmp_path):
    write_csv(tmp_path / "in.csv", [{"body": "no text column"}])
    with pytest.raises(DataError, match="no column 'text'"):
        tfslm.predict_file(fixture_run, tmp_path / "in.csv", tmp_path / "out.csv")
    write_csv(tmp_path / "ok.csv", [{"text": "fine"}])
    with pytest.raises(DataError, match="unsupported output type"):
        tfslm.predict_file(fixture_run, tmp_path / "ok.csv", tmp_path / "out.xlsx")
    with pytest.raises(RunDirError, match="run directory not found"):
        tfslm.predict_file(tmp_path / "nowhere", tmp_path / "ok.csv", tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classification", "in.csv", "ok.csv"]


# ---------------------------------------------------------------- a trained run
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    cfg = tiny_config_dict(tmp, write_csv(tmp / "train.csv", make_rows(150, seed=2)), export={"saved_model": False})
    cfg["training"].update(epochs=4, early_stopping_patience=None)
    return tfslm.train(config_from_dict(cfg), verbose=0).run_dir


@pytest.mark.slow
def test_trained_predictor_gets_fresh_topic_rows_right(trained_run):
    rows = make_rows(60, seed=11)
    predictor = tfslm.Predictor.from_run(trained_run)
    predicted = predictor.predict([r["text"] for r in rows])
    truth = [r["label"] for r in rows]
    majority = max(truth.count(n) for n in set(truth)) / len(truth)
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert accuracy > majority + 0.2, (accuracy, majority)
    probs = predictor.predict_proba([r["text"] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert predicted == [predictor.labels.names[i] for i in probs.argmax(axis=1)]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_trained_predict_file_matches_the_predictor(trained_run, tmp_path, suffix):
    rows = make_rows(25, seed=12)
    write_csv(tmp_path / "in.csv", [{"key": f"k{i}", "text": r["text"]} for i, r in enumerate(rows)])
    out = tmp_path / f"out{suffix}"
    assert tfslm.predict_file(trained_run, tmp_path / "in.csv", out, batch_size=4) == 25
    if suffix == ".jsonl":
        got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        with open(out, newline="", encoding="utf-8") as handle:
            got = list(csv.DictReader(handle, delimiter="\t"))
    assert [g["key"] for g in got] == [f"k{i}" for i in range(25)]
    assert [g["text"] for g in got] == [r["text"] for r in rows]
    assert [g["predicted_label"] for g in got] == tfslm.Predictor.from_run(trained_run).predict([r["text"] for r in rows])
