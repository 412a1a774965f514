"""``tf.data`` input pipelines: one entry point, :func:`build_inputs`, for every input path.

The path follows from the data and the settings:

- a :class:`~tfslm.inputs.tfrecord_reader.PreparedData` (``data.tfrecord_dir``):
  TFRecords from ``tfslm prepare``, read in the graph (:mod:`tfslm.inputs.tfrecord_reader`);
- ``long_text="chunk"``: long texts as overlapping windows (:mod:`tfslm.inputs.chunking`);
- ``long_text="document"``: batches of whole documents, each a set of windows
  that :class:`tfslm.DocumentModel` pools (:mod:`tfslm.inputs.documents`);
- ``input_pipeline="bucketed"`` (the default): pure TF, length buckets,
  tokens cached on disk (:mod:`tfslm.inputs.bucketing`);
- ``input_pipeline="prepare_tf_dataset"``: the backend's own collator, each
  batch padded to its own longest row, in Python.

Each returns the same :class:`~tfslm.inputs.input_data.InputData`;
:func:`to_tf_datasets` gives just the datasets, as a tuple.

Example:
    >>> train_ds, val_ds = to_tf_datasets(data, model, tokenizer, batch_size=16, max_length=128)  # doctest: +SKIP
    >>> model.fit(train_ds, validation_data=val_ds)                                               # doctest: +SKIP
    >>> inputs = build_inputs(data, model, tokenizer, batch_size=8, max_length=512, long_text="chunk", chunk_stride=64)  # doctest: +SKIP
    >>> inputs.windows["validation"][:5]                                                          # doctest: +SKIP
    array([0, 0, 1, 2, 2])
"""

from __future__ import annotations

from typing import Sequence

from tfslm.config import INPUT_PIPELINES, LONG_TEXT_POLICIES
from tfslm.data.loading import TextData, tokenize
from tfslm.inputs.bucketing import bucketed_inputs
from tfslm.inputs.chunking import chunked_inputs
from tfslm.inputs.documents import DEFAULT_MAX_WINDOWS, document_inputs
from tfslm.inputs.input_data import InputData, InputStatistics, steps_per_epoch_of

__all__ = ["build_inputs", "build_inputs_from_config", "to_tf_datasets", "to_tf_dataset", "prepare_tf_dataset_inputs", "INPUT_PATHS"]

INPUT_PATHS = ("bucketed", "prepare_tf_dataset", "prepare_tf_dataset (windows)", "bucketed (documents)", "tfrecords")


def to_tf_dataset(dataset, model, tokenizer, *, batch_size: int = 16, max_length: int = 128, shuffle: bool = False):
    """One ``datasets.Dataset`` (columns ``text``, ``label``) as a batched ``tf.data.Dataset`` (the backend's collator).

    Yields ``(features, label)`` pairs; features are ``input_ids``,
    ``attention_mask`` (and ``token_type_ids`` where the model takes them).
    Shuffling (seeded by the TF global seed) reshuffles every epoch; no row is
    dropped, so an epoch sees every row exactly once.

    Example:
        >>> val_ds = to_tf_dataset(data["validation"], model, tokenizer, batch_size=32)   # doctest: +SKIP
    """
    from tfslm.backends import get_backend
    from tfslm.training.distribute import shard_by_data

    tokenized = tokenize(dataset, tokenizer, max_length)
    return shard_by_data(get_backend().prepare_tf_dataset(model, tokenized, tokenizer, batch_size=batch_size, shuffle=shuffle))


def prepare_tf_dataset_inputs(data, model, tokenizer, *, batch_size: int = 16, max_length: int = 128,
                              splits: Sequence[str] = ("train", "validation")) -> InputData:
    """The named splits through :func:`to_tf_dataset` (``training.input_pipeline: prepare_tf_dataset``); train is shuffled."""
    datasets = {
        split: to_tf_dataset(data[split], model, tokenizer, batch_size=batch_size, max_length=max_length, shuffle=(split == "train"))
        for split in splits
    }
    rows = {split: int(data[split].num_rows) for split in splits}
    return InputData(
        datasets=datasets, steps_per_epoch=steps_per_epoch_of(datasets, rows, batch_size), batch_size=batch_size,
        rows=rows, shard_policy="data", statistics=InputStatistics("prepare_tf_dataset"),
    )


