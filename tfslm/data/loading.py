"""Read tables of texts and labels, clean and validate rows, split, and tokenize.

Files are read through ``datasets`` (memory-mapped Arrow, so a table larger
than memory is fine): CSV, TSV, JSON/JSONL and Parquet. A text cell that holds
a JSON or Python-literal list of strings (paragraphs) is joined with blank
lines. Rows are numbered from 1, not counting a header line.

Example:
    >>> data = load_data(cfg.data, seed=cfg.training.seed)      # doctest: +SKIP
    >>> data.labels.names, data["train"].num_rows               # doctest: +SKIP
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from tfslm.config import DataConfig, resolve_path
from tfslm.errors import DataError
from tfslm.data.labels import LabelSpace
from tfslm.tasks.base import rows_text as _rows_text

__all__ = [
    "TextData",
    "load_data",
    "read_table",
    "clean_text",
    "stratified_split",
    "tokenize",
    "iter_table_batches",
    "SUPPORTED_FORMATS",
]

SUPPORTED_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
PARAGRAPH_SEPARATOR = "\n\n"


@dataclass
class TextData:
    """Cleaned splits (columns ``text`` and ``label`` as ``ClassLabel``) and their label space."""

    dataset: Any  # datasets.DatasetDict
    labels: LabelSpace
    skipped: dict[str, int] = field(default_factory=dict)
    task: Any = None  # tfslm.tasks.base.Task (load_data sets it); None means single-label classification

    def __getitem__(self, split: str):
        return self.dataset[split]

    def __contains__(self, split: str) -> bool:
        return split in self.dataset

    @property
    def splits(self) -> list[str]:
        return list(self.dataset.keys())

    def summary(self) -> dict[str, Any]:
        """Row counts per split and per label (score statistics for scores), and how many bad rows were skipped."""
        from tfslm.tasks.base import Task

        task = Task.resolve(self.task)
        out: dict[str, Any] = {split: task.split_summary(ds, self.labels) for split, ds in self.dataset.items()}
        if self.skipped:
            out["skipped_rows"] = dict(self.skipped)
        return out


# ---------------------------------------------------------------- cleaning
def clean_text(value: Any) -> str:
    """Normalise one text cell: join list-encoded paragraphs, strip whitespace.

    Example:
        >>> clean_text("['First.', 'Second.']")
        'First.\\n\\nSecond.'
    """
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return PARAGRAPH_SEPARATOR.join(p for p in (clean_text(v) for v in value) if p)
    if isinstance(value, float) and np.isnan(value):
        return ""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        parsed = _parse_list(text)
        if parsed is not None:
            return PARAGRAPH_SEPARATOR.join(p.strip() for p in parsed if p.strip())
    return text


def _parse_list(text: str) -> list[str] | None:
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        return None
    return None


# ---------------------------------------------------------------- reading
def _format_of(path: Path) -> tuple[str, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(sorted(SUPPORTED_FORMATS))}"
        )
    builder = SUPPORTED_FORMATS[suffix]
    kwargs: dict[str, Any] = {}
    if builder == "csv":
        kwargs.update(keep_default_na=False, na_filter=False)
        if suffix in (".tsv", ".tab"):
            kwargs["sep"] = "\t"
    return builder, kwargs


def _all_text_features(path: Path, sep: str, encoding: str):
    """Features that read every CSV column as text.

    Labels and scores are parsed by tfslm, so "040", "NA" or a numeric-looking
    text column are never converted behind the user's back.
    """
    import datasets
    import pandas as pd

    try:
        header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
    except Exception as exc:
        raise DataError(f"{path}: cannot read the header line ({_root_cause(exc)}); check the file format") from None
    duplicated = sorted({c for c in header if list(header).count(c) > 1 or "." in c and c.rsplit(".", 1)[0] in header})
    if duplicated:
        raise DataError(f"{path}: duplicate column names {duplicated}; give every column a unique name")
    return datasets.Features({str(name): datasets.Value("string") for name in header})


def read_table(path: str | os.PathLike, *, encoding: str = "utf-8", columns: Sequence[str] = (), what: str = "data"):
    """Read a CSV/TSV/JSON/JSONL/Parquet file into a ``datasets.Dataset``.

    Args:
        path: the file; ``tfslm:NAME`` names a file shipped with tfslm.
        encoding: text encoding of CSV/TSV/JSON files.
        columns: columns that must be present (checked with a clear error).
        what: the config key the file came from, for messages (e.g. "data.train_file").

    Example:
        >>> ds = read_table("train.csv", columns=["text", "label"])   # doctest: +SKIP
    """
    import datasets

    path = resolve_path(str(path))
    if not path.exists():
        raise DataError(f"{path}: file not found (from {what}); check the path, relative to {os.getcwd()}")
    if path.is_dir():
        raise DataError(f"{path}: is a directory (from {what}); give a data file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (from {what}); it needs a header and at least one row")
    builder, kwargs = _format_of(path)
    if builder in ("csv", "json"):
        _check_encoding(path, encoding)
        kwargs["encoding"] = encoding
    if builder == "csv":
        kwargs["features"] = _all_text_features(path, kwargs.get("sep", ","), encoding)
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path.resolve()), split="train", **kwargs)
    except Exception as exc:  # datasets wraps parser errors in its own types
        if "corresponds to no data" in str(exc):
            raise DataError(f"{path}: has no data rows (from {what}); add rows below the header") from None
        raise DataError(f"{path}: cannot read as {builder.upper()} ({_root_cause(exc)}); check the file format") from None
    if ds.num_rows == 0:
        raise DataError(f"{path}: has no data rows (from {what}); add rows below the header")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r}; columns are {ds.column_names}; "
            "set data.text_column / data.label_column to the right names"
        )
    return ds


def _check_encoding(path: Path, encoding: str, chunk_size: int = 1 << 20) -> None:
    """Fail early, with the byte offset, when a file is not valid text in ``encoding``."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines = 0, 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                start = max(0, min(exc.start, len(chunk)))
                line = lines + chunk[:start].count(b"\n") + 1
                raise DataError(
                    f"{path}: not valid {encoding} text (byte 0x{exc.object[exc.start]:02x} on line {line}, offset {offset + exc.start}); "
                    "re-save it as UTF-8 or set data.encoding (e.g. latin-1, cp1252)"
                ) from None
            if not chunk:
                return
            offset += len(chunk)
            lines += chunk.count(b"\n")


