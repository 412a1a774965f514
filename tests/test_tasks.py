"""Score tasks: ordinal, regression, multi-target regression and banded labels, end to end."""

import csv
import json
import random

import numpy as np
import pytest

from conftest import ESSAYS, needs_essays, tiny_config_dict, write_csv
from tfslm.config import config_from_dict
from tfslm.errors import ConfigError, DataError
from tfslm.tasks.base import Task, parse_number_list

GOOD = ["excellent", "clear", "strong", "coherent", "precise", "rich"]
BAD = ["weak", "confused", "vague", "poor", "messy", "thin"]


def make_score_rows(n: int, seed: int = 0, parts: int = 3) -> list[dict]:
    """Texts whose share of 'good' words gives the score away; three part scores 0..200 step 40."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        scores = [rng.randint(0, 5) for _ in range(parts)]
        words = [rng.choice(GOOD) for _ in range(sum(scores))] + [rng.choice(BAD) for _ in range(5 * parts - sum(scores))]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "score": sum(scores) * 40, "parts": json.dumps([s * 40 for s in scores])})
    return rows


TASKS = {
    "regression": dict(data={"label_column": "score", "score_range": [0, 600], "score_step": 40},
                       model={"problem_type": "regression"}),
    "multi": dict(data={"label_column": "parts", "score_range": [0, 200], "score_step": 40,
                        "target_names": ["a", "b", "c"], "derive_total": True},
                  model={"problem_type": "multi_target_regression"}),
    "ordinal": dict(data={"label_column": "score", "score_step": 40, "score_range": [0, 600]},
                    model={"problem_type": "ordinal", "ordinal_decoding": "expected_value"}),
    "bands": dict(data={"label_column": "score", "bin_width": 100}, model={"problem_type": "ordinal"}),
}


@pytest.fixture(scope="module")
def score_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("scores") / "scores.csv", make_score_rows(96, seed=1))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, score_csv):
    """One tiny run per task type, 2 epochs (SavedModel only for the regression run)."""
    from tfslm.training.fit import train

    out = {}
    for name, sections in TASKS.items():
        tmp = tmp_path_factory.mktemp(name)
        cfg = tiny_config_dict(tmp, score_csv, run_name=name, export={"saved_model": name == "regression"}, **sections)
        cfg["training"].update(epochs=2, early_stopping_patience=None)
        out[name] = train(config_from_dict(cfg), verbose=0)
    return out


# ---------------------------------------------------------------- config
@pytest.mark.parametrize(
    "data, model, fragment",
    [
        ({}, {"problem_type": "ranking"}, "model.problem_type: got 'ranking'"),
        ({}, {"problem_type": "regression"}, "data.score_range: required for model.problem_type regression"),
        ({"score_range": [0, 1000]}, {"problem_type": "multi_target_regression"}, "data.target_names: multi_target_regression needs"),
        ({"score_range": [10, 0]}, {"problem_type": "regression"}, "data.score_range: expected [low, high]"),
        ({"bins": [0, 500, 400]}, {}, "data.bins: expected at least 3 increasing band edges"),
        ({"bins": [0, 5, 10], "bin_width": 1}, {}, "set one of them"),
        ({"bin_width": 100, "score_range": [0, 1000]}, {"problem_type": "regression"}, "bands are classes"),
        ({"derive_total": True}, {}, "data.derive_total: only used with"),
        ({"score_step": 0}, {}, "data.score_step: expected a positive number"),
        ({"long_text": "wrap"}, {}, "data.long_text: got 'wrap'"),
        ({}, {"ordinal_decoding": "median"}, "model.ordinal_decoding: got 'median'"),
    ],
)
def test_task_config_errors(tmp_path, data, model, fragment):
    cfg = tiny_config_dict(tmp_path, tmp_path / "x.csv", data=data, model=model)
    with pytest.raises(ConfigError) as err:
        config_from_dict(cfg)
    assert fragment in str(err.value)


def test_task_from_config_round_trip(tmp_path):
    cfg = config_from_dict(tiny_config_dict(tmp_path, tmp_path / "x.csv", **TASKS["multi"]))
    task = Task.from_config(cfg)
    assert task.num_targets == 3 and task.hf_problem_type == "regression" and task.total_range == (0.0, 600.0)
    task.save(tmp_path)
    assert Task.load(tmp_path) == task
    assert Task.load(tmp_path / "nowhere") == Task()  # older runs: classification


# ---------------------------------------------------------------- scales, grids, bands
def test_scale_unscale_and_grid():
    task = Task(problem_type="regression", score_range=(0, 1000), score_step=40)
    np.testing.assert_allclose(task.scale([0, 500, 1000]), [0, 0.5, 1])
    np.testing.assert_allclose(task.unscale([-0.2, 0.019, 0.021, 0.51, 1.3]), [0, 0, 40, 520, 1000])
    assert task.grid().tolist() == list(range(0, 1001, 40))
    decoded = task.decode(np.array([[0.5], [0.01]]), None)
    assert decoded["score"].tolist() == [520.0, 0.0]  # 500 is half-way: rounds up to 520


def test_parse_number_list():
    assert parse_number_list("[120, 160, 120, 160, 80]") == [120, 160, 120, 160, 80]
    assert parse_number_list("(1, 2.5)") == [1.0, 2.5]
    assert parse_number_list(" 600 ") == [600.0] and parse_number_list(40) == [40.0]
    for bad in ("", None, "[1, 'a']", "abc", "[nan]", True, "[]"):
        assert parse_number_list(bad) is None, bad


def test_bin_width_rounds_like_the_course_notebook():
    task = Task(bin_width=100)
    # total/100 rounded half up: 640 -> 6, 650 -> 7, 1000 -> 10, 40 -> 0
    assert [task.band_name(v) for v in (0, 40, 640, 650, 960, 1000)] == ["0", "0", "6", "7", "10", "10"]
    edges = Task(bins=(0, 400, 700, 1000))
    assert [edges.band_name(v) for v in (0, 399, 400, 1000)] == ["0-400", "0-400", "400-700", "700-1000"]
    assert edges.band_name(1001) is None


def test_bins_in_labels_json(tmp_path):
    from tfslm.data.loading import load_data
    from tfslm.data.labels import LabelSpace

    path = write_csv(tmp_path / "s.csv", make_score_rows(60, seed=2))
    cfg = config_from_dict(tiny_config_dict(tmp_path, path, data={"label_column": "score", "bins": [0, 200, 400, 600]}))
    data = load_data(cfg.data, task=Task.from_config(cfg))
    assert data.labels.names == ("0-200", "200-400", "400-600") and data.labels.ordered
    data.labels.save(tmp_path / "labels.json")
    stored = json.loads((tmp_path / "labels.json").read_text())
    assert stored["bins"]["200-400"] == {"low": 200.0, "high": 400.0, "score": 300.0}
    assert LabelSpace.load(tmp_path / "labels.json") == data.labels
    ids = data["train"]["label"]
    assert set(ids) <= {0, 1, 2}

    outside = write_csv(tmp_path / "o.csv", [{"text": "a b", "score": 700}, {"text": "c d", "score": 100}])
    cfg = config_from_dict(tiny_config_dict(tmp_path, outside, data={"label_column": "score", "bins": [0, 200, 400, 600]}))
    with pytest.raises(DataError, match="outside the bands: 700"):
        load_data(cfg.data, task=Task.from_config(cfg))


# ---------------------------------------------------------------- list-valued label cells
def test_list_valued_label_cells(tmp_path):
    from tfslm.data.loading import load_data

    path = write_csv(tmp_path / "s.csv", make_score_rows(50, seed=3))
    cfg = config_from_dict(tiny_config_dict(tmp_path, path, **TASKS["multi"]))
    data = load_data(cfg.data, task=Task.from_config(cfg))
    assert data["train"].features["label"].length == 3
    first = np.asarray(data["train"]["label"])
    assert first.shape[1] == 3 and first.min() >= 0 and first.max() <= 1
    assert data.labels.names[:3] == ("0", "40", "80") and data.labels.names[-1] == "600"  # the total's grid

    rows = make_score_rows(20, seed=4)
    rows[4]["parts"] = "[40, 80]"
    cfg = config_from_dict(tiny_config_dict(tmp_path, write_csv(tmp_path / "w.csv", rows), **TASKS["multi"]))
    with pytest.raises(DataError, match=r"row 5 holds \[40.0, 80.0\]; expected 3 numbers \(one per data.target_names: a, b, c\)"):
        load_data(cfg.data, task=Task.from_config(cfg))

    rows[4]["parts"] = "[40, 80, 240]"
    cfg = config_from_dict(tiny_config_dict(tmp_path, write_csv(tmp_path / "r.csv", rows), **TASKS["multi"]))
    with pytest.raises(DataError, match=r"outside data.score_range \[0, 200\] \(rows 5\)"):
        load_data(cfg.data, task=Task.from_config(cfg))


@needs_essays
def test_essay_competences_load(tmp_path):
    from tfslm.data.loading import load_data

    cfg = config_from_dict(tiny_config_dict(tmp_path, ESSAYS, data={
        "text_column": "essay", "label_column": "competence", "score_range": [0, 200], "score_step": 40,
        "target_names": ["c1", "c2", "c3", "c4", "c5"], "derive_total": True,
    }, model={"problem_type": "multi_target_regression"}))
    data = load_data(cfg.data, task=Task.from_config(cfg))
    assert data["train"].num_rows + data["validation"].num_rows == 686
    totals = np.asarray(data["train"]["label"]).sum(axis=1) * 200
    assert totals.max() <= 1000 + 1e-3 and len(np.unique(np.round(totals))) > 10


# ---------------------------------------------------------------- training and prediction
@pytest.mark.slow
def test_each_task_trains_and_writes_its_run(runs):
    expected = {"regression": "regression", "multi": "multi_target_regression", "ordinal": "ordinal", "bands": "ordinal"}
    for name, result in runs.items():
        run = result.run_dir
        task = json.loads((run / "task.json").read_text())
        assert task["problem_type"] == expected[name]
        val = result.metrics["validation"]
        assert {"qwk", "mae", "rmse", "adjacent"} <= set(val), name
        history = list(csv.DictReader(open(run / "logs" / "history.csv")))
        assert len(history) == 2 and "val_qwk" in history[0] and "val_mae" in history[0], name
        assert result.metrics["monitor"] == "val_qwk"
        model_config = json.loads((run / "model" / "config.json").read_text())
        if name in ("regression", "multi"):
            assert model_config["problem_type"] == "regression"
            assert len(model_config["id2label"]) == (1 if name == "regression" else 3)
    multi = runs["multi"].metrics["validation"]
    assert {"a_qwk", "b_mae", "c_rmse", "a_exact", "b_adjacent"} <= set(multi)


@pytest.mark.slow
def test_multi_target_mae_equals_one_computed_from_the_raw_scores(runs, score_csv):
    """The reported MAE of the total and of each part, recomputed here from the CSV's own scores."""
    from tfslm.data.loading import load_data
    from tfslm.serving.predictor import Predictor, load_run_config

    run = runs["multi"].run_dir
    cfg = load_run_config(run)
    validation = load_data(cfg.data, seed=cfg.training.seed, task=Task.from_config(cfg))["validation"]
    with open(score_csv, newline="", encoding="utf-8") as handle:
        raw = {row["text"]: json.loads(row["parts"]) for row in csv.DictReader(handle)}
    texts = list(validation["text"])
    assert len(texts) == runs["multi"].metrics["validation"]["num_examples"] and set(texts) <= set(raw)
    true_parts = np.array([raw[t] for t in texts], dtype=np.float64)  # 0..200 each, straight from the file
    decoded = Predictor.from_run(run).predict_scores(texts)
    metrics = runs["multi"].metrics["validation"]
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(decoded["score"] - true_parts.sum(axis=1))), abs=1e-4)
    for j, name in enumerate("abc"):
        assert metrics[f"{name}_mae"] == pytest.approx(np.mean(np.abs(decoded["scores"][:, j] - true_parts[:, j])), abs=1e-4)


