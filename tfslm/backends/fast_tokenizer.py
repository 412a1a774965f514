"""A Hugging Face-style fast tokenizer on the ``tokenizers`` library alone (no transformers).

The keras_hub backend feeds tfslm's pipelines (token cache, bucketing,
chunking, the in-graph WordPiece export) with the same calls transformers'
``PreTrainedTokenizerFast`` answers, so those pipelines stay one code path.
:class:`FastTokenizer` implements the subset tfslm uses: ``__call__``
(truncation, padding, overflowing windows, special-token masks), ``pad``,
the special tokens, ``get_vocab``, ``save_pretrained`` / ``from_pretrained``
(``tokenizer.json`` + ``tokenizer_config.json``, which transformers'
``AutoTokenizer`` also reads).

Example:
    >>> from tfslm.backends.wordpiece import wordpiece_tokenizer_object
    >>> tok = FastTokenizer(wordpiece_tokenizer_object(["a small corpus"], vocab_size=200))
    >>> tok(["a small text"])["input_ids"][0][0] == tok.cls_token_id
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

__all__ = ["FastTokenizer"]

_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` with the Hugging Face fast-tokenizer calls tfslm makes.

    Args:
        backend_tokenizer: the ``tokenizers.Tokenizer`` (WordPiece for the in-graph export).
        model_max_length: the longest sequence the model takes (None: unbounded).
        do_lower_case: recorded in ``tokenizer_config.json`` (the normaliser decides the ids).
        special_tokens: ``pad_token``, ``unk_token``, ... (default: BERT's ``[PAD]``, ``[UNK]``, ...).
    """

    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    truncation_side = "right"
    padding_side = "right"

    def __init__(self, backend_tokenizer: Any, *, model_max_length: int | None = None, do_lower_case: bool | None = None,
                 special_tokens: dict[str, str] | None = None):
        self.backend_tokenizer = backend_tokenizer
        self.model_max_length = model_max_length
        self.do_lower_case = do_lower_case
        self._specials = {**_SPECIALS, **(special_tokens or {})}
        for key, token in self._specials.items():
            setattr(self, key, token)
            setattr(self, key + "_id", backend_tokenizer.token_to_id(token))

    # ------------------------------------------------------------ vocabulary
    @property
    def special_tokens_map(self) -> dict[str, str]:
        return dict(self._specials)

    @property
    def vocab_size(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self.backend_tokenizer.get_vocab(with_added_tokens=True)

    def vocabulary(self) -> list[str]:
        """The tokens in id order (a KerasHub ``WordPieceTokenizer`` takes this list)."""
        vocab = self.get_vocab()
        return sorted(vocab, key=vocab.__getitem__)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self.backend_tokenizer.num_special_tokens_to_add(pair)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.backend_tokenizer.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.backend_tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------ encoding
    def __call__(self, texts, *, truncation: bool = False, max_length: int | None = None, padding: bool | str = False,
                 return_tensors: str | None = None, return_attention_mask: bool = True, return_token_type_ids: bool = True,
                 add_special_tokens: bool = True, return_special_tokens_mask: bool = False, stride: int = 0,
                 return_overflowing_tokens: bool = False, **_ignored) -> dict:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        backend = self.backend_tokenizer
        if truncation and max_length:
            backend.enable_truncation(int(max_length), stride=int(stride or 0), direction=self.truncation_side)
        else:
            backend.no_truncation()
        backend.no_padding()
        encodings = backend.encode_batch(batch, add_special_tokens=add_special_tokens)
        rows, mapping = [], []
        for index, enc in enumerate(encodings):
            pieces = [enc, *enc.overflowing] if return_overflowing_tokens else [enc]
            rows += pieces
            mapping += [index] * len(pieces)
        out: dict[str, Any] = {"input_ids": [list(e.ids) for e in rows]}
        if return_token_type_ids:
            out["token_type_ids"] = [list(e.type_ids) for e in rows]
        if return_attention_mask:
            out["attention_mask"] = [list(e.attention_mask) for e in rows]
        if return_special_tokens_mask:
            out["special_tokens_mask"] = [list(e.special_tokens_mask) for e in rows]
        if return_overflowing_tokens:
            out["overflow_to_sample_mapping"] = mapping
        if padding:
            out = self.pad(out, padding=padding)
        if single and not return_overflowing_tokens:
            out = {k: v[0] for k, v in out.items()}
        return self._as_tensors(out, return_tensors)

    def pad(self, batch: dict, *, padding: bool | str = True, return_tensors: str | None = None, **_ignored) -> dict:
        """Right-pad every row of ``batch`` to its longest (``input_ids`` with the pad id, the rest with 0)."""
        rows = batch["input_ids"]
        longest = max((len(r) for r in rows), default=0)
        out = {}
        for key, values in batch.items():
            if key == "overflow_to_sample_mapping":
                out[key] = values
                continue
            fill = self.pad_token_id if key == "input_ids" else 0
            out[key] = [list(v) + [fill] * (longest - len(v)) for v in values]
        if "attention_mask" not in out and rows:
            out["attention_mask"] = [[1] * len(r) + [0] * (longest - len(r)) for r in rows]
        return self._as_tensors(out, return_tensors)

    @staticmethod
    def _as_tensors(out: dict, return_tensors: str | None) -> dict:
        if return_tensors == "tf":
            import tensorflow as tf

            return {k: tf.constant(v, dtype=tf.int32) for k, v in out.items()}
        if return_tensors == "np":
            import numpy as np

            return {k: np.asarray(v, dtype=np.int32) for k, v in out.items()}
        return out

    # ------------------------------------------------------------ files
    def save_pretrained(self, path: str | os.PathLike) -> tuple[str, ...]:
        """Write ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` and ``vocab.txt``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.backend_tokenizer.no_truncation()
        self.backend_tokenizer.no_padding()
        self.backend_tokenizer.save(os.fspath(path / "tokenizer.json"))
        config = {"tokenizer_class": "BertTokenizerFast", "model_max_length": self.model_max_length or 1_000_000_000_000,
                  "do_lower_case": self.do_lower_case, **self._specials}
        (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (path / "special_tokens_map.json").write_text(json.dumps(self._specials, indent=2) + "\n", encoding="utf-8")
        (path / "vocab.txt").write_text("".join(t + "\n" for t in self.vocabulary()), encoding="utf-8")
        return tuple(os.fspath(path / n) for n in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "FastTokenizer":
        """Load a directory with ``tokenizer.json`` (a tfslm run's, or a Hugging Face checkpoint's).

        Example:
            >>> tok = FastTokenizer.from_pretrained("../shared/models/all-MiniLM-L6-v2")   # doctest: +SKIP
        """
        from tokenizers import Tokenizer

        path = Path(path)
        file = path / "tokenizer.json"
        if not file.is_file():
            raise FileNotFoundError(f"{path}: no tokenizer.json (the keras_hub backend reads fast tokenizers only)")
        config = {}
        if (path / "tokenizer_config.json").is_file():
            config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        specials = {k: v for k in _SPECIALS if isinstance(v := config.get(k), str)}
        max_length = config.get("model_max_length")
        max_length = int(max_length) if isinstance(max_length, (int, float)) and max_length < 1e9 else None
        return cls(Tokenizer.from_file(os.fspath(file)), model_max_length=max_length,
                   do_lower_case=config.get("do_lower_case"), special_tokens=specials)

    def __repr__(self) -> str:
        return f"FastTokenizer(vocab_size={self.vocab_size}, model_max_length={self.model_max_length})"
