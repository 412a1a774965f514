"""The ``keras_hub`` backend: KerasHub text classifiers on Keras 3 (``model.backend: keras_hub``).

The one module that imports ``keras_hub``. It needs no transformers: a
local Hugging Face directory with ``model.safetensors`` (BERT, DistilBERT,
ALBERT, RoBERTa, XLM-RoBERTa, DeBERTa-v3) loads through KerasHub's own
converter with a fresh head; ``model.architecture`` builds a KerasHub
backbone of the configured size with tfslm's WordPiece tokenizer
(:mod:`tfslm.backends.wordpiece`, wrapped as a
:class:`~tfslm.backends.fast_tokenizer.FastTokenizer`).

The model tfslm trains is a Keras 3 functional model whose inputs carry
tfslm's feature names (``input_ids``, ``attention_mask``,
``token_type_ids``) around the KerasHub task (``BertTextClassifier``, ...,
logits out), so the pipelines, evaluation and the SavedModel export are the
transformers backend's. ``save_pretrained`` writes, in one directory:

- the KerasHub preset of the task with a preprocessor over the same vocabulary
  (``keras_hub.models.TextClassifier.from_preset(dir)`` loads it, raw strings in);
- ``model.keras``, the trained model itself (``keras.saving.load_model``);
- ``tfslm_tokenizer/``, the exact tokenizer tfslm and the in-graph export use.

Example:
    >>> from tfslm.backends import get_backend
    >>> backend = get_backend("keras_hub")                                     # doctest: +SKIP
    >>> model, tokenizer = backend.build_model(cfg.model, data.labels, train_texts=texts)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import weakref
from pathlib import Path
from typing import Iterable

from tfslm.atomic import atomic_directory
from tfslm.backends.fast_tokenizer import FastTokenizer
from tfslm.errors import ConfigError, ModelError, RunDirError

__all__ = ["KerasHubBackend", "MODEL_FILE", "TOKENIZER_DIR", "SCRATCH_ARCHITECTURES"]

log = logging.getLogger("tfslm")

MODEL_FILE = "model.keras"
TOKENIZER_DIR = "tfslm_tokenizer"
FEATURES = ("input_ids", "attention_mask", "token_type_ids")
# model.architecture -> (backbone class, task class) in keras_hub.models
SCRATCH_ARCHITECTURES = {"bert": ("BertBackbone", "BertTextClassifier"),
                         "distilbert": ("DistilBertBackbone", "DistilBertTextClassifier")}
_NO_DECAY = ["bias", "gamma", "beta"]  # biases and LayerNorm weights


def _keras():
    import keras

    return keras


def _keras_hub():
    import keras_hub

    return keras_hub


def _num_outputs(labels, task) -> int:
    from tfslm.tasks.base import Task

    return int(Task.resolve(task).num_outputs(labels))


# ---------------------------------------------------------------- models
def _wrap(task_model, uses_segments: bool):
    """A functional model with tfslm's feature names as inputs around a KerasHub task (logits out)."""
    keras = _keras()
    names = FEATURES if uses_segments else FEATURES[:2]
    inputs = {n: keras.Input(shape=(None,), dtype="int32", name=n) for n in names}
    features = {"token_ids": inputs["input_ids"], "padding_mask": inputs["attention_mask"]}
    if uses_segments:
        features["segment_ids"] = inputs["token_type_ids"]
    return keras.Model(inputs, task_model(features), name="tfslm_keras_hub_classifier")


def task_of(model):
    """The KerasHub task inside a wrapped model (the model itself when it is one)."""
    keras_hub = _keras_hub()
    if isinstance(model, keras_hub.models.Task):
        return model
    for layer in model.layers:
        if isinstance(layer, keras_hub.models.Task):
            return layer
    raise ModelError(f"{type(model).__name__}: no KerasHub task inside; is this a keras_hub backend model?")


def _uses_segments(task_model) -> bool:
    return "segment_ids" in task_model.backbone.input


