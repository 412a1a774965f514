"""The tokenizer as graph ops: raw strings to WordPiece ids inside a SavedModel.

:func:`build_in_graph_tokenizer` measures a transformers fast WordPiece
tokenizer (BERT, DistilBERT, ELECTRA, MiniLM, tfslm's from-scratch models):
its normalizer (clean-up of control characters, CJK padding, accent
stripping, lower-casing) and pre-tokenizer (whitespace and punctuation) are
run on every Unicode code point and compiled into regular expressions and a
lookup table; the WordPiece step is ``tensorflow_text``'s
``FastWordpieceTokenizer`` with the same vocabulary, stored in the graph
(``ops="tf_text"``), or :mod:`tfslm.serving.wordpiece_core`'s greedy
longest-match over a ``tf.lookup`` table (``ops="core"``: no custom op at all).
Added tokens written literally in the text (``[SEP]``, ``[MASK]``) become
their ids as in transformers. The module is checked against the Python
tokenizer on tricky probe texts (and, for chunk runs, window for window)
before anything is exported.

Example:
    >>> tok_module = build_in_graph_tokenizer(tokenizer, 128)                  # doctest: +SKIP
    >>> input_ids, attention_mask = tok_module(tf.constant(["Olá, mundo!"]))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

from tfslm.errors import ModelError

__all__ = [
    "build_in_graph_tokenizer", "UnsupportedTokenizerError", "verify_windows", "IN_GRAPH_TOKENIZER", "CONSUMER_IMPORT",
    "TOKENIZER_OPS",
]

IN_GRAPH_TOKENIZER = "tensorflow_text.FastWordpieceTokenizer"
CONSUMER_IMPORT = "tensorflow_text"
# How the WordPiece step is built: tensorflow-text's op, or core TensorFlow ops only.
TOKENIZER_OPS = ("core", "tf_text")

# Probe texts checked against the Python tokenizer before anything is written.
_PROBES = (
    "",
    "Olá, mundo! A educação é fundamental: São Paulo, 1º lugar, 2ª vez.",
    "Crase à, acentos ´ e ¨, trema em lingüiça, ÇÃO, ÁÉÍÓÚ âêô ãõ ü.",
    "Emoji 😀🎉 e símbolos € ° © ™ … “aspas” — fim.\tTab\nlinha\r\nnova",
    "中文字符 mixed with 한국어 and русский ТЕКСТ; ΟΔΟΣ ΣΟΦΙΑ",
    "Control\x00chars\x07 and\u200b zero\u200dwidth\ufeff\u00a0nbsp\u2028sep",
    "https://example.com/path?q=1&x=2 e-mail: fulano@exemplo.com.br #tag @user",
    "texto com [MASK] e [SEP] e [CLS] literais",
    "palavra" * 30 + " " + "x" * 101 + " fim",
    "e\u0301 a\u0300 c\u0327 decompostos; ﬁ ﬂ Ⅻ ½ ² ｆｕｌｌ",
)


class UnsupportedTokenizerError(ModelError):
    """The tokenizer has no exact in-graph equivalent; the message says why."""


# ------------------------------------------------------------- measuring the tokenizer
_SCAN_CACHE: dict[tuple[str, str], Any] = {}
_ALLOWED_NORMALIZERS = {"BertNormalizer", "NFD", "NFKD", "Lowercase", "StripAccents", "Sequence"}
_ALLOWED_PRE_TOKENIZERS = {"BertPreTokenizer", "WhitespaceSplit", "Punctuation", "Sequence"}


def _code_points():
    for start, stop in ((0, 0xD800), (0xE000, 0x110000)):
        for chunk_start in range(start, stop, 256):
            yield [chr(c) for c in range(chunk_start, min(chunk_start + 256, stop))]


def _scan_normalizer(normalizer: Any, key: str) -> dict[str, str]:
    """Map every code point the normalizer changes to what it becomes (per character)."""
    cache_key = ("normalizer", key)
    if cache_key not in _SCAN_CACHE:
        changed: dict[str, str] = {}
        if normalizer is not None:
            for chunk in _code_points():
                joined = "".join(chunk)
                if normalizer.normalize_str(joined) == joined:
                    continue  # the whole chunk is left alone: skip 256 calls
                for ch in chunk:
                    out = normalizer.normalize_str(ch)
                    if out != ch:
                        changed[ch] = out
        _SCAN_CACHE[cache_key] = changed
    return _SCAN_CACHE[cache_key]


def _scan_pre_tokenizer(pre_tokenizer: Any, key: str) -> tuple[list[int], list[int]]:
    """Return (whitespace, punctuation) code points: the ones dropped and the ones isolated."""
    cache_key = ("pre_tokenizer", key)
    if cache_key not in _SCAN_CACHE:
        spaces: list[int] = []
        punctuation: list[int] = []
        for chunk in _code_points():
            joined = "a" + "".join(chunk) + "b"
            if [piece for piece, _ in pre_tokenizer.pre_tokenize_str(joined)] == [joined]:
                continue
            for ch in chunk:
                pieces = [piece for piece, _ in pre_tokenizer.pre_tokenize_str("a" + ch + "b")]
                if pieces == ["a" + ch + "b"]:
                    continue
                if pieces == ["a", "b"]:
                    spaces.append(ord(ch))
                elif pieces == ["a", ch, "b"]:
                    punctuation.append(ord(ch))
                else:
                    raise UnsupportedTokenizerError(
                        f"the pre-tokenizer splits 'a{ch}b' (U+{ord(ch):04X}) into {pieces}, which is neither "
                        "a whitespace split nor an isolated punctuation mark"
                    )
        _SCAN_CACHE[cache_key] = (spaces, punctuation)
    return _SCAN_CACHE[cache_key]


def _ranges(code_points: Sequence[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for c in sorted(set(code_points)):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [(a, b) for a, b in out]


def _char_class(code_points: Sequence[int]) -> str | None:
    """An RE2 character class matching exactly ``code_points`` (None when empty)."""
    if not code_points:
        return None
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _ranges(code_points)]
    return "[" + "".join(parts) + "]"


def _literal(text: str) -> str:
    return "".join(f"\\x{{{ord(c):X}}}" for c in text)


def _node_types(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    types = {node.get("type")} if node.get("type") else set()
    for key in ("normalizers", "pretokenizers"):
        for child in node.get(key) or ():
            types |= _node_types(child)
    return types


def _fast_wordpiece_state(tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """The backend tokenizer and its JSON state; raises unless every part has an in-graph equivalent."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizerError(
            f"{type(tokenizer).__name__} is a slow (Python) tokenizer; the in-graph tokenizer is built from a fast one"
        )
    state = json.loads(backend.to_str())
    model = state.get("model") or {}
    if model.get("type") != "WordPiece":
        raise UnsupportedTokenizerError(
            f"the tokenizer's model is {model.get('type')}, not WordPiece; tensorflow-text has no exact in-graph "
            "equivalent for it"
        )
    bad = _node_types(state.get("normalizer")) - _ALLOWED_NORMALIZERS
    if bad:
        raise UnsupportedTokenizerError(
            f"the tokenizer's normalizer uses {sorted(bad)}, which is not a per-character mapping "
            f"(supported: {sorted(_ALLOWED_NORMALIZERS)})"
        )
    pre = state.get("pre_tokenizer")
    bad = _node_types(pre) - _ALLOWED_PRE_TOKENIZERS if pre else {"no pre-tokenizer"}
    if bad:
        raise UnsupportedTokenizerError(
            f"the tokenizer's pre-tokenizer uses {sorted(bad)} (supported: {sorted(_ALLOWED_PRE_TOKENIZERS)})"
        )
    if any(t.get("single_word") for t in state.get("added_tokens") or ()):
        raise UnsupportedTokenizerError("the tokenizer has added tokens with single_word=True")
    return backend, state


