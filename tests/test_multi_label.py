"""Multi-label classification: label cells, thresholds, NumPy vs graph decoding, and a CLI run end to end."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
import yaml

from conftest import _FILLER, _WORDS, tiny_config_dict, write_csv
from tfslm.config import DataConfig, config_from_dict
from tfslm.data.labels import LabelSpace
from tfslm.errors import ConfigError, DataError
from tfslm.tasks import MultiLabelTask, Task
from tfslm.tasks.multi_label import THRESHOLD_GRID

LABELS = ("food", "science", "sports")
MULTI = {"model": {"problem_type": "multi_label_classification"}}


def make_multi_rows(n: int, seed: int = 0) -> list[dict]:
    """Texts holding the topic words of 0 to 3 topics; the label cell names those topics, in three spellings."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topics = sorted(rng.sample(LABELS, rng.choice([0, 1, 1, 2, 2, 3])))
        words = [w for t in topics for w in rng.sample(_WORDS[t], 2)] + rng.sample(_FILLER, rng.randint(2, 5))
        rng.shuffle(words)
        cell = [",".join(topics), json.dumps(topics), ", ".join(topics)][i % 3]
        rows.append({"text": " ".join(words).capitalize() + ".", "label": cell})
    return rows


# ---------------------------------------------------------------- label cells
def test_label_cells_lists_joined_strings_and_empty():
    task = MultiLabelTask()
    cells = ["sports,food", " sports , food ,", '["science", "food"]', "['food']", "[food, sports]", ["sports", "sports"], "", None]
    parsed = task.parse_labels([task.label_cell(c) for c in cells], list(range(1, 9)), where="t.csv", column="label")
    assert parsed == [["sports", "food"], ["sports", "food"], ["science", "food"], ["food"], ["food", "sports"], ["sports"], [], []]
    assert MultiLabelTask(label_separator="|").label_cell("a|b") == '["a", "b"]'

    labels = task.label_space(parsed, DataConfig())
    assert labels.names == LABELS and not labels.ordered
    hot = task.encode_targets(parsed, labels, where="t.csv", rows=list(range(1, 9)))
    assert hot.tolist()[0] == [1, 0, 1] and hot[-1].sum() == 0
    with pytest.raises(DataError, match=r"v.csv: row 7: unknown label 'art'.*add it to data.labels"):
        task.encode_targets([["food"], ["art"]], labels, where="v.csv", rows=[3, 7])


def test_load_data_multi_hot_and_declared_labels(tmp_path):
    from tfslm.data.loading import load_data

    path = write_csv(tmp_path / "m.csv", make_multi_rows(60, seed=1))
    cfg = config_from_dict(tiny_config_dict(tmp_path, path, **MULTI))
    task = Task.from_config(cfg)
    assert isinstance(task, MultiLabelTask) and task.label_separator == ","
    data = load_data(cfg.data, task=task)
    assert data.labels.names == LABELS and data["train"].features["label"].length == 3
    summary = data.summary()
    assert summary["train"]["rows"] + summary["validation"]["rows"] == 60 and set(summary["train"]["per_label"]) == set(LABELS)

    cfg = config_from_dict(tiny_config_dict(tmp_path, path, data={"labels": ["food", "science"]}, **MULTI))
    with pytest.raises(DataError, match=r"m.csv: row \d+: unknown label 'sports'"):
        load_data(cfg.data, task=Task.from_config(cfg))


