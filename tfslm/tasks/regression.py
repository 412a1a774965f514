"""Regression (``model.problem_type: regression``): one score per text on its original scale.

The head has one linear output trained with mean squared error on the score
scaled to [0, 1] by ``data.score_range``; a prediction is mapped back,
clipped to the range and rounded to ``data.score_step`` when given. It is
evaluated by MAE/RMSE on the original scale and, on the score grid, QWK and
exact/adjacent agreement. :mod:`tfslm.tasks.multi_target` extends it to
several scores per text.

Example:
    >>> task = RegressionTask(score_range=(0, 10), score_step=1)
    >>> task.decode(np.array([[0.42]]), None)["score"]
    array([4.])
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from tfslm.data.labels import LabelSpace, canonical_label
from tfslm.errors import DataError
from tfslm.tasks.base import REGRESSION, Task, parse_number_list, register, render, rows_text, score_column
from tfslm.tasks.metrics import confusion_matrix, grid_ids, score_metrics
from tfslm.tasks.ops import NUMPY, graph_ops
from tfslm.tasks.score_decoding import (
    DEFAULT_SCORE_DECODING, MAX_STRETCH, SCORE_DECODINGS, apply_stretch, fit_stretch, fit_thresholds, threshold_index,
)

log = logging.getLogger("tfslm")

__all__ = ["RegressionTask", "ScaledMSE"]

SCORE_METRICS = ("qwk", "mae", "rmse", "exact", "adjacent")

_SCORES_SECTION = """## Scores

| target | model output | range | grid |
|--------|--------------|-------|------|
{% for row in scores.targets -%}
| {{ row.name }} | {{ row.output }} | {{ row.range }} | {{ row.grid }} |
{% endfor %}
{{ scores.decoding }}

| split | rows | mean{{ scores.summed }} | min | max |
|-------|-----:|------:|----:|----:|
{% for row in scores.splits -%}
| {{ row.split }} | {{ row.rows }} | {{ row.mean }} | {{ row.min }} | {{ row.max }} |
{% endfor %}
"""

_PER_TARGET = """Per target{% if scores and scores.headline %} ({{ scores.headline }}){% endif %}:

