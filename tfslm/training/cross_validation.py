"""Cross-validation: one ordinary run per fold of the training file, then every metric as mean ± std.

:func:`cross_validate` splits the training file into ``folds`` stratified folds
(seeded by ``training.seed``; :func:`tfslm.data.splits.stratified_folds`). Fold
N is a full :func:`tfslm.training.fit.train` run with ``data.folds``/``data.fold``
set: fold N is its test split, the validation split comes from the other folds.
The runs and the aggregate live in ``<output_dir>/<run_name>-cv/``::

    fold-1/ ... fold-K/     ordinary run directories (`tfslm train fold-1/config.yaml` redoes one)
    cv.json                 per-fold test metrics, mean and std (ddof=1), baseline's too, pooled OOF metrics
    oof_predictions.csv     every training-file row once: row, fold, true and predicted columns
    report.md               the per-fold table of the headline metrics, mean ± std, baseline alongside

A fold that crashed resumes like any run; finished folds are kept, so
rerunning the command (or ``fold=N`` alone) trains only what is missing.

Example:
    >>> result = cross_validate(load_config("configs/essay-br.yaml"), folds=5)   # doctest: +SKIP
    >>> result.mean["qwk"], result.std["qwk"]                                     # doctest: +SKIP
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfslm.atomic import atomic_write_json, atomic_write_text
from tfslm.config import Config, config_to_dict, validate
from tfslm.errors import ConfigError, RunDirError
from tfslm.run_dir import RunDir, read_json, read_yaml

__all__ = ["CVResult", "aggregate_folds", "cross_validate", "cv_dir_of", "fold_statistics"]

log = logging.getLogger("tfslm")

CV_SUFFIX = "-cv"
CV_JSON = "cv.json"
OOF_FILE = "oof_predictions.csv"
CV_REPORT = "report.md"
_FOLD_DIR = re.compile(r"fold-[1-9][0-9]*")
_CV_FILES = (CV_JSON, OOF_FILE, CV_REPORT)


@dataclass
class CVResult:
    """What :func:`cross_validate` produced (also in ``cv.json``)."""

    cv_dir: Path
    folds: int
    finished: list[int]
    missing: list[int]
    fold_metrics: dict[int, dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float | None]
    baseline_mean: dict[str, float] = field(default_factory=dict)
    baseline_std: dict[str, float | None] = field(default_factory=dict)
    pooled: dict[str, float] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    trained: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every fold finished."""
        return not self.missing


def cv_dir_of(cfg: Config) -> Path:
    """``<output_dir>/<run_name>-cv``: where :func:`cross_validate` writes."""
    return Path(cfg.output_dir) / f"{cfg.run_name or 'run'}{CV_SUFFIX}"


def fold_config(cfg: Config, folds: int, fold: int) -> Config:
    """The config of fold ``fold``: an ordinary run into ``<run_name>-cv/fold-<fold>``, no test file, no push."""
    out = copy.deepcopy(cfg)
    out.data.folds, out.data.fold, out.data.test_file = folds, fold, None
    out.hub.push = False  # a fold is a means to a number, never a model to publish
    out.output_dir, out.run_name = str(cv_dir_of(cfg)), f"fold-{fold}"
    return validate(out)


def _check_arguments(cfg: Config, folds: Any, fold: Any) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"--folds: expected an integer >= 2, got {folds!r}; pass e.g. --folds 5")
    if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or not 1 <= fold <= folds):
        raise ConfigError(f"--fold: expected a fold from 1 to {folds} (--folds), got {fold!r}; pass e.g. --fold 1, or leave it out for all")
    if cfg.data.tfrecord_dir:
        raise ConfigError("data.tfrecord_dir: cross-validation splits the training file; set data.train_file and remove data.tfrecord_dir")
    if cfg.data.folds is not None and cfg.data.folds != folds:
        raise ConfigError(f"data.folds: {cfg.data.folds} in the config but --folds {folds}; remove data.folds from the config")


