"""From loaded data to batched ``tf.data`` datasets: one entry point, :func:`build_inputs`, one result, :class:`InputData`.

Modules: ``pipeline`` (the entry point), ``input_data`` (the result type),
``token_cache`` (tokenize once, Arrow cache), ``batching`` (the batching core
shared by ``bucketing`` and ``tfrecord_reader``), ``chunking`` (long texts in
windows), ``tfrecord_writer``/``tfrecord_reader``/``tfrecord_checks``/``tfrecord_format``
(``tfslm prepare`` directories). Names load on first use (TensorFlow is heavy).
"""

from __future__ import annotations

_LAZY = {
    "build_inputs": "tfslm.inputs.pipeline",
    "build_inputs_from_config": "tfslm.inputs.pipeline",
    "to_tf_datasets": "tfslm.inputs.pipeline",
    "InputData": "tfslm.inputs.input_data",
    "InputStatistics": "tfslm.inputs.input_data",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tfslm.inputs' has no attribute {name!r}")
