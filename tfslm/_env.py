"""Process environment for TensorFlow: set before TensorFlow is first imported.

transformers' TF models need Keras 2 (``tf-keras``); TensorFlow >= 2.16 gives
Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` is set before ``import tensorflow``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# 3 hides TF's C++ INFO/WARNING/ERROR chatter (e.g. "oneDNN supports DT_INT64 only
# with AVX-512"); real failures still surface as Python exceptions. `--debug` lowers it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# transformers warns on every import that its TF classes are deprecated: we know.
warnings.filterwarnings("ignore", message=".*TensorFlow and JAX classes are deprecated.*")

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
    warnings.warn(
        "tensorflow was imported before tfslm without TF_USE_LEGACY_KERAS=1; transformers' TF models "
        "need Keras 2: set TF_USE_LEGACY_KERAS=1 before importing tensorflow",
        RuntimeWarning,
        stacklevel=2,
    )


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True):
    """Silence C++ start-up chatter (absl logs printed before TF reads TF_CPP_MIN_LOG_LEVEL).

    Only file descriptor 2 is redirected, only around the import; Python
    exceptions are raised after it is restored, so no error is hidden.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(quiet: bool = True):
    """Import TensorFlow (and the model backend's libraries) with the start-up logs silenced."""
    with quiet_native_stderr(quiet and "tensorflow" not in sys.modules):
        import tensorflow as tf

        tf.config.list_physical_devices()  # triggers the CUDA probe while quiet
        from tfslm.backends import get_backend

        get_backend().import_libraries()
    return tf
