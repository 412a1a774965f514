"""Configuration: flat dataclass sections mirroring the YAML, validated on load.

A config file has three one-level sections (``data``, ``model``, ``training``)
and two top-level keys (``output_dir``, ``run_name``). Unknown keys, wrong
types and out-of-range values raise :class:`~tfslm.errors.ConfigError` naming
the key and what is valid.

Example:
    >>> cfg = load_config("configs/quickstart.yaml", overrides=["training.epochs=1"])  # doctest: +SKIP
    >>> cfg.training.epochs                                                          # doctest: +SKIP
    1
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from tfslm.errors import ConfigError, one_line

__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainingConfig",
    "ExportConfig",
    "HubConfig",
    "ZeroShotConfig",
    "hub_push_mode",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "resolve_path",
]

ARCHITECTURES = ("bert", "distilbert", "electra")
BACKENDS = ("auto", "transformers", "keras_hub")  # tfslm.backends: the model family behind model.*
SCHEDULES = ("linear", "cosine", "polynomial", "constant")
LABEL_TYPES = ("auto", "categorical", "numeric")
BAD_ROW_POLICIES = ("error", "skip")
ORDINAL_DECODINGS = ("argmax", "expected_value")
LONG_TEXT_POLICIES = ("truncate", "chunk", "document")
DOCUMENT_POOLINGS = ("mean",)
INPUT_PIPELINES = ("bucketed", "prepare_tf_dataset")
STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION = ("auto", "off", "bf16", "fp16")
BASELINES = ("tfidf", "none")
TOKENIZER_OPS = ("auto", "core", "tf_text")
RESOURCE_SCHEME = "tfslm:"


@dataclass
class DataConfig:
    """Where the texts and labels come from and how to read them."""

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    validation_split: float = 0.1
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = None
    # multi_label_classification: joins several labels in one cell ("sports,food"); list cells need none.
    label_separator: str = ","
    label_type: str = "auto"
    ordered: bool | None = None
    on_bad_rows: str = "error"
    encoding: str = "utf-8"
    # Scores (see tfslm.tasks.base): range and grid of the original scale, list-valued
    # targets, derived total, and bands for classifying scores.
    score_range: list[float] | None = None
    score_step: float | None = None
    # How scores are decoded (tfslm.tasks.score_decoding): round | stretch | thresholds; None: stretch.
    score_decoding: str | None = None
    target_names: list[str] | None = None
    derive_total: bool = False
    bins: list[float] | None = None
    bin_width: float | None = None
    long_text: str = "truncate"
    chunk_stride: int = 128
    # long_text document: windows kept per document (evenly spaced, first and last included; null: all).
    max_windows: int | None = 8
    # Train from the sharded TFRecords that `tfslm prepare` wrote (a local path or gs://...).
    tfrecord_dir: str | None = None
    # Cross-validation (`tfslm cv`): the training file in `folds` stratified folds; fold `fold` is the test split.
    folds: int | None = None
    fold: int | None = None


@dataclass
class ModelConfig:
    """Which network to fine-tune: a pretrained ``checkpoint`` or a from-scratch ``architecture``."""

    checkpoint: str | None = None
    architecture: str | None = None
    max_length: int = 128
    vocab_size: int = 8000
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    intermediate_size: int = 512
    # None: a checkpoint keeps its own dropout rates; from scratch 0.1. A number overrides the hidden-state
    # and attention dropout of either; attention_dropout (None: as dropout) overrides the attention's alone.
    # attention_dropout auto: 0 when fine-tuning a checkpoint on the transformers backend (the attention
    # probabilities' dropout was a quarter of a CPU epoch, and the essays' validation loss held: docs/speed-notes.md),
    # else as dropout.
    dropout: float | None = None
    attention_dropout: float | str | None = "auto"
    lowercase: bool = True
    problem_type: str = "single_label_classification"
    ordinal_decoding: str = "argmax"
    document_pooling: str = "mean"  # data.long_text document: how a document's windows become one output
    # auto: transformers while it is installed with its TF classes (4.x), else keras_hub (KerasHub on Keras 3).
    backend: str = "auto"


@dataclass
class TrainingConfig:
    """How to fit: optimizer schedule, batch size, epochs, early stopping, seed."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    schedule: str = "linear"
    seed: int = 42
    early_stopping_patience: int | None = 2
    # Early stopping neither stops nor picks a best epoch before this many epochs: on a small
    # validation set (74 essays) the first epochs' metric is noise around the mean.
    min_epochs: int = 0
    monitor: str = "auto"
    deterministic: bool = True
    # Speed (tfslm/bucketing.py, tfslm/performance.py): "auto" is decided per device.
    input_pipeline: str = "bucketed"
    static_shapes: bool = False
    # Training batches of rows sorted by length (less padding); auto: from 16 batches per epoch, since
    # with fewer each length-sorted batch (and so, where length and label correlate, label-sorted) weighs more.
    group_by_length: bool | str = "auto"
    steps_per_execution: int | str = "auto"
    jit_compile: bool | str = "auto"
    mixed_precision: str | bool = "auto"
    # Dropout masks from one random byte per element (tfslm/training/dropout.py); auto: on unless XLA compiles the model.
    fast_dropout: bool | str = "auto"
    # The exact GELU as one fused XLA loop each way, in float32 (tfslm/training/gelu.py); auto: as fast_dropout.
    fused_gelu: bool | str = "auto"
    # BERT-family self-attention with the softmax's gradient one XLA loop (tfslm/training/attention.py); auto: as fast_dropout.
    fused_attention: bool | str = "auto"
    # Scale-out (tfslm/distribute.py): batch_size is per replica; the global batch is
    # batch_size x replicas. cpu_replicas splits the CPU into logical devices (testing).
    strategy: str = "auto"
    tpu: str | None = None
    cpu_replicas: int | None = None
    # Preemption: a backup under run_dir/backup every epoch and every N optimizer steps.
    backup_every_steps: int | None = 500
    # A TF-IDF + linear model fitted on the same split and reported beside the model (tfslm/training/baseline.py).
    baseline: str = "tfidf"