_DEFAULT_DROPOUT = 0.1  # where neither the config nor the checkpoint names a rate (transformers' default too)


def _dropout(model_cfg) -> float:
    """From scratch, the backbone's and the head's dropout: ``model.dropout``, 0.1 when unset."""
    return _DEFAULT_DROPOUT if model_cfg.dropout is None else float(model_cfg.dropout)


# A checkpoint config's own rates, first key present wins (transformers' reading of them).
_ENCODER_RATE_KEYS = ("hidden_dropout_prob", "dropout")
_HEAD_RATE_KEYS = ("classifier_dropout", "seq_classif_dropout", "hidden_dropout_prob", "dropout")


def _checkpoint_rate(hf_config: dict, keys) -> float:
    rates = [hf_config.get(key) for key in keys]
    return next((float(rate) for rate in rates if isinstance(rate, (int, float))), _DEFAULT_DROPOUT)


def checkpoint_dropout(model_cfg, hf_config: dict) -> tuple[float, float]:
    """``(encoder, head)`` dropout for a converted checkpoint: ``model.dropout``, else the checkpoint's own.

    KerasHub's converters do not read a checkpoint's dropout (its backbones then train at their
    class default, 0.1 for BERT whatever config.json says), so tfslm passes the rate itself: the
    same ones the transformers backend trains with. KerasHub's encoders take one rate for the
    hidden states and the attention probabilities; ``model.attention_dropout`` has no counterpart.

    Example:
        >>> checkpoint_dropout(ModelConfig(dropout=0.0), {"hidden_dropout_prob": 0.1})  # doctest: +SKIP
        (0.0, 0.0)
    """
    if model_cfg.dropout is not None:
        encoder = head = float(model_cfg.dropout)
    else:
        encoder, head = _checkpoint_rate(hf_config, _ENCODER_RATE_KEYS), _checkpoint_rate(hf_config, _HEAD_RATE_KEYS)
    attention = model_cfg.attention_dropout
    if attention not in (None, "auto") and float(attention) != encoder:
        log.info("keras_hub: model.attention_dropout %s has no KerasHub counterpart (its encoders take one rate); "
                 "the attention probabilities train at the encoder's %s", attention, encoder)
    return encoder, head


def build_scratch_model(model_cfg, labels, tokenizer, task=None):
    """A freshly initialised KerasHub backbone + classifier head of the configured size."""
    keras_hub = _keras_hub()
    if model_cfg.architecture not in SCRATCH_ARCHITECTURES:
        raise ConfigError(
            f"model.architecture: {model_cfg.architecture!r} is not built by the keras_hub backend (it builds "
            f"{', '.join(SCRATCH_ARCHITECTURES)}); use one of them, or model.backend: transformers")
    backbone_name, task_name = SCRATCH_ARCHITECTURES[model_cfg.architecture]
    backbone = getattr(keras_hub.models, backbone_name)(
        vocabulary_size=len(tokenizer), num_layers=model_cfg.num_layers, num_heads=model_cfg.num_heads,
        hidden_dim=model_cfg.hidden_size, intermediate_dim=model_cfg.intermediate_size, dropout=_dropout(model_cfg),
        max_sequence_length=max(model_cfg.max_length, 128),
    )
    head = getattr(keras_hub.models, task_name)(backbone=backbone, num_classes=_num_outputs(labels, task),
                                                preprocessor=None, activation=None, dropout=_dropout(model_cfg))
    return _wrap(head, _uses_segments(head))