def build_inputs(
    data,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int = 128,
    splits: Sequence[str] = ("train", "validation"),
    input_pipeline: str = "bucketed",
    seed: int | None = None,
    static_shapes: bool = False,
    long_text: str = "truncate",
    chunk_stride: int = 128,
    max_windows: int | None = DEFAULT_MAX_WINDOWS,
    group_by_length: bool | None = None,
) -> InputData:
    """The named splits of ``data`` as batched datasets, by whichever path the data and settings call for.

    Args:
        data: from :func:`tfslm.load_data` (or a ``DatasetDict``), or a
            :class:`~tfslm.inputs.tfrecord_reader.PreparedData` from :func:`tfslm.load_prepared`
            (then ``max_length``, ``input_pipeline`` and ``long_text`` were fixed by ``tfslm prepare``).
        model: the model (its call signature picks the feature columns).
        tokenizer: the model's tokenizer.
        batch_size: rows per batch (under ``tf.distribute``: the global batch).
        max_length: texts are truncated (or, with ``long_text="chunk"``, windowed) at this many tokens.
        splits: which splits, in this order.
        input_pipeline: ``bucketed`` or ``prepare_tf_dataset``.
        seed: seeds the shuffles (None: TF's global seed).
        static_shapes: bucketed and TFRecords: a small fixed set of batch shapes.
        long_text: ``truncate``, or ``chunk``: overlapping windows of ``max_length``
            tokens, ``chunk_stride`` tokens of overlap (``InputData.windows`` maps them to documents),
            or ``document``: batches of ``batch_size`` whole documents in those windows, with
            ``doc_index``, for :class:`tfslm.DocumentModel` (bucketed only).
        chunk_stride: the overlap of consecutive windows, in tokens.
        max_windows: ``document``: windows kept per document (evenly spaced; None: all).
        group_by_length: bucketed, documents and TFRecords: training batches of rows sorted by length
            within windows of 50 batches (less padding; batches then also group by label where length
            and label correlate); None (auto): only from 16 batches per epoch.

    Returns:
        an :class:`~tfslm.inputs.input_data.InputData`.

    Example:
        >>> inputs = build_inputs(data, model, tokenizer, batch_size=16, seed=42)   # doctest: +SKIP
        >>> inputs.steps_per_epoch, inputs.statistics.bucket_edges                 # doctest: +SKIP
        (38, [24, 40, 64])
    """
    from tfslm.inputs.tfrecord_reader import PreparedData, tfrecord_inputs

    if long_text not in LONG_TEXT_POLICIES:
        raise ValueError(f"long_text: got {long_text!r}, expected one of: {', '.join(LONG_TEXT_POLICIES)}")
    if input_pipeline not in INPUT_PIPELINES:
        raise ValueError(f"input_pipeline: got {input_pipeline!r}, expected bucketed or prepare_tf_dataset")
    splits = tuple(splits)
    if isinstance(data, PreparedData):
        if long_text != "truncate":
            raise ValueError(f"long_text: {long_text!r} is not available for TFRecords from `tfslm prepare` (their rows are truncated); use truncate")
        return tfrecord_inputs(data, model, tokenizer, batch_size=batch_size, splits=splits, seed=seed, static_shapes=static_shapes,
                               group_by_length=group_by_length)
    if long_text == "document":
        if input_pipeline != "bucketed" or static_shapes:
            raise ValueError("long_text: document batches are built by the bucketed pipeline, without static_shapes; "
                             "use input_pipeline='bucketed', static_shapes=False")
        return document_inputs(data, model, tokenizer, batch_size=batch_size, max_length=max_length, stride=chunk_stride,
                               max_windows=max_windows, splits=splits, seed=seed, group_by_length=group_by_length)
    if long_text == "chunk":
        return chunked_inputs(data, model, tokenizer, batch_size=batch_size, max_length=max_length, stride=chunk_stride, splits=splits)
    if input_pipeline == "bucketed":
        return bucketed_inputs(data, model, tokenizer, batch_size=batch_size, max_length=max_length, splits=splits,
                               seed=seed, static_shapes=static_shapes, group_by_length=group_by_length)
    return prepare_tf_dataset_inputs(data, model, tokenizer, batch_size=batch_size, max_length=max_length, splits=splits)


