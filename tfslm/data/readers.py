"""Reading tables: a registry of file formats, all read through ``datasets`` as memory-mapped Arrow.

CSV, TSV, JSON/JSONL and Parquet are registered; another format is one
:func:`register_format` call naming the ``datasets`` builder and its options.
Every CSV column is read as text (labels and scores are parsed by tfslm), and
a file that does not parse is one error naming the file and line, with a hint
when the delimiter looks wrong.

Example:
    >>> sorted(SUPPORTED_FORMATS)[:3]
    ['.csv', '.json', '.jsonl']
    >>> ds = read_table("train.csv", columns=["text", "label"])   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from tfslm.config import resolve_path
from tfslm.errors import DataError

__all__ = ["read_table", "iter_table_batches", "register_format", "SUPPORTED_FORMATS"]

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
# Extra builder options per file suffix (CSV-family delimiters).
_FORMAT_OPTIONS: dict[str, dict[str, Any]] = {".tsv": {"sep": "\t"}, ".tab": {"sep": "\t"}}


def register_format(suffix: str, builder: str, **options: Any) -> None:
    """Read files ending in ``suffix`` with the ``datasets`` builder ``builder`` (csv, json, parquet, ...).

    Example:
        >>> register_format(".psv", "csv", sep="|")
        >>> SUPPORTED_FORMATS[".psv"]
        'csv'
    """
    suffix = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    SUPPORTED_FORMATS[suffix] = builder
    _FORMAT_OPTIONS[suffix] = dict(options)


def _format_of(path: Path) -> tuple[str, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(sorted(SUPPORTED_FORMATS))}"
        )
    builder = SUPPORTED_FORMATS[suffix]
    kwargs: dict[str, Any] = dict(_FORMAT_OPTIONS.get(suffix, {}))
    if builder == "csv":
        kwargs.update(keep_default_na=False, na_filter=False)
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
        raise DataError(f"{path}: cannot read the header line ({_root_cause(exc)}); {_delimiter_fix(path, sep, encoding)}") from None
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
        _check_encoding(path, encoding, what)
        kwargs["encoding"] = encoding
    if builder == "csv":
        kwargs["features"] = _all_text_features(path, kwargs.get("sep", ","), encoding)
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path.resolve()), split="train", **kwargs)
    except Exception as exc:  # datasets wraps parser errors in its own types
        if "corresponds to no data" in str(exc):
            raise DataError(f"{path}: has no data rows (from {what}); add rows below the header") from None
        fix = _delimiter_fix(path, kwargs.get("sep", ","), encoding) if builder == "csv" else "check the file format"
        raise DataError(f"{path}: cannot read as {builder.upper()} ({_parser_message(exc)}); {fix}") from None
    if ds.num_rows == 0:
        raise DataError(f"{path}: has no data rows (from {what}); add rows below the header")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        fix = _delimiter_fix(path, kwargs.get("sep", ","), encoding, quiet=True) if builder == "csv" else ""
        raise DataError(f"{path}: no column {missing[0]!r}; columns are {ds.column_names}; {fix or _column_fix(what)}")
    return ds


_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def _delimiter_fix(path: Path, sep: str, encoding: str, *, quiet: bool = False) -> str:
    """A fix when the header line splits better at another delimiter (a TSV or ;-separated file named .csv)."""
    try:
        with open(path, encoding=encoding, errors="replace") as handle:
            header = handle.readline()
    except OSError:
        header = ""
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] > counts.get(sep, 0) and counts[best] >= 1:
        fix = "rename it .tsv" if best == "\t" else "save it comma-separated"
        return f"the header line is {_DELIMITERS[best]}-separated, not {_DELIMITERS.get(sep, repr(sep))}-separated: {fix}"
    return "" if quiet else "check the file format (quotes around cells with the delimiter or line breaks)"


def _column_fix(what: str) -> str:
    """How to name the right column with the command at hand: a flag for predict/evaluate, a config key for train."""
    if what == "--input":
        return "pass --text-column with the name of the text column"
    if what == "--data":
        return "pass --text-column / --label-column with the right names"
    return "set data.text_column / data.label_column to the right names"


def _parser_message(exc: BaseException) -> str:
    """The parser's own words, without the wrapper exceptions of ``datasets`` around them."""
    text = _root_cause(exc)
    marker = "Error tokenizing data. C error: "
    return text.split(marker, 1)[1] if marker in text else text


def _check_encoding(path: Path, encoding: str, what: str = "data", chunk_size: int = 1 << 20) -> None:
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
                    f"re-save it as UTF-8 or {'pass --encoding' if what.startswith('--') else 'set data.encoding'} (e.g. latin-1, cp1252)"
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
        # CRITICAL, not ERROR: a parse failure is logged by datasets before it raises, and tfslm's own one-line error says it all.
        datasets.utils.logging.set_verbosity(logging.CRITICAL)
        return self

    def __exit__(self, *exc):
        import datasets

        if self._bars:
            datasets.utils.logging.enable_progress_bar()
        datasets.utils.logging.set_verbosity(self._level)
        return False


def iter_table_batches(table, *, batch_size: int) -> Iterator[Any]:
    """Yield the rows of a ``datasets.Dataset`` (from :func:`read_table`) as pandas DataFrames of ``batch_size`` rows.

    The table stays memory-mapped Arrow and is never held in memory as Python
    objects, so files larger than memory can be scored batch by batch.
    """
    for start in range(0, table.num_rows, batch_size):
        yield table.select(range(start, min(start + batch_size, table.num_rows))).to_pandas()