def checkpoint_dir(checkpoint: str) -> Path:
    """A local directory as is; a hub id downloaded (or found in the cache) with ``huggingface_hub``."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(checkpoint, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except Exception as exc:  # offline, unknown id, auth: one line
        raise ModelError(f"model.checkpoint: {checkpoint!r} is not a local directory and could not be downloaded "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
                         "pass a local directory, or check the id and the network") from None


def load_checkpoint_model(model_cfg, labels, task=None):
    """A Hugging Face checkpoint through KerasHub's converter (``TextClassifier.from_preset``) with a fresh head."""
    keras_hub = _keras_hub()
    directory = checkpoint_dir(model_cfg.checkpoint)
    if not (directory / "model.safetensors").is_file():
        raise ModelError(f"model.checkpoint: {directory} has no model.safetensors, which KerasHub's converter reads; "
                         "save the checkpoint with safetensors, or use model.backend: transformers")
    hf_config = _read_config(directory)
    encoder_rate, head_rate = checkpoint_dropout(model_cfg, hf_config)
    try:
        backbone = keras_hub.models.Backbone.from_preset(os.fspath(directory), dropout=encoder_rate)
        head = keras_hub.models.TextClassifier.from_preset(
            os.fspath(directory), backbone=backbone, num_classes=_num_outputs(labels, task), preprocessor=None,
            activation=None, dropout=head_rate)
    except (ValueError, KeyError, NotImplementedError, TypeError) as exc:
        raise ModelError(f"model.checkpoint: KerasHub cannot convert {directory} ({' '.join(str(exc).split())[:200]}); "
                         "use model.backend: transformers for it") from None
    _note_activation(hf_config, head)
    return _wrap(head, _uses_segments(head))


def _read_config(directory: Path) -> dict:
    """The checkpoint's ``config.json`` ({} when unreadable: KerasHub's converter then says what is wrong)."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _note_activation(hf_config: dict, head) -> None:
    """One log line where KerasHub computes another GELU than the checkpoint was trained with."""
    hidden_act = hf_config.get("hidden_act")
    layers = getattr(head.backbone, "transformer_layers", None) or []
    activation = getattr(layers[0], "activation", None) if layers else None
    if hidden_act == "gelu" and getattr(activation, "__name__", "") == "gelu_approximate":
        log.info("keras_hub: %s uses the tanh-approximate GELU (hard-coded in KerasHub); the checkpoint was trained with "
                 "the exact one, so encoder outputs differ from transformers' by ~1e-3 before fine-tuning", type(head.backbone).__name__)


def build_tokenizer(model_cfg, *, train_texts: Iterable[str] | None = None) -> FastTokenizer:
    """The checkpoint's ``tokenizer.json``, or a WordPiece tokenizer trained on ``train_texts`` (as transformers' path)."""
    from tfslm.backends.wordpiece import wordpiece_tokenizer_object

    if model_cfg.checkpoint:
        tokenizer = FastTokenizer.from_pretrained(checkpoint_dir(model_cfg.checkpoint))
        limit = tokenizer.model_max_length
        if limit is not None and model_cfg.max_length > limit:
            raise ModelError(f"model.max_length: {model_cfg.max_length} exceeds the {limit} tokens checkpoint "
                             f"{model_cfg.checkpoint!r} supports; set model.max_length <= {limit}")
        return tokenizer
    if train_texts is None:
        raise ValueError("build_tokenizer: from-scratch mode (model.architecture) needs train_texts to train a tokenizer")
    tokenizer = FastTokenizer(
        wordpiece_tokenizer_object(train_texts, vocab_size=model_cfg.vocab_size, lowercase=model_cfg.lowercase),
        model_max_length=max(model_cfg.max_length, 128), do_lower_case=model_cfg.lowercase)
    if len(tokenizer) > model_cfg.vocab_size:
        raise ConfigError(
            f"model.vocab_size: {model_cfg.vocab_size} is below the {len(tokenizer)} tokens the training texts need; "
            f"set model.vocab_size: {len(tokenizer)} or more")
    return tokenizer


# ---------------------------------------------------------------- save / load
def _attach_preprocessor(task_model, tokenizer, max_length: int) -> bool:
    """Give the task a KerasHub preprocessor over ``tokenizer``'s vocabulary (for ``from_preset`` on raw text)."""
    preprocessor_cls = getattr(type(task_model), "preprocessor_cls", None)
    tokenizer_cls = getattr(preprocessor_cls, "tokenizer_cls", None)
    if preprocessor_cls is None or tokenizer_cls is None:
        return False
    try:
        kh_tokenizer = tokenizer_cls(vocabulary=tokenizer.vocabulary(), lowercase=bool(tokenizer.do_lower_case))
        task_model.preprocessor = preprocessor_cls(kh_tokenizer, sequence_length=max_length)
    except (TypeError, ValueError) as exc:  # a non-WordPiece vocabulary (SentencePiece checkpoints)
        log.info("keras_hub: no KerasHub preprocessor saved (%s); load model.keras and tokenize with tfslm_tokenizer/", exc)
        return False
    return True


