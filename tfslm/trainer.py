"""The main job: config -> data -> model -> fit -> evaluate -> a finished run directory.

Example:
    >>> result = train(load_config("configs/quickstart.yaml"))     # doctest: +SKIP
    >>> result.metrics["validation"]["accuracy"]                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_json, atomic_write_text
from .config import Config, config_to_dict
from .errors import RunDirError

__all__ = ["train", "TrainResult", "set_seed", "is_finished_run"]

log = logging.getLogger("tfslm")

FINISHED_MARKER = "metrics.json"  # written last: its presence means the run completed


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    run_dir: Path
    metrics: dict[str, Any]
    history: dict[str, list]
    model: Any
    tokenizer: Any


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow; with ``deterministic``, also make TF ops deterministic."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def is_finished_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / FINISHED_MARKER).is_file()


def _prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a directory; choose another output_dir/run_name")
    if is_finished_run(run_dir):
        if not overwrite:
            raise RunDirError(
                f"{run_dir}: holds a finished run; pass --overwrite to replace it, or set run_name to keep both"
            )
        # Un-mark it first: a crash from here on leaves a run that is clearly unfinished.
        (run_dir / FINISHED_MARKER).unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def _speed_report(cfg: Config, perf, train_ds) -> dict[str, Any]:
    # Chunk runs feed windows through prepare_tf_dataset whatever training.input_pipeline says.
    pipeline = "prepare_tf_dataset (windows)" if cfg.data.long_text == "chunk" else cfg.training.input_pipeline
    out = {"input_pipeline": pipeline, "static_shapes": cfg.training.static_shapes, **perf.to_dict()}
    stats = getattr(train_ds, "padding_stats", None)
    if stats:
        out["train_epoch"] = {k: v for k, v in stats.items() if k != "shapes"}
        out["bucket_edges"] = list(train_ds.bucket_spec.edges)
    return out


def train(cfg: Config, *, overwrite: bool = False, verbose: int | str = "auto") -> TrainResult:
    """Train, evaluate and save one run as configured; return its metrics and model.

    Writes ``cfg.run_dir``: ``config.yaml``, ``labels.json``, ``model/``,
    ``logs/history.csv``, TensorBoard events, ``saved_model/``, then
    ``metrics.json`` (the run is finished) and the model card ``README.md``;
    with ``hub.push`` it then pushes the run.

    Args:
        cfg: a validated config (see :func:`tfslm.load_config`).
        overwrite: replace a finished run in the same directory.
        verbose: Keras ``fit`` verbosity ("auto", 0, 1 or 2).

    Example:
        >>> result = train(load_config("configs/quickstart.yaml"), overwrite=True)   # doctest: +SKIP
    """
    from . import callbacks as cb
    from .data import load_data
    from .evaluation import collect_predictions, evaluate_predictions
    from .modeling import build_model, save_pretrained
    from .optim import compile_model
    from .performance import float32_copy, resolve_performance
    from .pipeline import to_tf_datasets

    started = time.time()
    run_dir = cfg.run_dir
    _prepare_run_dir(run_dir, overwrite)
    set_seed(cfg.training.seed, cfg.training.deterministic)

    from .tasks import Task

    task = Task.from_config(cfg)
    data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    summary = data.summary()
    log.info("data: %s", ", ".join(f"{s} {summary[s]['rows']} rows" for s in data.splits))
    if data.skipped:
        log.warning("skipped bad rows (data.on_bad_rows: skip): %s", data.skipped)
    log.info("labels (%d, %s%s): %s", data.labels.num_labels, data.labels.kind, ", ordered" if data.labels.ordered else "", ", ".join(data.labels.names[:20]))

    perf = resolve_performance(cfg.training)
    log.info("performance on %s: %s", perf.device_detail, ", ".join(f"{k} {getattr(perf, k)} ({v})" for k, v in perf.reasons.items()))
    with perf.policy_scope():  # layers take the dtype policy when built
        model, tokenizer = build_model(cfg.model, data.labels, train_texts=data["train"]["text"], task=task)
    source = cfg.model.checkpoint or f"{cfg.model.architecture} from scratch"
    log.info("model: %s (%s), %s parameters", type(model).__name__, source, f"{model.count_params():,}")

    splits = ("train", "validation", "test") if "test" in data else ("train", "validation")
    windows: dict[str, Any] = {}
    if cfg.data.long_text == "chunk":
        from .chunking import chunked_tf_dataset

        datasets_ = []
        for split in splits:
            ds, windows[split] = chunked_tf_dataset(
                data[split], model, tokenizer, batch_size=cfg.training.batch_size, max_length=cfg.model.max_length,
                stride=cfg.data.chunk_stride, shuffle=(split == "train"),
            )
            datasets_.append(ds)
        log.info("long texts in windows: %s", ", ".join(f"{s} {len(windows[s])} windows" for s in splits))
        train_rows = len(windows["train"])
    else:
        datasets_ = to_tf_datasets(
            data, model, tokenizer, batch_size=cfg.training.batch_size, max_length=cfg.model.max_length, splits=splits,
            input_pipeline=cfg.training.input_pipeline, seed=cfg.training.seed, static_shapes=cfg.training.static_shapes,
        )
        train_rows = data["train"].num_rows
    train_ds, val_ds = datasets_[0], datasets_[1]
    cardinality = int(train_ds.cardinality())
    steps_per_epoch = cardinality if cardinality > 0 else math.ceil(train_rows / cfg.training.batch_size)
    compile_model(model, cfg.training, steps_per_epoch=steps_per_epoch, task=task, **perf.compile_options())

    # The resolved config and label space go in first, so an interrupted run says what it was.
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True))
    data.labels.save(run_dir / "labels.json")
    task.save(run_dir)

    callbacks = cb.default_callbacks(run_dir, val_ds, data.labels, cfg.training, task, windows=windows.get("validation"))
    early_stopping = callbacks[1]
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.training.epochs, callbacks=callbacks, verbose=verbose)

    from .report import save_predictions

    metrics: dict[str, Any] = {}
    for split, split_ds in zip(splits[1:], datasets_[1:]):
        logits, y_true = collect_predictions(model, split_ds)
        if split in windows:
            from .evaluation import pool_document_outputs

            logits, y_true = pool_document_outputs(logits, y_true, windows[split], task)
        metrics[split] = evaluate_predictions(logits, y_true, data.labels, with_confusion=True, task=task)
        save_predictions(run_dir, split, logits, y_true, data.labels, task)  # for the report's plots
    monitor, mode = cb.resolve_monitor(cfg.training, data.labels, task)
    epochs_run = len(history.history.get("loss", []))
    metrics.update(
        {
            "monitor": monitor,
            "best_epoch": int(early_stopping.best_epoch) + 1,
            "epochs_trained": epochs_run,
            "early_stopped": bool(early_stopping.stopped_epoch),
            "data": summary,
            "labels": list(data.labels.names),
            "problem_type": task.problem_type,
            "model": {"source": source, "type": type(model).__name__, "parameters": int(model.count_params())},
            "training": {"batch_size": cfg.training.batch_size, "steps_per_epoch": steps_per_epoch, "seed": cfg.training.seed},
            "train_seconds": round(time.time() - started, 1),
            "speed": _speed_report(cfg, perf, train_ds),
        }
    )

    if perf.mixed_precision != "off":  # save and serve a float32 model, whatever it trained in
        model = float32_copy(model)
    save_pretrained(model, tokenizer, run_dir / "model")
    if cfg.export.saved_model:
        from .export import export_saved_model

        stride = cfg.data.chunk_stride if cfg.data.long_text == "chunk" else None
        info = export_saved_model(model, tokenizer, list(data.labels.names), cfg.model.max_length, run_dir / "saved_model",
                                  task=task, labels=data.labels, chunk_stride=stride)
        if info.get("note"):
            log.warning("saved_model: %s", info["note"])
        keys = ("signatures", "in_graph_tokenizer", "long_text", "chunk_stride", "pooling")
        metrics["saved_model"] = {k: info[k] for k in keys if k in info}
    atomic_write_json(run_dir / FINISHED_MARKER, metrics)
    from .card import write_model_card

    write_model_card(run_dir)
    try:
        from .report import write_report

        write_report(run_dir)
    except Exception as exc:  # a plotting failure must not fail a finished training run
        log.warning("report: not written (%s: %s); run `tfslm report %s` to retry", type(exc).__name__, exc, run_dir)
    log.info("done in %.0fs: %s", metrics["train_seconds"], run_dir)
    if cfg.hub.push:
        # The run is complete on disk before any network call: a failed push loses nothing.
        from .hub import push_run

        url = push_run(run_dir, cfg.hub.repo_id, private=cfg.hub.private, revision=cfg.hub.revision)
        log.info("pushed to %s", url)
    return TrainResult(run_dir=run_dir, metrics=metrics, history=dict(history.history), model=model, tokenizer=tokenizer)
