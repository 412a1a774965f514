"""Throughput settings decided per device, in one place: precision, XLA, steps per execution.

``auto`` resolves as follows (each choice and its reason is logged and
written to ``metrics.json``):

- ``training.mixed_precision``: ``bf16`` on TPU, on NVIDIA GPUs of compute
  capability 8.0+ (Ampere and newer) and on CPUs with native bfloat16
  (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``); ``fp16`` with
  dynamic loss scaling on older GPUs; ``off`` (float32) elsewhere.
- ``training.jit_compile``: on for TPU (XLA is how TPUs run); off on CPU,
  where graph mode with oneDNN measured faster than XLA with its per-shape
  compiles; on GPU only with ``static_shapes`` (a bounded set of shapes to
  compile) — a rule, not yet a measurement, as no GPU was at hand.
- ``training.steps_per_execution``: 32 on TPU and 8 on GPU (host round trips
  dominate small steps there); 1 on CPU, where the host is the device.
- ``training.fast_dropout``: on unless the whole model is XLA-compiled (TPU,
  ``jit_compile``): dropout masks from one random byte per element (:mod:`tfslm.training.dropout`) instead of a float draw.
- ``training.fused_gelu``: on unless the whole model is XLA-compiled (TPU,
  ``jit_compile``): the exact GELU as one XLA loop each way (:mod:`tfslm.training.gelu`).
- ``training.fused_attention``: on unless the whole model is XLA-compiled: BERT-family
  self-attention with the softmax's gradient as one XLA loop (:mod:`tfslm.training.attention`).

Mixed precision follows Keras: variables stay float32, layers compute in
the low precision; logits are cast to float32 before the loss
(:class:`Float32SparseCategoricalCrossentropy`), and fp16 gets Keras'
``LossScaleOptimizer``. The global policy is set only while the model is
built (:meth:`Performance.policy_scope`) and restored afterwards, so later
models (a Predictor, the float32 copy for export) are float32.

Example:
    >>> perf = resolve_performance(cfg.training)           # doctest: +SKIP
    >>> with perf.policy_scope():                          # doctest: +SKIP
    ...     model, tokenizer = build_model(cfg.model, data.labels)
    >>> model.compile(optimizer, loss, **perf.compile_options())   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Performance",
    "resolve_performance",
    "detect_device",
    "cpu_flags",
    "cpu_has_native_bf16",
    "Float32SparseCategoricalCrossentropy",
    "float32_copy",
    "POLICIES",
]

log = logging.getLogger("tfslm")

POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is absent)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags") and ":" in line:
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


@dataclass
class DeviceInfo:
    kind: str  # "cpu", "gpu" or "tpu"
    detail: str
    compute_capability: tuple[int, int] | None = None
    cpu_bf16: bool = False


def detect_device() -> DeviceInfo:
    """What the training will run on: a TPU (when a TPU system is initialised), else the first GPU, else the CPU."""
    import tensorflow as tf

    flags = cpu_flags()
    cpu_bf16 = cpu_has_native_bf16(flags)
    if tf.config.list_logical_devices("TPU"):
        return DeviceInfo("tpu", "TPU", cpu_bf16=cpu_bf16)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0]) or {}
        cc = details.get("compute_capability")
        name = details.get("device_name", "GPU")
        return DeviceInfo("gpu", f"{name} x{len(gpus)}", tuple(cc) if cc else None, cpu_bf16)
    isa = "avx512_bf16" if "avx512_bf16" in flags else ("amx_bf16" if "amx_bf16" in flags else "no native bf16")
    return DeviceInfo("cpu", f"CPU x{os.cpu_count()} ({isa})", None, cpu_bf16)


@dataclass
class Performance:
    """The resolved throughput settings and why each was chosen."""

    device: str
    device_detail: str
    mixed_precision: str  # off | bf16 | fp16
    jit_compile: bool
    steps_per_execution: int
    fast_dropout: bool = False
    fused_gelu: bool = False
    fused_attention: bool = False
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def policy(self) -> str:
        return POLICIES[self.mixed_precision]

    @contextlib.contextmanager
    def policy_scope(self):
        """Set the global dtype policy of the backend's Keras while models are built; restore it afterwards."""
        from tfslm.backends import keras_module

        keras = keras_module()
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.policy)
        try:
            yield
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def compile_options(self) -> dict[str, Any]:
        """Keyword arguments for ``model.compile``."""
        return {"jit_compile": self.jit_compile, "steps_per_execution": self.steps_per_execution}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["policy"] = self.policy
        return out


def _auto_precision(device: DeviceInfo) -> tuple[str, str]:
    if device.kind == "tpu":
        return "bf16", "TPU: bfloat16 is native"
    if device.kind == "gpu":
        if device.compute_capability and device.compute_capability >= (8, 0):
            return "bf16", f"GPU compute capability {device.compute_capability}: Ampere or newer has bf16 tensor cores"
        return "fp16", f"GPU compute capability {device.compute_capability}: pre-Ampere, fp16 tensor cores with loss scaling"
    if device.cpu_bf16:
        return "bf16", "CPU has native bfloat16 (avx512_bf16/amx_bf16): oneDNN runs bf16 matmuls at ~2x float32"
    return "off", "CPU without native bfloat16: emulated bf16 is slower than float32"