def _vocabulary(model: dict[str, Any]) -> tuple[list[str], dict[str, int], str]:
    """The vocabulary in id order (gaps filled with unused pieces), the token->id map and the unknown token."""
    vocab_map: dict[str, int] = model["vocab"]
    vocab = [f"[tfslm unused {i}]" for i in range(max(vocab_map.values()) + 1)]
    for token, index in vocab_map.items():
        vocab[index] = token
    unk_token = model.get("unk_token", "[UNK]")
    if unk_token not in vocab_map:
        raise UnsupportedTokenizerError(f"the unknown token {unk_token!r} is not in the vocabulary")
    return vocab, vocab_map, unk_token


def _special_wrap(tokenizer: Any, max_length: int) -> tuple[list[int], list[int], int]:
    """The special tokens the post-processor adds around the text ([CLS] ... [SEP]) and the room left for text."""
    enc = tokenizer("hello", add_special_tokens=True, truncation=False, return_special_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["special_tokens_mask"])
    if 0 not in mask:
        raise UnsupportedTokenizerError("could not find the text between the post-processor's special tokens")
    first, last = mask.index(0), len(mask) - 1 - mask[::-1].index(0)
    prefix, suffix = ids[:first], ids[last + 1 :]
    if list(tokenizer("", add_special_tokens=True, truncation=False)["input_ids"]) != prefix + suffix:
        raise UnsupportedTokenizerError("the post-processor does not wrap the text in fixed special tokens")
    room = max_length - len(prefix) - len(suffix)
    if room < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for text next to the {len(prefix) + len(suffix)} special "
            "tokens; pass a larger max_length"
        )
    return prefix, suffix, room


