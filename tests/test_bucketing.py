"""The bucketed input pipeline: every row once, declared shapes only, determinism, token cache."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from conftest import make_rows, make_varied_rows, write_csv

BATCH = 8
MAX_LENGTH = 48


@pytest.fixture(scope="module")
def tiny():
    import datasets

    from tfslm.backends.hf_tf import train_wordpiece_tokenizer

    rows = make_varied_rows(210)
    names = ["food", "science", "sports"]
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    make = lambda part: datasets.Dataset.from_dict(  # noqa: E731
        {"text": [r["text"] for r in part], "label": [names.index(r["label"]) for r in part]}, features=features
    )
    data = datasets.DatasetDict({"train": make(rows[:170]), "validation": make(rows[170:])})
    tokenizer = train_wordpiece_tokenizer(data["train"]["text"], vocab_size=300, model_max_length=64)
    return data, tokenizer


def _expected(data, tokenizer, split):
    enc = tokenizer(list(data[split]["text"]), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    return [(tuple(ids), label) for ids, label in zip(enc, list(data[split]["label"]))]


def _epoch(ds):
    rows, shapes = [], []
    for features, labels in ds:
        ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy()
        shapes.append(ids.shape)
        assert features["token_type_ids"].shape == ids.shape
        for row, m, label in zip(ids, mask, labels.numpy()):
            n = int(m.sum())
            assert m[:n].all() and not m[n:].any()  # mask is a prefix of ones
            assert (row[n:] == 0).all()  # padding uses the pad id
            rows.append((tuple(int(x) for x in row[:n]), int(label)))
    return rows, shapes


def _inputs(tiny, **kw):
    from tfslm.inputs.bucketing import bucketed_inputs

    data, tokenizer = tiny
    kw.setdefault("seed", 7)
    return bucketed_inputs(data, None, tokenizer, batch_size=BATCH, max_length=MAX_LENGTH, **kw)


def _datasets(tiny, **kw):
    return _inputs(tiny, **kw).as_tuple()


@pytest.mark.slow
def test_every_row_exactly_once_per_epoch_with_labels(tiny):
    data, tokenizer = tiny
    inputs = _inputs(tiny)
    train_ds = inputs.train
    expected = sorted(_expected(data, tokenizer, "train"))
    orders = []
    for _ in range(2):  # reshuffled each epoch, never a row lost or repeated
        rows, shapes = _epoch(train_ds)
        assert sorted(rows) == expected
        orders.append(rows)
        for batch, length in shapes:
            assert batch <= BATCH and (length % 8 == 0 or length == inputs.statistics.bucket_edges[-1])
    assert orders[0] != orders[1]
    assert len(train_ds) == len(shapes)
    stats = inputs.statistics.padding["train"]
    assert stats["rows"] == data["train"].num_rows and stats["batches"] == len(shapes)
    # Batches are near-homogeneous: far less padding than one bucket would give.
    lengths = np.array([len(ids) for ids, _ in expected])
    one_bucket = 1 - lengths.sum() / (len(lengths) * 48)
    assert stats["padding_fraction"] < one_bucket / 2


def test_padding_stats_are_those_of_the_first_epoch(tiny):
    inputs = _inputs(tiny)
    real = padded = 0
    for features, _ in inputs.train:
        mask = features["attention_mask"].numpy()
        real, padded = real + int(mask.sum()), padded + mask.size
    assert inputs.statistics.padding["train"]["real_tokens"] == real
    assert inputs.statistics.padding["train"]["padded_tokens"] == padded


def test_group_by_length_overrides_the_epoch_size_rule(tiny):
    """auto groups from 16 batches per epoch; True groups a short epoch too, False never; every row still once."""
    import datasets

    data, tokenizer = tiny
    small = datasets.DatasetDict({"train": data["train"].select(range(96)), "validation": data["validation"]})  # 12 batches
    fractions = {}
    for setting in (None, True, False):
        inputs = _inputs((small, tokenizer), group_by_length=setting)
        stats = inputs.statistics.padding["train"]
        assert stats["grouped_by_length"] is (setting is True)
        rows, _ = _epoch(inputs.train)
        assert sorted(rows) == sorted(_expected(small, tokenizer, "train"))
        fractions[setting] = stats["padding_fraction"]
    assert fractions[True] < fractions[None] / 2 and fractions[None] == fractions[False]
    big = _inputs(tiny, group_by_length=False).statistics.padding["train"]  # 22 batches: auto would group
    assert not big["grouped_by_length"]
    assert _inputs(tiny).statistics.padding["train"]["grouped_by_length"]


def test_validation_keeps_every_row_in_order(tiny):
    data, tokenizer = tiny
    inputs = _inputs(tiny, static_shapes=True)
    rows, shapes = _epoch(inputs.validation)
    assert rows == _expected(data, tokenizer, "validation")
    assert all(length in inputs.statistics.bucket_edges for _, length in shapes)


def test_static_shapes_yield_only_declared_shapes(tiny):
    data, tokenizer = tiny
    inputs = _inputs(tiny, static_shapes=True)
    train_ds = inputs.train
    edges = inputs.statistics.bucket_edges
    assert all(e % 8 == 0 or e == MAX_LENGTH for e in edges)
    declared = {(BATCH, e) for e in edges}
    seen = set()
    for _ in range(2):
        rows, shapes = _epoch(train_ds)
        seen |= set(shapes)
        # drop_remainder: only the last partial batch is left out, nothing repeated
        assert not Counter(rows) - Counter(_expected(data, tokenizer, "train"))
        assert data["train"].num_rows - len(rows) < BATCH
    assert seen <= declared
    assert inputs.statistics.padding["train"]["distinct_shapes"] <= len(edges)
    assert train_ds.element_spec[0]["input_ids"].shape[0] == BATCH


@pytest.mark.slow
def test_same_seed_same_batches_other_seed_other_order(tiny):
    def batches(seed):
        train_ds, _ = _datasets(tiny, seed=seed)
        return [f["input_ids"].numpy().tolist() for f, _ in train_ds]

    first = batches(11)
    assert batches(11) == first
    assert batches(12) != first


def test_no_python_in_the_pipeline(tiny):
    import tensorflow as tf

    train_ds, val_ds = _datasets(tiny)
    for ds in (train_ds, val_ds):
        graph = ds._as_serialized_graph().numpy()
        assert b"PyFunc" not in graph and b"EagerPyFunc" not in graph
        # built in memory: a multi-worker cluster shards it by data, not by (absent) files
        assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_bucket_boundaries_follow_the_lengths():
    from tfslm.inputs.bucketing import bucket_boundaries

    lengths = [10] * 100 + [30] * 100 + [200] * 100
    edges = bucket_boundaries(lengths, 256, batch_size=8)
    assert edges[0] == 16 and edges[-1] == 200 and all(e % 8 == 0 for e in edges)
    assert bucket_boundaries([507] * 40, 510, batch_size=8) == [510]  # capped at max_length
    assert bucket_boundaries([5, 6], 128, batch_size=16) == [8]


def test_token_cache_reused_and_invalidated(tmp_path):
    from tfslm.inputs.token_cache import tokenize_cached
    from tfslm.config import DataConfig
    from tfslm.data.loading import load_data
    from tfslm.backends.hf_tf import train_wordpiece_tokenizer

    train_file = write_csv(tmp_path / "train.csv", make_varied_rows(60, seed=5))
    data = load_data(DataConfig(train_file=str(train_file)), seed=0)
    tokenizer = train_wordpiece_tokenizer(data["train"]["text"], vocab_size=300)
    first = tokenize_cached(data["train"], tokenizer, 32)
    assert not first.cache_hit and first.dataset.column_names == ["label", "input_ids", "length"]

    # A second run: the data read again from the file, the same tokenizer rebuilt.
    again = load_data(DataConfig(train_file=str(train_file)), seed=0)
    rebuilt = train_wordpiece_tokenizer(again["train"]["text"], vocab_size=300)
    tokenizer(["warm up the backend"], truncation=True, max_length=8)  # backend truncation state is not part of the key
    second = tokenize_cached(again["train"], rebuilt, 32)
    assert second.cache_hit and second.cache_file == first.cache_file
    assert second.dataset["input_ids"] == first.dataset["input_ids"]

    longer = tokenize_cached(again["train"], rebuilt, 64)
    assert not longer.cache_hit and longer.cache_file != first.cache_file
    other_tokenizer = train_wordpiece_tokenizer(again["train"]["text"], vocab_size=350)
    other = tokenize_cached(again["train"], other_tokenizer, 32)
    assert not other.cache_hit and other.cache_file not in (first.cache_file, longer.cache_file)
    uncased = train_wordpiece_tokenizer(again["train"]["text"], vocab_size=300, lowercase=False)
    assert not tokenize_cached(again["train"], uncased, 32).cache_hit


def test_prepare_tf_dataset_path_still_available(tiny):
    import tensorflow as tf

    from tfslm.backends.hf_tf import build_from_scratch
    from tfslm.config import ModelConfig
    from tfslm.data.labels import LabelSpace
    from tfslm.inputs.pipeline import to_tf_datasets

    data, _ = tiny
    model, tokenizer = build_from_scratch(
        ModelConfig(architecture="bert", max_length=MAX_LENGTH, vocab_size=300, hidden_size=32, num_heads=2, intermediate_size=64),
        LabelSpace(("food", "science", "sports")), data["train"]["text"],
    )
    (train_ds,) = to_tf_datasets(data, model, tokenizer, batch_size=BATCH, max_length=MAX_LENGTH, splits=("train",), input_pipeline="prepare_tf_dataset")
    assert isinstance(train_ds, tf.data.Dataset) and not hasattr(train_ds, "padding_stats")
    assert train_ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    seen = sorted(tuple(int(t) for t in x[x != 0]) for f, _ in train_ds for x in f["input_ids"].numpy())
    assert seen == sorted(ids for ids, _ in _expected(data, tokenizer, "train"))
    with pytest.raises(ValueError, match="bucketed or prepare_tf_dataset"):
        to_tf_datasets(data, model, tokenizer, input_pipeline="fast")