@pytest.mark.parametrize("data, fragment", [
    ({"label_separator": ""}, "data.label_separator: expected a non-empty string"),
    ({"bins": [0, 5, 10]}, "data.bins/data.bin_width: bands are single classes"),
    ({"target_names": ["a", "b"]}, "data.target_names: only used with"),
])
def test_config_errors(tmp_path, data, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config_from_dict(tiny_config_dict(tmp_path, tmp_path / "x.csv", data=data, **MULTI))


# ---------------------------------------------------------------- thresholds and decoding
def _synthetic(seed=0, n=400):
    """Validation outputs of an under-confident model: positives mostly near p=0.3, negatives near p=0.1."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=(n, 3)) < np.array([0.2, 0.4, 0.05])).astype(np.float32)
    y[:, 2] = 0  # no positives: the threshold stays 0.5
    logits = np.where(y > 0, rng.normal(-0.85, 0.4, size=y.shape), rng.normal(-2.2, 0.4, size=y.shape))
    return logits.astype(np.float32), y


def test_tuned_thresholds_beat_one_half_on_validation():
    labels = LabelSpace(LABELS)
    logits, y = _synthetic()
    task = MultiLabelTask()
    tuned = task.fit_decoding(logits, y, labels)
    assert tuned.thresholds[2] == 0.5 and all(t in THRESHOLD_GRID for t in tuned.thresholds)
    assert tuned.thresholds[0] < 0.5 and tuned.thresholds[1] < 0.5
    before, after = task.evaluate(logits, y, labels), tuned.evaluate(logits, y, labels)
    assert after["micro_f1"] > before["micro_f1"] + 0.2 and after["macro_f1"] > before["macro_f1"]
    for name in ("food", "science"):
        assert after["per_label"][name]["f1"] > before["per_label"][name]["f1"]
    assert after["per_label"]["food"]["threshold"] == tuned.thresholds[0]
    # stored with the run, read back with the task
    assert Task.from_dict(json.loads(json.dumps(tuned.to_dict()))) == tuned


def test_metrics_by_hand():
    labels = LabelSpace(("a", "b"))
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=np.float32)
    logits = np.array([[2, -2], [2, -2], [-2, -2], [2, 2]], dtype=np.float32)  # predictions: a, a, -, ab
    m = MultiLabelTask().evaluate(logits, y, labels)
    # a: tp 2, fp 1, fn 0 -> P 2/3 R 1 F1 0.8; b: tp 1, fp 0, fn 1 -> P 1 R 0.5 F1 2/3
    assert m["per_label"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2, "threshold": 0.5})
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2) and m["micro_f1"] == pytest.approx(2 * 3 / (4 + 4))
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 1 + 2 / 3) / 4)  # the empty/empty row counts as right
    assert m["subset_accuracy"] == pytest.approx(0.5)
    logs = MultiLabelTask().epoch_logs(m)
    assert {"micro_f1", "a_precision", "b_recall", "b_f1"} <= set(logs) and "per_label" not in logs


def test_numpy_decoding_equals_graph_decoding():
    import tensorflow as tf

    labels = LabelSpace(LABELS)
    logits, y = _synthetic(seed=3, n=300)
    # logits right at the tuned cut points, where float64 and float32 probabilities could disagree
    task = MultiLabelTask(label_separator="|").fit_decoding(logits, y, labels)
    cuts = np.float32(np.log(np.asarray(task.thresholds)) - np.log1p(-np.asarray(task.thresholds)))
    logits = np.concatenate([logits, np.stack([cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf)])]).astype(np.float32)
    numpy_out = task.decode(logits, labels)
    graph_out = tf.function(lambda x: task.serving_outputs(x, labels.names, labels))(tf.constant(logits))
    np.testing.assert_array_equal(graph_out["predicted"].numpy(), numpy_out["predicted"])
    np.testing.assert_allclose(graph_out["probabilities"].numpy(), numpy_out["probabilities"], atol=1e-6)
    assert [s.decode() for s in graph_out["labels"].numpy()] == task.prediction_columns(numpy_out, labels)["predicted_labels"]
    assert numpy_out["predicted"][-3].tolist() == [1, 1, 1] and numpy_out["predicted"][-2][:2].tolist() == [0, 0]
    # below a cut of 0 (threshold 0.5) lies a subnormal, which TensorFlow flushes to 0: both sides then say yes
    assert numpy_out["predicted"][-2][2] == 1

    doc = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(task.pool_windows(logits[:6], doc, 3),
                               task.pool_windows_graph(tf.constant(logits[:6]), tf.constant(doc), 3).numpy(), atol=1e-5)
    probs = 1 / (1 + np.exp(-logits[:2].astype(np.float64)))
    np.testing.assert_allclose(1 / (1 + np.exp(-task.pool_windows(logits[:2], np.array([0, 0]), 1)[0])), probs.mean(axis=0), atol=1e-5)


# ---------------------------------------------------------------- end to end through the CLI
@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    from tfslm.cli import main

    tmp = tmp_path_factory.mktemp("multi")
    train_file = write_csv(tmp / "train.csv", make_multi_rows(180, seed=2))
    cfg = tiny_config_dict(tmp, train_file, run_name="multi", **MULTI)
    cfg["training"].update(epochs=4, early_stopping_patience=None)
    path = tmp / "multi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--verbose", "0"]) == 0
    return tmp, tmp / "runs" / "multi"


@pytest.mark.slow
def test_train_writes_multi_label_metrics(multi_run):
    _, run = multi_run
    metrics = json.loads((run / "metrics.json").read_text())
    val = metrics["validation"]
    assert {"loss", "micro_f1", "macro_f1", "samples_f1", "subset_accuracy"} <= set(val)
    assert set(val["per_label"]) == set(LABELS)
    assert all({"precision", "recall", "f1", "support", "threshold"} <= set(v) for v in val["per_label"].values())
    assert metrics["monitor"] == "val_micro_f1" and metrics["problem_type"] == "multi_label_classification"
    history = list(csv.DictReader(open(run / "logs" / "history.csv")))
    assert len(history) == 4 and {"val_micro_f1", "val_samples_f1", "val_food_precision", "val_sports_recall", "val_science_f1"} <= set(history[0])

    task = json.loads((run / "task.json").read_text())
    assert len(task["thresholds"]) == 3 and [val["per_label"][n]["threshold"] for n in LABELS] == task["thresholds"]
    assert json.loads((run / "model" / "config.json").read_text())["problem_type"] == "multi_label_classification"

    # the metrics agree with the predictions the run saved
    rows = list(csv.DictReader(open(run / "predictions" / "validation.csv")))
    true = [set(filter(None, r["true_labels"].split(","))) for r in rows]
    pred = [set(filter(None, r["predicted_labels"].split(","))) for r in rows]
    tp = sum(len(t & p) for t, p in zip(true, pred))
    assert val["micro_f1"] == pytest.approx(2 * tp / (sum(map(len, true)) + sum(map(len, pred))))
    assert val["num_examples"] == len(rows) == metrics["data"]["validation"]["rows"]

    card = (run / "README.md").read_text()
    assert "| id | name | threshold | train | validation | test | validation F1 |" in card
    assert "| Micro F1 |" in card and "| Samples F1 |" in card and 'print(out["labels"], out["probabilities"])' in card
    report = (run / "report.md").read_text()
    assert "### Per label (validation)" in report and "| split | loss | micro_f1 | macro_f1 | samples_f1 | subset_accuracy | examples |" in report


@pytest.mark.slow
def test_predict_export_and_saved_model_agree(multi_run, tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from tfslm.cli import main
    from tfslm.serving.predictor import Predictor

    tmp, run = multi_run
    rows = make_multi_rows(30, seed=9)
    scored = tmp_path / "scored.csv"
    assert main(["predict", str(run), "--input", str(write_csv(tmp_path / "in.csv", rows)), "--output", str(scored)]) == 0
    out = list(csv.DictReader(open(scored)))
    assert {"predicted_labels", "prob_food", "prob_science", "prob_sports"} <= set(out[0])

    predictor = Predictor.from_run(run)
    texts = [r["text"] for r in rows]
    predicted = predictor.predict(texts)
    assert [r["predicted_labels"] for r in out] == [",".join(p) for p in predicted]
    probs = predictor.predict_proba(texts)
    np.testing.assert_allclose([[float(r[f"prob_{n}"]) for n in LABELS] for r in out], probs, atol=1e-6)

    assert main(["evaluate", str(run), "--data", str(tmp_path / "in.csv"), "--output", str(tmp_path / "m.json")]) == 0
    assert {"micro_f1", "macro_f1", "samples_f1", "per_label"} <= set(json.loads((tmp_path / "m.json").read_text()))

    exported = tmp_path / "sm"
    assert main(["export", str(run), "--output", str(exported)]) == 0
    loaded = tf.saved_model.load(str(exported))
    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert np.abs(served["probabilities"].numpy() - probs).max() < 1e-5
    assert [s.decode() for s in served["labels"].numpy()] == [",".join(p) for p in predicted]
    np.testing.assert_array_equal(served["predicted"].numpy(), [[int(n in p) for n in LABELS] for p in predicted])
    info = json.loads((exported / "assets.extra" / "tfslm_export.json").read_text())
    assert info["task"]["thresholds"] == json.loads((run / "task.json").read_text())["thresholds"]