@dataclass
class ExportConfig:
    """What ``tfslm train`` exports besides ``model/``."""

    saved_model: bool = True
    # The raw-text signatures' WordPiece: core TF ops (stock TF Serving), tensorflow-text's op, or auto.
    tokenizer_ops: str = "auto"


@dataclass
class HubConfig:
    """Push the finished run to a Hub repository (the token comes from HF_TOKEN, never from here)."""

    push: bool | str = False  # false | end (true) | epoch: also the best-so-far model after each improving epoch
    repo_id: str | None = None
    private: bool = False
    revision: str | None = None


@dataclass
class ZeroShotConfig:
    """``tfslm zero-shot``: score the splits with no training (NLI or sentence-embedding checkpoint)."""

    method: str = "auto"  # auto (an entailment label in config.json: nli, else embedding) | nli | embedding
    checkpoint: str | None = None  # a model directory or hub id (--checkpoint)
    template: str | None = None  # "{}" or "{label}" marks the label; None: "This text is {}."
    label_descriptions: list[str] | None = None  # one per data.labels entry (embedding), instead of the template
    temperature: float = 0.05  # embedding: softmax(cosine / temperature)
    batch_size: int = 32
    max_length: int = 256


@dataclass
class Config:
    """A whole run: data, model, training, and where its run directory goes."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    zero_shot: ZeroShotConfig = field(default_factory=ZeroShotConfig)
    output_dir: str = "runs"
    run_name: str | None = None

    @property
    def run_dir(self) -> Path:
        """``output_dir/run_name``: where ``tfslm train`` writes its artefacts."""
        return Path(self.output_dir) / (self.run_name or "run")


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "export": ExportConfig,
    "hub": HubConfig,
    "zero_shot": ZeroShotConfig,
}
TOP_LEVEL_KEYS = ("output_dir", "run_name")
_SECTION_FIX = "indent its keys below the section name (e.g. `training:` then `  epochs: 3`), or leave it out for the defaults"


# ---------------------------------------------------------------- type checks
def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in typing.get_args(annotation) else "")
    if origin is list:
        item = typing.get_args(annotation)[0]
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}.get(item, str(item))
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(annotation, str(annotation))


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is not None and type(None) in typing.get_args(annotation):
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _coerce(key, value, inner[0] if len(inner) == 1 else typing.Union[tuple(inner)])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        arms = typing.get_args(annotation)
        for arm in sorted(arms, key=lambda a: a is not type(value)):  # an exact type match first
            try:
                return _coerce(key, value, arm)
            except ConfigError:
                continue
        raise ConfigError(
            f"{key}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__}); {_how_to_write(key, annotation)}"
        )
    expected = _type_name(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and item_type is str:
            # `--set data.labels=a` is a list of one; a bare comma list is split for convenience.
            value = [v.strip() for v in str(value).split(",")] if isinstance(value, str) else [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {expected}, got {value!r}; write it as [a, b, c]")
        items = []
        for item in value:
            if item_type is str and isinstance(item, (int, float)) and not isinstance(item, bool):
                item = _number_to_text(item)
            if item_type is str and not isinstance(item, str):
                raise ConfigError(f"{key}: expected {expected}, got item {item!r}; write each item as plain text, e.g. [a, b, c]")
            items.append(item)
        return items
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # YAML 1.1 reads "5e-5" (no dot) as a string
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key}: expected {expected}, got {value!r} ({type(value).__name__}); {_how_to_write(key, annotation)}")


def _how_to_write(key: str, annotation: Any) -> str:
    """The fix of a value of the wrong type: how to write one of the right type, with the key's default as the example."""
    default = _default(key)
    example = "" if default is None or isinstance(default, (list, dict)) else f", e.g. {_yaml_text(default)} (the default)"
    if annotation is bool:
        return f"write true or false{example}"
    if annotation in (int, float):
        return f"write {_type_name(annotation)} without quotes or units{example}"
    if annotation is str:
        return f"write a single text value{example}"
    return f"write {_type_name(annotation)}{example}"


