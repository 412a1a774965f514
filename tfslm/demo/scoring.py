"""One way to score texts for the demo: the run's SavedModel, or its Predictor when that has no raw-text signature.

:class:`Scorer` turns either into the same rows -- one dict a text -- so the page
does not care which one answered:

- classification / ordinal: ``{"label": "sports", "probabilities": {"food": 0.1, ...}}``
  (plus ``score``, the label's value, for numeric labels);
- multi-label: ``{"labels": ["a", "c"], "probabilities": {...}}``;
- regression / multi-target: ``{"score": 640.0}`` and ``{"scores": {"c1": 120.0, ...}}``
  on the original scale;
- runs that score long texts in windows also ``"windows": 3``.

Example:
    >>> scorer = Scorer.from_run("runs/quickstart")             # doctest: +SKIP
    >>> scorer.score(["Great value, works perfectly."])[0]["label"]   # doctest: +SKIP
    'positive'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfslm.data.cleaning import clean_text
from tfslm.data.labels import LabelSpace
from tfslm.run_dir import RunDir
from tfslm.tasks.base import Task

__all__ = ["Scorer", "prediction_columns"]

BATCH = 32


@dataclass
class Scorer:
    """Scores texts the way a server would (SavedModel ``serving_default``), else with :class:`tfslm.Predictor`."""

    run_dir: Path
    task: Any
    labels: LabelSpace
    backend: str  # "saved_model" or "predictor"
    chunked: bool = False
    note: str | None = None
    _signatures: Any = field(default=None, repr=False)
    _predictor: Any = field(default=None, repr=False)

    @classmethod
    def from_run(cls, run_dir: str | Path, *, prefer: str = "saved_model") -> Scorer:
        """Load a finished run; ``prefer="predictor"`` skips the SavedModel."""
        run = RunDir(run_dir).require(command="the demo")
        task, labels = Task.load(run.root), LabelSpace.load(run.labels)
        info = _export_info(run.saved_model)
        chunked = info.get("long_text") in ("chunk", "document") if info else _chunked_config(run.root)
        if prefer == "saved_model" and info and "tokenize" in info.get("signatures", []):
            signatures = _load_signatures(run.saved_model, info)
            return cls(run.root, task, labels, "saved_model", chunked, None, signatures)
        from tfslm.serving.predictor import Predictor

        if prefer != "saved_model":
            note = None
        elif info is None:
            note = "no saved_model/ in the run: scored with the Python model (tfslm.Predictor)"
        else:
            note = "the SavedModel has no raw-text signature: scored with the Python model (tfslm.Predictor)"
        return cls(run.root, task, labels, "predictor", chunked, note, None, Predictor.from_run(run.root))

    # ------------------------------------------------------------------ scoring
    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One result dict a text (see the module docstring)."""
        texts = [clean_text(t) for t in texts]
        if not texts:
            return []
        if self.backend == "saved_model":
            outputs, windows = self._saved_model_outputs(texts)
        else:
            outputs, windows = self._predictor_outputs(texts)
        rows = _rows(outputs, self.task, self.labels)
        if windows is not None:
            for row, count in zip(rows, windows):
                row["windows"] = int(count)
        return rows

    def _saved_model_outputs(self, texts: list[str]):
        import tensorflow as tf

        outputs: dict[str, list] = {}
        windows = [] if self.chunked else None
        for start in range(0, len(texts), BATCH):
            batch = tf.constant(texts[start:start + BATCH])
            out = self._signatures["serving_default"](text=batch)
            for key, value in out.items():
                outputs.setdefault(key, []).append(value.numpy())
            if windows is not None:
                doc_index = self._signatures["tokenize_windows"](text=batch)["doc_index"].numpy()
                windows.extend(np.bincount(doc_index, minlength=len(batch.numpy())).tolist())
        return {k: np.concatenate(v) for k, v in outputs.items()}, windows

    def _predictor_outputs(self, texts: list[str]):
        predictor = self._predictor
        decoded = predictor.predict_scores(texts)
        windows = None
        if predictor.chunk_stride is not None:
            from tfslm.inputs.chunking import chunk_encode
            from tfslm.inputs.documents import select_windows

            _, doc_index = chunk_encode(texts, predictor.tokenizer, max_length=predictor.max_length, stride=predictor.chunk_stride)
            doc_index = np.asarray(doc_index)[select_windows(doc_index, predictor.max_windows)]
            windows = np.bincount(doc_index, minlength=len(texts)).tolist()
        return decoded, windows

    def columns(self, texts: Sequence[str]) -> dict[str, list]:
        """The prediction columns ``tfslm predict`` writes (``predicted_label``, ``prob_<label>``, ...)."""
        return prediction_columns(self.score(texts), self.task, self.labels)