def save_pretrained(model, tokenizer, path, *, max_length: int | None = None) -> Path:
    """The KerasHub preset (``from_preset``), ``model.keras`` and ``tfslm_tokenizer/`` into ``path``, atomically."""
    path = Path(path)
    task_model = task_of(model)
    length = int(max_length or min(tokenizer.model_max_length or 512, task_model.backbone.max_sequence_length))
    with atomic_directory(path) as tmp:
        tmp = Path(tmp)
        uncompiled_copy(model).save(os.fspath(tmp / MODEL_FILE))
        if _attach_preprocessor(task_model, tokenizer, length):
            try:
                task_model.save_to_preset(os.fspath(tmp))
            finally:
                task_model.preprocessor = None  # the trained model keeps taking token ids
        else:
            task_model.backbone.save_to_preset(os.fspath(tmp))
        tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
        (tmp / "tfslm_backend.json").write_text(json.dumps({"backend": "keras_hub", "model_file": MODEL_FILE,
                                                            "tokenizer_dir": TOKENIZER_DIR}) + "\n", encoding="utf-8")
    return path


def load_tokenizer(path) -> FastTokenizer:
    path = Path(path)
    return FastTokenizer.from_pretrained(path / TOKENIZER_DIR if (path / TOKENIZER_DIR).is_dir() else path)


def load_pretrained(path):
    """``(model, tokenizer)`` written by :func:`save_pretrained` (a keras_hub run's ``model/``)."""
    path = Path(path)
    if not (path / MODEL_FILE).is_file():
        raise RunDirError(f"{path}: no {MODEL_FILE} (a keras_hub backend model); is the run finished, "
                          "and was it trained with model.backend: keras_hub?")
    _keras_hub()  # registers KerasHub's layers for deserialisation
    with _quiet_compile_warning():
        model = _keras().saving.load_model(os.fspath(path / MODEL_FILE), compile=False)
    return model, load_tokenizer(path)


# ---------------------------------------------------------------- feeding and calling
_FORWARD: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def input_names(model, tokenizer=None) -> list[str]:
    if model is None:
        names = list(getattr(tokenizer, "model_input_names", FEATURES))
        return [n for n in FEATURES if n in names]
    taken = model.input if isinstance(model.input, dict) else {}
    return [n for n in FEATURES if n in taken] or list(FEATURES[:2])


def set_output_bias(model, values) -> bool:
    import numpy as np

    dense = output_dense(model)
    if dense is None or dense.bias is None:
        return False
    dense.bias.assign(np.reshape(np.asarray(values, dtype="float32"), dense.bias.shape))
    return True


def output_dense(model):
    """The KerasHub task's ``output_dense`` layer (None if the task has none)."""
    return getattr(task_of(model), "output_dense", None)


def forward_fn(model):
    """One traced inference function ``features -> logits`` per model (as the transformers backend's)."""
    import tensorflow as tf

    forward = _FORWARD.get(model)
    if forward is None:
        ref = weakref.ref(model)
        names = set(input_names(model))

        @tf.function(reduce_retracing=True)
        def forward(features):
            return ref()({k: tf.cast(v, tf.int32) for k, v in features.items() if k in names}, training=False)

        _FORWARD[model] = forward
    return forward


