"""`tfslm prepare` TFRecords: exact round trip, static shapes, seeded order, file sharding, training from them, errors."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, assert_one_line_error, make_rows, make_varied_rows, tiny_config_dict, write_csv
from tfslm.cli import main

BATCH = 8
MAX_LENGTH = 48


def _write_config(tmp: Path, name: str = "tiny.yaml", **sections) -> Path:
    train = tmp / "train.csv"
    if not train.exists():
        write_csv(train, make_varied_rows(170))
        write_csv(tmp / "test.csv", make_varied_rows(21, seed=8))
    defaults = {
        "data": {"test_file": str(tmp / "test.csv")},
        "model": {"max_length": MAX_LENGTH},
        "training": {"batch_size": BATCH, "static_shapes": True},
    }
    for key, values in sections.items():
        defaults.setdefault(key, {}).update(values)
    path = tmp / name
    path.write_text(yaml.safe_dump(tiny_config_dict(tmp, train, **defaults)))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prep")
    config = _write_config(tmp)
    assert main(["prepare", str(config), "--output", str(tmp / "prep"), "--shards", "4"]) == 0
    return tmp, config, tmp / "prep"


@pytest.fixture(scope="module")
def expected(prepared):
    """What `tfslm train` would feed the model, computed the ordinary way: load_data + a freshly built tokenizer."""
    from tfslm.config import load_config
    from tfslm.data.loading import load_data
    from tfslm.backends.hf_tf import build_tokenizer
    from tfslm.tasks.base import Task

    _, config, _ = prepared
    cfg = load_config(config)
    data = load_data(cfg.data, seed=cfg.training.seed, task=Task.from_config(cfg))
    tokenizer = build_tokenizer(cfg.model, train_texts=data["train"]["text"])
    out = {}
    for split in data.splits:
        enc = tokenizer(list(data[split]["text"]), truncation=True, max_length=MAX_LENGTH)
        out[split] = [
            (tuple(ids), tuple(mask), tuple(types), label)
            for ids, mask, types, label in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], data[split]["label"])
        ]
    return out, tokenizer, data


def _unpad(ds):
    """Rows of a batched dataset as (ids, mask, token_type_ids, label), dummy rows (weight 0) dropped; and the batch shapes."""
    rows, shapes = [], []
    for batch in ds:
        features, labels = batch[0], batch[1].numpy()
        weights = batch[2].numpy() if len(batch) > 2 else np.ones(len(labels))
        ids, mask, types = (features[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids"))
        shapes.append(ids.shape)
        for i in np.flatnonzero(weights > 0):
            n = int(mask[i].sum())
            assert mask[i, :n].all() and not mask[i, n:].any() and (ids[i, n:] == 0).all()
            rows.append((tuple(ids[i, :n].tolist()), tuple(mask[i, :n].tolist()), tuple(types[i, :n].tolist()), int(labels[i])))
    return rows, shapes


@pytest.mark.slow
def test_rows_read_back_exactly(prepared, expected):
    from tfslm.inputs.token_cache import tokenizer_fingerprint
    from tfslm.inputs.tfrecords import load_prepared, read_examples, tfrecord_dataset

    _, _, directory = prepared
    want, tokenizer, data = expected
    info = json.loads((directory / "prepared.json").read_text())
    assert sorted(info["splits"]) == ["test", "train", "validation"] and info["max_length"] == MAX_LENGTH
    assert info["labels"]["names"] == ["food", "science", "sports"] and info["task"]["problem_type"] == "single_label_classification"
    assert info["splits"]["train"]["shards"][0] == "train-00000-of-00004.tfrecord"
    assert load_prepared(directory).tokenizer.get_vocab() == tokenizer.get_vocab()
    assert info["model"]["tokenizer_fingerprint"] == tokenizer_fingerprint(tokenizer)
    for split, rows in want.items():
        assert info["splits"][split]["rows"] == len(rows) == data[split].num_rows
        # As written: every row once, ids and class id exactly.
        written = {int(e["row"]): (tuple(e["input_ids"].numpy().tolist()), int(e["label"])) for e in read_examples(directory, split)}
        assert sorted(written) == list(range(len(rows)))
        assert [written[i] for i in range(len(rows))] == [(ids, label) for ids, _, _, label in rows]
    for split in ("validation", "test"):
        # As evaluated: every row once, in split order, with the tokenizer's mask and token types.
        ds = tfrecord_dataset(directory, split, batch_size=BATCH)
        got, shapes = _unpad(ds)
        assert got == want[split]
        assert set(shapes) <= {(BATCH, e) for e in info["bucket_edges"]} and len(ds) == len(shapes)


@pytest.mark.slow
def test_training_batches_static_shapes_seeded_no_python(prepared, expected):
    from tfslm.inputs.tfrecords import tfrecord_dataset

    _, _, directory = prepared
    want = Counter(expected[0]["train"])
    edges = json.loads((directory / "prepared.json").read_text())["bucket_edges"]
    assert len(edges) >= 2 and edges[-1] <= MAX_LENGTH
    ds = tfrecord_dataset(directory, "train", batch_size=BATCH, seed=5)
    assert ds.element_spec[0]["input_ids"].shape.as_list() == [BATCH, None] and ds.element_spec[1].shape.as_list() == [BATCH]
    orders, seen = [], set()
    for _ in range(2):
        rows, shapes = _unpad(ds)
        seen |= set(shapes)
        assert not Counter(rows) - want  # nothing made up or repeated
        assert sum(want.values()) - len(rows) < BATCH  # drop_remainder leaves out only the last partial batch
        assert len(shapes) == len(ds) == sum(want.values()) // BATCH
        orders.append(rows)
    assert seen <= {(BATCH, e) for e in edges} and len(seen) >= 2
    assert orders[0] != orders[1]  # reshuffled every epoch

    def first_epoch(seed):
        return [f["input_ids"].numpy().tolist() for f, _ in tfrecord_dataset(directory, "train", batch_size=BATCH, seed=seed)]

    first = first_epoch(5)
    assert first_epoch(5) == first and first_epoch(6) != first
    for split in ("train", "validation"):
        graph = tfrecord_dataset(directory, split, batch_size=BATCH)._as_serialized_graph().numpy()
        assert b"PyFunc" not in graph and b"EagerPyFunc" not in graph


@pytest.mark.slow
def test_group_by_length_setting_decides_the_training_batches(prepared, expected):
    """True sorts rows by length within windows (less padding), False keeps them random; every row once either way."""
    from tfslm.inputs.tfrecords import tfrecord_dataset

    _, _, directory = prepared
    want = Counter(expected[0]["train"])
    padded = {}
    for setting in (True, False):
        ds = tfrecord_dataset(directory, "train", batch_size=BATCH, seed=5, static_shapes=False, group_by_length=setting)
        rows, shapes = _unpad(ds)
        assert Counter(rows) == want
        padded[setting] = sum(b * length for b, length in shapes)
    assert padded[True] < padded[False]


def test_file_sharding_splits_rows_between_workers(prepared, expected):
    """What tf.distribute does to an input pipeline per worker (AutoShardPolicy.FILE): disjoint files, every row once."""
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    from tfslm.inputs.tfrecords import tfrecord_dataset

    _, _, directory = prepared
    ds = tfrecord_dataset(directory, "validation", batch_size=BATCH)
    parts = [_unpad(_AutoShardDataset(ds, 2, worker, 2))[0] for worker in range(2)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(expected[0]["validation"])


@pytest.mark.parametrize("problem_type", ["regression", "multi_target_regression"])
def test_regression_labels_are_exact_floats(tmp_path, problem_type):
    from tfslm.config import config_from_dict
    from tfslm.tasks.base import Task
    from tfslm.inputs.tfrecords import read_examples, tfrecord_dataset, prepare

    rng = np.random.default_rng(0)
    rows = make_rows(40, seed=4)
    targets = rng.integers(0, 11, size=(40, 2)) * 0.5
    for row, t in zip(rows, targets):
        row["label"] = f"[{t[0]}, {t[1]}]" if problem_type == "multi_target_regression" else str(t[0])
    train = write_csv(tmp_path / "scores.csv", rows)
    data = {"score_range": [0, 5]}
    if problem_type == "multi_target_regression":
        data["target_names"] = ["a", "b"]
    cfg = config_from_dict(tiny_config_dict(tmp_path, train, data=data, model={"problem_type": problem_type}))
    info = prepare(cfg, str(tmp_path / "prep"), shards=2)
    width = 2 if problem_type == "multi_target_regression" else 1
    assert info["features"]["label"]["dtype"] == "float32" and info["features"]["label"]["shape"] == ([2] if width == 2 else [])
    task = Task.from_config(cfg)
    from tfslm.data.loading import load_data

    loaded = load_data(cfg.data, seed=cfg.training.seed, task=task)
    for split in ("train", "validation"):
        want = np.asarray(loaded[split]["label"], dtype=np.float32).reshape(-1, width)
        got = {int(e["row"]): e["label"].numpy() for e in read_examples(tmp_path / "prep", split)}
        assert sorted(got) == list(range(len(want)))
        assert np.array_equal(np.stack([np.reshape(got[i], -1) for i in range(len(want))]), want)  # bit for bit
    batch = next(iter(tfrecord_dataset(tmp_path / "prep", "validation", batch_size=4)))
    assert batch[1].dtype.name == "float32" and batch[1].shape.as_list() == ([4, 2] if width == 2 else [4])


@pytest.mark.slow
def test_train_from_tfrecord_dir_end_to_end(prepared, expected):
    _, config, directory = prepared
    _, _, data = expected
    code = main([
        "train", str(config), "--set", f"data.tfrecord_dir={directory}", "--set", "data.train_file=null",
        "--set", "data.test_file=null", "--set", "run_name=from-tfrecords", "--set", "export.saved_model=false", "--verbose", "0",
    ])
    assert code == 0
    run_dir = config.parent / "runs" / "from-tfrecords"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["validation"]["num_examples"] == data["validation"].num_rows
    assert metrics["test"]["num_examples"] == data["test"].num_rows  # the test split came from the directory
    names = ["food", "science", "sports"]
    for split in ("validation", "test"):
        predictions = pd.read_csv(run_dir / "predictions" / f"{split}.csv")
        assert predictions["true_label"].tolist() == [names[i] for i in data[split]["label"]]  # split order kept
        accuracy = float((predictions["true_label"] == predictions["predicted_label"]).mean())
        assert metrics[split]["accuracy"] == pytest.approx(accuracy)
    assert json.loads((run_dir / "labels.json").read_text())["names"] == names
    assert (run_dir / "model" / "vocab.txt").read_text() == (directory / "tokenizer" / "vocab.txt").read_text()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (lambda c, d, t: ["prepare", c, "--output", d], "not empty; pass --overwrite"),
        (lambda c, d, t: ["prepare", c, "--output", t / "new", "--shards", "0"], "--shards: expected a positive integer, got 0"),
        (lambda c, d, t: ["prepare", c], "--output: required (or set data.tfrecord_dir"),
        (lambda c, d, t: ["prepare", c, "--output", t / "new", "--set", "data.train_file=null", "--set", f"data.tfrecord_dir={d}"],
         "data.train_file: required by `tfslm prepare`"),
        (lambda c, d, t: ["train", c, "--set", "data.train_file=null"], "data.train_file: required; give a CSV"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={t / 'missing'}"], "does not exist; run `tfslm prepare CONFIG --output"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={t}"], "has no prepared.json"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={d}", "--set", "model.max_length=64"],
         f"model.max_length: 64, but was prepared with {MAX_LENGTH} ("),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={d}", "--set", "model.vocab_size=500"], "model.vocab_size: 500, but the tokenizer"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={d}", "--set", "model.problem_type=ordinal"], "model.problem_type: 'ordinal', but"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={d}", "--set", "model.architecture=null", "--set", f"model.checkpoint={t}"],
         "prepared with a from-scratch bert tokenizer; set model.architecture: bert"),
        (lambda c, d, t: ["train", c, "--set", f"data.tfrecord_dir={d}", "--set", "data.long_text=chunk"], "data.long_text: 'chunk' is not available"),
    ],
)
def test_user_errors_exit_2_with_one_line(prepared, tmp_path, capsys, args, fragment):
    _, config, directory = prepared
    (tmp_path / "stray.txt").write_text("not a prepared directory")
    assert_one_line_error(capsys, main([str(a) for a in args(config, directory, tmp_path)]), fragment)
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_atomically(prepared, tmp_path):
    _, config, _ = prepared
    out = tmp_path / "prep"
    assert main(["prepare", str(config), "--output", str(out), "--shards", "2", "--set", "data.test_file=null"]) == 0
    assert main(["prepare", str(config), "--output", str(out), "--shards", "3", "--compression", "gzip", "--overwrite"]) == 0
    info = json.loads((out / "prepared.json").read_text())
    assert info["compression"] == "gzip" and info["splits"]["test"]["shards"][-1] == "test-00002-of-00003.tfrecord.gz"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("train-")) == [f"train-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert [p.name for p in tmp_path.iterdir()] == ["prep"]  # no temporary sibling left behind
    from tfslm.inputs.tfrecords import tfrecord_dataset

    assert sum(int(b[2].numpy().sum()) for b in tfrecord_dataset(out, "test", batch_size=BATCH)) == 21


def test_remote_directory_through_tf_io_gfile(prepared, expected):
    """gs:// goes through tf.io.gfile; TF's in-memory ram:// filesystem takes the same (non-local) code path."""
    import tensorflow as tf

    from tfslm.config import load_config
    from tfslm.inputs.tfrecords import load_prepared, prepare, tfrecord_dataset

    _, config, _ = prepared
    cfg = load_config(config, ["data.test_file=null"])
    prepare(cfg, "ram://bucket/prepared", shards=2)
    with pytest.raises(Exception, match="not empty; pass --overwrite"):
        prepare(cfg, "ram://bucket/prepared", shards=2)
    prepare(cfg, "ram://bucket/prepared", shards=3, overwrite=True)
    assert len([n for n in tf.io.gfile.listdir("ram://bucket/prepared") if n.startswith("train-")]) == 3
    remote = load_prepared("ram://bucket/prepared", config=cfg)
    assert remote.tokenizer.get_vocab() == expected[1].get_vocab()
    rows, _ = _unpad(tfrecord_dataset(remote, "validation", batch_size=BATCH))
    assert rows == expected[0]["validation"]


def test_tpu_config_validates():
    from tfslm.config import load_config

    cfg = load_config(REPO / "configs" / "tpu.yaml")
    assert cfg.training.strategy == "tpu" and cfg.training.tpu and cfg.training.static_shapes
    assert cfg.data.tfrecord_dir.startswith("gs://")
