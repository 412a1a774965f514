"""The demo's scoring of score runs (regression in windows, multi-target) and multi-label runs: SavedModel = Predictor."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import tiny_config_dict, write_csv
from test_multi_label import make_multi_rows
from test_tasks import make_score_rows

pytestmark = pytest.mark.slow  # each case trains a tiny run (1 epoch)

RUNS = {
    "regression_chunk": ({"data": {"label_column": "score", "score_range": [0, 600], "score_step": 40,
                                   "long_text": "chunk", "chunk_stride": 8},
                          "model": {"problem_type": "regression"}}, make_score_rows),
    "multi_target": ({"data": {"label_column": "parts", "score_range": [0, 200], "score_step": 40,
                               "target_names": ["a", "b", "c"], "derive_total": True},
                      "model": {"problem_type": "multi_target_regression"}}, make_score_rows),
    "multi_label": ({"model": {"problem_type": "multi_label_classification"}}, make_multi_rows),
}
LONG = " ".join(["the team saw a new goal in the match today and the coach was very happy"] * 6)


@pytest.fixture(scope="module", params=list(RUNS))
def score_run(request, tmp_path_factory):
    from tfslm.config import config_from_dict
    from tfslm.training.fit import train

    sections, rows = RUNS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    path = write_csv(tmp / "train.csv", rows(120, seed=1))
    cfg = tiny_config_dict(tmp, path, run_name=request.param, **sections)
    cfg["training"].update(epochs=1, early_stopping_patience=None)
    return request.param, train(config_from_dict(cfg), verbose=0).run_dir, tmp


def test_score_rows_match_predictor_and_predict_file(score_run):
    from tfslm.demo.app import result_markdown
    from tfslm.demo.scoring import Scorer, prediction_columns
    from tfslm.serving.predictor import predict_file

    name, run_dir, tmp = score_run
    texts = ["Goal team.", LONG, "Bread oven recipe."]
    served, python = Scorer.from_run(run_dir), Scorer.from_run(run_dir, prefer="predictor")
    assert served.backend == "saved_model"
    a, b = served.score(texts), python.score(texts)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for key in ("score", "label"):
            if key in x:
                assert x[key] == pytest.approx(y[key], abs=1e-4)
        for key in ("scores", "probabilities"):
            for k, v in x.get(key, {}).items():
                assert v == pytest.approx(y[key][k], abs=1e-4)
        assert x.get("labels") == y.get("labels") and x.get("windows") == y.get("windows")
    if name == "regression_chunk":
        assert a[0]["windows"] == 1 and a[1]["windows"] > 1 and "score" in a[0]
        assert "overlapping windows" in result_markdown(a[1], served.task) and "Predicted score" in result_markdown(a[1], served.task)
    if name == "multi_target":
        assert set(a[0]["scores"]) == {"a", "b", "c"} and a[0]["score"] == pytest.approx(sum(a[0]["scores"].values()))
    if name == "multi_label":
        assert isinstance(a[0]["labels"], list) and "Predicted labels" in result_markdown(a[0], served.task)
    write_csv(tmp / "in.csv", [{"text": t} for t in texts])
    predict_file(run_dir, tmp / "in.csv", tmp / "out.csv")
    expected = pd.read_csv(tmp / "out.csv", keep_default_na=False).drop(columns=["text"])
    ours = prediction_columns(a, served.task, served.labels)
    ours.pop("windows", None)
    assert list(ours) == list(expected.columns)
    for column, values in ours.items():
        if expected[column].dtype.kind in "fi":
            assert pd.Series(values, dtype=float).sub(expected[column]).abs().max() < 1e-4, column
        else:
            assert [str(v) for v in values] == expected[column].astype(str).tolist(), column


def test_the_page_builds_for_score_runs(score_run):
    pytest.importorskip("gradio", reason='gradio is not installed (pip install -e ".[demo]")')
    from tfslm.demo.app import build_demo

    _, run_dir, _ = score_run
    demo = build_demo(run_dir)
    assert "score" in {d.api_name for d in demo.fns.values()}
