"""Multi-label classification (``model.problem_type: multi_label_classification``): any number of labels per text.

A label cell holds several labels: a list (a JSON/YAML/Parquet list, or a
string such as ``["sports", "food"]``) or a string joined by
``data.label_separator`` (default ``","``: ``sports,food``). An empty cell
means no labels, which is allowed. The labels are those of ``data.labels``
when given (in that order; any other label is an error naming file, row and
label), else every label seen in the training file (natural order).

The head has one logit per label, trained with binary cross-entropy on the
multi-hot targets (sigmoid outputs, logits cast to float32). A label is
predicted when its probability reaches its threshold; the thresholds start at
0.5 and are tuned per label on the validation set after training
(:meth:`MultiLabelTask.fit_decoding`: the best F1 over a grid of thresholds,
0.5 for a label without validation positives) and stored in ``task.json``.
Evaluation reports micro-, macro- and samples-F1, subset accuracy and
per-label precision/recall/F1 (``per_label`` in ``metrics.json``; flat
``<label>_precision``/``_recall``/``_f1`` in the epoch logs); ``auto`` monitors
``val_micro_f1``.

Example:
    >>> task = MultiLabelTask(label_separator="|")
    >>> task.parse_labels([task.label_cell("food|sports"), task.label_cell(""), task.label_cell('["food"]')], [1, 2, 3],
    ...                   where="x.csv", column="label")
    [['food', 'sports'], [], ['food']]
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from tfslm.data.labels import LabelSpace, canonical_label, natural_key
from tfslm.errors import DataError
from tfslm.tasks.base import Task, register, render, rows_text
from tfslm.tasks.metrics import precision_recall_f1, sigmoid
from tfslm.tasks.ops import NUMPY, graph_ops

__all__ = ["MultiLabelTask", "MULTI_LABEL", "THRESHOLD_GRID"]

MULTI_LABEL = "multi_label_classification"
DEFAULT_THRESHOLD = 0.5
#: Thresholds tried per label by :meth:`MultiLabelTask.fit_decoding`.
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
_AVERAGES = ("micro", "macro", "samples")

_LABELS_SECTION = """## Labels

Each label is predicted when its sigmoid probability reaches its threshold (tuned on the validation set); a text may get several labels or none.

