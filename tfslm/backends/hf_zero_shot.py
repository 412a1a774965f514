"""The transformers side of ``tfslm zero-shot``: an NLI checkpoint's pipeline and a sentence encoder's embeddings.

Kept beside :mod:`tfslm.backends.hf_tf` (every transformers import lives under
``backends/``); the zero-shot logic itself (templates, cosine, temperature,
the run directory) is :mod:`tfslm.zero_shot`.

Example:
    >>> nli_label_of(Path("../shared/models/some-nli-model"))      # doctest: +SKIP
    'entailment'
    >>> embed_texts("../shared/models/all-MiniLM-L6-v2", ["great", "awful"]).shape   # doctest: +SKIP
    (2, 384)
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tfslm.errors import ModelError

__all__ = ["nli_label_of", "nli_scores", "embed_texts", "parameter_count"]


def nli_label_of(directory: str | os.PathLike) -> str | None:
    """The entailment label's name in the checkpoint's ``config.json`` ``id2label``; None for a non-NLI checkpoint."""
    path = Path(directory) / "config.json"
    try:
        id2label = json.loads(path.read_text(encoding="utf-8")).get("id2label") or {}
    except (OSError, ValueError):
        return None
    for name in id2label.values():
        if str(name).lower().startswith("entail"):
            return str(name)
    return None


@functools.lru_cache(maxsize=1)  # validation then test: one load
def _load_sequence_classifier(directory: Path):
    """The checkpoint's own classifier (its NLI head kept), TF weights or PyTorch safetensors read without PyTorch."""
    from tfslm.backends import hf_tf

    transformers = hf_tf._transformers()
    config = transformers.AutoConfig.from_pretrained(directory)
    files = {p.name for p in directory.iterdir()}
    if "tf_model.h5" in files or "tf_model.h5.index.json" in files:
        model = transformers.TFAutoModelForSequenceClassification.from_pretrained(directory, config=config)
    elif "model.safetensors" in files:
        model = hf_tf._load_safetensors_without_torch(directory / "model.safetensors", config)
    else:
        raise ModelError(f"zero-shot checkpoint {directory}: no tf_model.h5 or model.safetensors; "
                         "give a directory as save_pretrained writes it")
    return model, hf_tf._checkpoint_tokenizer(directory)


def nli_scores(checkpoint: str, texts: Sequence[str], candidate_labels: Sequence[str], *, template: str,
               batch_size: int = 16, progress=None) -> np.ndarray:
    """``[len(texts), len(candidate_labels)]`` probabilities from ``pipeline("zero-shot-classification", framework="tf")``.

    Columns follow ``candidate_labels`` (the pipeline sorts its answer by score;
    this puts it back). ``dtype=None`` works around transformers 4.57's
    ``framework="tf"`` pipeline, as for text classification (DESIGN.md).
    ``progress``: called with the number of texts done after each batch.
    """
    from tfslm.backends import hf_tf

    directory = hf_tf.resolve_checkpoint(checkpoint)
    model, tokenizer = _load_sequence_classifier(directory)
    classify = hf_tf._transformers().pipeline("zero-shot-classification", model=model, tokenizer=tokenizer,
                                              framework="tf", dtype=None)
    column = {label: i for i, label in enumerate(candidate_labels)}
    out = np.zeros((len(texts), len(candidate_labels)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        answers = classify(chunk, candidate_labels=list(candidate_labels), hypothesis_template=template,
                           multi_label=False)
        answers = [answers] if isinstance(answers, dict) else answers
        for i, answer in enumerate(answers):
            for label, score in zip(answer["labels"], answer["scores"], strict=True):
                out[start + i, column[label]] = score
        if progress is not None:
            progress(len(chunk))
    return out


@functools.lru_cache(maxsize=1)  # the label descriptions, then each split: one load
def _load_encoder(directory: Path):
    """A base (headless) TF encoder, PyTorch safetensors converted with transformers' own name mapping."""
    from tfslm.backends import hf_tf

    transformers = hf_tf._transformers()
    config = transformers.AutoConfig.from_pretrained(directory)
    files = {p.name for p in directory.iterdir()}
    if "tf_model.h5" in files:
        model = transformers.TFAutoModel.from_pretrained(directory, config=config)
    elif "model.safetensors" in files:
        from safetensors.numpy import load_file
        from transformers.modeling_tf_pytorch_utils import (
            load_pytorch_state_dict_in_tf2_model,
        )

        model = transformers.TFAutoModel.from_config(config)
        model(model.dummy_inputs, training=False)
        load_pytorch_state_dict_in_tf2_model(model, load_file(str(directory / "model.safetensors")),
                                             allow_missing_keys=True, skip_logger_warnings=True)
    else:
        raise ModelError(f"zero-shot checkpoint {directory}: no tf_model.h5 or model.safetensors; "
                         "give a sentence-embedding model directory (e.g. all-MiniLM-L6-v2)")
    return model, hf_tf._checkpoint_tokenizer(directory)


def embed_texts(checkpoint: str, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 32,
                progress=None) -> np.ndarray:
    """Mean-pooled (over non-padding tokens), L2-normalised embeddings ``[len(texts), hidden]`` as float32."""
    from tfslm.backends import hf_tf

    model, tokenizer = _load_encoder(hf_tf.resolve_checkpoint(checkpoint))
    chunks = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feed = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = np.asarray(model(feed, training=False).last_hidden_state, dtype=np.float32)
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        chunks.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        if progress is not None:
            progress(len(chunk))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def parameter_count(checkpoint: str, method: str) -> int:
    """The parameters of the model ``method`` ("nli" or "embedding") scores with (loaded once, then cached)."""
    from tfslm.backends import hf_tf

    directory = hf_tf.resolve_checkpoint(checkpoint)
    model, _ = (_load_sequence_classifier if method == "nli" else _load_encoder)(directory)
    return int(model.count_params())
