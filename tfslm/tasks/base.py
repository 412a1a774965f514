"""What a run learns to predict: classes, ordered classes, one score, or several scores.

A :class:`Task` is read from the config (``model.problem_type`` and the score
keys of ``data``), saved as ``run_dir/task.json`` next to ``labels.json``, and
read back by predict/evaluate/export/report, so a run always decodes its
outputs the way it was trained.

=========================== ============ ================================= =========================
``model.problem_type``      head size    loss                              decoded as
=========================== ============ ================================= =========================
single_label_classification num classes  sparse cross-entropy              the most probable label
ordinal                     num classes  sparse cross-entropy              label in declared order;
                                                                           ``argmax`` or the
                                                                           ``expected_value``
regression                  1            MSE on targets scaled to [0, 1]   ``predicted_score`` on the
                                         by ``data.score_range``           original scale, rounded to
                                                                           ``data.score_step``
multi_target_regression     len(targets) MSE, explicit at compile time     one score per target (+
                                         (transformers' TF loss would      the total with
                                         pick sparse cross-entropy)        ``data.derive_total``)
=========================== ============ ================================= =========================

Bands (``data.bins`` edges, or ``data.bin_width`` as in the course notebook,
where a total 0..1000 became band ``round(total / 100)``) turn a score column
into classes; the band of each label is stored in ``labels.json``.

Example:
    >>> task = Task(problem_type="regression", score_range=(0.0, 1000.0), score_step=40.0)
    >>> task.scale([0, 500, 1000]).tolist()
    [0.0, 0.5, 1.0]
    >>> task.unscale([0.51]).tolist()
    [520.0]
"""

from __future__ import annotations

import ast
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfslm.atomic import atomic_write_json
from tfslm.errors import DataError, RunDirError
from tfslm.data.labels import LabelSpace, canonical_label

__all__ = ["Task", "CLASSIFICATION", "ORDINAL", "REGRESSION", "MULTI_TARGET", "parse_number_list", "band_label_space"]

CLASSIFICATION = "single_label_classification"
ORDINAL = "ordinal"
REGRESSION = "regression"
MULTI_TARGET = "multi_target_regression"
TASK_FILE = "task.json"


