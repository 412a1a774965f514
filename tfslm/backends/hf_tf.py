"""The ``transformers`` backend: Hugging Face's TF sequence classifiers on tf-keras.

The one module that imports ``transformers`` (its TF classes are frozen at
4.x) and the one that touches tf-keras private state (the
``keras_internals`` section at the end says why each access is needed).
It loads any checkpoint with a TensorFlow class from a hub id or a local
directory, reads PyTorch-saved safetensors **without PyTorch**, builds
small models from scratch with a WordPiece tokenizer trained on the texts
(:mod:`tfslm.backends.wordpiece`), and gives the rest of tfslm what
:class:`~tfslm.backends.base.Backend` names: feature names, one forward
function, the optimizer, the float32 copy, ``prepare_tf_dataset``.

The module-level functions are the public API (``tfslm.build_model``,
``tfslm.save_pretrained``, ...); :class:`HFTFBackend` (``get_backend()``)
delegates to them by name, so patching one here patches both.

Example:
    >>> model, tokenizer = build_model(cfg.model, data.labels, train_texts=data["train"]["text"])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import weakref
from pathlib import Path
from typing import Any, Iterable, Sequence

from tfslm.atomic import atomic_directory
from tfslm.backends.wordpiece import SPECIAL_TOKENS, wordpiece_tokenizer_object, wordpiece_vocabulary  # noqa: F401 (re-exported)
from tfslm.config import ModelConfig
from tfslm.errors import ModelError, RemoteError, one_line
from tfslm.data.labels import LabelSpace

log = logging.getLogger("tfslm")

__all__ = [
    "build_model",
    "fine_tuning_attention_dropout",
    "load_checkpoint",
    "build_from_scratch",
    "build_tokenizer",
    "train_wordpiece_tokenizer",
    "wordpiece_vocabulary",
    "load_pretrained_dir",
    "save_pretrained",
    "max_length_limit",
    "text_classification_pipeline",
    "load_tokenizer",
    "input_names",
    "logits_of",
    "forward_fn",
    "ensure_built",
    "prepare_tf_dataset",
    "create_optimizer",
    "float32_copy",
    "import_libraries",
    "keras_internals",
    "HFTFBackend",
]

# Models whose position table reserves slots for the padding offset.
_POSITION_OFFSET_TYPES = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2}


def _transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers


def build_model(model_cfg: ModelConfig, labels: LabelSpace, *, train_texts: Iterable[str] | None = None, task=None, tokenizer=None):
    """Return ``(model, tokenizer)`` for the config: a fine-tunable checkpoint or a fresh model.

    The model is a plain ``tf.keras`` model (a transformers TF model) with
    ``id2label``/``label2id`` in its config, built but not compiled.

    Args:
        model_cfg: the ``model`` section of the config.
        labels: the label space (sets ``num_labels`` and the label names).
        train_texts: texts to train the WordPiece tokenizer on (from-scratch mode only).
        task: a :class:`~tfslm.tasks.base.Task` (``data.task``); regression tasks get one
            output per target and ``problem_type="regression"`` in the model config.
        tokenizer: from-scratch mode: use this tokenizer instead of training one
            (e.g. the one ``tfslm prepare`` saved next to its TFRecords); ignored
            for a checkpoint, which brings its own.

    Example:
        >>> model, tokenizer = build_model(ModelConfig(architecture="bert", max_length=64), labels,
        ...                                train_texts=["some text", "more text"])  # doctest: +SKIP
    """
    if model_cfg.checkpoint:
        return load_checkpoint(model_cfg.checkpoint, labels, max_length=model_cfg.max_length, task=task,
                               dropout=model_cfg.dropout, attention_dropout=fine_tuning_attention_dropout(model_cfg))
    if train_texts is None and tokenizer is None:
        raise ValueError("build_model: from-scratch mode (model.architecture) needs train_texts to train a tokenizer, or a tokenizer")
    return build_from_scratch(model_cfg, labels, train_texts, task=task, tokenizer=tokenizer)


def build_tokenizer(model_cfg: ModelConfig, *, train_texts: Iterable[str] | None = None):
    """The tokenizer :func:`build_model` would return, without building the model.

    A checkpoint's own tokenizer (``model.max_length`` checked against its
    limit), or a WordPiece tokenizer trained on ``train_texts`` exactly as
    :func:`build_from_scratch` trains it.

    Example:
        >>> tok = build_tokenizer(ModelConfig(architecture="bert", vocab_size=300), train_texts=["a b c"])  # doctest: +SKIP
    """
    if model_cfg.checkpoint:
        tf_auto = _transformers()
        directory = resolve_checkpoint(model_cfg.checkpoint)
        tokenizer = _checkpoint_tokenizer(directory)
        try:
            config = tf_auto.AutoConfig.from_pretrained(directory)
        except (OSError, ValueError) as exc:
            raise ModelError(f"model.checkpoint: {directory} has no usable config.json ({_short(exc)}); is it a transformers model directory?") from None
        _check_max_length(model_cfg.max_length, config, tokenizer, f"checkpoint {model_cfg.checkpoint!r}")
        return tokenizer
    if train_texts is None:
        raise ValueError("build_tokenizer: from-scratch mode (model.architecture) needs train_texts to train a tokenizer")
    return _scratch_tokenizer(model_cfg, train_texts)


# ---------------------------------------------------------------- checkpoints
def _label_kwargs(labels: LabelSpace, task) -> dict[str, Any]:
    """``num_labels``, ``id2label``, ``label2id`` and ``problem_type`` of the model config: the task's."""
    from tfslm.tasks.base import Task

    return Task.resolve(task).model_config_kwargs(labels)