def _root_cause(exc: BaseException) -> str:
    seen = set()
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(exc))
        exc = nxt
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class _quiet_datasets:
    """Silence datasets' progress bars and info logs while reading files."""

    def __enter__(self):
        import datasets

        self._bars = datasets.utils.logging.is_progress_bar_enabled()
        self._level = datasets.utils.logging.get_verbosity()
        datasets.utils.logging.disable_progress_bar()
        datasets.utils.logging.set_verbosity_error()
        return self

    def __exit__(self, *exc):
        import datasets

        if self._bars:
            datasets.utils.logging.enable_progress_bar()
        datasets.utils.logging.set_verbosity(self._level)
        return False


# ---------------------------------------------------------------- validation
def _clean_split(ds, cfg: DataConfig, path: Path, what: str, task):
    """Return (dataset with columns text/label_name, skipped count); bad rows raise or are dropped."""
    to_label = task.label_cell

    def clean(batch, indices):
        texts = [clean_text(t) for t in batch[cfg.text_column]]
        labels = [to_label(v) for v in batch[cfg.label_column]]
        return {"text": texts, "label_name": labels, "row": [i + 1 for i in indices]}

    with _quiet_datasets():
        cleaned = ds.map(
            clean,
            batched=True,
            with_indices=True,
            remove_columns=ds.column_names,
            desc=f"Cleaning {path.name}",
        )
    texts = cleaned["text"]
    labels = cleaned["label_name"]
    empty_text = [i + 1 for i, t in enumerate(texts) if not t]
    no_label = [i + 1 for i, lab in enumerate(labels) if lab is None]
    if not empty_text and not no_label:
        return cleaned, 0
    bad = sorted(set(empty_text) | set(no_label))
    if cfg.on_bad_rows == "error":
        parts = []
        if empty_text:
            parts.append(f"{len(empty_text)} row(s) with empty text in column {cfg.text_column!r} (rows {_rows_text(empty_text)})")
        if no_label:
            parts.append(f"{len(no_label)} row(s) with a missing label in column {cfg.label_column!r} (rows {_rows_text(no_label)})")
        raise DataError(f"{path}: " + " and ".join(parts) + "; fix them or set data.on_bad_rows: skip")
    bad_set = set(bad)
    keep = [i for i in range(cleaned.num_rows) if (i + 1) not in bad_set]
    if not keep:
        raise DataError(f"{path}: every row has empty text or a missing label (from {what}); check data.text_column/label_column")
    return cleaned.select(keep), len(bad)


def _encode(cleaned, task, parsed, labels: LabelSpace, path: Path):
    """The cleaned split with its ``label`` column: what ``task.label_column`` makes of the parsed labels."""
    column = task.label_column(parsed, labels, where=str(path), rows=cleaned["row"])
    out = cleaned.remove_columns(["label_name", "row"]).add_column("label", column)
    return out.cast_column("label", task.label_feature(labels))


