"""data.long_text: document — windows of each essay pooled to one prediction inside the model.

A tiny from-scratch BERT (2 layers, hidden 32) and its tokenizer come from the
public API; texts are stretched so documents have 1 to 6+ windows of
``MAX_LENGTH`` tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_rows, tiny_config_dict, write_csv

import tfslm
from tfslm.config import config_from_dict
from tfslm.errors import ConfigError
from tfslm.inputs.documents import mean_logits, select_windows, select_windows_graph

MAX_LENGTH, STRIDE, BATCH = 16, 4, 4


def _long_rows(n: int, seed: int = 0) -> list[dict]:
    rows = make_rows(n, seed=seed)
    for i, row in enumerate(rows):  # 1x .. 6x the text, unique, so documents have 1 to 6+ windows
        row["text"] = " ".join([row["text"]] * (1 + i % 6)) + f" number {i}"
    return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("documents")
    cfg = tiny_config_dict(tmp, write_csv(tmp / "train.csv", _long_rows(40)), data={"long_text": "document", "chunk_stride": STRIDE})
    cfg["model"]["max_length"] = MAX_LENGTH
    cfg = config_from_dict(cfg)
    data = tfslm.load_data(cfg.data)
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    return cfg, data, model, tokenizer


def _window_logits(model, tokenizer, texts, max_windows=None):
    """The oracle: each kept window through the plain window model, one window at a time."""
    from tfslm.inputs.chunking import chunk_encode

    enc, doc_index = chunk_encode(texts, tokenizer, max_length=MAX_LENGTH, stride=STRIDE)
    keep = select_windows(doc_index, max_windows)
    out = [model({"input_ids": np.asarray([enc["input_ids"][i]], np.int32),
                  "attention_mask": np.asarray([enc["attention_mask"][i]], np.int32)}, training=False).logits.numpy()[0]
           for i in keep]
    return np.stack(out), doc_index[keep]


def test_select_windows_evenly_spaced_first_and_last_and_graph_agrees():
    doc_index = np.repeat(np.arange(5), [1, 3, 4, 9, 20])
    keep = select_windows(doc_index, 4)
    per_doc = [(keep[doc_index[keep] == d] - np.flatnonzero(doc_index == d)[0]).tolist() for d in range(5)]
    assert per_doc == [[0], [0, 1, 2], [0, 1, 2, 3], [0, 2, 5, 8], [0, 6, 12, 19]]
    assert select_windows(doc_index, None).tolist() == list(range(len(doc_index)))
    assert select_windows(doc_index, 1).tolist() == np.flatnonzero(np.diff(doc_index, prepend=-1)).tolist()
    for m in (None, 1, 2, 4, 30):
        assert select_windows_graph(doc_index.astype(np.int32), m).numpy().tolist() == select_windows(doc_index, m).tolist()
    assert select_windows_graph(np.zeros((0,), np.int32), 4).numpy().tolist() == []


def test_document_batch_gives_one_output_per_document_equal_to_the_mean_of_its_windows(setup):
    _, data, model, tokenizer = setup
    (val_ds,) = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=BATCH, max_length=MAX_LENGTH, splits=("validation",),
                                     long_text="document", chunk_stride=STRIDE, max_windows=3)
    doc_model = tfslm.DocumentModel(model)
    texts = list(data["validation"]["text"])
    window_logits, doc_index = _window_logits(model, tokenizer, texts, max_windows=3)
    expected = mean_logits(window_logits, doc_index, len(texts))
    got, counts = [], []
    for features, labels in val_ds:
        out = doc_model(features, training=False).numpy()
        assert out.shape == (labels.shape[0], model.config.num_labels)
        counts += np.bincount(features["doc_index"].numpy()).tolist()
        got.append(out)
    assert max(counts) == 3 and min(counts) == 1, counts
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-5)


def test_gradients_of_the_document_loss_reach_the_encoder(setup):
    import tensorflow as tf

    _, data, model, tokenizer = setup
    (train_ds,) = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=BATCH, max_length=MAX_LENGTH, splits=("train",),
                                       long_text="document", chunk_stride=STRIDE, seed=1)
    doc_model = tfslm.DocumentModel(model)
    features, labels = next(iter(train_ds))
    assert len(set(np.bincount(features["doc_index"].numpy()).tolist())) > 1  # documents of different window counts
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, doc_model(features, training=True))
    variables = doc_model.trainable_variables
    grads = dict(zip([v.name for v in variables], tape.gradient(loss, variables)))
    embeddings = [g for n, g in grads.items() if "word_embeddings" in n]
    layers = [g for n, g in grads.items() if "layer_._1" in n and "kernel" in n]
    assert embeddings and layers
    for g in embeddings + layers:
        assert g is not None and float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g)))) > 0


def test_each_training_document_once_per_epoch_with_consistent_doc_index(setup):
    _, data, model, tokenizer = setup
    inputs = tfslm.build_inputs(data, model, tokenizer, batch_size=BATCH, max_length=MAX_LENGTH, splits=("train",),
                                long_text="document", chunk_stride=STRIDE, max_windows=None, seed=2)
    from tfslm.inputs.chunking import chunk_encode

    enc, doc_index = chunk_encode(data["train"]["text"], tokenizer, max_length=MAX_LENGTH, stride=STRIDE)
    expected = sorted(
        (tuple(tuple(enc["input_ids"][i]) for i in np.flatnonzero(doc_index == d)), int(label))
        for d, label in enumerate(data["train"]["label"])
    )
    assert inputs.rows["train"] == len(expected) and inputs.steps_per_epoch == -(-len(expected) // BATCH)
    epochs = []
    for _ in range(2):
        seen = []
        for features, labels in inputs.train:
            ids, mask, doc = (features[k].numpy() for k in ("input_ids", "attention_mask", "doc_index"))
            assert doc.tolist() == sorted(doc.tolist()) and set(doc.tolist()) == set(range(len(labels)))
            for d, label in enumerate(labels.numpy().tolist()):
                rows = np.flatnonzero(doc == d)
                seen.append((tuple(tuple(ids[r][: mask[r].sum()].tolist()) for r in rows), int(label)))
        epochs.append(seen)
        assert sorted(seen) == expected
    assert epochs[0] != epochs[1]  # reshuffled every epoch


def test_config_errors(tmp_path, setup):
    base = tiny_config_dict(tmp_path, tmp_path / "train.csv", data={"long_text": "document"})

    def cfg_with(**sections):
        cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        for name, values in sections.items():
            cfg[name].update(values)
        return config_from_dict(cfg)

    with pytest.raises(ConfigError, match="training.input_pipeline: 'prepare_tf_dataset' is not available with data.long_text: document"):
        cfg_with(training={"input_pipeline": "prepare_tf_dataset"})
    with pytest.raises(ConfigError, match="training.static_shapes"):
        cfg_with(training={"static_shapes": True})
    with pytest.raises(ConfigError, match="training.strategy: 'mirrored'"):
        cfg_with(training={"strategy": "mirrored"})
    with pytest.raises(ConfigError, match="data.max_windows: expected an integer >= 1"):
        cfg_with(data={"max_windows": 0})
    with pytest.raises(ConfigError, match="model.document_pooling: got 'max'"):
        cfg_with(model={"document_pooling": "max"})
    with pytest.raises(ConfigError, match="data.long_text: 'document' is not available with data.tfrecord_dir"):
        cfg_with(data={"tfrecord_dir": str(tmp_path), "train_file": None})
    assert cfg_with(data={"max_windows": None}).data.max_windows is None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["regression"])  # classes pool by the same code (mean_logits); one run keeps the suite short
def test_cli_train_predict_export_and_saved_model_equals_predictor(tmp_path, kind):
    """`tfslm train` of a document run, then predict and export; serving_default == Predictor on multi-window texts."""
    import json

    import yaml

    from tfslm.cli import main
    from tfslm.serving.predictor import Predictor

    rows = _long_rows(48, seed=3)
    sections = {"data": {"long_text": "document", "chunk_stride": STRIDE, "max_windows": 3}}
    if kind == "regression":
        for i, row in enumerate(rows):
            row["score"] = 40 * (i % 5)
        sections["data"].update(label_column="score", score_range=[0, 160], score_step=40)
        sections["model"] = {"problem_type": "regression"}
    cfg = tiny_config_dict(tmp_path, write_csv(tmp_path / "train.csv", rows), **sections)
    cfg["model"]["max_length"] = MAX_LENGTH
    cfg["training"].update(epochs=1, batch_size=BATCH, early_stopping_patience=None)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    assert main(["train", str(tmp_path / "cfg.yaml"), "--verbose", "0"]) == 0
    run = tmp_path / "runs" / "tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation"]["num_examples"] == metrics["data"]["validation"]["rows"]  # documents, not windows
    assert metrics["speed"]["input_pipeline"] == "bucketed (documents)" and metrics["model"]["type"] == "DocumentModel"
    assert metrics["saved_model"]["long_text"] == "document" and metrics["saved_model"]["max_windows"] == 3
    assert (run / "model" / "config.json").is_file() and (run / "report.md").is_file()

    texts = ["", "Goal team.", *[r["text"] for r in rows[:6]], " ".join(r["text"] for r in rows[:12])]
    write_csv(tmp_path / "in.csv", [{"text": t} for t in texts])
    assert main(["predict", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]) == 0
    assert main(["export", str(run), "--output", str(tmp_path / "exported")]) == 0
    predictor = Predictor.from_run(run)
    assert predictor.document and predictor.max_windows == 3 and predictor.chunk_stride == STRIDE
    # The document rule: the mean logit of the kept windows, computed window by window here.
    window_logits, doc_index = _window_logits(predictor.model, predictor.tokenizer, texts, max_windows=3)
    assert np.bincount(doc_index).max() == 3 and np.bincount(doc_index).min() == 1
    np.testing.assert_allclose(predictor.logits(texts), mean_logits(window_logits, doc_index, len(texts)), atol=1e-5)

    tf_text = pytest.importorskip("tensorflow_text", reason="tensorflow-text has no wheel for this platform")
    assert tf_text
    import tensorflow as tf

    for saved in (run / "saved_model", tmp_path / "exported"):
        out = tf.saved_model.load(str(saved)).signatures["serving_default"](text=tf.constant(texts))
        np.testing.assert_allclose(out["logits"].numpy(), predictor.logits(texts), atol=1e-5)
        if kind == "classes":
            np.testing.assert_allclose(out["probabilities"].numpy(), predictor.predict_proba(texts), atol=1e-5)
        else:
            np.testing.assert_allclose(out["score"].numpy(), predictor.predict_scores(texts)["score"], atol=1e-5)
    info = json.loads((run / "saved_model" / "assets.extra" / "tfslm_export.json").read_text())
    assert info["long_text"] == "document" and info["pooling"] == "in_graph" and info["document_pooling"] == "mean"