def resolve_checkpoint(checkpoint: str) -> Path:
    """A local directory as is; a hub id downloaded (or found in the local cache)."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    looks_local = checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1 or os.sep in checkpoint.replace("/", "")
    if looks_local or path.exists():
        raise ModelError(f"model.checkpoint: directory {checkpoint!r} not found; give a local model directory or a hub id such as bert-base-uncased")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.model", "tf_model.h5", "tf_model-*.h5", "*.safetensors", "*.bin"]
    try:
        return Path(snapshot_download(checkpoint, allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated repo, server fault...
        raise _download_error(checkpoint, exc) from None


def _download_error(checkpoint: str, exc: BaseException) -> Exception:
    """A refused or failed checkpoint download: the user's to fix (exit 2) unless the Hub or the network failed (exit 1)."""
    import requests
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    reason = f"{type(exc).__name__}: {one_line(exc, 160)}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, LocalEntryNotFoundError):  # offline (HF_HUB_OFFLINE) and not in the local cache
        return ModelError(f"model.checkpoint: cannot get {checkpoint!r} from the Hub: it is not in the local cache and downloads are off ({reason}); "
                          "download it where there is network and set model.checkpoint to its local directory")
    if (isinstance(exc, HfHubHTTPError) and status is not None and status >= 500) or isinstance(
            exc, (requests.ConnectionError, requests.Timeout)):
        return RemoteError(f"model.checkpoint: cannot get {checkpoint!r} from the Hub: the Hub failed ({reason}); "
                           "nothing was trained: retry later, or set model.checkpoint to a local directory")
    return ModelError(f"model.checkpoint: cannot get {checkpoint!r} from the Hub ({reason}); check the id and your "
                      "access (a gated or private repo needs HF_TOKEN), or set model.checkpoint to a local directory")


