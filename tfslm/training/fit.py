"""The main job: config -> data -> model -> fit -> evaluate -> a finished run directory.

Example:
    >>> result = train(load_config("configs/quickstart.yaml"))     # doctest: +SKIP
    >>> result.metrics["validation"]["accuracy"]                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tfslm.atomic import atomic_write_json, atomic_write_text
from tfslm.config import Config, config_to_dict
from tfslm.errors import RunDirError

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
    is_chief: bool = True  # False on the other workers of a cluster: their run_dir was temporary and is gone


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


def _device_for(dist):
    """The device :func:`resolve_performance` tunes for: the strategy's, not merely the first one visible."""
    from tfslm.training.performance import DeviceInfo, detect_device

    device = detect_device()
    if dist.device_kind == "cpu" and device.kind == "gpu":  # strategy cpu on a GPU machine
        return DeviceInfo("cpu", "CPU (GPUs not used)", None, device.cpu_bf16)
    return device


def _tpu_input_rules(cfg: Config) -> None:
    """TPUs compile one XLA program per batch shape and cannot call back into Python for input."""
    from tfslm.errors import ConfigError

    if cfg.training.input_pipeline != "bucketed":
        raise ConfigError("training.input_pipeline: prepare_tf_dataset collates in Python, which a TPU input pipeline cannot run; use bucketed")
    if not cfg.training.static_shapes:
        log.info("TPU: training.static_shapes turned on (a bounded set of batch shapes, each compiled once)")
        cfg.training.static_shapes = True


