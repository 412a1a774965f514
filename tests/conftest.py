"""Shared test setup: offline, quiet TensorFlow, isolated caches, tiny generated tables."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import csv
import random
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MINILM = SHARED / "models" / "all-MiniLM-L6-v2"
ESSAYS = SHARED / "data" / "essay-br" / "development.csv"

# datasets caches Arrow files next to a per-session cache, never in the user's home.
_CACHE = tempfile.mkdtemp(prefix="tfslm-test-cache-")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_CACHE, "datasets")
os.environ["HF_HOME"] = os.path.join(_CACHE, "hf")

needs_minilm = pytest.mark.skipif(not MINILM.is_dir(), reason=f"{MINILM} absent (../shared not beside the repo)")
needs_essays = pytest.mark.skipif(not ESSAYS.is_file(), reason=f"{ESSAYS} absent (../shared not beside the repo)")

_WORDS = {
    "sports": ["match", "goal", "team", "coach", "league", "striker", "season", "stadium"],
    "science": ["atom", "experiment", "theory", "lab", "molecule", "physics", "data", "research"],
    "food": ["recipe", "oven", "flavour", "dinner", "spice", "bread", "kitchen", "sauce"],
}
_FILLER = ["the", "a", "today", "really", "we", "saw", "about", "new", "great", "this", "and", "very"]


def make_rows(n: int, seed: int = 0, labels=("sports", "science", "food")) -> list[dict]:
    """Short texts whose topic words give the label away (plus filler), deterministic."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.sample(_WORDS[label], 3) + rng.sample(_FILLER, rng.randint(2, 7))
        rng.shuffle(words)
        rows.append({"text": " ".join(words).capitalize() + ".", "label": label})
    return rows


def make_varied_rows(n: int, seed: int = 3) -> list[dict]:
    """make_rows texts stretched to a wide spread of lengths (1x to 4x), so there are several length buckets."""
    rng = random.Random(seed)
    rows = make_rows(n, seed=seed)
    for row in rows:
        row["text"] = " ".join([row["text"]] * rng.randint(1, 4))
    return rows


def assert_one_line_error(capsys, code, fragment):
    """The CLI exited 2 with one `tfslm: error:` line containing ``fragment`` and no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err and err[-1].startswith("tfslm: error:") and fragment in err[-1], err
    assert not any("Traceback" in line for line in err)


def wait_for(predicate, proc, timeout: float) -> bool:
    """Poll ``predicate`` until it holds (True), ``proc`` exits or ``timeout`` seconds pass (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def write_csv(path: Path, rows: list[dict], fieldnames=None, delimiter=",") -> Path:
    fieldnames = fieldnames or list(rows[0].keys())
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def tiny_config_dict(tmp_path: Path, train_file: Path, **sections) -> dict:
    """A config for a 2-layer, hidden-32 BERT trained from scratch: seconds on 2 cores."""
    cfg = {
        "output_dir": str(tmp_path / "runs"),
        "run_name": "tiny",
        "data": {"train_file": str(train_file), "validation_split": 0.2},
        "model": {
            "architecture": "bert", "max_length": 32, "vocab_size": 400, "hidden_size": 32,
            "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
        },
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "warmup_ratio": 0.1},
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            cfg.setdefault(name, {}).update(values)
        else:
            cfg[name] = values
    return cfg


@pytest.fixture(autouse=True)
def _fresh_backend_choice():
    """Forget the backend a test's command chose (`use_backend` keeps it per process, as a CLI run wants).

    Without this, a keras_hub run in one test makes `get_backend()` answer keras_hub in the next.
    """
    yield
    backends = sys.modules.get("tfslm.backends")
    if backends is not None:
        backends._ACTIVE.clear()


@pytest.fixture(autouse=True)
def _fresh_tfslm_log_handlers():
    """Drop the log handlers a test's `tfslm.cli.main` call added.

    `main` attaches a StreamHandler to the ``tfslm`` logger on its first call and keeps it:
    bound to that test's captured stderr, which pytest closes after the test, so every
    later in-process `main` would print "--- Logging error --- ... Traceback" to stderr.
    """
    import logging

    logger = logging.getLogger("tfslm")
    before = list(logger.handlers)
    yield
    for handler in [h for h in logger.handlers if h not in before]:
        logger.removeHandler(handler)


@pytest.fixture
def train_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "train.csv", make_rows(120, seed=1))