def max_length_limit(config: Any, tokenizer: Any = None) -> int | None:
    """The longest sequence the model (and tokenizer) can take, or None if unbounded."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None:
        limit -= _POSITION_OFFSET_TYPES.get(getattr(config, "model_type", ""), 0)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit is not None and tok_limit < 1_000_000:
        limit = tok_limit if limit is None else min(limit, tok_limit)
    return limit


def _check_max_length(max_length: int, config: Any, tokenizer: Any, source: str) -> None:
    limit = max_length_limit(config, tokenizer)
    if limit is not None and max_length > limit:
        raise ModelError(f"model.max_length: {max_length} exceeds the {limit} tokens {source} supports; set model.max_length <= {limit}")


def _tf_class_error(model_type: str, checkpoint: str) -> ModelError:
    return ModelError(
        f"model.checkpoint: {checkpoint!r} is a {model_type!r} model, which has no TensorFlow sequence-classification "
        "class in transformers 4.x; use a BERT, DistilBERT, RoBERTa, ALBERT, ELECTRA, DeBERTa or XLM-R checkpoint"
    )


def load_checkpoint(checkpoint: str, labels: LabelSpace, *, max_length: int | None = None, task=None,
                    dropout: float | None = None, attention_dropout: float | None = None):
    """Load ``(model, tokenizer)`` from a hub id or directory with a fresh classification head.

    TF weights (``tf_model.h5``) load directly; PyTorch-saved ``model.safetensors``
    is read with NumPy and converted, so PyTorch is never needed. ``dropout`` /
    ``attention_dropout`` (None: the checkpoint's own) override its dropout rates.
    """
    tf_auto = _transformers()
    directory = resolve_checkpoint(checkpoint)
    try:
        config = tf_auto.AutoConfig.from_pretrained(directory, **_label_kwargs(labels, task))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model.checkpoint: {directory} has no usable config.json ({_short(exc)}); is it a transformers model directory?") from None
    _override_dropout(config, dropout, attention_dropout)
    tokenizer = _checkpoint_tokenizer(directory)
    if max_length is not None:
        _check_max_length(max_length, config, tokenizer, f"checkpoint {checkpoint!r}")
    if config.model_type not in tf_auto.TFAutoModelForSequenceClassification._model_mapping._model_mapping:
        raise _tf_class_error(config.model_type, checkpoint)

    files = {p.name for p in directory.iterdir()}
    if "tf_model.h5" in files or "tf_model.h5.index.json" in files:
        model = tf_auto.TFAutoModelForSequenceClassification.from_pretrained(
            directory, config=config, ignore_mismatched_sizes=True
        )
    elif "model.safetensors" in files:
        model = _load_safetensors_without_torch(directory / "model.safetensors", config)
    elif "model.safetensors.index.json" in files:
        model = _load_safetensors_without_torch(directory / "model.safetensors.index.json", config)
    elif "pytorch_model.bin" in files:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ModelError(
                f"model.checkpoint: {directory} has only pytorch_model.bin, which needs PyTorch to read; "
                "convert it to model.safetensors or install torch"
            ) from None
        model = tf_auto.TFAutoModelForSequenceClassification.from_pretrained(
            directory, config=config, from_pt=True, ignore_mismatched_sizes=True
        )
    else:
        raise ModelError(
            f"model.checkpoint: no TensorFlow or safetensors weights in {directory} (found {sorted(files)}); point "
            "model.checkpoint at a directory with tf_model.h5 or model.safetensors, as save_pretrained writes it"
        )
    model(model.dummy_inputs, training=False)
    return model, tokenizer


def _checkpoint_tokenizer(directory: Path):
    try:
        return _transformers().AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"model.checkpoint: cannot load a tokenizer from {directory} ({_short(exc)}); it needs tokenizer files") from None


def _load_safetensors_without_torch(path: Path, config: Any):
    """Work around transformers 4.x: its TF loader cannot read PyTorch safetensors without torch.

    The direct ``from_pretrained`` path fails with "'safe_open' object is not
    iterable"; reading the tensors with ``safetensors.numpy`` and handing them
    to transformers' own PyTorch-to-TF name mapping gives the same weights.
    """
    from safetensors import safe_open
    from safetensors.numpy import load_file

    tf_auto = _transformers()
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    if path.name.endswith(".index.json"):
        shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
        files = [path.parent / s for s in shards]
    else:
        files = [path]
    with _readable_weights(files[0]):
        with safe_open(str(files[0]), framework="np") as handle:
            fmt = (handle.metadata() or {}).get("format", "pt")
    if fmt == "tf":
        return tf_auto.TFAutoModelForSequenceClassification.from_pretrained(
            path.parent, config=config, ignore_mismatched_sizes=True
        )
    state_dict: dict[str, Any] = {}
    for file in files:
        with _readable_weights(file):
            state_dict.update(load_file(str(file)))
    model = tf_auto.TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs, training=False)
    try:
        _, info = load_pytorch_state_dict_in_tf2_model(model, state_dict, allow_missing_keys=True, ignore_mismatched_sizes=True,
                                                       skip_logger_warnings=True, output_loading_info=True)
    except ValueError as exc:  # transformers reshapes kernels before it compares shapes
        raise ModelError(f"{path}: weights do not match config.json ({one_line(exc, 120)}); "
                         "use the config.json that came with these weights") from None
    _check_weights_match(path, info)
    return model


@contextlib.contextmanager
def _readable_weights(file: Path):
    """A truncated, empty or corrupt weights file is the user's to fix: one line naming it."""
    if not file.is_file():
        raise ModelError(f"{file}: missing (listed by the checkpoint's index); download the checkpoint again")
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:  # SafetensorError, OSError, ValueError: all mean "not a whole safetensors file"
        raise ModelError(
            f"{file}: not a readable safetensors file ({type(exc).__name__}: {one_line(exc, 120)}); "
            "the download may be truncated: download the checkpoint again"
        ) from None


# Head weights are expected to be new: the classifier is fresh for the run's labels.
_HEAD_NAMES = ("classifier", "pre_classifier", "score", "pooler", "lm_head", "cls.", "qa_outputs")


def _check_weights_match(path: Path, info: dict) -> None:
    """Encoder weights missing or of another shape mean the weights and config.json are of different models."""
    mismatched = [(name, a, b) for name, a, b in info.get("mismatched_keys", []) if not any(h in name for h in _HEAD_NAMES)]
    if mismatched:
        name, got, want = mismatched[0]
        raise ModelError(
            f"{path}: weights do not match config.json ({len(mismatched)} tensor(s) of another shape, e.g. {name}: "
            f"{tuple(got)} in the file, {tuple(want)} in the config); use the config.json that came with these weights"
        )
    missing = [name for name in info.get("missing_keys", []) if not any(h in name for h in _HEAD_NAMES)]
    if missing:
        raise ModelError(
            f"{path}: {len(missing)} encoder weight(s) of config.json are not in the file (e.g. {missing[0]}); "
            "use the config.json that came with these weights, or download the checkpoint again"
        )


# ---------------------------------------------------------------- from scratch
def train_wordpiece_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 8000,
    lowercase: bool = True,
    model_max_length: int = 512,
    model_input_names: Sequence[str] = ("input_ids", "token_type_ids", "attention_mask"),
):
    """Build a BERT-style WordPiece tokenizer from ``texts``; returns a ``BertTokenizerFast``.

    BERT's normaliser (lower-casing and accent stripping when ``lowercase``)
    and pre-tokeniser come from the ``tokenizers`` library; the vocabulary is
    chosen by :func:`~tfslm.backends.wordpiece.wordpiece_vocabulary`, the same
    for the same texts on every run (:mod:`tfslm.backends.wordpiece` builds the
    ``tokenizers`` object; only the wrapping class is transformers').

    Example:
        >>> tok = train_wordpiece_tokenizer(["a small corpus", "of texts"], vocab_size=300)
        >>> tok("a small text")["input_ids"][0] == tok.cls_token_id
        True
    """
    transformers = _transformers()
    backend = wordpiece_tokenizer_object(texts, vocab_size=vocab_size, lowercase=lowercase)
    return transformers.BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=lowercase,
        strip_accents=lowercase,
        model_max_length=model_max_length,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_input_names=list(model_input_names),
    )