def _fit(model, dist, cfg: Config, train_ds, val_ds, callbacks, verbose, *, steps_per_epoch: int, position=None):
    """``model.fit``; in a cluster, a peer that died becomes one clear error instead of a stack of RPC failures.

    A training set of known size goes in as one stream over all epochs
    (:func:`tfslm.training.backup.training_stream`), so a resumed run continues with
    exactly the batches the interrupted one had left.
    """
    import tensorflow as tf

    from tfslm.training.backup import training_stream

    steps = None
    if int(train_ds.cardinality()) > 0:
        by_file = train_ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE
        shards = dist.num_workers if by_file else 1
        train_ds, steps = training_stream(train_ds, steps_per_epoch, position, file_shards=shards), steps_per_epoch
    try:
        return model.fit(train_ds, validation_data=val_ds, epochs=cfg.training.epochs, steps_per_epoch=steps,
                         callbacks=callbacks, verbose=verbose)
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError) as exc:
        if dist.num_workers < 2:
            raise
        from tfslm.errors import ClusterError

        raise ClusterError(
            f"worker {dist.worker_index}: another worker of the cluster stopped or is unreachable "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); restart every worker with the same "
            f"command and training resumes from {cfg.run_dir / 'backup'}"
        ) from None


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
        overwrite: replace a finished run in the same directory, or discard an
            unfinished run's backup. Without it, an unfinished run with a backup
            under ``run_dir/backup`` and the same config is resumed.
        verbose: Keras ``fit`` verbosity ("auto", 0, 1 or 2).

    Example:
        >>> result = train(load_config("configs/quickstart.yaml"), overwrite=True)   # doctest: +SKIP
    """
    from tfslm.training.distribute import resolve_strategy

    started = time.time()
    # First: splitting the CPU into replicas and connecting to a TPU must precede any other TF work.
    dist = resolve_strategy(cfg.training)
    run_dir = cfg.run_dir if dist.is_chief else Path(tempfile.mkdtemp(prefix=f"tfslm-worker{dist.worker_index}-"))
    try:
        return _train(cfg, dist, run_dir, started, overwrite=overwrite, verbose=verbose)
    finally:
        if not dist.is_chief:  # other workers ran every step (collectives need them) but keep nothing
            shutil.rmtree(run_dir, ignore_errors=True)


def _train(cfg: Config, dist, run_dir: Path, started: float, *, overwrite: bool, verbose) -> TrainResult:
    from tfslm.training import callbacks as cb
    from tfslm.data.loading import load_data
    from tfslm.training.evaluation import collect_predictions, evaluate_predictions
    from tfslm.backends.hf_tf import build_model, save_pretrained
    from tfslm.training.optimizer import compile_model
    from tfslm.training.performance import float32_copy, resolve_performance
    from tfslm.inputs.pipeline import to_tf_datasets
    from tfslm.training.backup import BACKUP_DIRNAME, check_unfinished_run, delete_backup

    backup_dir = cfg.run_dir / BACKUP_DIRNAME  # the chief's, also for the other workers: Keras restores all from it
    if dist.is_chief:
        _prepare_run_dir(run_dir, overwrite)
    position = None
    if dist.is_chief or not overwrite:
        # An unfinished run's backup: resumed by fit below if the config matches (else a RunDirError).
        # Workers that see the chief's directory refuse a changed config too, instead of waiting for a chief that quit.
        position = check_unfinished_run(cfg.run_dir, config_to_dict(cfg), overwrite=overwrite)
    set_seed(cfg.training.seed, cfg.training.deterministic)
    per_replica_batch = cfg.training.batch_size
    batch_size = dist.global_batch_size(per_replica_batch)
    log.info(
        "strategy: %s (%s), %d replica(s)%s; batch %d per replica, %d global",
        dist.kind, dist.reason, dist.num_replicas,
        f", worker {dist.worker_index} of {dist.num_workers}" + ("" if dist.is_chief else " (writes nothing)") if dist.num_workers > 1 else "",
        per_replica_batch, batch_size,
    )

    if dist.kind == "tpu":
        _tpu_input_rules(cfg)

    from tfslm.tasks.base import Task

    task = Task.from_config(cfg)
    if cfg.data.tfrecord_dir:  # tokens, labels and tokenizer from `tfslm prepare` (tfslm/tfrecords.py)
        from tfslm.inputs.tfrecords import load_prepared

        data = load_prepared(cfg.data.tfrecord_dir, config=cfg)
    else:
        data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    summary = data.summary()
    log.info("data: %s", ", ".join(f"{s} {summary[s]['rows']} rows" for s in data.splits))
    if data.skipped:
        log.warning("skipped bad rows (data.on_bad_rows: skip): %s", data.skipped)
    log.info("labels (%d, %s%s): %s", data.labels.num_labels, data.labels.kind, ", ordered" if data.labels.ordered else "", ", ".join(data.labels.names[:20]))

    perf = resolve_performance(cfg.training, device=_device_for(dist))
    log.info("performance on %s: %s", perf.device_detail, ", ".join(f"{k} {getattr(perf, k)} ({v})" for k, v in perf.reasons.items()))
    with perf.policy_scope(), dist.scope():  # layers take the dtype policy, variables the strategy, when built
        if cfg.data.tfrecord_dir:
            model, tokenizer = build_model(cfg.model, data.labels, task=task, tokenizer=data.tokenizer)
        else:
            model, tokenizer = build_model(cfg.model, data.labels, train_texts=data["train"]["text"], task=task)
    source = cfg.model.checkpoint or f"{cfg.model.architecture} from scratch"
    log.info("model: %s (%s), %s parameters", type(model).__name__, source, f"{model.count_params():,}")

    splits = ("train", "validation", "test") if "test" in data else ("train", "validation")
    windows: dict[str, Any] = {}
    if cfg.data.tfrecord_dir:
        datasets_ = data.tf_datasets(model, tokenizer, batch_size=batch_size, splits=splits,
                                     seed=cfg.training.seed, static_shapes=cfg.training.static_shapes)
        train_rows = data.num_rows("train")
    elif cfg.data.long_text == "chunk":
        from tfslm.inputs.chunking import chunked_tf_dataset

        datasets_ = []
        for split in splits:
            ds, windows[split] = chunked_tf_dataset(
                data[split], model, tokenizer, batch_size=batch_size, max_length=cfg.model.max_length,
                stride=cfg.data.chunk_stride, shuffle=(split == "train"),
            )
            datasets_.append(ds)
        log.info("long texts in windows: %s", ", ".join(f"{s} {len(windows[s])} windows" for s in splits))
        train_rows = len(windows["train"])
    else:
        datasets_ = to_tf_datasets(
            data, model, tokenizer, batch_size=batch_size, max_length=cfg.model.max_length, splits=splits,
            input_pipeline=cfg.training.input_pipeline, seed=cfg.training.seed, static_shapes=cfg.training.static_shapes,
        )
        train_rows = data["train"].num_rows
    train_ds, val_ds = datasets_[0], datasets_[1]
    cardinality = int(train_ds.cardinality())
    # Optimizer steps per epoch, each over one global batch: the schedule counts these.
    steps_per_epoch = cardinality if cardinality > 0 else math.ceil(train_rows / batch_size)
    with dist.scope():  # the optimizer's slots and the compiled metrics are created under the strategy
        compile_model(model, cfg.training, steps_per_epoch=steps_per_epoch, task=task, **perf.compile_options())

    # The resolved config and label space go in first, so an interrupted run says what it was.
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True))
    data.labels.save(run_dir / "labels.json")
    task.save(run_dir)

    # The backup outlives fit: a crash while evaluating or exporting then does not repeat the training.
    callbacks = cb.default_callbacks(run_dir, val_ds, data.labels, cfg.training, task, windows=windows.get("validation"),
                                     backup_dir=backup_dir, delete_backup=False)
    early_stopping = callbacks[1]
    backup = next(c for c in callbacks if isinstance(c, cb.TrainingBackup))
    history = _fit(model, dist, cfg, train_ds, val_ds, callbacks, verbose, steps_per_epoch=steps_per_epoch, position=position)

    from tfslm.publish.report import save_predictions

    metrics: dict[str, Any] = {}
    for split, split_ds in zip(splits[1:], datasets_[1:]):
        logits, y_true = collect_predictions(model, split_ds)
        if split in windows:
            from tfslm.training.evaluation import pool_document_outputs

            logits, y_true = pool_document_outputs(logits, y_true, windows[split], task)
        if split == "validation":  # decoding tuned on validation outputs (multi-label thresholds; a no-op for most tasks)
            task = task.fit_decoding(logits, y_true, data.labels)
            task.save(run_dir)
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
            "training": {
                "batch_size": per_replica_batch, "global_batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
                "seed": cfg.training.seed,
            },
            "distribution": dist.to_dict(per_replica_batch),
            "train_seconds": round(time.time() - started, 1),
            "speed": _speed_report(cfg, perf, train_ds),
        }
    )
    if backup.resumed_from:
        metrics["resumed_from"] = backup.resumed_from

    if perf.mixed_precision != "off":  # save and serve a float32 model, whatever it trained in
        model = float32_copy(model)
    save_pretrained(model, tokenizer, run_dir / "model")
    if cfg.export.saved_model:
        from tfslm.serving.saved_model import export_saved_model

        stride = cfg.data.chunk_stride if cfg.data.long_text == "chunk" else None
        info = export_saved_model(model, tokenizer, list(data.labels.names), cfg.model.max_length, run_dir / "saved_model",
                                  task=task, labels=data.labels, chunk_stride=stride)
        if info.get("note"):
            log.warning("saved_model: %s", info["note"])
        keys = ("signatures", "in_graph_tokenizer", "long_text", "chunk_stride", "pooling")
        metrics["saved_model"] = {k: info[k] for k in keys if k in info}
    atomic_write_json(run_dir / FINISHED_MARKER, metrics)
    if dist.is_chief:
        delete_backup(backup_dir)  # finished: nothing to resume
    from tfslm.publish.card import write_model_card

    write_model_card(run_dir)
    if not dist.is_chief:
        return TrainResult(run_dir=run_dir, metrics=metrics, history=dict(history.history), model=model, tokenizer=tokenizer, is_chief=False)
    try:
        from tfslm.publish.report import write_report

        write_report(run_dir)
    except Exception as exc:  # a plotting failure must not fail a finished training run
        log.warning("report: not written (%s: %s); run `tfslm report %s` to retry", type(exc).__name__, exc, run_dir)
    log.info("done in %.0fs: %s", metrics["train_seconds"], run_dir)
    if cfg.hub.push:
        # The run is complete on disk before any network call: a failed push loses nothing.
        from tfslm.publish.hub import push_run

        url = push_run(run_dir, cfg.hub.repo_id, private=cfg.hub.private, revision=cfg.hub.revision)
        log.info("pushed to %s", url)
    return TrainResult(run_dir=run_dir, metrics=metrics, history=dict(history.history), model=model, tokenizer=tokenizer)
