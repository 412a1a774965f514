"""Use a finished run: predict labels for texts or whole files, and evaluate on labelled files.

Files are read as memory-mapped Arrow and scored in chunks, so an input larger
than memory is fine; the output is written to a temporary sibling and renamed
into place when complete.

Example:
    >>> predictor = Predictor.from_run("runs/quickstart")                     # doctest: +SKIP
    >>> predictor.predict(["Great value, works perfectly."])                   # doctest: +SKIP
    ['positive']
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfslm.atomic import atomic_file, atomic_write_json
from tfslm.config import Config, config_from_dict
from tfslm.data.cleaning import clean_text
from tfslm.data.readers import iter_table_batches, read_table
from tfslm.errors import DataError, RunDirError, one_line
from tfslm.destinations import check_output_file
from tfslm.run_dir import EVALUATIONS_DIR, RunDir, read_yaml
from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import Task

__all__ = ["Predictor", "load_run_config", "predict_file", "evaluate_file", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = (".csv", ".tsv", ".jsonl", ".parquet")
CHUNK_ROWS = 2048


def load_run_config(run_dir: str | Path) -> Config:
    """The resolved config a run was trained with (``run_dir/config.yaml``)."""
    run = RunDir(run_dir).require(finished=False)
    values = read_yaml(run.config)
    try:
        return config_from_dict(values, check=False)
    except Exception as exc:
        raise RunDirError(f"{run.config}: unreadable ({one_line(exc, 200)}); restore it or train the run again") from None


@dataclass
class Predictor:
    """A trained model with its tokenizer, label space and max_length, ready to score texts."""

    model: Any
    tokenizer: Any
    labels: LabelSpace
    max_length: int
    batch_size: int = 32
    task: Any = None  # tfslm.tasks.base.Task; None: single-label classification (resolved on init)
    chunk_stride: int | None = None  # set: long texts are scored in overlapping windows, pooled
    # data.long_text document: the windows pooled as the mean logit (DocumentModel's rule), at most max_windows a text.
    document: bool = False
    max_windows: int | None = None

    @classmethod
    def from_run(cls, run_dir: str | Path, *, batch_size: int = 32) -> "Predictor":
        """Load ``run_dir/model``, ``labels.json`` and ``config.yaml`` of a finished run."""
        from tfslm.backends import get_backend, use_backend

        run = RunDir(run_dir).require(finished=False)
        cfg = load_run_config(run.root)
        use_backend(getattr(cfg.model, "backend", "auto"))  # the backend the run was trained with
        run.require(finished=True, command="it")
        labels = LabelSpace.load(run.labels)
        task = Task.load(run.root)
        model, tokenizer = get_backend().load_pretrained(run.model)
        long_text = getattr(cfg.data, "long_text", "truncate")
        stride = cfg.data.chunk_stride if long_text in ("chunk", "document") else None
        document = long_text == "document"
        return cls(model, tokenizer, labels, cfg.model.max_length, batch_size, task, stride, document,
                   cfg.data.max_windows if document else None)

    def __post_init__(self):
        from tfslm.backends import get_backend

        self.task = Task.resolve(self.task)
        # The one forward function, shared with evaluation (tfslm.training.evaluation.collect_predictions).
        self._forward = get_backend().forward_fn(self.model)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits ``[len(texts), num_labels]``; texts are batched in length order to limit padding."""
        texts = [clean_text(t) for t in texts]
        out = np.zeros((len(texts), self.task.num_outputs(self.labels)), dtype=np.float32)
        if not texts:
            return out
        lengths = [len(t) for t in texts]
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.chunk_stride is not None:
                out[idx] = self._window_logits([texts[i] for i in idx])
                continue
            enc = self.tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=self.max_length, padding=True, return_tensors="tf"
            )
            out[idx] = self._forward(dict(enc)).numpy()
        return out

    def _window_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Outputs of texts cut into overlapping windows, averaged per text (tfslm.inputs.chunking, .documents)."""
        from tfslm.inputs.chunking import chunk_encode
        from tfslm.inputs.documents import mean_logits, select_windows

        enc, doc_index = chunk_encode(texts, self.tokenizer, max_length=self.max_length, stride=self.chunk_stride)
        keep = select_windows(doc_index, self.max_windows)  # all, unless a document run capped them
        enc, doc_index = {k: [v[i] for i in keep] for k, v in enc.items()}, doc_index[keep]
        window_logits = []
        for start in range(0, len(doc_index), self.batch_size):
            batch = {k: v[start:start + self.batch_size] for k, v in enc.items()}
            padded = self.tokenizer.pad(batch, padding=True, return_tensors="tf")
            window_logits.append(self._forward(dict(padded)).numpy())
        if self.document:
            return mean_logits(np.concatenate(window_logits), doc_index, len(texts))
        return self.task.pool_windows(np.concatenate(window_logits), doc_index, len(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``[len(texts), num_labels]`` (``task.probabilities``; TypeError for score runs)."""
        return self.task.probabilities(self.logits(texts))

    def predict(self, texts: Sequence[str]) -> list:
        """The predicted label name of each text; the predicted score for regression runs (``task.predictions``)."""
        return self.task.predictions(self.task.decode(self.logits(texts), self.labels), self.labels)

    def predict_scores(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Decoded outputs: ``score`` (original scale), ``scores`` per target, ``label_id``, ``probabilities``.

        Example:
            >>> Predictor.from_run("runs/essay-br").predict_scores(["Um texto."])["score"]   # doctest: +SKIP
            array([600.])
        """
        return self.task.decode(self.logits(texts), self.labels)


class _TableWriter:
    """Append pandas chunks to a CSV/TSV/JSONL/Parquet file (already opened atomically)."""

    def __init__(self, path: Path, handle):
        self.suffix = path.suffix.lower()
        self.handle = handle
        self.first = True
        self.parquet = None

    def write(self, frame) -> None:
        if self.suffix in (".csv", ".tsv"):
            frame.to_csv(self.handle, index=False, header=self.first, sep="\t" if self.suffix == ".tsv" else ",", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        elif self.suffix == ".jsonl":
            text = frame.to_json(orient="records", lines=True, force_ascii=False)
            self.handle.write(text if text.endswith("\n") or not text else text + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.handle, table.schema)
            self.parquet.write_table(table)
        self.first = False

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def _check_output(path: Path, input_path: Path, overwrite: bool) -> None:
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(f"{path}: unsupported output type {path.suffix or '(none)'!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if not path.parent.exists():
        raise DataError(f"{path.parent}: output directory does not exist; create it first, or choose another --output")
    check_output_file(path, overwrite=overwrite, inputs=[input_path])


def _check_no_clash(input_path: Path, columns, new_columns) -> None:
    """The input's own columns are never replaced by prediction columns of the same name."""
    clash = [c for c in new_columns if c in set(columns)]
    if clash:
        raise DataError(
            f"{input_path}: already has column(s) {', '.join(clash)}, which the predictions would replace; "
            "rename or drop them in the input (e.g. a file scored before), then predict again"
        )


def predict_file(run_dir: str | Path, input_path: str | Path, output_path: str | Path, *, text_column: str | None = None,
                 batch_size: int = 32, encoding: str | None = None, overwrite: bool = False) -> int:
    """Score every row of ``input_path``; write the rows plus the predictions.

    Classification runs add ``predicted_label`` and ``prob_<label>`` columns;
    ordinal runs also ``predicted_score`` (the label's value, or the expected
    value); regression runs ``predicted_score`` on the original scale, and
    multi-target runs one ``predicted_<target>`` column per target (plus
    ``predicted_score``, their sum, with ``data.derive_total``).

    Args:
        run_dir: a finished run directory.
        input_path: CSV/TSV/JSON/JSONL/Parquet with the run's text column.
        output_path: .csv, .tsv, .jsonl or .parquet; written atomically.
        text_column: override the text column (default: the run's ``data.text_column``).
        batch_size: rows per model call.
        encoding: text encoding of the input (default: the run's ``data.encoding``).
        overwrite: replace an existing ``output_path`` (never the input; never an input column:
            an input that already has a prediction column is refused).

    Returns:
        the number of rows written.

    Example:
        >>> predict_file("runs/quickstart", "reviews.csv", "scored.csv")   # doctest: +SKIP
        300
    """
    run_cfg = load_run_config(run_dir)
    input_path, output_path = Path(input_path), Path(output_path)
    _check_output(output_path, input_path, overwrite)
    column = text_column or run_cfg.data.text_column
    # Read once, before loading the model.
    table = read_table(input_path, encoding=encoding or run_cfg.data.encoding, columns=[column], what="--input")
    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    task = predictor.task
    rows = 0
    binary = output_path.suffix.lower() == ".parquet"
    with atomic_file(output_path, "wb" if binary else "w") as handle:
        writer = _TableWriter(output_path, handle)
        for frame in iter_table_batches(table, batch_size=CHUNK_ROWS):
            decoded = predictor.predict_scores(frame[column].tolist())
            frame = frame.copy()
            predicted = task.prediction_columns(decoded, predictor.labels)
            if rows == 0:
                _check_no_clash(input_path, table.column_names, predicted)
            for name, values in predicted.items():
                frame[name] = values
            writer.write(frame)
            rows += len(frame)
        writer.close()
    return rows


def evaluate_file(run_dir: str | Path, data_path: str | Path, *, output_path: str | Path | None = None, batch_size: int = 32,
                  text_column: str | None = None, label_column: str | None = None, encoding: str | None = None,
                  skip_bad_rows: bool | None = None, overwrite: bool = False) -> dict:
    """Metrics of a finished run on a labelled file, written to JSON and returned.

    Rows are read and cleaned with the run's data settings (columns, encoding,
    ``on_bad_rows``); a label the model does not know is an error naming it.
    The metrics go to ``output_path`` (default ``run_dir/evaluations/<file stem>.json``,
    replaced by a later evaluation of the same file); an existing ``output_path``
    needs ``overwrite``, and the run's own files are never an output. The
    column names, encoding and bad-row policy default to the run's config.

    Example:
        >>> evaluate_file("runs/quickstart", "other.csv")["accuracy"]   # doctest: +SKIP
        0.87
    """
    run_dir, data_path = Path(run_dir), Path(data_path)
    run_cfg = load_run_config(run_dir)
    out = _evaluation_output(run_dir, data_path, output_path, overwrite)
    d = run_cfg.data
    text_column, label_column = text_column or d.text_column, label_column or d.label_column
    skip = d.on_bad_rows == "skip" if skip_bad_rows is None else skip_bad_rows
    ds = read_table(data_path, encoding=encoding or d.encoding, columns=[text_column, label_column], what="--data")
    task = Task.load(run_dir)
    texts = [clean_text(t) for t in ds[text_column]]
    raw_labels = [task.label_cell(v) for v in ds[label_column]]
    bad = [i + 1 for i, (t, lab) in enumerate(zip(texts, raw_labels)) if not t or lab is None]
    if bad and not skip:
        shown = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(f"{data_path}: {len(bad)} row(s) with empty text or a missing label (rows {shown}); fix them or pass --skip-bad-rows")
    bad_rows = set(bad)
    keep = [i for i in range(len(texts)) if (i + 1) not in bad_rows]
    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    rows = [i + 1 for i in keep]
    parsed = task.parse_labels([raw_labels[i] for i in keep], rows, where=str(data_path), column=label_column)
    y_true = task.encode_targets(parsed, predictor.labels, where=str(data_path), rows=rows)
    logits = predictor.logits([texts[i] for i in keep])
    metrics = task.evaluate(logits, y_true, predictor.labels, with_confusion=True)
    metrics["file"] = str(data_path)
    if bad:
        metrics["skipped_rows"] = len(bad)
    atomic_write_json(out, metrics)
    metrics["output"] = str(out)
    return metrics


def _evaluation_output(run_dir: Path, data_path: Path, output_path, overwrite: bool) -> Path:
    """Where ``evaluate`` writes: its own ``evaluations/<stem>.json`` by default, else a checked ``--output`` file."""
    if not output_path:
        return RunDir(run_dir).evaluation(data_path.stem)  # tfslm's own file: a new evaluation replaces it
    return check_output_file(output_path, overwrite=overwrite, run_dir=run_dir, allowed_in_run=(EVALUATIONS_DIR,), inputs=[data_path])