# The dropout keys of transformers' configs: hidden-state (and head) ones, and the attention ones.
_HIDDEN_DROPOUT_KEYS = ("hidden_dropout_prob", "dropout", "seq_classif_dropout", "classifier_dropout")
_ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def fine_tuning_attention_dropout(model_cfg: ModelConfig) -> float | None:
    """``model.attention_dropout`` for a checkpoint: ``auto`` is 0 (off), a number or None (as ``model.dropout``) as set.

    The attention probabilities' dropout is the widest elementwise work of a step ([batch, heads, length, length]):
    off, a bf16 CPU epoch on the essays took 22.3 -> 16.6 s with the validation loss within 1.0% of float32
    with it on (docs/speed-notes.md, 2026-12-03).

    Example:
        >>> fine_tuning_attention_dropout(ModelConfig(checkpoint="x"))
        0.0
    """
    if model_cfg.attention_dropout == "auto":
        log.info("model.attention_dropout auto: 0 for fine-tuning (set a rate, or null for the checkpoint's own, to keep it)")
        return 0.0
    return model_cfg.attention_dropout


def _override_dropout(config, dropout: float | None, attention_dropout: float | None) -> None:
    """Set a checkpoint config's dropout rates (``model.dropout``, ``model.attention_dropout``); None keeps its own."""
    attention = dropout if attention_dropout is None else attention_dropout
    for keys, rate in ((_HIDDEN_DROPOUT_KEYS, dropout), (_ATTENTION_DROPOUT_KEYS, attention)):
        for key in keys if rate is not None else ():
            if hasattr(config, key):
                setattr(config, key, float(rate))


def _scratch_config(model_cfg: ModelConfig, vocab_size: int, pad_id: int, positions: int):
    transformers = _transformers()
    m = model_cfg
    hidden = 0.1 if m.dropout is None else m.dropout  # from scratch, None means the usual 0.1
    attention = hidden if m.attention_dropout in (None, "auto") else m.attention_dropout  # auto: as dropout
    if m.architecture == "bert":
        return transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
            num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
            hidden_dropout_prob=hidden, attention_probs_dropout_prob=attention,
            max_position_embeddings=positions, pad_token_id=pad_id,
        )
    if m.architecture == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=vocab_size, dim=m.hidden_size, n_layers=m.num_layers, n_heads=m.num_heads,
            hidden_dim=m.intermediate_size, dropout=hidden, attention_dropout=attention,
            seq_classif_dropout=hidden, max_position_embeddings=positions, pad_token_id=pad_id,
        )
    if m.architecture == "electra":
        return transformers.ElectraConfig(
            vocab_size=vocab_size, embedding_size=m.hidden_size, hidden_size=m.hidden_size,
            num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
            hidden_dropout_prob=hidden, attention_probs_dropout_prob=attention,
            max_position_embeddings=positions, pad_token_id=pad_id,
        )
    raise ModelError(f"model.architecture: unknown {m.architecture!r}; use bert, distilbert or electra")


def _scratch_positions(model_cfg: ModelConfig) -> int:
    return max(model_cfg.max_length, 128)


