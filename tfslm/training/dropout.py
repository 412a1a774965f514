"""Dropout with a cheaper mask: one random byte per element instead of a float uniform draw.

Keras' ``Dropout`` (``tf.nn.dropout``) draws a float uniform for every element,
compares it with the rate, then scales and selects: four elementwise passes,
and in bf16 the draw is made in bf16 and converted element by element. In a
BERT the attention-probability dropout runs over ``[batch, heads, length, length]``
(12.6M elements per layer at batch 8 and 256 tokens), so on a CPU those passes
cost as much as a large share of the matmuls (``scripts/profile_step.py``).

:func:`fast_dropout` draws 32 random bits per four elements (a counter-based
stateless generator, seeded per call by one stateful draw) and keeps an element
when its byte is at least ``round(rate * 256)``: one draw per four elements, one
compare, one multiply, in the compute dtype. The rate is rounded to a multiple
of 1/256 (0.1 becomes 0.1016) and the kept elements are scaled by the exact
inverse keep probability, so the expectation is unchanged. The backward pass is
one multiply by the same mask.

:func:`use_fast_dropout` swaps every ``Dropout`` of a model for :class:`FastDropout`
(tf-keras) or its Keras 3 twin (KerasHub models) in place (no weights change); ``tfslm
train`` does this when ``training.fast_dropout`` resolves on (see
:mod:`tfslm.training.performance`).

Example:
    >>> swapped = use_fast_dropout(model)     # doctest: +SKIP
    >>> swapped                                # doctest: +SKIP
    19
"""

from __future__ import annotations

import sys

import tensorflow as tf

from tfslm.training.model_layers import layers_of

__all__ = ["FastDropout", "fast_dropout", "restore_keras_dropout", "use_fast_dropout"]

_LEVELS = 256  # one byte per element


def _keep_threshold(rate: float) -> int:
    return min(_LEVELS - 1, max(1, round(float(rate) * _LEVELS)))


def fast_dropout(x, rate: float, noise_shape=None):
    """``x`` with elements zeroed at ``rate`` (rounded to 1/256) and the rest scaled to keep the expectation.

    Example:
        >>> y = fast_dropout(tf.ones([4, 1000]), 0.1)
        >>> 0.05 < float(tf.reduce_mean(tf.cast(y == 0, tf.float32))) < 0.15
        True
    """
    threshold = _keep_threshold(rate)
    shape = tf.shape(x) if noise_shape is None else noise_shape
    n = tf.reduce_prod(shape)
    seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)  # stateful: a new stream per call
    bits = tf.random.stateless_uniform([(n + 3) // 4], seed=seed, minval=None, maxval=None, dtype=tf.int32)
    byte = tf.reshape(tf.reshape(tf.bitcast(bits, tf.uint8), [-1])[:n], shape)
    scale = tf.cast(_LEVELS / (_LEVELS - threshold), x.dtype)
    mask = tf.where(byte >= threshold, scale, tf.zeros([], x.dtype))  # no gradient: it does not depend on x
    return x * mask


class FastDropout(tf.keras.layers.Dropout):
    """tf-keras ``Dropout`` whose training-mode mask comes from :func:`fast_dropout`; inference is unchanged."""

    def call(self, inputs, training=None):
        if isinstance(self.rate, (int, float)) and self.rate == 0:
            return tf.identity(inputs)
        if training is None:
            training = tf.keras.backend.learning_phase()
        from tf_keras.src.utils import control_flow_util

        return control_flow_util.smart_cond(
            training, lambda: fast_dropout(inputs, self.rate, self._get_noise_shape(inputs)), lambda: tf.identity(inputs))


_KERAS3_FAST_DROPOUT: dict = {}  # Keras 3's Dropout class -> its FastDropout subclass, made once


def _keras3_dropout():
    """Keras 3's ``Dropout`` class where Keras 3 is loaded (a KerasHub model imported it), else None."""
    keras = sys.modules.get("keras")
    if keras is None or not str(getattr(keras, "__version__", "")).startswith("3."):
        return None
    return keras.layers.Dropout


def _keras3_fast_dropout(dropout_class):
    """A Keras 3 ``Dropout`` whose training-mode mask comes from :func:`fast_dropout` (TensorFlow backend)."""
    if dropout_class not in _KERAS3_FAST_DROPOUT:
        class Keras3FastDropout(dropout_class):
            def call(self, inputs, training=False):
                if training and self.rate > 0 and self.noise_shape is None:
                    return fast_dropout(inputs, self.rate)
                return super().call(inputs, training=training)

        _KERAS3_FAST_DROPOUT[dropout_class] = Keras3FastDropout
    return _KERAS3_FAST_DROPOUT[dropout_class]


def use_fast_dropout(model) -> int:
    """Turn every ``Dropout`` inside ``model`` into a :class:`FastDropout` (in place); return how many.

    tf-keras layers become :class:`FastDropout`, Keras 3 ones (KerasHub's, attention
    probabilities included) the same mask on Keras 3's ``Dropout``. The layers keep their
    rate, name and place; they hold no weights, so checkpoints and saved models are unaffected.
    """
    keras3 = _keras3_dropout()
    count = 0
    for layer in layers_of(model):
        if type(layer) is tf.keras.layers.Dropout and not isinstance(layer.rate, tf.Tensor):
            layer.__class__ = FastDropout  # same object, same attributes: only call() changes
            count += 1
        elif keras3 is not None and type(layer) is keras3 and isinstance(layer.rate, (int, float)):
            layer.__class__ = _keras3_fast_dropout(keras3)
            count += 1
    return count


def restore_keras_dropout(model) -> int:
    """Undo :func:`use_fast_dropout` (before the model is saved: its layers are plain Keras again); return how many."""
    originals = {fast: keras_class for keras_class, fast in _KERAS3_FAST_DROPOUT.items()}
    originals[FastDropout] = tf.keras.layers.Dropout
    count = 0
    for layer in layers_of(model):
        original = originals.get(type(layer))
        if original is not None:
            layer.__class__ = original
            count += 1
    return count