def prepare_tf_dataset(model, dataset, tokenizer, *, batch_size: int, shuffle: bool = False):
    """A tokenized ``datasets.Dataset`` (``input_ids``, ``label``) as batches padded to their longest row."""
    import numpy as np
    import tensorflow as tf

    names = input_names(model, tokenizer)
    columns = {n: [list(r) for r in dataset[n]] for n in names if n in dataset.column_names}
    if "attention_mask" in names and "attention_mask" not in columns:
        columns["attention_mask"] = [[1] * len(r) for r in columns["input_ids"]]
    if "token_type_ids" in names and "token_type_ids" not in columns:
        columns["token_type_ids"] = [[0] * len(r) for r in columns["input_ids"]]
    features = {k: tf.ragged.constant(v, dtype=tf.int32) for k, v in columns.items()}
    label_key = "label" if "label" in dataset.column_names else "labels"
    labels = np.asarray(dataset[label_key])
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), reshuffle_each_iteration=True)
    pad = {k: tokenizer.pad_token_id if k == "input_ids" else 0 for k in columns}
    ds = ds.map(lambda f, y: ({k: v for k, v in f.items()}, y))
    return ds.padded_batch(batch_size, padding_values=(pad, tf.constant(0, dtype=labels.dtype) if labels.ndim else None))


# ---------------------------------------------------------------- training
def _warmup_schedule(keras, learning_rate: float, total_steps: int, warmup_steps: int, schedule: str):
    """Linear warmup to ``learning_rate``, then linear / polynomial (power 2) / cosine decay to 0, or constant."""
    import math

    from keras import ops

    class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, lr, total, warmup, kind):
            self.lr, self.total, self.warmup, self.kind = float(lr), int(total), int(warmup), kind

        def __call__(self, step):
            step = ops.cast(step, "float32")
            warm = self.lr * step / max(1, self.warmup)
            progress = ops.clip((step - self.warmup) / max(1, self.total - self.warmup), 0.0, 1.0)
            if self.kind == "linear":
                decayed = self.lr * (1.0 - progress)
            elif self.kind == "polynomial":
                decayed = self.lr * (1.0 - progress) ** 2
            elif self.kind == "cosine":
                decayed = self.lr * 0.5 * (1.0 + ops.cos(math.pi * progress))
            else:
                decayed = self.lr + 0.0 * progress
            return ops.where(step < self.warmup, warm, decayed)

        def get_config(self):
            return {"lr": self.lr, "total": self.total, "warmup": self.warmup, "kind": self.kind}

    if schedule not in ("linear", "polynomial", "cosine", "constant"):
        raise ValueError(f"schedule: got {schedule!r}, expected linear, polynomial, cosine or constant")
    return WarmupDecay(learning_rate, total_steps, warmup_steps, schedule)


def create_optimizer(*, learning_rate: float, total_steps: int, warmup_steps: int, weight_decay: float, schedule: str):
    """Keras 3 AdamW (Adam without weight decay), the transformers backend's warmup and decay; ``(optimizer, schedule)``."""
    keras = _keras()
    lr = _warmup_schedule(keras, learning_rate, total_steps, warmup_steps, schedule)
    if weight_decay > 0:
        optimizer = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, epsilon=1e-8)
        optimizer.exclude_from_weight_decay(var_names=_NO_DECAY)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    return sum_duplicate_sparse_gradients(optimizer), lr


@contextlib.contextmanager
def _quiet_compile_warning():
    """KerasHub tasks compile themselves in ``__init__``; rebuilding one warns that its compile is custom. Harmless here."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`compile\(\)` was not called")
        yield


def _float32_config(config):
    """A model config with every layer's dtype policy set to float32 (weights stay as they are)."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def uncompiled_copy(model, *, float32: bool = False):
    """A twin of ``model`` rebuilt from its config (no optimizer, no compile state) with the same weights.

    What is saved must load with plain ``keras.saving.load_model``: a compiled model's file
    would name tfslm's learning-rate schedule, which a consumer without tfslm cannot build.
    """
    keras = _keras()
    config = model.get_config()
    with _quiet_compile_warning():
        twin = keras.Model.from_config(_float32_config(config) if float32 else config)
    twin.set_weights(model.get_weights())
    return twin