def _default(key: str) -> Any:
    """The default value of a ``section.key`` or top-level key; None when it has none."""
    section, _, name = key.rpartition(".")
    cls = SECTIONS.get(section) if section else Config
    if cls is None:
        return None
    for f in dataclasses.fields(cls):
        if f.name == name and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _yaml_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _number_to_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _choice(key: str, value: str | None, choices: Iterable[str], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}: got {value!r}, expected one of: {', '.join(choices)}; use {_suggest(key, value, choices)}")


def _suggest(key: str, value: Any, choices: list[str]) -> str:
    """The choice closest to a misspelt value, else the key's default (or the first choice)."""
    import difflib

    close = difflib.get_close_matches(str(value), choices, n=1)
    if close:
        return f"{close[0]} (the closest)"
    default = _default(key)
    return f"e.g. {default} (the default)" if default in choices else f"e.g. {choices[0]}"


def _section_from_dict(name: str, cls: type, values: Any) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{name}: expected a mapping of keys, got {type(values).__name__}; {_SECTION_FIX}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"unknown key {name}.{key}; valid keys in '{name}': {', '.join(valid)}")
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field rules; raise ConfigError naming the key."""
    d, m, t = cfg.data, cfg.model, cfg.training
    _validate_data(d)
    _validate_task(d, m)
    _validate_score_grid(d)
    _validate_model(m)
    _validate_training(t)
    _validate_speed(t)
    _validate_scale_out(t)
    if d.long_text == "document":
        _validate_documents(t)
    if d.long_text == "chunk" and t.group_by_length is True:
        raise ConfigError("training.group_by_length: not available with data.long_text: chunk (its windows are batched by "
                          "transformers' collator, nearly all of one length); set training.group_by_length: auto, or data.long_text: document")
    if d.tfrecord_dir is not None:
        _validate_tfrecords(d, t)
    _choice("export.tokenizer_ops", cfg.export.tokenizer_ops, TOKENIZER_OPS)
    _validate_hub_and_zero_shot(cfg)
    if cfg.run_name is not None and (not cfg.run_name or "/" in cfg.run_name or cfg.run_name in (".", "..")):
        raise ConfigError(f"run_name: expected a plain directory name, got {cfg.run_name!r}; use a name without '/', e.g. sentiment-v1")
    return cfg


HUB_PUSH = ("false", "end", "epoch")
ZERO_SHOT_METHODS = ("auto", "nli", "embedding")


def hub_push_mode(hub: HubConfig) -> str:
    """``hub.push`` as one of ``false``, ``end``, ``epoch`` (``true`` is ``end``, as in older configs)."""
    return {True: "end", False: "false"}.get(hub.push, hub.push) if isinstance(hub.push, bool) else str(hub.push).lower()


def _validate_hub_and_zero_shot(cfg: Config) -> None:
    if hub_push_mode(cfg.hub) not in HUB_PUSH:
        raise ConfigError(f"hub.push: got {cfg.hub.push!r}, expected false, end (or true) or epoch; "
                          "use end to push once after training, epoch to push each improving epoch too")
    if hub_push_mode(cfg.hub) != "false" and not cfg.hub.repo_id:
        raise ConfigError(f"hub.repo_id: required when hub.push is {cfg.hub.push!r}; give owner/name")
    z = cfg.zero_shot
    _choice("zero_shot.method", z.method, ZERO_SHOT_METHODS)
    if not (z.temperature > 0):
        raise ConfigError(f"zero_shot.temperature: expected a number > 0, got {z.temperature}; use e.g. 0.05 (the default)")
    _positive("zero_shot.batch_size", z.batch_size)
    _positive("zero_shot.max_length", z.max_length, 2)
    if z.template is not None and "{}" not in z.template and "{label}" not in z.template:
        raise ConfigError(f"zero_shot.template: {z.template!r} has no {{}} or {{label}} for the label; "
                          "write e.g. 'This text is {}.'")


def _validate_data(d: DataConfig) -> None:
    if not d.train_file and not d.tfrecord_dir:
        raise ConfigError(
            "data.train_file: required; give a CSV, TSV, JSON/JSONL or Parquet file "
            "(or data.tfrecord_dir: a directory written by `tfslm prepare`)"
        )
    if not 0.0 < d.validation_split < 1.0:
        raise ConfigError(f"data.validation_split: expected a fraction between 0 and 1 (exclusive), got {d.validation_split}; use e.g. 0.1")
    _choice("data.label_type", d.label_type, LABEL_TYPES)
    _choice("data.on_bad_rows", d.on_bad_rows, BAD_ROW_POLICIES)
    if d.labels is not None:
        if len(d.labels) < 2:
            raise ConfigError(
                f"data.labels: expected at least 2 label names, got {d.labels}; list every class, e.g. [negative, positive], "
                "or leave data.labels out to take the labels from the training data"
            )
        dupes = sorted({x for x in d.labels if d.labels.count(x) > 1})
        if dupes:
            raise ConfigError(f"data.labels: duplicate label names {dupes}; list each label once")
    if not d.text_column or not d.label_column:
        raise ConfigError(
            f"data.text_column and data.label_column: expected non-empty column names, got {d.text_column!r} and "
            f"{d.label_column!r}; set them to header names of the data file, e.g. text and label"
        )
    if d.validation_file and d.train_file and _same_file(d.validation_file, d.train_file):
        raise ConfigError(
            f"data.validation_file: {d.validation_file} is data.train_file too, so validation would score rows the model "
            "trained on; give a separate file, or leave validation_file out to split off data.validation_split"
        )
    try:
        "".encode(d.encoding)
    except LookupError:
        raise ConfigError(f"data.encoding: unknown encoding {d.encoding!r}; use e.g. utf-8, latin-1, cp1252") from None
    _validate_folds(d)


def _validate_folds(d: DataConfig) -> None:
    """Cross-validation keys: a fold of the training file replaces data.test_file."""
    if d.folds is None:
        if d.fold is not None:
            raise ConfigError(f"data.fold: {d.fold} given without data.folds; set data.folds (e.g. 5), or leave data.fold out")
        return
    if d.folds < 2:
        raise ConfigError(f"data.folds: expected an integer >= 2, got {d.folds}; use e.g. 5, or null for no cross-validation")
    if d.fold is None or not 1 <= d.fold <= d.folds:
        got = "none" if d.fold is None else d.fold
        raise ConfigError(f"data.fold: expected the held-out fold, 1 to {d.folds} (data.folds), got {got}; "
                          "or run `tfslm cv CONFIG --folds K`, which sets it per fold")
    if d.test_file:
        raise ConfigError(f"data.test_file: {d.test_file} set with data.folds; the held-out fold is the test split; "
                          "remove data.test_file")
    if d.tfrecord_dir:
        raise ConfigError("data.folds: not available with data.tfrecord_dir (prepared splits are fixed); "
                          "train from data.train_file, or remove data.folds")


def _validate_score_grid(d: DataConfig) -> None:
    """A score grid must run from the low end to the high end of the range in whole steps."""
    if d.score_step is None or d.score_range is None:
        return
    low, high = d.score_range
    steps = (high - low) / d.score_step
    if abs(steps - round(steps)) > 1e-6:
        span = high - low
        divides = [s for s in (1, 2, 4, 5, 10, 20, 25, 40, 50, 100) if s <= d.score_step and abs(span / s - round(span / s)) < 1e-9]
        hint = f", e.g. {divides[-1]}" if divides else ""
        raise ConfigError(
            f"data.score_step: {d.score_step:g} does not divide data.score_range {_number_to_text(low)}..{_number_to_text(high)} "
            f"({steps:.3g} steps), so the grid would miss the top score; use a step that divides {_number_to_text(span)}{hint}"
        )


def _validate_model(m: ModelConfig) -> None:
    if bool(m.checkpoint) == bool(m.architecture):
        raise ConfigError(
            "model: set exactly one of model.checkpoint (a hub id or local directory to fine-tune) "
            f"or model.architecture (train from scratch: {', '.join(ARCHITECTURES)}); "
            f"got checkpoint={m.checkpoint!r}, architecture={m.architecture!r}"
        )
    _choice("model.architecture", m.architecture, ARCHITECTURES, allow_none=True)
    _choice("model.backend", m.backend, BACKENDS)
    _positive("model.max_length", m.max_length, minimum=8)
    _positive("model.vocab_size", m.vocab_size, minimum=100)
    _positive("model.hidden_size", m.hidden_size)
    _positive("model.num_layers", m.num_layers)
    _positive("model.num_heads", m.num_heads)
    _positive("model.intermediate_size", m.intermediate_size)
    if m.hidden_size % m.num_heads:
        heads = max(h for h in range(1, m.num_heads + 1) if m.hidden_size % h == 0)
        raise ConfigError(
            f"model.hidden_size: {m.hidden_size} must be a multiple of model.num_heads ({m.num_heads}); use e.g. "
            f"model.hidden_size {-(-m.hidden_size // m.num_heads) * m.num_heads} or model.num_heads {heads}"
        )
    for key in ("dropout", "attention_dropout"):
        value = getattr(m, key)
        if key == "attention_dropout" and isinstance(value, str) and value.lower() == "auto":
            m.attention_dropout = "auto"
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0):
            also = ", auto (the default: off for a checkpoint)" if key == "attention_dropout" else ""
            raise ConfigError(f"model.{key}: expected 0 <= {key} < 1{also} or null (the checkpoint's own), got {value!r}; "
                              "use e.g. 0.1, or 0 for none")


def _validate_training(t: TrainingConfig) -> None:
    _positive("training.epochs", t.epochs)
    _positive("training.batch_size", t.batch_size)
    if not (t.learning_rate > 0 and math.isfinite(t.learning_rate)):
        raise ConfigError(
            f"training.learning_rate: expected a positive number, got {t.learning_rate}; "
            "use e.g. 3e-5 for a checkpoint or 1e-3 from scratch"
        )
    if not 0.0 <= t.warmup_ratio < 1.0:
        raise ConfigError(f"training.warmup_ratio: expected 0 <= warmup_ratio < 1, got {t.warmup_ratio}; use e.g. 0.1, or 0 for none")
    if t.weight_decay < 0:
        raise ConfigError(f"training.weight_decay: expected >= 0, got {t.weight_decay}; use e.g. 0.01, or 0 for none")
    _choice("training.schedule", t.schedule, SCHEDULES)
    if t.early_stopping_patience is not None:
        _positive("training.early_stopping_patience", t.early_stopping_patience)
    if isinstance(t.min_epochs, bool) or not isinstance(t.min_epochs, int) or t.min_epochs < 0:
        raise ConfigError(f"training.min_epochs: expected an integer >= 0, got {t.min_epochs!r}; use e.g. 2, or 0 to watch every epoch")
    if t.monitor != "auto" and not (t.monitor.startswith("val_") or t.monitor == "loss"):
        raise ConfigError(
            f"training.monitor: got {t.monitor!r}; use auto or a validation metric: "
            "val_loss, val_accuracy, val_macro_f1, val_qwk, val_mae, val_rmse"
        )
    if t.seed < 0:
        raise ConfigError(f"training.seed: expected a non-negative integer, got {t.seed}; use e.g. 42")
    if t.baseline not in BASELINES:
        raise ConfigError(
            f"training.baseline: got {t.baseline!r}, expected one of: {', '.join(BASELINES)}; "
            "use tfidf (the default: a TF-IDF + linear model beside the fine-tuned one) or none to skip it"
        )


def _numbers(key: str, values: list) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{key}: expected a list of numbers, got item {v!r}; write every item as a plain number, e.g. [0, 10]")
        out.append(float(v))
    return out


def _validate_task(d: DataConfig, m: ModelConfig) -> None:
    """Cross-field rules of the task keys; the problem type's own rules are its task class's (tfslm/tasks/)."""
    from tfslm.tasks.base import problem_types, task_class

    _choice("model.problem_type", m.problem_type, problem_types())
    _choice("model.ordinal_decoding", m.ordinal_decoding, ORDINAL_DECODINGS)
    _choice("data.long_text", d.long_text, LONG_TEXT_POLICIES)
    if d.score_decoding is not None:
        from tfslm.tasks.score_decoding import SCORE_DECODINGS

        _choice("data.score_decoding", d.score_decoding, SCORE_DECODINGS)
    _choice("model.document_pooling", m.document_pooling, DOCUMENT_POOLINGS)
    if d.max_windows is not None and (isinstance(d.max_windows, bool) or not isinstance(d.max_windows, int) or d.max_windows < 1):
        raise ConfigError(f"data.max_windows: expected an integer >= 1 or null (every window), got {d.max_windows!r}; use e.g. 8 (the default)")
    if d.chunk_stride < 1:
        raise ConfigError(f"data.chunk_stride: expected an integer >= 1, got {d.chunk_stride}; use e.g. 128 (the default)")
    if d.score_range is not None:
        d.score_range = _numbers("data.score_range", d.score_range)
        if len(d.score_range) != 2 or not d.score_range[0] < d.score_range[1]:
            raise ConfigError(f"data.score_range: expected [low, high] with low < high, got {d.score_range}; use e.g. [0, 5]")
    if d.score_step is not None and not (d.score_step > 0 and math.isfinite(d.score_step)):
        raise ConfigError(
            f"data.score_step: expected a positive number, got {d.score_step}; use e.g. 1 for whole-number scores, or leave it out"
        )
    if d.bins is not None and d.bin_width is not None:
        raise ConfigError(
            f"data.bins and data.bin_width: both set, got bins {d.bins} and bin_width {d.bin_width}; "
            "set one of them (band edges, or a band width) and remove the other"
        )
    if not isinstance(d.label_separator, str) or not d.label_separator.strip():
        raise ConfigError(
            f"data.label_separator: expected a non-empty string such as \",\" or \"|\", got {d.label_separator!r}; "
            "set it to the character between the labels of a cell, e.g. \"|\""
        )
    task_class(m.problem_type).validate_config(d, m)
    if d.bins is not None:
        d.bins = _numbers("data.bins", d.bins)
        if len(d.bins) < 3 or any(b <= a for a, b in zip(d.bins, d.bins[1:])):
            raise ConfigError(f"data.bins: expected at least 3 increasing band edges (2 bands), got {d.bins}; use e.g. [0, 50, 100]")
    if d.bin_width is not None and not (d.bin_width > 0 and math.isfinite(d.bin_width)):
        raise ConfigError(f"data.bin_width: expected a positive number, got {d.bin_width}; use e.g. 10, or leave it out")
def _validate_speed(t: TrainingConfig) -> None:
    """The throughput keys; ``auto`` values are resolved per device in tfslm/performance.py."""
    _choice("training.input_pipeline", t.input_pipeline, INPUT_PIPELINES)
    if t.mixed_precision is False:  # YAML 1.1 reads a bare `off` as false
        t.mixed_precision = "off"
    if t.mixed_precision not in MIXED_PRECISION:
        raise ConfigError(
            f"training.mixed_precision: got {t.mixed_precision!r}, expected one of: {', '.join(MIXED_PRECISION)}; "
            "use auto (chosen per device) or off"
        )
    if isinstance(t.jit_compile, str):
        words = {"true": True, "false": False, "on": True, "off": False, "auto": "auto"}
        if t.jit_compile.lower() not in words:
            raise ConfigError(f"training.jit_compile: got {t.jit_compile!r}, expected one of: auto, true, false; use auto (the default)")
        t.jit_compile = words[t.jit_compile.lower()]
    for key in ("fast_dropout", "fused_gelu", "fused_attention", "group_by_length"):
        value = getattr(t, key)
        if isinstance(value, str):
            words = {"true": True, "false": False, "on": True, "off": False, "auto": "auto"}
            if value.lower() not in words:
                raise ConfigError(f"training.{key}: got {value!r}, expected one of: auto, true, false; use auto (the default)")
            setattr(t, key, words[value.lower()])
    if isinstance(t.steps_per_execution, str):
        if t.steps_per_execution.strip().isdigit():
            t.steps_per_execution = int(t.steps_per_execution)
        elif t.steps_per_execution != "auto":
            raise ConfigError(
                f"training.steps_per_execution: got {t.steps_per_execution!r}, expected auto or an integer >= 1; "
                "use auto (the default) or e.g. 32"
            )
    if t.steps_per_execution != "auto" and t.steps_per_execution < 1:
        raise ConfigError(
            f"training.steps_per_execution: got {t.steps_per_execution}, expected auto or an integer >= 1; "
            "use auto (the default) or e.g. 32"
        )
    if t.static_shapes and t.input_pipeline != "bucketed":
        raise ConfigError(
            f"training.static_shapes: needs training.input_pipeline: bucketed (prepare_tf_dataset pads each batch to its longest row), "
            f"got {t.input_pipeline}; set training.input_pipeline: bucketed, or training.static_shapes: false"
        )
    if t.group_by_length is True and t.input_pipeline != "bucketed":
        raise ConfigError(
            f"training.group_by_length: needs training.input_pipeline: bucketed (prepare_tf_dataset batches random rows), "
            f"got {t.input_pipeline}; set training.input_pipeline: bucketed, or training.group_by_length: auto"
        )


def _validate_scale_out(t: TrainingConfig) -> None:
    """The distribution and preemption keys; the strategy itself is resolved in tfslm/distribute.py."""
    _choice("training.strategy", t.strategy, STRATEGIES)
    if t.cpu_replicas is not None:
        _positive("training.cpu_replicas", t.cpu_replicas)
    if t.backup_every_steps is not None:
        _positive("training.backup_every_steps", t.backup_every_steps)
    if t.tpu is not None and t.strategy not in ("auto", "tpu"):
        raise ConfigError(f"training.tpu: set, but training.strategy is {t.strategy!r}; use strategy tpu (or auto) with a TPU name")


def _validate_documents(t: TrainingConfig) -> None:
    """Whole-document batches (tfslm/inputs/documents.py): bucketed, any number of windows, one replica."""
    if t.input_pipeline != "bucketed":
        raise ConfigError(f"training.input_pipeline: {t.input_pipeline!r} is not available with data.long_text: document "
                          "(its batches of whole documents are built in the bucketed pipeline); use bucketed")
    if t.static_shapes:
        raise ConfigError("training.static_shapes: not available with data.long_text: document (a batch's window count "
                          "varies with its documents); set training.static_shapes: false, or data.long_text: chunk")
    if t.strategy in ("mirrored", "multi_worker", "tpu") or (t.cpu_replicas or 1) > 1:
        raise ConfigError(f"training.strategy: {t.strategy!r} splits batches across replicas, which would split a document's "
                          "windows from its label; data.long_text: document trains on one device: use strategy auto, cpu or gpu")


def _validate_tfrecords(d: DataConfig, t: TrainingConfig) -> None:
    """Training from `tfslm prepare` output (tfslm/tfrecords.py): its reader replaces the other input paths."""
    if not d.tfrecord_dir.strip():
        raise ConfigError("data.tfrecord_dir: empty; give the directory `tfslm prepare` wrote (a local path or gs://...), or null")
    if d.long_text != "truncate":
        raise ConfigError(
            f"data.long_text: {d.long_text!r} is not available with data.tfrecord_dir (prepared rows are truncated "
            "at model.max_length); use truncate, or train from data.train_file"
        )
    if t.input_pipeline != "bucketed":
        raise ConfigError(
            f"training.input_pipeline: {t.input_pipeline!r} collates in Python; data.tfrecord_dir has its own "
            "pure-TF reader: leave training.input_pipeline at bucketed"
        )


def _positive(key: str, value: int, minimum: int = 1) -> None:
    if value < minimum:
        default = _default(key)
        fix = f"e.g. {default} (the default)" if isinstance(default, int) and default >= minimum else f"{minimum} or more"
        raise ConfigError(f"{key}: expected an integer >= {minimum}, got {value}; use {fix}")


# --------------------------------------------------------------- public API
def config_from_dict(values: Mapping[str, Any] | None, *, check: bool = True) -> Config:
    """Build a validated :class:`Config` from a nested mapping (as read from YAML).

    Example:
        >>> config_from_dict({"data": {"train_file": "t.csv"}, "model": {"architecture": "bert"}}).training.epochs
        3
    """
    values = dict(values or {})
    valid = list(SECTIONS) + list(TOP_LEVEL_KEYS)
    for key in values:
        if key not in valid:
            raise ConfigError(f"unknown top-level key {key!r}; valid keys: {', '.join(valid)}")
    sections = {name: _section_from_dict(name, cls, values.get(name)) for name, cls in SECTIONS.items()}
    top = {key: _coerce(key, values[key], typing.get_type_hints(Config)[key]) for key in TOP_LEVEL_KEYS if key in values}
    cfg = Config(**sections, **top)
    return validate(cfg) if check else cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain nested dicts, ready for ``yaml.safe_dump``."""
    return dataclasses.asdict(cfg)


