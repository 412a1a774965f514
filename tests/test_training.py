import csv
import json

import numpy as np
import pytest

from conftest import make_rows, tiny_config_dict, write_csv
from tfslm.config import TrainingConfig, config_from_dict
from tfslm.errors import RunDirError


@pytest.mark.slow
def test_keras_user_flow_with_own_fit(tmp_path, train_csv):
    """Without the CLI: label space, compiled model, tokenizer, tf.data, and the user's own fit."""
    import tensorflow as tf

    import tfslm

    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv))
    data = tfslm.load_data(cfg.data, seed=0)
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    train_ds, val_ds = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=16, max_length=32)
    assert isinstance(train_ds, tf.data.Dataset) and isinstance(model, tf.keras.Model)
    tfslm.compile_model(model, cfg.training, steps_per_epoch=len(train_ds))
    callbacks = tfslm.default_callbacks(tmp_path / "run", val_ds, data.labels, cfg.training)
    history = model.fit(train_ds, validation_data=val_ds, epochs=2, callbacks=callbacks, verbose=0)
    assert {"loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(history.history)
    assert len(history.history["val_macro_f1"]) == 2
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "history.csv")))
    assert len(rows) == 2 and "val_macro_f1" in rows[0]
    assert list((tmp_path / "run" / "logs" / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_every_training_row_once_per_epoch(tmp_path, train_csv):
    import tfslm

    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv))
    data = tfslm.load_data(cfg.data, seed=0)
    model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    (train_ds,) = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=16, max_length=32, splits=("train",))
    seen = [tuple(x[x != 0]) for feats, _ in train_ds for x in feats["input_ids"].numpy()]
    expected = [tuple(tokenizer(t, truncation=True, max_length=32)["input_ids"]) for t in data["train"]["text"]]
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "polynomial", "constant"])
def test_schedules_warm_up_then_decay(schedule):
    from tfslm.training.optimizer import create_optimizer_for

    training = TrainingConfig(epochs=2, learning_rate=1e-3, warmup_ratio=0.1, schedule=schedule)
    optimizer, lr = create_optimizer_for(training, steps_per_epoch=50)
    values = [float(lr(step)) for step in (0, 5, 10, 50, 99)]
    assert values[0] < values[1] < values[2] <= 1e-3 + 1e-9  # warmup over the first 10 steps
    if schedule == "constant":
        assert values[3] == pytest.approx(1e-3) and values[4] == pytest.approx(1e-3)
    else:
        assert values[2] > values[3] > values[4] >= 0.0


@pytest.mark.slow
def test_train_writes_a_complete_run_and_refuses_to_overwrite(tmp_path, train_csv):
    from tfslm.training.fit import train

    test_file = write_csv(tmp_path / "test.csv", make_rows(30, seed=5))
    # float32: the epochs and metrics.json then score the same numbers (in mixed precision the epochs are
    # scored on the bf16 training model and metrics.json on the saved float32 copy: tests/test_float32_twin.py).
    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, data={"test_file": str(test_file)},
                                            training={"epochs": 3, "mixed_precision": "off"}))
    result = train(cfg, verbose=0)
    run = result.run_dir
    for name in ("config.yaml", "labels.json", "metrics.json", "logs/history.csv", "model/config.json", "model/tf_model.h5", "model/tokenizer.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["validation"]) >= {"loss", "accuracy", "macro_f1", "confusion_matrix"}
    assert metrics["test"]["num_examples"] == 30
    assert metrics["data"]["train"]["rows"] + metrics["data"]["validation"]["rows"] == 120
    assert metrics["monitor"] == "val_macro_f1" and 1 <= metrics["best_epoch"] <= 3
    # Every epoch's wall time and its parts; no second validation pass by Keras (ValidationMetrics sets val_loss).
    assert len(metrics["epoch_seconds"]) == 3 and len(metrics["epoch_overhead"]) == 3
    assert {"training", "validation_metrics", "early_stopping", "backup", "history_csv", "tensorboard"} <= set(metrics["epoch_overhead"][0])
    assert "keras_validation" not in metrics["epoch_overhead"][0]
    # The restored best weights are the ones evaluated and saved.
    history = [float(r["val_macro_f1"]) for r in csv.DictReader(open(run / "logs" / "history.csv"))]
    assert metrics["validation"]["macro_f1"] == pytest.approx(max(history), abs=1e-6)
    model_config = json.loads((run / "model" / "config.json").read_text())
    assert model_config["id2label"] == {"0": "food", "1": "science", "2": "sports"}
    assert "secret" not in (run / "config.yaml").read_text()
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    # Trained with the swapped kernels (fast dropout, fused GELU and attention), saved with Keras' own layers.
    assert metrics["speed"]["fused_attention"] and metrics["speed"]["fused_gelu"]
    swapped = [layer for layer in result.model.submodules
               if {"call", "_tfslm_original_call", "_tfslm_original_activation"} & set(layer.__dict__)
               or type(layer).__name__ == "FastDropout"]
    assert not swapped
    with pytest.raises(RunDirError, match="holds a finished run; pass --overwrite"):
        train(cfg, verbose=0)


@pytest.mark.slow
def test_same_config_twice_gives_same_metrics(tmp_path, train_csv):
    """Seeded and deterministic on CPU: a second run reproduces the first exactly."""
    from tfslm.training.fit import train

    first = train(config_from_dict(tiny_config_dict(tmp_path, train_csv, run_name="a")), verbose=0).metrics
    second = train(config_from_dict(tiny_config_dict(tmp_path, train_csv, run_name="b")), verbose=0).metrics
    assert first["validation"] == second["validation"]


@pytest.mark.slow
def test_distilbert_run_predicts(tmp_path, train_csv):
    import tfslm

    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, model={"architecture": "distilbert"}, training={"epochs": 1}))
    result = tfslm.train(cfg, verbose=0)
    predictor = tfslm.Predictor.from_run(result.run_dir)
    probs = predictor.predict_proba(["the coach and the striker", "spice and bread in the oven"])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