def _added_tokens(state: dict[str, Any], normalizer: Any, changed: dict[str, str], spaces, punctuation) -> dict[str, Any]:
    """Added tokens ([CLS], [MASK], user-added ones) as private-use sentinel characters.

    Written in the text, they are matched first, as transformers does, and
    stand in the text as one private-use character each until they become their id.
    """
    added = sorted(state.get("added_tokens") or (), key=lambda t: -len(t["content"]))
    sentinels = [chr(0x100000 + i) for i in range(len(added))]
    for ch in sentinels:
        if ch in changed and changed[ch] != "":
            raise UnsupportedTokenizerError(f"the normalizer changes U+{ord(ch):04X}, used for added tokens")
        if ord(ch) in spaces or ord(ch) in punctuation:
            raise UnsupportedTokenizerError(f"the pre-tokenizer splits at U+{ord(ch):04X}, used for added tokens")
    raw_added, normalized_added = [], []
    for token, sentinel in zip(added, sentinels):
        content = token["content"]
        if token.get("normalized") and normalizer is not None:
            normalized_added.append((normalizer.normalize_str(content), sentinel, token["id"]))
        else:
            raw_added.append((content, sentinel, token["id"]))
    return {
        "sentinels": sentinels,
        # Where the normalizer deletes these characters anyway (clean_text), delete them from the
        # input first, so a text that contains one cannot pass for an added token.
        "sentinel_drop": [ord(ch) for ch in sentinels if changed.get(ch) == ""],
        "raw_added": [(c, s, i) for c, s, i in raw_added if c],
        "normalized_added": [(c, s, i) for c, s, i in normalized_added if c],
    }


def _character_classes(changed: dict[str, str], sentinels: Sequence[str]) -> dict[str, Any]:
    """The normalizer's changes sorted into deletions, spaces, CJK-style padding and a replacement table."""
    remove, space, pad, table = [], [], [], {}
    for ch, out in changed.items():
        if ch in sentinels:
            continue
        if out == "":
            remove.append(ord(ch))
        elif out == " ":
            space.append(ord(ch))
        elif out == f" {ch} ":
            pad.append(ord(ch))
        else:
            table[ch] = out
    return {"remove": remove, "space": space, "pad": pad, "table": table}


