"""Score a model over a whole ``tf.data`` split: logits, labels, loss and the metric set.

Example:
    >>> logits, y_true = collect_predictions(model, val_ds)          # doctest: +SKIP
    >>> evaluate_predictions(logits, y_true, data.labels)            # doctest: +SKIP
    {'loss': 0.41, 'accuracy': 0.86, 'macro_f1': 0.85, 'num_examples': 300}
"""

from __future__ import annotations

import numpy as np

from tfslm.data.labels import LabelSpace
from tfslm.tasks.metrics import classification_metrics, confusion_matrix, grid_ids, score_metrics, softmax

__all__ = ["collect_predictions", "evaluate_predictions", "softmax", "evaluate_model"]


def collect_predictions(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every batch of a ``(features, label)`` dataset; return ``(logits, labels)``.

    A ``(features, label, sample_weight)`` dataset may pad its last batch to a
    static shape with rows of weight 0 (:mod:`tfslm.inputs.tfrecords`); those rows are dropped.
    """
    from tfslm.backends import get_backend

    forward = get_backend().forward_fn(model)  # the one forward function, shared with tfslm.Predictor
    logits, labels = [], []
    for batch in dataset:
        features, y = batch[0], batch[1]
        out, y = forward(features).numpy(), np.asarray(y)
        if len(batch) > 2:
            keep = np.asarray(batch[2]) > 0
            out, y = out[keep], y[keep]
        logits.append(out)
        labels.append(y)
    if not logits:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    y = np.concatenate(labels)
    # Class ids stay integers; regression targets (scaled scores) stay floats.
    y = y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float32)
    return np.concatenate(logits).astype(np.float32), y


def evaluate_predictions(logits: np.ndarray, y_true: np.ndarray, labels: LabelSpace, *, with_confusion: bool = False, task=None) -> dict:
    """Loss and the metric set of the task.

    Classification: cross-entropy, accuracy, macro-F1 (plus QWK, adjacent
    agreement, MAE and RMSE for ordered/numeric labels). Regression (``task``
    a regression :class:`~tfslm.tasks.base.Task`, ``y_true`` the scaled targets):
    MSE on the scaled targets, then MAE/RMSE on the original scale and, on the
    score grid, QWK, exact and adjacent agreement; multi-target runs add
    ``<target>_mae`` etc. per target, and the headline metrics are those of the
    total (``derive_total``) or the mean over targets.
    """
    if task is not None and task.is_regression:
        return _evaluate_scores(logits, y_true, labels, task, with_confusion)
    probs = softmax(logits)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = probs.argmax(axis=-1)
    if task is not None and task.problem_type == "ordinal" and len(y_true):
        y_pred = task.decode(logits, labels)["label_id"]
    picked = probs[np.arange(len(y_true)), y_true]
    out = {"loss": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))) if len(y_true) else 0.0}
    out.update(classification_metrics(y_true, y_pred, labels.num_labels, ordered=labels.ordered, values=labels.values))
    out["num_examples"] = int(len(y_true))
    if with_confusion:
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels.num_labels).tolist()
    return out


def pool_document_outputs(logits, y_true, doc_index, task=None):
    """Average window outputs per document; each document's target is that of its first window."""
    from tfslm.inputs.chunking import pool_windows

    doc_index = np.asarray(doc_index, dtype=np.int64)
    num_docs = int(doc_index.max()) + 1 if len(doc_index) else 0
    first = np.searchsorted(doc_index, np.arange(num_docs))
    return pool_windows(logits, doc_index, num_docs, task), np.asarray(y_true)[first]


def _evaluate_scores(logits, y_true, labels: LabelSpace, task, with_confusion: bool) -> dict:
    logits = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
    scaled_true = np.asarray(y_true, dtype=np.float64).reshape(len(logits), -1)
    out: dict = {"loss": float(np.mean((logits - scaled_true) ** 2)) if len(logits) else 0.0}
    true = task.unscale(scaled_true, round_to_grid=False)
    pred = task.unscale(logits)
    grid = task.grid()
    if task.num_targets == 1:
        head_true, head_pred, head_grid = true[:, 0], pred[:, 0], grid
        out.update(score_metrics(head_true, head_pred, grid))
    else:
        per = {}
        for j, name in enumerate(task.target_names):
            per[name] = score_metrics(true[:, j], pred[:, j], grid)
            for key, value in per[name].items():
                out[f"{name}_{key}"] = value
        if task.derive_total:
            head_true, head_pred, head_grid = true.sum(axis=1), pred.sum(axis=1), task.grid(total=True)
            out.update(score_metrics(head_true, head_pred, head_grid))
        else:
            head_true, head_pred, head_grid = true.reshape(-1), pred.reshape(-1), grid
            for key in per[task.target_names[0]]:
                out[key] = float(np.mean([per[n][key] for n in task.target_names]))
    out["num_examples"] = int(len(logits))
    if with_confusion and head_grid is not None:
        out["confusion_matrix"] = confusion_matrix(grid_ids(head_true, head_grid), grid_ids(head_pred, head_grid), len(head_grid)).tolist()
    return out


def evaluate_model(model, dataset, labels: LabelSpace, *, with_confusion: bool = False, task=None, windows=None) -> dict:
    """:func:`collect_predictions` then :func:`evaluate_predictions`.

    ``windows``: the ``doc_index`` of a dataset of text windows
    (:mod:`tfslm.inputs.chunking`); window outputs are then averaged per document first.
    """
    logits, y_true = collect_predictions(model, dataset)
    if windows is not None:
        logits, y_true = pool_document_outputs(logits, y_true, windows, task)
    return evaluate_predictions(logits, y_true, labels, with_confusion=with_confusion, task=task)
