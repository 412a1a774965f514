"""Multi-target regression (``model.problem_type: multi_target_regression``): several scores per text.

A label cell holds one number per ``data.target_names`` (``"[120, 160, 120, 160, 80]"``
for the five competences of an essay). The head has one linear output per
target, trained with MSE on the targets scaled to [0, 1] by ``data.score_range``
(per target). Each target is decoded as a regression score; with
``data.derive_total`` their sum is predicted and evaluated as the headline
score, else the headline metrics are the means over the targets. Per-target
metrics are ``<target>_mae`` etc.

Example:
    >>> task = MultiTargetTask(target_names=("a", "b"), score_range=(0, 200), score_step=40, derive_total=True)
    >>> task.decode(np.array([[0.5, 1.0]]), None)["score"].tolist()
    [320.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import MULTI_TARGET, register
from tfslm.tasks.metrics import score_metrics
from tfslm.tasks.ops import NUMPY
from tfslm.tasks.regression import SCORE_METRICS, RegressionTask

__all__ = ["MultiTargetTask"]


@register
@dataclass(frozen=True)
class MultiTargetTask(RegressionTask):
    """One score per target, and their total with ``derive_total`` (see the module docstring)."""

    problem_type: str = MULTI_TARGET

    PROBLEM_TYPE: ClassVar[str] = MULTI_TARGET
    _card_single: ClassVar[bool] = False

    def _default_targets(self) -> None:
        pass  # the targets are named by data.target_names

    @classmethod
    def _validate_targets(cls, d, m) -> None:
        from tfslm.errors import ConfigError

        if not d.target_names or len(d.target_names) < 2:
            raise ConfigError(
                "data.target_names: multi_target_regression needs the names of the label cell's parts "
                f"(at least 2), got {d.target_names}; set it to e.g. [c1, c2, c3, c4, c5] for a cell like \"[120, 160, 120, 160, 80]\""
            )
        if len(set(d.target_names)) != len(d.target_names):
            raise ConfigError(f"data.target_names: duplicate names in {d.target_names}; give each part of the label cell its own name")

    @property
    def total_range(self) -> tuple[float, float] | None:
        if self.score_range is None:
            return None
        n = max(1, len(self.target_names))
        return (self.score_range[0] * n, self.score_range[1] * n)

    @property
    def panel_targets(self) -> tuple[str, ...]:
        return tuple(self.target_names)

    # ------------------------------------------------------------ targets
    def _label_source(self, targets: np.ndarray) -> np.ndarray:
        return self._headline(targets) if self.derive_total else targets.reshape(-1)

    def label_column(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> list:
        return self.scale(parsed).astype(np.float32).tolist()

    def label_feature(self, labels: LabelSpace):
        import datasets

        return datasets.Sequence(datasets.Value("float32"), length=self.num_targets)

    # ------------------------------------------------------------ evaluation, decoding
    def _score_metrics(self, true: np.ndarray, pred: np.ndarray, out: dict):
        """``<target>_<metric>`` per target; the headline is the total's (``derive_total``) or the mean over targets."""
        grid = self.grid()
        per = {}
        for j, name in enumerate(self.target_names):
            per[name] = score_metrics(true[:, j], pred[:, j], grid)
            for key, value in per[name].items():
                out[f"{name}_{key}"] = value
        if self.derive_total:
            head_true, head_pred, head_grid = true.sum(axis=1), pred.sum(axis=1), self.grid(total=True)
            out.update(score_metrics(head_true, head_pred, head_grid))
        else:
            head_true, head_pred, head_grid = true.reshape(-1), pred.reshape(-1), grid
            for key in per[self.target_names[0]]:
                out[key] = float(np.mean([per[n][key] for n in self.target_names]))
        return head_true, head_pred, head_grid

    def _decode(self, xp, logits) -> dict:
        scores = self._decoded_scores(xp, logits)
        out = {"scores": scores}
        if self.derive_total:
            out["score"] = xp.sum(scores, axis=-1)
        return out

    def decode(self, logits, labels: LabelSpace) -> dict[str, np.ndarray]:
        """``scores`` (``[n, targets]``, original scale) and, with ``derive_total``, ``score`` (their sum)."""
        logits = NUMPY.asarray(logits)
        return self._decode(NUMPY, logits.reshape(len(logits), -1))

    def prediction_table(self, logits, y_true, labels: LabelSpace) -> dict[str, list]:
        decoded = self.decode(logits, labels)
        true = self.unscale(np.asarray(y_true, dtype=np.float64).reshape(len(logits), -1), round_to_grid=False)
        columns: dict[str, list] = {}
        for j, name in enumerate(self.target_names):
            columns[f"true_{name}"] = true[:, j].tolist()
            columns[f"predicted_{name}"] = decoded["scores"][:, j].tolist()
        if self.derive_total:
            columns["true_score"] = true.sum(axis=1).tolist()
            columns["predicted_score"] = decoded["score"].tolist()
        return columns

    # ------------------------------------------------------------ report
    def report_sections(self, metrics: dict, splits: Sequence[str]) -> list[str]:
        """A per-target metric table (the first evaluated split)."""
        from tfslm.publish.markdown import fmt

        if not splits:
            return []
        val = metrics[splits[0]]
        sub = [k for k in SCORE_METRICS if f"{self.target_names[0]}_{k}" in val]
        lines = [f"### Per target ({splits[0]})", "", "| target | " + " | ".join(sub) + " |", "|---|" + "---|" * len(sub)]
        for name in self.target_names:
            lines.append(f"| {name} | " + " | ".join(fmt(val.get(f"{name}_{k}", "")) for k in sub) + " |")
        lines.append("")
        return lines
