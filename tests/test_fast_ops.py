"""Cheaper training kernels: byte-mask dropout (tfslm.training.dropout), fused GELU (tfslm.training.gelu),
and the dropout keys of the model config."""

import numpy as np
import pytest

from tfslm.config import ModelConfig
from tfslm.data.labels import LabelSpace

LABELS = LabelSpace.infer(["a", "b", "c"])
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn"] * 5


def test_fast_dropout_keeps_the_expectation_at_the_rounded_rate():
    import tensorflow as tf

    from tfslm.training.dropout import fast_dropout

    for dtype in (tf.float32, tf.bfloat16):
        x = tf.ones([64, 1000], dtype)
        y = tf.cast(fast_dropout(x, 0.1), tf.float32).numpy()
        dropped = float(np.mean(y == 0))
        assert dropped == pytest.approx(26 / 256, abs=0.004)  # 0.1 rounded to a multiple of 1/256
        assert float(y.mean()) == pytest.approx(1.0, abs=0.01)  # kept elements scaled by 256/230
        kept = np.unique(y[y != 0])
        assert len(kept) == 1 and kept[0] == pytest.approx(256 / 230, rel=1e-2)
    a, b = fast_dropout(tf.ones([4096]), 0.5), fast_dropout(tf.ones([4096]), 0.5)
    assert not np.array_equal(a.numpy(), b.numpy())  # a fresh mask per call
    odd = fast_dropout(tf.ones([3, 7]), 0.2)  # sizes that are not a multiple of 4
    assert odd.shape == (3, 7)


def test_fast_dropout_gradient_is_the_mask():
    import tensorflow as tf

    from tfslm.training.dropout import fast_dropout

    x = tf.random.normal([32, 64])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fast_dropout(x, 0.25)
    grad = tape.gradient(y, x).numpy()
    mask = np.where(y.numpy() != 0, 256 / 192, 0.0)
    np.testing.assert_allclose(grad, mask, rtol=1e-6)


def _tiny_bert():
    """A 2-layer BERT built from scratch, three tokenized texts, and its inference logits on them."""
    from tfslm.backends.hf_tf import build_model

    cfg = ModelConfig(architecture="bert", max_length=32, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2,
                      intermediate_size=64)
    model, tok = build_model(cfg, LABELS, train_texts=TEXTS)
    features = dict(tok(TEXTS[:3], padding=True, return_tensors="tf"))
    return model, features, model(features, training=False).logits.numpy()


def test_use_fast_dropout_swaps_every_dropout_of_a_bert_and_leaves_inference_alone():
    import tensorflow as tf

    from tfslm.training.dropout import FastDropout, use_fast_dropout

    model, features, before = _tiny_bert()
    dropouts = [layer for layer in model.submodules if isinstance(layer, tf.keras.layers.Dropout)]
    assert use_fast_dropout(model) == len(dropouts) > 0
    assert all(type(layer) is FastDropout for layer in dropouts)
    np.testing.assert_allclose(model(features, training=False).logits.numpy(), before, rtol=1e-6)
    first, second = (model(features, training=True).logits.numpy() for _ in range(2))
    assert not np.allclose(first, second)  # training draws masks
    assert use_fast_dropout(model) == 0  # already swapped
    from tfslm.training.dropout import restore_keras_dropout

    assert restore_keras_dropout(model) == len(dropouts) and all(type(layer) is tf.keras.layers.Dropout for layer in dropouts)


def test_fused_gelu_matches_the_exact_gelu_and_its_gradient():
    import tensorflow as tf

    from tfslm.training.gelu import fused_gelu

    x = tf.linspace(-6.0, 6.0, 4001)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, exact = fused_gelu(x), tf.nn.gelu(x, approximate=False)
    np.testing.assert_allclose(ours.numpy(), exact.numpy(), atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(exact, x).numpy(), atol=1e-5)
    low = fused_gelu(tf.cast(x, tf.bfloat16))
    assert low.dtype == tf.bfloat16  # computed in float32, returned in the compute dtype
    np.testing.assert_allclose(tf.cast(low, tf.float32).numpy(), exact.numpy(), rtol=1e-2, atol=1e-2)


