"""Consistency checks for ``tfslm prepare`` directories: arguments, output, format, config, tokenizer.

Each failure is one ConfigError (or RunDirError) line naming the key, what
was found and the fix; the writer and the reader call these before any
work, so nothing half-done is left behind.

Example:
    >>> check_prepare_arguments("prepared/qs", train_file="train.csv", shards=4, compression="GZIP")
    'gzip'
"""

from __future__ import annotations

from typing import Any, Sequence

from tfslm.errors import ConfigError, RunDirError
from tfslm.inputs.tfrecord_format import COMPRESSIONS, FORMAT, FORMAT_VERSION, op_message

__all__ = [
    "check_prepare_arguments",
    "check_output",
    "check_prepared_info",
    "check_config",
    "check_tokenizer",
    "check_edges",
]


def check_prepare_arguments(output: str | None, *, train_file: str | None, shards: Any, compression: Any) -> str:
    """``tfslm prepare``'s arguments; returns the compression, lower-cased."""
    if not output:
        raise ConfigError("--output: required (or set data.tfrecord_dir in the config); give a local directory or gs://bucket/path")
    if not train_file:
        raise ConfigError("data.train_file: required by `tfslm prepare`; give the CSV, TSV, JSON/JSONL or Parquet file to prepare")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"--shards: expected a positive integer, got {shards!r}; pass e.g. --shards 8 (the default)")
    compression = str(compression).lower()
    if compression not in COMPRESSIONS:
        raise ConfigError(
            f"--compression: got {compression!r}, expected one of: {', '.join(COMPRESSIONS)}; pass --compression none (the default) or gzip"
        )
    return compression


def check_output(output: str, overwrite: bool) -> None:
    """The output must be a directory that is absent, empty, or to be overwritten."""
    import tensorflow as tf

    try:
        exists = tf.io.gfile.exists(output)
        if exists and not tf.io.gfile.isdir(output):
            raise RunDirError(f"{output}: exists and is not a directory; choose another --output")
        if exists and tf.io.gfile.listdir(output) and not overwrite:
            raise RunDirError(f"{output}: not empty; pass --overwrite to replace it, or choose another --output")
    except tf.errors.OpError as exc:
        raise ConfigError(
            f"--output: cannot access {output} ({op_message(exc)}); check the path and your access to it "
            "(gs:// needs credentials on this machine), or choose another --output"
        ) from None


def check_prepared_info(info: dict[str, Any], present: set[str], *, directory: str, path: str, key: str) -> None:
    """``prepared.json`` is of the format this tfslm reads, and every shard it lists is there."""
    if info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{key}: {path} is format {info.get('format')!r} version {info.get('format_version')!r}; "
            f"this tfslm reads {FORMAT} version {FORMAT_VERSION}: run `tfslm prepare` again"
        )
    for split, entry in info["splits"].items():
        missing = [name for name in entry["shards"] if name not in present]
        if missing:
            raise ConfigError(f"{key}: {directory} lacks {len(missing)} {split} shard(s), e.g. {missing[0]}; copy the whole directory or run `tfslm prepare` again")


def check_config(cfg, info: dict[str, Any], directory: str) -> None:
    """What was fixed at prepare time must not silently differ from the training config."""
    again = "or run `tfslm prepare` again with this config"
    m = cfg.model
    if m.max_length != info["max_length"]:
        raise ConfigError(f"model.max_length: {m.max_length}, but was prepared with {info['max_length']} ({directory}); "
                          f"set model.max_length: {info['max_length']}, {again}")
    _check_task_and_labels(cfg, info, directory, again)
    _check_model(cfg, info["model"], directory, again)


def _check_task_and_labels(cfg, info: dict[str, Any], directory: str, again: str) -> None:
    from tfslm.tasks.base import Task

    prepared_task, task = info["task"], Task.from_config(cfg).to_dict()
    for name in ("problem_type", "target_names", "score_range", "score_step", "derive_total", "bins", "bin_width"):
        if prepared_task.get(name) != task.get(name):
            section = "model" if name == "problem_type" else "data"
            raise ConfigError(f"{section}.{name}: {task.get(name)!r}, but {directory} was prepared with {prepared_task.get(name)!r}; "
                              f"set it back, {again}")
    names = info["labels"]["names"]
    if cfg.data.labels is not None and [str(x) for x in cfg.data.labels] != list(names):
        raise ConfigError(f"data.labels: {cfg.data.labels}, but {directory} was prepared with {names}; set them back, {again}")
    ordered = Task.from_config(cfg).ordered_labels(cfg.data)
    if ordered is not None and bool(ordered) != bool(info["labels"].get("ordered")):
        raise ConfigError(f"data.ordered: {cfg.data.ordered!r}, but {directory} was prepared with ordered "
                          f"{bool(info['labels'].get('ordered'))}; set it back, {again}")


def _check_model(cfg, prepared_model: dict[str, Any], directory: str, again: str) -> None:
    m = cfg.model
    if m.checkpoint and prepared_model.get("architecture"):
        raise ConfigError(f"model.checkpoint: {m.checkpoint!r}, but {directory} was prepared with a from-scratch "
                          f"{prepared_model['architecture']} tokenizer; set model.architecture: {prepared_model['architecture']}, {again}")
    if m.architecture:
        if not prepared_model.get("architecture"):
            raise ConfigError(f"model.architecture: {m.architecture!r} from scratch, but {directory} was prepared with the tokenizer "
                              f"of checkpoint {prepared_model.get('checkpoint')!r}; use model.checkpoint, {again}")
        # The architecture too: a DistilBERT tokenizer is saved without token_type_ids, a BERT one with them.
        for name in ("architecture", "vocab_size", "lowercase"):
            if getattr(m, name) != prepared_model.get(name):
                raise ConfigError(f"model.{name}: {getattr(m, name)!r}, but the tokenizer in {directory} was built with "
                                  f"{prepared_model.get(name)!r}; set model.{name}: {prepared_model.get(name)!r}, {again}")


def check_tokenizer(info: dict[str, Any], directory: str, tokenizer) -> None:
    """``tokenizer`` must be the one the rows were prepared with (only a checkpoint brings its own)."""
    from tfslm.inputs.token_cache import tokenizer_fingerprint

    prepared = info["model"].get("tokenizer_fingerprint")
    if tokenizer is not None and prepared and tokenizer_fingerprint(tokenizer) != prepared:
        origin = info["model"].get("checkpoint") or f"{info['model'].get('architecture')} from scratch"
        raise ConfigError(
            f"model.checkpoint: its tokenizer differs from the one {directory} was prepared with ({origin}); "
            "train the checkpoint it was prepared for, or run `tfslm prepare` again with this config"
        )


def check_edges(edges: Sequence[int], split: str, longest: int) -> None:
    """The last bucket edge must hold the split's longest row."""
    cap = int(edges[-1])
    if longest > cap:
        raise ValueError(f"edges: the last edge {cap} is shorter than the longest {split} row ({longest})")
