"""Serving proof: a run trained by `tfslm train`, its SavedModel called by a TF-only process,
compared with `tfslm predict`; then `tfslm push` over real HTTP to a local Hub-protocol server."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ESSAYS, make_rows, tiny_config_dict, write_csv
from hub_server import HubServer, hub_server  # noqa: F401  (pytest fixture)

pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")

pytestmark = pytest.mark.slow  # every test uses a run trained by `tfslm train` (and most start a process)

TOKEN = "hf_SECRET_serving_test_token_42"
CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the in-graph WordPiece op
texts = json.load(open(sys.argv[2], encoding="utf-8"))
served = tf.saved_model.load(sys.argv[1])
fn = served.signatures["serving_default"]
labels, probs = [], []
for start in range(0, len(texts), 32):
    out = fn(text=tf.constant(texts[start:start + 32]))
    labels += [s.decode("utf-8") for s in out["label"].numpy()]
    probs += out["probabilities"].numpy().tolist()
assert "transformers" not in sys.modules and "tfslm" not in sys.modules
json.dump({"labels": labels, "probabilities": probs, "signatures": sorted(served.signatures.keys())}, open(sys.argv[3], "w"))
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "PYTHONPATH")}
    env.update(extra)
    return env


def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tfslm.cli", *map(str, args)], capture_output=True, text=True, env=_env(**env), timeout=600)


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """`tfslm train` on the shared essays (scores as labels) or, without ../shared, on generated text."""
    tmp = tmp_path_factory.mktemp("serving")
    if ESSAYS.is_file():
        frame = pd.read_csv(ESSAYS)
        frame["band"] = (frame["score"] // 200).clip(upper=4).astype(int)  # 5 score bands
        frame[["essay", "band"]].to_csv(tmp / "essays.csv", index=False)
        cfg = tiny_config_dict(tmp, tmp / "essays.csv", data={"text_column": "essay", "label_column": "band"},
                               model={"max_length": 128, "vocab_size": 3000}, training={"epochs": 1})
        inputs = frame[["essay"]].head(200)
        text_column = "essay"
    else:
        write_csv(tmp / "train.csv", make_rows(150))
        cfg = tiny_config_dict(tmp, tmp / "train.csv", training={"epochs": 2})
        inputs = pd.DataFrame({"text": [r["text"] for r in make_rows(200, seed=3)]})
        text_column = "text"
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    result = _cli("train", tmp / "cfg.yaml", "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    inputs.to_csv(tmp / "inputs.csv", index=False)
    return tmp, tmp / "runs" / "tiny", text_column


def test_saved_model_matches_tfslm_predict_in_a_tf_only_process(served_run):
    from tfslm.data.cleaning import clean_text

    tmp, run_dir, text_column = served_run
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    result = _cli("predict", run_dir, "--input", tmp / "inputs.csv", "--output", tmp / "predicted.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    predicted = pd.read_csv(tmp / "predicted.csv")
    # A serving client sends the essay text; tfslm joins the list-encoded paragraphs the same way.
    texts = [clean_text(t) for t in pd.read_csv(tmp / "inputs.csv")[text_column]]
    (tmp / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    (tmp / "consumer.py").write_text(CONSUMER)
    proc = subprocess.run([sys.executable, str(tmp / "consumer.py"), str(run_dir / "saved_model"), str(tmp / "texts.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp / "out.json").read_text())
    assert {"serving_default", "serve_tokens"} <= set(out["signatures"])
    labels = json.loads((run_dir / "labels.json").read_text())["names"]
    agree = np.mean([a == str(b) for a, b in zip(out["labels"], predicted["predicted_label"].astype(str))])
    assert agree >= 0.99, agree
    ours = predicted[[f"prob_{name}" for name in labels]].to_numpy()
    assert np.abs(np.asarray(out["probabilities"]) - ours).max() < 1e-3  # predict rounds to 6 decimals


def test_saved_model_cli_lists_both_signatures(served_run):
    _, run_dir, _ = served_run
    cli = Path(sys.executable).with_name("saved_model_cli")
    result = subprocess.run([str(cli), "show", "--all", "--dir", str(run_dir / "saved_model")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signature_def['serving_default']" in result.stdout and "signature_def['serve_tokens']" in result.stdout
    assert "inputs['text']" in result.stdout and "outputs['label']" in result.stdout


def test_model_card_is_written(served_run):
    _, run_dir, _ = served_run
    from huggingface_hub import ModelCard

    card = ModelCard.load(run_dir / "README.md")
    assert "tfslm" in card.data.tags and "serving_default" in card.text


def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_over_http_and_failures_lose_nothing(served_run, hub_server, tmp_path):  # noqa: F811
    _, run_dir, _ = served_run
    hub_server.tokens = {TOKEN}
    before = _digest(run_dir)
    env = {"HF_ENDPOINT": hub_server.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}

    hub_server.fail(500)
    failed = _cli("push", run_dir, "--repo-id", "tester/essays", **env)
    last = failed.stderr.strip().splitlines()[-1]
    assert failed.returncode == 1 and last.startswith("tfslm: error: remote:") and hub_server.url in last and "HTTP 500" in last
    assert "Traceback" not in failed.stderr and TOKEN not in failed.stderr + failed.stdout
    wrong = _cli("push", run_dir, "--repo-id", "tester/essays", **{**env, "HF_TOKEN": "hf_wrong_token_0000"})
    assert wrong.returncode == 2 and "hf_wrong_token_0000" not in wrong.stderr
    assert _digest(run_dir) == before

    result = _cli("push", run_dir, "--repo-id", "tester/essays", "--private", "--commit-message", "first model", **env)
    assert result.returncode == 0, result.stderr[-2000:]
    commit = hub_server.last_commit()
    files = set(commit["files"])
    assert {"config.json", "tf_model.h5", "tokenizer.json", "vocab.txt", "labels.json", "README.md", "metrics.json", "config.yaml",
            "saved_model/saved_model.pb"} <= files
    assert not any(f.startswith(("logs/", "evaluations/")) for f in files)
    assert commit["summary"] == "first model" and hub_server.created[-1]["private"] is True
    assert _digest(run_dir) == before
    assert TOKEN not in result.stdout + result.stderr
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
