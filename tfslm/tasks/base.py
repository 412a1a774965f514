"""What a run learns to predict: the :class:`Task` base class, the registry of task types, storage.

A :class:`Task` is read from the config (``model.problem_type`` and the score
keys of ``data``), saved as ``run_dir/task.json`` next to ``labels.json``, and
read back by predict/evaluate/export/report, so a run always decodes its
outputs the way it was trained. Everything that depends on the kind of task
is a method of its class, one file per task type:

=========================== ======================= ============ ================================= =========================
``model.problem_type``      class (file)            head size    loss                              decoded as
=========================== ======================= ============ ================================= =========================
single_label_classification ``ClassificationTask``  num classes  sparse cross-entropy              the most probable label
                            (classification.py)
ordinal                     ``OrdinalTask``         num classes  sparse cross-entropy              label in declared order;
                            (ordinal.py)                                                           ``argmax`` or the
                                                                                                   ``expected_value``
regression                  ``RegressionTask``      1            MSE on targets scaled to [0, 1]   ``predicted_score`` on the
                            (regression.py)                      by ``data.score_range``           original scale, rounded to
                                                                                                   ``data.score_step``
multi_target_regression     ``MultiTargetTask``     len(targets) MSE, explicit at compile time     one score per target (+
                            (multi_target.py)                    (transformers' TF loss would      the total with
                                                                 pick sparse cross-entropy)        ``data.derive_total``)
=========================== ======================= ============ ================================= =========================

``Task(problem_type=...)`` returns the registered class of that problem type
(``Task()`` is single-label classification), so code that builds a task from a
config, a dict or ``task.json`` never names the classes.

Adding a task type: a new file with a ``@register`` subclass of :class:`Task`
that implements the methods below (head, loss, metrics, monitor, label cells
and targets, pooling, evaluation, decoding in NumPy and in the graph through
:mod:`tfslm.tasks.ops`, prediction columns, report and card sections), its
import in ``tfslm/tasks/__init__.py``, and its config keys in ``tfslm/config.py``.

Bands (``data.bins`` edges, or ``data.bin_width`` as in the course notebook,
where a total 0..1000 became band ``round(total / 100)``) turn a score column
into classes; the band of each label is stored in ``labels.json``.

Example:
    >>> task = Task(problem_type="regression", score_range=(0.0, 1000.0), score_step=40.0)
    >>> type(task).__name__, task.scale([0, 500, 1000]).tolist()
    ('RegressionTask', [0.0, 0.5, 1.0])
    >>> task.unscale([0.51]).tolist()
    [520.0]
"""

from __future__ import annotations

import ast
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from tfslm.atomic import atomic_write_json
from tfslm.data.labels import LabelSpace, canonical_label
from tfslm.errors import DataError, RunDirError
from tfslm.tasks.ops import NUMPY, graph_ops

__all__ = [
    "Task", "CLASSIFICATION", "ORDINAL", "REGRESSION", "MULTI_TARGET", "parse_number_list", "band_label_space",
    "register", "task_class", "problem_types", "TASK_FILE",
]

CLASSIFICATION = "single_label_classification"
ORDINAL = "ordinal"
REGRESSION = "regression"
MULTI_TARGET = "multi_target_regression"
TASK_FILE = "task.json"

_REGISTRY: dict[str, type["Task"]] = {}


def register(cls: type["Task"]) -> type["Task"]:
    """Class decorator: make ``cls`` the task of ``cls.PROBLEM_TYPE`` (``model.problem_type``)."""
    _REGISTRY[cls.PROBLEM_TYPE] = cls
    return cls


def problem_types() -> tuple[str, ...]:
    """Every registered ``model.problem_type``, in registration order."""
    return tuple(_REGISTRY)


def task_class(problem_type: str) -> type["Task"]:
    """The registered class of ``problem_type``; ValueError naming the known ones otherwise."""
    try:
        return _REGISTRY[problem_type]
    except (KeyError, TypeError):
        raise ValueError(f"Task: problem_type {problem_type!r} is unknown; expected one of: {', '.join(_REGISTRY)}") from None


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