def float32_copy(model):
    """A float32-policy twin of a mixed-precision model with the same weights."""
    return uncompiled_copy(model, float32=True)


# ---------------------------------------------------------------- upstream workarounds
def _summed_slices(gradient):
    """An ``IndexedSlices`` gradient with one slice per index (duplicates summed), as tf-keras' optimizers make it."""
    import tensorflow as tf

    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    indices, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(indices)[0])
    return tf.IndexedSlices(values, indices, gradient.dense_shape)


def sum_duplicate_sparse_gradients(optimizer):
    """Make ``optimizer`` (Keras 3) update with each embedding row's gradient summed first; returns it.

    Why (no upstream issue found): on the TensorFlow backend an embedding's gradient is a
    ``tf.IndexedSlices`` with one slice per token, so a token that occurs 100 times in a batch
    has 100 slices. Keras 3's Adam squares the gradient with ``ops.square``, which on
    ``IndexedSlices`` squares slice by slice and sums after: the second moment becomes
    ``sum(g_i**2)`` instead of ``(sum g_i)**2``. Frequent tokens' embedding rows, and the
    segment embedding every token shares, then step up to sqrt(count) times too far: with the
    same weights and batches, a keras_hub run left transformers' from its first update
    (the segment embedding moved 5.4x as far). tf-keras' optimizers sum duplicates before any
    update; this does the same in ``update_step``, after any cross-replica reduction. The
    class stays Keras' own, so a saved model reloads without tfslm. ``tests/test_keras_hub.py``
    shows the bug and the fix.

    Example:
        >>> optimizer = sum_duplicate_sparse_gradients(keras.optimizers.Adam(1e-4))  # doctest: +SKIP
    """
    update_step = optimizer.update_step

    def update_step_with_summed_slices(gradient, variable, learning_rate):
        return update_step(_summed_slices(gradient), variable, learning_rate)

    optimizer.update_step = update_step_with_summed_slices
    return optimizer


def build_from_the_dataset_spec(model, dataset) -> None:
    """Make Keras 3's ``fit`` build ``model``'s training state from ``dataset.element_spec``, not from a reduced batch.

    Why (keras-team/keras#20329, open): under a ``tf.distribute`` strategy, Keras 3's TF
    ``fit`` first takes one batch from the distributed dataset and averages it across
    replicas with ``strategy.reduce`` (``_maybe_symbolic_build``), only to read its shapes
    and dtypes. ``MultiWorkerMirroredStrategy`` cannot reduce a dict of features
    (``ValueError: Attempt to convert a value ({'input_ids': PerReplica...}) with an
    unsupported type (<class 'dict'>) to a Tensor``), so every multi-worker keras_hub run
    failed at its first step; and the batch it takes is one the epoch then misses. The
    dataset's spec carries the same shapes and dtypes, with no batch drawn
    (``tests/test_keras_hub.py`` shows the bug and the fix).
    """
    original = model._maybe_symbolic_build
    spec = dataset.element_spec

    def build(iterator=None, data_batch=None):
        return original(data_batch=spec if data_batch is None else data_batch)

    model._maybe_symbolic_build = build


