"""WordPiece from core TensorFlow ops: greedy longest-match-first with ``tf.lookup``.

:class:`CoreWordpiece` is a drop-in for the one call tfslm makes of
``tensorflow_text.FastWordpieceTokenizer`` (``tokenize`` on pre-split words), built
from ops every TensorFlow build registers (``StringSubstr``, ``StringJoin``,
``LookupTableFindV2``, ``While``, ...), so a SavedModel that uses it loads in
``saved_model_cli``, TF Serving's stock image or any process that never imported
``tensorflow_text``.

The formulation is vectorised over all words of a batch rather than one
``tf.while_loop`` per word: each round takes every word that still has
characters left, builds all its candidate pieces at once (every length from 1 to
the longest vocabulary entry, capped by what is left; ``##`` before a
continuation), looks them up in one hash-table call and keeps the longest hit.
The round count is the most pieces of any word, not the word count; most words
of a text are done after the first round. A word with no match at some
position becomes the unknown token, as in transformers' ``WordPiece``.

Example:
    >>> wp = CoreWordpiece(["[UNK]", "un", "##aff", "##able"], unknown_token="[UNK]")  # doctest: +SKIP
    >>> wp.tokenize(tf.constant(["unaffable"])).to_list()  # doctest: +SKIP
    [[1, 2, 3]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["CORE_TOKENIZER", "CoreWordpiece"]

CORE_TOKENIZER = "tfslm.CoreWordpiece (core TensorFlow ops)"


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def longest_piece(vocab: Sequence[str], suffix_indicator: str, max_chars_per_word: int) -> tuple[int, int]:
    """The most characters a word-initial and a continuation piece can cover: bounds for the candidate lengths."""
    initial = continuation = 1
    for token in vocab:
        if token.startswith("[tfslm unused"):  # fillers for id gaps: never in a word
            continue
        if suffix_indicator and token.startswith(suffix_indicator):
            continuation = max(continuation, len(token) - len(suffix_indicator))
        initial = max(initial, len(token))  # "##x" can also be a whole word where "#" is not split off
    return min(initial, max_chars_per_word), min(continuation, max_chars_per_word)


def _table(keys, values):
    import tensorflow as tf

    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(keys)), tf.constant(list(values), tf.int64)), default_value=-1
    )


def _new_class() -> type:
    tf = _tf()

    class CoreWordpiece(tf.Module):
        """Words (``tf.string``, any ragged rank) -> their WordPiece ids (int64), one ragged dimension more."""

        def __init__(self, vocab: Sequence[str], *, unknown_token: str, suffix_indicator: str = "##",
                     max_chars_per_word: int = 100):
            super().__init__(name="core_wordpiece")
            self._unk_id = int(list(vocab).index(unknown_token))
            self._suffix = suffix_indicator
            self._max_initial, self._max_continuation = longest_piece(vocab, suffix_indicator, max_chars_per_word)
            self._max_rounds = max_chars_per_word + 1  # each round consumes at least one character
            self.table = _table(list(vocab), range(len(vocab)))
            # Continuation pieces keyed without their "##", so no candidate string is ever joined.
            marked = [(t[len(suffix_indicator):], i) for i, t in enumerate(vocab) if suffix_indicator and t.startswith(suffix_indicator)]
            self.continuation_table = _table([t for t, _ in marked] or [""], [i for _, i in marked] or [-1])

        def tokenize(self, words):
            """``[..., (words)]`` strings -> ``[..., (words), (pieces)]`` int64 ids."""
            if isinstance(words, tf.RaggedTensor):
                return words.with_flat_values(self.tokenize(words.flat_values))
            words = tf.convert_to_tensor(words, tf.string)
            if words.shape.rank != 1:
                raise ValueError(f"CoreWordpiece.tokenize takes a vector or a RaggedTensor of words, got rank {words.shape.rank}")
            return _tokenize_flat(self, words)

    return CoreWordpiece


def _round(self, words, lengths, active, pos):
    """One piece for each active word: ``(piece ids, piece lengths)``; length 0 where nothing matches."""
    import tensorflow as tf  # not _tf(): autograph traces these functions and cannot convert os.environ
    left = tf.gather(lengths, active) - pos
    count = tf.minimum(left, tf.where(pos > 0, tf.constant(self._max_continuation, tf.int64), self._max_initial))
    sizes = tf.ragged.range(count, 0, -1)  # longest first, so the first hit is the longest one
    owner = sizes.value_rowids()
    size = sizes.flat_values
    start = tf.gather(pos, owner)
    text = tf.strings.substr(tf.gather(words, tf.gather(active, owner)), start, size, unit="UTF8_CHAR")
    ids = tf.where(start > 0, self.continuation_table.lookup(text), self.table.lookup(text))
    # Index in its row of the first hit (the longest piece); rows without one get their length.
    in_row = tf.range(tf.size(ids, tf.int64)) - tf.gather(sizes.row_starts(), owner)
    first = tf.math.unsorted_segment_min(tf.where(ids >= 0, in_row, tf.gather(count, owner)), owner, tf.size(active))
    first = tf.minimum(first, count)
    found = first < count
    piece_id = tf.where(found, tf.gather(ids, sizes.row_starts() + tf.minimum(first, count - 1)), -1)
    piece_len = tf.where(found, count - first, 0)
    return piece_id, piece_len


def _tokenize_flat(self, words):
    """Flat words -> ragged ``[words, (pieces)]``: rounds of :func:`_round` while any word has characters left."""
    import tensorflow as tf
    lengths = tf.strings.length(words, unit="UTF8_CHAR")
    lengths = tf.cast(lengths, tf.int64)
    n = tf.size(words, tf.int64)
    # Most words are one vocabulary entry: one lookup settles them, the rounds take the rest.
    # (Greedy longest-first would find the whole word first too.) An empty word has no pieces.
    whole = self.table.lookup(words)
    whole_words = tf.where((lengths > 0) & (whole >= 0))[:, 0]
    active0 = tf.where((lengths > 0) & (whole < 0))[:, 0]

    def body(r, active, pos, failed, out_word, out_round, out_id):
        piece_id, piece_len = _round(self, words, lengths, active, pos)
        miss = piece_len == 0
        failed = tf.tensor_scatter_nd_max(failed, tf.expand_dims(tf.boolean_mask(active, miss), 1),
                                          tf.ones_like(tf.boolean_mask(active, miss), tf.int32))
        out_word = out_word.write(r + 1, active)
        out_round = out_round.write(r + 1, tf.fill(tf.shape(active), tf.cast(r, tf.int64) + 1))
        out_id = out_id.write(r + 1, piece_id)
        pos = pos + piece_len
        going = tf.logical_and(tf.logical_not(miss), pos < tf.gather(lengths, active))
        return r + 1, tf.boolean_mask(active, going), tf.boolean_mask(pos, going), failed, out_word, out_round, out_id

    # Element 0 is empty, so concat() has something to join when no word needs a round.
    arrays = [tf.TensorArray(tf.int64, size=1, dynamic_size=True, infer_shape=False).write(0, tf.zeros([0], tf.int64))
              for _ in range(3)]
    _, _, _, failed, out_word, out_round, out_id = tf.while_loop(
        lambda r, active, *_: tf.size(active) > 0,
        body,
        (tf.constant(0), active0, tf.zeros_like(active0), tf.zeros([n], tf.int32), *arrays),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None]),
                          tf.TensorShape([None]), *(tf.TensorShape(None),) * 3),
        maximum_iterations=self._max_rounds,
    )
    word, rnd, ids = (tf.reshape(a.concat(), [-1]) for a in (out_word, out_round, out_id))
    word = tf.concat([whole_words, word], 0)
    rnd = tf.concat([tf.zeros_like(whole_words), rnd], 0)
    return _assemble(self, n, failed, word, rnd, tf.concat([tf.gather(whole, whole_words), ids], 0))


def _assemble(self, n, failed, word, rnd, ids):
    """The pieces of all rounds in word order; a failed word's pieces replaced by the unknown token."""
    import tensorflow as tf
    # A word with a position nothing matches is one unknown token: drop its pieces, add [UNK].
    keep = tf.gather(failed, word) == 0
    failed_words = tf.where(failed > 0)[:, 0]
    word = tf.concat([tf.boolean_mask(word, keep), failed_words], 0)
    rnd = tf.concat([tf.boolean_mask(rnd, keep), tf.zeros_like(failed_words)], 0)
    ids = tf.concat([tf.boolean_mask(ids, keep), tf.fill(tf.shape(failed_words), tf.constant(self._unk_id, tf.int64))], 0)
    order = tf.argsort(word * (self._max_rounds + 2) + rnd, stable=True)
    return tf.RaggedTensor.from_value_rowids(tf.gather(ids, order), tf.gather(word, order), nrows=n)


_CLASSES: dict[str, type] = {}


def CoreWordpiece(vocab: Sequence[str], *, unknown_token: str, suffix_indicator: str = "##", max_chars_per_word: int = 100) -> Any:
    """Build a core-ops WordPiece ``tf.Module`` over ``vocab`` (ids are positions in it).

    Args:
        vocab: the pieces in id order; continuation pieces start with ``suffix_indicator``.
        unknown_token: the piece a word with no match becomes.
        suffix_indicator: the prefix of continuation pieces.
        max_chars_per_word: bounds the loop (longer words are turned into the unknown token by the caller).

    Example:
        >>> wp = CoreWordpiece(["[UNK]", "un", "##aff", "##able"], unknown_token="[UNK]")  # doctest: +SKIP
        >>> wp.tokenize(tf.constant(["unaffable", "xyz"])).to_list()  # doctest: +SKIP
        [[1, 2, 3], [0]]
    """
    if "class" not in _CLASSES:
        _CLASSES["class"] = _new_class()
    return _CLASSES["class"](vocab, unknown_token=unknown_token, suffix_indicator=suffix_indicator,
                             max_chars_per_word=max_chars_per_word)
