"""``tf.data`` input pipelines: tokenized ``datasets`` splits to batched ``tf.data.Dataset``s.

Two paths (``training.input_pipeline``): ``bucketed`` (the default; pure TF,
length buckets, tokens cached on disk: see :mod:`tfslm.inputs.bucketing`) and
``prepare_tf_dataset`` (transformers' own: each batch is padded to its own
longest row by the tokenizer's collator, in Python).

Example:
    >>> train_ds, val_ds = to_tf_datasets(data, model, tokenizer, batch_size=16, max_length=128)  # doctest: +SKIP
    >>> model.fit(train_ds, validation_data=val_ds)                                               # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

from tfslm.data.loading import TextData, tokenize

__all__ = ["to_tf_datasets", "to_tf_dataset"]


def to_tf_dataset(dataset, model, tokenizer, *, batch_size: int = 16, max_length: int = 128, shuffle: bool = False):
    """One ``datasets.Dataset`` (columns ``text``, ``label``) as a batched ``tf.data.Dataset``.

    Yields ``(features, label)`` pairs; features are ``input_ids``,
    ``attention_mask`` (and ``token_type_ids`` where the model takes them).
    Shuffling (seeded by the TF global seed) reshuffles every epoch; no row is
    dropped, so an epoch sees every row exactly once.
    """
    from tfslm.training.distribute import shard_by_data

    tokenized = tokenize(dataset, tokenizer, max_length)
    return shard_by_data(model.prepare_tf_dataset(
        tokenized, batch_size=batch_size, shuffle=shuffle, tokenizer=tokenizer, drop_remainder=False
    ))


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
):
    """The named splits of ``data`` as ``tf.data.Dataset``s, in the order asked; train is shuffled.

    Args:
        data: from :func:`tfslm.load_data`.
        model: the transformers TF model (its call signature picks the feature columns).
        tokenizer: the model's tokenizer.
        batch_size: rows per batch.
        max_length: texts are truncated to this many tokens.
        splits: which splits to return.
        input_pipeline: ``bucketed`` or ``prepare_tf_dataset``.
        seed: seeds the bucketed shuffles (None: TF's global seed).
        static_shapes: bucketed only: a small fixed set of batch shapes (see :mod:`tfslm.inputs.bucketing`).

    Example:
        >>> train_ds, val_ds = to_tf_datasets(data, model, tokenizer, batch_size=16)  # doctest: +SKIP
    """
    if input_pipeline == "bucketed":
        from tfslm.inputs.bucketing import bucketed_datasets

        return bucketed_datasets(
            data, model, tokenizer, batch_size=batch_size, max_length=max_length, splits=splits,
            seed=seed, static_shapes=static_shapes,
        )
    if input_pipeline != "prepare_tf_dataset":
        raise ValueError(f"input_pipeline: got {input_pipeline!r}, expected bucketed or prepare_tf_dataset")
    return tuple(
        to_tf_dataset(data[split], model, tokenizer, batch_size=batch_size, max_length=max_length, shuffle=(split == "train"))
        for split in splits
    )
