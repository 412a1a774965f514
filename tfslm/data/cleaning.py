"""Cleaning rows: text cells normalised, label cells parsed by the task, bad rows refused or skipped.

Example:
    >>> clean_text("['First.', 'Second.']")
    'First.\\n\\nSecond.'
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np

from tfslm.config import DataConfig
from tfslm.data.labels import LabelSpace
from tfslm.data.readers import _quiet_datasets
from tfslm.errors import DataError
from tfslm.tasks.base import rows_text as _rows_text

__all__ = ["clean_text", "clean_split", "encode_split", "PARAGRAPH_SEPARATOR"]

PARAGRAPH_SEPARATOR = "\n\n"


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


def clean_split(ds, cfg: DataConfig, path: Path, what: str, task):
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


def encode_split(cleaned, task, parsed, labels: LabelSpace, path: Path):
    """The cleaned split with its ``label`` column: what ``task.label_column`` makes of the parsed labels.

    The ``row`` column (file row numbers) stays, to follow the rows through splitting.
    """
    column = task.label_column(parsed, labels, where=str(path), rows=cleaned["row"])
    out = cleaned.remove_columns(["label_name"]).add_column("label", column)
    return out.cast_column("label", task.label_feature(labels))