def test_explicit_loss_for_multi_target():
    """transformers' own TF loss would pick sparse cross-entropy for num_labels > 1."""
    import tensorflow as tf

    from tfslm.config import TrainingConfig
    from tfslm.training.optimizer import compile_model

    model = tf.keras.Sequential([tf.keras.layers.Dense(3)])
    model.build((None, 4))
    task = Task(problem_type="multi_target_regression", target_names=("a", "b", "c"), score_range=(0, 1))
    compile_model(model, TrainingConfig(), steps_per_epoch=1, task=task)
    y_true = tf.constant([[0.0, 0.5, 1.0]])
    y_pred = tf.constant([[0.0, 0.0, 0.0]])
    assert float(model.loss(y_true, y_pred)) == pytest.approx((0 + 0.25 + 1) / 3)


@pytest.mark.slow
def test_predictions_on_the_score_scale(runs, score_csv, tmp_path):
    from tfslm.serving.predictor import predict_file

    grid = set(range(0, 601, 40))
    for name, result in runs.items():
        out = tmp_path / f"{name}.csv"
        assert predict_file(result.run_dir, score_csv, out) == 96
        rows = list(csv.DictReader(open(out)))
        header = rows[0].keys()
        if name == "regression":
            assert "predicted_score" in header and "predicted_label" not in header
            assert {int(r["predicted_score"]) for r in rows} <= grid
        elif name == "multi":
            assert {"predicted_a", "predicted_b", "predicted_c", "predicted_score"} <= set(header)
            for r in rows:
                parts = [int(r[f"predicted_{t}"]) for t in "abc"]
                assert all(p in range(0, 201, 40) for p in parts) and int(r["predicted_score"]) == sum(parts)
        elif name == "ordinal":
            assert {int(r["predicted_score"]) for r in rows} <= grid  # expected value, snapped to the grid
            assert {r["predicted_label"] for r in rows} <= {str(g) for g in grid}
        else:  # bands of 100: labels print as bands, scores are the band's value
            assert {r["predicted_label"] for r in rows} <= {str(k) for k in range(0, 7)}
            assert all(int(r["predicted_score"]) == 100 * int(r["predicted_label"]) for r in rows)


