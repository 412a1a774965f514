"""Sharded TFRecords for TPUs and remote workers: ``tfslm prepare`` writes them, a pure-graph reader trains on them.

A TPU host, a tf.data service worker or any remote input pipeline cannot
call back into Python, so it cannot read a CSV with ``datasets`` or run a
Python tokenizer. ``tfslm prepare CONFIG --output DIR`` does that work once,
exactly as ``tfslm train`` would (read, clean, label, split with
``training.seed``, tokenize at ``model.max_length``), and writes::

    DIR/
      train-00000-of-00008.tfrecord       tf.train.Example records, one per row
      ...
      validation-00000-of-00008.tfrecord
      test-00000-of-00008.tfrecord        when data.test_file is set
      tokenizer/                          the tokenizer the ids came from
      prepared.json                       features, shapes, dtypes, max_length, label space, task,
                                          bucket edges, rows and shards per split; written last

A record holds ``input_ids`` (int64 list, the row's tokens with special
tokens, truncated, not padded), ``label`` (int64 class id, or float32 scaled
target(s) for regression) and ``row`` (the row's position in its split, in
``tfslm.load_data`` order). ``attention_mask`` and ``token_type_ids`` are not
stored: for single texts they are ones over the tokens and zeros, so the
reader derives them in the graph from the row length after padding.

Rows are dealt to shards round-robin (row ``r`` to shard ``r mod k``); train
rows are shuffled with the seed first, so a shard is a fair sample even when
the source file is sorted. Reading every shard interleaved one record at a
time restores the split order, which is how evaluation keeps predictions in
line with the rows.

:func:`tfrecord_dataset` reads them with ``tf.data`` ops only (no
``py_function``): a dataset of file names interleaved into
``TFRecordDataset`` readers, so ``tf.data``'s ``AutoShardPolicy.FILE`` gives
each input worker its own files. Training batches are padded to a bucket edge
(from the train length quantiles, stored in ``prepared.json``) and the last
partial batch is dropped: ``len(bucket_edges)`` shapes, all
``[batch_size, edge]``. Evaluation batches keep every row: the last batch is
filled up to ``batch_size`` with one-token dummy rows and the dataset yields
``(features, label, sample_weight)`` with weight 0 on them, so shapes stay
static and :func:`tfslm.training.evaluation.collect_predictions` drops the dummies.

Example:
    $ tfslm prepare configs/tpu.yaml --output gs://my-bucket/prepared
    $ tfslm train configs/tpu.yaml --set data.tfrecord_dir=gs://my-bucket/prepared

    >>> ds = tfrecord_dataset("gs://my-bucket/prepared", "train", batch_size=128, seed=42)  # doctest: +SKIP
    >>> model.fit(ds, epochs=3)                                                           # doctest: +SKIP

The code is in four modules: :mod:`~tfslm.inputs.tfrecord_writer` (``prepare``),
:mod:`~tfslm.inputs.tfrecord_reader` (``load_prepared``, ``PreparedData``,
``tfrecord_dataset``, ``tfrecord_inputs``, ``read_examples``),
:mod:`~tfslm.inputs.tfrecord_checks` (argument, format, config and tokenizer
checks) and :mod:`~tfslm.inputs.tfrecord_format` (names and paths); this
module gathers their public names.
"""

from __future__ import annotations

from tfslm.inputs.tfrecord_format import (
    COMPRESSIONS,
    DEFAULT_SHARDS,
    FORMAT,
    FORMAT_VERSION,
    PREPARED_FILE,
    SPLITS,
    TOKENIZER_DIR,
    shard_name,
)
from tfslm.inputs.tfrecord_reader import PreparedData, load_prepared, read_examples, tfrecord_dataset, tfrecord_inputs
from tfslm.inputs.tfrecord_writer import prepare

__all__ = [
    "prepare",
    "load_prepared",
    "PreparedData",
    "tfrecord_dataset",
    "tfrecord_inputs",
    "read_examples",
    "shard_name",
    "PREPARED_FILE",
    "DEFAULT_SHARDS",
    "TOKENIZER_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "SPLITS",
    "COMPRESSIONS",
]