def build_inputs_from_config(cfg, data, model, tokenizer, *, batch_size: int | None = None,
                             splits: Sequence[str] | None = None) -> InputData:
    """:func:`build_inputs` with the settings of a :class:`tfslm.Config`, as ``tfslm train`` builds them.

    Args:
        cfg: the config (``model.max_length``, ``data.long_text``, ``data.chunk_stride``, ``data.max_windows``,
            ``training.input_pipeline``, ``training.seed``, ``training.static_shapes``, ``training.group_by_length``).
        data: the loaded data (``TextData``) or ``PreparedData`` (``data.tfrecord_dir``).
        model: the model.
        tokenizer: its tokenizer.
        batch_size: default ``training.batch_size``; pass the global batch under ``tf.distribute``.
        splits: default train, validation and (when the data has it) test.

    Example:
        >>> inputs = build_inputs_from_config(cfg, data, model, tokenizer)   # doctest: +SKIP
    """
    if splits is None:
        splits = ("train", "validation", "test") if "test" in data else ("train", "validation")
    return build_inputs(
        data, model, tokenizer,
        batch_size=cfg.training.batch_size if batch_size is None else batch_size,
        max_length=cfg.model.max_length, splits=splits, input_pipeline=cfg.training.input_pipeline,
        seed=cfg.training.seed, static_shapes=cfg.training.static_shapes,
        long_text=cfg.data.long_text, chunk_stride=cfg.data.chunk_stride, max_windows=cfg.data.max_windows,
        group_by_length=None if cfg.training.group_by_length == "auto" else cfg.training.group_by_length,
    )


def to_tf_datasets(
    data: TextData,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int = 128,
    splits: Sequence[str] = ("train", "validation"),
    input_pipeline: str = "bucketed",
    seed: int | None = None,
    static_shapes: bool = False,
    long_text: str = "truncate",
    chunk_stride: int = 128,
    max_windows: int | None = DEFAULT_MAX_WINDOWS,
    group_by_length: bool | None = None,
):
    """The named splits of ``data`` as ``tf.data.Dataset``s, in the order asked; train is shuffled.

    :func:`build_inputs`' datasets, as a tuple; use :func:`build_inputs` for
    the statistics, steps per epoch and, with ``long_text="chunk"``, the
    window-to-document index.

    Args:
        data: from :func:`tfslm.load_data`.
        model: the model (its call signature picks the feature columns).
        tokenizer: the model's tokenizer.
        batch_size: rows per batch.
        max_length: texts are truncated (or windowed) to this many tokens.
        splits: which splits to return.
        input_pipeline: ``bucketed`` or ``prepare_tf_dataset``.
        seed: seeds the bucketed shuffles (None: TF's global seed).
        static_shapes: bucketed only: a small fixed set of batch shapes (see :mod:`tfslm.inputs.bucketing`).
        long_text: ``truncate``, ``chunk`` (overlapping windows, see :mod:`tfslm.inputs.chunking`)
            or ``document`` (batches of whole documents, see :mod:`tfslm.inputs.documents`).
        chunk_stride: with ``chunk`` or ``document``: tokens of overlap between windows.
        max_windows: with ``document``: windows kept per document (evenly spaced; None: all).
        group_by_length: training batches of rows sorted by length; None: from 16 batches per epoch.

    Example:
        >>> train_ds, val_ds = to_tf_datasets(data, model, tokenizer, batch_size=16)  # doctest: +SKIP
        >>> train_w, val_w = to_tf_datasets(data, model, tokenizer, max_length=256, long_text="chunk", chunk_stride=64)  # doctest: +SKIP
    """
    return build_inputs(
        data, model, tokenizer, batch_size=batch_size, max_length=max_length, splits=splits, input_pipeline=input_pipeline,
        seed=seed, static_shapes=static_shapes, long_text=long_text, chunk_stride=chunk_stride,
        max_windows=max_windows, group_by_length=group_by_length,
    ).as_tuple()