def mean_scalars_across_workers() -> None:
    """Make Keras 3's TF ``fit`` average a multi-worker step's scalar logs over the whole tensor, not over axis 0.

    Why (tensorflow/tensorflow#72388, closed unfixed; its workaround is "use Keras 2"): under
    ``MultiWorkerMirroredStrategy``, ``reduce_per_replica(..., "mean")`` calls
    ``strategy.reduce("MEAN", v, axis=0)`` on every output of the train step; the loss and
    metrics are scalars, so each step failed with ``Invalid reduction dimension 0 for input
    with 0 dimensions``. Scalars are reduced with ``axis=None`` (the mean over workers);
    everything else goes to Keras' own function. Installed once, process-wide: only the
    multi-worker case changes.
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "tfslm_workaround", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            from keras.src import tree

            def reduce(value):
                rank = getattr(getattr(value, "shape", None), "rank", None)
                return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)

            return tree.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica.tfslm_workaround = True
    trainer.reduce_per_replica = reduce_per_replica


# ---------------------------------------------------------------- Keras 3 private state
_BACKUP_SUBDIR = "keras"  # backup_dir/keras: position.json and the weights file it names (beside tfslm's own state)
_POSITION_FILE = "position.json"


class KerasInternals:
    """What tfslm's callbacks read and write of Keras 3 (see :class:`tfslm.backends.hf_tf.KerasInternals` for why each).

    Backups: Keras 3's ``fit`` resumes at an epoch start (``model._initial_epoch``, which its own
    ``BackupAndRestore`` sets), not mid-epoch, so tfslm backs up at epoch ends only. Each backup is
    ``epoch-N.weights.h5`` (``model.save_weights``: weights and optimizer state, the step counter
    included), then ``position.json`` naming it, written atomically: the commit point. A kill at any
    moment leaves the previous backup or the new one; Keras' own ``BackupAndRestore`` rewrites one
    weights file in place, which a kill can leave half written.
    """

    step_backups = False
    step_backups_missing = "Keras 3's fit resumes at epoch starts, so the keras_hub backend backs up at epoch ends"

    def is_improvement(self, callback, monitor_value, reference_value) -> bool:
        """Keras 3 ``EarlyStopping._is_improvement`` (``min_delta`` and ``mode`` applied)."""
        return bool(_keras().callbacks.EarlyStopping._is_improvement(callback, monitor_value, reference_value))

    def current_epoch(self, callback) -> int:
        return int(getattr(callback, "_current_epoch", 0))

    @staticmethod
    def _position(path) -> dict | None:
        """``position.json`` read, when it names a weights file that exists beside it; else None."""
        path = Path(path)
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            return saved if (path.parent / saved["weights"]).is_file() else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def latest_backup(self, backup_dir) -> str | None:
        """``backup_dir/keras/position.json`` when it names a weights file that exists, else None."""
        position = Path(backup_dir) / _BACKUP_SUBDIR / _POSITION_FILE
        return os.fspath(position) if self._position(position) is not None else None

    def backup_counters(self, checkpoint_path: str) -> tuple[int, int]:
        saved = json.loads(Path(checkpoint_path).read_text(encoding="utf-8"))
        return int(saved["epoch"]), int(saved["step"])

    def restore_backup(self, callback, logs=None) -> bool:
        """Load the backup's weights and optimizer state into ``callback.model``; ``fit`` then starts at the next epoch."""
        model = callback.model
        model._initial_epoch = None  # a resumed fit of this model before left its start epoch here
        position = Path(callback.backup_dir) / _BACKUP_SUBDIR / _POSITION_FILE
        saved = self._position(position)
        if saved is None:
            return False
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # its slots must exist to take the saved ones
        model.load_weights(os.fspath(position.parent / saved["weights"]))
        model._initial_epoch = int(saved["epoch"]) + 1  # read by fit right after on_train_begin
        return True

    def initial_counters(self, model, steps_per_epoch: int | None) -> tuple[int, int]:
        return int(getattr(model, "_initial_epoch", None) or 0), 0

    def set_backup_position(self, model, *, epoch: int | None = None, step: int | None = None) -> None:
        if epoch is not None:
            model._tfslm_backup_position = (int(epoch), -1 if step is None else int(step))
            if getattr(model, "_initial_epoch", None) is not None:  # in on_train_begin of a resumed fit: where it starts
                model._initial_epoch = int(epoch) + 1

    def write_backup(self, callback, epoch: int, batch: int = 0) -> None:
        if not callback._is_chief():
            return  # the chief's backup is the cluster's (the weights are the same on every worker)
        from tfslm.atomic import atomic_write_json

        directory = Path(callback.backup_dir) / _BACKUP_SUBDIR
        directory.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{int(epoch) + 1}.weights.h5"  # never the file the current position.json names
        callback.model.save_weights(os.fspath(directory / name), overwrite=True)
        with open(directory / name, "rb") as handle:
            os.fsync(handle.fileno())
        _, step = getattr(callback.model, "_tfslm_backup_position", (epoch, -1))
        atomic_write_json(directory / _POSITION_FILE, {"epoch": int(epoch), "step": int(step), "weights": name})
        for old in directory.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def fit_ended(self, model) -> None:
        model._initial_epoch = None  # else a later fit of this model would start at the resumed run's epoch