def apply_overrides(values: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict.

    Example:
        >>> apply_overrides({}, ["training.epochs=3", "data.labels=[a, b]"])
        {'training': {'epochs': 3}, 'data': {'labels': ['a', 'b']}}
    """
    values = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, got no '='; pass e.g. --set training.epochs=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {key}: cannot parse {raw!r} as YAML ({one_line(exc)}); close its brackets and quotes, "
                "e.g. --set data.labels=[a, b], and quote text that holds ': ' or ' #'"
            ) from None
        parts = key.split(".")
        if len(parts) == 1 and parts[0] in TOP_LEVEL_KEYS:
            values[parts[0]] = value
            continue
        if len(parts) != 2 or parts[0] not in SECTIONS:
            valid = [f"{s}.<key>" for s in SECTIONS] + list(TOP_LEVEL_KEYS)
            raise ConfigError(f"--set {key}: unknown key; expected one of {', '.join(valid)}")
        section = values.get(parts[0])
        if section is None:
            section = {}
        elif not isinstance(section, dict):
            raise ConfigError(f"{parts[0]}: expected a mapping of keys, got {type(section).__name__}; {_SECTION_FIX}")
        section[parts[1]] = value
        values[parts[0]] = section
    return values


class _DuplicateKeyError(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key defined twice in one mapping is an error.

    Plain YAML keeps the last value, so a second ``data:`` section would
    silently replace the first and the error would blame a key it lacks.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:  # the base loader reports unhashable keys itself
                continue
            if key in seen:
                where = f"{seen[key]} and {line}"
                raise _DuplicateKeyError(
                    f"key {key!r} is defined twice (lines {where}); keep one and merge the other into it"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` style overrides, validate, and return a :class:`Config`.

    ``run_name`` defaults to the config file's name without extension.

    Args:
        path: a YAML file with ``data``, ``model`` and ``training`` sections.
        overrides: strings like ``"training.epochs=3"``; values are parsed as YAML.

    Example:
        >>> cfg = load_config("configs/quickstart.yaml", ["training.epochs=1"])  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; pass the path of a YAML file such as configs/quickstart.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    try:
        values = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: invalid YAML: {one_line(exc)}; fix the line it names (indent with spaces, not tabs, and quote "
            "values that hold ': ' or ' #')"
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: expected a mapping with data/model/training sections, got {type(values).__name__}; "
            "write `data:`, `model:` and `training:` with their keys indented below, as in configs/quickstart.yaml"
        )
    values = apply_overrides(values, overrides)
    values.setdefault("run_name", path.stem)
    try:
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _same_file(a: str, b: str) -> bool:
    pa, pb = resolve_path(str(a)), resolve_path(str(b))
    try:
        return pa.resolve() == pb.resolve() or (pa.exists() and pb.exists() and os.path.samefile(pa, pb))
    except OSError:
        return False


def resolve_path(name: str) -> Path:
    """Resolve a data path; ``tfslm:NAME`` points at a file shipped inside the package.

    Example:
        >>> resolve_path("tfslm:quickstart_train.csv").name
        'quickstart_train.csv'
    """
    if name.startswith(RESOURCE_SCHEME):
        return Path(__file__).parent / "resources" / name[len(RESOURCE_SCHEME):]
    return Path(name).expanduser()

