"""A run directory: every path in it, the finished marker, and reading/writing its JSON and YAML files.

One place names what ``tfslm train`` leaves, so a file is renamed in one
line and every command (predict, export, report, push) finds it::

    runs/<name>/
      config.yaml  labels.json  task.json  metrics.json (written last: finished)
      README.md (card)  report.md  model/  saved_model/  backup/  logs/history.csv
      logs/tensorboard/  plots/  predictions/<split>.csv  evaluations/

Example:
    >>> run = RunDir("runs/quickstart")
    >>> run.metrics.as_posix(), run.predictions("validation").as_posix()
    ('runs/quickstart/metrics.json', 'runs/quickstart/predictions/validation.csv')
    >>> run.is_finished()
    False
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfslm.atomic import atomic_write_json, atomic_write_text
from tfslm.errors import RunDirError, one_line

__all__ = [
    "RunDir",
    "read_json",
    "read_yaml",
    "write_yaml",
    "CONFIG_FILE",
    "LABELS_FILE",
    "TASK_FILE",
    "METRICS_FILE",
    "FINISHED_MARKER",
    "CARD_FILE",
    "REPORT_FILE",
    "MODEL_DIR",
    "SAVED_MODEL_DIR",
    "BACKUP_DIR",
    "RUN_FILES",
]

CONFIG_FILE = "config.yaml"
LABELS_FILE = "labels.json"
TASK_FILE = "task.json"
METRICS_FILE = "metrics.json"
FINISHED_MARKER = METRICS_FILE  # written last: its presence means the run completed
CARD_FILE = "README.md"
REPORT_FILE = "report.md"
MODEL_DIR = "model"
SAVED_MODEL_DIR = "saved_model"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
PLOTS_DIR = "plots"
PREDICTIONS_DIR = "predictions"
EVALUATIONS_DIR = "evaluations"
# Everything `tfslm train`, `evaluate`, `export` and `report` write at the top of a run directory.
RUN_ENTRIES = frozenset({
    CONFIG_FILE, LABELS_FILE, TASK_FILE, METRICS_FILE, CARD_FILE, REPORT_FILE, MODEL_DIR, SAVED_MODEL_DIR,
    BACKUP_DIR, LOGS_DIR, PLOTS_DIR, PREDICTIONS_DIR, EVALUATIONS_DIR,
})
# What save_pretrained writes into model/ for the tokenizers and weights tfslm handles.
_MODEL_FILES = ("config.json", "generation_config.json", "tf_model.h5", "tf_model.h5.index.json", "tokenizer.json",
                "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json",
                "merges.txt", "spiece.model", "sentencepiece.bpe.model")
# The run's own files a Hub push uploads beside model/ and saved_model/.
RUN_FILES = (LABELS_FILE, TASK_FILE, CARD_FILE, METRICS_FILE, CONFIG_FILE)


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is created by naming them).

    Args:
        root: the run directory, e.g. ``runs/quickstart``.
    """

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    # ------------------------------------------------------------ files
    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def labels(self) -> Path:
        return self.root / LABELS_FILE

    @property
    def task(self) -> Path:
        return self.root / TASK_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def card(self) -> Path:
        return self.root / CARD_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    # ------------------------------------------------------------ directories
    @property
    def model(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def saved_model(self) -> Path:
        return self.root / SAVED_MODEL_DIR

    @property
    def backup(self) -> Path:
        return self.root / BACKUP_DIR

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def history(self) -> Path:
        return self.logs / "history.csv"

    @property
    def tensorboard(self) -> Path:
        return self.logs / "tensorboard"

    @property
    def plots(self) -> Path:
        return self.root / PLOTS_DIR

    def plot(self, name: str) -> Path:
        """``plots/<name>.png``."""
        return self.plots / f"{name}.png"

    def predictions(self, split: str) -> Path:
        """``predictions/<split>.csv``: true and predicted label/score per row."""
        return self.root / PREDICTIONS_DIR / f"{split}.csv"

    def evaluation(self, stem: str) -> Path:
        """``evaluations/<stem>.json``: what ``tfslm evaluate`` wrote for a data file."""
        return self.root / EVALUATIONS_DIR / f"{stem}.json"

    # ------------------------------------------------------------ state
    def is_finished(self) -> bool:
        """True once ``metrics.json`` (written last) exists."""
        return self.metrics.is_file()

    def require(self, *, finished: bool = True, command: str = "this command") -> "RunDir":
        """Raise a one-line :class:`RunDirError` unless this is a (finished) run directory."""
        if not self.root.is_dir():
            raise RunDirError(f"{self.root}: run directory not found; pass the directory `tfslm train` wrote (e.g. runs/quickstart)")
        if not self.config.is_file():
            raise RunDirError(f"{self.config}: missing; {self.root} is not a tfslm run directory")
        if finished and not self.is_finished():
            raise RunDirError(
                f"{self.root}: the run did not finish (no {METRICS_FILE}); rerun `tfslm train` with its config "
                f"to resume it before using {command}"
            )
        return self

    def is_run(self) -> bool:
        """True when the directory holds a tfslm run (finished or not): its ``config.yaml``."""
        return self.config.is_file()

    def foreign_entries(self) -> list[Path]:
        """Files and directories in the run directory that tfslm does not write (a user's ``notes.txt``)."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in RUN_ENTRIES or (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                continue
            out.append(entry)
        if self.model.is_dir():
            out += [p for p in sorted(self.model.iterdir()) if p.name not in _MODEL_FILES and not _is_weight_shard(p.name)]
        return out

    # ------------------------------------------------------------ I/O
    def read_metrics(self, *, required: bool = True) -> dict | None:
        return read_json(self.metrics, required=required)

    def write_metrics(self, metrics: dict) -> None:
        """Write ``metrics.json`` atomically: from here on the run counts as finished."""
        atomic_write_json(self.metrics, metrics)

    def read_config(self) -> dict:
        return read_yaml(self.config)


def _is_weight_shard(name: str) -> bool:
    return name.startswith("tf_model-") and name.endswith(".h5")


def read_json(path: str | os.PathLike, *, required: bool = True) -> Any:
    """A JSON file of a run directory; None when absent and not ``required``.

    Raises:
        RunDirError: missing (when required), unreadable or not JSON; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        if required:
            raise RunDirError(f"{path}: missing; is {path.parent} a finished tfslm run directory?")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirError(f"{path}: cannot read JSON ({one_line(exc)}); restore the file or train the run again") from None


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML file of a run directory (``{}`` when empty).

    Raises:
        RunDirError: missing, unreadable or not YAML; one line naming the file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: missing; is {path.parent} a tfslm run directory?")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirError(f"{path}: cannot read YAML ({one_line(exc)}); restore the file or train the run again") from None


def write_yaml(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as YAML atomically, keys in the order given."""
    import yaml

    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