def _check_cv_dir(root: Path, overwrite: bool) -> None:
    """Refuse a file, or a directory holding what cross-validation did not write (unless ``overwrite``: then left alone)."""
    for path in (root, *root.parents):
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{root}: is not a directory ({path} is a file); choose another output_dir or run_name")
    if not root.is_dir():
        return
    foreign = sorted(p.name for p in root.iterdir() if not _is_own_entry(p))
    if foreign and not overwrite:
        raise RunDirError(
            f"{root}: holds {foreign[0]}, which `tfslm cv` did not write; move it out, choose another run_name, "
            "or pass --overwrite to retrain every fold (other files are left in place)"
        )
    if foreign:
        log.warning("cv: %s holds %d file(s) tfslm did not write (%s); left in place", root, len(foreign), ", ".join(foreign[:3]))


def _is_own_entry(path: Path) -> bool:
    name = path.name
    if path.is_dir() and _FOLD_DIR.fullmatch(name):
        return True
    if path.is_file() and name in _CV_FILES:
        return True
    # A temporary of an atomic write (tfslm.atomic) left by a kill: ".<own name>.<pid>.<...>.tmp".
    return name.startswith(".") and name.endswith(".tmp") and any(name.startswith(f".{own}.") for own in _CV_FILES + ("fold-",))


def _finished_fold_is_current(fold_cfg: Config) -> bool:
    """True for a finished fold run of the same config; a finished run of another config is an error."""
    from tfslm.training.backup import _config_differences

    run = RunDir(fold_cfg.run_dir)
    if not run.is_finished():
        return False
    differing = _config_differences(read_yaml(run.config), config_to_dict(fold_cfg))
    if differing:
        raise RunDirError(
            f"{run.root}: a finished fold of another config (differs in {', '.join(differing[:4])}); "
            "pass --overwrite to retrain the folds, or set run_name to keep both"
        )
    return True


def cross_validate(cfg: Config, *, folds: int, fold: int | None = None, overwrite: bool = False,
                   verbose: int | str = "auto") -> CVResult:
    """Stratified k-fold cross-validation over the training file; aggregate whatever folds are finished.

    Each fold is a full :func:`~tfslm.training.fit.train` run into
    ``<output_dir>/<run_name>-cv/fold-<N>/`` whose test split is fold N
    (``data.test_file`` is dropped, ``hub.push`` off). Then ``cv.json``,
    ``oof_predictions.csv`` and ``report.md`` are written beside the folds.

    Args:
        cfg: a validated config (see :func:`tfslm.load_config`) with ``data.train_file``.
        folds: the number of folds (>= 2).
        fold: train only this fold (1..folds), e.g. to rerun one that crashed; None: every fold.
        overwrite: retrain finished folds. Without it, finished folds of the same config are kept,
            an unfinished one resumes from its backup.
        verbose: Keras ``fit`` verbosity ("auto", 0, 1 or 2).

    Example:
        >>> result = cross_validate(load_config("configs/quickstart.yaml"), folds=5)   # doctest: +SKIP
        >>> f"{result.mean['accuracy']:.3f} ± {result.std['accuracy']:.3f}"           # doctest: +SKIP
    """
    from tfslm.training.fit import train

    _check_arguments(cfg, folds, fold)
    if cfg.data.test_file:
        log.info("cv: data.test_file %s is not used: each fold's held-out part is its test split", cfg.data.test_file)
    root = cv_dir_of(cfg)
    _check_cv_dir(root, overwrite)
    trained = []
    for n in [fold] if fold else range(1, folds + 1):
        fold_cfg = fold_config(cfg, folds, n)
        if not overwrite and _finished_fold_is_current(fold_cfg):
            log.info("cv: fold %d of %d already finished in %s; kept (--overwrite retrains it)", n, folds, fold_cfg.run_dir)
            continue
        log.info("cv: fold %d of %d: training into %s", n, folds, fold_cfg.run_dir)
        train(fold_cfg, overwrite=overwrite, verbose=verbose)
        trained.append(n)
    result = aggregate_folds(root, folds, seed=cfg.training.seed)
    result.trained = trained
    if result.missing:
        log.warning("cv: fold(s) %s of %d not finished yet; the aggregate covers fold(s) %s. Run `tfslm cv` with --fold N "
                    "for each missing one", ", ".join(map(str, result.missing)), folds, ", ".join(map(str, result.finished)) or "none")
    return result


# ---------------------------------------------------------------- aggregation
def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics of a split (not counts, matrices or per-label tables)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "num_examples" and math.isfinite(float(v))}