@pytest.mark.slow
def test_evaluate_file_on_scores(runs, score_csv, tmp_path):
    from tfslm.serving.predictor import evaluate_file

    metrics = evaluate_file(runs["multi"].run_dir, score_csv, output_path=tmp_path / "m.json")
    assert metrics["num_examples"] == 96 and {"qwk", "mae", "a_mae"} <= set(metrics)
    metrics = evaluate_file(runs["bands"].run_dir, score_csv, output_path=tmp_path / "b.json")
    assert metrics["num_examples"] == 96 and "qwk" in metrics


@pytest.mark.slow
def test_regression_saved_model_returns_scores(runs):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from tfslm.serving.predictor import Predictor

    run = runs["regression"].run_dir
    loaded = tf.saved_model.load(str(run / "saved_model"))
    texts = ["excellent clear strong weak", "weak poor vague messy thin"]
    out = loaded.signatures["serving_default"](text=tf.constant(texts))
    assert {"logits", "score", "scores"} <= set(out)
    expected = Predictor.from_run(run).predict(texts)
    np.testing.assert_allclose(out["score"].numpy(), expected)


@pytest.mark.slow
def test_ordinal_export_adds_score(runs, tmp_path):
    import tensorflow as tf

    from tfslm.serving.saved_model import export_saved_model
    from tfslm.serving.predictor import Predictor

    p = Predictor.from_run(runs["ordinal"].run_dir)
    export_saved_model(p.model, p.tokenizer, list(p.labels.names), 32, tmp_path / "sm",
                       fallback_reason="test: token signature only", task=p.task, labels=p.labels)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    enc = p.tokenizer(["excellent clear weak"], return_tensors="tf", padding=True)
    out = loaded.signatures["serve_tokens"](input_ids=tf.cast(enc["input_ids"], tf.int32), attention_mask=tf.cast(enc["attention_mask"], tf.int32))
    assert {"logits", "probabilities", "label_id", "label", "score"} <= set(out)
    decoded = p.predict_scores(["excellent clear weak"])
    assert float(out["score"][0]) == pytest.approx(float(decoded["score"][0]))
    assert out["label"][0].numpy().decode() == p.labels.names[int(decoded["label_id"][0])]