def rows_text(rows: Sequence[int], limit: int = 5) -> str:
    """Row numbers for a message: ``3, 5, 9 and 12 more``."""
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def score_column(values) -> list:
    """Scores as ints where they are whole numbers (600, not 600.0), else rounded floats."""
    values = np.round(np.asarray(values, dtype=np.float64), 4)
    if np.all(values == np.round(values)):
        return values.astype(np.int64).tolist()
    return values.tolist()


def _number_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(template: str, **context) -> str:
    """A Jinja fragment of the model card, rendered as the card template renders it (trailing newline kept)."""
    import jinja2

    return jinja2.Environment(keep_trailing_newline=True).from_string(template).render(**context)


@dataclass(frozen=True)
class Task:
    """The prediction task of a run (see the module docstring for the table).

    ``Task(...)`` returns the subclass registered for ``problem_type``.

    Args:
        problem_type: single_label_classification | ordinal | regression | multi_target_regression
            (and any other registered type, see :func:`problem_types`).
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

    PROBLEM_TYPE: ClassVar[str] = ""
    #: The ``problem_type`` of the transformers model config.
    hf_problem_type: ClassVar[str] = "single_label_classification"
    #: Scores on a scale rather than classes (kept for callers of the flat Task of earlier releases).
    is_regression: ClassVar[bool] = False
    #: Label order carries meaning (QWK, adjacent agreement).
    is_ordered: ClassVar[bool] = False
    #: The metrics of the report's table, in order (those present are shown).
    report_metric_keys: ClassVar[tuple[str, ...]] = ("loss", "qwk", "mae", "rmse", "exact", "adjacent", "accuracy", "macro_f1")
    #: What the rows/columns of the confusion matrix are, for plot titles.
    confusion_axis: ClassVar[str] = "label"

    def __new__(cls, *args, **kwargs):
        if cls is Task:
            problem_type = kwargs.get("problem_type", args[0] if args else CLASSIFICATION)
            cls = task_class(problem_type)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        if self.problem_type != type(self).PROBLEM_TYPE:
            raise ValueError(f"{type(self).__name__}: problem_type must be {type(self).PROBLEM_TYPE!r}, got {self.problem_type!r}; use Task(problem_type=...)")
        object.__setattr__(self, "target_names", tuple(self.target_names))
        if self.score_range is not None:
            object.__setattr__(self, "score_range", tuple(float(v) for v in self.score_range))
        if self.bins is not None:
            object.__setattr__(self, "bins", tuple(float(v) for v in self.bins))

    # ------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfg) -> "Task":
        """The task a :class:`~tfslm.config.Config` describes."""
        d, m = cfg.data, cfg.model
        kind = task_class(m.problem_type)
        return kind(
            problem_type=m.problem_type,
            target_names=tuple(d.target_names or ()),
            score_range=tuple(d.score_range) if d.score_range else None,
            score_step=d.score_step,
            derive_total=bool(d.derive_total),
            ordinal_decoding=m.ordinal_decoding,
            bins=tuple(d.bins) if d.bins else None,
            bin_width=d.bin_width,
            **kind.config_options(cfg),
        )

    @classmethod
    def config_options(cls, cfg) -> dict[str, Any]:
        """Keyword arguments of the fields a subclass adds, read from the config (none here)."""
        return {}

    @staticmethod
    def resolve(task: "Task | None", data=None) -> "Task":
        """``task`` itself; for None (a caller of the public API that gave none), single-label classification.

        With ``data`` (the ``data`` config section), the classes are the bands
        of ``data.bins``/``data.bin_width`` when set.
        """
        if task is not None:
            return task
        if data is None:
            return Task()
        return Task(
            bins=tuple(data.bins) if data.bins else None, bin_width=data.bin_width,
            score_range=tuple(data.score_range) if data.score_range else None, score_step=data.score_step,
        )

    @classmethod
    def validate_config(cls, d, m) -> None:
        """The cross-field rules of this problem type over the ``data``/``model`` sections (ConfigError on the first broken one)."""
        from tfslm.errors import ConfigError

        if d.target_names is not None:
            raise ConfigError(
                f"data.target_names: only used with model.problem_type multi_target_regression, got {m.problem_type}; "
                "remove data.target_names, or set model.problem_type: multi_target_regression"
            )
        if d.derive_total:
            raise ConfigError(
                f"data.derive_total: only used with model.problem_type multi_target_regression, got {m.problem_type}; "
                "remove data.derive_total, or set model.problem_type: multi_target_regression"
            )
        if getattr(d, "score_decoding", None) is not None and not task_class(m.problem_type).is_regression:
            raise ConfigError(
                f"data.score_decoding: decodes predicted scores, but model.problem_type is {m.problem_type}; "
                "remove data.score_decoding, or set model.problem_type: regression"
            )

    # ------------------------------------------------------------ properties
    @property
    def has_bands(self) -> bool:
        return self.bins is not None or self.bin_width is not None

    @property
    def num_targets(self) -> int:
        """Number of score outputs (0 for classes)."""
        return 0

    @property
    def total_range(self) -> tuple[float, float] | None:
        if self.score_range is None:
            return None
        return self.score_range

    @property
    def plot_step(self) -> float | None:
        """Grid step of the report's predicted-vs-true score plot."""
        return None

    @property
    def panel_targets(self) -> tuple[str, ...]:
        """Targets that get one predicted-vs-true panel each in the report (several targets)."""
        return ()

    # ------------------------------------------------------------ scores
    def scale(self, values) -> np.ndarray:
        """Original scale -> [0, 1] by ``score_range``."""
        low, high = self.score_range
        return (np.asarray(values, dtype=np.float64) - low) / (high - low)

    def unscale(self, values, *, round_to_grid: bool = True) -> np.ndarray:
        """[0, 1] -> original scale, clipped to ``score_range`` and rounded to ``score_step`` when given."""
        out = self._unscale(NUMPY, NUMPY.asarray(values))
        return self.round(out) if round_to_grid else out

    def round(self, values, *, total: bool = False) -> np.ndarray:
        """Round to the score grid (``low + k * score_step``); unchanged without a step."""
        return self._snap(NUMPY, NUMPY.asarray(values), total=total)

    def _unscale(self, xp, values):
        low, high = self.score_range
        return xp.clip(low + values * (high - low), low, high)

    def _snap(self, xp, values, *, total: bool = False):
        """The grid rounding rule, for NumPy and the graph alike (:mod:`tfslm.tasks.ops`)."""
        if not self.score_step or self.score_range is None:
            return values
        low, high = self.total_range if total else self.score_range
        step = self.score_step
        return xp.clip(low + xp.floor((values - low) / step + 0.5) * step, low, high)

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

    # ------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        out = {
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
        for f in fields(self)[len(fields(Task)):]:  # fields a subclass adds
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Task":
        """The task of a ``task.json`` (keys a release did not write take their defaults)."""
        kind = task_class(data.get("problem_type") or CLASSIFICATION)
        values = {f.name: data[f.name] for f in fields(kind) if data.get(f.name) is not None}
        return kind(**values)

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``run_dir/task.json`` atomically."""
        atomic_write_json(Path(run_dir) / TASK_FILE, self.to_dict())

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "Task":
        """Read ``run_dir/task.json``; a run without one (older runs) is single-label classification."""
        path = Path(run_dir) / TASK_FILE
        if not path.is_file():
            return Task()
        try:
            return Task.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(
                f"{path}: not a valid task.json ({exc}); pass a run directory `tfslm train` wrote, "
                "or retrain it with `tfslm train CONFIG --overwrite`"
            ) from None

    # ------------------------------------------------------------ the model head
    def num_outputs(self, labels: LabelSpace) -> int:
        """Size of the model's head."""
        raise NotImplementedError

    def output_names(self, label_names: Sequence[str]) -> list[str]:
        """One name per head output (the label names, or the target names of a scorer)."""
        return [str(name) for name in label_names]

    def model_config_kwargs(self, labels: LabelSpace) -> dict[str, Any]:
        """``num_labels``, ``id2label``, ``label2id`` and ``problem_type`` of the transformers model config."""
        names = self.output_names(labels.names)
        return {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
            "problem_type": self.hf_problem_type,
        }

    def initial_output_bias(self, train_targets) -> np.ndarray | None:
        """The head's starting bias from the training targets (None: the backend's own initialisation)."""
        return None

    def keras_loss(self):
        """The loss ``compile_model`` compiles (computed in float32, also under mixed precision)."""
        raise NotImplementedError

    def keras_metrics(self) -> list | None:
        """Metrics Keras computes per batch during ``fit`` (the whole-set ones come from :meth:`evaluate`)."""
        return None

    def default_monitor(self, labels: LabelSpace) -> str:
        """The validation metric ``training.monitor: auto`` watches."""
        raise NotImplementedError

    # ------------------------------------------------------------ label cells and targets
    def label_cell(self, value: Any):
        """Map a raw label cell to what the label column holds before encoding (None: missing)."""
        return canonical_label(value)

    def parse_labels(self, cells: Sequence[Any], rows: Sequence[int], *, where: str, column: str, data=None) -> Any:
        """The label cells of a split (from :meth:`label_cell`), checked; what the other data hooks take.

        Args:
            cells: the cleaned cells; rows: their 1-based row numbers.
            where: the file, for messages; column: the label column, for messages.
            data: the ``data`` config section while loading training data (None for ``tfslm evaluate``).
        """
        return list(cells)

    def ordered_labels(self, data) -> bool | None:
        """Whether the label order carries meaning: always for ordered tasks, else ``data.ordered`` (None: numeric labels are)."""
        return True if self.is_ordered else data.ordered

    def label_space(self, parsed_train: Any, data) -> LabelSpace:
        """The label space, from the training split's parsed labels and the ``data`` config section."""
        raise NotImplementedError

    def encode_targets(self, parsed: Any, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> np.ndarray:
        """The targets ``evaluate`` compares with (class ids, scaled scores, multi-hot rows)."""
        raise NotImplementedError

    def label_column(self, parsed: Any, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> list:
        """The ``label`` column of the ``datasets`` split."""
        return np.asarray(self.encode_targets(parsed, labels, where=where, rows=rows)).tolist()

    def label_feature(self, labels: LabelSpace):
        """The ``datasets`` feature of the ``label`` column."""
        raise NotImplementedError

    def strata(self, parsed_train: Any, labels: LabelSpace) -> np.ndarray:
        """One key per training row: the validation split keeps each key's share."""
        raise NotImplementedError

    def split_summary(self, dataset, labels: LabelSpace) -> dict[str, Any]:
        """Rows (and per label counts, or score statistics) of one encoded split, for ``metrics.json``."""
        raise NotImplementedError

    def tfrecord_label_feature(self, labels: LabelSpace) -> dict[str, Any]:
        """How ``tfslm prepare`` stores the label of a row (``prepared.json`` features)."""
        raise NotImplementedError

    # ------------------------------------------------------------ windows, evaluation, decoding
    def _pool(self, xp, logits, doc_index, num_docs: int):
        raise NotImplementedError

    def pool_windows(self, logits, doc_index, num_docs: int) -> np.ndarray:
        """Average the outputs of each document's windows (``data.long_text: chunk``)."""
        pooled = self._pool(NUMPY, NUMPY.asarray(logits), np.asarray(doc_index, dtype=np.int64), num_docs)
        return np.asarray(pooled).astype(np.float32)

    def pool_windows_graph(self, logits, doc_index, num_docs):
        """:meth:`pool_windows` as graph ops, for the SavedModel."""
        return self._pool(graph_ops(), logits, doc_index, num_docs)

    def evaluate(self, logits, y_true, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
        """Loss and the metric set of the task (``num_examples`` included)."""
        raise NotImplementedError

    def epoch_logs(self, metrics: dict) -> dict[str, float]:
        """The scalars of :meth:`evaluate` that go into the Keras epoch logs (``val_`` is prefixed)."""
        return {k: v for k, v in metrics.items() if k != "num_examples" and not isinstance(v, (dict, list, tuple))}

    def fit_decoding(self, logits, y_true, labels: LabelSpace, *, train_targets=None) -> "Task":
        """The task with its decoding tuned on validation outputs (e.g. thresholds); unchanged here.

        Args:
            logits, y_true: the validation outputs and their targets (as :meth:`evaluate` takes them).
            train_targets: the training split's encoded targets (as ``y_true``), for rules that
                match the training distribution (a score stretch); None where unknown.
        """
        return self

    def flat_output_warning(self, logits, train_targets=None) -> str | None:
        """Why the validation outputs look like one answer for every input (a collapsed run), or None.

        ``tfslm train`` logs it as a warning before fitting the decoding: a collapsed model's
        metrics (QWK 0, every row the same score) otherwise look like a bad but working model.
        None here: a task that cannot tell says nothing.
        """
        return None

    def decoding_summary(self) -> dict[str, Any]:
        """What :meth:`fit_decoding` fitted, for ``metrics.json`` and the report (empty: nothing to fit)."""
        return {}

    def decode(self, logits, labels: LabelSpace) -> dict[str, np.ndarray]:
        """Turn raw model outputs into predictions (NumPy)."""
        raise NotImplementedError

    def serving_outputs(self, logits, label_names: Sequence[str], labels: LabelSpace | None) -> dict:
        """The outputs of the SavedModel's prediction signatures, as graph ops on float32 ``logits``."""
        raise NotImplementedError

    def probabilities(self, logits) -> np.ndarray:
        """``Predictor.predict_proba``: class probabilities ``[texts, labels]`` (float32)."""
        raise TypeError(f"predict_proba: this run predicts scores ({self.problem_type}); use predict_scores")

    def predictions(self, decoded: dict, labels: LabelSpace) -> list:
        """``Predictor.predict``: one plain Python prediction per text."""
        raise NotImplementedError

    def prediction_columns(self, decoded: dict, labels: LabelSpace) -> dict[str, list]:
        """The columns ``tfslm predict`` adds to each row, in order."""
        raise NotImplementedError

    def prediction_table(self, logits, y_true, labels: LabelSpace) -> dict[str, list]:
        """``predictions/<split>.csv``: true and predicted label/score of each row, by column."""
        raise NotImplementedError

    # ------------------------------------------------------------ report (report.md)
    def report_description(self) -> str:
        """The "task" line of the report."""
        return self.problem_type

    def report_facts(self, labels: LabelSpace) -> list[tuple[str, str]]:
        """``(name, value)`` lines of the report after the model line (labels, targets)."""
        return [("labels", f"{labels.num_labels} ({labels.kind}{', ordered' if labels.ordered else ''})"
                 + (f"; bands of {self.bin_width:g}" if self.bin_width else "") + (f"; band edges {list(self.bins)}" if self.bins else ""))]

    def report_metrics_note(self, labels: LabelSpace) -> str:
        """The sentence under the report's metric table ("" for none)."""
        return ""

    def report_sections(self, metrics: dict, splits: Sequence[str]) -> list[str]:
        """Markdown lines of task-specific report sections after the metric table."""
        return []

    # ------------------------------------------------------------ model card (README.md)
    def card_context(self, labels: dict, metrics: dict, data: dict) -> dict[str, Any]:
        """What the model card says about this task, from ``labels.json``, ``metrics.json`` and the config's ``data``.

        Keys: ``noun`` ("text classifier"), ``sentence`` (what it predicts),
        ``section`` (the markdown of the labels/scores section), ``results_extra``
        (markdown after the results table), ``axes`` (of the confusion matrices),
        ``usage_imports``/``usage_decode`` (the transformers snippet; ``usage_decode``
        is a Jinja fragment rendered with ``model_ref``, ``example_text`` and ``usage_context``),
        ``printed_outputs`` (SavedModel outputs the snippet prints),
        ``example_text``, ``eval_metrics`` (``(metrics.json key, model-index
        type, display name, args)`` of the Hub results) and ``result_rows``
        (``(key, display name)`` of the results table).
        """
        raise NotImplementedError


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
                raise DataError(
                    "data.bin_width: no numeric scores in the training labels to put in bands; check that data.label_column "
                    "holds numeric scores, or set data.score_range for the bands"
                )
            lo, hi = min(seen), max(seen)
        names = [str(k) for k in range(lo, hi + 1)]
        bounds = [((k - 0.5) * w, (k + 0.5) * w) for k in range(lo, hi + 1)]
        scores = [k * w for k in range(lo, hi + 1)]
    if len(names) < 2:
        raise DataError(f"data.bins: the bands {names} are fewer than 2 classes; use narrower bands")
    kind = "numeric" if task.bins is None else "categorical"
    return LabelSpace(tuple(names), kind=kind, ordered=ordered, bins=tuple(bounds), scores=tuple(float(s) for s in scores))
