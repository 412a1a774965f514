"""Single-label classification (``model.problem_type: single_label_classification``): one class per text.

The head has one logit per class, trained with sparse categorical
cross-entropy; a prediction is the most probable class. Numeric labels (or
the bands of ``data.bins``/``data.bin_width``) also give a score: the value of
the predicted label. Evaluation reports accuracy, macro-F1, per-label
precision/recall/F1 (``per_label`` in ``metrics.json``), and QWK/MAE where the
labels are ordered or numeric.

Example:
    >>> task = ClassificationTask()
    >>> task.decode(np.array([[0.1, 2.0]]), LabelSpace(("neg", "pos")))["label_id"].tolist()
    [1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from tfslm.data.labels import LabelSpace, canonical_label
from tfslm.errors import DataError
from tfslm.tasks.base import CLASSIFICATION, Task, band_label_space, parse_number_list, register, render, rows_text, _number_name
from tfslm.tasks.metrics import classification_metrics, confusion_matrix, per_label_metrics, softmax
from tfslm.tasks.ops import NUMPY, graph_ops

__all__ = ["ClassificationTask"]

# (metrics.json key, model-index metric type, display name, metric args)
CARD_EVAL_METRICS = (
    ("accuracy", "accuracy", "Accuracy", None),
    ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
    ("qwk", "cohen_kappa", "QWK (quadratic weighted kappa)", {"weights": "quadratic"}),
    ("mae", "mae", "MAE", None),
)
CARD_RESULT_ROWS = (
    ("loss", "Loss"),
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("qwk", "QWK"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("exact", "Exact agreement"),
    ("adjacent", "Adjacent agreement (±1 step)"),
    ("num_examples", "Examples"),
)

_LABELS_SECTION = """## Labels

| id | name | train | validation | test |
|---:|------|------:|-----------:|-----:|
{% for row in label_rows -%}
| {{ row.id }} | {{ row.name }} | {{ row.train }} | {{ row.validation }} | {{ row.test }} |
{% endfor %}
"""

_USAGE_DECODE = """label_id = int(model(**inputs).logits.numpy().argmax(-1)[0])
print(model.config.id2label[label_id])

