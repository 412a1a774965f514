"""Run directories written by tfslm 0.1.0 still load, predict, export, report and push.

``tests/fixtures/runs-0.1.0/{classification,regression}`` are tiny from-scratch
BERT runs made by the 0.1.0 release (without ``saved_model/``, ``plots/`` and
TensorBoard events, to stay small). Each holds ``expected_predictions.json``:
texts with the logits and labels/scores the 0.1.0 ``Predictor`` gave for them.

Every test works on a copy in a temporary directory (the commands write into
the run directory). In the copy, the data paths of ``config.yaml`` (the 0.1.0
training CSVs under ``/tmp/fx/``) are pointed at a directory that does not
exist, as on any machine but the one that trained the runs: none of these
commands may need the training data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_csv
from hub_server import HubServer, hub_server  # noqa: F401  (pytest fixture)
from tfslm.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs-0.1.0"
KINDS = ["classification", "regression"]
TOKEN = "hf_SECRET_test_token_123"  # the token tests/hub_server.py's fixture accepts
OLD_DATA_DIR = "/tmp/fx/"  # where the 0.1.0 runs were trained from


def _copy_run(kind: str, dest: Path) -> Path:
    """A copy of the fixture run whose config names training data that does not exist."""
    run = dest / kind
    shutil.copytree(FIXTURES / kind, run)
    config = run / "config.yaml"
    absent = dest / "absent-training-data"
    config.write_text(config.read_text(encoding="utf-8").replace(OLD_DATA_DIR, f"{absent}/"), encoding="utf-8")
    assert OLD_DATA_DIR not in config.read_text(encoding="utf-8") and not absent.exists()
    return run


def _expected(run: Path) -> dict:
    return json.loads((run / "expected_predictions.json").read_text(encoding="utf-8"))


def _softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _assert_same_logits(got, expected) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # The fixture models barely depend on their input (one epoch of training): the rows
    # differ by ~1e-5. Their differences must match too, or a row mix-up would pass.
    np.testing.assert_allclose(got - got[:1], expected - expected[:1], atol=1e-6, rtol=0)


@pytest.fixture(scope="module", params=KINDS)
def exported(request, tmp_path_factory):
    """One copy per kind, exported once with `tfslm export` (shared by the serving and push tests)."""
    run = _copy_run(request.param, tmp_path_factory.mktemp(f"compat-{request.param}"))
    assert main(["export", str(run)]) == 0
    return request.param, run


def test_fixture_is_small_and_complete():
    for kind in KINDS:
        files = [p for p in (FIXTURES / kind).rglob("*") if p.is_file()]
        assert sum(p.stat().st_size for p in files) < 300_000, kind
        names = {p.relative_to(FIXTURES / kind).as_posix() for p in files}
        assert {"config.yaml", "labels.json", "task.json", "metrics.json", "model/config.json", "model/tf_model.h5",
                "model/tokenizer.json", "expected_predictions.json"} <= names, kind
        assert not {"saved_model", "plots"} & {n.split("/")[0] for n in names}, kind


@pytest.mark.parametrize("kind", KINDS)
def test_predictor_from_run_gives_the_old_logits_and_labels(kind, tmp_path):
    import tfslm

    run = _copy_run(kind, tmp_path)
    expected = _expected(run)
    predictor = tfslm.Predictor.from_run(run)
    texts = expected["texts"]
    _assert_same_logits(predictor.logits(texts), expected["logits"])
    if kind == "classification":
        assert predictor.task.problem_type == "single_label_classification"
        assert predictor.predict(texts) == expected["labels"]
        np.testing.assert_allclose(predictor.predict_proba(texts), _softmax(expected["logits"]), atol=1e-5)
    else:
        assert predictor.task.problem_type == "regression"
        decoded = predictor.predict_scores(texts)
        assert set(decoded) == set(expected["scores"])
        for key, values in expected["scores"].items():
            np.testing.assert_allclose(decoded[key], values, atol=1e-6)
        assert predictor.predict(texts) == expected["scores"]["score"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_cli_predict_on_a_small_csv(kind, tmp_path):
    run = _copy_run(kind, tmp_path)
    expected = _expected(run)
    texts = [t for t in expected["texts"] if t]  # an empty cell is a missing value in a CSV
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]
    source = write_csv(tmp_path / "in.csv", rows)
    output = tmp_path / "out.csv"
    assert main(["predict", str(run), "--input", str(source), "--output", str(output), "--batch-size", "3"]) == 0
    with open(output, newline="", encoding="utf-8") as handle:
        got = list(csv.DictReader(handle))
    assert [r["id"] for r in got] == [r["id"] for r in rows] and [r["text"] for r in got] == texts
    kept = [expected["texts"].index(t) for t in texts]
    if kind == "classification":
        names = json.loads((run / "labels.json").read_text())["names"]
        assert list(got[0]) == ["id", "text", "predicted_label", *[f"prob_{n}" for n in names]]
        assert [r["predicted_label"] for r in got] == [expected["labels"][i] for i in kept]
        probs = np.array([[float(r[f"prob_{n}"]) for n in names] for r in got])
        np.testing.assert_allclose(probs, _softmax(expected["logits"])[kept], atol=2e-6)
    else:
        assert list(got[0]) == ["id", "text", "predicted_score"]
        assert [float(r["predicted_score"]) for r in got] == [expected["scores"]["score"][i] for i in kept]


_CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the in-graph WordPiece op
texts = json.load(open(sys.argv[2], encoding="utf-8"))
served = tf.saved_model.load(sys.argv[1])
out = {k: v.numpy() for k, v in served.signatures["serving_default"](text=tf.constant(texts)).items()}
out = {k: [s.decode("utf-8") for s in v] if v.dtype == object else v.tolist() for k, v in out.items()}
out["signatures"] = sorted(served.signatures.keys())
assert "transformers" not in sys.modules and "tfslm" not in sys.modules, sorted(sys.modules)
json.dump(out, open(sys.argv[3], "w"))
"""


