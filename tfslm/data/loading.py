"""Read tables of texts and labels, clean and validate rows, split, and tokenize: :func:`load_data`.

Files are read through ``datasets`` (memory-mapped Arrow, so a table larger
than memory is fine; :mod:`tfslm.data.readers`), cleaned row by row
(:mod:`tfslm.data.cleaning`), labelled by the task and split
(:mod:`tfslm.data.splits`). Rows are numbered from 1, not counting a header line.

Example:
    >>> data = load_data(cfg.data, seed=cfg.training.seed)      # doctest: +SKIP
    >>> data.labels.names, data["train"].num_rows               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfslm.config import DataConfig, resolve_path
from tfslm.data.cleaning import clean_split, encode_split
from tfslm.data.labels import LabelSpace
from tfslm.data.readers import _quiet_datasets, read_table
from tfslm.data.splits import split_off_fold, split_off_validation

__all__ = ["TextData", "load_data", "tokenize"]


@dataclass
class TextData:
    """Cleaned splits (columns ``text`` and ``label`` as ``ClassLabel``) and their label space."""

    dataset: Any  # datasets.DatasetDict
    labels: LabelSpace
    skipped: dict[str, int] = field(default_factory=dict)
    task: Any = None  # tfslm.tasks.base.Task (load_data sets it); None means single-label classification
    # The 1-based file row number of each row of each split (a header line not counted), so a
    # prediction can name its row after cleaning, skipping and splitting.
    rows: dict[str, list[int]] = field(default_factory=dict)

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


def load_data(cfg: DataConfig, *, seed: int = 42, task=None) -> TextData:
    """Read, clean, label and split the configured files.

    Returns a :class:`TextData` whose ``dataset`` is a ``DatasetDict`` with
    ``train``, ``validation`` and (when ``test_file`` is set) ``test`` splits,
    each with a ``text`` column and a ``label`` ``ClassLabel`` column.

    With ``data.folds`` and ``data.fold`` (cross-validation, :func:`tfslm.cross_validate`),
    fold ``fold`` of the training file (stratified, seeded) is the ``test`` split
    and the validation split is taken from the other folds. The label space always
    comes from the whole training file, so every fold has the same one.

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
        cleaned[split], n_bad = clean_split(raw, cfg, path, keys[split], task)
        if n_bad:
            skipped[split] = n_bad
        parsed[split] = task.parse_labels(cleaned[split]["label_name"], cleaned[split]["row"], where=str(path),
                                          column=cfg.label_column, data=cfg)
    labels = task.label_space(parsed["train"], cfg)
    encoded = {split: encode_split(ds, task, parsed[split], labels, paths[split]) for split, ds in cleaned.items()}
    strata = task.strata(parsed["train"], labels)
    if cfg.folds:
        strata = split_off_fold(encoded, strata, cfg, seed)
    if "validation" not in encoded:
        split_off_validation(encoded, strata, cfg, seed)
    return _text_data(encoded, labels, skipped, task)


def _text_data(encoded: dict, labels: LabelSpace, skipped: dict, task) -> TextData:
    import datasets

    ordered = {k: encoded[k] for k in ("train", "validation", "test") if k in encoded}
    rows = {k: list(ds["row"]) for k, ds in ordered.items()}
    ordered = {k: ds.remove_columns(["row"]) for k, ds in ordered.items()}
    return TextData(datasets.DatasetDict(ordered), labels, skipped, task, rows)


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