| target | split | QWK | MAE | RMSE | exact | adjacent |
|--------|-------|----:|----:|-----:|------:|---------:|
{% for row in target_rows -%}
| {{ row.name }} | {{ row.split }} |{% for value in row["values"] %} {{ value }} |{% endfor %}
{% endfor %}
"""

_USAGE_DECODE = """outputs = model(**inputs).logits.numpy()  # [texts, {{ scores.num_targets }}]: {{ scores.output_names }}, scaled to [0, 1]
low, high, step = {{ scores.low }}, {{ scores.high }}, {{ scores.step }}
{% if scores.rule == "thresholds" -%}
cuts = np.array({{ scores.params }})  # per target, tuned on the validation set (task.json)
scores = np.clip(low + (outputs[:, :, None] >= cuts[None]).sum(axis=-1) * step, low, high)
{% else -%}
{% if scores.rule == "stretch" -%}
scale, shift = np.array({{ scores.params }}).T  # per target, fitted after training (task.json)
outputs = outputs * scale + shift
{% endif -%}
scores = np.clip(low + outputs * (high - low), low, high)
{% if scores.step != "None" -%}
scores = np.clip(low + np.floor((scores - low) / step + 0.5) * step, low, high)  # nearest grid value, halves up
{% endif -%}
{% endif -%}
{% if scores.derive_total -%}
total = scores.sum(axis=1)
{% endif -%}
print(scores{% if scores.derive_total %}, total{% endif %})
```"""


def ScaledMSE():  # noqa: N802 (a class factory: TensorFlow is imported on first use)
    """MSE between the ``[batch, targets]`` outputs and targets given as ``[batch]`` or ``[batch, targets]``."""
    import tensorflow as tf

    from tfslm.backends import keras_module

    class _ScaledMSE(keras_module().losses.Loss):  # the Keras the model's backend uses
        def call(self, y_true, y_pred):
            y_pred = tf.cast(y_pred, tf.float32)
            y_true = tf.reshape(tf.cast(y_true, tf.float32), tf.shape(y_pred))
            return tf.reduce_mean(tf.square(y_pred - y_true), axis=-1)

    _ScaledMSE.__name__ = "ScaledMSE"
    return _ScaledMSE(name="mse")


@register
@dataclass(frozen=True)
class RegressionTask(Task):
    """One score per text (see the module docstring); needs ``score_range``.

    Args:
        score_decoding: ``round``, ``stretch`` or ``thresholds`` (:mod:`tfslm.tasks.score_decoding`).
        decoding_params: per target, ``(scale, shift)`` of the stretch or the cut points of the
            thresholds, fitted by :meth:`fit_decoding`; empty: plain rounding.
    """

    problem_type: str = REGRESSION
    score_decoding: str = "round"
    decoding_params: tuple = ()

    PROBLEM_TYPE: ClassVar[str] = REGRESSION
    hf_problem_type: ClassVar[str] = "regression"
    is_regression: ClassVar[bool] = True
    is_ordered: ClassVar[bool] = True
    confusion_axis: ClassVar[str] = "score (grid)"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._default_targets()
        if self.score_range is None:
            raise ValueError(f"Task: problem_type {self.problem_type} needs score_range=(low, high)")
        if self.score_decoding not in SCORE_DECODINGS:
            raise ValueError(f"Task: score_decoding {self.score_decoding!r} is unknown; expected one of: {', '.join(SCORE_DECODINGS)}")
        if self.score_decoding == "thresholds" and not self.score_step:
            raise ValueError("Task: score_decoding thresholds needs score_step (the grid the cut points separate)")
        object.__setattr__(self, "decoding_params", tuple(tuple(float(v) for v in row) for row in self.decoding_params))
        if self.decoding_params and len(self.decoding_params) != self.num_targets:
            raise ValueError(f"Task: {len(self.decoding_params)} rows of decoding_params for {self.num_targets} target(s); fit them again")

    @classmethod
    def config_options(cls, cfg) -> dict[str, Any]:
        return {"score_decoding": cfg.data.score_decoding or DEFAULT_SCORE_DECODING}

    def _default_targets(self) -> None:
        if not self.target_names:
            object.__setattr__(self, "target_names", ("score",))

    @classmethod
    def validate_config(cls, d, m) -> None:
        from tfslm.errors import ConfigError

        if d.score_range is None:
            raise ConfigError(
                f"data.score_range: required for model.problem_type {m.problem_type} (targets are scaled to [0, 1] "
                "by it); give [low, high], e.g. [0, 1000] (per target for multi_target_regression, e.g. [0, 200])"
            )
        cls._validate_targets(d, m)
        if d.bins is not None or d.bin_width is not None:
            raise ConfigError("data.bins/data.bin_width: bands are classes; use them with single_label_classification or ordinal")
        if d.score_decoding == "thresholds" and not d.score_step:
            raise ConfigError(
                "data.score_decoding: thresholds separate the values of the score grid, and data.score_step is not set; "
                "set data.score_step (e.g. 40), or use data.score_decoding: stretch"
            )

    @classmethod
    def _validate_targets(cls, d, m) -> None:
        Task.validate_config(d, m)

    # ------------------------------------------------------------ properties
    @property
    def num_targets(self) -> int:
        return len(self.target_names)

    @property
    def plot_step(self) -> float | None:
        return self.score_step

    # ------------------------------------------------------------ head, loss, monitor
    def num_outputs(self, labels: LabelSpace) -> int:
        return self.num_targets

    def output_names(self, label_names: Sequence[str]) -> list[str]:
        return list(self.target_names)  # one output per target

    def keras_loss(self):
        """Mean squared error on the [0, 1] scaled targets, explicit: transformers' own TF loss picks
        sparse cross-entropy whenever ``num_labels > 1``, which is wrong for several targets."""
        return ScaledMSE()

    def default_monitor(self, labels: LabelSpace) -> str:
        return "val_qwk" if self.score_step else "val_mae"

    def initial_output_bias(self, train_targets) -> np.ndarray | None:
        """The mean scaled training target per output: the head starts at the mean, not at the bottom of the range."""
        if train_targets is None or not len(train_targets):
            return None
        return np.asarray(train_targets, dtype=np.float64).reshape(len(train_targets), -1).mean(axis=0).astype(np.float32)

    # ------------------------------------------------------------ label cells and targets
    def label_cell(self, value: Any):
        """A list of floats (one per target); None when missing or unreadable."""
        return parse_number_list(value)

    def parse_labels(self, cells, rows, *, where, column, data=None) -> np.ndarray:
        """The ``[rows, targets]`` scores of a split, checked against the task."""
        n = self.num_targets
        wrong = [(r, v) for r, v in zip(rows, cells) if len(v) != n]
        if wrong:
            what = f"{n} numbers (one per data.target_names: {', '.join(self.target_names)})" if n > 1 else "one number"
            raise DataError(
                f"{where}: column {column!r} row {wrong[0][0]} holds {wrong[0][1]}; expected {what}"
                + (f" ({len(wrong)} such rows)" if len(wrong) > 1 else "")
                + ("; for list-valued cells use model.problem_type: multi_target_regression with data.target_names" if n == 1 else "")
            )
        array = np.asarray(cells, dtype=np.float64).reshape(len(cells), n)
        low, high = self.score_range
        outside = [r for r, v in zip(rows, array) if (v < low).any() or (v > high).any()]
        if outside:
            raise DataError(
                f"{where}: {len(outside)} score(s) in column {column!r} outside data.score_range [{low:g}, {high:g}] "
                f"(rows {rows_text(outside)}); fix them or widen data.score_range"
            )
        self._warn_off_grid(array, rows, where, column)
        return array

    def _warn_off_grid(self, array: np.ndarray, rows, where, column) -> None:
        """Scores between the grid's steps are rounded by QWK and by every prediction: say so once, with the figure."""
        if not self.score_step:
            return
        low = self.score_range[0]
        steps = (array - low) / self.score_step
        off = np.abs(steps - np.round(steps)) > 1e-6
        bad = [r for r, o in zip(rows, off.any(axis=1)) if o]
        if bad:
            example = float(array[off][0])
            log.warning(
                "%s: %d of %d score(s) in column %r are not on the data.score_step %g grid (e.g. %g, rows %s): predictions "
                "and QWK round them to the grid; set data.score_step to the data's step, or leave it out for continuous scores",
                where, len(bad), len(rows), column, self.score_step, example, rows_text(bad))

    def _headline(self, targets: np.ndarray) -> np.ndarray:
        """The score metrics headline: the single target, or the total of several."""
        return targets.sum(axis=1) if targets.shape[1] > 1 else targets[:, 0]

    def _label_source(self, targets: np.ndarray) -> np.ndarray:
        """The scores whose values make the label space where there is no grid."""
        return self._headline(targets)

    def label_space(self, parsed_train, data) -> LabelSpace:
        """The score grid as a label space (for QWK, confusion and labels.json)."""
        grid = self.grid(total=self.derive_total)
        if grid is not None:
            names = [canonical_label(float(v)) for v in grid]
        else:
            names = sorted({canonical_label(float(v)) for v in self._label_source(parsed_train)}, key=float)
        return LabelSpace(tuple(names), kind="numeric", ordered=True)

    def encode_targets(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> np.ndarray:
        """The targets scaled to [0, 1] (``[rows, targets]``)."""
        return self.scale(parsed)

    def label_column(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> list:
        return self.scale(parsed).astype(np.float32)[:, 0].tolist()

    def label_feature(self, labels: LabelSpace):
        import datasets

        return datasets.Value("float32")

    def strata(self, parsed_train, labels: LabelSpace) -> np.ndarray:
        """Headline score on its grid, else deciles."""
        head = self._headline(parsed_train)
        step = self.score_step
        if step:
            return np.floor(head / step + 0.5).astype(np.int64)
        edges = np.quantile(head, np.linspace(0, 1, 11)[1:-1])
        return np.searchsorted(edges, head, side="right")

    def split_summary(self, dataset, labels: LabelSpace) -> dict[str, Any]:
        scaled = np.asarray(dataset["label"], dtype=np.float64).reshape(dataset.num_rows, -1)
        values = self.unscale(scaled, round_to_grid=False).sum(axis=1)
        return {"rows": dataset.num_rows, "score_mean": round(float(values.mean()), 3),
                "score_min": float(values.min()), "score_max": float(values.max())}

    def tfrecord_label_feature(self, labels: LabelSpace) -> dict[str, Any]:
        shape = [] if self.num_targets == 1 else [self.num_targets]
        return {"dtype": "float32", "shape": shape, "stored_as": "float_list", "meaning": "targets scaled to [0, 1] by task.score_range"}

    # ------------------------------------------------------------ windows, evaluation
    def _pool(self, xp, logits, doc_index, num_docs: int):
        """The mean of the window outputs (scaled scores)."""
        return xp.segment_mean(logits, doc_index, num_docs)

    def evaluate(self, logits, y_true, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
        """MSE on the scaled targets, then MAE/RMSE on the original scale and, on the score grid, QWK,
        exact and adjacent agreement (``y_true``: the scaled targets)."""
        logits = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
        scaled_true = np.asarray(y_true, dtype=np.float64).reshape(len(logits), -1)
        out: dict = {"loss": float(np.mean((logits - scaled_true) ** 2)) if len(logits) else 0.0}
        true = self.unscale(scaled_true, round_to_grid=False)
        pred = self._decoded_scores(NUMPY, logits)
        head_true, head_pred, head_grid = self._score_metrics(true, pred, out)
        out["num_examples"] = int(len(logits))
        if with_confusion and head_grid is not None:
            out["confusion_matrix"] = confusion_matrix(grid_ids(head_true, head_grid), grid_ids(head_pred, head_grid), len(head_grid)).tolist()
        return out

    def _score_metrics(self, true: np.ndarray, pred: np.ndarray, out: dict):
        """Add the headline score metrics to ``out``; return ``(true, predicted, grid)`` of the headline."""
        grid = self.grid()
        out.update(score_metrics(true[:, 0], pred[:, 0], grid))
        return true[:, 0], pred[:, 0], grid

    # ------------------------------------------------------------ decoding
    def _decoded_scores(self, xp, logits):
        """``[n, targets]`` scores on the original scale by the fitted rule, for NumPy and the graph alike."""
        if self.score_decoding == "thresholds" and self.decoding_params:
            low, high = self.score_range
            return xp.clip(low + threshold_index(xp, logits, self.decoding_params) * self.score_step, low, high)
        if self.score_decoding == "stretch" and self.decoding_params:
            logits = apply_stretch(xp, logits, self.decoding_params)
        return self._snap(xp, self._unscale(xp, logits))

    def _decode(self, xp, logits) -> dict:
        """The decoding rule, for NumPy and the graph: the fitted stretch or thresholds, unscale, clip, round to the grid."""
        scores = self._decoded_scores(xp, logits)
        return {"scores": scores, "score": xp.column(scores, 0)}

    def fit_decoding(self, logits, y_true, labels: LabelSpace, *, train_targets=None) -> "RegressionTask":
        """The task with ``score_decoding`` fitted on validation outputs (``round``: unchanged).

        ``stretch`` matches the outputs' mean and spread to ``train_targets`` (the validation
        targets when None); ``thresholds`` then moves the grid's cut points to maximise QWK.
        """
        if self.score_decoding == "round" or not len(logits):
            return self
        outputs = np.asarray(logits, dtype=np.float32).astype(np.float64).reshape(len(logits), -1)
        reference = train_targets if train_targets is not None and len(train_targets) else y_true
        stretch = fit_stretch(outputs, np.asarray(reference, dtype=np.float64).reshape(len(reference), -1))
        if self.score_decoding == "stretch":
            return dataclasses.replace(self, decoding_params=tuple(stretch))
        grid = self.grid()
        true = self.unscale(np.asarray(y_true, dtype=np.float64).reshape(len(outputs), -1), round_to_grid=False)
        true_ids = np.stack([grid_ids(true[:, j], grid) for j in range(true.shape[1])], axis=1)
        return dataclasses.replace(self, decoding_params=tuple(fit_thresholds(outputs, true_ids, self.scale(grid), stretch)))

    def flat_output_warning(self, logits, train_targets=None) -> str | None:
        """A warning when every target's outputs spread less than 1/20 of its training targets' (a collapsed run).

        That is the spread the stretch refuses to blow up (``score_decoding.MAX_STRETCH``): the model
        learned to predict the mean. Seen on the essays at learning rate 1e-4 with some seeds.

        >>> task = RegressionTask(score_range=(0, 1000), score_step=40)
        >>> task.flat_output_warning(np.full((8, 1), 0.6), np.linspace(0, 1, 8)) is not None
        True
        """
        outputs = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
        if train_targets is None or len(outputs) < 2 or not len(train_targets):
            return None
        targets = np.asarray(train_targets, dtype=np.float64).reshape(len(train_targets), -1)
        spread, wanted = outputs.std(axis=0), targets.std(axis=0)
        if not (wanted > 0).all() or (spread * MAX_STRETCH >= wanted).any():
            return None
        low, high = self.score_range
        shown = ", ".join(f"{float(s) * (high - low):.3g} against {float(w) * (high - low):.3g}" for s, w in zip(spread, wanted))
        return (f"the model gives every validation row about the same score (standard deviation of its outputs "
                f"{shown} in the training scores): it learned to predict the mean; retrain with a lower "
                f"learning rate (--set training.learning_rate=...) or another seed (--set training.seed=...)")

    def decoding_summary(self) -> dict[str, Any]:
        """The decoding rule and its fitted parameters, for ``metrics.json`` and the report."""
        return {"score_decoding": self.score_decoding, "decoding_params": [list(row) for row in self.decoding_params]}

    def decode(self, logits, labels: LabelSpace) -> dict[str, np.ndarray]:
        """``score`` on the original scale.

        Example:
            >>> Task(problem_type="regression", score_range=(0, 10), score_step=1).decode(np.array([[0.42]]), None)["score"]
            array([4.])
        """
        logits = NUMPY.asarray(logits)
        return {"score": self._decode(NUMPY, logits.reshape(len(logits), -1))["score"]}

    def serving_outputs(self, logits, label_names, labels) -> dict:
        """``logits``, ``scores`` (``[None, targets]``, original scale, on the grid) and ``score``."""
        return {"logits": logits, **self._decode(graph_ops(), logits)}

    def probabilities(self, logits) -> np.ndarray:
        raise TypeError("predict_proba: this run predicts scores (regression); use predict_scores")

    def predictions(self, decoded: dict, labels: LabelSpace) -> list:
        return decoded["score"].tolist() if "score" in decoded else decoded["scores"].tolist()

    def prediction_columns(self, decoded: dict, labels: LabelSpace) -> dict[str, list]:
        """``predicted_<target>`` per target (several targets) and ``predicted_score``."""
        out = {}
        if "scores" in decoded:
            for j, name in enumerate(self.target_names):
                out[f"predicted_{name}"] = score_column(decoded["scores"][:, j])
        if "score" in decoded:
            out["predicted_score"] = score_column(decoded["score"])
        return out

    def prediction_table(self, logits, y_true, labels: LabelSpace) -> dict[str, list]:
        decoded = self.decode(logits, labels)
        true = self.unscale(np.asarray(y_true, dtype=np.float64).reshape(len(logits), -1), round_to_grid=False)
        return {"true_score": true[:, 0].tolist(), "predicted_score": decoded["score"].tolist()}

    # ------------------------------------------------------------ report
    def report_facts(self, labels: LabelSpace) -> list[tuple[str, str]]:
        return super().report_facts(labels) + [
            ("targets", ", ".join(self.target_names) + f" in [{self.score_range[0]:g}, {self.score_range[1]:g}]"
             + (f", step {self.score_step:g}" if self.score_step else "") + ("; total = their sum" if self.derive_total else "")),
            ("score decoding", self._decoding_fact()),
        ]

    def _decoding_fact(self) -> str:
        if not self.decoding_params:
            return "round to the grid" if self.score_step else "unscale and clip"
        if self.score_decoding == "stretch":
            return "stretch to the training scores' mean and spread (scale, shift per target: " + ", ".join(
                f"{row[0]:.4g}, {row[1]:.4g}" for row in self.decoding_params) + "), then round"
        return (f"grid thresholds tuned on validation for QWK ({len(self.decoding_params[0])} cuts per target); "
                "validation QWK is therefore optimistic, the test split's is not")

    def report_metrics_note(self, labels: LabelSpace) -> str:
        return "MAE and RMSE are on the original score scale; QWK, exact and adjacent (within one grid step) agreement on the score grid."

    # ------------------------------------------------------------ card
    def card_context(self, labels: dict, metrics: dict, data: dict) -> dict[str, Any]:
        from tfslm.tasks.classification import CARD_EVAL_METRICS, CARD_RESULT_ROWS

        scores = self._card_scores(metrics)
        target_rows = self._card_target_rows(metrics, scores["target_names"])
        return {
            "noun": "text scorer",
            "sentence": self._card_sentence(data.get("text_column") or "text"),
            "section": render(_SCORES_SECTION, scores=scores),
            "results_extra": render(_PER_TARGET, scores=scores, target_rows=target_rows) if target_rows else "",
            "axes": "rows: true score, columns: predicted score, both on the grid",
            "usage_imports": "import numpy as np\nfrom transformers import AutoTokenizer, TFAutoModelForSequenceClassification",
            "usage_decode": _USAGE_DECODE,
            "usage_context": {"scores": scores},
            "printed_outputs": 'out["score"], out["scores"]' if self._card_single or scores["derive_total"] else 'out["scores"]',
            "example_text": "An example text to score.",
            "eval_metrics": CARD_EVAL_METRICS,
            "result_rows": CARD_RESULT_ROWS,
        }

    #: One score (``predicted_score``) rather than one per target.
    _card_single: ClassVar[bool] = True

    def _card_sentence(self, text_column: str) -> str:
        targets = [str(t) for t in self.target_names]
        low, high = self.score_range
        what = "a score" if len(targets) == 1 else f"{len(targets)} scores ({', '.join(f'`{t}`' for t in targets)})"
        scale = f" on a {low:g}..{high:g} scale"
        grid = f" in steps of {self.score_step:g}" if self.score_step else ""
        total = "; the total is their sum" if self.derive_total else ""
        return (
            f"It reads the `{text_column}` column and predicts {what}{scale}{grid} by regression{total}; "
            "it is judged by quadratic weighted kappa (QWK) on the score grid, mean absolute error (MAE) and RMSE."
        )

    def _card_scores(self, metrics: dict) -> dict:
        """What a scorer predicts and how its outputs become scores: the Scores section of the card."""
        from tfslm.publish.markdown import g, number, section

        targets = [str(t) for t in self.target_names]
        low, high = self.score_range
        step = self.score_step
        step = float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else None
        derive_total = bool(self.derive_total) and len(targets) > 1

        def grid(lo: float, hi: float) -> str:
            if step is None:
                return "continuous (not rounded)"
            count = int((hi - lo) / step + 1e-9) + 1
            values = [lo + step * i for i in range(count)]
            shown = ", ".join(g(v) for v in values) if count <= 6 else f"{g(values[0])}, {g(values[1])}, …, {g(values[-1])}"
            return f"steps of {g(step)}: {shown} ({count} values)"

        rows = [
            {"name": f"`{name}`", "output": f"`logits[:, {i}]`", "range": f"{g(low)}–{g(high)}", "grid": grid(low, high)}
            for i, name in enumerate(targets)
        ]
        n = len(targets)
        if derive_total:
            rows.append({"name": "total (`score`)", "output": "sum of the decoded targets", "range": f"{g(low * n)}–{g(high * n)}",
                         "grid": grid(low * n, high * n)})
        if step is None:
            rounding = " (not rounded)"
        else:
            point = f"k × {g(step)}" if low == 0 else f"{g(low)} + k × {g(step)}"
            rounding = f" and rounded to the nearest grid value `{point}` (halves up)"
        outputs = "`predicted_score`" if self._card_single else ", ".join(f"`predicted_{t}`" for t in targets)
        if derive_total:
            outputs += " and `predicted_score` (the total)"
        served = "`score` and `scores`" if self._card_single or derive_total else "`scores` (`[texts, targets]`)"
        mapped = f"output × {g(high)}" if low == 0 else f"{g(low)} + output × ({g(high)} − {g(low)})"
        decoding = self._card_decoding(n, mapped, rounding, derive_total, outputs, served)
        data = section(metrics, "data")
        splits = []
        for split in ("train", "validation", "test"):
            info = section(data, split)
            if info:
                splits.append({"split": split, "rows": number(info.get("rows")), "mean": g(info.get("score_mean")),
                               "min": g(info.get("score_min")), "max": g(info.get("score_max"))})
        if self._card_single:
            headline = None
        elif derive_total:
            headline = "the results above are on the total, the sum of the targets"
        else:
            headline = "the results above are the means over the targets"
        rule = self.score_decoding if self.decoding_params else "round"
        return {
            "rule": rule, "params": [[round(v, 6) for v in row] for row in self.decoding_params],
            "targets": rows, "decoding": decoding, "splits": splits, "summed": " (sum of the targets)" if n > 1 else "",
            "headline": headline, "num_targets": n, "output_names": ", ".join(targets), "low": g(low), "high": g(high),
            "step": g(step) if step is not None else "None", "derive_total": derive_total, "target_names": targets,
        }

    def _card_decoding(self, n: int, mapped: str, rounding: str, derive_total: bool, outputs: str, served: str) -> str:
        """The card's sentence on how outputs become scores (the fitted rule included)."""
        if self.score_decoding == "thresholds" and self.decoding_params:
            back = "Each output is compared with the cut points: the score is the grid value of the number of cuts it reaches"
        else:
            back = f"A prediction is mapped back with `{mapped}`, clipped to the range{rounding}"
        return (
            f"The model has {n} linear output{'s' if n > 1 else ''} (no activation), trained with mean squared error on the "
            f"target{'s' if n > 1 else ''} scaled to [0, 1] by the range. {self._card_rule_sentence()}{back}"
            + ("; the total is the sum of the rounded targets" if derive_total else "")
            + f". `tfslm predict` writes {outputs}; the SavedModel returns {served} decoded the same way."
        )

    def _card_rule_sentence(self) -> str:
        """How the fitted ``score_decoding`` changes the outputs before they become scores ("" for rounding)."""
        if not self.decoding_params:
            return ""
        if self.score_decoding == "stretch":
            pairs = "; ".join(f"× {row[0]:.4g} {'+' if row[1] >= 0 else '−'} {abs(row[1]):.4g}" for row in self.decoding_params)
            return ("Regression pulls predictions towards the mean, so the outputs are first stretched to the training "
                    f"scores' mean and spread, fitted on the validation set ({pairs}). ")
        return ("Regression pulls predictions towards the mean, so the grid's cut points were tuned on the validation "
                f"set to maximise QWK ({len(self.decoding_params[0])} cuts per target, listed in `task.json`). ")

    def _card_target_rows(self, metrics: dict, targets: list[str]) -> list[dict]:
        """Per-target QWK/MAE/RMSE/exact/adjacent of a multi-target run, one row per target and split."""
        from tfslm.publish.markdown import cell, number, section

        rows = []
        if len(targets) < 2:
            return rows
        for split in ("validation", "test"):
            split_metrics = section(metrics, split)
            for name in targets:
                values = [split_metrics.get(f"{name}_{key}") for key in SCORE_METRICS]
                if all(v is None for v in values):
                    continue
                rows.append({"name": f"`{cell(name)}`", "split": split, "values": [number(v) for v in values]})
        return rows
