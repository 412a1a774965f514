"""The main job: config -> data -> model -> fit -> evaluate -> a finished run directory.

Example:
    >>> result = train(load_config("configs/quickstart.yaml"))     # doctest: +SKIP
    >>> result.metrics["validation"]["accuracy"]                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfslm.atomic import make_temporary_sibling, replace_directory
from tfslm.config import Config, config_to_dict, hub_push_mode
from tfslm.errors import RemoteError, RunDirError, StorageError, UserError, storage_problem
from tfslm.run_dir import CONFIG_FILE, RunDir, write_yaml
from tfslm.training.interrupt import TrainingInterrupted

__all__ = ["train", "TrainResult", "set_seed", "is_finished_run"]

log = logging.getLogger("tfslm")

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
    """Seed Python, NumPy, TensorFlow (and the backend's Keras); with ``deterministic``, also make TF ops deterministic."""
    import tensorflow as tf

    from tfslm.backends import keras_module

    keras_module().utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def is_finished_run(run_dir: str | Path) -> bool:
    return RunDir(run_dir).is_finished()


def _check_destination(run: RunDir, overwrite: bool) -> None:
    """Refuse a run directory that is a file, lies under one, or holds what tfslm did not write."""
    for path in (run.root, *run.root.parents):
        if path.exists() and not path.is_dir():
            where = "" if path == run.root else f" ({path} is a file)"
            raise RunDirError(f"{run.root}: is not a directory{where}; choose another output_dir or run_name")
    if overwrite or not run.root.is_dir() or not any(run.root.iterdir()):
        return
    if not run.is_run():
        raise RunDirError(
            f"{run.root}: exists and is not a tfslm run (no {CONFIG_FILE}); choose another output_dir or run_name, "
            "or pass --overwrite to replace the directory"
        )
    foreign = run.foreign_entries()
    if foreign:
        raise RunDirError(
            f"{run.root}: holds {foreign[0].relative_to(run.root)}, which tfslm did not write; move it out of the run "
            "directory, or pass --overwrite to replace the directory"
        )
    if run.is_finished():
        raise RunDirError(f"{run.root}: holds a finished run; pass --overwrite to replace it, or set run_name to keep both")


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


def _fit(model, dist, cfg: Config, inputs, callbacks, verbose, *, position=None):
    """``model.fit``; in a cluster, a peer that died becomes one clear error instead of a stack of RPC failures.

    A training set of known size goes in as one stream over all epochs
    (:func:`tfslm.training.backup.training_stream`), so a resumed run continues with
    exactly the batches the interrupted one had left.
    """
    import tensorflow as tf

    from tfslm.training.backup import training_stream

    from tfslm.backends import get_backend

    train_ds, steps = inputs.train, None
    if int(train_ds.cardinality()) > 0:
        # Workers reading their own files (shard policy "file") each hold a share of the batches.
        shards = dist.num_workers if inputs.shard_policy == "file" else 1
        steps = inputs.steps_per_epoch
        train_ds = training_stream(train_ds, steps, position, file_shards=shards)
    get_backend().prepare_fit(model, train_ds)
    from tfslm.training.interrupt import graceful_stop

    try:
        with graceful_stop():  # SIGTERM/SIGINT: TrainingBackup backs up at the next step, then stops
            # shuffle=False: a tf.data stream is shuffled by the pipeline (Keras 3 warns about its default True).
            # No validation_data: ValidationMetrics scores the whole validation set once per epoch and sets every
            # val_ key (val_loss included); Keras' own pass would run the same forward again, for keys it overwrites.
            return model.fit(train_ds, epochs=cfg.training.epochs, steps_per_epoch=steps,
                             callbacks=callbacks, verbose=verbose, shuffle=False)
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError) as exc:
        if dist.num_workers < 2:
            raise
        from tfslm.errors import ClusterError

        raise ClusterError(
            f"worker {dist.worker_index}: another worker of the cluster stopped or is unreachable "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); restart every worker with the same "
            f"command and training resumes from {cfg.run_dir / 'backup'}"
        ) from None