def _describe(tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Everything the in-graph tokenizer needs, read from (and measured on) ``tokenizer``."""
    backend, state = _fast_wordpiece_state(tokenizer)
    model = state["model"]
    vocab, vocab_map, unk_token = _vocabulary(model)
    prefix, suffix, room = _special_wrap(tokenizer, max_length)
    changed = _scan_normalizer(backend.normalizer, json.dumps(state.get("normalizer"), sort_keys=True))
    spaces, punctuation = _scan_pre_tokenizer(backend.pre_tokenizer, json.dumps(state.get("pre_tokenizer"), sort_keys=True))
    added = _added_tokens(state, backend.normalizer, changed, spaces, punctuation)
    return {
        "vocab": vocab,
        "unk_token": unk_token,
        "unk_id": vocab_map[unk_token],
        "suffix_indicator": model.get("continuing_subword_prefix", "##"),
        "max_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
        "sentinel_drop": added["sentinel_drop"],
        "raw_added": added["raw_added"],
        "normalized_added": added["normalized_added"],
        **_character_classes(changed, added["sentinels"]),
        "whitespace": spaces,
        "punctuation": punctuation,
        "prefix": prefix,
        "suffix": suffix,
        "room": room,
        "pad_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        "truncation_side": getattr(tokenizer, "truncation_side", "right"),
    }


# ------------------------------------------------------------- the in-graph tokenizer
def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


_CLASSES: dict[str, type] = {}


def _tf_text_wordpiece(spec: dict[str, Any]):
    try:
        import tensorflow_text as tf_text
    except Exception as exc:  # ImportError, or NotFoundError when built for another TensorFlow
        raise UnsupportedTokenizerError(
            f"tensorflow-text cannot be imported ({type(exc).__name__}: {str(exc)[:120]}); install the "
            "tensorflow-text release that matches TensorFlow's minor version, or use tokenizer_ops='core'"
        ) from exc
    tf = _tf()
    # The WordPiece model (vocabulary trie) is a uint8 constant in the graph.
    return tf_text.FastWordpieceTokenizer(
        vocab=spec["vocab"],
        suffix_indicator=spec["suffix_indicator"],
        max_bytes_per_word=4 * spec["max_chars_per_word"] + 4,
        token_out_type=tf.int64,
        unknown_token=spec["unk_token"],
        no_pretokenization=True,
        support_detokenization=False,
    )


def _core_wordpiece(spec: dict[str, Any]):
    from tfslm.serving.wordpiece_core import CoreWordpiece

    return CoreWordpiece(spec["vocab"], unknown_token=spec["unk_token"], suffix_indicator=spec["suffix_indicator"],
                         max_chars_per_word=spec["max_chars_per_word"])


def _make_tokenizer_module(spec: dict[str, Any], ops: str = "tf_text"):
    if ops not in TOKENIZER_OPS:
        raise ValueError(f"ops must be one of {', '.join(TOKENIZER_OPS)}, got {ops!r}; pass 'core' or 'tf_text'")
    wordpiece = _tf_text_wordpiece(spec) if ops == "tf_text" else _core_wordpiece(spec)
    if "tokenizer" not in _CLASSES:
        _CLASSES["tokenizer"] = _define_tokenizer_class()
    module = _CLASSES["tokenizer"](spec, wordpiece, ops)
    tf = _tf()
    # The WordPiece step must turn the unknown token itself into exactly one id,
    # since added tokens and over-long words are routed through it.
    check = module.wordpiece.tokenize(tf.constant([spec["unk_token"]])).to_list()
    if check != [[spec["unk_id"]]]:
        raise UnsupportedTokenizerError(f"the WordPiece vocabulary splits the unknown token itself: {check}")
    return module


def _define_tokenizer_class() -> type:
    tf = _tf()

    class InGraphWordPiece(tf.Module):
        """Raw strings -> (input_ids, attention_mask) int32, padded to the batch's longest text."""

        def __init__(self, spec: dict[str, Any], wordpiece: Any, ops: str):
            super().__init__(name="in_graph_wordpiece")
            self._spec = {k: spec[k] for k in ("unk_token", "prefix", "suffix", "room", "pad_id", "truncation_side")}
            self.ops = ops  # "tf_text" (tensorflow_text's FastWordpieceTokenizer) or "core" (CoreWordpiece)
            self.wordpiece = wordpiece
            self._max_chars = spec["max_chars_per_word"]
            self._drop = _char_class(spec["sentinel_drop"])
            self._remove = _char_class(spec["remove"])
            self._space = _char_class(spec["space"])
            self._whitespace = _char_class(spec["whitespace"])
            isolated = _char_class(sorted(set(spec["punctuation"]) | set(spec["pad"])))
            self._isolate = f"({isolated})" if isolated else None
            self._raw_added = [(_literal(c), f" {s} ") for c, s, _ in spec["raw_added"]]
            self._normalized_added = [(_literal(c), f" {s} ") for c, s, _ in spec["normalized_added"]]
            sentinel_ids = [(s, i) for _, s, i in spec["raw_added"] + spec["normalized_added"]]
            self.added_table = None
            if sentinel_ids:
                self.added_table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        tf.constant([s for s, _ in sentinel_ids]), tf.constant([i for _, i in sentinel_ids], tf.int64)
                    ),
                    default_value=-1,
                )
            self.char_table = None
            if spec["table"]:
                # Values are never empty (deleted characters go through a regex), so "" means "unchanged".
                self.char_table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        tf.constant(list(spec["table"].keys())), tf.constant(list(spec["table"].values()))
                    ),
                    default_value="",
                )

        def normalize(self, text):
            """The tokenizer's normalizer, applied character by character (added tokens marked)."""
            text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
            if self._drop:
                text = tf.strings.regex_replace(text, self._drop, "")
            for pattern, sentinel in self._raw_added:
                text = tf.strings.regex_replace(text, pattern, sentinel)
            if self._remove:
                text = tf.strings.regex_replace(text, self._remove, "")
            if self._space:
                text = tf.strings.regex_replace(text, self._space, " ")
            if self.char_table is not None:
                chars = tf.strings.unicode_split(text, "UTF-8")
                mapped = tf.ragged.map_flat_values(self.char_table.lookup, chars)
                chars = tf.ragged.map_flat_values(lambda m, c: tf.where(m == "", c, m), mapped, chars)
                text = tf.strings.reduce_join(chars, axis=-1)
            for pattern, sentinel in self._normalized_added:
                text = tf.strings.regex_replace(text, pattern, sentinel)
            return text

        def words(self, text):
            """The pre-tokenizer: split at whitespace, punctuation (and CJK) as words of their own."""
            text = self.normalize(text)
            if self._whitespace:
                text = tf.strings.regex_replace(text, self._whitespace, " ")
            if self._isolate:
                text = tf.strings.regex_replace(text, self._isolate, r" \1 ")
            return tf.strings.split(text)

        def token_ids(self, text):
            """Ids of each text without special tokens and without truncation: ragged int64 ``[batch, (tokens)]``."""
            words = self.words(text)
            flat_words = words.flat_values
            special = tf.fill(tf.shape(flat_words), tf.constant(-1, tf.int64))
            if self.added_table is not None:
                special = self.added_table.lookup(flat_words)
            too_long = tf.strings.length(flat_words, unit="UTF8_CHAR") > self._max_chars
            # Both kinds of word become one unknown token; added tokens then take their own id.
            flat_words = tf.where((special >= 0) | too_long, self._spec["unk_token"], flat_words)
            pieces = self.wordpiece.tokenize(words.with_flat_values(flat_words))  # [batch, words, pieces]
            per_piece = tf.repeat(special, pieces.values.row_lengths())
            ids = pieces.with_flat_values(tf.where(per_piece >= 0, per_piece, pieces.flat_values))
            return ids.merge_dims(1, 2)

        def wrap(self, ids):
            """Ragged text ids -> (input_ids, attention_mask) int32 with the special tokens, padded."""
            batch = ids.nrows()

            def fixed(tokens):
                return tf.RaggedTensor.from_tensor(tf.tile(tf.constant([tokens], tf.int64), [batch, 1]))

            parts = [fixed(self._spec["prefix"])] if self._spec["prefix"] else []
            parts.append(ids)
            if self._spec["suffix"]:
                parts.append(fixed(self._spec["suffix"]))
            ids = tf.concat(parts, axis=1) if len(parts) > 1 else ids
            # An empty batch would pad to width 0, which the attention matmul rejects; a width of
            # the special tokens (at least 1) lets it return empty outputs instead.
            lengths = ids.row_lengths()
            floor = max(1, len(self._spec["prefix"]) + len(self._spec["suffix"]))
            width = tf.maximum(tf.reduce_max(tf.concat([lengths, [0]], 0)), floor)
            input_ids = tf.cast(ids.to_tensor(default_value=self._spec["pad_id"], shape=tf.stack([batch, width])), tf.int32)
            attention_mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(input_ids)[1], dtype=tf.int32)
            return input_ids, attention_mask

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def __call__(self, text):
            ids = self.token_ids(text)
            room = self._spec["room"]
            ids = ids[:, -room:] if self._spec["truncation_side"] == "left" else ids[:, :room]
            return self.wrap(ids)

        def windows(self, text, stride: int):
            """Each text cut into overlapping windows as ``tfslm.inputs.chunking.chunk_encode`` cuts it.

            Returns ``(input_ids, attention_mask, doc_index)``: one row per window,
            the windows of a text consecutive, ``doc_index`` (int32) the text's
            position. The windows are those of the fast tokenizer with
            ``return_overflowing_tokens=True, stride=stride``: ``room`` text tokens
            each, consecutive windows ``room - stride`` tokens apart, the last one
            ending at the text's end (its start, with left truncation); a text of
            at most ``room`` tokens, the empty text included, is one window.

            Example:
                >>> ids, mask, doc = module.windows(tf.constant(["short", "a long essay ..."]), 128)  # doctest: +SKIP
                >>> doc.numpy()  # doctest: +SKIP
                array([0, 1, 1, 1], dtype=int32)
            """
            ids = self.token_ids(text)
            room = self._spec["room"]
            step = room - stride  # > 0: tfslm.inputs.chunking.check_stride ran at export time
            lengths = ids.row_lengths()
            count = 1 + tf.maximum(lengths - room + step - 1, 0) // step  # 1 + ceil((length - room) / step)
            doc_index = tf.repeat(tf.range(ids.nrows(), dtype=tf.int64), count)
            k = tf.ragged.range(count).flat_values  # window number within its text
            length = tf.gather(lengths, doc_index)
            if self._spec["truncation_side"] == "left":  # the tokenizer cuts from the end backwards
                stop = length - k * step
                start = tf.maximum(stop - room, 0)
            else:
                start = k * step
                stop = tf.minimum(start + room, length)
            offset = tf.gather(ids.row_starts(), doc_index)  # where the window's text starts in ids.flat_values
            positions = tf.ragged.range(offset + start, offset + stop)
            window_ids = positions.with_flat_values(tf.gather(ids.flat_values, positions.flat_values))
            input_ids, attention_mask = self.wrap(window_ids)
            return input_ids, attention_mask, tf.cast(doc_index, tf.int32)

    return InGraphWordPiece


