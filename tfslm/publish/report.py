"""The run report: ``report.md`` plus PNG plots under ``plots/``, made from the run's files.

Everything is read from the run directory (``metrics.json``, ``logs/history.csv``,
``predictions/<split>.csv``, ``labels.json``, ``task.json``), so ``tfslm report
RUN_DIR`` can redraw it any time without loading the model. Plots use
matplotlib's non-interactive Agg backend:

- ``learning_curves.png``: loss per epoch (train vs validation) and the
  monitored metric (validation; train too when the history has it), the best
  epoch marked;
- ``confusion_matrix.png``: rows normalised to the share of each true label,
  counts in the cells, labelled axes (scores: on the score grid);
- ``scores.png`` (ordered labels and scores): predicted vs true score, each
  true score's spread as a violin, the diagonal of perfect agreement;
- ``targets.png`` (several targets): one predicted-vs-true panel per target.

Example:
    >>> paths = write_report("runs/essay-br")      # doctest: +SKIP
    >>> paths["report"]                            # doctest: +SKIP
    PosixPath('runs/essay-br/report.md')
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tfslm.atomic import atomic_write_text
from tfslm.errors import RunDirError
from tfslm.run_dir import PLOTS_DIR, RunDir, read_json
from tfslm.publish.markdown import fmt

__all__ = ["write_report", "save_predictions", "read_history"]



# ---------------------------------------------------------------- predictions
def save_predictions(run_dir, split: str, logits, y_true, labels, task=None, rows=None) -> Path:
    """Write ``run_dir/predictions/<split>.csv``: the true and predicted label/score of each row.

    Args:
        run_dir: the run directory.
        split: "validation" or "test".
        logits: model outputs ``[rows, outputs]``.
        y_true: label ids (classes) or scaled targets (regression), as in the ``tf.data`` split.
        labels: the run's label space.
        task: the run's task (None: single-label classification); ``task.prediction_table`` makes the columns.
        rows: the data file's row number of each row (a first ``row`` column); None for none.
    """
    from tfslm.tasks.base import Task

    columns = Task.resolve(task).prediction_table(logits, y_true, labels)
    if rows is not None:
        columns = {"row": [int(r) for r in rows], **columns}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*columns.values()):
        writer.writerow([_cell(v) for v in row])
    path = RunDir(run_dir).predictions(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        value = round(value, 4)
        return int(value) if value.is_integer() else value
    return value


def _read_csv(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {key: [r[key] for r in rows] for key in rows[0]}


def read_history(run_dir) -> dict[str, list[float]]:
    """``logs/history.csv`` as columns of floats (empty when the file is missing)."""
    path = RunDir(run_dir).history
    if not path.is_file():
        return {}
    out: dict[str, list[float]] = {}
    for key, values in _read_csv(path).items():
        out[key] = [float(v) if v not in ("", "nan") else math.nan for v in values]
    return out


# ---------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _nice(metric: str) -> str:
    names = {"qwk": "QWK (quadratic weighted kappa)", "mae": "MAE", "rmse": "RMSE", "macro_f1": "macro-F1",
             "accuracy": "accuracy", "loss": "loss", "exact": "exact agreement", "adjacent": "adjacent agreement (±1 step)"}
    base = metric[4:] if metric.startswith("val_") else metric
    return names.get(base, base.replace("_", " "))


def plot_learning_curves(history: dict[str, list[float]], monitor: str, best_epoch: int | None, path: Path) -> Path:
    """Loss and the monitored metric per epoch, train vs validation."""
    plt = _pyplot()
    epochs = [int(e) + 1 for e in history.get("epoch", range(len(history.get("loss", []))))]
    metric = monitor[4:] if monitor.startswith("val_") else monitor
    panels = [("loss", "val_loss")] + ([(metric, monitor)] if metric != "loss" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (name, val_key) in zip(axes[0], panels):
        if name in history:
            ax.plot(epochs, history[name], "o-", label="train", color="#1f77b4")
        if val_key in history:
            ax.plot(epochs, history[val_key], "s-", label="validation", color="#d62728")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_nice(name))
        title = _nice(name) + (" (monitored)" if val_key == monitor else "")
        if name not in history and val_key in history:
            title += "\n(validation only: not computed on the training set)"
        ax.set_title(title)
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("Learning curves", fontsize=13)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(matrix, names, path: Path, title: str) -> Path:
    """Confusion matrix normalised by true label (rows sum to 1), counts in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    n = len(names)
    side = min(14.0, max(5.0, 0.42 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    font = 10 if n <= 12 else (8.5 if n <= 20 else 7.5)
    ax.set_xticklabels(names, rotation=90 if n > 8 else 0, fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=font,
                            color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's rows")
    fig.tight_layout()
    return _save(fig, path)


def plot_scores(true, pred, path: Path, title: str, step: float | None = None, ax=None, baseline=None) -> Path | None:
    """Predicted vs true scores: points (jittered), a violin per true score, and the diagonal.

    ``baseline``: ``(true, predicted)`` of the TF-IDF baseline, drawn beside the model's points.
    """
    plt = _pyplot()
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.5, 6))
    base_true, base_pred = (np.asarray(v, dtype=np.float64) for v in baseline) if baseline is not None else (true[:0], pred[:0])
    everything = np.concatenate([true, pred, base_true, base_pred])
    low, high = float(everything.min()), float(everything.max())
    pad = (high - low) * 0.05 or 1.0
    levels = np.unique(true)
    width = (step or (np.min(np.diff(levels)) if len(levels) > 1 else 1.0)) * 0.8
    groups = [pred[true == v] for v in levels]
    if 1 < len(levels) <= 40:
        parts = ax.violinplot(groups, positions=levels, widths=width, showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor("#9ecae1")
            body.set_alpha(0.5)
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.15, 0.15, len(true)) * width
    ax.scatter(true + jitter, pred, s=14, alpha=0.6, color="#08519c", label="one text (model)" if len(base_true) else "one text")
    if len(base_true):
        shift = 0.25 * width + rng.uniform(-0.08, 0.08, len(base_true)) * width  # beside the model's points
        ax.scatter(base_true + shift, base_pred, s=12, alpha=0.5, marker="x", color="#ff7f0e", label="TF-IDF baseline")
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="#d62728", linewidth=1, label="prediction = truth")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if own:
        fig.tight_layout()
        return _save(fig, path)
    return None


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- the report
_fmt = fmt


