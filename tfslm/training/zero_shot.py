"""``tfslm zero-shot``: a no-training baseline scored and written like a trained run's evaluation.

Two methods, chosen from the checkpoint (``zero_shot.method: auto``):

* **nli**: a checkpoint whose ``config.json`` has an entailment label runs
  transformers' ``zero-shot-classification`` pipeline (TF); each candidate label
  fills the hypothesis template (``"This text is {}."``).
* **embedding**: any other encoder (e.g. all-MiniLM-L6-v2): the mean-pooled
  embedding of the text against that of each label's description (the template
  filled with the label, or ``zero_shot.label_descriptions``), cosine similarity,
  ``softmax(cosine / temperature)``.

The candidate labels are the label space: class names, or the score grid for
ordered labels and scores (as the course runs zero-shot with "0".."10"); a score
task predicts the probability-weighted mean of the grid. The run directory
(``<output_dir>/<run_name>-zero-shot`` by default) gets ``config.yaml``,
``labels.json``, ``task.json``, ``predictions/<split>.csv``, ``metrics.json`` and
``report.md`` in the shapes ``tfslm train`` writes, so the two sit side by side.

Example:
    >>> cfg = load_config("configs/quickstart.yaml")                          # doctest: +SKIP
    >>> zero_shot(cfg, checkpoint="../shared/models/all-MiniLM-L6-v2")["validation"]["accuracy"]   # doctest: +SKIP
    0.6
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfslm.config import Config, config_to_dict
from tfslm.errors import ConfigError

__all__ = ["zero_shot", "fill_template", "embedding_probabilities", "zero_shot_run_dir"]

log = logging.getLogger("tfslm")

DEFAULT_TEMPLATE = "This text is {}."
_UNSUPPORTED = ("multi_label_classification", "multi_target_regression")


def fill_template(template: str | None, label: str) -> str:
    """The template with ``{}`` or ``{label}`` replaced by the label.

    Example:
        >>> fill_template("This review is {label}.", "positive"), fill_template(None, "5")
        ('This review is positive.', 'This text is 5.')
    """
    return (template or DEFAULT_TEMPLATE).replace("{label}", "{}").replace("{}", label)


def embedding_probabilities(text_embeddings, label_embeddings, temperature: float) -> np.ndarray:
    """``softmax(cosine(text, label) / temperature)`` over the labels, rows summing to 1.

    Example:
        >>> [round(float(p), 3) for p in embedding_probabilities([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], 0.5)[0]]
        [0.881, 0.119]
    """
    t = np.asarray(text_embeddings, dtype=np.float64)
    lab = np.asarray(label_embeddings, dtype=np.float64)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    lab = lab / np.maximum(np.linalg.norm(lab, axis=1, keepdims=True), 1e-12)
    z = (t @ lab.T) / float(temperature)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def zero_shot_run_dir(cfg: Config) -> Path:
    """``<output_dir>/<run_name>-zero-shot``: next to the fine-tuned run, never over it."""
    return Path(cfg.output_dir) / f"{cfg.run_name or 'run'}-zero-shot"


def _resolve_options(cfg: Config, checkpoint: str | None, template: str | None) -> Config:
    z = dataclasses.replace(cfg.zero_shot)
    z.checkpoint = checkpoint or z.checkpoint or cfg.model.checkpoint
    z.template = template or z.template
    if z.template is not None and "{}" not in z.template and "{label}" not in z.template:
        raise ConfigError(f"--template: {z.template!r} has no {{}} or {{label}} for the label; write e.g. 'This text is {{}}.'")
    if not z.checkpoint:
        raise ConfigError("zero_shot.checkpoint: no checkpoint to score with; pass --checkpoint DIR (an NLI model or a "
                          "sentence encoder such as ../shared/models/all-MiniLM-L6-v2), or set zero_shot.checkpoint")
    if cfg.model.problem_type in _UNSUPPORTED:
        raise ConfigError(f"model.problem_type: {cfg.model.problem_type} has no zero-shot method here (one label or one "
                          "score per text only); use single_label_classification, ordinal or regression")
    return dataclasses.replace(cfg, zero_shot=z)


def _method(z, directory: Path) -> str:
    from tfslm.backends.hf_zero_shot import nli_label_of

    entailment = nli_label_of(directory)
    if z.method == "auto":
        return "nli" if entailment else "embedding"
    if z.method == "nli" and not entailment:
        raise ConfigError(f"zero_shot.method: nli needs an entailment label in {directory}/config.json (id2label), "
                          "found none; use an NLI checkpoint, or method: embedding")
    return z.method


def _descriptions(z, names: Sequence[str]) -> list[str]:
    if z.label_descriptions is None:
        return [fill_template(z.template, name) for name in names]
    if len(z.label_descriptions) != len(names):
        raise ConfigError(f"zero_shot.label_descriptions: {len(z.label_descriptions)} given for {len(names)} labels "
                          f"({', '.join(names)}); give one description per label, in that order")
    return list(z.label_descriptions)


class _Progress:
    """A one-line progress bar on stderr (tqdm when installed), counting texts."""

    def __init__(self, total: int, what: str) -> None:
        try:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=what, unit="text", leave=False)
        except ImportError:
            self._bar = None

    def __call__(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _probabilities(method: str, z, directory: Path, texts: Sequence[str], names: Sequence[str], cache: dict) -> np.ndarray:
    from tfslm.backends import hf_zero_shot

    progress = _Progress(len(texts), f"zero-shot ({method})")
    try:
        if method == "nli":
            hypothesis = (z.template or DEFAULT_TEMPLATE).replace("{label}", "{}")
            return hf_zero_shot.nli_scores(str(directory), texts, names, template=hypothesis,
                                           batch_size=z.batch_size, progress=progress)
        if "labels" not in cache:
            cache["labels"] = hf_zero_shot.embed_texts(str(directory), _descriptions(z, names), max_length=z.max_length,
                                                       batch_size=z.batch_size)
        emb = hf_zero_shot.embed_texts(str(directory), texts, max_length=z.max_length, batch_size=z.batch_size,
                                       progress=progress)
        return embedding_probabilities(emb, cache["labels"], z.temperature)
    finally:
        progress.close()


def _outputs(probs: np.ndarray, task, labels) -> np.ndarray:
    """What the task's head would output: log-probabilities (classes) or the scaled expected score (regression)."""
    if task.problem_type == "regression":
        grid = np.asarray(task.grid(), dtype=np.float64)
        return task.scale(probs.astype(np.float64) @ grid).reshape(-1, 1).astype(np.float32)
    return np.log(np.maximum(probs, 1e-12)).astype(np.float32)