def build_in_graph_tokenizer(tokenizer: Any, max_length: int, *, verify: bool = True, ops: str = "tf_text"):
    """Build a ``tf.Module`` that tokenizes raw strings in the graph exactly like ``tokenizer``.

    Calling it with a ``tf.string`` vector returns ``(input_ids, attention_mask)``,
    int32 ``[batch, longest]``: the ids the Python tokenizer gives with
    ``truncation=True, max_length=max_length, padding=True``. Raises
    :class:`UnsupportedTokenizerError` (a ``ValueError``) saying why when the
    tokenizer has no exact in-graph equivalent.

    Args:
        tokenizer: a transformers fast tokenizer with a WordPiece model.
        max_length: the most tokens per text, special tokens included.
        verify: compare with ``tokenizer`` on a set of tricky texts first.
        ops: how the WordPiece step is built: ``"tf_text"`` (tensorflow-text's
            ``FastWordpieceTokenizer``; consumers must ``import tensorflow_text``) or
            ``"core"`` (:class:`~tfslm.serving.wordpiece_core.CoreWordpiece`: core
            TensorFlow ops only, loads anywhere TensorFlow does).

    Example:
        >>> tok_module = build_in_graph_tokenizer(tokenizer, 128, ops="core")  # doctest: +SKIP
        >>> input_ids, attention_mask = tok_module(tf.constant(["Olá, mundo!"]))  # doctest: +SKIP
    """
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    module = _make_tokenizer_module(_describe(tokenizer, max_length), ops)
    if verify:
        _verify(module, tokenizer, max_length, _PROBES)
    return module


