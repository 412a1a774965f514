"""tfslm.inputs.chunking: overlapping windows that cover every token, the stride check, pooling per document.

The tokenizer is a WordPiece vocabulary of whole words ``t0 .. t299`` built in
the test, so word ``k`` of a text is token ``t{k}`` and every expected window
can be written down without asking the tokenizer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfslm.errors import ConfigError
from tfslm.inputs.chunking import check_stride, chunk_encode, pool_windows
from tfslm.tasks.base import Task

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"t{i}" for i in range(300)]
MAX_LENGTH = 12  # 10 text tokens a window ([CLS] ... [SEP])
ROOM = MAX_LENGTH - 2


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)


def _text(n: int, start: int = 0) -> str:
    return " ".join(WORDS[start:start + n])


def _word_ids(tokenizer, n: int, start: int = 0) -> list[int]:
    return [tokenizer.vocab[w] for w in WORDS[start:start + n]]


def _windows_of(enc, doc_index, doc):
    return [enc["input_ids"][i] for i in np.flatnonzero(doc_index == doc)]


@pytest.mark.parametrize("stride", [0, 1, 3, ROOM - 1])
@pytest.mark.parametrize("length", [0, 1, ROOM, ROOM + 1, 37, 100])
def test_windows_overlap_by_stride_and_cover_every_token(tokenizer, stride, length):
    enc, doc_index = chunk_encode([_text(length)], tokenizer, max_length=MAX_LENGTH, stride=stride)
    windows = _windows_of(enc, doc_index, 0)
    step = ROOM - stride
    expected_count = 1 if length <= ROOM else 1 + math.ceil((length - ROOM) / step)
    assert len(windows) == expected_count
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    body: list[int] = []
    for k, ids in enumerate(windows):
        assert len(ids) <= MAX_LENGTH and ids[0] == cls and ids[-1] == sep, ids
        text = ids[1:-1]
        assert text == _word_ids(tokenizer, ROOM, start=k * step)[: len(text)], f"window {k} starts at token {k * step}"
        if k and stride:
            assert text[:stride] == body[-stride:], f"window {k} must repeat the last {stride} tokens of window {k - 1}"
        body += text[stride:] if k else text
    assert body == _word_ids(tokenizer, length), "the windows, minus their overlap, are the whole text in order"


def test_several_texts_keep_their_order_and_their_windows_together(tokenizer):
    texts = [_text(25), "", _text(3, start=50), _text(11, start=100)]
    enc, doc_index = chunk_encode(texts, tokenizer, max_length=MAX_LENGTH, stride=2)
    assert doc_index.dtype == np.int64
    # 25 tokens: windows at 0, 8, 16 (the last ends at 25); 11 tokens: at 0 and 8
    assert doc_index.tolist() == [0, 0, 0, 1, 2, 3, 3]
    assert set(enc) >= {"input_ids", "attention_mask"} and len(enc["input_ids"]) == len(doc_index)
    assert all(len(m) == len(ids) and set(m) == {1} for m, ids in zip(enc["attention_mask"], enc["input_ids"]))
    assert _windows_of(enc, doc_index, 1) == [[tokenizer.cls_token_id, tokenizer.sep_token_id]]
    assert _windows_of(enc, doc_index, 2)[0][1:-1] == _word_ids(tokenizer, 3, start=50)
    assert [w[1:-1] for w in _windows_of(enc, doc_index, 3)] == [_word_ids(tokenizer, 10, start=100), _word_ids(tokenizer, 3, start=108)]


@pytest.mark.parametrize("stride", [ROOM, ROOM + 5])
def test_check_stride_refuses_an_overlap_that_leaves_no_new_text(tokenizer, stride):
    with pytest.raises(ConfigError) as info:
        check_stride(tokenizer, MAX_LENGTH, stride)
    message = str(info.value)
    assert f"data.chunk_stride: {stride}" in message and f"model.max_length {MAX_LENGTH}" in message
    assert f"below {ROOM}" in message and "\n" not in message
    with pytest.raises(ConfigError):
        chunk_encode(["t1 t2"], tokenizer, max_length=MAX_LENGTH, stride=stride)


def test_check_stride_accepts_the_largest_useful_overlap(tokenizer):
    check_stride(tokenizer, MAX_LENGTH, ROOM - 1)
    check_stride(tokenizer, MAX_LENGTH, 0)


def test_pool_windows_averages_probabilities_per_document():
    logits = np.log(np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9]]))
    pooled = pool_windows(logits, np.array([0, 0, 1]), num_docs=2)
    assert pooled.dtype == np.float32 and pooled.shape == (2, 2)
    probs = np.exp(pooled)  # log of the mean probability: softmax gives the mean back
    np.testing.assert_allclose(probs, [[0.6, 0.4], [0.1, 0.9]], atol=1e-6)


def test_pool_windows_averages_scores_for_regression():
    task = Task(problem_type="regression", score_range=(0, 10))
    pooled = pool_windows(np.array([[0.2], [0.4], [0.9], [0.5]]), np.array([0, 0, 0, 2]), num_docs=3, task=task)
    np.testing.assert_allclose(pooled, [[0.5], [0.0], [0.5]], atol=1e-6)  # document 1 has no window
