"""Per-device throughput settings, the new training keys, and bf16 numerics against float32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tiny_config_dict
from tfslm.config import TrainingConfig, config_from_dict
from tfslm.errors import ConfigError
from tfslm.training.performance import DeviceInfo, cpu_flags, cpu_has_native_bf16, resolve_performance


def _cfg(**training):
    return config_from_dict({"data": {"train_file": "x.csv"}, "model": {"architecture": "bert"}, "training": training}).training


# ---------------------------------------------------------------- config keys
def test_speed_keys_default_to_auto_and_bucketed():
    t = _cfg()
    assert (t.input_pipeline, t.static_shapes, t.steps_per_execution, t.jit_compile, t.mixed_precision) == (
        "bucketed", False, "auto", "auto", "auto")


@pytest.mark.parametrize("values, expected", [
    ({"steps_per_execution": 8}, ("steps_per_execution", 8)),
    ({"steps_per_execution": "16"}, ("steps_per_execution", 16)),
    ({"jit_compile": True}, ("jit_compile", True)),
    ({"jit_compile": "false"}, ("jit_compile", False)),
    ({"mixed_precision": False}, ("mixed_precision", "off")),  # YAML reads a bare `off` as false
    ({"mixed_precision": "bf16"}, ("mixed_precision", "bf16")),
    ({"input_pipeline": "prepare_tf_dataset"}, ("input_pipeline", "prepare_tf_dataset")),
    ({"static_shapes": True}, ("static_shapes", True)),
    ({}, ("group_by_length", "auto")),
    ({"group_by_length": "on"}, ("group_by_length", True)),
    ({"group_by_length": False}, ("group_by_length", False)),
])
def test_speed_keys_accept(values, expected):
    assert getattr(_cfg(**values), expected[0]) == expected[1]


@pytest.mark.parametrize("values, message", [
    ({"steps_per_execution": 0}, "training.steps_per_execution: got 0, expected auto or an integer >= 1"),
    ({"steps_per_execution": "many"}, "training.steps_per_execution: got 'many', expected auto or an integer >= 1"),
    ({"jit_compile": "maybe"}, "training.jit_compile: got 'maybe', expected one of: auto, true, false"),
    ({"mixed_precision": "fp8"}, "training.mixed_precision: got 'fp8', expected one of: auto, off, bf16, fp16"),
    ({"input_pipeline": "fast"}, "training.input_pipeline: got 'fast', expected one of: bucketed, prepare_tf_dataset"),
    ({"static_shapes": True, "input_pipeline": "prepare_tf_dataset"}, "training.static_shapes: needs training.input_pipeline: bucketed"),
    ({"static_shapes": "yes"}, "training.static_shapes: expected true/false"),
    ({"group_by_length": True, "input_pipeline": "prepare_tf_dataset"}, "training.group_by_length: needs training.input_pipeline: bucketed"),
    ({"group_by_length": "sorted"}, "training.group_by_length: got 'sorted', expected one of: auto, true, false"),
])
def test_speed_keys_reject_with_one_line(values, message):
    with pytest.raises(ConfigError) as info:
        _cfg(**values)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_group_by_length_with_chunked_windows_is_refused():
    with pytest.raises(ConfigError, match="training.group_by_length: not available with data.long_text: chunk"):
        config_from_dict({"data": {"train_file": "x.csv", "long_text": "chunk"}, "model": {"architecture": "bert"},
                          "training": {"group_by_length": True}})


def test_yaml_off_and_set_overrides(tmp_path):
    from tfslm.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("data: {train_file: x.csv}\nmodel: {architecture: bert}\ntraining: {mixed_precision: off, jit_compile: auto}\n")
    cfg = load_config(path, ["training.steps_per_execution=4", "training.static_shapes=true"])
    assert cfg.training.mixed_precision == "off" and cfg.training.steps_per_execution == 4 and cfg.training.static_shapes


# ---------------------------------------------------------------- device rules
def test_cpu_flags_detect_native_bf16(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert "avx512_bf16" in cpu_flags(str(info))
    assert cpu_has_native_bf16({"amx_bf16", "amx_tile"}) and cpu_has_native_bf16({"avx512_bf16"})
    assert not cpu_has_native_bf16({"avx2", "avx512f"})
    assert cpu_flags(str(tmp_path / "absent")) == set()


@pytest.mark.parametrize("device, precision, jit, steps", [
    (DeviceInfo("cpu", "cpu", cpu_bf16=True), "bf16", False, 1),
    (DeviceInfo("cpu", "cpu", cpu_bf16=False), "off", False, 1),
    (DeviceInfo("gpu", "A100", compute_capability=(8, 0)), "bf16", False, 8),
    (DeviceInfo("gpu", "V100", compute_capability=(7, 0)), "fp16", False, 8),
    (DeviceInfo("tpu", "TPU"), "bf16", True, 32),
])
def test_auto_settings_per_device(device, precision, jit, steps):
    perf = resolve_performance(TrainingConfig(), device=device)
    assert (perf.mixed_precision, perf.jit_compile, perf.steps_per_execution) == (precision, jit, steps)
    assert set(perf.reasons) == {"mixed_precision", "jit_compile", "steps_per_execution", "fast_dropout", "fused_gelu",
                                 "fused_attention"}
    on_tpu = device.kind == "tpu"  # XLA compiles the whole model there: the swapped kernels are for graph mode
    assert (perf.fast_dropout, perf.fused_gelu, perf.fused_attention) == (not on_tpu, not on_tpu, not on_tpu)


def test_gpu_compiles_only_bounded_shapes_and_explicit_settings_win():
    gpu = DeviceInfo("gpu", "A100", compute_capability=(8, 0))
    assert resolve_performance(TrainingConfig(static_shapes=True), device=gpu).jit_compile is True
    perf = resolve_performance(TrainingConfig(mixed_precision="off", jit_compile=True, steps_per_execution=3), device=gpu)
    assert (perf.mixed_precision, perf.jit_compile, perf.steps_per_execution, perf.policy) == ("off", True, 3, "float32")
    assert perf.compile_options() == {"jit_compile": True, "steps_per_execution": 3}


def test_policy_scope_restores_the_global_policy():
    import tensorflow as tf

    perf = resolve_performance(TrainingConfig(mixed_precision="bf16"), device=DeviceInfo("cpu", "cpu"))
    with perf.policy_scope():
        assert tf.keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"


# ---------------------------------------------------------------- numerics
def _fit_tiny(tmp_path, train_csv, precision):
    """Seeded tiny-BERT fit under one precision; returns (validation loss, logits dtype, float32-copy logits gap)."""
    import tfslm
    from tfslm.training.performance import float32_copy
    from tfslm.training.fit import set_seed

    cfg = config_from_dict(tiny_config_dict(tmp_path, train_csv, training={"epochs": 6, "learning_rate": 1e-2, "mixed_precision": precision}))
    set_seed(0)
    perf = resolve_performance(cfg.training)
    data = tfslm.load_data(cfg.data, seed=0)
    with perf.policy_scope():
        model, tokenizer = tfslm.build_model(cfg.model, data.labels, train_texts=data["train"]["text"])
    train_ds, val_ds = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=16, max_length=32, seed=0)
    tfslm.compile_model(model, cfg.training, steps_per_epoch=len(train_ds), **perf.compile_options())
    model.fit(train_ds, epochs=cfg.training.epochs, verbose=0)
    loss = tfslm.evaluate_model(model, val_ds, data.labels)["loss"]
    features, _ = next(iter(val_ds))
    logits = model(features, training=False).logits
    twin = float32_copy(model)
    gap = float(np.abs(twin(features, training=False).logits.numpy() - logits.numpy().astype(np.float32)).max())
    return loss, logits.dtype.name, twin(features).logits.dtype.name, gap


@pytest.mark.slow
def test_bf16_reaches_the_float32_validation_loss(tmp_path, train_csv):
    """Stated tolerance: after the same seeded fit, |val_loss(bf16) - val_loss(float32)| <= 0.1 (and <= 10%)."""
    loss32, dtype32, _, gap32 = _fit_tiny(tmp_path, train_csv, "off")
    loss16, dtype16, twin_dtype, gap16 = _fit_tiny(tmp_path, train_csv, "bf16")
    assert dtype32 == "float32" and dtype16 == "bfloat16" and twin_dtype == "float32"
    assert gap32 == 0.0 and gap16 < 0.1  # the float32 twin has the same weights
    assert loss32 < 0.8  # it learned something (3 balanced classes: chance is ln 3 = 1.1)
    assert abs(loss16 - loss32) <= max(0.1, 0.1 * loss32), (loss16, loss32)


@pytest.mark.slow
def test_train_reports_speed_and_saves_float32(tmp_path, train_csv):
    from tfslm.training.fit import train

    cfg = config_from_dict(tiny_config_dict(
        tmp_path, train_csv, training={"epochs": 1, "static_shapes": True, "steps_per_execution": 2, "mixed_precision": "bf16"},
        export={"saved_model": False},
    ))
    result = train(cfg, verbose=0)
    speed = json.loads((result.run_dir / "metrics.json").read_text())["speed"]
    assert speed["input_pipeline"] == "bucketed" and speed["static_shapes"] is True
    assert speed["mixed_precision"] == "bf16" and speed["steps_per_execution"] == 2 and speed["jit_compile"] is False
    epoch = speed["train_epoch"]
    assert 0.0 <= epoch["padding_fraction"] < 1.0 and epoch["distinct_shapes"] <= len(speed["bucket_edges"])
    config = json.loads((result.run_dir / "model" / "config.json").read_text())
    assert config.get("torch_dtype", "float32") in ("float32", None)
    import tensorflow as tf

    assert tf.keras.mixed_precision.global_policy().name == "float32"


def test_the_kernel_swaps_step_aside_when_xla_compiles_the_whole_model():
    cpu = DeviceInfo("cpu", "cpu", cpu_bf16=True)
    perf = resolve_performance(TrainingConfig(jit_compile=True), device=cpu)
    assert (perf.fast_dropout, perf.fused_gelu, perf.fused_attention) == (False, False, False)
    forced = resolve_performance(TrainingConfig(jit_compile=True, fast_dropout=True), device=cpu)
    assert forced.fast_dropout is True and forced.reasons["fast_dropout"] == "set in config"
