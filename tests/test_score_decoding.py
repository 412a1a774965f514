"""Score decoding (data.score_decoding): round, stretch and QWK-tuned thresholds, in NumPy and in the graph."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_config_dict, write_csv
from tfslm.config import config_from_dict
from tfslm.errors import ConfigError
from tfslm.tasks.base import Task
from tfslm.tasks.metrics import grid_ids, quadratic_weighted_kappa


def squeezed_scores(n: int, seed: int = 0):
    """True scores on a 0..1000 grid of 40 and outputs that keep their order but shrink towards the mean, with noise."""
    rng = np.random.default_rng(seed)
    true = np.clip(np.round(rng.normal(600, 180, n) / 40) * 40, 0, 1000)
    scaled = true / 1000.0
    outputs = 0.6 + 0.25 * (scaled - 0.6) + rng.normal(0, 0.02, n)
    return true, scaled[:, None], outputs[:, None].astype(np.float32)


def qwk_of(task, outputs, true):
    grid = task.grid()
    return quadratic_weighted_kappa(grid_ids(true, grid), grid_ids(task.decode(outputs, None)["score"], grid), len(grid))


def regression(rule: str, **kw) -> Task:
    return Task(problem_type="regression", score_range=(0, 1000), score_step=40, score_decoding=rule, **kw)


def test_stretch_and_thresholds_beat_rounding_on_squeezed_predictions():
    true, scaled, outputs = squeezed_scores(300, seed=1)
    test_true, _, test_outputs = squeezed_scores(300, seed=2)
    rounding = regression("round")
    stretch = regression("stretch").fit_decoding(outputs, scaled, None, train_targets=scaled)
    thresholds = regression("thresholds").fit_decoding(outputs, scaled, None, train_targets=scaled)
    scores = {name: qwk_of(task, test_outputs, test_true) for name, task in
              (("round", rounding), ("stretch", stretch), ("thresholds", thresholds))}
    assert scores["stretch"] > scores["round"] + 0.1, scores
    assert scores["thresholds"] > scores["round"] + 0.1, scores
    # Thresholds are tuned for QWK on the data they saw: at least as good as the stretch there.
    assert qwk_of(thresholds, outputs, true) >= qwk_of(stretch, outputs, true) - 1e-9
    assert len(thresholds.decoding_params[0]) == len(rounding.grid()) - 1
    assert list(thresholds.decoding_params[0]) == sorted(thresholds.decoding_params[0])


def test_stretch_matches_the_training_mean_and_spread():
    _, scaled, outputs = squeezed_scores(500)
    task = regression("stretch").fit_decoding(outputs, scaled, None, train_targets=scaled)
    (scale, shift), = task.decoding_params
    stretched = outputs[:, 0] * scale + shift
    assert abs(stretched.mean() - scaled.mean()) < 1e-3 and abs(stretched.std() - scaled.std()) < 1e-3


def test_a_constant_prediction_is_shifted_not_blown_up():
    outputs = np.full((20, 1), 0.5, dtype=np.float32)
    targets = np.linspace(0, 1, 20)[:, None]
    (scale, shift), = regression("stretch").fit_decoding(outputs, targets, None, train_targets=targets).decoding_params
    assert scale == 1.0 and abs(shift) < 1e-6


def test_a_flat_validation_output_is_named_a_collapse_and_a_squeezed_one_is_not():
    _, scaled, squeezed = squeezed_scores(200)
    task = regression("stretch")
    assert task.flat_output_warning(squeezed, scaled) is None  # a quarter of the spread: the stretch's job
    flat = 0.6 + np.random.default_rng(1).normal(0, 0.0005, (200, 1))  # what a collapsed run outputs
    warning = task.flat_output_warning(flat, scaled)
    assert "every validation row about the same score" in warning and "--set training.learning_rate=" in warning
    assert f"{flat.std() * 1000:.3g} against {scaled.std() * 1000:.3g}" in warning  # both spreads in score points
    assert task.flat_output_warning(flat, None) is None and Task(problem_type="single_label_classification").flat_output_warning(flat) is None


@pytest.mark.slow
def test_a_run_whose_validation_outputs_do_not_vary_warns(tmp_path, caplog):
    """A real run: the validation rows are one text repeated, so any model gives them one score."""
    import logging

    from test_tasks import make_score_rows

    from tfslm.training.fit import train

    train_csv = write_csv(tmp_path / "train.csv", make_score_rows(64, seed=4))
    validation = [dict(row, text=make_score_rows(1, seed=9)[0]["text"]) for row in make_score_rows(16, seed=5)]
    cfg = tiny_config_dict(tmp_path, train_csv, data={"label_column": "score", "score_range": [0, 600], "score_step": 40,
                                                      "validation_file": str(write_csv(tmp_path / "validation.csv", validation))},
                           model={"problem_type": "regression"})
    cfg["training"].update(epochs=1, early_stopping_patience=None, baseline="none")
    cfg["export"] = {"saved_model": False}
    with caplog.at_level(logging.WARNING, logger="tfslm"):
        train(config_from_dict(cfg), verbose=0)
    assert "validation: the model gives every validation row about the same score" in caplog.text


@pytest.mark.parametrize("rule", ["round", "stretch", "thresholds"])
@pytest.mark.parametrize("kind", ["regression", "multi_target_regression"])
def test_graph_decoding_equals_numpy(rule, kind):
    import tensorflow as tf

    rng = np.random.default_rng(3)
    targets = 3 if kind != "regression" else 1
    outputs = rng.uniform(0.2, 0.9, (400, targets)).astype(np.float32)
    scaled = np.clip(np.round((outputs + rng.normal(0, 0.1, outputs.shape)) * 5) / 5, 0, 1)
    extra = dict(target_names=("a", "b", "c"), derive_total=True) if targets > 1 else {}
    task = Task(problem_type=kind, score_range=(0, 200), score_step=40, score_decoding=rule, **extra)
    task = task.fit_decoding(outputs, scaled, None, train_targets=scaled)
    assert bool(task.decoding_params) == (rule != "round")
    numpy_out = task.decode(outputs, None)
    graph_out = task.serving_outputs(tf.constant(outputs), list(task.target_names), None)
    for key in numpy_out:
        np.testing.assert_array_equal(graph_out[key].numpy(), numpy_out[key].astype(np.float32), err_msg=key)


def test_fitted_decoding_survives_task_json(tmp_path):
    _, scaled, outputs = squeezed_scores(100)
    task = regression("thresholds").fit_decoding(outputs, scaled, None, train_targets=scaled)
    task.save(tmp_path)
    loaded = Task.load(tmp_path)
    assert loaded == task and loaded.decoding_summary()["score_decoding"] == "thresholds"
    np.testing.assert_array_equal(loaded.decode(outputs, None)["score"], task.decode(outputs, None)["score"])


def test_old_task_json_decodes_by_rounding(tmp_path):
    (tmp_path / "task.json").write_text(json.dumps({"problem_type": "regression", "score_range": [0, 10], "score_step": 1}))
    task = Task.load(tmp_path)
    assert task.score_decoding == "round"
    assert task.decode(np.array([[0.42]], dtype=np.float32), None)["score"].tolist() == [4.0]


@pytest.mark.parametrize(
    "data, model, fragment",
    [
        ({"score_decoding": "sharpen", "score_range": [0, 10]}, {"problem_type": "regression"}, "data.score_decoding: got 'sharpen'"),
        ({"score_decoding": "thresholds", "score_range": [0, 10]}, {"problem_type": "regression"}, "set data.score_step"),
        ({"score_decoding": "stretch"}, {}, "data.score_decoding: decodes predicted scores"),
    ],
)
def test_config_errors(tmp_path, data, model, fragment):
    cfg = tiny_config_dict(tmp_path, tmp_path / "x.csv", data=data, model=model)
    with pytest.raises(ConfigError, match=fragment):
        config_from_dict(cfg)


def test_config_default_is_stretch(tmp_path):
    cfg = config_from_dict(tiny_config_dict(tmp_path, tmp_path / "x.csv", data={"score_range": [0, 10], "score_step": 1},
                                            model={"problem_type": "regression"}))
    assert Task.from_config(cfg).score_decoding == "stretch"


CONSUMER = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the in-graph tokenizer's ops)
assert "tfslm" not in sys.modules
loaded = tf.saved_model.load(sys.argv[1])
texts = json.load(open(sys.argv[2]))
out = loaded.signatures["serving_default"](text=tf.constant(texts))
json.dump({"score": out["score"].numpy().tolist()}, open(sys.argv[3], "w"))
"""