def stratified_split(label_ids: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train, validation), keeping each label's share; seeded.

    Every label with at least two rows keeps one in train and gets at least one
    in validation; a label with one row stays in train.

    Example:
        >>> train, val = stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
        >>> sorted(np.asarray([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
        [0, 1]
    """
    label_ids = np.asarray(label_ids)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(label_ids):
        members = np.flatnonzero(label_ids == label)
        rng.shuffle(members)
        n_val = int(round(len(members) * fraction))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def load_data(cfg: DataConfig, *, seed: int = 42, task=None) -> TextData:
    """Read, clean, label and split the configured files.

    Returns a :class:`TextData` whose ``dataset`` is a ``DatasetDict`` with
    ``train``, ``validation`` and (when ``test_file`` is set) ``test`` splits,
    each with a ``text`` column and a ``label`` ``ClassLabel`` column.

    Args:
        cfg: the ``data`` section of the config.
        seed: seeds the validation split when there is no validation file.
        task: a :class:`tfslm.tasks.base.Task` (``Task.from_config(cfg)``); default:
            single-label classification (with the bands of ``data.bins``/``bin_width``).
            For regression tasks the ``label`` column holds the targets scaled to
            [0, 1] (float32, or a list of them per row), and ``labels`` is the score grid.

    Example:
        >>> data = load_data(DataConfig(train_file="tfslm:quickstart_train.csv"))   # doctest: +SKIP
        >>> data.labels.names                                                      # doctest: +SKIP
        ('negative', 'neutral', 'positive')
    """
    from tfslm.tasks.base import Task

    task = Task.resolve(task, data=cfg)
    columns = [cfg.text_column, cfg.label_column]
    files = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}
    keys = {"train": "data.train_file", "validation": "data.validation_file", "test": "data.test_file"}
    cleaned, parsed, paths, skipped = {}, {}, {}, {}
    for split, name in files.items():
        if not name:
            continue
        path = paths[split] = resolve_path(name)
        raw = read_table(path, encoding=cfg.encoding, columns=columns, what=keys[split])
        cleaned[split], n_bad = _clean_split(raw, cfg, path, keys[split], task)
        if n_bad:
            skipped[split] = n_bad
        parsed[split] = task.parse_labels(cleaned[split]["label_name"], cleaned[split]["row"], where=str(path),
                                          column=cfg.label_column, data=cfg)
    labels = task.label_space(parsed["train"], cfg)
    encoded = {split: _encode(ds, task, parsed[split], labels, paths[split]) for split, ds in cleaned.items()}
    if "validation" not in encoded:
        _split_off_validation(encoded, task.strata(parsed["train"], labels), cfg, seed)
    return _text_data(encoded, labels, skipped, task)


def _split_off_validation(encoded: dict, strata, cfg: DataConfig, seed: int) -> None:
    """Hold out ``cfg.validation_split`` of train, stratified by ``strata``, when there is no validation file."""
    train_idx, val_idx = stratified_split(strata, cfg.validation_split, seed)
    if len(val_idx) == 0:
        raise DataError(
            f"{resolve_path(cfg.train_file)}: too few rows ({encoded['train'].num_rows}) to split off a validation set; "
            "add rows, raise data.validation_split, or give data.validation_file"
        )
    full = encoded["train"]
    encoded["train"], encoded["validation"] = full.select(train_idx), full.select(val_idx)


def _text_data(encoded: dict, labels: LabelSpace, skipped: dict, task) -> TextData:
    import datasets

    ordered = {k: encoded[k] for k in ("train", "validation", "test") if k in encoded}
    return TextData(datasets.DatasetDict(ordered), labels, skipped, task)


# ---------------------------------------------------------------- tokenizing
def tokenize(dataset, tokenizer, max_length: int):
    """Tokenize the ``text`` column (batched, truncated to ``max_length``, no padding).

    Works on a ``Dataset`` or a ``DatasetDict``; padding is left to the batch
    collator so each batch is padded only to its own longest row. Results are
    cached by ``datasets`` under the fingerprint of data + tokenizer + max_length.
    """

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    with _quiet_datasets():
        return dataset.map(encode, batched=True, remove_columns=["text"], desc="Tokenizing")


def iter_table_batches(table, *, batch_size: int) -> Iterator[Any]:
    """Yield the rows of a ``datasets.Dataset`` (from :func:`read_table`) as pandas DataFrames of ``batch_size`` rows.

    The table stays memory-mapped Arrow and is never held in memory as Python
    objects, so files larger than memory can be scored batch by batch.
    """
    for start in range(0, table.num_rows, batch_size):
        yield table.select(range(start, min(start + batch_size, table.num_rows))).to_pandas()
