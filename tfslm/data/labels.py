"""The label space: ordered label names over ``datasets.ClassLabel``.

Labels are strings ("positive"), integers (0, 1, 2) or numeric scores (ENEM
totals 0..1000 in steps of 40, kept as class names "0", "40", ..., "1000").
They keep the declared order when given, else a natural order (numbers by
value, "class2" before "class10").

Example:
    >>> space = LabelSpace.infer(["pos", "neg", "pos"])
    >>> space.names, space.encode(["neg", "pos"])
    (('neg', 'pos'), [0, 1])
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from tfslm.atomic import atomic_write_json
from tfslm.errors import DataError, RunDirError

__all__ = ["LabelSpace", "canonical_label", "natural_key"]

KINDS = ("categorical", "numeric")


def canonical_label(value: Any) -> str | None:
    """Turn a raw label cell into its canonical text; ``None`` for a missing label.

    Integral numbers lose a trailing ``.0`` (pandas reads an integer column with
    gaps as floats), and surrounding whitespace is dropped.

    Example:
        >>> canonical_label(40.0), canonical_label(" pos "), canonical_label(float("nan"))
        ('40', 'pos', None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    if not text:
        return None
    number = _as_number(text)
    if number is not None and re.fullmatch(r"[+-]?\d+\.0+", text):
        return str(int(number))
    return text


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: "class2" < "class10"."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text) if part)


@dataclass(frozen=True)
class LabelSpace:
    """Ordered label names, their kind, and whether their order carries meaning.

    Args:
        names: the label names, in id order.
        kind: "categorical" (names) or "numeric" (scores; names are numbers).
        ordered: True when neighbouring labels are closer than distant ones
            (scores, grades, star ratings); enables QWK. Numeric labels are ordered.
    """

    names: tuple[str, ...]
    kind: str = "categorical"
    ordered: bool = False
    # Score bands (data.bins / data.bin_width): the [low, high) range of each label on
    # the original scale and the score that stands for it (used for MAE and predicted_score).
    bins: tuple[tuple[float, float], ...] | None = None
    scores: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if self.bins is not None:
            object.__setattr__(self, "bins", tuple((float(a), float(b)) for a, b in self.bins))
        if self.scores is not None:
            object.__setattr__(self, "scores", tuple(float(v) for v in self.scores))
            if len(self.scores) != len(self.names):
                raise ValueError(f"LabelSpace.scores: expected {len(self.names)} values, got {len(self.scores)}")
        if self.kind not in KINDS:
            raise ValueError(f"LabelSpace.kind: got {self.kind!r}, expected one of {KINDS}")
        if len(self.names) < 2:
            raise DataError(
                f"data.label_column: need at least 2 distinct labels to train a classifier, got {list(self.names)}; "
                "add training rows of another class, or set data.label_column to the column that holds the labels"
            )
        if len(set(self.names)) != len(self.names):
            raise DataError(f"data.labels: duplicate label names in {list(self.names)}; list each label once")

    # ------------------------------------------------------------ building
    @classmethod
    def infer(
        cls,
        values: Iterable[Any],
        declared: Sequence[Any] | None = None,
        label_type: str = "auto",
        ordered: bool | None = None,
    ) -> "LabelSpace":
        """Build the label space from the training labels (or the declared list).

        Args:
            values: raw label cells from the training data (missing ones skipped).
            declared: explicit ordered label names; when given, their order is kept.
            label_type: "auto", "categorical" or "numeric" (every label must be a number).
            ordered: override whether order matters; default: numeric labels are ordered.
        """
        if declared is not None:
            names = [canonical_label(v) for v in declared]
            if any(n is None for n in names):
                raise DataError(f"data.labels: empty label name in {list(declared)}; remove the empty entry or name the label")
        else:
            names = sorted({c for c in (canonical_label(v) for v in values) if c is not None}, key=natural_key)
        numeric = all(_as_number(n) is not None for n in names)
        if label_type == "numeric":
            bad = [n for n in names if _as_number(n) is None]
            if bad:
                raise DataError(
                    f"data.label_type is numeric but labels {bad[:5]} are not numbers; "
                    "fix those cells or set data.label_type: categorical"
                )
        kind = "numeric" if (label_type == "numeric" or (label_type == "auto" and numeric)) else "categorical"
        if kind == "numeric" and declared is None:
            names = sorted(names, key=lambda n: float(n))
        return cls(tuple(names), kind=kind, ordered=(kind == "numeric") if ordered is None else bool(ordered))

    # ------------------------------------------------------------ mapping
    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @property
    def values(self) -> list[float] | None:
        """Numeric value of each label on the original score scale (scores, bands), else None."""
        if self.scores is not None:
            return list(self.scores)
        return [float(n) for n in self.names] if self.kind == "numeric" else None

    def class_label(self):
        """The equivalent ``datasets.ClassLabel`` feature."""
        import datasets

        return datasets.ClassLabel(names=list(self.names))

    def encode(self, values: Iterable[Any], *, where: str = "", rows: Sequence[int] | None = None) -> list[int]:
        """Map raw label cells to ids; unknown labels raise DataError naming them and their rows.

        Args:
            values: raw label cells.
            where: the file the values came from, for the error message.
            rows: the 1-based row number of each value, for the error message.
        """
        lookup = self.label2id
        ids: list[int] = []
        unknown: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            name = canonical_label(value)
            if name in lookup:
                ids.append(lookup[name])
            else:
                unknown.setdefault(str(name), []).append(rows[i] if rows is not None else i + 1)
                ids.append(-1)
        if unknown:
            first = next(iter(unknown))
            details = "; ".join(f"{name!r} in rows {_rows_text(r)}" for name, r in list(unknown.items())[:3])
            prefix = f"{where}: " if where else ""
            raise DataError(
                f"{prefix}unknown label {first!r}: {details}; known labels are {_names_text(self.names)} "
                "(add it to data.labels or fix the rows)"
            )
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.names[int(i)] for i in ids]

    # ------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        out = {
            "names": list(self.names),
            "kind": self.kind,
            "ordered": self.ordered,
            "num_labels": self.num_labels,
            "id2label": {str(i): n for i, n in self.id2label.items()},
        }
        if self.bins is not None:
            out["bins"] = {n: {"low": a, "high": b, "score": s} for n, (a, b), s in zip(self.names, self.bins, self.scores or [None] * len(self.names))}
        elif self.scores is not None:
            out["scores"] = list(self.scores)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LabelSpace":
        names = tuple(data["names"])
        bins = scores = None
        if isinstance(data.get("bins"), dict):
            bins = tuple((data["bins"][n]["low"], data["bins"][n]["high"]) for n in names)
            if all(data["bins"][n].get("score") is not None for n in names):
                scores = tuple(data["bins"][n]["score"] for n in names)
        elif data.get("scores") is not None:
            scores = tuple(data["scores"])
        return cls(names, kind=data.get("kind", "categorical"), ordered=bool(data.get("ordered", False)), bins=bins, scores=scores)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``labels.json`` atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabelSpace":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RunDirError(f"{path}: labels.json not found; is this a finished tfslm run directory?") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(
                f"{path}: not a valid labels.json ({exc}); pass a run directory `tfslm train` wrote, "
                "or retrain it with `tfslm train CONFIG --overwrite`"
            ) from None


def _rows_text(rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" (+{len(rows) - limit} more)" if len(rows) > limit else "")


def _names_text(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