def _scratch_tokenizer(model_cfg: ModelConfig, train_texts: Iterable[str]):
    # DistilBERT takes no token_type_ids; the saved tokenizer must not produce them.
    input_names = ("input_ids", "attention_mask") if model_cfg.architecture == "distilbert" else ("input_ids", "token_type_ids", "attention_mask")
    tokenizer = train_wordpiece_tokenizer(
        train_texts, vocab_size=model_cfg.vocab_size, lowercase=model_cfg.lowercase,
        model_max_length=_scratch_positions(model_cfg), model_input_names=input_names,
    )
    if len(tokenizer) > model_cfg.vocab_size:
        # Every character of the texts (and its ## form) must be in: the vocabulary cannot be smaller.
        from tfslm.errors import ConfigError

        raise ConfigError(
            f"model.vocab_size: {model_cfg.vocab_size} is below the {len(tokenizer)} tokens the training texts need "
            f"(special tokens and every character, alone and as ##suffix); set model.vocab_size: {len(tokenizer)} or more"
        )
    return tokenizer


def build_from_scratch(model_cfg: ModelConfig, labels: LabelSpace, train_texts: Iterable[str] | None, task=None, tokenizer=None):
    """A freshly initialised small model and a WordPiece tokenizer trained on ``train_texts`` (or the one given)."""
    transformers = _transformers()
    positions = _scratch_positions(model_cfg)
    if tokenizer is None:
        tokenizer = _scratch_tokenizer(model_cfg, train_texts)
    config = _scratch_config(model_cfg, len(tokenizer), tokenizer.pad_token_id, positions)
    for key, value in _label_kwargs(labels, task).items():
        setattr(config, key, value)
    model = transformers.TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs, training=False)
    return model, tokenizer