# dtype=None: transformers 4.57 otherwise asks for PyTorch to pick a dtype
classifier = pipeline("text-classification", model="{{ model_ref }}", framework="tf", dtype=None)
print(classifier([{{ example_text }}]))
```"""


@register
@dataclass(frozen=True)
class ClassificationTask(Task):
    """One class per text; numeric or banded labels also decode to a score (see the module docstring)."""

    problem_type: str = CLASSIFICATION

    PROBLEM_TYPE: ClassVar[str] = CLASSIFICATION
    #: The SavedModel returns ``score`` too.
    serves_score: ClassVar[bool] = False

    @classmethod
    def validate_config(cls, d, m) -> None:
        from tfslm.errors import ConfigError

        super().validate_config(d, m)
        if (d.bins is not None or d.bin_width is not None) and d.labels is not None:
            raise ConfigError(
                "data.labels: not used with data.bins/bin_width (the bands are the labels); remove data.labels, "
                "or remove data.bins/bin_width to train on the labels"
            )

    # ------------------------------------------------------------ head, loss, monitor
    def num_outputs(self, labels: LabelSpace) -> int:
        return labels.num_labels

    def model_config_kwargs(self, labels: LabelSpace) -> dict[str, Any]:
        return {
            "num_labels": labels.num_labels,
            "id2label": labels.id2label,
            "label2id": labels.label2id,
            "problem_type": self.hf_problem_type,
        }

    def keras_loss(self):
        from tfslm.training.performance import Float32SparseCategoricalCrossentropy

        return Float32SparseCategoricalCrossentropy(from_logits=True)

    def keras_metrics(self) -> list:
        from tfslm.backends import keras_module

        return [keras_module().metrics.SparseCategoricalAccuracy(name="accuracy")]

    def default_monitor(self, labels: LabelSpace) -> str:
        return "val_qwk" if labels.ordered else "val_macro_f1"

    # ------------------------------------------------------------ label cells
    def label_cell(self, value: Any):
        """The canonical label name (the band name when banded); None when missing."""
        if self.has_bands:
            numbers = parse_number_list(value)
            if numbers is None or len(numbers) != 1:
                return canonical_label(value) if canonical_label(value) is None else f"<not a number: {value}>"
            name = self.band_name(numbers[0])
            return name if name is not None else f"<outside the bands: {_number_name(numbers[0])}>"
        return canonical_label(value)

    def parse_labels(self, cells, rows, *, where, column, data=None) -> list:
        if data is not None and data.label_type == "numeric" and not self.has_bands:
            _check_numeric(cells, rows, where, column)
        return list(cells)

    def label_space(self, parsed_train, data) -> LabelSpace:
        if self.has_bands:
            return band_label_space(self, parsed_train, ordered=True)
        return LabelSpace.infer(parsed_train, declared=data.labels, label_type=data.label_type, ordered=self.ordered_labels(data))

    def encode_targets(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(labels.encode(parsed, where=where, rows=rows))

    def label_column(self, parsed, labels: LabelSpace, *, where: str, rows: Sequence[int]) -> list:
        return labels.encode(parsed, where=where, rows=rows)

    def label_feature(self, labels: LabelSpace):
        return labels.class_label()

    def strata(self, parsed_train, labels: LabelSpace) -> np.ndarray:
        return np.asarray(labels.encode(parsed_train))

    def split_summary(self, dataset, labels: LabelSpace) -> dict[str, Any]:
        counts = np.bincount(np.asarray(dataset["label"], dtype=np.int64), minlength=labels.num_labels)
        return {"rows": dataset.num_rows, "per_label": dict(zip(labels.names, counts.tolist()))}

    def tfrecord_label_feature(self, labels: LabelSpace) -> dict[str, Any]:
        return {"dtype": "int64", "shape": [], "stored_as": "int64_list", "meaning": "class id (labels.names order)"}

    # ------------------------------------------------------------ windows, evaluation
    def _pool(self, xp, logits, doc_index, num_docs: int):
        """The mean of the window probabilities, as log-probabilities (a softmax gives the mean back)."""
        mean = xp.segment_mean(xp.softmax(logits), doc_index, num_docs)
        return xp.log(xp.clip(mean, 1e-12, 1.0))

    def _predicted_ids(self, logits, probs, labels: LabelSpace) -> np.ndarray:
        return probs.argmax(axis=-1)

    def evaluate(self, logits, y_true, labels: LabelSpace, *, with_confusion: bool = False) -> dict:
        """Cross-entropy, accuracy, macro-F1 (plus QWK, adjacent agreement, MAE and RMSE for ordered/numeric
        labels) and ``per_label`` precision/recall/F1/support."""
        probs = softmax(logits)
        y_true = np.asarray(y_true, dtype=np.int64)
        y_pred = self._predicted_ids(logits, probs, labels) if len(y_true) else probs.argmax(axis=-1)
        picked = probs[np.arange(len(y_true)), y_true]
        out = {"loss": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))) if len(y_true) else 0.0}
        out.update(classification_metrics(y_true, y_pred, labels.num_labels, ordered=labels.ordered, values=labels.values))
        out["num_examples"] = int(len(y_true))
        if with_confusion:
            out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels.num_labels).tolist()
        out["per_label"] = per_label_metrics(y_true, y_pred, labels.names)
        return out

    # ------------------------------------------------------------ decoding
    def _label_values(self, xp, labels: LabelSpace | None):
        values = labels.values if labels is not None and labels.values is not None else range(labels.num_labels)
        return xp.constant(list(values))

    def _decode(self, xp, logits, labels: LabelSpace | None, *, with_score: bool) -> dict:
        """The decoding rule, for NumPy and the graph: the most probable label and its value."""
        probs = xp.softmax(logits)
        label_id = xp.most_probable(logits, probs)
        out = {"probabilities": probs, "label_id": label_id}
        if with_score:
            out["score"] = xp.take(self._label_values(xp, labels), label_id)
        return out

    def decode(self, logits, labels: LabelSpace) -> dict[str, np.ndarray]:
        """``probabilities`` and ``label_id``; ``score`` (the label's value) for numeric or banded labels.

        Example:
            >>> ClassificationTask().decode(np.array([[0.0, 1.0]]), LabelSpace(("1", "2"), kind="numeric"))["score"]
            array([2.])
        """
        logits = NUMPY.asarray(logits)
        if not logits.size:
            out = {"probabilities": logits, "label_id": np.zeros((0,), dtype=np.int64)}
            if self._with_score(labels):
                out["score"] = np.zeros((0,))
            return out
        return self._decode(NUMPY, logits, labels, with_score=self._with_score(labels))

    def _with_score(self, labels: LabelSpace) -> bool:
        """NumPy decoding adds the label's value where labels have values (the SavedModel does not)."""
        return labels.values is not None

    def serving_outputs(self, logits, label_names, labels) -> dict:
        """``logits``, ``probabilities``, ``label_id`` and ``label`` (the name)."""
        tf = graph_ops().tf
        out = self._decode(graph_ops(), logits, labels, with_score=self.serves_score)
        out["logits"] = logits
        out["label"] = tf.gather(tf.constant(list(label_names)), out["label_id"])
        return out

    def probabilities(self, logits) -> np.ndarray:
        return softmax(logits).astype(np.float32)

    def predictions(self, decoded: dict, labels: LabelSpace) -> list:
        return labels.decode(decoded["label_id"])

    def prediction_columns(self, decoded: dict, labels: LabelSpace) -> dict[str, list]:
        """``predicted_label`` and ``prob_<label>`` per label."""
        out = {"predicted_label": labels.decode(decoded["label_id"])}
        out.update(self._score_columns(decoded))
        probs = decoded["probabilities"]
        for j, name in enumerate(labels.names):
            out[f"prob_{name}"] = np.round(probs[:, j].astype(np.float64), 6)
        return out

    def _score_columns(self, decoded: dict) -> dict[str, list]:
        return {}

    def prediction_table(self, logits, y_true, labels: LabelSpace) -> dict[str, list]:
        decoded = self.decode(logits, labels)
        y_true = np.asarray(y_true, dtype=np.int64)
        columns = {"true_label": labels.decode(y_true), "predicted_label": labels.decode(decoded["label_id"])}
        if labels.values is not None:
            values = np.asarray(labels.values, dtype=np.float64)
            columns["true_score"] = values[y_true].tolist()
            columns["predicted_score"] = np.asarray(decoded.get("score", values[decoded["label_id"]]), dtype=np.float64).tolist()
        return columns

    # ------------------------------------------------------------ report
    def report_metrics_note(self, labels: LabelSpace) -> str:
        return "QWK and adjacent agreement use the label order; MAE/RMSE the label values." if labels.ordered else ""

    # ------------------------------------------------------------ card
    def card_context(self, labels: dict, metrics: dict, data: dict) -> dict[str, Any]:
        names = [str(n) for n in labels.get("names") or metrics.get("labels") or []]
        return {
            "noun": "text classifier",
            "sentence": self._card_sentence(labels, names, data.get("text_column") or "text"),
            "section": render(_LABELS_SECTION, label_rows=_label_rows(labels, metrics, names)),
            "results_extra": "",
            "axes": "rows: true label, columns: predicted",
            "usage_imports": "from transformers import AutoTokenizer, TFAutoModelForSequenceClassification, pipeline",
            "usage_decode": _USAGE_DECODE,
            "usage_context": {},
            "printed_outputs": self._printed_outputs(),
            "example_text": "An example text to classify.",
            "eval_metrics": CARD_EVAL_METRICS,
            "result_rows": CARD_RESULT_ROWS,
        }

    def _printed_outputs(self) -> str:
        return 'out["label"], out["probabilities"]'

    def _card_sentence(self, labels: dict, names: list[str], text_column: str) -> str:
        kind = labels.get("kind") or "categorical"
        ordered = bool(labels.get("ordered"))
        if kind == "numeric":
            return (
                f"It reads the `{text_column}` column and predicts a score on a numeric, "
                f"{'ordered ' if ordered else ''}scale of {len(names)} levels ({' < '.join(f'`{n}`' for n in names)}); "
                "besides accuracy and macro F1 it is judged by quadratic weighted kappa (QWK) and mean absolute error (MAE)."
            )
        shown = ", ".join(f"`{n}`" for n in names)
        return (
            f"It reads the `{text_column}` column and predicts one of {len(names)} "
            f"{'ordered ' if ordered else ''}categorical labels: {shown}."
        )


def _check_numeric(cells, rows, where: str, label_column: str) -> None:
    bad = []
    for row, name in zip(rows, cells):
        try:
            float(name)
        except (TypeError, ValueError):
            bad.append((row, name))
    if bad:
        shown = rows_text([r for r, _ in bad])
        raise DataError(
            f"{where}: non-numeric score {bad[0][1]!r} in column {label_column!r} (rows {shown}); "
            "data.label_type is numeric: fix those cells or set data.label_type: categorical"
        )


def _label_rows(labels: dict, metrics: dict, names: list[str]) -> list[dict]:
    """One row per label of the card's Labels table: id, name and its rows per split."""
    from tfslm.publish.markdown import cell, number, section

    id2label = labels.get("id2label") if isinstance(labels.get("id2label"), dict) else {}
    if id2label:
        pairs = sorted(((int(k), str(v)) for k, v in id2label.items()), key=lambda kv: kv[0])
    else:
        pairs = list(enumerate(names))
    data = section(metrics, "data")
    rows = []
    for label_id, name in pairs:
        row = {"id": label_id, "name": cell(name)}
        for split in ("train", "validation", "test"):
            split_info = section(data, split)
            per_label = split_info.get("per_label") if isinstance(split_info.get("per_label"), dict) else None
            row[split] = number(per_label.get(name, 0)) if per_label is not None else "–"
        rows.append(row)
    return rows