@pytest.mark.slow
def test_thresholds_run_serves_the_same_scores_in_a_tf_only_process(tmp_path):
    from test_tasks import make_score_rows

    from tfslm.serving.predictor import Predictor
    from tfslm.training.fit import train

    rows = make_score_rows(96, seed=4)
    path = write_csv(tmp_path / "scores.csv", rows)
    cfg = tiny_config_dict(tmp_path, path, data={"label_column": "score", "score_range": [0, 600], "score_step": 40,
                                                 "score_decoding": "thresholds"}, model={"problem_type": "regression"})
    cfg["training"].update(epochs=2, early_stopping_patience=None)
    result = train(config_from_dict(cfg), verbose=0)
    task = json.loads((result.run_dir / "task.json").read_text())
    assert task["score_decoding"] == "thresholds" and len(task["decoding_params"][0]) == 15
    assert result.metrics["decoding"]["score_decoding"] == "thresholds"
    texts = [r["text"] for r in make_score_rows(40, seed=5)]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    (tmp_path / "consumer.py").write_text(CONSUMER)
    proc = subprocess.run([sys.executable, str(tmp_path / "consumer.py"), str(result.run_dir / "saved_model"),
                           str(tmp_path / "texts.json"), str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads((tmp_path / "out.json").read_text())["score"]
    np.testing.assert_array_equal(served, Predictor.from_run(result.run_dir).predict(texts))
    card = (result.run_dir / "README.md").read_text()
    assert "cut points" in card and "np.array(" in card
