"""A TF-IDF + linear baseline fitted beside every run, so a user sees whether fine-tuning paid off.

:func:`fit_baseline` fits word and bigram TF-IDF features and a linear model on
the training split of a :class:`~tfslm.data.loading.TextData` (whole texts,
also with ``data.long_text: chunk``): logistic regression for classes (ordinal
too), one-vs-rest logistic regression for multi-label, ridge regression on the
scaled targets for scores (one ridge per target for multi-target). Its
:meth:`TextBaseline.outputs` are in the space of the model's logits
(log-probabilities, per-label logits, scaled scores), so the run decodes and
evaluates them with the model's own task code: :func:`evaluate_baseline` fits
the task's decoding on the baseline's validation outputs (thresholds, score
decodings) the way the model's is fitted, then evaluates every split.

Example:
    >>> baseline = fit_baseline(data, task)                       # doctest: +SKIP
    >>> baseline.outputs(["a new text"]).shape                    # doctest: +SKIP
    (1, 3)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from tfslm.config import BASELINES  # the ``training.baseline`` values, re-exported

log = logging.getLogger("tfslm")

__all__ = ["TextBaseline", "fit_baseline", "evaluate_baseline", "BASELINES"]

#: Log-probability of a class the training split never shows (the model can still predict it; the baseline cannot).
ABSENT_LOG_PROB = -30.0
_C_GRID = (0.1, 1.0, 10.0, 100.0)
_ALPHAS = tuple(float(a) for a in np.logspace(-2, 3, 11))
_MAX_FEATURES = 200_000
_TINY = 50  # below this many training texts, a word seen once is still a feature (min_df 1)


@dataclass
class TextBaseline:
    """A fitted TF-IDF + linear model; :meth:`outputs` gives raw outputs in the model's logit space.

    Attributes:
        kind: ``logistic`` (classes), ``multi_label`` or ``ridge`` (scores).
        method: how it is named in ``metrics.json``, e.g. ``"tfidf + ridge"``.
        params: the chosen regularisation (``C`` or ``alpha``; one per label/target where fitted so).
        fit_seconds: time to fit the features and the model.
    """

    kind: str
    vectorizer: Any
    models: list = field(default_factory=list)
    num_outputs: int = 0
    classes: np.ndarray | None = None  # logistic: the label ids present in the training split
    constants: dict = field(default_factory=dict)  # multi_label: label -> probability, for a label with one class in training
    params: dict = field(default_factory=dict)
    fit_seconds: float = 0.0

    @property
    def method(self) -> str:
        return "tfidf + ridge" if self.kind == "ridge" else "tfidf + logistic regression"

    @property
    def num_features(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def outputs(self, texts: Sequence[str]) -> np.ndarray:
        """Raw outputs ``[texts, outputs]`` (float32) in the space of the model's logits.

        Classes: log-probabilities (``ABSENT_LOG_PROB`` for a class absent from
        training); multi-label: one logit per label; scores: the targets scaled to [0, 1].
        """
        features = self.vectorizer.transform([str(t) for t in texts])
        n = features.shape[0]
        if self.kind == "ridge":
            return np.asarray(self.models[0].predict(features), dtype=np.float32).reshape(n, self.num_outputs)
        if self.kind == "logistic":
            out = np.full((n, self.num_outputs), ABSENT_LOG_PROB, dtype=np.float64)
            out[:, self.classes] = np.log(np.clip(self.models[0].predict_proba(features), 1e-12, 1.0))
            return out.astype(np.float32)
        probs = np.empty((n, self.num_outputs), dtype=np.float64)
        for j, model in enumerate(self.models):
            probs[:, j] = self.constants[j] if model is None else model.predict_proba(features)[:, 1]
        probs = np.clip(probs, 1e-7, 1.0 - 1e-7)
        return np.log(probs / (1.0 - probs)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """``method``, ``features``, ``params`` and ``fit_seconds``, for ``metrics.json``."""
        return {"method": self.method, "features": self.num_features, "params": dict(self.params),
                "fit_seconds": round(self.fit_seconds, 2)}


def _vectorizer(num_texts: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1 if num_texts < _TINY else 2,
                           strip_accents=None, lowercase=True, max_features=_MAX_FEATURES, dtype=np.float32)


def _folds(y: np.ndarray, seed: int):
    """Stratified folds for choosing C: 3, fewer when the rarest class is that rare; None when it cannot be split."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.unique(y, return_counts=True)[1].min())
    return StratifiedKFold(n_splits=min(3, smallest), shuffle=True, random_state=seed) if smallest >= 2 else None


