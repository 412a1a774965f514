"""Build, load and save ``TFAutoModelForSequenceClassification`` models and their tokenizers.

The one module that imports transformers' model classes (frozen at 4.x). It
loads any checkpoint with a TensorFlow class from a hub id or a local
directory, reads PyTorch-saved safetensors **without PyTorch**, and builds
small models from scratch with a WordPiece tokenizer trained on the texts.

Example:
    >>> model, tokenizer = build_model(cfg.model, data.labels, train_texts=data["train"]["text"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from tfslm.atomic import atomic_directory
from tfslm.config import ModelConfig
from tfslm.errors import ModelError
from tfslm.data.labels import LabelSpace

__all__ = [
    "build_model",
    "load_checkpoint",
    "build_from_scratch",
    "build_tokenizer",
    "train_wordpiece_tokenizer",
    "wordpiece_vocabulary",
    "load_pretrained_dir",
    "save_pretrained",
    "max_length_limit",
    "text_classification_pipeline",
]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
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
        return load_checkpoint(model_cfg.checkpoint, labels, max_length=model_cfg.max_length, task=task)
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
    except Exception as exc:  # offline, unknown repo, gated repo...
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(
            f"model.checkpoint: cannot get {checkpoint!r} from the Hub ({type(exc).__name__}: {reason}); "
            "download it where there is network and set model.checkpoint to its local directory"
        ) from None


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


def load_checkpoint(checkpoint: str, labels: LabelSpace, *, max_length: int | None = None, task=None):
    """Load ``(model, tokenizer)`` from a hub id or directory with a fresh classification head.

    TF weights (``tf_model.h5``) load directly; PyTorch-saved ``model.safetensors``
    is read with NumPy and converted, so PyTorch is never needed.
    """
    tf_auto = _transformers()
    directory = resolve_checkpoint(checkpoint)
    try:
        config = tf_auto.AutoConfig.from_pretrained(directory, **_label_kwargs(labels, task))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model.checkpoint: {directory} has no usable config.json ({_short(exc)}); is it a transformers model directory?") from None
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
        raise ModelError(f"model.checkpoint: no TensorFlow or safetensors weights in {directory} (found {sorted(files)})")
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
    with safe_open(str(files[0]), framework="np") as handle:
        fmt = (handle.metadata() or {}).get("format", "pt")
    if fmt == "tf":
        return tf_auto.TFAutoModelForSequenceClassification.from_pretrained(
            path.parent, config=config, ignore_mismatched_sizes=True
        )
    state_dict: dict[str, Any] = {}
    for file in files:
        state_dict.update(load_file(str(file)))
    model = tf_auto.TFAutoModelForSequenceClassification.from_config(config)
    model(model.dummy_inputs, training=False)
    load_pytorch_state_dict_in_tf2_model(model, state_dict, allow_missing_keys=True, ignore_mismatched_sizes=True, skip_logger_warnings=True)
    return model


# ---------------------------------------------------------------- from scratch
def wordpiece_vocabulary(words: "Counter[str]", vocab_size: int, alphabet: Iterable[str] = ()) -> list[str]:
    """A WordPiece vocabulary chosen deterministically from word counts.

    Why not ``tokenizers.trainers.WordPieceTrainer``: it breaks ties between
    equally frequent merges in hash-map order, which Rust randomises per
    process, so the same texts gave different vocabularies (and so different
    models) from run to run. Here every character (and its ``##`` form) is in,
    then whole words, word-initial prefixes and ``##`` suffixes fill the rest,
    ranked by the tokens they save (count x (length - 1)), ties by the piece.

    Example:
        >>> wordpiece_vocabulary(Counter({"running": 3, "jumping": 2}), 40)[:7]
        ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'g', 'i']
    """
    chars = sorted(set(alphabet) | {c for word in words for c in word})
    vocab = SPECIAL_TOKENS + chars + ["##" + c for c in chars]
    taken = set(vocab)
    saved: Counter = Counter()
    for word, count in words.items():
        for end in range(2, min(len(word), 16) + 1):  # the word itself and its prefixes
            saved[word[:end]] += count * (end - 1)
        for start in range(1, len(word) - 1):  # "##" suffixes of 2..8 characters
            piece = word[start:]
            if 2 <= len(piece) <= 8:
                saved["##" + piece] += count * (len(piece) - 1)
    ranked = sorted((p for p in saved if p not in taken), key=lambda p: (-saved[p], p))
    return vocab + ranked[: max(0, vocab_size - len(vocab))]


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
    chosen by :func:`wordpiece_vocabulary`, the same for the same texts on every run.

    Example:
        >>> tok = train_wordpiece_tokenizer(["a small corpus", "of texts"], vocab_size=300)
        >>> tok("a small text")["input_ids"][0] == tok.cls_token_id
        True
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    transformers = _transformers()
    normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase, clean_text=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    # Every printable ASCII character is in the vocabulary, so punctuation or a
    # digit missing from the training texts never becomes [UNK] at prediction time.
    alphabet = [chr(c) for c in range(33, 127) if not (lowercase and chr(c).isupper())]
    vocab = wordpiece_vocabulary(words, vocab_size, alphabet)
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    backend.decoder = decoders.WordPiece()
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


def _scratch_config(model_cfg: ModelConfig, vocab_size: int, pad_id: int, positions: int):
    transformers = _transformers()
    m = model_cfg
    if m.architecture == "bert":
        return transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
            num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
            hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=m.dropout,
            max_position_embeddings=positions, pad_token_id=pad_id,
        )
    if m.architecture == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=vocab_size, dim=m.hidden_size, n_layers=m.num_layers, n_heads=m.num_heads,
            hidden_dim=m.intermediate_size, dropout=m.dropout, attention_dropout=m.dropout,
            seq_classif_dropout=m.dropout, max_position_embeddings=positions, pad_token_id=pad_id,
        )
    if m.architecture == "electra":
        return transformers.ElectraConfig(
            vocab_size=vocab_size, embedding_size=m.hidden_size, hidden_size=m.hidden_size,
            num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
            hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=m.dropout,
            max_position_embeddings=positions, pad_token_id=pad_id,
        )
    raise ModelError(f"model.architecture: unknown {m.architecture!r}")


def _scratch_positions(model_cfg: ModelConfig) -> int:
    return max(model_cfg.max_length, 128)


def _scratch_tokenizer(model_cfg: ModelConfig, train_texts: Iterable[str]):
    # DistilBERT takes no token_type_ids; the saved tokenizer must not produce them.
    input_names = ("input_ids", "attention_mask") if model_cfg.architecture == "distilbert" else ("input_ids", "token_type_ids", "attention_mask")
    return train_wordpiece_tokenizer(
        train_texts, vocab_size=model_cfg.vocab_size, lowercase=model_cfg.lowercase,
        model_max_length=_scratch_positions(model_cfg), model_input_names=input_names,
    )


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
    """``save_pretrained`` of model and tokenizer into ``path``, swapped into place atomically."""
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
