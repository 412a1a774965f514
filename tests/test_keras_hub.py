"""The keras_hub backend (KerasHub on Keras 3): choice, tokenizer, a run trained, served and reloaded without transformers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import MINILM, REPO, make_rows, needs_minilm, tiny_config_dict, write_csv

pytest.importorskip("keras_hub", reason="keras-hub is not installed (pip install -e '.[keras-hub]')")

# A sitecustomize that makes `import transformers` fail, as on a machine without it.
BLOCKER = r'''
import sys
class _NoTransformers:
    def find_spec(self, name, path=None, target=None):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("transformers is blocked in this test process")
        return None
sys.meta_path.insert(0, _NoTransformers())
'''

CONSUMER = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the in-graph WordPiece op
texts = json.load(open(sys.argv[2], encoding="utf-8"))
served = tf.saved_model.load(sys.argv[1])
out = served.signatures["serving_default"](text=tf.constant(texts))
assert not {"transformers", "tfslm", "keras_hub"} & set(sys.modules), sorted(sys.modules)
json.dump({"labels": [s.decode() for s in out["label"].numpy()], "probabilities": out["probabilities"].numpy().tolist(),
           "signatures": sorted(served.signatures.keys())}, open(sys.argv[3], "w"))
"""

RELOAD = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, keras_hub, numpy as np
model_dir = sys.argv[1]
classifier = keras_hub.models.TextClassifier.from_preset(model_dir)
logits = classifier.predict(json.load(open(sys.argv[2])), verbose=0)
keras_model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
assert "tfslm" not in sys.modules
json.dump({"logits": np.asarray(logits).tolist(), "inputs": sorted(keras_model.input)}, open(sys.argv[3], "w"))
"""


def _env(tmp: Path, block_transformers: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN",)}
    paths = [str(REPO)]
    if block_transformers:
        (tmp / "blocker").mkdir(exist_ok=True)
        (tmp / "blocker" / "sitecustomize.py").write_text(BLOCKER)
        paths.insert(0, str(tmp / "blocker"))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _cli(tmp: Path, *args, block_transformers: bool = True):
    return subprocess.run([sys.executable, "-m", "tfslm.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(tmp, block_transformers), timeout=600, cwd=tmp)


# ------------------------------------------------------------ choice of backend
def test_model_backend_is_validated_in_one_line():
    from tfslm.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"model.backend: got 'keras-hub', expected one of: auto, transformers, keras_hub"):
        config_from_dict({"data": {"train_file": "x.csv"}, "model": {"architecture": "bert", "backend": "keras-hub"}})


def test_auto_picks_transformers_while_it_has_tf_classes_else_keras_hub(monkeypatch):
    from tfslm import backends

    monkeypatch.setattr(backends, "transformers_tf_status", lambda: None)
    assert backends.resolve_backend_name("auto")[0] == "transformers"
    monkeypatch.setattr(backends, "transformers_tf_status", lambda: "transformers 5.2.0 has no TF classes (removed in v5)")
    assert backends.resolve_backend_name("auto") == ("keras_hub", "auto: transformers 5.2.0 has no TF classes (removed in v5)")
    assert backends.resolve_backend_name("transformers")[0] == "transformers"


def test_each_backend_names_its_keras():
    from tfslm.backends import get_backend

    assert get_backend("keras_hub").keras.__name__ == "keras"
    assert get_backend("transformers").keras.__name__.startswith("tf_keras")
    assert hasattr(get_backend("keras_hub").keras_internals, "is_improvement")


def test_fast_tokenizer_gives_the_transformers_tokenizers_ids():
    pytest.importorskip("transformers")
    from tfslm.backends.fast_tokenizer import FastTokenizer
    from tfslm.backends.hf_tf import train_wordpiece_tokenizer
    from tfslm.backends.wordpiece import wordpiece_tokenizer_object

    texts = [r["text"] for r in make_rows(40)]
    ours = FastTokenizer(wordpiece_tokenizer_object(texts, vocab_size=300), model_max_length=128)
    theirs = train_wordpiece_tokenizer(texts, vocab_size=300)
    probe = ["A goal, today!", "Unknown wörds and ümlauts " * 5, ""]
    for kwargs in ({}, {"truncation": True, "max_length": 8}, {"padding": True}):
        assert ours(probe, **kwargs) == {k: v for k, v in theirs(probe, **kwargs).items()}
    windows = dict(ours(probe, truncation=True, max_length=8, stride=2, return_overflowing_tokens=True))
    expected = dict(theirs(probe, truncation=True, max_length=8, stride=2, return_overflowing_tokens=True))
    assert windows == expected
    assert ours.num_special_tokens_to_add() == theirs.num_special_tokens_to_add()


# ------------------------------------------------------------ a run without transformers
@pytest.fixture(scope="module")
def keras_hub_run(tmp_path_factory):
    """`tfslm train` with model.backend: auto in a process where `import transformers` fails."""
    tmp = tmp_path_factory.mktemp("keras_hub")
    write_csv(tmp / "train.csv", make_rows(120))
    cfg = tiny_config_dict(tmp, tmp / "train.csv", training={"epochs": 2, "mixed_precision": "off"})
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    result = _cli(tmp, "train", tmp / "cfg.yaml", "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, tmp / "runs" / "tiny", result.stderr


@pytest.mark.slow
def test_trains_predicts_and_exports_without_transformers(keras_hub_run):
    tmp, run_dir, log = keras_hub_run
    assert "backend: keras_hub (auto: transformers is not importable)" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation"]["num_examples"] == 24 and np.isfinite(metrics["validation"]["loss"])
    assert (run_dir / "model" / "model.keras").is_file() and (run_dir / "saved_model" / "saved_model.pb").is_file()
    write_csv(tmp / "inputs.csv", [{"text": r["text"]} for r in make_rows(30, seed=7)])
    result = _cli(tmp, "predict", run_dir, "--input", tmp / "inputs.csv", "--output", tmp / "predicted.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    result = _cli(tmp, "export", run_dir, "--output", tmp / "exported")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp / "exported" / "saved_model.pb").is_file()
    card = (run_dir / "README.md").read_text()
    assert "keras_hub.models.TextClassifier.from_preset" in card


@pytest.mark.slow
def test_saved_model_matches_predict_in_a_tf_only_process(keras_hub_run):
    import pandas as pd

    pytest.importorskip("tensorflow_text")
    tmp, run_dir, _ = keras_hub_run
    if not (tmp / "predicted.csv").is_file():
        assert _cli(tmp, "predict", run_dir, "--input", tmp / "inputs.csv", "--output", tmp / "predicted.csv").returncode == 0
    texts = list(pd.read_csv(tmp / "inputs.csv")["text"])
    (tmp / "texts.json").write_text(json.dumps(texts))
    (tmp / "consumer.py").write_text(CONSUMER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(tmp / "consumer.py"), str(run_dir / "saved_model"), str(tmp / "texts.json"),
                           str(tmp / "served.json")], capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads((tmp / "served.json").read_text())
    assert {"serving_default", "serve_tokens"} <= set(served["signatures"])
    predicted = pd.read_csv(tmp / "predicted.csv")
    names = json.loads((run_dir / "labels.json").read_text())["names"]
    assert served["labels"] == list(predicted["predicted_label"].astype(str))
    assert np.abs(np.asarray(served["probabilities"]) - predicted[[f"prob_{n}" for n in names]].to_numpy()).max() < 1e-3


@pytest.mark.slow
def test_saved_model_dir_reloads_with_keras_hub_alone(keras_hub_run):
    tmp, run_dir, _ = keras_hub_run
    (tmp / "reload.py").write_text(RELOAD)
    (tmp / "few.json").write_text(json.dumps(["the team scored a goal", "a recipe for bread"]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(tmp / "reload.py"), str(run_dir / "model"), str(tmp / "few.json"), str(tmp / "reloaded.json")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp / "reloaded.json").read_text())
    assert np.asarray(out["logits"]).shape == (2, 3)
    assert out["inputs"] == ["attention_mask", "input_ids", "token_type_ids"]


# ------------------------------------------------------------ tasks in process
@pytest.mark.slow
def test_regression_trains_on_keras_hub(tmp_path):
    from tfslm import load_config, train

    rows = [{"text": r["text"], "score": float(len(r["text"]) % 5)} for r in make_rows(80)]
    write_csv(tmp_path / "train.csv", rows)
    cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", data={"label_column": "score", "score_range": [0, 4], "score_step": 1},
                           model={"backend": "keras_hub", "problem_type": "regression"}, training={"epochs": 1, "mixed_precision": "off"},
                           export={"saved_model": False})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    result = train(load_config(tmp_path / "cfg.yaml"), verbose=0)
    assert "mae" in result.metrics["validation"]
    assert (result.run_dir / "model" / "model.keras").is_file()


# ------------------------------------------------------------ checkpoint conversion
@needs_minilm
@pytest.mark.slow
def test_minilm_encoder_matches_the_transformers_tf_model():
    pytest.importorskip("transformers")
    from tfslm.backends import get_backend
    from tfslm.backends.keras_hub import task_of
    from tfslm.config import ModelConfig
    from tfslm.data.labels import LabelSpace

    labels = LabelSpace(["a", "b", "c"])
    model_cfg = ModelConfig(checkpoint=str(MINILM), max_length=64, dropout=0.0)
    kh_model, kh_tok = get_backend("keras_hub").build_model(model_cfg, labels)
    hf_model, hf_tok = get_backend("transformers").build_model(model_cfg, labels)
    texts = ["A sentence about football.", "Another, longer sentence about cooking bread in the oven."]
    enc = hf_tok(texts, padding=True, return_tensors="np")
    assert kh_tok(texts, padding=True, return_tensors="np")["input_ids"].tolist() == enc["input_ids"].tolist()
    features = {"token_ids": enc["input_ids"], "segment_ids": enc["token_type_ids"], "padding_mask": enc["attention_mask"]}
    backbone = task_of(kh_model).backbone
    main_layer = getattr(hf_model, hf_model.base_model_prefix)
    theirs = main_layer(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"],
                        training=False).last_hidden_state
    mask = enc["attention_mask"].astype(bool)

    def gap():
        return float(np.abs(np.asarray(backbone(features)["sequence_output"])[mask] - np.asarray(theirs)[mask]).max())

    # KerasHub's BertBackbone hard-codes the tanh-approximate GELU (its converter ignores config.json's
    # hidden_act "gelu"): as converted, the outputs differ by ~1e-3 ...
    assert gap() < 5e-3
    import keras

    for layer in backbone.transformer_layers:
        layer._feedforward_intermediate_dense.activation = keras.activations.gelu  # the exact GELU transformers uses
    # ... and with the exact GELU the converted weights give transformers' outputs.
    assert gap() < 1e-4

    # Training too: the same seeded head and batches through each backend's own optimizer and loss give the same
    # losses step after step: within 1e-6 here; without sum_duplicate_sparse_gradients, 1e-4 to 6e-4 off from the 2nd step.
    from tfslm.backends import use_backend
    from tfslm.config import TrainingConfig
    from tfslm.training.fit import _seed_output_kernel
    from tfslm.training.optimizer import compile_model

    heads = [get_backend(name).output_dense(model) for name, model in (("transformers", hf_model), ("keras_hub", kh_model))]
    assert not np.allclose(heads[0].kernel.numpy(), np.asarray(heads[1].kernel))  # each backend's own random draw
    for head in heads:
        _seed_output_kernel(head, seed=42)  # as tfslm train does: training.seed draws the head, on either backend
    np.testing.assert_array_equal(heads[0].kernel.numpy(), np.asarray(heads[1].kernel))
    np.testing.assert_array_equal(heads[0].bias.numpy(), np.asarray(heads[1].bias))
    assert float(np.std(heads[0].kernel.numpy())) == pytest.approx(0.02 * 0.88, rel=0.1)  # truncated normal, std 0.02
    training = TrainingConfig(epochs=1, learning_rate=1e-4, warmup_ratio=0.0)  # the first step is a real update
    batch = hf_tok([" ".join(texts * 4), texts[1] * 3, texts[0] * 5, "bread " * 40], padding="max_length", truncation=True,
                   max_length=64, return_tensors="np")  # every row shares segment 0; words repeat
    x = {name: batch[name] for name in ("input_ids", "attention_mask", "token_type_ids")}
    losses = {}
    for name, model in (("transformers", hf_model), ("keras_hub", kh_model)):
        use_backend(name, announce=False)
        compile_model(model, training, steps_per_epoch=4)
        losses[name] = [float(model.train_on_batch(x, np.array([0, 2, 1, 2]), return_dict=True)["loss"]) for _ in range(4)]
    assert losses["keras_hub"] == pytest.approx(losses["transformers"], rel=2e-5)
    assert losses["transformers"][-1] < losses["transformers"][0]  # it trained


def test_checkpoint_dropout_is_the_configs_else_the_checkpoints_own(caplog):
    from tfslm.backends.keras_hub import checkpoint_dropout
    from tfslm.config import ModelConfig

    bert = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "classifier_dropout": None}
    distilbert = {"dropout": 0.1, "attention_dropout": 0.1, "seq_classif_dropout": 0.2}
    assert checkpoint_dropout(ModelConfig(), bert) == (0.1, 0.1)
    assert checkpoint_dropout(ModelConfig(), {**bert, "hidden_dropout_prob": 0.0}) == (0.0, 0.0)  # not KerasHub's 0.1
    assert checkpoint_dropout(ModelConfig(), distilbert) == (0.1, 0.2)
    assert checkpoint_dropout(ModelConfig(dropout=0.0), distilbert) == (0.0, 0.0)
    assert checkpoint_dropout(ModelConfig(), {}) == (0.1, 0.1)
    assert "attention_dropout" not in caplog.text
    with caplog.at_level("INFO", logger="tfslm"):
        checkpoint_dropout(ModelConfig(dropout=0.1, attention_dropout=0.0), bert)
    assert "model.attention_dropout 0.0 has no KerasHub counterpart" in caplog.text


def test_keras3_adam_on_duplicate_embedding_rows_needs_the_summed_gradient():
    # Keras 3's Adam squares an IndexedSlices gradient slice by slice: a row that appears twice in a batch gets the
    # second moment g1**2 + g2**2, not (g1 + g2)**2, and steps too far. tf-keras (and the dense gradient) sum first.
    import keras
    import tensorflow as tf

    from tfslm.backends.keras_hub import sum_duplicate_sparse_gradients

    def one_step(optimizer, densify: bool):
        embedding = keras.layers.Embedding(4, 3, embeddings_initializer=keras.initializers.Constant(0.5))
        ids = tf.constant([[1, 1, 1, 2]])  # row 1 three times
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(embedding(ids) * tf.constant([[[1.0], [2.0], [-0.5], [1.0]]]))
        (gradient,) = tape.gradient(loss, embedding.trainable_variables)
        assert isinstance(gradient, tf.IndexedSlices)
        optimizer.apply([tf.convert_to_tensor(gradient) if densify else gradient], embedding.trainable_variables)
        return embedding.embeddings.numpy()

    dense = one_step(keras.optimizers.Adam(0.1), densify=True)
    as_keras_does = one_step(keras.optimizers.Adam(0.1), densify=False)
    assert not np.allclose(as_keras_does[1], dense[1], atol=1e-3)  # the bug: row 1 moved 1.09x as far (sqrt(6.25 / 5.25))
    fixed = one_step(sum_duplicate_sparse_gradients(keras.optimizers.Adam(0.1)), densify=False)
    np.testing.assert_allclose(fixed, dense, atol=1e-6)


@needs_minilm
@pytest.mark.slow
@pytest.mark.parametrize("dropout", [0.0, None])
def test_model_dropout_reaches_the_converted_encoder(dropout):
    # KerasHub's converter ignores config.json's rates: its BertBackbone trained at 0.1 even with model.dropout 0.
    import keras

    from tfslm.backends import get_backend
    from tfslm.backends.keras_hub import task_of
    from tfslm.config import ModelConfig
    from tfslm.data.labels import LabelSpace

    model, _ = get_backend("keras_hub").build_model(ModelConfig(checkpoint=str(MINILM), dropout=dropout), LabelSpace(["a", "b"]))
    head = task_of(model)
    rates = {layer.rate for layer in head._flatten_layers() if isinstance(layer, keras.layers.Dropout)}
    rates |= {layer._dropout for layer in head._flatten_layers() if isinstance(layer, keras.layers.MultiHeadAttention)}
    assert rates == {0.0 if dropout == 0.0 else 0.1}  # None: MiniLM's own hidden_dropout_prob
    assert head.backbone.get_config()["dropout"] == (0.0 if dropout == 0.0 else 0.1)


# ------------------------------------------------------------ the rest of the training stack on Keras 3
@pytest.mark.slow
def test_chunk_tfrecord_and_mirrored_runs_on_keras_hub(tmp_path):
    write_csv(tmp_path / "train.csv", [{"text": " ".join([r["text"]] * 3), "label": r["label"]} for r in make_rows(90)])
    cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", model={"backend": "keras_hub"},
                           training={"epochs": 1, "mixed_precision": "off"}, export={"saved_model": False})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    runs = {
        "chunk": ["--set", "data.long_text=chunk", "--set", "data.chunk_stride=8", "--set", "export.saved_model=true"],
        "mirrored": ["--set", "training.strategy=mirrored", "--set", "training.cpu_replicas=2"],
    }
    for name, extra in runs.items():
        result = _cli(tmp_path, "train", tmp_path / "cfg.yaml", "--set", f"run_name={name}", "--verbose", "0", *extra,
                      block_transformers=False)
        assert result.returncode == 0, (name, result.stderr[-2000:])
    assert json.loads((tmp_path / "runs" / "chunk" / "metrics.json").read_text())["saved_model"]["long_text"] == "chunk"
    assert json.loads((tmp_path / "runs" / "mirrored" / "metrics.json").read_text())["distribution"]["replicas"] == 2
    result = _cli(tmp_path, "prepare", tmp_path / "cfg.yaml", "--output", tmp_path / "prepared", block_transformers=False)
    assert result.returncode == 0, result.stderr[-2000:]
    result = _cli(tmp_path, "train", tmp_path / "cfg.yaml", "--set", "run_name=tfrecord", "--set",
                  f"data.tfrecord_dir={tmp_path / 'prepared'}", "--verbose", "0", block_transformers=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_long_text_document_is_refused_on_keras_hub_in_one_line(tmp_path, capsys):
    from conftest import assert_one_line_error
    from tfslm.cli import main

    write_csv(tmp_path / "train.csv", make_rows(30))
    cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", model={"backend": "keras_hub"},
                           data={"long_text": "document", "chunk_stride": 8}, training={"epochs": 1, "mixed_precision": "off"})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    code = main(["train", str(tmp_path / "cfg.yaml"), "--verbose", "0"])
    assert_one_line_error(capsys, code, "data.long_text: document is not supported on the keras_hub backend")


@pytest.mark.slow
def test_push_uploads_the_preset_from_preset_needs(keras_hub_run):
    from tfslm.publish.hub import collect_run_files

    _, run_dir, _ = keras_hub_run
    files = collect_run_files(run_dir)
    preset = {"config.json", "task.json", "task.weights.h5", "model.weights.h5", "preprocessor.json", "tokenizer.json",
              "metadata.json", "model.keras"}
    assert preset <= set(files)
    assert files["task.json"] == run_dir / "model" / "task.json"  # KerasHub's, not the run's
    assert files["tfslm_task.json"] == run_dir / "task.json"
    assert "tfslm_tokenizer/tokenizer.json" in files and "README.md" in files


# ------------------------------------------------------------ resume (Keras 3 backups)
@pytest.fixture()
def on_keras_hub():
    from tfslm import backends

    before = list(backends._ACTIVE)
    backends.use_backend("keras_hub", announce=False)
    yield backends.get_backend()
    backends._ACTIVE[:] = before


def _keras3_toy_fit(tmp_path, scores, *, epochs, crash_at_epoch=None, seed=0, patience=None, delete_checkpoint=True):
    """A Keras 3 Dense model on 40 rows (10 steps of 4) with tfslm's callbacks in default_callbacks' order."""
    import keras

    from tfslm.training.backup import TrainingBackup
    from tfslm.training.callbacks import EarlyStoppingWithTieBreak, for_keras

    keras.utils.set_random_seed(seed)  # a second "process" starts from other weights
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.05, 60)), loss="mse")

    class Scripted(keras.callbacks.Callback):  # stands in for ValidationMetrics, and crashes on cue
        history, weights, start_iterations = [], {}, None

        def on_epoch_begin(self, epoch, logs=None):
            if self.start_iterations is None:
                type(self).start_iterations = int(self.model.optimizer.iterations)
            if epoch == crash_at_epoch:
                raise KeyboardInterrupt("simulated kill")

        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = scores[epoch]
            self.history.append({"epoch": epoch + 1, "score": scores[epoch]})
            self.weights[epoch] = [w.copy() for w in self.model.get_weights()]

    Scripted.history, Scripted.weights, Scripted.start_iterations = [], {}, None
    metric = Scripted()
    # start_from_epoch=1, as tfslm's training.min_epochs: Keras 3's best is None until an epoch is watched.
    es = for_keras(EarlyStoppingWithTieBreak, keras)(monitor="val_score", mode="max", patience=patience or epochs + 1,
                                                     restore_best_weights=True, start_from_epoch=1)
    csv_path = tmp_path / "logs" / "history.csv"
    csv_path.parent.mkdir(exist_ok=True)
    backup = for_keras(TrainingBackup, keras)(tmp_path / "backup", 3, early_stopping=es, validation_metrics=metric,
                                              csv_path=csv_path, delete_checkpoint=delete_checkpoint)
    try:
        history = model.fit(x, y, batch_size=4, shuffle=False, epochs=epochs, verbose=0,
                            callbacks=[metric, es, backup, keras.callbacks.CSVLogger(str(csv_path), append=True)])
    except KeyboardInterrupt as exc:
        if type(exc) is not KeyboardInterrupt:  # a TrainingInterrupted (a stop signal) is the test's to see
            raise
        history = None
    return model, history, backup, es, metric


def test_keras3_backup_resumes_at_the_epoch_after_the_last_backup(tmp_path, on_keras_hub):
    import keras

    from tfslm.training.backup import backup_position, has_backup

    scores = [0.5, 0.9, 0.3, 0.2]
    _, history, backup, _, first = _keras3_toy_fit(tmp_path, scores, epochs=4, crash_at_epoch=2)
    assert history is None and has_backup(tmp_path / "backup")
    assert backup_position(tmp_path / "backup") == {"epoch": 1, "step": 9}  # epoch 2's end: the next starts fresh
    weights_after_2 = first.weights[1]
    model, history, backup, es, metric = _keras3_toy_fit(tmp_path, scores, epochs=4, seed=7)
    assert isinstance(backup, keras.callbacks.BackupAndRestore)
    assert backup.resumed_from == {"epoch": 3, "step": 0, "steps_per_epoch": 10}
    assert metric.start_iterations == 20  # optimizer state (its step counter) restored with the weights
    assert int(model.optimizer.iterations) == 40
    assert history.epoch == [0, 1, 2, 3] and history.history["val_score"] == scores
    assert es.best_epoch == 1 and es.best == 0.9
    for restored, best in zip(model.get_weights(), weights_after_2):  # best epoch (2) restored, from before the kill
        np.testing.assert_array_equal(restored, best)
    assert [int(r.split(",")[0]) for r in (tmp_path / "logs" / "history.csv").read_text().splitlines()[1:]] == [0, 1, 2, 3]
    assert not (tmp_path / "backup").exists()
    assert model._initial_epoch is None  # a later fit of the same model starts at epoch 0


def test_keras3_backup_killed_before_its_commit_keeps_the_previous_one(tmp_path, on_keras_hub, monkeypatch):
    """Weights written, position.json not yet: the resume starts from the backup before (and repeats that epoch)."""
    import tfslm.atomic

    from tfslm.training.backup import backup_position

    scores = [0.5, 0.9, 0.3, 0.2]
    real, calls = tfslm.atomic.atomic_write_json, []

    def dies_at_the_second_commit(path, data):
        if path.name == "position.json":
            calls.append(data)
            if len(calls) == 2:
                raise KeyboardInterrupt("killed before position.json")
        return real(path, data)

    monkeypatch.setattr(tfslm.atomic, "atomic_write_json", dies_at_the_second_commit)
    assert _keras3_toy_fit(tmp_path, scores, epochs=4)[1] is None
    monkeypatch.setattr(tfslm.atomic, "atomic_write_json", real)
    assert backup_position(tmp_path / "backup") == {"epoch": 0, "step": 9}
    assert sorted(p.name for p in (tmp_path / "backup" / "keras").glob("*.h5")) == ["epoch-1.weights.h5", "epoch-2.weights.h5"]
    model, history, backup, _, _ = _keras3_toy_fit(tmp_path, scores, epochs=4, seed=7)
    assert backup.resumed_from["epoch"] == 2 and history.epoch == [0, 1, 2, 3] and int(model.optimizer.iterations) == 40


def test_keras3_run_that_early_stopping_ended_stays_ended(tmp_path, on_keras_hub):
    scores = [0.5, 0.9, 0.3, 0.2, 0.95, 0.99]
    _, history, _, es, first = _keras3_toy_fit(tmp_path, scores, epochs=6, patience=2, delete_checkpoint=False)
    assert es.stopped_epoch == 3 and len(history.epoch) == 4
    best = first.weights[1]
    model, history, backup, es, second = _keras3_toy_fit(tmp_path, scores, epochs=6, patience=2, seed=3, delete_checkpoint=False)
    assert second.start_iterations is None and backup.resumed_from["epoch"] == 5  # no epoch ran
    assert es.stopped_epoch == 3 and es.best_epoch == 1
    assert history.epoch == [0, 1, 2, 3] and history.history["val_score"] == scores[:4]
    for restored, expected in zip(model.get_weights(), best):
        np.testing.assert_array_equal(restored, expected)


@pytest.mark.slow
def test_train_on_keras_hub_killed_with_sigkill_in_epoch_2_resumes(tmp_path):
    """Real processes, no transformers: `tfslm train`, SIGKILL once epoch 1 is backed up, the same command again."""
    import signal

    from conftest import wait_for

    write_csv(tmp_path / "train.csv", make_rows(400, seed=3))
    training = {"epochs": 3, "batch_size": 8, "early_stopping_patience": None, "mixed_precision": "off"}
    cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", training=training, export={"saved_model": False})
    cfg["model"]["backend"] = "keras_hub"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = tmp_path / "runs" / "tiny"
    command = [sys.executable, "-m", "tfslm.cli", "train", str(tmp_path / "cfg.yaml"), "--verbose", "0"]
    position = run_dir / "backup" / "keras" / "position.json"
    with open(tmp_path / "first.log", "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(tmp_path, True), cwd=tmp_path)
        try:
            assert wait_for(position.is_file, proc, 300), (tmp_path / "first.log").read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=60)
    history = run_dir / "logs" / "history.csv"
    before = history.read_text().splitlines() if history.is_file() else []
    assert json.loads(position.read_text())["epoch"] == 0 and len(before) <= 2, "killed after epoch 2 ended"
    assert not (run_dir / "metrics.json").exists()

    second = _cli(tmp_path, "train", tmp_path / "cfg.yaml", "--verbose", "0")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "tfslm: resuming from epoch 2, step 0" in second.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] == {"epoch": 2, "step": 0, "steps_per_epoch": metrics["training"]["steps_per_epoch"]}
    assert metrics["epochs_trained"] == 3
    rows = history.read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [0, 1, 2]
    if len(before) == 2:
        assert rows[:2] == before  # epoch 1 was not trained again
    assert not (run_dir / "backup").exists()


@pytest.mark.parametrize("signal_at, resumed_epoch", [(15, 2), (21, 3)])
def test_keras3_sigterm_stops_at_the_next_step_and_resumes_from_the_last_epoch_end(tmp_path, on_keras_hub, monkeypatch, caplog,
                                                                                   signal_at, resumed_epoch):
    """Asked at each of the 10 step ends and at the epoch end: the 15th ask is step 4 of epoch 2 (the epoch is
    repeated on resume), the 21st its last step (the epoch-end backup is made first, then the run stops)."""
    import signal

    import tfslm.training.backup as backup_module
    from tfslm.training.interrupt import TrainingInterrupted

    scores = [0.5, 0.9, 0.3, 0.2]
    calls = []

    def sigterm_from(n):
        calls.append(1)
        return signal.SIGTERM if len(calls) >= n else None

    monkeypatch.setattr(backup_module, "stop_requested", lambda: sigterm_from(signal_at))
    with pytest.raises(TrainingInterrupted) as stopped:
        _keras3_toy_fit(tmp_path, scores, epochs=4)
    assert stopped.value.backup == str(tmp_path / "backup")
    assert ("a rerun repeats this epoch from its start" in caplog.text) == (resumed_epoch == 2)
    monkeypatch.setattr(backup_module, "stop_requested", lambda: None)
    model, history, backup, _, _ = _keras3_toy_fit(tmp_path, scores, epochs=4, seed=7)
    assert backup.resumed_from["epoch"] == resumed_epoch
    assert history.epoch == [0, 1, 2, 3] and int(model.optimizer.iterations) == 40


@pytest.mark.slow
def test_two_worker_cluster_on_keras_hub_computes_the_single_device_run(tmp_path):
    """Real processes on loopback, no transformers: MultiWorkerMirroredStrategy with Keras 3 models."""
    import csv
    import socket

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    write_csv(tmp_path / "train.csv", make_rows(160, seed=1))
    write_csv(tmp_path / "validation.csv", make_rows(40, seed=2))

    def config(run_name: str, **training) -> Path:
        cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", run_name=run_name, export={"saved_model": False})
        cfg["data"]["validation_file"] = str(tmp_path / "validation.csv")
        cfg["model"].update({"backend": "keras_hub", "dropout": 0.0})  # replicas would draw different masks
        cfg["training"].update({"learning_rate": 5e-3, "mixed_precision": "off", "epochs": 2, **training})
        (tmp_path / f"{run_name}.yaml").write_text(yaml.safe_dump(cfg))
        return tmp_path / f"{run_name}.yaml"

    single = _cli(tmp_path, "train", config("single", batch_size=16), "--verbose", "0")
    assert single.returncode == 0, single.stderr[-3000:]
    path = config("cluster", strategy="multi_worker", batch_size=8)
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs = []
    for index in range(2):
        env = _env(tmp_path, block_transformers=True)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen([sys.executable, "-m", "tfslm.cli", "train", str(path), "--verbose", "0"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path))
    try:
        outputs = [proc.communicate(timeout=500) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    assert "backend: keras_hub" in outputs[0][1] and "worker 1 of 2 (writes nothing)" in outputs[1][1]
    metrics = json.loads((tmp_path / "runs" / "cluster" / "metrics.json").read_text())
    assert metrics["distribution"]["workers"] == 2 and metrics["training"]["global_batch_size"] == 16

    def history(name):
        with open(tmp_path / "runs" / name / "logs" / "history.csv", newline="") as handle:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]

    ours, ref = history("cluster"), history("single")
    assert len(ours) == len(ref) == 2 and ref[1]["val_loss"] < ref[0]["val_loss"]
    for mine, theirs in zip(ours, ref):  # each worker takes half of every global batch: the same computation
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)


UPSTREAM_MULTI_WORKER_BUGS = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = {"a": np.random.default_rng(0).normal(size=(32, 4)).astype("float32")}
ds = tf.data.Dataset.from_tensor_slices((x, np.zeros((32, 1), "float32"))).batch(8)
with strategy.scope():
    inputs = keras.Input((4,), name="a")
    model = keras.Model({"a": inputs}, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
result = {}
def attempt(name):
    try:
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        result[name] = "ok"
    except ValueError as exc:
        result[name] = " ".join(str(exc).split())[:120]
attempt("keras")
from tfslm.backends.keras_hub import build_from_the_dataset_spec, mean_scalars_across_workers
build_from_the_dataset_spec(model, ds)
attempt("spec")
mean_scalars_across_workers()
attempt("both")
json.dump(result, open(sys.argv[1], "w"))
"""


