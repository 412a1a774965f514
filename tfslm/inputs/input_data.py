"""What every input path returns: :class:`InputData` (datasets, steps per epoch, statistics, shard policy, windows).

The bucketed pipeline, ``prepare_tf_dataset``, long texts in windows and
TFRecords from ``tfslm prepare`` all hand the trainer this one object, so
nothing downstream asks which path made the batches. Facts about a pipeline
(padding, bucket edges) live here, not as attributes on ``tf.data.Dataset``
objects, where any ``.map`` would lose them.

Example:
    >>> inputs = tfslm.build_inputs(data, model, tokenizer, batch_size=16)        # doctest: +SKIP
    >>> model.fit(inputs.train, validation_data=inputs.validation,
    ...           steps_per_epoch=inputs.steps_per_epoch)                        # doctest: +SKIP
    >>> inputs.statistics.padding["train"]["padding_fraction"]                   # doctest: +SKIP
    0.04
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = ["InputData", "InputStatistics", "SHARD_POLICIES", "steps_per_epoch_of"]

# How a multi-worker cluster splits the input: "data" (every worker builds the same
# batches and keeps its share of each: input built in memory) or "file" (each
# worker reads its own files: TFRecords).
SHARD_POLICIES = ("data", "file")


@dataclass
class InputStatistics:
    """Facts about the batches, as ``metrics.json["speed"]`` reports them.

    Attributes:
        pipeline: ``bucketed``, ``prepare_tf_dataset``, ``prepare_tf_dataset (windows)`` or ``tfrecords``.
        static_shapes: batches padded to bucket edges (a bounded set of shapes).
        bucket_edges: the padded lengths batches take (bucketed and TFRecords), else None.
        padding: per split, the first epoch's padding (``padding_fraction``,
            ``real_tokens``, ``padded_tokens``, ``batches``, ``distinct_shapes``, ``shapes``, ...),
            where the pipeline computes it (bucketed).
    """

    pipeline: str
    static_shapes: bool = False
    bucket_edges: list[int] | None = None
    padding: dict[str, dict[str, Any]] = field(default_factory=dict)

    def epoch_report(self) -> dict[str, Any]:
        """``train_epoch`` (the train split's padding, without the shape list) and ``bucket_edges``, when known."""
        stats = self.padding.get("train")
        if not stats:
            return {}
        return {"train_epoch": {k: v for k, v in stats.items() if k != "shapes"}, "bucket_edges": list(self.bucket_edges or [])}

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "static_shapes": self.static_shapes, "bucket_edges": self.bucket_edges,
                "padding": {s: dict(v) for s, v in self.padding.items()}}


@dataclass
class InputData:
    """The batched splits of one run and what the trainer needs to know about them.

    Attributes:
        datasets: split name -> ``tf.data.Dataset`` of ``(features, label)``
            (TFRecord evaluation splits: ``(features, label, sample_weight)``).
        steps_per_epoch: optimizer steps in one epoch over ``train`` (None without a train split).
        batch_size: rows per batch (the global batch under ``tf.distribute``).
        rows: split name -> examples the dataset holds (windows, for long texts in windows).
        shard_policy: ``data`` or ``file``: how a multi-worker cluster shares the input
            (the datasets carry it as their ``AutoShardPolicy`` too).
        statistics: :class:`InputStatistics`.
        windows: for long texts in windows, split name -> ``doc_index`` (window ``i``
            belongs to document ``doc_index[i]``); None otherwise.
    """

    datasets: dict[str, Any]
    steps_per_epoch: int | None
    batch_size: int
    rows: dict[str, int]
    shard_policy: str
    statistics: InputStatistics
    windows: dict[str, Any] | None = None

    def __post_init__(self):
        if self.shard_policy not in SHARD_POLICIES:
            raise ValueError(f"InputData.shard_policy: got {self.shard_policy!r}, expected one of: {', '.join(SHARD_POLICIES)}")

    @property
    def splits(self) -> list[str]:
        return list(self.datasets)

    def __contains__(self, split: str) -> bool:
        return split in self.datasets

    def __getitem__(self, split: str):
        try:
            return self.datasets[split]
        except KeyError:
            raise KeyError(f"InputData: no {split!r} split (built: {', '.join(self.datasets) or 'none'})") from None

    @property
    def train(self):
        return self["train"]

    @property
    def validation(self):
        return self["validation"]

    @property
    def test(self):
        return self["test"]

    def windows_of(self, split: str):
        """The ``doc_index`` of ``split`` when it holds text windows, else None."""
        return None if self.windows is None else self.windows.get(split)

    def as_tuple(self, splits: Sequence[str] | None = None) -> tuple:
        """The datasets in ``splits`` order (default: the order built)."""
        return tuple(self[s] for s in (splits if splits is not None else self.datasets))


def steps_per_epoch_of(datasets: Mapping[str, Any], rows: Mapping[str, int], batch_size: int) -> int | None:
    """Optimizer steps per epoch over ``train``: its known length, else ``ceil(rows / batch_size)``."""
    if "train" not in datasets:
        return None
    cardinality = int(datasets["train"].cardinality())
    return cardinality if cardinality > 0 else math.ceil(rows["train"] / batch_size)
