"""Ordinal classification (``model.problem_type: ordinal``): ordered classes, decoded by argmax or expected value.

Trained as classification (sparse cross-entropy over the classes in their
declared order); the label order always carries meaning, so QWK and adjacent
agreement are reported and monitored. ``model.ordinal_decoding:
expected_value`` decodes the probability-weighted mean of the label values
(rounded to ``data.score_step``) and the label nearest to it, instead of the
most probable label.

Example:
    >>> labels = LabelSpace(("0", "1", "2"), kind="numeric", ordered=True)
    >>> task = OrdinalTask(ordinal_decoding="expected_value")
    >>> task.decode(np.log(np.array([[0.5, 0.0001, 0.5]])), labels)["label_id"].tolist()
    [1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import ORDINAL, register, score_column
from tfslm.tasks.classification import ClassificationTask

__all__ = ["OrdinalTask"]


@register
@dataclass(frozen=True)
class OrdinalTask(ClassificationTask):
    """Ordered classes with a score: the label's value, or the expected value (see the module docstring)."""

    problem_type: str = ORDINAL

    PROBLEM_TYPE: ClassVar[str] = ORDINAL
    is_ordered: ClassVar[bool] = True
    serves_score: ClassVar[bool] = True

    @property
    def plot_step(self) -> float | None:
        return self.score_step

    def _predicted_ids(self, logits, probs, labels: LabelSpace) -> np.ndarray:
        return self.decode(logits, labels)["label_id"]

    def _with_score(self, labels: LabelSpace) -> bool:
        return True

    def _decode(self, xp, logits, labels, *, with_score: bool) -> dict:
        """``expected_value``: the probability-weighted mean of the label values (on the score grid unless banded)
        and the label nearest to it; ``argmax``: the most probable label and its value."""
        if self.ordinal_decoding != "expected_value":
            return super()._decode(xp, logits, labels, with_score=with_score)
        probs = xp.softmax(logits)
        values = self._label_values(xp, labels)
        expected = xp.expected(probs, values)
        # Nearest label value to the expected value (values may be unevenly spaced).
        label_id = xp.nearest(expected, values)
        return {"probabilities": probs, "label_id": label_id, "score": expected if self.has_bands else self._snap(xp, expected)}

    def _score_columns(self, decoded: dict) -> dict[str, list]:
        return {"predicted_score": score_column(decoded["score"])} if "score" in decoded else {}

    def report_description(self) -> str:
        return f"{self.problem_type} ({self.ordinal_decoding} decoding)"

    def _printed_outputs(self) -> str:
        return 'out["label"], out["score"], out["probabilities"]'