# ---------------------------------------------------------------- reports
def _is_png(path):
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_files_are_pngs(runs):
    for name, result in runs.items():
        run = result.run_dir
        assert (run / "report.md").is_file()
        for plot in ("learning_curves", "confusion_matrix", "scores"):
            assert _is_png(run / "plots" / f"{plot}.png"), (name, plot)
        text = (run / "report.md").read_text()
        assert "| validation |" in text and "plots/learning_curves.png" in text
    assert _is_png(runs["multi"].run_dir / "plots" / "targets.png")
    assert "### Per target" in (runs["multi"].run_dir / "report.md").read_text()


@pytest.mark.slow
def test_cli_report_regenerates(runs, capsys):
    from tfslm.cli import main

    run = runs["bands"].run_dir
    for p in (run / "plots").iterdir():
        p.unlink()
    (run / "report.md").unlink()
    assert main(["report", str(run)]) == 0
    assert "report written to" in capsys.readouterr().out
    assert _is_png(run / "plots" / "confusion_matrix.png") and (run / "report.md").is_file()


def test_cli_report_on_missing_run(tmp_path, capsys):
    from tfslm.cli import main

    assert main(["report", str(tmp_path / "none")]) == 2
    assert "run directory not found" in capsys.readouterr().err


# ---------------------------------------------------------------- long texts in windows
def test_chunk_encode_and_pool():
    from tfslm.inputs.chunking import chunk_encode, pool_windows
    from tfslm.training.evaluation import softmax
    from tfslm.backends.hf_tf import train_wordpiece_tokenizer

    tok = train_wordpiece_tokenizer([" ".join(GOOD + BAD)] * 3, vocab_size=200)
    texts = [" ".join(GOOD * 4), "weak poor"]
    enc, doc = chunk_encode(texts, tok, max_length=10, stride=3)
    assert doc.tolist()[0] == 0 and doc.tolist()[-1] == 1 and (doc == 0).sum() > 2 and (doc == 1).sum() == 1
    assert all(len(ids) <= 10 for ids in enc["input_ids"])
    # Consecutive windows of a document overlap by the stride.
    first, second = enc["input_ids"][0][1:-1], enc["input_ids"][1][1:-1]
    assert first[-3:] == second[:3]
    logits = np.random.default_rng(0).normal(size=(len(doc), 3))
    pooled = pool_windows(logits, doc, 2)
    np.testing.assert_allclose(softmax(pooled)[0], softmax(logits[doc == 0]).mean(axis=0), atol=1e-5)
    task = Task(problem_type="regression", score_range=(0, 1))
    np.testing.assert_allclose(pool_windows(logits[:, :1], doc, 2, task)[0, 0], logits[doc == 0, 0].mean(), atol=1e-6)
    with pytest.raises(ConfigError, match="data.chunk_stride: 8 tokens of overlap leave no new text"):
        chunk_encode(texts, tok, max_length=10, stride=8)