def fold_statistics(fold_metrics: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float | None]]:
    """``(mean, std)`` of each scalar metric that every fold has; the sample std (ddof=1), None for one fold.

    Example:
        >>> fold_statistics([{"qwk": 0.5}, {"qwk": 0.7}, {"qwk": 0.6}])
        ({'qwk': 0.6}, {'qwk': 0.1})
    """
    scalars = [_scalars(m) for m in fold_metrics]
    if not scalars:
        return {}, {}
    keys = [k for k in scalars[0] if all(k in s for s in scalars[1:])]
    mean, std = {}, {}
    for key in keys:
        values = np.asarray([s[key] for s in scalars], dtype=np.float64)
        mean[key] = round(float(values.mean()), 12)
        std[key] = round(float(values.std(ddof=1)), 12) if len(values) > 1 else None
    return mean, std


def aggregate_folds(cv_dir: str | Path, folds: int, *, seed: int | None = None) -> CVResult:
    """Read the finished folds under ``cv_dir``; write ``cv.json``, ``oof_predictions.csv`` and ``report.md``.

    Args:
        cv_dir: the ``<run_name>-cv`` directory.
        folds: the number of folds it was split into.
        seed: recorded in ``cv.json`` (the folds' ``training.seed``).

    Example:
        >>> aggregate_folds("runs/essay-br-cv", 5).mean["qwk"]     # doctest: +SKIP
    """
    root = Path(cv_dir)
    runs = {n: RunDir(root / f"fold-{n}") for n in range(1, folds + 1)}
    finished = [n for n, run in runs.items() if run.is_finished()]
    missing = [n for n in runs if n not in finished]
    all_metrics = {n: read_json(runs[n].metrics) for n in finished}
    fold_metrics = {n: _scalars(m.get("test") or {}) for n, m in all_metrics.items()}
    mean, std = fold_statistics(list(fold_metrics.values()))
    baselines = {n: m["baseline"]["test"] for n, m in all_metrics.items()
                 if isinstance(m.get("baseline"), dict) and isinstance(m["baseline"].get("test"), dict)}
    # Only when every finished fold has one: a mean over some folds would not compare with the model's.
    b_mean, b_std = fold_statistics(list(baselines.values())) if finished and len(baselines) == len(finished) else ({}, {})
    result = CVResult(root, folds, finished, missing, fold_metrics, mean, std, b_mean, b_std)
    if not finished:
        return result
    table = _out_of_fold_table({n: runs[n] for n in finished})
    result.pooled = _pooled_metrics(table, runs[finished[0]])
    result.headline = _headline_keys(runs[finished[0]], mean)
    _write_outputs(result, table, seed, {n: _scalars(b) for n, b in baselines.items()} if b_mean else {})
    return result


def _out_of_fold_table(runs: Mapping[int, RunDir]) -> dict[str, list]:
    """Every fold's ``predictions/test.csv`` with ``fold`` added, by row number; a row twice is an error."""
    records: list[dict] = []
    for n, run in runs.items():
        path = run.predictions("test")
        with open(path, newline="", encoding="utf-8") as handle:
            fold_records = list(csv.DictReader(handle))
        if fold_records and "row" not in fold_records[0]:
            raise RunDirError(f"{path}: has no row column (written by an older tfslm); pass --overwrite to retrain the folds")
        records += [{"row": int(r.pop("row")), "fold": n, **r} for r in fold_records]
    records.sort(key=lambda r: r["row"])
    keys = list(dict.fromkeys(k for r in records for k in r)) or ["row", "fold"]
    rows = [r["row"] for r in records]
    repeated = sorted({r for r, nxt in itertools.pairwise(rows) if r == nxt})
    if repeated:
        raise RunDirError(f"{runs[next(iter(runs))].root.parent}: row(s) {repeated[:5]} predicted by two folds (folds of "
                          "different splits); pass --overwrite to retrain every fold")
    return {k: [r.get(k, "") for r in records] for k in keys}