def test_use_fused_gelu_on_a_bert_then_restore_leaves_it_as_built():
    from tfslm.training.gelu import fused_gelu, restore_gelu, use_fused_gelu

    model, features, before = _tiny_bert()
    intermediates = [layer for layer in model.submodules if "intermediate_act_fn" in layer.__dict__]
    original = intermediates[0].intermediate_act_fn
    assert use_fused_gelu(model) == len(intermediates) == 2
    assert all(layer.intermediate_act_fn is fused_gelu for layer in intermediates)
    np.testing.assert_allclose(model(features, training=False).logits.numpy(), before, atol=1e-5)
    assert restore_gelu(model) == 2 and all(layer.intermediate_act_fn is original for layer in intermediates)
    assert not [w for w in model.weights if "tfslm" in w.name]  # nothing tracked was added


def test_model_dropout_overrides_a_checkpoint_config_only_when_set():
    from transformers import BertConfig, DistilBertConfig

    from tfslm.backends.hf_tf import _override_dropout

    bert = BertConfig(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3)
    _override_dropout(bert, None, None)
    assert (bert.hidden_dropout_prob, bert.attention_probs_dropout_prob) == (0.2, 0.3)  # null: the checkpoint's own
    _override_dropout(bert, 0.0, None)
    assert (bert.hidden_dropout_prob, bert.attention_probs_dropout_prob, bert.classifier_dropout) == (0.0, 0.0, 0.0)
    _override_dropout(bert, None, 0.05)
    assert (bert.hidden_dropout_prob, bert.attention_probs_dropout_prob) == (0.0, 0.05)
    distil = DistilBertConfig()
    _override_dropout(distil, 0.15, 0.0)
    assert (distil.dropout, distil.seq_classif_dropout, distil.attention_dropout) == (0.15, 0.15, 0.0)


@pytest.mark.parametrize("key, value", [("model.dropout", 1.0), ("model.attention_dropout", -0.1), ("model.dropout", "high"),
                                        ("model.attention_dropout", "high"),
                                        ("training.fast_dropout", "sometimes")])
def test_dropout_keys_are_validated_in_one_line(tmp_path, train_csv, key, value):
    from conftest import tiny_config_dict

    from tfslm.config import config_from_dict
    from tfslm.errors import ConfigError

    section, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        config_from_dict(tiny_config_dict(tmp_path, train_csv, **{section: {name: value}}))


def test_fused_tanh_gelu_equals_tf_nn_gelu_approximate_with_its_gradient():
    import tensorflow as tf

    from tfslm.training.gelu import fused_gelu_tanh

    x = tf.random.normal([4, 16, 48], seed=3) * 3
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = fused_gelu_tanh(x), tf.nn.gelu(x, approximate=True)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_use_fused_gelu_reaches_keras_hub_bert_and_restores_it():
    pytest.importorskip("keras_hub")
    import keras
    import keras_hub

    from tfslm.training.gelu import fused_gelu_tanh, restore_gelu, use_fused_gelu

    backbone = keras_hub.models.BertBackbone(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=16)
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None, dropout=0.0)
    features = {"token_ids": np.array([[2, 5, 9, 3, 0, 0]]), "segment_ids": np.zeros((1, 6), "int32"),
                "padding_mask": np.array([[1, 1, 1, 1, 0, 0]])}
    before = np.asarray(model(features))
    assert use_fused_gelu(model) == 2  # the intermediate Dense of each encoder layer
    dense = [layer for layer in model._flatten_layers() if type(layer).__name__ == "Dense" and layer.activation is fused_gelu_tanh]
    assert len(dense) == 2
    np.testing.assert_allclose(np.asarray(model(features)), before, atol=1e-5)
    assert restore_gelu(model) == 2 and use_fused_gelu(model) == 2 and restore_gelu(model) == 2
    config = keras.saving.serialize_keras_object(model)
    assert "fused_gelu" not in str(config)  # the saved model names KerasHub's own activation again


