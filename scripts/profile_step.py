#!/usr/bin/env python
"""Where a training step's time goes: a tf.profiler trace of tfslm's default path, summarised by op type.

Builds the essay-br model exactly as `tfslm train configs/essay-br.yaml` does
(MiniLM-L6 from ../shared, bucketed pipeline, the resolved precision), runs a
few warm-up steps, traces --steps training steps with `tf.profiler`, and
prints the TensorFlow ops' self time grouped by op type, with the share of
matrix multiplications, then grouped by concern (the op's scope: optimizer
update, LayerNorm, dropout, attention, ...), as tables (and the trace
directory for TensorBoard).

    python scripts/profile_step.py                                  # bf16 (auto on this CPU), 512 tokens
    python scripts/profile_step.py --set training.mixed_precision=off
    python scripts/profile_step.py --set model.max_length=256 --steps 4
    python scripts/profile_step.py --set model.backend=keras_hub   # KerasHub on Keras 3

Not a test: it needs ../shared.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MATMUL = ("MatMul", "BatchMatMul", "_FusedMatMul", "_MklMatMul", "_MklBatchMatMul", "_MklFusedMatMul", "Einsum", "Conv")


XLA_RUN = "CpuExecutable::ExecuteAsyncOnStream"
XLA_LABEL = "XLA-compiled kernels (training.fused_gelu, fused_attention)"


def op_type(name: str) -> str:
    """``scope/op_name:OpType`` -> ``OpType`` (the profiler's TF-op event names)."""
    return name.rsplit(":", 1)[-1] if ":" in name else name


# Where an op belongs, from its scope (first match wins): the levers are per concern, not per op type.
CONCERNS = (
    ("optimizer update", ("AdamWeightDecay", "Adam", "optimizer", "update_step", "ResourceApply")),
    ("gradient aggregation / clipping", ("clip_by", "global_norm", "IndexedSlices", "UnsortedSegmentSum")),
    ("LayerNorm", ("LayerNorm", "layer_norm", "layernorm")),
    ("GELU", ("gelu", "Gelu", "intermediate_act")),
    ("dropout", ("dropout", "Dropout")),
    ("attention (scores, mask, softmax)", ("attention", "self/", "Softmax", "softmax")),
    ("embeddings", ("embeddings", "Gather")),
    ("loss / head", ("loss", "classifier", "pooler")),
)


def concern(name: str) -> str:
    for label, needles in CONCERNS:
        if any(n in name for n in needles):
            return label
    return "other"


def summarise(trace_dir: str, key=None) -> tuple[collections.Counter, float]:
    """Wall time per TF op type, in ms, from the XPlane files under ``trace_dir``.

    Counts the events of TensorFlow's executor threads (``tf_Compute/*`` lines),
    one per op execution, named ``scope/op:Type``, and the runs of XLA-compiled
    functions on those threads (the fused kernels, one label for all: XLA's
    own events carry no TF scope); tf.data and Python spans are left out. An
    op's intra-op parallel work (oneDNN, Eigen) is inside its wall time; two executor threads can run ops at once, so the total can
    exceed the elapsed time.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: collections.Counter = collections.Counter()
    for path in glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
        for plane in space.planes:
            names = {k: v.name for k, v in plane.event_metadata.items()}
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if ":" in name and "::" not in name:
                        totals[(key or op_type)(name)] += event.duration_ps / 1e9
                    elif name == XLA_RUN:  # a jit_compile'd function's run: no TF op events inside
                        totals[XLA_LABEL] += event.duration_ps / 1e9
    return totals, sum(totals.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "essay-br.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, KEY=VALUE")
    parser.add_argument("--steps", type=int, default=3, help="training steps to trace")
    parser.add_argument("--top", type=int, default=18, help="op types to list")
    args = parser.parse_args()

    import tensorflow as tf

    import tfslm
    from tfslm.training.optimizer import compile_model
    from tfslm.training.performance import resolve_performance
    from tfslm.tasks.base import Task

    cfg = tfslm.load_config(args.config, args.overrides)
    task = Task.from_config(cfg)
    data = tfslm.load_data(cfg.data, seed=cfg.training.seed, task=task)
    perf = resolve_performance(cfg.training)
    from tfslm.backends import use_backend

    backend = use_backend(cfg.model.backend)  # as tfslm train: model.backend (auto resolved)
    with perf.policy_scope():
        model, tokenizer = backend.build_model(cfg.model, data.labels, task=task)
        backend.ensure_built(model)
    from tfslm.training.fit import _use_fast_ops

    _use_fast_ops(model, perf, backend.name)  # as tfslm train does (fast_dropout, fused_gelu, fused_attention)
    (train_ds,) = tfslm.to_tf_datasets(data, model, tokenizer, batch_size=cfg.training.batch_size,
                                       max_length=cfg.model.max_length, splits=("train",), seed=cfg.training.seed)
    compile_model(model, cfg.training, steps_per_epoch=len(train_ds), task=task, **perf.compile_options())
    batches = train_ds.take(3 + args.steps).cache()  # the same batches for warm-up and trace
    model.fit(batches.take(3), epochs=1, verbose=0)  # tracing and first steps

    trace_dir = tempfile.mkdtemp(prefix="tfslm-profile-")
    timed = batches.skip(3)
    tf.profiler.experimental.start(trace_dir)
    started = time.perf_counter()
    model.fit(timed, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    tf.profiler.experimental.stop()

    totals, total = summarise(trace_dir)
    matmul = sum(v for k, v in totals.items() if k.startswith(MATMUL))
    print(f"\n{backend.name}: {cfg.model.checkpoint or cfg.model.architecture}, max_length {cfg.model.max_length}, batch "
          f"{cfg.training.batch_size}, {perf.policy}, fast_dropout {perf.fast_dropout}, fused_gelu {perf.fused_gelu}, "
          f"fused_attention {perf.fused_attention}, {args.steps} steps in {seconds:.1f}s "
          f"({seconds / args.steps:.2f} s/step); load average {os.getloadavg()[0]:.1f}")
    print(f"TF op time (executor threads): {total / 1000:.1f} s; matmul family {100 * matmul / total:.1f}%\n")
    print("| op type | ms | share |\n|---|---:|---:|")
    for name, ms in totals.most_common(args.top):
        print(f"| {name} | {ms:.0f} | {100 * ms / total:.1f}% |")
    rest = total - sum(ms for _, ms in totals.most_common(args.top))
    print(f"| (other) | {rest:.0f} | {100 * rest / total:.1f}% |")
    by_concern, _ = summarise(trace_dir, key=concern)
    print("\n| concern (op scope, forward and gradient) | ms | share |\n|---|---:|---:|")
    for name, ms in by_concern.most_common():
        print(f"| {name} | {ms:.0f} | {100 * ms / total:.1f}% |")
    print(f"\ntrace: {trace_dir} (tensorboard --logdir {trace_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
