"""The exact GELU as one fused XLA loop each way, computed in float32 whatever the compute dtype.

transformers' TF models take ``"gelu"`` as ``keras.activations.gelu`` (``tf.nn.gelu``,
exact): in graph mode that is five elementwise kernels forward and more backward over
``[batch, length, intermediate]`` (1536 wide in MiniLM), and in bf16 ``Erfc`` has no
native kernel. :func:`fused_gelu` compiles the forward and the backward each into one
XLA loop (``tf.function(jit_compile=True)`` on the activation alone, so the rest of the
graph stays as it is and XLA compiles once per batch shape, which the length buckets
bound); both compute in float32 and cast back, which is at least as exact as the bf16
ops it replaces.

:func:`use_fused_gelu` points every exact-GELU activation of a tf-keras model at it
(``intermediate_act_fn`` in BERT-like layers, ``activation`` in DistilBERT's), and
KerasHub's tanh-approximate GELU (its BERT's intermediate ``Dense``) at
:func:`fused_gelu_tanh`, the same formula fused; :func:`restore_gelu` undoes that before
the model is saved, so a SavedModel never needs XLA.

Example:
    >>> use_fused_gelu(model)    # doctest: +SKIP
    6
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfslm.training.model_layers import layers_of

__all__ = ["fused_gelu", "fused_gelu_tanh", "restore_gelu", "use_fused_gelu"]

_ATTRIBUTES = ("intermediate_act_fn", "activation", "act_fn")  # where transformers' TF layers keep their activation
_ORIGINAL = "_tfslm_original_activation"


@tf.function(jit_compile=True, reduce_retracing=True)
def _forward(x):
    y = tf.cast(x, tf.float32)
    return tf.cast(0.5 * y * (1.0 + tf.math.erf(y * (1.0 / math.sqrt(2.0)))), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _backward(x, dy):
    y = tf.cast(x, tf.float32)
    cdf = 0.5 * (1.0 + tf.math.erf(y * (1.0 / math.sqrt(2.0))))
    pdf = tf.exp(-0.5 * y * y) * (1.0 / math.sqrt(2.0 * math.pi))
    return tf.cast(tf.cast(dy, tf.float32) * (cdf + y * pdf), x.dtype)


_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


def _tanh_of(y):
    """``tanh(sqrt(2/pi) * (y + 0.044715 y^3))``, the tanh GELU's inner term (inlined by XLA in both loops)."""
    return tf.tanh(_TANH_SCALE * (y + _TANH_CUBIC * y * y * y))


@tf.function(jit_compile=True, reduce_retracing=True)
def _forward_tanh(x):
    y = tf.cast(x, tf.float32)
    return tf.cast(0.5 * y * (1.0 + _tanh_of(y)), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _backward_tanh(x, dy):
    y = tf.cast(x, tf.float32)
    t = _tanh_of(y)
    grad = 0.5 * (1.0 + t) + 0.5 * y * (1.0 - t * t) * _TANH_SCALE * (1.0 + 3.0 * _TANH_CUBIC * y * y)
    return tf.cast(tf.cast(dy, tf.float32) * grad, x.dtype)


@tf.custom_gradient
def fused_gelu_tanh(x):
    """The tanh-approximate GELU (``tf.nn.gelu(x, approximate=True)``, KerasHub's BERT), fused the same way.

    Example:
        >>> round(float(fused_gelu_tanh(tf.constant([1.0]))[0]), 4)
        0.8412
    """
    return _forward_tanh(x), lambda dy: _backward_tanh(x, dy)


@tf.custom_gradient
def fused_gelu(x):
    """Exact GELU, ``x * Phi(x)``, forward and backward each one XLA loop in float32.

    Example:
        >>> round(float(fused_gelu(tf.constant([1.0]))[0]), 4)
        0.8413
    """
    return _forward(x), lambda dy: _backward(x, dy)


def _is_exact_gelu(fn) -> bool:
    """tf-keras' ``activations.gelu`` / ``tf.nn.gelu`` (exact by default), as transformers' ACT2FN["gelu"] gives them."""
    return fn is tf.keras.activations.gelu or fn is tf.nn.gelu or (
        callable(fn) and getattr(fn, "__name__", "") == "gelu" and getattr(fn, "__module__", "").startswith("tf_keras"))


def _is_keras_hub_tanh_gelu(fn) -> bool:
    """KerasHub's ``gelu_approximate`` (BERT's intermediate activation there: ``tf.nn.gelu(x, approximate=True)``)."""
    return callable(fn) and getattr(fn, "__name__", "") == "gelu_approximate" and getattr(fn, "__module__", "").startswith("keras_hub")


def _fused_for(layer, name: str, fn):
    if _is_exact_gelu(fn):
        return fused_gelu
    if name == "activation" and type(layer).__name__ in ("Dense", "EinsumDense") and _is_keras_hub_tanh_gelu(fn):
        return fused_gelu_tanh  # only where the layer applies it (its encoder keeps a copy for building)
    return None


def use_fused_gelu(model) -> int:
    """Point every GELU activation of ``model``'s layers at its fused twin (:func:`fused_gelu`, :func:`fused_gelu_tanh`); return how many."""
    count = 0
    for layer in layers_of(model):
        for name in _ATTRIBUTES:
            fn = layer.__dict__.get(name)
            fused = _fused_for(layer, name, fn)
            if fused is not None:
                object.__setattr__(layer, _ORIGINAL, (name, fn))  # not tracked by Keras: a function, not a layer
                object.__setattr__(layer, name, fused)
                count += 1
    return count


def restore_gelu(model) -> int:
    """Undo :func:`use_fused_gelu` (before saving: a SavedModel should not need XLA); return how many."""
    count = 0
    for layer in layers_of(model):
        original = layer.__dict__.get(_ORIGINAL)
        if original is not None:
            object.__setattr__(layer, original[0], original[1])
            object.__delattr__(layer, _ORIGINAL)
            count += 1
    return count