def _logistic(features, y: np.ndarray, seed: int):
    """``(model, C)``: logistic regression with C picked by cross-validated accuracy (C=1 when y cannot be split)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    folds = _folds(y, seed)
    if folds is None:
        return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(features, y), 1.0
    model = LogisticRegressionCV(Cs=list(_C_GRID), cv=folds, max_iter=2000, random_state=seed).fit(features, y)
    return model, float(np.atleast_1d(model.C_)[0])


def _fit_classes(baseline: TextBaseline, features, y: np.ndarray, seed: int) -> None:
    y = y.astype(np.int64)
    baseline.classes = np.unique(y)
    if len(baseline.classes) < 2:  # one class only: predict it for every text
        from sklearn.dummy import DummyClassifier

        baseline.models = [DummyClassifier(strategy="prior").fit(features, y)]
        return
    model, c = _logistic(features, y, seed)
    baseline.models, baseline.params = [model], {"C": c}


def _fit_multi_label(baseline: TextBaseline, features, y: np.ndarray, seed: int) -> None:
    chosen = []
    for j in range(y.shape[1]):
        column = (y[:, j] > 0.5).astype(np.int64)
        if column.min() == column.max():  # a label always (or never) present in training
            baseline.models.append(None)
            baseline.constants[j] = float(column[0])
            chosen.append(None)
            continue
        model, c = _logistic(features, column, seed)
        baseline.models.append(model)
        chosen.append(c)
    baseline.params = {"C": chosen}


def _fit_scores(baseline: TextBaseline, features, y: np.ndarray) -> None:
    from sklearn.linear_model import RidgeCV

    several = y.shape[1] > 1
    # Efficient leave-one-out (GCV) over the alphas; one alpha per target where there are several.
    model = RidgeCV(alphas=_ALPHAS, alpha_per_target=several).fit(features, y if several else y[:, 0])
    baseline.models = [model]
    alpha = np.atleast_1d(model.alpha_).astype(float).tolist()
    baseline.params = {"alpha": alpha if several else alpha[0]}


def fit_baseline(data, task=None, *, seed: int = 42, labels=None) -> TextBaseline:
    """Fit TF-IDF + a linear model on ``data``'s training split, for the run's task.

    Args:
        data: a :class:`~tfslm.data.loading.TextData` (its ``train`` split's ``text`` and ``label`` columns).
        task: the run's :class:`~tfslm.tasks.base.Task` (default: ``data.task``, else classification).
        seed: seeds the cross-validation folds (the fit is deterministic).
        labels: the label space (default: ``data.labels``); fixes the number of outputs.

    Returns:
        A :class:`TextBaseline`; ``outputs(texts)`` has the shape and meaning of the model's logits.

    Example:
        >>> data = load_data(DataConfig(train_file="tfslm:quickstart_train.csv"))     # doctest: +SKIP
        >>> baseline = fit_baseline(data)                                           # doctest: +SKIP
        >>> baseline.method, baseline.outputs(["What a great match!"]).shape         # doctest: +SKIP
        ('tfidf + logistic regression', (1, 3))
    """
    from tfslm.tasks.base import Task

    task = Task.resolve(task if task is not None else getattr(data, "task", None))
    labels = labels if labels is not None else data.labels
    started = time.perf_counter()
    texts = [str(t) for t in data["train"]["text"]]
    y = np.asarray(data["train"]["label"])
    vectorizer = _vectorizer(len(texts))
    features = vectorizer.fit_transform(texts)
    num_outputs = task.num_outputs(labels)
    if task.is_regression:
        baseline = TextBaseline("ridge", vectorizer, num_outputs=num_outputs)
        _fit_scores(baseline, features, y.astype(np.float64).reshape(len(texts), -1))
    elif y.ndim == 2:  # multi-hot rows: multi-label
        baseline = TextBaseline("multi_label", vectorizer, num_outputs=num_outputs)
        _fit_multi_label(baseline, features, y, seed)
    else:
        baseline = TextBaseline("logistic", vectorizer, num_outputs=num_outputs)
        _fit_classes(baseline, features, y, seed)
    baseline.fit_seconds = time.perf_counter() - started
    return baseline


def _decoding_changes(fitted, untuned) -> dict[str, Any]:
    """The fields of the fitted task's ``to_dict()`` that its decoding fit changed."""
    before = untuned.to_dict()
    return {k: v for k, v in fitted.to_dict().items() if before.get(k) != v}


def evaluate_baseline(baseline: TextBaseline, data, task, labels=None, *, run_dir=None,
                      splits: Sequence[str] = ("validation", "test")) -> dict[str, Any]:
    """``metrics["baseline"]``: the baseline decoded and evaluated exactly like the model, per split.

    The task's decoding is fitted on the baseline's own validation outputs
    (``task.fit_decoding``, as for the model). With ``run_dir``, each split's
    predictions go to ``predictions/baseline-<split>.csv`` for the report.

    Example:
        >>> evaluate_baseline(fit_baseline(data, task), data, task)["validation"]["accuracy"]   # doctest: +SKIP
        0.83
    """
    labels = labels if labels is not None else data.labels
    out: dict[str, Any] = baseline.to_dict()
    present = [s for s in splits if s in data]
    outputs = {s: baseline.outputs(data[s]["text"]) for s in present}
    targets = {s: np.asarray(data[s]["label"]) for s in present}
    fitted = task
    if "validation" in outputs:
        fitted = task.fit_decoding(outputs["validation"], targets["validation"], labels,
                                   train_targets=np.asarray(data["train"]["label"]))
    out["decoding"] = _decoding_changes(fitted, task)
    for split in present:
        metrics = fitted.evaluate(outputs[split], targets[split], labels, with_confusion=False)
        metrics.pop("per_label", None)  # the table compares headline metrics; the model's section keeps the detail
        out[split] = metrics
        if run_dir is not None:
            from tfslm.publish.report import save_predictions

            save_predictions(run_dir, f"baseline-{split}", outputs[split], targets[split], labels, fitted)
    return out