def _pooled_metrics(table: Mapping[str, list], run: RunDir) -> dict[str, float]:
    """Metrics over all out-of-fold predictions at once (single-label and single-score tasks; {} otherwise)."""
    from tfslm.data.labels import LabelSpace
    from tfslm.tasks.base import Task
    from tfslm.tasks.metrics import classification_metrics, score_metrics

    if not table.get("row"):
        return {}
    labels, task = LabelSpace.load(run.labels), Task.load(run)
    if "true_label" in table and "predicted_label" in table:
        index = {str(name): i for i, name in enumerate(labels.names)}
        true = [index[str(v)] for v in table["true_label"]]
        pred = [index[str(v)] for v in table["predicted_label"]]
        out = classification_metrics(true, pred, labels.num_labels, ordered=labels.ordered, values=labels.values)
    elif "true_score" in table and "predicted_score" in table:
        grid = task.grid() if getattr(task, "num_targets", 1) == 1 and hasattr(task, "grid") else None
        out = score_metrics([float(v) for v in table["true_score"]], [float(v) for v in table["predicted_score"]], grid)
    else:
        return {}
    return {k: float(v) for k, v in out.items()}


def _headline_keys(run: RunDir, mean: Mapping[str, float]) -> list[str]:
    from tfslm.tasks.base import Task

    return [k for k in Task.load(run).report_metric_keys if k in mean]


# ---------------------------------------------------------------- outputs
def _write_outputs(result: CVResult, table: Mapping[str, list], seed: int | None, baselines: Mapping[int, dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(table))
    writer.writerows(zip(*table.values()))
    atomic_write_text(result.cv_dir / OOF_FILE, buffer.getvalue())
    atomic_write_json(result.cv_dir / CV_JSON, {
        "folds": result.folds, "seed": seed, "finished": result.finished, "missing": result.missing,
        "fold_metrics": {str(n): m for n, m in result.fold_metrics.items()}, "mean": result.mean, "std": result.std,
        "baseline": ({"fold_metrics": {str(n): m for n, m in baselines.items()}, "mean": result.baseline_mean,
                      "std": result.baseline_std} if result.baseline_mean else None),
        "pooled_out_of_fold": result.pooled, "out_of_fold_rows": len(table.get("row", [])), "headline": result.headline,
    })
    atomic_write_text(result.cv_dir / CV_REPORT, cv_report(result, seed=seed, oof_rows=len(table.get("row", []))))


def mean_std_text(mean: float | None, std: float | None) -> str:
    """``0.6123 ± 0.0456`` (no ``±`` part for one fold)."""
    from tfslm.publish.markdown import fmt

    if mean is None:
        return "–"
    return fmt(float(mean)) + ("" if std is None else f" ± {fmt(float(std))}")


def cv_report(result: CVResult, *, seed: int | None = None, oof_rows: int | None = None) -> str:
    """The markdown of ``report.md``: one row per fold, mean ± std, the baseline's, the pooled out-of-fold metrics."""
    from tfslm.publish.markdown import fmt

    keys = result.headline or list(result.mean)
    lines = [f"# Cross-validation: {result.cv_dir.name.removesuffix(CV_SUFFIX)}", "",
             (f"{result.folds} stratified folds of the training file (seed {seed}); each fold's test metrics come from "
              "a model that never saw it."), ""]
    if result.missing:
        lines += [f"**Incomplete:** fold(s) {', '.join(map(str, result.missing))} not finished; the table covers the others.", ""]
    lines += ["| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for n, metrics in result.fold_metrics.items():
        lines.append(f"| {n} | " + " | ".join(fmt(metrics[k]) if k in metrics else "–" for k in keys) + " |")
    lines.append("| **mean ± std** | " + " | ".join(mean_std_text(result.mean.get(k), result.std.get(k)) for k in keys) + " |")
    if result.baseline_mean:
        lines.append("| baseline mean ± std | " + " | ".join(
            mean_std_text(result.baseline_mean.get(k), result.baseline_std.get(k)) for k in keys) + " |")
    if result.pooled:
        lines.append(f"| pooled out-of-fold ({oof_rows} rows) | " + " | ".join(
            fmt(result.pooled[k]) if k in result.pooled else "–" for k in keys) + " |")
    lines += ["", ("std is the sample standard deviation across folds (ddof=1). Pooled: the metric over every "
                   "out-of-fold prediction at once (`oof_predictions.csv`)."), ""]
    return "\n".join(lines)
