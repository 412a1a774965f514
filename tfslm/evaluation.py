"""Score a model over a whole ``tf.data`` split: logits, labels, loss and the metric set.

Example:
    >>> logits, y_true = collect_predictions(model, val_ds)          # doctest: +SKIP
    >>> evaluate_predictions(logits, y_true, data.labels)            # doctest: +SKIP
    {'loss': 0.41, 'accuracy': 0.86, 'macro_f1': 0.85, 'num_examples': 300}
"""

from __future__ import annotations

import numpy as np

from .labels import LabelSpace
from .metrics import classification_metrics, confusion_matrix

__all__ = ["collect_predictions", "evaluate_predictions", "softmax", "evaluate_model"]


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _logits_of(output):
    return output.logits if hasattr(output, "logits") else output


def collect_predictions(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every batch of a ``(features, label)`` dataset; return ``(logits, labels)``."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(features):
        return _logits_of(model(features, training=False))

    logits, labels = [], []
    for features, y in dataset:
        logits.append(forward(features).numpy())
        labels.append(np.asarray(y))
    if not logits:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    return np.concatenate(logits).astype(np.float32), np.concatenate(labels).astype(np.int64)


def evaluate_predictions(logits: np.ndarray, y_true: np.ndarray, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
    """Cross-entropy loss plus accuracy, macro-F1 (and QWK/MAE for ordered/numeric labels)."""
    probs = softmax(logits)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = probs.argmax(axis=-1)
    picked = probs[np.arange(len(y_true)), y_true]
    out = {"loss": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))) if len(y_true) else 0.0}
    out.update(classification_metrics(y_true, y_pred, labels.num_labels, ordered=labels.ordered, values=labels.values))
    out["num_examples"] = int(len(y_true))
    if with_confusion:
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels.num_labels).tolist()
    return out


def evaluate_model(model, dataset, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
    """:func:`collect_predictions` then :func:`evaluate_predictions`."""
    logits, y_true = collect_predictions(model, dataset)
    return evaluate_predictions(logits, y_true, labels, with_confusion=with_confusion)