def _verify(module: Any, tokenizer: Any, max_length: int, texts: Sequence[str]) -> None:
    tf = _tf()
    ours, _ = module(tf.constant(list(texts)))
    ours = ours.numpy()
    for row, text in enumerate(texts):
        expected = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        got = [int(i) for i in ours[row][: len(expected)]]
        if got != list(expected) or any(int(i) != module._spec["pad_id"] for i in ours[row][len(expected) :]):
            raise UnsupportedTokenizerError(
                f"the in-graph tokenizer differs from {type(tokenizer).__name__} on probe {text[:40]!r}"
            )


def _window_probes(tokenizer: Any, room: int) -> list[str]:
    """The probes, plus texts of about 1, 2 and 3+ windows made of them (edges of the window arithmetic)."""
    joined = " ".join(p for p in _PROBES if p)
    long_text = joined
    while len(tokenizer(long_text, add_special_tokens=False)["input_ids"]) < 3 * room:
        long_text = f"{long_text} {long_text}"
    words = long_text.split(" ")
    return [*_PROBES, long_text, " ".join(words[: len(words) // 3]), " ".join(words[: len(words) // 2])]


def verify_windows(module: Any, tokenizer: Any, max_length: int, stride: int) -> None:
    """The in-graph windows must equal :func:`tfslm.inputs.chunking.chunk_encode`'s, window for window."""
    from tfslm.inputs.chunking import chunk_encode

    tf = _tf()
    texts = _window_probes(tokenizer, module._spec["room"])
    input_ids, attention_mask, doc_index = module.windows(tf.constant(texts), stride)
    expected, expected_docs = chunk_encode(texts, tokenizer, max_length=max_length, stride=stride)
    got_docs = doc_index.numpy().tolist()
    same = got_docs == expected_docs.tolist()
    if same:
        for row, ids in enumerate(expected["input_ids"]):
            length = int(attention_mask[row].numpy().sum())
            if length != len(ids) or input_ids[row, :length].numpy().tolist() != list(ids):
                same = False
                break
    if not same:
        raise UnsupportedTokenizerError(
            f"the in-graph windows differ from {type(tokenizer).__name__}'s overflowing windows (stride {stride})"
        )