def prediction_columns(rows: Sequence[dict], task: Any, labels: LabelSpace) -> dict[str, list]:
    """Columns named as :func:`tfslm.serving.predictor.predict_file` names them, from :meth:`Scorer.score` rows."""
    out: dict[str, list] = {}
    if not rows:
        return out
    first = rows[0]
    if "label" in first:
        out["predicted_label"] = [r["label"] for r in rows]
    if "labels" in first:
        sep = getattr(task, "label_separator", "|")
        out["predicted_labels"] = [sep.join(r["labels"]) for r in rows]
    for name in first.get("scores", {}):
        out[f"predicted_{name}"] = [r["scores"][name] for r in rows]
    if "score" in first:
        out["predicted_score"] = [r["score"] for r in rows]
    for name in first.get("probabilities", {}):
        out[f"prob_{name}"] = [round(float(r["probabilities"][name]), 6) for r in rows]
    if "windows" in first:
        out["windows"] = [r["windows"] for r in rows]
    return out


# ---------------------------------------------------------------------- helpers
def _rows(outputs: dict, task: Any, labels: LabelSpace) -> list[dict[str, Any]]:
    """Per-text dicts from decoded outputs (Predictor) or signature outputs (SavedModel): the same keys."""
    names = [str(n) for n in labels.names]
    n = len(next(iter(outputs.values())))
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for i, row in enumerate(rows):
        if "predicted" in outputs:  # multi-label
            row["labels"] = [names[j] for j in np.flatnonzero(outputs["predicted"][i])]
        elif "label_id" in outputs:
            row["label"] = names[int(outputs["label_id"][i])]
        if "probabilities" in outputs:
            row["probabilities"] = {name: float(p) for name, p in zip(names, outputs["probabilities"][i])}
        if "scores" in outputs and np.ndim(outputs["scores"]) == 2 and len(task.target_names) > 1:
            row["scores"] = {t: float(v) for t, v in zip(task.target_names, outputs["scores"][i])}
        if "score" in outputs and "label_id" not in outputs:
            row["score"] = float(np.ravel(outputs["score"][i])[0])
        elif "score" in outputs and labels.values is not None:
            row["score"] = float(outputs["score"][i])
        elif "label" in row and labels.values is not None:  # the SavedModel serves no score for numeric labels
            row["score"] = float(labels.values[names.index(row["label"])])
    return rows


def _export_info(saved_model: Path) -> dict | None:
    path = saved_model / "assets.extra" / "tfslm_export.json"
    if not (saved_model / "saved_model.pb").is_file() or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _chunked_config(root: Path) -> bool:
    from tfslm.serving.predictor import load_run_config

    return getattr(load_run_config(root).data, "long_text", "truncate") in ("chunk", "document")


def _load_signatures(saved_model: Path, info: dict):
    import tensorflow as tf

    if info.get("tokenizer_ops") == "tf_text":
        import tensorflow_text  # noqa: F401  registers the in-graph WordPiece op the export uses

    loaded = tf.saved_model.load(str(saved_model))
    signatures = dict(loaded.signatures)
    signatures["_keep"] = loaded  # the signatures' variables live as long as the loaded object
    return signatures