def write_report(run_dir) -> dict[str, Path]:
    """Write ``run_dir/report.md`` and its plots under ``run_dir/plots/``; return their paths.

    Args:
        run_dir: a finished run directory (``metrics.json`` present).

    Example:
        >>> write_report("runs/quickstart")["learning_curves"]     # doctest: +SKIP
        PosixPath('runs/quickstart/plots/learning_curves.png')
    """
    from tfslm.data.labels import LabelSpace
    from tfslm.tasks.base import Task

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found; pass the directory `tfslm train` wrote")
    metrics = read_json(RunDir(run_dir).metrics, required=False) or {}
    if not metrics:
        raise RunDirError(f"{run_dir}: no metrics.json; the run did not finish, so there is nothing to report")
    labels = LabelSpace.load(RunDir(run_dir).labels)
    task = Task.load(run_dir)
    history = read_history(run_dir)
    plots = RunDir(run_dir).plots
    paths: dict[str, Path] = {}
    monitor = metrics.get("monitor", "val_loss")
    best_epoch = metrics.get("best_epoch")

    if history.get("loss"):
        paths["learning_curves"] = plot_learning_curves(history, monitor, best_epoch, plots / "learning_curves.png")
    val = metrics.get("validation", {})
    grid_names = list(labels.names)
    if val.get("confusion_matrix") is not None and len(val["confusion_matrix"]) == len(grid_names):
        what = task.confusion_axis
        paths["confusion_matrix"] = plot_confusion(
            val["confusion_matrix"], grid_names, plots / "confusion_matrix.png",
            f"Validation confusion matrix by {what}, normalised by true row",
        )
    paths.update(_score_plots(run_dir, task, plots))
    paths["report"] = RunDir(run_dir).report
    atomic_write_text(paths["report"], _markdown(run_dir, metrics, labels, task, history, paths))
    return paths


def _predictions_table(run_dir: Path, split: str = "validation") -> dict[str, list[str]]:
    path = RunDir(run_dir).predictions(split)
    return _read_csv(path) if path.is_file() else {}


def _pair(columns: dict[str, list[str]], name: str) -> tuple[list[float], list[float]] | None:
    """``(true, predicted)`` of score column ``name`` (``score`` or a target), None where the table lacks it."""
    if f"true_{name}" not in columns or f"predicted_{name}" not in columns:
        return None
    return [float(v) for v in columns[f"true_{name}"]], [float(v) for v in columns[f"predicted_{name}"]]


