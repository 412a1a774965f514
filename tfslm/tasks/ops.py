"""Two array namespaces, NumPy and TensorFlow, so each task writes its decoding rules once.

A task's decoding (score grid rounding, unscaling, the expected value of an
ordinal label, thresholds, window pooling) is written against ``xp`` and run
with :data:`NUMPY` by :class:`tfslm.Predictor` and the evaluation, and with
:func:`graph_ops` inside the SavedModel's serving functions. Only the
primitives below differ; the NumPy side works in float64 as it always has,
the graph in float32.

Example:
    >>> NUMPY.clip(NUMPY.floor(NUMPY.asarray([0.4, 1.6]) + 0.5), 0.0, 1.0).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from tfslm.tasks.metrics import sigmoid as _np_sigmoid
from tfslm.tasks.metrics import softmax as _np_softmax

__all__ = ["NUMPY", "graph_ops"]


class _NumpyOps:
    """NumPy primitives (float64)."""

    name = "numpy"

    @staticmethod
    def asarray(values):
        return np.asarray(values, dtype=np.float64)

    constant = asarray
    floor = staticmethod(np.floor)
    clip = staticmethod(np.clip)
    abs = staticmethod(np.abs)
    log = staticmethod(np.log)
    softmax = staticmethod(_np_softmax)
    sigmoid = staticmethod(_np_sigmoid)

    @staticmethod
    def logit(probabilities):
        p = np.asarray(probabilities, dtype=np.float64)
        return np.log(p) - np.log1p(-p)

    @staticmethod
    def most_probable(logits, probabilities):
        """The class of highest probability (float64 softmax keeps the order of float32 logits)."""
        if not len(probabilities):
            return np.zeros((0,), dtype=np.int64)
        return probabilities.argmax(axis=-1)

    @staticmethod
    def nearest(values, grid):
        """Index of the nearest ``grid`` value to each of ``values``."""
        return np.abs(values[:, None] - grid[None, :]).argmin(axis=1)

    @staticmethod
    def expected(probabilities, values):
        return probabilities @ values

    @staticmethod
    def take(values, index):
        return values[index]

    @staticmethod
    def sum(values, axis=-1):
        return values.sum(axis=axis)

    @staticmethod
    def column(values, j):
        return values[:, j]

    @staticmethod
    def segment_mean(values, segment_ids, num_segments):
        segment_ids = np.asarray(segment_ids, dtype=np.int64)
        counts = np.bincount(segment_ids, minlength=num_segments).astype(np.float64)[:, None]
        sums = np.zeros((num_segments, values.shape[1]), dtype=np.float64)
        np.add.at(sums, segment_ids, values)
        return sums / np.maximum(counts, 1.0)

    @staticmethod
    def count_at_least(values, cuts):
        """``[n, targets]`` values, ``[targets, cuts]`` cut points: how many cuts each value reaches."""
        return (values[:, :, None] >= np.asarray(cuts, dtype=np.float64)[None, :, :]).sum(axis=-1).astype(np.float64)

    @staticmethod
    def at_least(values, thresholds):
        # TensorFlow's CPU/GPU kernels flush float32 subnormals to zero; so does this comparison.
        values = np.where(np.abs(values) < np.finfo(np.float32).tiny, 0.0, values)
        return values >= thresholds


class _GraphOps:
    """TensorFlow primitives (float32), for tf.function graphs."""

    name = "tensorflow"

    def __init__(self):
        import tensorflow as tf

        self.tf = tf

    def asarray(self, values):
        return self.tf.cast(values, self.tf.float32)

    def constant(self, values):
        return self.tf.constant(np.asarray(values, dtype=np.float32))

    def floor(self, values):
        return self.tf.floor(values)

    def clip(self, values, low, high):
        return self.tf.clip_by_value(values, low, high)

    def abs(self, values):
        return self.tf.abs(values)

    def log(self, values):
        return self.tf.math.log(values)

    def softmax(self, logits):
        return self.tf.nn.softmax(logits, axis=-1)

    def sigmoid(self, logits):
        return self.tf.math.sigmoid(logits)

    def logit(self, probabilities):
        return self.tf.math.log(probabilities) - self.tf.math.log1p(-probabilities)

    def most_probable(self, logits, probabilities):
        """From the logits: a float32 softmax can tie where the logits do not."""
        return self.tf.argmax(logits, axis=-1, output_type=self.tf.int64)

    def nearest(self, values, grid):
        return self.tf.argmin(self.tf.abs(values[:, None] - grid[None, :]), axis=-1, output_type=self.tf.int64)

    def expected(self, probabilities, values):
        return self.tf.reduce_sum(probabilities * values[None, :], axis=-1)

    def take(self, values, index):
        return self.tf.gather(values, index)

    def sum(self, values, axis=-1):
        return self.tf.reduce_sum(values, axis=axis)

    def column(self, values, j):
        return values[:, j]

    def segment_mean(self, values, segment_ids, num_segments):
        return self.tf.math.unsorted_segment_mean(values, segment_ids, num_segments)

    def count_at_least(self, values, cuts):
        reached = self.tf.greater_equal(values[:, :, None], self.tf.cast(cuts, self.tf.float32)[None, :, :])
        return self.tf.reduce_sum(self.tf.cast(reached, self.tf.float32), axis=-1)

    def at_least(self, values, thresholds):
        return self.tf.greater_equal(values, thresholds)


NUMPY = _NumpyOps()
_GRAPH: list = []


def graph_ops() -> _GraphOps:
    """The TensorFlow namespace (TensorFlow is imported on first use)."""
    if not _GRAPH:
        _GRAPH.append(_GraphOps())
    return _GRAPH[0]