def _auto_jit(device: DeviceInfo, static_shapes: bool) -> tuple[bool, str]:
    if device.kind == "tpu":
        return True, "TPU: XLA is required"
    if device.kind == "gpu":
        if static_shapes:
            return True, "GPU with static_shapes: a bounded set of shapes to compile"
        return False, "GPU with variable shapes: XLA would recompile for every new batch shape"
    return False, "CPU: graph mode with oneDNN measured faster than XLA (recompiles per shape)"


def _auto_steps(device: DeviceInfo) -> tuple[int, str]:
    if device.kind == "tpu":
        return 32, "TPU: amortise host round trips"
    if device.kind == "gpu":
        return 8, "GPU: amortise Python/host overhead of small steps"
    return 1, "CPU: the host is the device, nothing to amortise"


def _auto_fast_dropout(device: DeviceInfo, jit: bool) -> tuple[bool, str]:
    if device.kind == "tpu" or jit:
        return False, "the whole model is compiled by XLA, which fuses Keras' dropout (the byte masks are untested there)"
    return True, ("one random byte per element instead of a float draw: dropout masks (the attention probabilities' "
                  "above all, where that dropout is on) cost a large share of a CPU step (docs/speed-notes.md)")


def _auto_fused_gelu(device: DeviceInfo, jit: bool) -> tuple[bool, str]:
    if device.kind == "tpu" or jit:
        return False, "the whole model is compiled by XLA already"
    return True, "the exact GELU as one XLA loop each way in float32, instead of five elementwise kernels (Erfc has no bf16 kernel)"


def _auto_fused_attention(device: DeviceInfo, jit: bool) -> tuple[bool, str]:
    if device.kind == "tpu" or jit:
        return False, "the whole model is compiled by XLA already"
    return True, ("the attention's scale on the query and the softmax's gradient as one XLA loop, instead of four "
                  "kernels over the [batch, heads, length, length] scores")


def resolve_performance(training, *, device: DeviceInfo | None = None) -> Performance:
    """Resolve ``auto`` throughput settings of a ``training`` config section for this machine.

    Args:
        training: a :class:`tfslm.TrainingConfig` (``mixed_precision``, ``jit_compile``,
            ``steps_per_execution``, ``static_shapes``).
        device: override the detected device (tests, planning for another machine).

    Example:
        >>> from tfslm.config import TrainingConfig
        >>> resolve_performance(TrainingConfig(), device=DeviceInfo("tpu", "TPU")).mixed_precision
        'bf16'
    """
    device = device or detect_device()
    reasons: dict[str, str] = {}
    precision = getattr(training, "mixed_precision", "off")
    if precision in (False, None):
        precision = "off"
    if precision == "auto":
        precision, reasons["mixed_precision"] = _auto_precision(device)
    else:
        reasons["mixed_precision"] = "set in config"
    jit = getattr(training, "jit_compile", False)
    if jit == "auto":
        jit, reasons["jit_compile"] = _auto_jit(device, bool(getattr(training, "static_shapes", False)))
    else:
        jit = jit in (True, "true")
        reasons["jit_compile"] = "set in config"
    steps = getattr(training, "steps_per_execution", 1)
    if steps == "auto":
        steps, reasons["steps_per_execution"] = _auto_steps(device)
    else:
        steps = int(steps)
        reasons["steps_per_execution"] = "set in config"
    fast = _resolve_switch(training, "fast_dropout", reasons, lambda: _auto_fast_dropout(device, bool(jit)))
    gelu = _resolve_switch(training, "fused_gelu", reasons, lambda: _auto_fused_gelu(device, bool(jit)))
    attention = _resolve_switch(training, "fused_attention", reasons, lambda: _auto_fused_attention(device, bool(jit)))
    return Performance(device.kind, device.detail, precision, bool(jit), int(steps), fast, gelu, attention, reasons)


def _resolve_switch(training, key: str, reasons: dict, auto) -> bool:
    value = getattr(training, key, False)
    if value == "auto":
        value, reasons[key] = auto()
    else:
        reasons[key] = "set in config"
    return value in (True, "true")


class _LazyLoss:
    """Defined on first use (one class per Keras module) so importing this module does not import TensorFlow."""

    classes: dict[str, type] = {}


def Float32SparseCategoricalCrossentropy(**kwargs):  # noqa: N802 (a class factory)
    """Sparse categorical cross-entropy that casts logits to float32 first.

    Under ``mixed_bfloat16`` a transformers classifier returns bf16 logits;
    softmax and log in bf16 (8 bits of mantissa) make the loss coarse.
    """
    from tfslm.backends import keras_module

    keras = keras_module()
    if keras.__name__ not in _LazyLoss.classes:
        import tensorflow as tf

        class _Loss(keras.losses.SparseCategoricalCrossentropy):
            def call(self, y_true, y_pred):
                return super().call(y_true, tf.cast(y_pred, tf.float32))

        _Loss.__name__ = "Float32SparseCategoricalCrossentropy"
        _LazyLoss.classes[keras.__name__] = _Loss
    return _LazyLoss.classes[keras.__name__](**kwargs)


def float32_copy(model):
    """A float32-policy twin of a (mixed-precision) model with the same weights (the backend builds it).

    Mixed-precision variables are float32 already, so the weights copy as
    they are; the twin computes in float32, which is what a SavedModel
    consumer or ``from_pretrained`` expects.
    """
    from tfslm.backends import get_backend

    return get_backend().float32_copy(model)