def _candidate_names(task, labels) -> list[str]:
    if task.problem_type == "regression" and task.grid() is None:
        raise ConfigError("data.score_step: zero-shot scores a regression task over its score grid, and there is none; "
                          "set data.score_range and data.score_step (e.g. [0, 10] and 1)")
    return list(labels.names)


def zero_shot(cfg: Config, *, checkpoint: str | None = None, template: str | None = None, overwrite: bool = False,
              run_dir: str | Path | None = None) -> dict[str, Any]:
    """Score the validation (and test) split with no training; write the run directory; return its metrics.

    Args:
        cfg: a validated config; ``zero_shot:`` holds method, template, label_descriptions, temperature.
        checkpoint: overrides ``zero_shot.checkpoint`` (then ``model.checkpoint``).
        template: overrides ``zero_shot.template``.
        overwrite: replace a finished run there (built beside it, swapped in at the end).
        run_dir: where to write; default :func:`zero_shot_run_dir`.

    Example:
        >>> zero_shot(cfg, checkpoint="../shared/models/all-MiniLM-L6-v2")["test"]["macro_f1"]   # doctest: +SKIP
    """
    from tfslm.atomic import make_temporary_sibling, replace_directory
    from tfslm.backends.hf_tf import resolve_checkpoint
    from tfslm.data.loading import load_data
    from tfslm.run_dir import RunDir
    from tfslm.tasks.base import Task
    from tfslm.training.fit import _check_destination

    started = time.time()
    cfg = _resolve_options(cfg, checkpoint, template)
    run = RunDir(run_dir or zero_shot_run_dir(cfg))
    _check_destination(run, overwrite)
    task = Task.from_config(cfg)
    data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    names = _candidate_names(task, data.labels)
    directory = resolve_checkpoint(cfg.zero_shot.checkpoint)
    method = _method(cfg.zero_shot, directory)
    log.info("zero-shot: %s method, checkpoint %s, %d candidate labels", method, cfg.zero_shot.checkpoint, len(names))
    staging = make_temporary_sibling(run.root) if run.root.exists() else None
    target = staging or run.root
    try:
        metrics = _score_and_write(cfg, data, task, names, method, directory, target, started)
        if staging is not None:
            replace_directory(staging, run.root)
    except BaseException:
        if staging is not None:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
        raise
    _report_or_warn(run.root)
    log.info("zero-shot: done in %.0fs: %s", metrics["zero_shot"]["seconds"], run.root)
    return metrics


def _score_and_write(cfg: Config, data, task, names, method: str, directory: Path, root: Path, started: float) -> dict:
    from tfslm.backends.hf_zero_shot import parameter_count
    from tfslm.publish.report import save_predictions
    from tfslm.run_dir import RunDir, write_yaml
    from tfslm.training.callbacks import resolve_monitor
    from tfslm.training.evaluation import evaluate_predictions

    root.mkdir(parents=True, exist_ok=True)
    write_yaml(RunDir(root).config, config_to_dict(cfg))
    data.labels.save(root / "labels.json")
    task.save(root)
    metrics: dict[str, Any] = {}
    cache: dict = {}
    for split in ("validation", "test"):
        if split not in data.splits:
            continue
        texts, y_true = list(data[split]["text"]), np.asarray(data[split]["label"])
        outputs = _outputs(_probabilities(method, cfg.zero_shot, directory, texts, names, cache), task, data.labels)
        metrics[split] = evaluate_predictions(outputs, y_true, data.labels, with_confusion=True, task=task)
        save_predictions(root, split, outputs, y_true, data.labels, task)
    z = cfg.zero_shot
    described = {"label_descriptions": list(_descriptions(z, names))} if method == "embedding" else {
        "hypothesis_template": (z.template or DEFAULT_TEMPLATE).replace("{label}", "{}")}
    metrics.update({
        "monitor": resolve_monitor(cfg.training, data.labels, task)[0],
        "data": data.summary(),
        "labels": list(data.labels.names),
        "problem_type": task.problem_type,
        "model": {"source": str(z.checkpoint), "type": f"zero-shot ({method})",
                  "parameters": parameter_count(str(directory), method)},
        "zero_shot": {"method": method, "checkpoint": str(z.checkpoint), **described,
                      **({"temperature": z.temperature} if method == "embedding" else {}),
                      "seconds": round(time.time() - started, 1)},
    })
    RunDir(root).write_metrics(metrics)
    return metrics


def _report_or_warn(root: Path) -> None:
    from tfslm.publish.report import write_report

    try:
        write_report(root)
    except Exception as exc:  # a plotting failure must not lose the scored run
        log.warning("report: not written (%s: %s); run `tfslm report %s` to retry", type(exc).__name__, exc, root)