def _speed_report(cfg: Config, perf, inputs) -> dict[str, Any]:
    stats = inputs.statistics
    out = {"input_pipeline": stats.pipeline, "static_shapes": cfg.training.static_shapes, **perf.to_dict()}
    out.update(stats.epoch_report())  # train_epoch and bucket_edges, where the pipeline measures padding
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
    from tfslm.backends import use_backend
    from tfslm.training.backup import has_backup
    from tfslm.training.distribute import resolve_strategy

    started = time.time()
    use_backend(cfg.model.backend)  # model.backend (auto resolved, logged): every get_backend() below is that one
    # First: splitting the CPU into replicas and connecting to a TPU must precede any other TF work.
    dist = resolve_strategy(cfg.training)
    if not dist.is_chief:  # other workers run every step (collectives need them) but keep nothing
        run_dir = Path(tempfile.mkdtemp(prefix=f"tfslm-worker{dist.worker_index}-"))
        try:
            return _train(cfg, dist, run_dir, started, overwrite=overwrite, verbose=verbose)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    run = RunDir(cfg.run_dir)
    _check_destination(run, overwrite)
    existed = run.root.exists()
    # --overwrite builds the new run beside the old one and swaps it in at the end, so an
    # interrupted --overwrite leaves the old run whole (one process only: a cluster's
    # workers restore from the chief's directory, so they train in place).
    staging = make_temporary_sibling(run.root) if overwrite and existed and dist.num_workers == 1 else None
    try:
        return _train(cfg, dist, staging or run.root, started, overwrite=overwrite, verbose=verbose, staged=staging is not None)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, TrainingInterrupted):  # nothing to resume: the old run is still in place
                raise TrainingInterrupted(exc.signum) from None
        elif not existed and not has_backup(run.backup):
            shutil.rmtree(run.root, ignore_errors=True)  # a failed first attempt leaves no empty run directory
        problem = storage_problem(exc, where=str(run.root)) if isinstance(exc, Exception) else None
        if problem:
            raise StorageError(problem) from None
        raise


def _train(cfg: Config, dist, run_dir: Path, started: float, *, overwrite: bool, verbose, staged: bool = False) -> TrainResult:
    """The steps of :func:`train`, in order; each writes what the next needs."""
    from tfslm.inputs.pipeline import build_inputs_from_config
    from tfslm.tasks.base import Task
    from tfslm.training.epoch_timing import timed_callbacks
    from tfslm.training.performance import resolve_performance

    position, batch_size = _start_run(cfg, dist, run_dir, overwrite, staged=staged)
    task = Task.from_config(cfg)
    data = _load_run_data(cfg, task)
    perf = resolve_performance(cfg.training, device=_device_for(dist))
    log.info("performance on %s: %s", perf.device_detail, ", ".join(f"{k} {getattr(perf, k)} ({v})" for k, v in perf.reasons.items()))
    model, tokenizer = _build_run_model(cfg, data, task, dist, perf)
    inputs = build_inputs_from_config(cfg, data, model, tokenizer, batch_size=batch_size)
    _warn_oversized_positions(cfg, inputs)
    _compile_run_model(model, cfg, dist, perf, task, inputs.steps_per_epoch)
    _write_run_header(run_dir, cfg, data, task)
    callbacks, early_stopping, backup = _run_callbacks(cfg, dist, run_dir, inputs, data, task)
    epoch_push = _epoch_push(cfg, dist, run_dir, data, task, tokenizer)
    timed, timing = timed_callbacks([*callbacks, epoch_push] if epoch_push else callbacks)  # logs each epoch's parts
    history = _fit(model, dist, cfg, inputs, timed, verbose, position=position)
    _restore_keras_ops(model)  # evaluated, saved and exported with Keras' own ops, as predict and serving run it
    served = _served_model(model)  # the best epoch's weights, in float32: what is saved, served and scored
    metrics, task = _evaluate_splits(served, inputs, data, task, run_dir)
    _evaluate_baseline(cfg, dist, data, Task.from_config(cfg), run_dir, metrics)  # untuned task: it fits its own decoding
    metrics.update(_run_summary(cfg, dist, perf, inputs, data, task, model, history, early_stopping, started))
    metrics.update(timing.summary())
    if backup is not None and backup.resumed_from:
        metrics["resumed_from"] = backup.resumed_from
    model = _save_and_export(cfg, run_dir, served, tokenizer, data, task, metrics)
    return _finish_run(cfg, dist, run_dir, metrics, history, model, tokenizer, staged=staged, epoch_push=epoch_push)


def _warn_oversized_positions(cfg: Config, inputs) -> None:
    """A from-scratch model sized for far longer texts than the data has trains a position table it never uses."""
    edges = inputs.statistics.bucket_edges
    if cfg.model.architecture and edges and cfg.model.max_length >= 2 * edges[-1]:
        log.warning(
            "model.max_length %d is far above the longest text (%d tokens, padded): from scratch, set model.max_length: %d "
            "for a smaller, faster position table", cfg.model.max_length, edges[-1], max(8, edges[-1]))


