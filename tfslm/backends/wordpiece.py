"""A deterministic BERT-style WordPiece tokenizer trained on texts, without transformers.

Only the ``tokenizers`` library (Rust) is used here: the vocabulary and a
``tokenizers.Tokenizer`` with BERT's normaliser, pre-tokeniser and
``[CLS] ... [SEP]`` template. A backend wraps that object in its own
tokenizer class (:func:`tfslm.backends.hf_tf.train_wordpiece_tokenizer`
makes a ``BertTokenizerFast``); a KerasHub backend could take the same
vocabulary list.

Example:
    >>> backend = wordpiece_tokenizer_object(["a small corpus", "of texts"], vocab_size=300)
    >>> backend.encode("a small text").tokens[0]
    '[CLS]'
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

__all__ = ["SPECIAL_TOKENS", "wordpiece_vocabulary", "wordpiece_tokenizer_object"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


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


def wordpiece_tokenizer_object(texts: Iterable[str], *, vocab_size: int = 8000, lowercase: bool = True):
    """A ``tokenizers.Tokenizer``: BERT normaliser and pre-tokeniser, a vocabulary from :func:`wordpiece_vocabulary`.

    Every printable ASCII character is in the vocabulary, so punctuation or a
    digit missing from the training texts never becomes ``[UNK]`` at prediction time.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase, clean_text=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
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
    return backend
