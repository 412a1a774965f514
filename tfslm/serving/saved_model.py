"""Export a trained classifier as a TensorFlow SavedModel that takes raw strings.

The SavedModel holds the model's weights, the label names and, for WordPiece
tokenizers (BERT, DistilBERT, ELECTRA, MiniLM, tfslm's from-scratch models), the
whole tokenizer as graph ops, so a server that never imports tfslm or
transformers can call it with text:

    serving_default(text: tf.string [None])
        -> logits, probabilities (float32 [None, num_labels]),
           label_id (int64 [None]), label (tf.string [None])
    serve_tokens(input_ids, attention_mask: int32 [None, None]) -> the same outputs
    tokenize(text: tf.string [None]) -> input_ids, attention_mask (int32 [None, None])

Runs trained with ``data.long_text: chunk`` (``chunk_stride``) pool in the graph:
``serving_default`` tokenizes each text without truncation, cuts it into the
overlapping windows of :mod:`tfslm.inputs.chunking`, runs the model on all windows of
the request as one batch and averages them per text (mean probability, mean
score for regression), so it returns what :class:`tfslm.Predictor` returns;
``tokenize_windows(text) -> input_ids, attention_mask, doc_index`` shows the
windows. ``serve_tokens`` scores each row it is given (one window).

The in-graph tokenizer reproduces the Python (fast) tokenizer id for id: its
normalizer (clean-up of control characters, CJK padding, accent stripping,
lower-casing) and pre-tokenizer (whitespace and punctuation) are measured on
every Unicode code point when exporting and compiled into regular expressions
and a lookup table; the WordPiece step is ``tensorflow_text``'s
``FastWordpieceTokenizer`` with the same vocabulary, stored in the graph. Added
tokens written literally in the text (``[SEP]``, ``[MASK]``) become their ids
as in transformers; texts are truncated to ``max_length`` tokens, special
tokens included, and padded to the longest text of the batch.

The WordPiece op lives in ``tensorflow-text``: a consumer must
``import tensorflow_text`` before ``tf.saved_model.load`` (that import registers
the op; nothing else from it is used):

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers FastWordpieceTokenizeWithOffsets
    model = tf.saved_model.load("runs/demo/saved_model")
    out = model.signatures["serving_default"](text=tf.constant(["Um texto."]))
    out["label"], out["probabilities"]

Tokenizers without an in-graph equivalent (BPE, SentencePiece/Unigram, or a
WordPiece tokenizer whose normalizer cannot be expressed per character) get
``serve_tokens`` alone, also registered as ``serving_default``; the returned
``note`` says why. That SavedModel needs TensorFlow only. The same happens
where tensorflow-text cannot be imported (its wheels exist for Linux x86-64
and macOS arm64 only).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Sequence

from tfslm.atomic import atomic_directory
from tfslm.errors import ModelError

__all__ = ["export_saved_model", "build_in_graph_tokenizer", "UnsupportedTokenizerError"]

IN_GRAPH_TOKENIZER = "tensorflow_text.FastWordpieceTokenizer"
CONSUMER_IMPORT = "tensorflow_text"

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


def _describe(tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Everything the in-graph tokenizer needs, read from (and measured on) ``tokenizer``."""
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

    vocab_map: dict[str, int] = model["vocab"]
    vocab = [f"[tfslm unused {i}]" for i in range(max(vocab_map.values()) + 1)]
    for token, index in vocab_map.items():
        vocab[index] = token
    unk_token = model.get("unk_token", "[UNK]")
    if unk_token not in vocab_map:
        raise UnsupportedTokenizerError(f"the unknown token {unk_token!r} is not in the vocabulary")

    # Special tokens the post-processor adds around the text ([CLS] ... [SEP]).
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

    normalizer = backend.normalizer
    changed = _scan_normalizer(normalizer, json.dumps(state.get("normalizer"), sort_keys=True))
    spaces, punctuation = _scan_pre_tokenizer(backend.pre_tokenizer, json.dumps(pre, sort_keys=True))

    # Added tokens ([CLS], [MASK], user-added ones) written in the text are matched first,
    # as transformers does, and stand in the text as one private-use character each
    # until they become their id.
    added = sorted(state.get("added_tokens") or (), key=lambda t: -len(t["content"]))
    sentinels = [chr(0x100000 + i) for i in range(len(added))]
    for ch in sentinels:
        if ch in changed and changed[ch] != "":
            raise UnsupportedTokenizerError(f"the normalizer changes U+{ord(ch):04X}, used for added tokens")
        if ord(ch) in spaces or ord(ch) in punctuation:
            raise UnsupportedTokenizerError(f"the pre-tokenizer splits at U+{ord(ch):04X}, used for added tokens")
    # Where the normalizer deletes these characters anyway (clean_text), delete them from the
    # input first, so a text that contains one cannot pass for an added token.
    sentinel_drop = [ord(ch) for ch in sentinels if changed.get(ch) == ""]
    raw_added, normalized_added = [], []
    for token, sentinel in zip(added, sentinels):
        content = token["content"]
        if token.get("normalized") and normalizer is not None:
            content = normalizer.normalize_str(content)
            normalized_added.append((content, sentinel, token["id"]))
        else:
            raw_added.append((content, sentinel, token["id"]))

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
    return {
        "vocab": vocab,
        "unk_token": unk_token,
        "unk_id": vocab_map[unk_token],
        "suffix_indicator": model.get("continuing_subword_prefix", "##"),
        "max_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
        "sentinel_drop": sentinel_drop,
        "raw_added": [(c, s, i) for c, s, i in raw_added if c],
        "normalized_added": [(c, s, i) for c, s, i in normalized_added if c],
        "remove": remove,
        "space": space,
        "pad": pad,
        "table": table,
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


def _make_tokenizer_module(spec: dict[str, Any]):
    try:
        import tensorflow_text  # noqa: F401
    except Exception as exc:  # ImportError, or NotFoundError when built for another TensorFlow
        raise UnsupportedTokenizerError(
            f"tensorflow-text cannot be imported ({type(exc).__name__}: {str(exc)[:120]}); install the "
            "tensorflow-text release that matches TensorFlow's minor version"
        ) from exc
    if "tokenizer" not in _CLASSES:
        _CLASSES["tokenizer"] = _define_tokenizer_class()
    module = _CLASSES["tokenizer"](spec)
    tf = _tf()
    # FastWordpieceTokenizer must turn the unknown token itself into exactly one id,
    # since added tokens and over-long words are routed through it.
    check = module.wordpiece.tokenize(tf.constant([spec["unk_token"]])).to_list()
    if check != [[spec["unk_id"]]]:
        raise UnsupportedTokenizerError(f"the WordPiece vocabulary splits the unknown token itself: {check}")
    return module


def _define_tokenizer_class() -> type:
    tf = _tf()
    import tensorflow_text as tf_text

    class InGraphWordPiece(tf.Module):
        """Raw strings -> (input_ids, attention_mask) int32, padded to the batch's longest text."""

        def __init__(self, spec: dict[str, Any]):
            super().__init__(name="in_graph_wordpiece")
            self._spec = {k: spec[k] for k in ("unk_token", "prefix", "suffix", "room", "pad_id", "truncation_side")}
            # The WordPiece model (vocabulary trie) is a uint8 constant in the graph.
            self.wordpiece = tf_text.FastWordpieceTokenizer(
                vocab=spec["vocab"],
                suffix_indicator=spec["suffix_indicator"],
                max_bytes_per_word=4 * spec["max_chars_per_word"] + 4,
                token_out_type=tf.int64,
                unknown_token=spec["unk_token"],
                no_pretokenization=True,
                support_detokenization=False,
            )
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


def build_in_graph_tokenizer(tokenizer: Any, max_length: int, *, verify: bool = True):
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

    Example:
        >>> tok_module = build_in_graph_tokenizer(tokenizer, 128)  # doctest: +SKIP
        >>> input_ids, attention_mask = tok_module(tf.constant(["Olá, mundo!"]))  # doctest: +SKIP
    """
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    module = _make_tokenizer_module(_describe(tokenizer, max_length))
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


def _verify_windows(module: Any, tokenizer: Any, max_length: int, stride: int) -> None:
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


# ------------------------------------------------------------- the SavedModel
def _make_serving_module(
    model: Any, label_names: Sequence[str], text_tokenizer: Any, task: Any, labels: Any = None, chunk_stride: int | None = None
):
    tf = _tf()
    if not getattr(model, "built", True):
        model(model.dummy_inputs, training=False)
    uses_token_types = "token_type_ids" in inspect.signature(model.call).parameters

    class _Holder:  # keeps the Keras model out of the SavedModel's object graph
        def __init__(self, keras_model):
            self.model = keras_model

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__(name="tfslm_classifier")
            self._holder = _Holder(model)
            # The weights are tracked directly: saving the Keras model object itself would
            # also trace every layer's call for Keras, slowly and to no use when serving.
            self.model_variables = list(model.variables)
            self.text_tokenizer = text_tokenizer

        def _logits(self, input_ids, attention_mask):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if uses_token_types:
                inputs["token_type_ids"] = tf.zeros_like(input_ids)
            outputs = self._holder.model(inputs, training=False)
            logits = outputs.logits if hasattr(outputs, "logits") else outputs[0]
            return tf.cast(logits, tf.float32)

        def _outputs(self, logits):
            return task.serving_outputs(logits, label_names, labels)

        def _predict(self, input_ids, attention_mask):
            return self._outputs(self._logits(input_ids, attention_mask))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
            ]
        )
        def serve_tokens(self, input_ids, attention_mask):
            return self._predict(input_ids, attention_mask)

    class TextServingModule(ServingModule):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(self, text):
            input_ids, attention_mask = self.text_tokenizer(text)
            return self._predict(input_ids, attention_mask)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize(self, text):
            input_ids, attention_mask = self.text_tokenizer(text)
            return {"input_ids": input_ids, "attention_mask": attention_mask}

    class WindowServingModule(TextServingModule):
        """``data.long_text: chunk`` runs: every text is scored in windows, pooled per text in the graph."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve_text(self, text):
            input_ids, attention_mask, doc_index = self.text_tokenizer.windows(text, chunk_stride)
            # All windows of the request go through the model as one batch; a text's
            # windows are then averaged by the task's pooling rule (task.pool_windows in NumPy).
            logits = self._logits(input_ids, attention_mask)
            return self._outputs(task.pool_windows_graph(logits, doc_index, tf.shape(text)[0]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def tokenize_windows(self, text):
            input_ids, attention_mask, doc_index = self.text_tokenizer.windows(text, chunk_stride)
            return {"input_ids": input_ids, "attention_mask": attention_mask, "doc_index": doc_index}

    if text_tokenizer is None:
        return ServingModule()
    return WindowServingModule() if chunk_stride is not None else TextServingModule()


def export_saved_model(
    model: Any,
    tokenizer: Any,
    label_names: Sequence[str],
    max_length: int,
    output_dir: str | os.PathLike,
    *,
    fallback_reason: str | None = None,
    task: Any = None,
    labels: Any = None,
    chunk_stride: int | None = None,
) -> dict[str, Any]:
    """Write a TF SavedModel with serving signatures to ``output_dir`` atomically.

    ``serving_default`` takes raw strings (``text``) and tokenizes them in the
    graph exactly as ``tokenizer`` does; ``serve_tokens`` takes ``input_ids`` and
    ``attention_mask``; ``tokenize`` returns the ids. Both prediction signatures
    return ``logits``, ``probabilities``, ``label_id`` and ``label``. When the
    tokenizer has no in-graph equivalent, or ``fallback_reason`` is given, only
    ``serve_tokens`` is exported (also as ``serving_default``) and ``note`` says
    why. Loading a raw-text export needs ``import tensorflow_text`` first.

    Args:
        model: a trained transformers TF sequence-classification model.
        tokenizer: its transformers fast tokenizer.
        label_names: one name per output class, in label-id order.
        max_length: the most tokens per text, special tokens included.
        output_dir: where the SavedModel goes; replaced in one step if it exists.
        fallback_reason: export the token signature only, giving this reason.
        task: the run's :class:`~tfslm.tasks.base.Task`. Regression runs return
            ``logits``, ``scores`` (``[None, targets]``, original scale, rounded to
            the score grid) and ``score`` (the single target or the derived
            total) instead of the class outputs; ordinal runs add ``score`` to
            them. None or single-label classification: the outputs above, unchanged.
        labels: the run's :class:`~tfslm.data.labels.LabelSpace` (label values for ordinal scores).
        chunk_stride: set for ``data.long_text: chunk`` runs: ``serving_default``
            then cuts each text into overlapping windows of ``max_length`` tokens
            (``chunk_stride`` tokens of overlap, as :mod:`tfslm.inputs.chunking`), runs the
            model on all windows of the request as one batch and averages them per
            text (mean probability; mean score for regression), with the same
            outputs; ``tokenize_windows`` returns the windows and their
            ``doc_index``. ``serve_tokens`` still scores each row it is given.

    Returns:
        ``{"path", "signatures", "in_graph_tokenizer", "consumer_imports",
        "labels", "max_length", "long_text", "pooling", "note"}`` (plus
        ``chunk_stride`` for chunk runs); ``in_graph_tokenizer`` is None and
        ``note`` a one-line reason when the text signature was left out;
        ``pooling`` says where windows are averaged ("in_graph"; "client" when
        a chunk run has no text signature; None for truncation).

    Example:
        >>> info = export_saved_model(model, tokenizer, ["neg", "pos"], 256, "runs/demo/saved_model")  # doctest: +SKIP
        >>> info["signatures"]  # doctest: +SKIP
        ['serving_default', 'serve_tokens', 'tokenize']
    """
    from tfslm.tasks.base import Task

    task = Task.resolve(task)
    label_names = task.output_names(label_names)  # one per output: the target names of a scorer
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if num_labels is not None and len(label_names) != num_labels:
        raise ValueError(
            f"label_names has {len(label_names)} names but the model has {num_labels} labels; pass one name per label"
        )
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        raise ValueError(
            f"max_length={max_length} exceeds the model's max_position_embeddings={positions}; "
            f"pass max_length <= {positions}"
        )

    if chunk_stride is not None:
        if not isinstance(chunk_stride, int) or isinstance(chunk_stride, bool) or chunk_stride < 1:
            raise ValueError(f"chunk_stride must be a positive integer or None, got {chunk_stride!r}")
        from tfslm.inputs.chunking import check_stride

        check_stride(tokenizer, max_length, chunk_stride)

    note = fallback_reason
    text_tokenizer = None
    if note is None:
        try:
            text_tokenizer = build_in_graph_tokenizer(tokenizer, max_length)
            if chunk_stride is not None:
                _verify_windows(text_tokenizer, tokenizer, max_length, chunk_stride)
        except UnsupportedTokenizerError as exc:
            text_tokenizer = None
            note = f"raw-text signature left out: {exc}; serve_tokens takes ids from the Python tokenizer"
    if note is not None and chunk_stride is not None:
        note += (
            "; this run scores long texts in windows: send each window as a row (tfslm.inputs.chunking.chunk_encode) "
            "and average them per text, or use tfslm.Predictor"
        )
    module = _make_serving_module(model, label_names, text_tokenizer, task, labels, chunk_stride)
    if text_tokenizer is not None:
        signatures = {
            "serving_default": module.serve_text.get_concrete_function(),
            "serve_tokens": module.serve_tokens.get_concrete_function(),
            "tokenize": module.tokenize.get_concrete_function(),
        }
        if chunk_stride is not None:
            signatures["tokenize_windows"] = module.tokenize_windows.get_concrete_function()
    else:
        tokens = module.serve_tokens.get_concrete_function()
        signatures = {"serving_default": tokens, "serve_tokens": tokens}
    info = {
        "path": str(Path(output_dir)),
        "signatures": list(signatures),
        "in_graph_tokenizer": IN_GRAPH_TOKENIZER if text_tokenizer is not None else None,
        "consumer_imports": [CONSUMER_IMPORT] if text_tokenizer is not None else [],
        "labels": label_names,
        "max_length": max_length,
        "long_text": "chunk" if chunk_stride is not None else "truncate",
        "pooling": None if chunk_stride is None else ("in_graph" if text_tokenizer is not None else "client"),
        "note": note,
    }
    if chunk_stride is not None:
        info["chunk_stride"] = chunk_stride
    info["task"] = task.to_dict()
    tf = _tf()
    with atomic_directory(output_dir) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        extra = Path(tmp) / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / "tfslm_export.json").write_text(
            json.dumps({k: v for k, v in info.items() if k != "path"}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    return info