def _backup_dir(cfg: Config, dist, run_dir: Path) -> Path:
    # The chief's, also for the other workers: Keras restores them all from it.
    return RunDir(run_dir if dist.is_chief else cfg.run_dir).backup


def _start_run(cfg: Config, dist, run_dir: Path, overwrite: bool, *, staged: bool = False) -> tuple[dict | None, int]:
    """Make the run directory, decide on resuming, seed, log the strategy; returns ``(backup position, global batch)``."""
    from tfslm.training.backup import check_unfinished_run

    if dist.is_chief and hub_push_mode(cfg.hub) != "false":
        from tfslm.publish.hub import check_push

        check_push(cfg.hub.repo_id)  # a missing or rejected token fails now, not after training
    if dist.is_chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite and not staged and RunDir(run_dir).is_finished():
            # In place (a cluster): un-mark it first, so a crash from here on leaves a run that is clearly unfinished.
            RunDir(run_dir).metrics.unlink()
    position = None
    if not staged and (dist.is_chief or not overwrite):
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
    return position, batch_size


def _load_run_data(cfg: Config, task):
    """The data: tokens, labels and tokenizer from ``tfslm prepare`` (``data.tfrecord_dir``), or the files read and split."""
    if cfg.data.tfrecord_dir:
        from tfslm.inputs.tfrecord_reader import load_prepared

        data = load_prepared(cfg.data.tfrecord_dir, config=cfg)
    else:
        from tfslm.data.loading import load_data

        data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    summary = data.summary()
    log.info("data: %s", ", ".join(f"{s} {summary[s]['rows']} rows" for s in data.splits))
    if data.skipped:
        log.warning("skipped bad rows (data.on_bad_rows: skip): %s", data.skipped)
    log.info("labels (%d, %s%s): %s", data.labels.num_labels, data.labels.kind, ", ordered" if data.labels.ordered else "", ", ".join(data.labels.names[:20]))
    return data


def _model_source(cfg: Config) -> str:
    return cfg.model.checkpoint or f"{cfg.model.architecture} from scratch"


def _build_run_model(cfg: Config, data, task, dist, perf):
    """``(model, tokenizer)`` built under the dtype policy and the strategy (a prepared directory brings its tokenizer)."""
    from tfslm.backends import get_backend

    backend = get_backend()
    with perf.policy_scope(), dist.scope():  # layers take the dtype policy, variables the strategy, when built
        if cfg.data.tfrecord_dir:
            model, tokenizer = backend.build_model(cfg.model, data.labels, task=task, tokenizer=data.tokenizer)
        else:
            model, tokenizer = backend.build_model(cfg.model, data.labels, train_texts=data["train"]["text"], task=task)
        _seed_output_kernel(backend.output_dense(model), cfg.training.seed)
        bias = task.initial_output_bias(_train_targets(data))
        if bias is not None and backend.set_output_bias(model, bias):
            log.info("model: the head's output bias starts at the mean training target (%s)", ", ".join(f"{b:.3f}" for b in bias))
    log.info("model: %s (%s), %s parameters", type(model).__name__, _model_source(cfg), f"{model.count_params():,}")
    _use_fast_ops(model, perf, backend.name)
    if cfg.data.long_text == "document":
        model = _document_model(cfg, dist, perf, model)
    return model, tokenizer


def _seed_output_kernel(dense, seed: int, stddev: float = 0.02) -> None:
    """Draw the head's output kernel from ``training.seed`` with NumPy, so a seed starts the same head on either backend.

    Each backend's own initialiser (truncated normal, std 0.02, in both) draws from its own
    random stream; with this, the same config trains the same model on transformers and on
    keras_hub, up to their kernels' rounding (``tests/test_keras_hub.py``).
    """
    import numpy as np

    if dense is None:
        return
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in dense.kernel.shape)
    draw = rng.standard_normal(shape)
    while (outside := np.abs(draw) > 2.0).any():  # truncated at two standard deviations, as Keras' TruncatedNormal
        draw[outside] = rng.standard_normal(int(outside.sum()))
    dense.kernel.assign((stddev * draw).astype("float32"))


