"""Score a model over a whole ``tf.data`` split: logits, labels, loss and the metric set.

Example:
    >>> logits, y_true = collect_predictions(model, val_ds)          # doctest: +SKIP
    >>> evaluate_predictions(logits, y_true, data.labels)            # doctest: +SKIP
    {'loss': 0.41, 'accuracy': 0.86, 'macro_f1': 0.85, 'num_examples': 300}
"""

from __future__ import annotations

import numpy as np

from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import Task
from tfslm.tasks.metrics import softmax  # noqa: F401  (re-exported: it lived here)

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
    """Loss and the metric set of the task: ``task.evaluate`` (None: single-label classification).

    Classification: cross-entropy, accuracy, macro-F1 and ``per_label``
    precision/recall/F1 (plus QWK, adjacent agreement, MAE and RMSE for
    ordered/numeric labels). Regression (``task`` a regression
    :class:`~tfslm.tasks.base.Task`, ``y_true`` the scaled targets): MSE on the
    scaled targets, then MAE/RMSE on the original scale and, on the score grid,
    QWK, exact and adjacent agreement; multi-target runs add ``<target>_mae``
    etc. per target, and the headline metrics are those of the total
    (``derive_total``) or the mean over targets.
    """
    return Task.resolve(task).evaluate(logits, y_true, labels, with_confusion=with_confusion)


def pool_document_outputs(logits, y_true, doc_index, task):
    """Average window outputs per document (``task.pool_windows``); each document's target is that of its first window."""
    doc_index = np.asarray(doc_index, dtype=np.int64)
    num_docs = int(doc_index.max()) + 1 if len(doc_index) else 0
    first = np.searchsorted(doc_index, np.arange(num_docs))
    return task.pool_windows(logits, doc_index, num_docs), np.asarray(y_true)[first]


def evaluate_model(model, dataset, labels: LabelSpace, *, with_confusion: bool = False, task=None, windows=None,
                   tune_decoding: bool = False, train_targets=None) -> dict:
    """:func:`collect_predictions` then :func:`evaluate_predictions`.

    ``windows``: the ``doc_index`` of a dataset of text windows
    (:mod:`tfslm.inputs.chunking`); window outputs are then averaged per document first.
    ``tune_decoding``: fit the task's decoding (score stretch/thresholds, multi-label
    thresholds) on these outputs first (``train_targets``: the training targets, for a stretch).

    Example:
        >>> evaluate_model(model, val_ds, data.labels)["accuracy"]   # doctest: +SKIP
        0.91
    """
    task = Task.resolve(task)
    logits, y_true = collect_predictions(model, dataset)
    if windows is not None:
        logits, y_true = pool_document_outputs(logits, y_true, windows, task)
    if tune_decoding:  # in-sample: what the epoch's model scores under the decoding it would be saved with
        task = task.fit_decoding(logits, y_true, labels, train_targets=train_targets)
    return task.evaluate(logits, y_true, labels, with_confusion=with_confusion)