@pytest.mark.slow
def test_use_fast_dropout_reaches_keras_hub_bert_attention_included_and_restores_it(tmp_path):
    pytest.importorskip("keras_hub")
    import keras
    import keras_hub

    from tfslm.training.dropout import restore_keras_dropout, use_fast_dropout

    backbone = keras_hub.models.BertBackbone(vocabulary_size=60, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=64, dropout=0.25)
    model = keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None, dropout=0.25)
    dropouts = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
    features = {"token_ids": np.full((4, 64), 7), "segment_ids": np.zeros((4, 64), "int32"), "padding_mask": np.ones((4, 64), "int32")}
    before = np.asarray(model(features))
    # embeddings, then per layer: attention probabilities, attention output, feedforward; the head
    assert use_fast_dropout(model) == len(dropouts) == 1 + 2 * 3 + 1
    assert all(type(layer).__name__ == "Keras3FastDropout" for layer in dropouts)
    np.testing.assert_allclose(np.asarray(model(features)), before, atol=1e-6)  # inference unchanged
    dropped = np.asarray(dropouts[0](np.ones((64, 1000), "float32"), training=True))
    assert float(np.mean(dropped == 0)) == pytest.approx(64 / 256, abs=0.01)  # byte masks at the rate
    assert float(dropped.mean()) == pytest.approx(1.0, abs=0.02)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.all(np.isfinite(model.train_on_batch(features, np.array([0, 1, 2, 0]))))  # trains through the masks
    assert restore_keras_dropout(model) == len(dropouts)
    assert all(type(layer) is keras.layers.Dropout for layer in dropouts)
    model.save(tmp_path / "m.keras")  # plain Keras again: reloads without tfslm
    assert "FastDropout" not in str(keras.saving.serialize_keras_object(model))


def test_softmax_fused_gradient_equals_tf_softmax_and_its_gradient():
    import tensorflow as tf

    from tfslm.training.attention import softmax_fused_gradient

    x = tf.random.stateless_normal([2, 3, 5, 7], seed=[1, 2]) * 3.0
    weights = tf.random.stateless_normal([2, 3, 5, 7], seed=[3, 4])
    for fn_dtype, tol in ((tf.float32, 1e-6), (tf.bfloat16, 2e-2)):
        grads = []
        for fn in (softmax_fused_gradient, lambda t: tf.nn.softmax(t, axis=-1)):
            xs = tf.cast(x, fn_dtype)
            with tf.GradientTape() as tape:
                tape.watch(xs)
                loss = tf.reduce_sum(tf.cast(fn(xs), tf.float32) * weights)
            grads.append(tf.cast(tape.gradient(loss, xs), tf.float32).numpy())
        assert softmax_fused_gradient(tf.cast(x, fn_dtype)).dtype == fn_dtype
        np.testing.assert_allclose(grads[0], grads[1], atol=tol)


def test_use_fused_attention_on_a_bert_gives_its_outputs_and_gradients_then_restores_it(monkeypatch):
    import tensorflow as tf

    from tfslm.training import attention
    from tfslm.training.attention import restore_attention, use_fused_attention

    calls = []
    monkeypatch.setattr(attention, "softmax_fused_gradient",
                        lambda x, fused=attention.softmax_fused_gradient: calls.append(x.shape) or fused(x))

    model, features, before = _tiny_bert()
    labels = tf.constant([0, 1, 2])

    def loss_and_grads():
        with tf.GradientTape() as tape:
            logits = model(features, training=False).logits
            loss = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return logits.numpy(), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)]

    _, plain = loss_and_grads()
    assert use_fused_attention(model) == 2 and use_fused_attention(model) == 0  # one per layer, never twice
    logits, fused = loss_and_grads()
    assert len(calls) == 2  # the fused path ran, once per layer
    np.testing.assert_allclose(logits, before, atol=1e-5)
    for ours, theirs in zip(fused, plain):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    attentions = model(features, output_attentions=True).attentions  # the probabilities, as the original returns them
    assert len(attentions) == 2 and np.allclose(attentions[0].numpy().sum(-1), 1.0, atol=1e-5)
    assert restore_attention(model) == 2 and not [layer for layer in model.submodules if "call" in layer.__dict__]
    np.testing.assert_allclose(model(features, training=False).logits.numpy(), before, atol=1e-6)


def test_attention_dropout_auto_is_off_for_a_checkpoint_and_as_dropout_from_scratch(tmp_path, train_csv):
    from conftest import tiny_config_dict

    from tfslm.backends.hf_tf import _scratch_config, fine_tuning_attention_dropout
    from tfslm.config import config_from_dict

    assert ModelConfig().attention_dropout == "auto"
    assert fine_tuning_attention_dropout(ModelConfig(checkpoint="x")) == 0.0
    assert fine_tuning_attention_dropout(ModelConfig(checkpoint="x", attention_dropout=None)) is None  # the checkpoint's
    assert fine_tuning_attention_dropout(ModelConfig(checkpoint="x", attention_dropout=0.1)) == 0.1
    scratch = _scratch_config(ModelConfig(architecture="bert"), 100, 0, 64)
    assert scratch.attention_probs_dropout_prob == scratch.hidden_dropout_prob == 0.1
    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, model={"attention_dropout": "AUTO"}))
    assert cfg.model.attention_dropout == "auto"