def _use_fast_ops(model, perf, backend_name: str) -> None:
    """``training.fast_dropout`` / ``fused_gelu`` / ``fused_attention``: cheaper kernels, swapped in place (undone before saving)."""
    from tfslm.training.attention import use_fused_attention
    from tfslm.training.dropout import use_fast_dropout
    from tfslm.training.gelu import use_fused_gelu

    for key, swap, what in (("fast_dropout", use_fast_dropout, "dropout layers draw byte masks"),
                            ("fused_gelu", use_fused_gelu, "GELU activations run fused"),
                            ("fused_attention", use_fused_attention, "self-attention layers run fused")):
        if getattr(perf, key):
            swapped = swap(model)
            log.info("%s: %d %s%s", key, swapped, what,
                     "" if swapped else f" (none found: the {backend_name} backend's layers are left as they are)")


def _restore_keras_ops(model) -> None:
    """Undo :func:`_use_fast_ops`: the saved model and the SavedModel hold plain Keras layers, and need no XLA."""
    from tfslm.training.attention import restore_attention
    from tfslm.training.dropout import restore_keras_dropout
    from tfslm.training.gelu import restore_gelu

    restore_keras_dropout(model)
    restore_gelu(model)
    restore_attention(model)


def _document_model(cfg: Config, dist, perf, model):
    """``data.long_text: document``: the window model wrapped to pool each document's windows (one replica only)."""
    from tfslm.backends import get_backend
    from tfslm.errors import ConfigError
    from tfslm.training.documents import DocumentModel

    if get_backend().name != "transformers":  # DocumentModel is a tf-keras Model
        raise ConfigError(f"data.long_text: document is not supported on the {get_backend().name} backend (DocumentModel is "
                          "built on tf-keras); use data.long_text: chunk, or model.backend: transformers")
    if dist.num_replicas > 1:  # a replica's share of a batch would cut documents from their labels
        raise ConfigError(f"data.long_text: document trains on one replica, got {dist.num_replicas} ({dist.kind}); "
                          "set training.strategy: gpu or cpu (one device)")
    with perf.policy_scope(), dist.scope():
        return DocumentModel(model, pooling=cfg.model.document_pooling)


def _compile_run_model(model, cfg: Config, dist, perf, task, steps_per_epoch: int) -> None:
    from tfslm.training.optimizer import compile_model

    with dist.scope():  # the optimizer's slots and the compiled metrics are created under the strategy
        compile_model(model, cfg.training, steps_per_epoch=steps_per_epoch, task=task, **perf.compile_options())


def _write_run_header(run_dir: Path, cfg: Config, data, task) -> None:
    """The resolved config and label space go in first, so an interrupted run says what it was."""
    write_yaml(RunDir(run_dir).config, config_to_dict(cfg))
    data.labels.save(run_dir / "labels.json")
    task.save(run_dir)


def _served_model(model):
    """The trained model in float32 (a twin with its weights when it trained in mixed precision): what is saved.

    ``metrics.json`` scores this model, so it describes what ``tfslm predict`` and the SavedModel
    serve. The epochs were scored on the training model itself (bf16 there): a float32 forward
    pass every epoch would double the validation's cost in a bf16 epoch (2.6 -> 5.2 s on the essays),
    so ``history.csv`` can differ from ``metrics.json`` by an output that rounds the other way.
    """
    from tfslm.training.float32_twin import Float32Twin

    return Float32Twin(model)(model)


def _run_callbacks(cfg: Config, dist, run_dir: Path, inputs, data, task):
    """``(callbacks, early stopping, backup)``: :func:`~tfslm.training.callbacks.default_callbacks`, picked out by type."""
    from tfslm.training import callbacks as cb

    backup_dir = _backup_dir(cfg, dist, run_dir)
    # The backup outlives fit: a crash while evaluating or exporting then does not repeat the training.
    callbacks = cb.default_callbacks(run_dir, inputs.validation, data.labels, cfg.training, task,
                                     windows=inputs.windows_of("validation"), backup_dir=backup_dir, delete_backup=False,
                                     train_targets=_train_targets(data))
    early_stopping = cb.find_callback(callbacks, cb.EarlyStoppingWithTieBreak)
    backup = cb.find_callback(callbacks, cb.TrainingBackup) if backup_dir is not None else None
    return callbacks, early_stopping, backup


