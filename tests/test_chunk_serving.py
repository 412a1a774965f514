"""`data.long_text: chunk` runs: the SavedModel cuts texts into windows and pools them in the graph.

A tiny chunk run is trained with `tfslm.train`; its SavedModel is called from a
separate Python process that imports TensorFlow and tensorflow_text only, and
its outputs are compared with `tfslm.Predictor`'s pooled outputs.
"""

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_rows, tiny_config_dict, write_csv

pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")

pytestmark = pytest.mark.slow  # every test uses the chunk runs trained by `tfslm.train`

MAX_LENGTH, STRIDE = 32, 8  # 30 text tokens a window, windows 22 tokens apart

CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the in-graph WordPiece op
texts = json.load(open(sys.argv[2], encoding="utf-8"))
served = tf.saved_model.load(sys.argv[1])
out = {k: v.numpy() for k, v in served.signatures["serving_default"](text=tf.constant(texts)).items()}
out = {k: [s.decode("utf-8") for s in v] if v.dtype == object else v.tolist() for k, v in out.items()}
windows = served.signatures["tokenize_windows"](text=tf.constant(texts))
out["doc_index"] = windows["doc_index"].numpy().tolist()
out["window_ids"] = windows["input_ids"].numpy().tolist()
out["window_mask"] = windows["attention_mask"].numpy().tolist()
out["signatures"] = sorted(served.signatures.keys())
empty = served.signatures["serving_default"](text=tf.constant([], tf.string))  # a request with no texts
out["empty_rows"] = sorted({v.shape[0] for v in empty.values()})
assert "transformers" not in sys.modules and "tfslm" not in sys.modules
json.dump(out, open(sys.argv[3], "w"))
"""


def _score_rows(n: int, seed: int = 0) -> list[dict]:
    rows = make_rows(n, seed=seed)
    rng = random.Random(seed)
    return [{"text": r["text"], "score": rng.randrange(0, 601, 40) if r["label"] != "food" else 600} for r in rows]


RUNS = {
    "classes": dict(data={"long_text": "chunk", "chunk_stride": STRIDE}),
    "regression": dict(data={"long_text": "chunk", "chunk_stride": STRIDE, "label_column": "score",
                             "score_range": [0, 600], "score_step": 40}, model={"problem_type": "regression"}),
}


@pytest.fixture(scope="module")
def chunk_runs(tmp_path_factory):
    """One tiny chunk run per output kind (class probabilities, scores), 1 epoch, SavedModel exported."""
    from tfslm.config import config_from_dict
    from tfslm.training.fit import train

    out = {}
    for name, sections in RUNS.items():
        tmp = tmp_path_factory.mktemp(name)
        rows = make_rows(120, seed=1) if name == "classes" else _score_rows(120, seed=1)
        csv_path = write_csv(tmp / "train.csv", rows)
        cfg = tiny_config_dict(tmp, csv_path, run_name=name, **sections)
        cfg["model"]["max_length"] = MAX_LENGTH
        cfg["training"].update(epochs=1, early_stopping_patience=None)
        out[name] = train(config_from_dict(cfg), verbose=0).run_dir
    return out


def _texts() -> list[str]:
    """Texts of 1 (empty, short), 2, 5+ and 8+ windows, mixed in one batch."""
    words = " ".join(r["text"] for r in make_rows(60, seed=7)).split()
    return ["", "Goal team.", " ".join(words[:40]), " ".join(words[:140]), "Bread oven.", " ".join(words[:220])]


def _hf_windows(tokenizer, texts, max_length, stride):
    """The oracle: the fast tokenizer's own overflowing windows (not tfslm's chunk_encode)."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)
    return [list(ids) for ids in enc["input_ids"]], list(enc["overflow_to_sample_mapping"])


def _strip(ids_rows, mask_rows):
    return [list(ids[: int(sum(mask))]) for ids, mask in zip(ids_rows, mask_rows)]