@pytest.mark.slow
def test_keras3_multi_worker_fit_needs_both_workarounds(tmp_path):
    """Plain Keras 3 on two loopback workers: the two upstream bugs, and fit working once both workarounds are in."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    (tmp_path / "bugs.py").write_text(UPSTREAM_MULTI_WORKER_BUGS)
    procs = []
    for index in range(2):
        env = _env(tmp_path)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                       "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen([sys.executable, str(tmp_path / "bugs.py"), str(tmp_path / f"w{index}.json")],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    try:
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for index, (proc, (_, err)) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, err[-2000:]
        result = json.loads((tmp_path / f"w{index}.json").read_text())
        # keras-team/keras#20329: a dict of features cannot be reduced to read its shapes.
        assert "with an unsupported type (<class 'dict'>)" in result["keras"] or "Attempt to convert a value ({'a'" in result["keras"]
        # tensorflow/tensorflow#72388: the step's scalar logs are reduced over axis 0.
        assert "Invalid reduction dimension 0 for input with 0 dimensions" in result["spec"]
        assert result["both"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["multi", "ordinal", "multi_label"])
def test_score_and_multi_label_tasks_train_in_bf16_on_keras_hub(tmp_path, task_name):
    """Every task type on keras_hub, in mixed precision: metrics.json describes the float32 model `predict` serves."""
    from test_multi_label import MULTI, make_multi_rows
    from test_tasks import TASKS, make_score_rows

    from tfslm import load_config, train
    from tfslm.data.loading import load_data
    from tfslm.serving.predictor import Predictor
    from tfslm.tasks.base import Task

    if task_name == "multi_label":
        rows, sections = make_multi_rows(96, seed=1), MULTI
    else:
        rows, sections = make_score_rows(96, seed=1), TASKS[task_name]
    write_csv(tmp_path / "train.csv", rows)
    cfg = tiny_config_dict(tmp_path, tmp_path / "train.csv", export={"saved_model": False}, **sections)
    cfg["model"]["backend"] = "keras_hub"
    cfg["training"].update(epochs=2, mixed_precision="bf16", early_stopping_patience=None)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    config = load_config(tmp_path / "cfg.yaml")
    result = train(config, verbose=0)
    assert result.metrics["speed"]["mixed_precision"] == "bf16" and result.metrics["model"]["type"] == "Functional"
    validation = load_data(config.data, seed=config.training.seed, task=Task.from_config(config))["validation"]
    predictor = Predictor.from_run(result.run_dir)
    metrics = result.metrics["validation"]
    if task_name == "multi_label":
        predicted = predictor.predict(list(validation["text"]))
        assert len(predicted) == metrics["num_examples"] and {"micro_f1", "macro_f1"} <= set(metrics)
        return
    raw = {r["text"]: r for r in rows}
    texts = list(validation["text"])
    decoded = predictor.predict_scores(texts)
    truth = np.array([raw[t]["score"] for t in texts], dtype=np.float64)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(decoded["score"] - truth)), abs=1e-4)