@pytest.mark.slow
def test_chunked_regression_run(tmp_path, score_csv):
    from tfslm.serving.predictor import Predictor
    from tfslm.training.fit import train

    cfg = tiny_config_dict(tmp_path, score_csv, export={"saved_model": False}, **TASKS["regression"])
    cfg["data"].update(long_text="chunk", chunk_stride=4)
    cfg["model"]["max_length"] = 12  # 15-word texts: several windows each
    cfg["training"].update(epochs=1)
    result = train(config_from_dict(cfg), verbose=0)
    assert result.metrics["validation"]["num_examples"] == result.metrics["data"]["validation"]["rows"]
    predictor = Predictor.from_run(result.run_dir)
    assert predictor.chunk_stride == 4
    scores = predictor.predict(["excellent clear strong " * 5, "weak"])
    assert len(scores) == 2 and all(s in range(0, 601, 40) for s in scores)


def test_early_stopping_tie_goes_to_lower_val_loss():
    import tensorflow as tf

    from tfslm.training.callbacks import EarlyStoppingWithTieBreak

    model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
    model.build((None, 2))
    stop = EarlyStoppingWithTieBreak(monitor="val_qwk", mode="max", patience=5, restore_best_weights=True)
    stop.set_model(model)
    stop.on_train_begin()
    for epoch, (qwk, loss) in enumerate([(0.0, 0.9), (0.0, 0.5), (0.0, 0.7), (0.2, 0.8), (0.2, 0.6)]):
        stop.on_epoch_end(epoch, {"val_qwk": qwk, "val_loss": loss})
    assert stop.best_epoch == 4 and stop.best == 0.2


def test_scores_off_the_grid_are_a_warning_with_the_figure(caplog):
    import logging

    task = Task(problem_type="regression", score_range=(0, 1000), score_step=40)
    with caplog.at_level(logging.WARNING, logger="tfslm"):
        task.parse_labels([[40.0], [35.0], [80.0], [990.0]], [1, 2, 3, 4], where="train.csv", column="score")
    assert "2 of 4 score(s) in column 'score' are not on the data.score_step 40 grid (e.g. 35, rows 2, 4)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tfslm"):
        task.parse_labels([[40.0], [80.0]], [1, 2], where="train.csv", column="score")
    assert caplog.text == ""
