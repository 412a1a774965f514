"""BERT-family self-attention with fewer passes over the ``[batch, heads, length, length]`` scores.

transformers' ``TFBertSelfAttention`` (and the classes copied from it: RoBERTa, ELECTRA,
CamemBERT, XLM-RoBERTa, ...) divides the whole score tensor by ``sqrt(head_size)``, adds
``1e-9`` to it before the softmax (``stable_softmax``, a workaround for an XLA bug, and a
no-op for the softmax's value), and leaves the softmax's gradient to four graph-mode
kernels (``Mul``, ``Sum``, ``Sub``, ``Mul``) over that tensor, which in bf16 is most of
the attention's non-matmul time. :func:`fused_attention_call` computes the same attention
with the query scaled before the product (a tensor ``length / head_size`` times smaller),
without the ``1e-9``, and with the softmax's gradient one XLA loop in float32
(:func:`softmax_fused_gradient`; ``jit_compile`` on that loop only, so the graph stays as
it is and XLA compiles once per batch shape, which the length buckets bound).

:func:`use_fused_attention` points the ``call`` of every such layer of a model at it; the
layer's weights, dropout and outputs are unchanged (encoder self-attention only: cross
attention, a decoder's cache or a head mask take the original call).
:func:`restore_attention` undoes it before the model is saved.

Example:
    >>> use_fused_attention(model)    # doctest: +SKIP
    6
"""

from __future__ import annotations

import tensorflow as tf

from tfslm.training.model_layers import layers_of

__all__ = ["fused_attention_call", "restore_attention", "softmax_fused_gradient", "use_fused_attention"]

# transformers' self-attention classes whose call is TFBertSelfAttention's ("Copied from" in their source).
BERT_SELF_ATTENTION = frozenset({
    "TFBertSelfAttention", "TFRobertaSelfAttention", "TFRobertaPreLayerNormSelfAttention", "TFElectraSelfAttention",
    "TFCamembertSelfAttention", "TFXLMRobertaSelfAttention", "TFLayoutLMSelfAttention", "TFRemBertSelfAttention",
    "TFTapasSelfAttention",
})
_ORIGINAL = "_tfslm_original_call"


@tf.function(jit_compile=True, reduce_retracing=True)
def _softmax_backward(probs, dprobs):
    y = tf.cast(probs, tf.float32)
    dy = tf.cast(dprobs, tf.float32)
    return tf.cast((dy - tf.reduce_sum(dy * y, axis=-1, keepdims=True)) * y, probs.dtype)


@tf.custom_gradient
def softmax_fused_gradient(logits):
    """``tf.nn.softmax`` over the last axis, whose gradient is one XLA loop in float32.

    Example:
        >>> [round(float(p), 3) for p in softmax_fused_gradient(tf.constant([[0.0, 1.0]]))[0]]
        [0.269, 0.731]
    """
    probs = tf.nn.softmax(logits, axis=-1)
    return probs, lambda dprobs: _softmax_backward(probs, dprobs)


def fused_attention_call(layer, original):
    """``layer.call`` for a BERT self-attention ``layer``: the same attention, fewer kernels; ``original`` for the rest."""

    def call(hidden_states, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
             past_key_value, output_attentions, training=False):
        if encoder_hidden_states is not None or past_key_value is not None or layer.is_decoder or head_mask is not None:
            return original(hidden_states, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                            past_key_value, output_attentions, training=training)
        batch = tf.shape(hidden_states)[0]
        query = layer.query(inputs=hidden_states)
        query = layer.transpose_for_scores(query * tf.cast(1.0 / layer.sqrt_att_head_size, query.dtype), batch)
        key = layer.transpose_for_scores(layer.key(inputs=hidden_states), batch)
        value = layer.transpose_for_scores(layer.value(inputs=hidden_states), batch)
        scores = tf.matmul(query, key, transpose_b=True)
        if attention_mask is not None:
            scores = scores + tf.cast(attention_mask, scores.dtype)
        probs = layer.dropout(inputs=softmax_fused_gradient(scores), training=training)
        context = tf.transpose(tf.matmul(probs, value), perm=[0, 2, 1, 3])
        context = tf.reshape(context, (batch, -1, layer.all_head_size))
        return (context, probs) if output_attentions else (context,)

    return call


def use_fused_attention(model) -> int:
    """Point the ``call`` of every BERT-family self-attention layer of ``model`` at :func:`fused_attention_call`; return how many."""
    count = 0
    for layer in layers_of(model):
        if type(layer).__name__ in BERT_SELF_ATTENTION and _ORIGINAL not in layer.__dict__:
            original = layer.call
            object.__setattr__(layer, _ORIGINAL, original)  # not tracked by Keras: a function, not a layer
            object.__setattr__(layer, "call", fused_attention_call(layer, original))
            count += 1
    return count


def restore_attention(model) -> int:
    """Undo :func:`use_fused_attention` (before saving: a SavedModel should not need XLA); return how many."""
    count = 0
    for layer in layers_of(model):
        if _ORIGINAL in layer.__dict__:
            object.__delattr__(layer, "call")
            object.__delattr__(layer, _ORIGINAL)
            count += 1
    return count