keras_internals = KerasInternals()


# ---------------------------------------------------------------- the backend object
class KerasHubBackend:
    """:class:`~tfslm.backends.base.Backend` for KerasHub on Keras 3; ``get_backend("keras_hub")``."""

    name = "keras_hub"
    keras_internals = keras_internals

    @property
    def keras(self):
        """Keras 3 (``import keras``), beside tf-keras in the same process."""
        return _keras()

    def import_libraries(self) -> None:
        _keras_hub()

    def build_model(self, model_cfg, labels, *, train_texts=None, task=None, tokenizer=None):
        if tokenizer is None:
            tokenizer = build_tokenizer(model_cfg, train_texts=train_texts)
        if model_cfg.checkpoint:
            return load_checkpoint_model(model_cfg, labels, task), tokenizer
        return build_scratch_model(model_cfg, labels, tokenizer, task), tokenizer

    def build_tokenizer(self, model_cfg, *, train_texts=None):
        return build_tokenizer(model_cfg, train_texts=train_texts)

    def load_tokenizer(self, path):
        return load_tokenizer(path)

    def save_pretrained(self, model, tokenizer, path):
        return save_pretrained(model, tokenizer, path)

    def load_pretrained(self, path):
        return load_pretrained(path)

    def text_classification_pipeline(self, model_dir, **kwargs):
        raise ModelError("keras_hub backend: transformers' pipeline does not load Keras 3 models; use "
                         f"keras_hub.models.TextClassifier.from_preset({os.fspath(model_dir)!r}) or tfslm.Predictor")

    def input_names(self, model, tokenizer=None):
        return input_names(model, tokenizer)

    def ensure_built(self, model):
        return model  # a functional model is built when made

    def prepare_fit(self, model, train_dataset):
        build_from_the_dataset_spec(model, train_dataset)
        mean_scalars_across_workers()

    def set_output_bias(self, model, values):
        return set_output_bias(model, values)

    def output_dense(self, model):
        return output_dense(model)

    def logits(self, output):
        return output

    def forward_fn(self, model):
        return forward_fn(model)

    def prepare_tf_dataset(self, model, dataset, tokenizer, *, batch_size, shuffle=False):
        return prepare_tf_dataset(model, dataset, tokenizer, batch_size=batch_size, shuffle=shuffle)

    def create_optimizer(self, *, learning_rate, total_steps, warmup_steps, weight_decay, schedule):
        return create_optimizer(learning_rate=learning_rate, total_steps=total_steps, warmup_steps=warmup_steps,
                                weight_decay=weight_decay, schedule=schedule)

    def float32_copy(self, model):
        return float32_copy(model)

    def max_length_limit(self, config, tokenizer=None):
        limit = getattr(config, "max_sequence_length", None)
        tok_limit = getattr(tokenizer, "model_max_length", None)
        return min(x for x in (limit, tok_limit) if x) if (limit or tok_limit) else None

    def __repr__(self) -> str:
        return "KerasHubBackend(name='keras_hub')"