def _score_plots(run_dir: Path, task, plots: Path) -> dict[str, Path]:
    """``scores.png`` and (several targets) ``targets.png`` from the validation predictions, the baseline's beside them."""
    predictions = _predictions_table(run_dir)
    baseline = _predictions_table(run_dir, "baseline-validation")  # absent in runs without a baseline
    paths: dict[str, Path] = {}
    if "true_score" in predictions:
        true, pred = _pair(predictions, "score")
        paths["scores"] = plot_scores(true, pred, plots / "scores.png", "Validation: predicted vs true score",
                                      step=task.plot_step, baseline=_pair(baseline, "score"))
    if task.panel_targets and predictions:
        plt = _pyplot()
        names = list(task.panel_targets)
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.3 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            true, pred = _pair(predictions, name)
            plot_scores(true, pred, None, name, step=task.plot_step, ax=ax, baseline=_pair(baseline, name))
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.suptitle("Validation: predicted vs true score per target", fontsize=13)
        fig.tight_layout()
        paths["targets"] = _save(fig, plots / "targets.png")
    return paths


def _baseline_section(metrics: dict, task) -> list[str]:
    """Model vs TF-IDF baseline on the task's headline metrics, per split ([] for a run without a baseline)."""
    baseline = metrics.get("baseline")
    if not isinstance(baseline, dict):
        return []
    splits = [s for s in ("validation", "test") if isinstance(baseline.get(s), dict) and isinstance(metrics.get(s), dict)]
    keys = [k for k in task.report_metric_keys if k != "loss" and any(k in baseline[s] for s in splits)]
    if not (splits and keys):
        return []
    params = ", ".join(f"{k} {v}" for k, v in (baseline.get("params") or {}).items())
    decoding = ", ".join(sorted(baseline.get("decoding") or {}))
    lines = ["## Baseline", "",
             f"{baseline.get('method', 'tfidf')} on the same training split ({baseline.get('features', '?')} features"
             + (f"; {params}" if params else "") + f"; fitted in {baseline.get('fit_seconds', '?')} s), decoded like the model"
             + (f" (its own {decoding})" if decoding else "") + ".", "",
             "| split | model | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for s in splits:
        for name, values in (("fine-tuned", metrics[s]), ("baseline", baseline[s])):
            lines.append(f"| {s} | {name} | " + " | ".join(_fmt(values.get(k, "")) for k in keys) + " |")
    return [*lines, ""]


def _markdown(run_dir: Path, metrics: dict, labels, task, history: dict, paths: dict) -> str:
    lines = [f"# Run report: {run_dir.name}", ""]
    model = metrics.get("model", {})
    facts = [
        ("task", task.report_description()),
        ("model", f"{model.get('source', '?')} ({model.get('type', '?')}, {model.get('parameters', 0):,} parameters)"),
        *task.report_facts(labels),
    ]
    for key in ("monitor", "best_epoch", "epochs_trained", "early_stopped", "train_seconds"):
        if key in metrics:
            facts.append((key.replace("_", " "), metrics[key]))
    data = metrics.get("data", {})
    rows = ", ".join(f"{s} {v['rows']}" for s, v in data.items() if isinstance(v, dict) and "rows" in v)
    if rows:
        facts.append(("rows", rows))
    lines += [f"- **{k}**: {v}" for k, v in facts] + [""]

    splits = [s for s in ("validation", "test") if isinstance(metrics.get(s), dict)]
    keys = list(task.report_metric_keys)
    present = [k for k in keys if any(k in metrics[s] for s in splits)]
    if splits and present:
        lines += ["## Metrics", "", "| split | " + " | ".join(present) + " | examples |",
                  "|---|" + "---|" * (len(present) + 1)]
        for s in splits:
            lines.append(f"| {s} | " + " | ".join(_fmt(metrics[s].get(k, "")) for k in present) + f" | {metrics[s].get('num_examples', '')} |")
        lines += ["", task.report_metrics_note(labels), ""]
    lines += _baseline_section(metrics, task)
    lines += task.report_sections(metrics, splits)
    if history.get("loss"):
        cols = [c for c in history if c != "epoch" and not c.startswith("lr")]
        lines += ["## Per epoch", "", "| epoch | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for i in range(len(history["loss"])):
            epoch = int(history["epoch"][i]) + 1 if "epoch" in history else i + 1
            lines.append(f"| {epoch} | " + " | ".join(_fmt(history[c][i]) for c in cols) + " |")
        lines.append("")
    titles = {"learning_curves": "Learning curves", "confusion_matrix": "Confusion matrix (validation)",
              "scores": "Predicted vs true score (validation)", "targets": "Per target (validation)"}
    images = [k for k in titles if k in paths]
    if images:
        lines += ["## Plots", ""]
        for key in images:
            lines += [f"### {titles[key]}", "", f"![{titles[key]}]({PLOTS_DIR}/{paths[key].name})", ""]
    return "\n".join(lines)