# ---------------------------------------------------------------- save / load
def save_pretrained(model, tokenizer, path: str | os.PathLike) -> Path:
    """``save_pretrained`` of model and tokenizer into ``path``, swapped into place atomically.

    Example:
        >>> save_pretrained(model, tokenizer, "runs/mine/model")   # doctest: +SKIP
        PosixPath('runs/mine/model')
    """
    path = Path(path)
    with atomic_directory(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return path


def load_pretrained_dir(path: str | os.PathLike):
    """Load ``(model, tokenizer)`` saved by :func:`save_pretrained` (a run's ``model/``)."""
    transformers = _transformers()
    path = Path(path)
    if not (path / "config.json").is_file():
        from tfslm.errors import RunDirError

        raise RunDirError(f"{path}: no saved model (config.json missing); is the run finished?")
    model = transformers.TFAutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def text_classification_pipeline(model_dir: str | os.PathLike, **kwargs):
    """``transformers.pipeline("text-classification", framework="tf")`` that works without PyTorch.

    Works around transformers 4.57: ``pipeline(..., framework="tf")`` with its
    default ``dtype="auto"`` evaluates ``hasattr(torch, dtype)`` and fails with
    ``NameError: name 'torch' is not defined`` when PyTorch is not installed;
    ``dtype=None`` skips that branch. (Test: tests/test_modeling.py::test_upstream_pipeline_needs_dtype_none.)

    Example:
        >>> classify = text_classification_pipeline("runs/quickstart/model")   # doctest: +SKIP
        >>> classify("Works great.")                                           # doctest: +SKIP
        [{'label': 'positive', 'score': 0.97}]
    """
    transformers = _transformers()
    kwargs.setdefault("dtype", None)
    return transformers.pipeline("text-classification", model=os.fspath(model_dir), framework="tf", **kwargs)


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer saved in a local directory (``AutoTokenizer.from_pretrained``)."""
    return _transformers().AutoTokenizer.from_pretrained(path)


def import_libraries() -> None:
    """Import transformers now (after TensorFlow), e.g. while native start-up logs are silenced."""
    import transformers  # noqa: F401


# ---------------------------------------------------------------- feeding and calling
def input_names(model, tokenizer=None) -> list[str]:
    """The features ``model`` takes: the tokenizer's ``model_input_names`` that ``model.call`` accepts.

    Without a tokenizer the candidates are ``input_ids``, ``attention_mask``
    and ``token_type_ids``; a ``model`` of None keeps every candidate.
    ``input_ids`` is always in (first when added).

    Example:
        >>> input_names(None, None)
        ['input_ids', 'attention_mask', 'token_type_ids']
    """
    import inspect

    if tokenizer is None:
        names = ["input_ids", "attention_mask", "token_type_ids"]
    else:
        names = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
    if model is not None:
        params = inspect.signature(model.call).parameters
        names = [n for n in names if n in params]
    if "input_ids" not in names:
        names.insert(0, "input_ids")
    return names


def ensure_built(model):
    """Create ``model``'s variables with a call on its dummy inputs, if it has none yet."""
    if not getattr(model, "built", True):
        model(model.dummy_inputs, training=False)
    return model


def set_output_bias(model, values) -> bool:
    """Set the bias of the head's output layer (the last Dense with one unit per output); False if none is found.

    A score head that starts at the training mean spends its first steps learning the
    ordering rather than the offset (transformers initialises the bias at 0).
    """
    import tensorflow as tf

    dense = output_dense(model)
    if dense is None or dense.bias is None:
        return False
    dense.bias.assign(tf.cast(tf.reshape(values, dense.bias.shape), dense.bias.dtype))
    return True


def output_dense(model):
    """The head's output layer: the last ``Dense`` with one unit per output (None if there is none)."""
    import tensorflow as tf

    ensure_built(model)
    units = int(model.config.num_labels)
    dense = [layer for layer in model.submodules if isinstance(layer, tf.keras.layers.Dense) and layer.units == units]
    return dense[-1] if dense else None


def logits_of(output):
    """The logits of a model call: a transformers output's ``.logits`` (the first item of a tuple output), or the tensor itself."""
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


_FORWARD: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def forward_fn(model):
    """One traced inference function ``features -> logits`` per model, reused across calls.

    Evaluation (every epoch end) and :class:`tfslm.Predictor` share it; the
    cache holds the model weakly, so it never keeps a model alive.
    """
    import tensorflow as tf

    forward = _FORWARD.get(model)
    if forward is None:
        ref = weakref.ref(model)

        @tf.function(reduce_retracing=True)
        def forward(features):
            return logits_of(ref()(features, training=False))

        _FORWARD[model] = forward
    return forward


def prepare_tf_dataset(model, dataset, tokenizer, *, batch_size: int, shuffle: bool = False):
    """``model.prepare_tf_dataset``: a tokenized ``datasets.Dataset`` as batches padded by the tokenizer's collator.

    No row is dropped (``drop_remainder=False``); shuffling uses TF's global seed.
    """
    return model.prepare_tf_dataset(dataset, batch_size=batch_size, shuffle=shuffle, tokenizer=tokenizer, drop_remainder=False)


# ---------------------------------------------------------------- training
_NO_DECAY = ["LayerNorm", "layer_norm", "bias"]


def create_optimizer(*, learning_rate: float, total_steps: int, warmup_steps: int, weight_decay: float, schedule: str):
    """AdamW (or Adam without weight decay) with linear warmup then ``schedule``; returns ``(optimizer, schedule)``.

    "linear" and "polynomial" (power 2) are ``transformers.create_optimizer``
    itself; "cosine" and "constant" put a Keras decay behind transformers'
    ``WarmUp``. Weight decay skips LayerNorm weights and biases.
    """
    import tensorflow as tf
    from transformers import create_optimizer as hf_create_optimizer
    from transformers.optimization_tf import AdamWeightDecay, WarmUp

    lr = learning_rate
    if schedule in ("linear", "polynomial"):
        optimizer, decay = hf_create_optimizer(
            init_lr=lr,
            num_train_steps=total_steps,
            num_warmup_steps=warmup_steps,
            weight_decay_rate=weight_decay,
            power=1.0 if schedule == "linear" else 2.0,
        )
        return dense_embedding_updates(optimizer), decay
    decay_steps = max(1, total_steps - warmup_steps)
    if schedule == "cosine":
        decay = tf.keras.optimizers.schedules.CosineDecay(lr, decay_steps=decay_steps)
    elif schedule == "constant":
        decay = tf.keras.optimizers.schedules.PolynomialDecay(lr, decay_steps, end_learning_rate=lr)
    else:
        raise ValueError(f"schedule: got {schedule!r}, expected linear, polynomial, cosine or constant")
    if warmup_steps:
        decay = WarmUp(initial_learning_rate=lr, decay_schedule_fn=decay, warmup_steps=warmup_steps)
    if weight_decay > 0:
        optimizer = AdamWeightDecay(
            learning_rate=decay, weight_decay_rate=weight_decay, epsilon=1e-8, exclude_from_weight_decay=_NO_DECAY,
        )
    else:
        optimizer = tf.keras.optimizers.Adam(learning_rate=decay, epsilon=1e-8)
    return dense_embedding_updates(optimizer), decay


def dense_embedding_updates(optimizer):
    """Apply an embedding's sparse gradient as the dense one it stands for; return ``optimizer``, changed in place.

    A word embedding's gradient is a ``tf.IndexedSlices`` (one row per token).
    tf-keras' Adam is not lazy: its sparse path decays ``m`` and ``v`` of every
    row anyway, in separate whole-table passes (assign, scatter, sqrt, divide,
    assign), after first de-duplicating the rows. The dense path is one fused
    ``ResourceApplyAdam`` kernel. So summing the slices into a dense gradient
    (``unsorted_segment_sum``, which also merges repeated rows) computes the
    same update, faster: on MiniLM's 30522 x 384 table, AdamW's whole update went
    from ~85 to ~45 ms a step on a 2-core CPU. It runs inside ``apply_gradients``,
    after any cross-replica reduction, so replicas still exchange slices. Works for
    tf-keras' legacy optimizers (transformers' ``AdamWeightDecay``) and its
    current ones (``update_step``); anything else is returned unchanged.

    Example:
        >>> optimizer = dense_embedding_updates(tf.keras.optimizers.legacy.Adam())  # doctest: +SKIP
    """
    import tensorflow as tf

    def dense(values, indices, variable):
        rows = tf.shape(variable, out_type=indices.dtype)[0]
        return tf.math.unsorted_segment_sum(values, indices, rows)

    if hasattr(optimizer, "_resource_apply_sparse_duplicate_indices"):  # tf-keras' OptimizerV2 (legacy)
        apply_dense = optimizer._resource_apply_dense

        def apply_sparse(grad, var, indices, **kwargs):
            return apply_dense(dense(grad, indices, var), var, **kwargs)

        optimizer._resource_apply_sparse_duplicate_indices = apply_sparse
    elif hasattr(optimizer, "update_step"):  # tf-keras' current optimizers
        update_step = optimizer.update_step

        def update_dense(gradient, variable, *args, **kwargs):
            if isinstance(gradient, tf.IndexedSlices):
                gradient = dense(gradient.values, gradient.indices, variable)
            return update_step(gradient, variable, *args, **kwargs)

        optimizer.update_step = update_dense
    return optimizer


def float32_copy(model):
    """A float32-policy twin of a (mixed-precision) transformers model with the same weights.

    Mixed-precision variables are float32 already, so the weights copy as
    they are; the twin (the same class rebuilt from ``model.config``)
    computes in float32, which is what a SavedModel consumer or
    ``from_pretrained`` expects.
    """
    import tensorflow as tf

    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        twin = type(model)(model.config)
        twin(twin.dummy_inputs, training=False)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    twin.set_weights(model.get_weights())
    return twin


# ---------------------------------------------------------------- keras_internals
class KerasInternals:
    """Every tf-keras private attribute tfslm touches, each behind one named method.

    Why they are needed at all: tfslm's :class:`~tfslm.training.backup.TrainingBackup`
    extends ``tf.keras.callbacks.BackupAndRestore`` (step backups at every
    epoch end too, optimizer-step counting, early stopping that stays
    stopped), and tf-keras keeps the resume position in private state of the
    model's ``WorkerTrainingState``; :class:`~tfslm.training.callbacks.EarlyStoppingWithTieBreak`
    refines ``EarlyStopping``'s private improvement test. tf-keras 2 is
    frozen, so these names are stable; a Keras 3 backend would implement the
    same methods over its own state.

    Two private *hooks* stay overridden where they are, because tf-keras
    calls them by name on the subclass: ``EarlyStoppingWithTieBreak._is_improvement``
    and ``TrainingBackup._implements_train_batch_hooks``.
    """

    def backup_checkpoint_dir(self, backup_dir: str | os.PathLike) -> Path:
        """Where ``BackupAndRestore`` writes the chief's checkpoint: ``backup_dir/chief``.

        Why: :func:`~tfslm.training.backup.has_backup` and ``backup_position``
        look for a backup before any model exists (tf-keras' ``WorkerTrainingState`` layout).
        """
        return Path(backup_dir) / "chief"

    step_backups = True  # a checkpoint records the step, and fit resumes there
    step_backups_missing = ""

    def latest_backup(self, backup_dir: str | os.PathLike) -> str | None:
        """The checkpoint a new ``fit`` would resume from (``tf.train.latest_checkpoint`` of the chief's), or None.

        Why: :func:`~tfslm.training.backup.has_backup` asks before any model exists.
        """
        import tensorflow as tf

        return tf.train.latest_checkpoint(os.fspath(self.backup_checkpoint_dir(backup_dir)))

    def restore_backup(self, callback, logs=None) -> bool:
        """``BackupAndRestore.on_train_begin`` (restores the checkpoint, if any); whether it restored one.

        Why: tf-keras restores silently; tfslm must then restore its own callbacks' state too.
        """
        import tensorflow as tf

        tf.keras.callbacks.BackupAndRestore.on_train_begin(callback, logs)
        return self.backup_restored(callback.model)

    def fit_ended(self, model) -> None:
        """Nothing: tf-keras keeps the resume position in the checkpoint, not on the model."""

    def backup_counters(self, checkpoint_path: str) -> tuple[int, int]:
        """``(epoch, step)`` recorded in a backup checkpoint, read without a model (KeyError if absent).

        Why: deciding whether to resume, and from where, comes before the model
        is built; the names are those of ``WorkerTrainingState``'s private variables.
        """
        import tensorflow as tf

        reader = tf.train.load_checkpoint(checkpoint_path)
        return (
            int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")),
            int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE")),
        )

    def backup_restored(self, model) -> bool:
        """Whether ``BackupAndRestore.on_train_begin`` just restored a checkpoint into ``model``.

        Why: tf-keras restores silently; tfslm must then restore its own callbacks' state too.
        """
        return model._training_state.read_checkpoint_manager.latest_checkpoint is not None

    def initial_counters(self, model, steps_per_epoch: int | None) -> tuple[int, int]:
        """``(epoch, step)`` ``fit`` resumes at, as tf-keras computes it from the restored checkpoint.

        Why: the resumed position must match what Keras will do, to the step.
        """
        return model._training_state.maybe_load_initial_counters_from_ckpt(steps_per_epoch, 0, mode="train")

    def set_backup_position(self, model, *, epoch: int | None = None, step: int | None = None) -> None:
        """Set the epoch and/or step the next backup records (``_ckpt_saved_epoch``/``_ckpt_saved_batch``).

        Why: tfslm records the last optimizer step done (tf-keras records the
        first step of the last execution), marks an epoch end as "next epoch",
        and makes a run that early stopping ended stay ended on resume.
        """
        state = model._training_state
        if epoch is not None:
            state._ckpt_saved_epoch.assign(epoch)
        if step is not None:
            state._ckpt_saved_batch.assign(step)

    def write_backup(self, callback, epoch: int, batch: int = 0) -> None:
        """Write the checkpoint now (``BackupAndRestore._backup``).

        Why: tfslm decides when to back up (every epoch end and every N steps);
        tf-keras offers one or the other.
        """
        callback._backup(epoch=epoch, batch=batch)

    def current_epoch(self, callback) -> int:
        """The epoch ``BackupAndRestore`` is in (``_current_epoch``, set at each epoch begin).

        Why: a step backup needs the epoch to count steps done across epochs.
        """
        return callback._current_epoch

    def is_improvement(self, callback, monitor_value, reference_value) -> bool:
        """``EarlyStopping``'s own improvement test (``_is_improvement``: ``min_delta`` and ``mode`` applied).

        Why: the tie-break subclass adds a rule on top of it, not a copy of it.
        """
        import tensorflow as tf

        return bool(tf.keras.callbacks.EarlyStopping._is_improvement(callback, monitor_value, reference_value))


keras_internals = KerasInternals()


# ---------------------------------------------------------------- the backend object
class HFTFBackend:
    """:class:`~tfslm.backends.base.Backend` for transformers' TF classes; ``get_backend("transformers")``.

    Each method calls this module's function of the same purpose, looked up
    when called (so ``monkeypatch.setattr(hf_tf, "save_pretrained", ...)``
    reaches the trainer too).
    """

    name = "transformers"
    keras_internals = keras_internals

    @property
    def keras(self):
        """tf-keras (``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``): what transformers' TF classes are built on."""
        import tensorflow as tf

        return tf.keras

    def import_libraries(self) -> None:
        import_libraries()

    def build_model(self, model_cfg, labels, *, train_texts=None, task=None, tokenizer=None):
        return build_model(model_cfg, labels, train_texts=train_texts, task=task, tokenizer=tokenizer)

    def build_tokenizer(self, model_cfg, *, train_texts=None):
        return build_tokenizer(model_cfg, train_texts=train_texts)

    def load_tokenizer(self, path):
        return load_tokenizer(path)

    def save_pretrained(self, model, tokenizer, path):
        return save_pretrained(model, tokenizer, path)

    def load_pretrained(self, path):
        return load_pretrained_dir(path)

    def text_classification_pipeline(self, model_dir, **kwargs):
        return text_classification_pipeline(model_dir, **kwargs)

    def input_names(self, model, tokenizer=None):
        return input_names(model, tokenizer)

    def ensure_built(self, model):
        return ensure_built(model)

    def prepare_fit(self, model, train_dataset):
        pass  # tf-keras' fit needs no workaround here

    def set_output_bias(self, model, values):
        return set_output_bias(model, values)

    def output_dense(self, model):
        return output_dense(model)

    def logits(self, output):
        return logits_of(output)

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
        return max_length_limit(config, tokenizer)

    def __repr__(self) -> str:
        return "HFTFBackend(name='transformers')"