def _epoch_push(cfg: Config, dist, run_dir: Path, data, task, tokenizer):
    """``hub.push: epoch``: the callback that pushes each improving epoch in the background (chief only); else None."""
    if hub_push_mode(cfg.hub) != "epoch" or not dist.is_chief:
        return None
    from tfslm.training.callbacks import resolve_monitor
    from tfslm.training.hub_push import EpochHubPush

    monitor, mode = resolve_monitor(cfg.training, data.labels, task)
    return EpochHubPush(run_dir, cfg.hub.repo_id, tokenizer, monitor=monitor, mode=mode, private=cfg.hub.private,
                        revision=cfg.hub.revision)


def _evaluate_splits(model, inputs, data, task, run_dir: Path):
    """``(metrics, task)``: every split but train (windows pooled per document), predictions saved for the report.

    The returned task carries the decoding fitted on the validation outputs, which export must use.
    """
    from tfslm.publish.report import save_predictions
    from tfslm.training.evaluation import collect_predictions, evaluate_predictions

    metrics: dict[str, Any] = {}
    for split in inputs.splits:
        if split == "train":
            continue
        logits, y_true = collect_predictions(model, inputs[split])
        windows = inputs.windows_of(split)
        if windows is not None:
            from tfslm.training.evaluation import pool_document_outputs

            logits, y_true = pool_document_outputs(logits, y_true, windows, task)
        if split == "validation":  # decoding tuned on validation outputs (multi-label thresholds; a no-op for most tasks)
            train_targets = _train_targets(data)
            if warning := task.flat_output_warning(logits, train_targets):
                log.warning("validation: %s", warning)
            task = task.fit_decoding(logits, y_true, data.labels, train_targets=train_targets)
            task.save(run_dir)
        metrics[split] = evaluate_predictions(logits, y_true, data.labels, with_confusion=True, task=task)
        rows = getattr(data, "rows", {}).get(split)  # file row numbers (a prepared directory keeps none)
        rows = rows if rows is not None and len(rows) == len(y_true) else None
        save_predictions(run_dir, split, logits, y_true, data.labels, task, rows=rows)  # for the report and `tfslm cv`
    return metrics, task


def _evaluate_baseline(cfg: Config, dist, data, task, run_dir: Path, metrics: dict[str, Any]) -> None:
    """``metrics["baseline"]``: TF-IDF + a linear model on the same split, decoded and evaluated like the model."""
    from tfslm.publish.markdown import headline_metric
    from tfslm.training.baseline import evaluate_baseline, fit_baseline

    if cfg.training.baseline == "none" or not dist.is_chief:
        return
    if getattr(data, "dataset", None) is None:
        log.info("baseline: skipped (data.tfrecord_dir holds token ids, not the texts TF-IDF needs)")
        return
    baseline = fit_baseline(data, task, seed=cfg.training.seed)
    metrics["baseline"] = evaluate_baseline(baseline, data, task, run_dir=run_dir)
    val, model_val = metrics["baseline"].get("validation", {}), metrics.get("validation", {})
    key = headline_metric(task.report_metric_keys, val)
    shown = f", val {key} {val[key]:.4g} (model {model_val.get(key, float('nan')):.4g})" if key else ""
    log.info("baseline: %s, %d features, fitted in %.1fs%s", baseline.method, baseline.num_features, baseline.fit_seconds, shown)


def _train_targets(data):
    """The training split's encoded targets (its ``label`` column), for decodings fitted to the training distribution."""
    import numpy as np

    dataset = getattr(data, "dataset", None)  # TextData; a prepared (TFRecord) directory keeps no label column in memory
    return np.asarray(dataset["train"]["label"]) if dataset is not None and "train" in dataset else None


def _run_summary(cfg: Config, dist, perf, inputs, data, task, model, history, early_stopping, started: float) -> dict[str, Any]:
    """``metrics.json``'s keys beside the split metrics: monitor, epochs, data, model, training, distribution, speed."""
    from tfslm.training.callbacks import resolve_monitor

    monitor, _ = resolve_monitor(cfg.training, data.labels, task)
    per_replica_batch = cfg.training.batch_size
    return {
        "monitor": monitor,
        "best_epoch": int(early_stopping.best_epoch) + 1,
        "epochs_trained": len(history.history.get("loss", [])),
        "early_stopped": bool(early_stopping.stopped_epoch),
        "data": data.summary(),
        "labels": list(data.labels.names),
        "problem_type": task.problem_type,
        **({"decoding": decoding} if (decoding := task.decoding_summary()) else {}),
        "model": {"source": _model_source(cfg), "type": type(model).__name__, "parameters": int(model.count_params())},
        "training": {
            "batch_size": per_replica_batch, "global_batch_size": inputs.batch_size, "steps_per_epoch": inputs.steps_per_epoch,
            "seed": cfg.training.seed,
        },
        "distribution": dist.to_dict(per_replica_batch),
        "train_seconds": round(time.time() - started, 1),
        "speed": _speed_report(cfg, perf, inputs),
    }