def _call_consumer(saved_model, texts, tmp_path) -> dict:
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    (tmp_path / "consumer.py").write_text(CONSUMER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the consumer cannot see tfslm
    proc = subprocess.run([sys.executable, str(tmp_path / "consumer.py"), str(saved_model), str(tmp_path / "texts.json"),
                           str(tmp_path / "out.json")], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


@pytest.mark.parametrize("name", list(RUNS))
def test_saved_model_pools_windows_like_predictor_in_a_tf_only_process(chunk_runs, name, tmp_path):
    from tfslm.serving.predictor import Predictor

    run = chunk_runs[name]
    predictor = Predictor.from_run(run)
    assert predictor.chunk_stride == STRIDE
    texts = _texts()
    window_ids, doc_index = _hf_windows(predictor.tokenizer, texts, MAX_LENGTH, STRIDE)
    windows = np.bincount(doc_index, minlength=len(texts))
    assert windows[0] == windows[1] == 1 and windows[2] == 2 and windows[3] >= 5 and windows[5] >= 8, windows

    out = _call_consumer(run / "saved_model", texts, tmp_path)
    assert "tokenize_windows" in out["signatures"]
    assert out["doc_index"] == doc_index
    assert _strip(out["window_ids"], out["window_mask"]) == window_ids
    assert out["empty_rows"] == [0]
    # The pooling, computed here: the model on each HF window, then the mean probability
    # (classes; served back as its log) or the mean output (scores) of each text's windows.
    padded = predictor.tokenizer.pad({"input_ids": window_ids}, padding=True, return_tensors="tf")
    outputs = predictor.model({"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}, training=False)
    window_logits = outputs.logits.numpy().astype(np.float64)
    doc_index = np.asarray(doc_index)
    if name == "regression":
        expected = np.stack([window_logits[doc_index == d].mean(axis=0) for d in range(len(texts))])
        np.testing.assert_allclose(out["logits"], expected, atol=1e-5)
    else:
        probs = np.exp(window_logits - window_logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        expected = np.stack([probs[doc_index == d].mean(axis=0) for d in range(len(texts))])
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_allclose(out["logits"], predictor.logits(texts), atol=1e-5)
    decoded = predictor.predict_scores(texts)
    if name == "regression":
        np.testing.assert_allclose(out["score"], decoded["score"], atol=1e-5)
        np.testing.assert_allclose(np.asarray(out["scores"])[:, 0], decoded["score"], atol=1e-5)
    else:
        np.testing.assert_allclose(out["probabilities"], predictor.predict_proba(texts), atol=1e-5)
        assert out["label"] == predictor.predict(texts)

    info = json.loads((run / "saved_model" / "assets.extra" / "tfslm_export.json").read_text())
    assert info["long_text"] == "chunk" and info["pooling"] == "in_graph" and info["chunk_stride"] == STRIDE
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["saved_model"]["pooling"] == "in_graph" and metrics["saved_model"]["long_text"] == "chunk"
    assert metrics["speed"]["input_pipeline"] == "prepare_tf_dataset (windows)"


def test_truncate_export_of_the_same_model_is_unchanged(chunk_runs, tmp_path):
    import tensorflow as tf

    from tfslm.serving.saved_model import export_saved_model
    from tfslm.serving.predictor import Predictor

    p = Predictor.from_run(chunk_runs["classes"])
    info = export_saved_model(p.model, p.tokenizer, list(p.labels.names), MAX_LENGTH, tmp_path / "sm", task=p.task, labels=p.labels)
    assert info["long_text"] == "truncate" and info["pooling"] is None and "chunk_stride" not in info
    assert info["signatures"] == ["serving_default", "serve_tokens", "tokenize"]
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    texts = _texts()
    out = loaded.signatures["serving_default"](text=tf.constant(texts))
    truncating = Predictor(p.model, p.tokenizer, p.labels, MAX_LENGTH, task=p.task)  # chunk_stride None
    np.testing.assert_allclose(out["logits"].numpy(), truncating.logits(texts), atol=1e-5)
    assert not np.allclose(out["logits"].numpy()[3], p.logits(texts)[3], atol=1e-5)  # 5+ windows: pooling matters
    empty = loaded.signatures["serving_default"](text=tf.constant([], tf.string))
    assert {v.shape[0] for v in empty.values()} == {0}


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("stride", [1, STRIDE, 29])
def test_in_graph_windows_equal_the_tokenizers_overflow(chunk_runs, side, stride):
    import tensorflow as tf

    from tfslm.serving.predictor import Predictor
    from tfslm.serving.wordpiece_graph import build_in_graph_tokenizer

    tokenizer = Predictor.from_run(chunk_runs["classes"]).tokenizer
    tokenizer.truncation_side = side
    words = " ".join(r["text"] for r in make_rows(40, seed=4)).split()
    # every length from 0 to 120 words: all the window edges (1, 2, 3+ windows, exact fits) for any stride
    texts = [" ".join(words[:n]) for n in range(121)] + ["Ação, coração e pé-de-moleque!", "😀 [SEP] emoji", " \t\n "]
    expected_ids, expected_docs = _hf_windows(tokenizer, texts, MAX_LENGTH, stride)
    assert max(np.bincount(expected_docs)) >= 5 and len(set(len(ids) for ids in expected_ids)) > 5
    module = build_in_graph_tokenizer(tokenizer, MAX_LENGTH)
    input_ids, attention_mask, doc_index = module.windows(tf.constant(texts), stride)
    assert doc_index.numpy().tolist() == expected_docs
    got = _strip(input_ids.numpy().tolist(), attention_mask.numpy().tolist())
    for row, (mine, theirs) in enumerate(zip(got, expected_ids)):
        assert mine == theirs, (row, texts[expected_docs[row]])
    assert len(got) == len(expected_ids)


def test_chunk_export_errors_and_fallback(chunk_runs, tmp_path):
    from tfslm.errors import ConfigError
    from tfslm.serving.saved_model import export_saved_model
    from tfslm.serving.predictor import Predictor

    p = Predictor.from_run(chunk_runs["classes"])
    with pytest.raises(ConfigError, match="data.chunk_stride: 30 tokens of overlap"):
        export_saved_model(p.model, p.tokenizer, list(p.labels.names), MAX_LENGTH, tmp_path / "x", chunk_stride=30)
    assert not (tmp_path / "x").exists()
    info = export_saved_model(p.model, p.tokenizer, list(p.labels.names), MAX_LENGTH, tmp_path / "tokens",
                              fallback_reason="test", chunk_stride=STRIDE)
    assert info["pooling"] == "client" and "tfslm.inputs.chunking.chunk_encode" in info["note"]
    assert info["signatures"] == ["serving_default", "serve_tokens"]