def parse_number_list(value: Any) -> list[float] | None:
    """A cell as a list of numbers: ``"[120, 160]"``, ``[120, 160]``, ``"120"`` or ``120``; None if missing/invalid.

    Example:
        >>> parse_number_list("[120, 160, 80]")
        [120.0, 160.0, 80.0]
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [float(value)] if math.isfinite(float(value)) else None
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        if text[0] in "[(":
            try:
                items = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return None
            if not isinstance(items, (list, tuple)):
                return None
        else:
            items = [text]
    out = []
    for item in items:
        if isinstance(item, bool):
            return None
        try:
            number = float(item)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out or None


def _number_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Task:
    """The prediction task of a run (see the module docstring for the table).

    Args:
        problem_type: single_label_classification | ordinal | regression | multi_target_regression.
        target_names: the parts of a list-valued label cell (multi-target), e.g. the five competences.
        score_range: ``(low, high)`` of each target on the original scale; scales targets to [0, 1].
        score_step: the score grid (e.g. 40); predictions are rounded to it and QWK is computed on it.
        derive_total: multi-target only: also predict and evaluate the sum of the targets.
        ordinal_decoding: ordinal only: ``argmax`` or ``expected_value`` (probability-weighted mean).
        bins: band edges turning a score column into classes, e.g. ``(0, 400, 700, 1000)``.
        bin_width: band width: band ``k`` holds scores that round to ``k * bin_width``.
    """

    problem_type: str = CLASSIFICATION
    target_names: tuple[str, ...] = ()
    score_range: tuple[float, float] | None = None
    score_step: float | None = None
    derive_total: bool = False
    ordinal_decoding: str = "argmax"
    bins: tuple[float, ...] | None = None
    bin_width: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_names", tuple(self.target_names))
        if self.score_range is not None:
            object.__setattr__(self, "score_range", tuple(float(v) for v in self.score_range))
        if self.bins is not None:
            object.__setattr__(self, "bins", tuple(float(v) for v in self.bins))
        if self.problem_type == REGRESSION and not self.target_names:
            object.__setattr__(self, "target_names", ("score",))
        if self.is_regression and self.score_range is None:
            raise ValueError(f"Task: problem_type {self.problem_type} needs score_range=(low, high)")

    # ------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfg) -> "Task":
        """The task a :class:`~tfslm.config.Config` describes."""
        d, m = cfg.data, cfg.model
        return cls(
            problem_type=m.problem_type,
            target_names=tuple(d.target_names or ()),
            score_range=tuple(d.score_range) if d.score_range else None,
            score_step=d.score_step,
            derive_total=bool(d.derive_total),
            ordinal_decoding=m.ordinal_decoding,
            bins=tuple(d.bins) if d.bins else None,
            bin_width=d.bin_width,
        )

    # ------------------------------------------------------------ properties
    @property
    def is_regression(self) -> bool:
        return self.problem_type in (REGRESSION, MULTI_TARGET)

    @property
    def is_ordered(self) -> bool:
        return self.problem_type != CLASSIFICATION

    @property
    def has_bands(self) -> bool:
        return self.bins is not None or self.bin_width is not None

    @property
    def num_targets(self) -> int:
        return len(self.target_names) if self.is_regression else 0

    @property
    def hf_problem_type(self) -> str:
        """The ``problem_type`` of the transformers config (ordinal trains as classification)."""
        return "regression" if self.is_regression else "single_label_classification"

    def num_outputs(self, labels: LabelSpace) -> int:
        """Size of the classification head."""
        return self.num_targets if self.is_regression else labels.num_labels

    @property
    def total_range(self) -> tuple[float, float] | None:
        if self.score_range is None:
            return None
        n = max(1, len(self.target_names)) if self.problem_type == MULTI_TARGET else 1
        return (self.score_range[0] * n, self.score_range[1] * n)

    # ------------------------------------------------------------ scores
    def scale(self, values) -> np.ndarray:
        """Original scale -> [0, 1] by ``score_range``."""
        low, high = self.score_range
        return (np.asarray(values, dtype=np.float64) - low) / (high - low)

    def unscale(self, values, *, round_to_grid: bool = True) -> np.ndarray:
        """[0, 1] -> original scale, clipped to ``score_range`` and rounded to ``score_step`` when given."""
        low, high = self.score_range
        out = np.clip(low + np.asarray(values, dtype=np.float64) * (high - low), low, high)
        return self.round(out) if round_to_grid else out

    def round(self, values, *, total: bool = False) -> np.ndarray:
        """Round to the score grid (``low + k * score_step``); unchanged without a step."""
        values = np.asarray(values, dtype=np.float64)
        if not self.score_step or self.score_range is None:
            return values
        low, high = self.total_range if total else self.score_range
        return np.clip(low + np.floor((values - low) / self.score_step + 0.5) * self.score_step, low, high)

    def grid(self, *, total: bool = False) -> np.ndarray | None:
        """The score values ``low, low + step, ..., high`` (None without a step)."""
        if not self.score_step or self.score_range is None:
            return None
        low, high = self.total_range if total else self.score_range
        n = int(math.floor((high - low) / self.score_step + 1e-9)) + 1
        return low + self.score_step * np.arange(n)

    # ------------------------------------------------------------ bands
    def band_of(self, score: float) -> int:
        """Index of the band holding ``score`` (edges: ``[e_i, e_{i+1})``, the last one closed)."""
        if self.bins is not None:
            edges = self.bins
            if score < edges[0] or score > edges[-1]:
                return -1
            return min(int(np.searchsorted(edges, score, side="right")) - 1, len(edges) - 2)
        return int(math.floor(score / self.bin_width + 0.5))

    def band_name(self, score: float) -> str | None:
        index = self.band_of(score)
        if self.bins is not None:
            return None if index < 0 else _band_edge_name(self.bins, index)
        return str(index)

    # ------------------------------------------------------------ label cells
    def label_cell(self, value: Any):
        """Map a raw label cell to what the label column holds before encoding.

        Classification/ordinal: the canonical label name (the band name when
        banded); regression: a list of floats (one per target); None when missing
        or unreadable.
        """
        if self.is_regression:
            numbers = parse_number_list(value)
            return numbers
        if self.has_bands:
            numbers = parse_number_list(value)
            if numbers is None or len(numbers) != 1:
                return canonical_label(value) if canonical_label(value) is None else f"<not a number: {value}>"
            name = self.band_name(numbers[0])
            return name if name is not None else f"<outside the bands: {_number_name(numbers[0])}>"
        return canonical_label(value)

    # ------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        return {
            "problem_type": self.problem_type,
            "hf_problem_type": self.hf_problem_type,
            "target_names": list(self.target_names),
            "score_range": list(self.score_range) if self.score_range else None,
            "score_step": self.score_step,
            "derive_total": self.derive_total,
            "ordinal_decoding": self.ordinal_decoding,
            "bins": list(self.bins) if self.bins else None,
            "bin_width": self.bin_width,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Task":
        keys = ("problem_type", "target_names", "score_range", "score_step", "derive_total", "ordinal_decoding", "bins", "bin_width")
        values = {k: data[k] for k in keys if k in data and data[k] is not None}
        return cls(**values)

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``run_dir/task.json`` atomically."""
        atomic_write_json(Path(run_dir) / TASK_FILE, self.to_dict())

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "Task":
        """Read ``run_dir/task.json``; a run without one (older runs) is single-label classification."""
        path = Path(run_dir) / TASK_FILE
        if not path.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path}: not a valid task.json ({exc})") from None

    # ------------------------------------------------------------ decoding
    def decode(self, logits: np.ndarray, labels: LabelSpace) -> dict[str, np.ndarray]:
        """Turn raw model outputs into predictions.

        Returns a dict with, depending on the task: ``probabilities`` and
        ``label_id`` (classes), ``score`` (original scale: the single target,
        the derived total, or the ordinal value) and ``scores`` (``[n, targets]``).

        Example:
            >>> Task(problem_type="regression", score_range=(0, 10), score_step=1).decode(np.array([[0.42]]), None)["score"]
            array([4.])
        """
        from tfslm.training.evaluation import softmax

        logits = np.asarray(logits, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        if self.is_regression:
            scores = self.unscale(logits.reshape(len(logits), -1))
            if self.problem_type == REGRESSION:
                out["score"] = scores[:, 0]
            else:
                out["scores"] = scores
                if self.derive_total:
                    out["score"] = scores.sum(axis=1)
            return out
        probs = softmax(logits) if logits.size else logits
        out["probabilities"] = probs
        values = np.asarray(labels.values if labels.values is not None else range(labels.num_labels), dtype=np.float64)
        if self.problem_type == ORDINAL and self.ordinal_decoding == "expected_value" and len(probs):
            expected = probs @ values
            # Nearest label value to the expected value (values may be unevenly spaced).
            out["label_id"] = np.abs(expected[:, None] - values[None, :]).argmin(axis=1)
            out["score"] = self.round(expected) if not self.has_bands else expected
        else:
            out["label_id"] = probs.argmax(axis=-1) if len(probs) else np.zeros((0,), dtype=np.int64)
            if self.problem_type == ORDINAL or labels.values is not None:
                out["score"] = values[out["label_id"]] if len(probs) else np.zeros((0,))
        return out


def _band_edge_name(edges: Sequence[float], index: int) -> str:
    return f"{_number_name(edges[index])}-{_number_name(edges[index + 1])}"


def band_label_space(task: Task, observed: Sequence[str], ordered: bool = True) -> LabelSpace:
    """The label space of the bands: every band between the declared edges (or the score range).

    With ``bin_width`` and no ``data.score_range``, the bands run from the lowest
    to the highest one seen in the training data, without gaps.
    """
    if task.bins is not None:
        names = [_band_edge_name(task.bins, i) for i in range(len(task.bins) - 1)]
        bounds = [(task.bins[i], task.bins[i + 1]) for i in range(len(task.bins) - 1)]
        scores = [(a + b) / 2 for a, b in bounds]
    else:
        w = task.bin_width
        if task.score_range is not None:
            lo, hi = task.band_of(task.score_range[0]), task.band_of(task.score_range[1])
        else:
            seen = [int(n) for n in observed if n is not None and n.lstrip("-").isdigit()]
            if not seen:
                raise DataError("data.bin_width: no numeric scores in the training labels to put in bands")
            lo, hi = min(seen), max(seen)
        names = [str(k) for k in range(lo, hi + 1)]
        bounds = [((k - 0.5) * w, (k + 0.5) * w) for k in range(lo, hi + 1)]
        scores = [k * w for k in range(lo, hi + 1)]
    if len(names) < 2:
        raise DataError(f"data.bins: the bands {names} are fewer than 2 classes; use narrower bands")
    kind = "numeric" if task.bins is None else "categorical"
    return LabelSpace(tuple(names), kind=kind, ordered=ordered, bins=tuple(bounds), scores=tuple(float(s) for s in scores))