def _save_and_export(cfg: Config, run_dir: Path, model, tokenizer, data, task, metrics: dict[str, Any]):
    """``model/`` (float32 whatever it trained in) and, with ``export.saved_model``, ``saved_model/``; returns the saved model."""
    from tfslm.backends import get_backend
    from tfslm.training.documents import window_model_of
    from tfslm.training.float32_twin import computes_in_float32
    from tfslm.training.performance import float32_copy

    model = window_model_of(model)  # a document run saves and serves its window model; pooling is in the graph
    if not computes_in_float32(model):  # save and serve a float32 model, whatever it trained in (a TPU run gets here)
        model = float32_copy(model)
    get_backend().save_pretrained(model, tokenizer, run_dir / "model")
    if cfg.export.saved_model:
        from tfslm.serving.saved_model import export_saved_model

        stride = cfg.data.chunk_stride if cfg.data.long_text in ("chunk", "document") else None
        document = cfg.data.long_text == "document"
        info = export_saved_model(model, tokenizer, list(data.labels.names), cfg.model.max_length, run_dir / "saved_model",
                                  task=task, labels=data.labels, chunk_stride=stride, document=document,
                                  max_windows=cfg.data.max_windows if document else None,
                                  tokenizer_ops=cfg.export.tokenizer_ops)
        if info.get("note"):
            log.warning("saved_model: %s", info["note"])
        keys = ("signatures", "in_graph_tokenizer", "tokenizer_ops", "long_text", "chunk_stride", "max_windows", "pooling")
        metrics["saved_model"] = {k: info[k] for k in keys if k in info}
    return model


def _finish_run(cfg: Config, dist, run_dir: Path, metrics: dict[str, Any], history, model, tokenizer, *, staged: bool = False,
                epoch_push=None) -> TrainResult:
    """``metrics.json`` (the run is finished), the backup deleted, the card, the report, the swap, the push."""
    from tfslm.publish.card import write_model_card
    from tfslm.training.backup import delete_backup

    RunDir(run_dir).write_metrics(metrics)
    if dist.is_chief:
        delete_backup(_backup_dir(cfg, dist, run_dir))  # finished: nothing to resume
    write_model_card(run_dir)
    result = TrainResult(run_dir=run_dir, metrics=metrics, history=dict(history.history), model=model, tokenizer=tokenizer,
                         is_chief=dist.is_chief)
    if not dist.is_chief:
        return result
    if staged:  # --overwrite: the finished new run replaces the old one in one step
        replace_directory(run_dir, cfg.run_dir)
        result.run_dir = run_dir = cfg.run_dir
    _write_report_or_warn(run_dir)
    log.info("done in %.0fs: %s", metrics["train_seconds"], run_dir)
    if epoch_push is not None:  # evaluation and export overlapped the last epoch's upload; the final push lands after it
        epoch_push.wait()
    if hub_push_mode(cfg.hub) != "false":
        _push_finished_run(cfg, run_dir)
    return result


def _write_report_or_warn(run_dir: Path) -> None:
    from tfslm.publish.report import write_report

    try:
        write_report(run_dir)
    except Exception as exc:  # a plotting failure must not fail a finished training run
        log.warning("report: not written (%s: %s); run `tfslm report %s` to retry", type(exc).__name__, exc, run_dir)


def _push_finished_run(cfg: Config, run_dir: Path) -> None:
    """The run is complete on disk before any network call: a failed push loses nothing and says how to retry."""
    from tfslm.publish.hub import push_run

    try:
        url = push_run(run_dir, cfg.hub.repo_id, private=cfg.hub.private, revision=cfg.hub.revision)
    except (UserError, RemoteError) as exc:
        retry = f"tfslm push {run_dir} --repo-id {cfg.hub.repo_id}" + (" --private" if cfg.hub.private else "") + (
            f" --revision {cfg.hub.revision}" if cfg.hub.revision else "")
        raise type(exc)(f"{exc}; the run is complete in {run_dir}: retry the upload with `{retry}`") from None
    log.info("pushed to %s", url)