| id | name | threshold | train | validation | test | validation F1 |
|---:|------|----------:|------:|-----------:|-----:|--------------:|
{% for row in label_rows -%}
| {{ row.id }} | {{ row.name }} | {{ row.threshold }} | {{ row.train }} | {{ row.validation }} | {{ row.test }} | {{ row.f1 }} |
{% endfor %}
"""

_USAGE_DECODE = """probabilities = 1 / (1 + np.exp(-model(**inputs).logits.numpy()))  # [texts, {{ num_labels }}]: one sigmoid per label
thresholds = np.array({{ thresholds }})  # tuned on the validation set
names = [model.config.id2label[i] for i in range(model.config.num_labels)]
print([[name for name, keep in zip(names, row) if keep] for row in probabilities >= thresholds])
```"""


def _float32_binary_crossentropy():
    """Binary cross-entropy on logits that casts them to float32 first (bf16 logits make a coarse loss)."""
    import tensorflow as tf

    from tfslm.backends import keras_module

    class Float32BinaryCrossentropy(keras_module().losses.BinaryCrossentropy):
        def call(self, y_true, y_pred):
            return super().call(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32))

    return Float32BinaryCrossentropy(from_logits=True)


def _cell_items(value: Any, separator: str) -> list:
    """The raw items of a label cell: a list as it is, a list written as text, or a joined string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, float) and value != value:  # NaN: an empty cell
        return []
    text = str(value).strip()
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        for parse in (json.loads, ast.literal_eval):
            try:
                items = parse(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(items, (list, tuple)):
                return list(items)
        return [item.strip().strip("'\"") for item in text[1:-1].split(",")]  # [a, b] without quotes
    return text.split(separator)


@register
@dataclass(frozen=True)
class MultiLabelTask(Task):
    """Several labels per text, sigmoid outputs, per-label thresholds (see the module docstring).

    Args:
        label_separator: joins several labels in one text cell (``data.label_separator``).
        thresholds: one probability threshold per label (``labels.json`` order); empty: 0.5 each.
    """

    problem_type: str = MULTI_LABEL
    label_separator: str = ","
    thresholds: tuple[float, ...] = ()

    PROBLEM_TYPE: ClassVar[str] = MULTI_LABEL
    hf_problem_type: ClassVar[str] = MULTI_LABEL
    report_metric_keys: ClassVar[tuple[str, ...]] = ("loss", "micro_f1", "macro_f1", "samples_f1", "subset_accuracy")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        if not isinstance(self.label_separator, str) or not self.label_separator:
            raise ValueError(f"MultiLabelTask: label_separator must be a non-empty string, got {self.label_separator!r}")
        if any(not 0.0 < t < 1.0 for t in self.thresholds):
            raise ValueError(f"MultiLabelTask: thresholds must lie strictly between 0 and 1, got {list(self.thresholds)}")

    @classmethod
    def config_options(cls, cfg) -> dict[str, Any]:
        return {"label_separator": cfg.data.label_separator}

    @classmethod
    def validate_config(cls, d, m) -> None:
        from tfslm.errors import ConfigError

        super().validate_config(d, m)
        if d.bins is not None or d.bin_width is not None:
            raise ConfigError("data.bins/data.bin_width: bands are single classes; use them with single_label_classification or ordinal")

    # ------------------------------------------------------------ head, loss, monitor
    def num_outputs(self, labels: LabelSpace) -> int:
        return labels.num_labels

    def keras_loss(self):
        return _float32_binary_crossentropy()

    def default_monitor(self, labels: LabelSpace) -> str:
        return "val_micro_f1"

    # ------------------------------------------------------------ label cells and targets
    def label_cell(self, value: Any) -> str:
        """The cell's labels as a JSON list of canonical names (``"[]"`` for an empty cell: no labels)."""
        names = []
        for item in _cell_items(value, self.label_separator):
            name = canonical_label(item)
            if name is not None and name not in names:
                names.append(name)
        return json.dumps(names, ensure_ascii=False)

    def parse_labels(self, cells, rows, *, where, column, data=None) -> list[list[str]]:
        return [json.loads(cell) for cell in cells]

    def label_space(self, parsed_train, data) -> LabelSpace:
        if data.labels is not None:
            names = [canonical_label(v) for v in data.labels]
            if any(n is None for n in names):
                raise DataError(f"data.labels: empty label name in {list(data.labels)}; remove the empty entry or name the label")
        else:
            names = sorted({name for row in parsed_train for name in row}, key=natural_key)
        clash = [n for n in names if n in _AVERAGES]
        if clash:
            raise DataError(f"label {clash[0]!r}: its per-label metric {clash[0]}_f1 would clash with the {clash[0]}-averaged F1; rename the label")
        return LabelSpace(tuple(names), kind="categorical", ordered=False)

    def encode_targets(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> np.ndarray:
        """Multi-hot rows ``[texts, labels]``; an unknown label is a DataError naming file, row and label."""
        lookup = labels.label2id
        out = np.zeros((len(parsed), labels.num_labels), dtype=np.float64)
        unknown = []
        for i, names in enumerate(parsed):
            for name in names:
                if name in lookup:
                    out[i, lookup[name]] = 1.0
                else:
                    unknown.append((rows[i], name))
        if unknown:
            row, name = unknown[0]
            more = f" ({len(unknown)} unknown labels in rows {rows_text(sorted({r for r, _ in unknown}))})" if len(unknown) > 1 else ""
            raise DataError(
                f"{where}: row {row}: unknown label {name!r}{more}; known labels are {list(labels.names)} "
                "(add it to data.labels or fix the row)"
            )
        return out

    def label_column(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> list:
        return self.encode_targets(parsed, labels, where=where, rows=rows).astype(np.float32).tolist()

    def label_feature(self, labels: LabelSpace):
        import datasets

        return datasets.Sequence(datasets.Value("float32"), length=labels.num_labels)

    def strata(self, parsed_train, labels: LabelSpace) -> np.ndarray:
        """Each row's rarest label (its number of labels when it has none), so rare labels reach validation."""
        counts: dict[str, int] = {}
        for names in parsed_train:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        lookup = labels.label2id
        return np.asarray([
            lookup[min(names, key=lambda n: (counts[n], lookup[n]))] if names else labels.num_labels for names in parsed_train
        ], dtype=np.int64)

    def split_summary(self, dataset, labels: LabelSpace) -> dict[str, Any]:
        targets = np.asarray(dataset["label"], dtype=np.float64).reshape(dataset.num_rows, labels.num_labels)
        counts = targets.sum(axis=0).astype(np.int64)
        return {"rows": dataset.num_rows, "per_label": dict(zip(labels.names, counts.tolist())),
                "without_labels": int((targets.sum(axis=1) == 0).sum())}

    def tfrecord_label_feature(self, labels: LabelSpace) -> dict[str, Any]:
        return {"dtype": "float32", "shape": [labels.num_labels], "stored_as": "float_list",
                "meaning": "multi-hot: 1.0 for each label of the row (labels.names order)"}

    # ------------------------------------------------------------ thresholds
    def thresholds_for(self, labels: LabelSpace) -> tuple[float, ...]:
        """One threshold per label (0.5 each before tuning)."""
        if not self.thresholds:
            return (DEFAULT_THRESHOLD,) * labels.num_labels
        if len(self.thresholds) != labels.num_labels:
            raise ValueError(f"MultiLabelTask: {len(self.thresholds)} thresholds for {labels.num_labels} labels; tune them again (fit_decoding)")
        return self.thresholds

    @staticmethod
    def _logit_thresholds(thresholds: Sequence[float]) -> list[float]:
        """The thresholds on the logit scale, as float32 values: NumPy and the graph compare float32 logits with them."""
        return np.float32(NUMPY.logit(thresholds)).astype(np.float64).tolist()

    def _decide(self, xp, logits, labels: LabelSpace):
        """The decision rule, for NumPy and the graph: ``sigmoid(logit) >= threshold``, compared on the logit scale."""
        return xp.at_least(logits, xp.constant(self._logit_thresholds(self.thresholds_for(labels))))

    def fit_decoding(self, logits, y_true, labels: LabelSpace, *, train_targets=None) -> "MultiLabelTask":
        """The task with each label's threshold tuned on validation outputs.

        Each label gets the threshold of :data:`THRESHOLD_GRID` with the best F1
        on ``(logits, y_true)`` (ties: the one nearest 0.5); a label with no
        positives keeps 0.5.
        """
        logits = np.asarray(logits, dtype=np.float32).reshape(len(logits), labels.num_labels).astype(np.float64)
        y = np.asarray(y_true, dtype=np.float64).reshape(len(logits), labels.num_labels) > 0.5
        cuts = np.asarray(self._logit_thresholds(THRESHOLD_GRID))
        chosen = []
        for j in range(labels.num_labels):
            actual = int(y[:, j].sum())
            if not actual:
                chosen.append(DEFAULT_THRESHOLD)
                continue
            predicted = logits[:, j][:, None] >= cuts[None, :]
            tp = (predicted & y[:, j][:, None]).sum(axis=0)
            f1 = precision_recall_f1(tp, predicted.sum(axis=0), actual)[2]
            best = max(range(len(THRESHOLD_GRID)), key=lambda k: (f1[k], -abs(THRESHOLD_GRID[k] - DEFAULT_THRESHOLD), -THRESHOLD_GRID[k]))
            chosen.append(THRESHOLD_GRID[best])
        return dataclasses.replace(self, thresholds=tuple(chosen))

    def decoding_summary(self) -> dict[str, Any]:
        return {"thresholds": list(self.thresholds)}

    # ------------------------------------------------------------ windows, evaluation
    def _pool(self, xp, logits, doc_index, num_docs: int):
        """The mean of the window probabilities per label, as logits (a sigmoid gives the mean back)."""
        mean = xp.segment_mean(xp.sigmoid(logits), doc_index, num_docs)
        return xp.logit(xp.clip(mean, 1e-7, 1.0 - 1e-7))

    def evaluate(self, logits, y_true, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
        """Binary cross-entropy, micro/macro/samples F1, subset accuracy and ``per_label`` P/R/F1/support/threshold.

        Macro-F1 averages the labels present in truth or prediction (as for
        single-label runs); a text with no true and no predicted label has a
        samples-F1 of 1.
        """
        n, k = len(logits), labels.num_labels
        x = np.asarray(logits, dtype=np.float64).reshape(n, k)
        y = np.asarray(y_true, dtype=np.float64).reshape(n, k)
        loss = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
        pred = np.asarray(self._decide(NUMPY, x, labels))
        truth = y > 0.5
        tp, predicted, actual = (pred & truth).sum(axis=0), pred.sum(axis=0), truth.sum(axis=0)
        precision, recall, f1 = precision_recall_f1(tp, predicted, actual)
        present = (predicted + actual) > 0
        row_f1 = np.where((pred.sum(axis=1) + truth.sum(axis=1)) > 0,
                          precision_recall_f1((pred & truth).sum(axis=1), pred.sum(axis=1), truth.sum(axis=1))[2], 1.0)
        thresholds = self.thresholds_for(labels)
        return {
            "loss": float(loss.mean()) if n else 0.0,
            "micro_f1": float(precision_recall_f1(tp.sum(), predicted.sum(), actual.sum())[2]),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "samples_f1": float(row_f1.mean()) if n else 0.0,
            "subset_accuracy": float((pred == truth).all(axis=1).mean()) if n else 0.0,
            "num_examples": int(n),
            "per_label": {
                name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                       "support": int(actual[j]), "threshold": float(thresholds[j])}
                for j, name in enumerate(labels.names)
            },
        }

    def epoch_logs(self, metrics: dict) -> dict[str, float]:
        """The averages and loss, plus ``<label>_precision``, ``<label>_recall`` and ``<label>_f1`` per label."""
        out = super().epoch_logs(metrics)
        for name, values in metrics.get("per_label", {}).items():
            for key in ("precision", "recall", "f1"):
                out[f"{name}_{key}"] = values[key]
        return out

    # ------------------------------------------------------------ decoding
    def decode(self, logits, labels: LabelSpace) -> dict[str, np.ndarray]:
        """``probabilities`` (sigmoid, ``[texts, labels]``) and ``predicted`` (0/1 per label, thresholds applied)."""
        x = NUMPY.asarray(logits).reshape(len(logits), labels.num_labels)
        return {"probabilities": NUMPY.sigmoid(x), "predicted": np.asarray(self._decide(NUMPY, x, labels)).astype(np.int64)}

    def _joined(self, decoded: dict, labels: LabelSpace) -> list[str]:
        return [self.label_separator.join(names) for names in self.predictions(decoded, labels)]

    def serving_outputs(self, logits, label_names, labels) -> dict:
        """``logits``, ``probabilities``, ``predicted`` (0/1 per label) and ``labels`` (the predicted names joined
        by ``label_separator``; "" for none)."""
        xp = graph_ops()
        tf = xp.tf
        mask = self._decide(xp, logits, labels)
        names = tf.broadcast_to(tf.constant(list(label_names))[None, :], tf.shape(mask))
        return {
            "logits": logits,
            "probabilities": xp.sigmoid(logits),
            "predicted": tf.cast(mask, tf.int64),
            "labels": tf.strings.reduce_join(tf.ragged.boolean_mask(names, mask), axis=-1, separator=self.label_separator),
        }

    def probabilities(self, logits) -> np.ndarray:
        return sigmoid(logits).astype(np.float32)

    def predictions(self, decoded: dict, labels: LabelSpace) -> list[list[str]]:
        """The predicted label names of each text (a list, possibly empty)."""
        return [[labels.names[j] for j in np.flatnonzero(row)] for row in decoded["predicted"]]

    def prediction_columns(self, decoded: dict, labels: LabelSpace) -> dict[str, list]:
        """``predicted_labels`` (joined by ``label_separator``) and ``prob_<label>`` per label."""
        out: dict[str, list] = {"predicted_labels": self._joined(decoded, labels)}
        for j, name in enumerate(labels.names):
            out[f"prob_{name}"] = np.round(decoded["probabilities"][:, j], 6)
        return out

    def prediction_table(self, logits, y_true, labels: LabelSpace) -> dict[str, list]:
        truth = np.asarray(y_true, dtype=np.float64).reshape(len(logits), labels.num_labels) > 0.5
        return {"true_labels": self._joined({"predicted": truth}, labels),
                "predicted_labels": self._joined(self.decode(logits, labels), labels)}

    # ------------------------------------------------------------ report
    def report_facts(self, labels: LabelSpace) -> list[tuple[str, str]]:
        return [("labels", f"{labels.num_labels} (any number per text; cells joined by {self.label_separator!r})")]

    def report_metrics_note(self, labels: LabelSpace) -> str:
        return ("Micro-F1 pools every (text, label) decision, macro-F1 averages the labels' F1, samples-F1 the texts'; "
                "subset accuracy counts texts whose labels are all right. Predictions use the per-label thresholds below.")

    def report_sections(self, metrics: dict, splits: Sequence[str]) -> list[str]:
        """Per label: threshold, precision, recall, F1 and support (the first evaluated split)."""
        from tfslm.publish.markdown import fmt

        per_label = metrics[splits[0]].get("per_label") if splits else None
        if not per_label:
            return []
        lines = [f"### Per label ({splits[0]})", "", "| label | threshold | precision | recall | F1 | support |", "|---|---|---|---|---|---|"]
        for name, v in per_label.items():
            lines.append(f"| {name} | {v['threshold']:g} | {fmt(v['precision'])} | {fmt(v['recall'])} | {fmt(v['f1'])} | {v['support']} |")
        return lines + [""]

    # ------------------------------------------------------------ card
    def card_context(self, labels: dict, metrics: dict, data: dict) -> dict[str, Any]:
        from tfslm.publish.markdown import cell, number, section

        names = [str(n) for n in labels.get("names") or metrics.get("labels") or []]
        thresholds = list(self.thresholds) or [DEFAULT_THRESHOLD] * len(names)
        validation = section(section(metrics, "validation"), "per_label")
        rows = []
        for j, name in enumerate(names):
            row = {"id": j, "name": cell(name), "threshold": f"{thresholds[j]:g}" if j < len(thresholds) else "–",
                   "f1": number(section(validation, name).get("f1"))}
            for split in ("train", "validation", "test"):
                per_label = section(section(metrics, "data"), split).get("per_label")
                row[split] = number(per_label.get(name, 0)) if isinstance(per_label, dict) else "–"
            rows.append(row)
        shown = ", ".join(f"`{n}`" for n in names)
        return {
            "noun": "multi-label text classifier",
            "sentence": (f"It reads the `{data.get('text_column') or 'text'}` column and predicts any number of its {len(names)} "
                         f"labels for each text: {shown}; each label has its own probability threshold, tuned on the validation set."),
            "section": render(_LABELS_SECTION, label_rows=rows),
            "results_extra": "",
            "axes": "",
            "usage_imports": "import numpy as np\nfrom transformers import AutoTokenizer, TFAutoModelForSequenceClassification",
            "usage_decode": _USAGE_DECODE,
            "usage_context": {"num_labels": len(names), "thresholds": json.dumps(thresholds)},
            "printed_outputs": 'out["labels"], out["probabilities"]',
            "example_text": "An example text to classify.",
            "eval_metrics": (
                ("micro_f1", "f1", "Micro F1", {"average": "micro"}),
                ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
                ("samples_f1", "f1", "Samples F1", {"average": "samples"}),
            ),
            "result_rows": (("loss", "Loss"), ("micro_f1", "Micro F1"), ("macro_f1", "Macro F1"), ("samples_f1", "Samples F1"),
                            ("subset_accuracy", "Subset accuracy"), ("num_examples", "Examples")),
        }
