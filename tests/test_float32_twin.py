"""The float32 twin that validation metrics score (tfslm.training.float32_twin): what a mixed-precision run saves."""

import numpy as np
import pytest

from tfslm.config import ModelConfig
from tfslm.data.labels import LabelSpace

LABELS = LabelSpace.infer(["a", "b", "c"])
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn"] * 5


def _tiny_bert(policy: str):
    import tensorflow as tf

    from tfslm.backends.hf_tf import build_model

    cfg = ModelConfig(architecture="bert", max_length=32, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2,
                      intermediate_size=64)
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        model, tok = build_model(cfg, LABELS, train_texts=TEXTS)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    return model, dict(tok(TEXTS[:3], padding=True, return_tensors="tf"))


def test_the_twin_of_a_bf16_model_computes_what_its_float32_copy_serves_and_follows_its_weights():
    from tfslm.training.float32_twin import Float32Twin, computes_in_float32
    from tfslm.training.performance import float32_copy

    model, features = _tiny_bert("mixed_bfloat16")
    twin = Float32Twin(model)
    assert not computes_in_float32(model) and computes_in_float32(twin.model)
    scored = twin(model)
    assert scored is twin.model
    expected = float32_copy(model)(features, training=False).logits.numpy()
    np.testing.assert_array_equal(scored(features, training=False).logits.numpy(), expected)
    bf16 = model(features, training=False).logits.numpy()
    assert not np.array_equal(bf16, expected)  # the training model's own outputs are another model's
    for variable in model.weights:  # training moves the weights: the twin takes them at the next call
        variable.assign(variable * 0.5)
    moved = twin(model)(features, training=False).logits.numpy()
    np.testing.assert_array_equal(moved, float32_copy(model)(features, training=False).logits.numpy())
    assert not np.allclose(moved, expected)


def test_a_float32_model_is_scored_as_it_is():
    from tfslm.training.float32_twin import Float32Twin

    model, _ = _tiny_bert("float32")
    twin = Float32Twin(model)
    assert twin.model is None and twin(model) is model


def test_validation_metrics_score_the_twin(tmp_path):
    import tensorflow as tf

    from tfslm.training.callbacks import ValidationMetrics
    from tfslm.training.evaluation import evaluate_model
    from tfslm.training.float32_twin import Float32Twin

    model, features = _tiny_bert("mixed_bfloat16")
    val = tf.data.Dataset.from_tensor_slices((features, tf.constant([0, 1, 2]))).batch(3)
    twin = Float32Twin(model)
    callback = ValidationMetrics(val, LABELS, scoring_model=twin)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_loss"] == evaluate_model(twin.model, val, LABELS)["loss"]
    assert logs["val_loss"] != evaluate_model(model, val, LABELS)["loss"]


@pytest.mark.slow
def test_a_bf16_run_reports_the_metrics_of_the_float32_model_it_saves(tmp_path):
    """metrics.json of a mixed-precision run equals what the saved model scores on the validation split."""
    from conftest import make_rows, tiny_config_dict, write_csv
    from tfslm.config import config_from_dict
    from tfslm.data.loading import load_data
    from tfslm.serving.predictor import Predictor
    from tfslm.tasks.base import Task
    from tfslm.training.fit import train

    train_csv = write_csv(tmp_path / "train.csv", make_rows(120, seed=4))
    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, training={"epochs": 2, "mixed_precision": "bf16"},
                                            export={"saved_model": False}))
    result = train(cfg, verbose=0)
    assert result.metrics["speed"]["mixed_precision"] == "bf16"
    validation = load_data(cfg.data, seed=cfg.training.seed, task=Task.from_config(cfg))["validation"]
    texts, names = list(validation["text"]), result.metrics["labels"]
    predictor = Predictor.from_run(result.run_dir)
    predicted = predictor.predict(texts)
    accuracy = float(np.mean([p == names[y] for p, y in zip(predicted, validation["label"])]))
    assert result.metrics["validation"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    from tfslm.training.evaluation import evaluate_predictions

    served = evaluate_predictions(predictor.logits(texts), np.asarray(validation["label"]), predictor.labels)
    assert result.metrics["validation"]["loss"] == pytest.approx(served["loss"], rel=1e-4)