@pytest.mark.slow
def test_cli_export_serves_raw_strings_in_a_tf_only_process(exported, tmp_path):
    pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")
    kind, run = exported
    expected = _expected(run)
    info = json.loads((run / "saved_model" / "assets.extra" / "tfslm_export.json").read_text(encoding="utf-8"))
    assert info["in_graph_tokenizer"] and info["long_text"] == "truncate"
    (tmp_path / "texts.json").write_text(json.dumps(expected["texts"]), encoding="utf-8")
    (tmp_path / "consumer.py").write_text(_CONSUMER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the consumer cannot see tfslm
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "consumer.py"), str(run / "saved_model"), str(tmp_path / "texts.json"),
         str(tmp_path / "out.json")], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert {"serving_default", "serve_tokens", "tokenize"} <= set(out["signatures"])
    _assert_same_logits(out["logits"], expected["logits"])
    if kind == "classification":
        assert out["label"] == expected["labels"]
        np.testing.assert_allclose(out["probabilities"], _softmax(expected["logits"]), atol=1e-5)
    else:
        np.testing.assert_allclose(out["score"], expected["scores"]["score"], atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_cli_report_redraws_from_the_run_files(kind, tmp_path, capsys):
    run = _copy_run(kind, tmp_path)
    (run / "report.md").unlink()
    assert main(["report", str(run)]) == 0
    assert "report written to" in capsys.readouterr().out
    report = (run / "report.md").read_text(encoding="utf-8")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert report.startswith(f"# Run report: {kind}") and f"**monitor**: {metrics['monitor']}" in report
    plots = {"learning_curves.png", "confusion_matrix.png"} | ({"scores.png"} if kind == "regression" else set())
    for name in plots:
        assert (run / "plots" / name).stat().st_size > 1000, name
        assert f"(plots/{name})" in report, name
    headline = "accuracy" if kind == "classification" else "mae"
    assert f"{metrics['validation'][headline]:.4f}" in report or f"{metrics['validation'][headline]:.1f}" in report


@pytest.fixture
def hub_env(tmp_path, monkeypatch, hub_server):  # noqa: F811
    """HF_ENDPOINT/HF_TOKEN point at the local Hub server; nothing of the user's leaks in."""
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import reset_sessions

    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    for name in ("HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite is offline; this server is local
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    reset_sessions()
    yield hub_server
    reset_sessions()


@pytest.mark.slow
def test_cli_push_to_a_local_hub(exported, hub_env, capsys):
    kind, run = exported
    repo = f"tester/compat-{kind}"
    before = (run / "README.md").read_bytes()
    assert main(["push", str(run), "--repo-id", repo]) == 0
    assert f"pushed {run} to {hub_env.url}/" in capsys.readouterr().out
    assert len(hub_env.commits) == 1
    commit = hub_env.last_commit()
    assert commit["repo_id"] == repo and commit["revision"] == "main"
    files = commit["files"]
    for repo_path, local in [("tf_model.h5", "model/tf_model.h5"), ("config.json", "model/config.json"),
                             ("tokenizer.json", "model/tokenizer.json"), ("labels.json", "labels.json"),
                             ("README.md", "README.md"), ("saved_model/saved_model.pb", "saved_model/saved_model.pb")]:
        assert repo_path in files, (repo_path, sorted(files))
        assert files[repo_path]["sha256"] == hashlib.sha256((run / local).read_bytes()).hexdigest(), repo_path
    assert files["tf_model.h5"]["lfs"] is True
    assert not any(p.startswith(("logs/", "predictions/")) for p in files), sorted(files)
    assert (run / "README.md").read_bytes() == before  # the 0.1.0 card is pushed as it is
