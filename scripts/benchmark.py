#!/usr/bin/env python
"""Benchmark tfslm's default training path against the seed workflow and PyTorch's Trainer.

Measures, side by side on the same rows, checkpoint and batch size:

  (a) the seed workflow (the course notebook): datasets.map(tokenizer, truncation=True)
      -> model.prepare_tf_dataset(..., shuffle=True, tokenizer=tokenizer)
      -> create_optimizer -> compile -> fit;
  (b) tfslm's default path: cached tokens, bucketed pure-TF pipeline, per-device
      precision/XLA/steps settings (tfslm.training.performance), tfslm.compile_model, fit;
  (c) Hugging Face's PyTorch Trainer with group_by_length (when a Python with
      torch is given: --torch-python, default /work/bench-venv/bin/python);
  (d) (b) on the keras_hub backend (model.backend: keras_hub): the same checkpoint
      converted by KerasHub, trained by Keras 3 (``--methods b d`` compares the backends).

Scenarios: full essays at max_length 256 and 512, and the essays' first
paragraphs (short, variable-length). Every measurement runs in a fresh
process (own peak RSS, cold token cache): one warm-up (a few steps, all
tracing), then --repeats measured epochs; the median is reported. Also
measures the machine's matmul peak (TF, 2048^2, float32 and bfloat16) and the
scale check (tokenize + prepare 10k vs 100k rows, peak RSS).

Writes docs/benchmarks-steady.md (table + machine) and docs/benchmarks-steady.json: the steady-state
kernel figures. What a user waits for (whole runs, one fit or one `tfslm train`) is scripts/benchmark_runs.py,
which writes docs/benchmarks.md.

    python scripts/benchmark.py                      # ~20 min on 2 cores
    python scripts/benchmark.py --rows 686 --repeats 5 --rows-512 686
    python scripts/benchmark.py --only essays-256 --methods a b --repeats 2

Not a test: it needs ../shared (the essays and all-MiniLM-L6-v2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = time.time()
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_ESSAYS = SHARED / "data" / "essay-br" / "development.csv"
DEFAULT_MODEL = SHARED / "models" / "all-MiniLM-L6-v2"
SCENARIOS = {
    # name: (text kind, max_length)
    "essays-256": ("essay", 256),
    "essays-512": ("essay", 512),
    "short-256": ("first_paragraph", 256),
}
METHOD_NAMES = {"a": "seed workflow (prepare_tf_dataset)", "b": "tfslm default (bucketed)", "c": "PyTorch Trainer (group_by_length)",
                "d": "tfslm keras_hub backend (bucketed, Keras 3)"}
WARMUP_STEPS = 4
LR = 2e-5


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- data
def load_texts(path: str, kind: str, rows: int):
    """(texts, label ids, label names) of the first ``rows`` essays: cleaned essays or their first paragraph."""
    import pandas as pd

    sys.path.insert(0, str(REPO))
    from tfslm.data.cleaning import _parse_list, clean_text

    frame = pd.read_csv(path, nrows=rows, keep_default_na=False)
    if kind == "essay":
        texts = [clean_text(v) for v in frame["essay"]]
    else:
        texts = [((_parse_list(v) or [v])[0]).strip() for v in frame["essay"]]
    scores = [str(int(float(s))) for s in frame["score"]]
    names = sorted(set(scores), key=float)
    index = {n: i for i, n in enumerate(names)}
    return texts, [index[s] for s in scores], names


def model_flops_per_row(config: dict, length: int) -> float:
    """Training FLOPs (forward + backward = 3x forward) of one row of ``length`` real tokens.

    Dense layers: 2 FLOPs per multiply-add per token, x3 for training: 6 x the
    non-embedding parameters; attention scores and context add 2 x 2 x L x h x
    length per token forward (x3 training).
    """
    h, layers, inter = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    dense_params = layers * (4 * h * h + 2 * h * inter)
    return 6.0 * dense_params * length + 12.0 * layers * h * length * length


def _flops_config(model) -> dict:
    """``hidden_size``, ``num_hidden_layers``, ``intermediate_size``: a transformers config's, or a KerasHub backbone's."""
    if hasattr(model, "config"):
        return model.config.to_dict()
    from tfslm.backends.keras_hub import task_of

    backbone = task_of(model).backbone
    return {"hidden_size": backbone.hidden_dim, "num_hidden_layers": backbone.num_layers,
            "intermediate_size": backbone.intermediate_dim}


# ---------------------------------------------------------------- workers
def _result(payload: dict) -> None:
    payload["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(payload), flush=True)


def worker_tf(method: str, scenario: str, args) -> None:
    kind, max_length = SCENARIOS[scenario]
    import numpy as np

    sys.path.insert(0, str(REPO))
    import tfslm  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
    from tfslm._env import import_tensorflow

    import_tensorflow()
    import datasets

    datasets.disable_progress_bars()
    from tfslm.data.labels import LabelSpace
    from tfslm.backends.hf_tf import load_checkpoint

    texts, label_ids, names = load_texts(args.essays, kind, args.rows_for(scenario))
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    train = datasets.Dataset.from_dict({"text": texts, "label": label_ids}, features=features)
    labels = LabelSpace(tuple(names), kind="numeric", ordered=True)
    info: dict = {"method": method, "scenario": scenario, "rows": len(texts), "max_length": max_length, "batch_size": args.batch_size}

    timings = {"first_step": None}
    from tfslm.backends import use_backend

    backend = use_backend("keras_hub" if method == "d" else "transformers")
    info["backend"] = backend.name

    class Timer(backend.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_train_batch_end(self, batch, logs=None):
            if timings["first_step"] is None:
                timings["first_step"] = time.time() - START

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(time.time() - self._t)

    if method == "a":
        # The seed workflow, as in the course notebook (plus max_length for the 256 scenarios).
        from transformers import create_optimizer

        model, tokenizer = load_checkpoint(args.model, labels)

        def tokenize(batch):
            return tokenizer(batch["text"], truncation=True, max_length=max_length)

        tokenized = train.map(tokenize, batched=True, remove_columns=["text"])
        train_ds = model.prepare_tf_dataset(tokenized, shuffle=True, batch_size=args.batch_size, tokenizer=tokenizer)
        steps = len(tokenized) // args.batch_size
        optimizer, _ = create_optimizer(init_lr=LR, num_warmup_steps=0, num_train_steps=steps * (args.repeats + 1))
        model.compile(optimizer=optimizer)
        real = pad_total = 0
        for features, _ in train_ds:  # padding of one epoch (a separate pass; its own shuffle)
            mask = features["attention_mask"].numpy()
            real += int(mask.sum())
            pad_total += mask.size
        info["padding_fraction"] = round(1 - real / pad_total, 4)
        info["precision"] = "float32"
        info["settings"] = {"input_pipeline": "prepare_tf_dataset", "jit_compile": False, "steps_per_execution": 1}
    else:
        from tfslm.config import TrainingConfig
        from tfslm.training.optimizer import compile_model
        from tfslm.training.performance import resolve_performance
        from tfslm.inputs.pipeline import to_tf_datasets
        from tfslm.training.fit import set_seed

        training = TrainingConfig(epochs=args.repeats + 1, batch_size=args.batch_size, learning_rate=LR, warmup_ratio=0.0)
        for item in args.set:
            key, value = item.split("=", 1)
            setattr(training, key, json.loads(value) if value[:1] in "0123456789tf[{\"" else value)
        set_seed(training.seed, training.deterministic)
        perf = resolve_performance(training)
        with perf.policy_scope():
            if method == "d":
                from tfslm.config import ModelConfig

                model, tokenizer = backend.build_model(ModelConfig(checkpoint=args.model, max_length=max_length), labels)
            else:
                model, tokenizer = load_checkpoint(args.model, labels, max_length=max_length)
        (train_ds,) = to_tf_datasets(
            {"train": train}, model, tokenizer, batch_size=args.batch_size, max_length=max_length, splits=("train",),
            input_pipeline=training.input_pipeline, seed=training.seed, static_shapes=training.static_shapes,
        )
        compile_model(model, training, steps_per_epoch=len(train_ds), **perf.compile_options())
        stats = getattr(train_ds, "padding_stats", {})
        info["padding_fraction"] = stats.get("padding_fraction")
        info["distinct_shapes"] = stats.get("distinct_shapes")
        info["bucket_edges"] = list(train_ds.bucket_spec.edges) if hasattr(train_ds, "bucket_spec") else None
        info["precision"] = perf.policy
        info["settings"] = perf.to_dict()

    lengths = [min(len(ids), max_length) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    info["real_tokens_per_epoch"] = int(sum(lengths))
    info["train_flops_per_epoch"] = float(sum(model_flops_per_row(_flops_config(model), n) for n in lengths))

    timer = Timer()
    model.fit(train_ds.take(WARMUP_STEPS), epochs=1, verbose=0, callbacks=[timer])
    timer.epochs.clear()
    for _ in range(args.repeats):
        model.fit(train_ds, epochs=1, verbose=0, callbacks=[timer])
    info["time_to_first_step_s"] = round(timings["first_step"], 1)
    info["epoch_seconds"] = [round(t, 2) for t in timer.epochs]
    _finish(info, len(texts), np)


def worker_torch(scenario: str, args) -> None:
    kind, max_length = SCENARIOS[scenario]
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments)
    import datasets

    datasets.disable_progress_bars()
    texts, label_ids, names = load_texts(args.essays, kind, args.rows_for(scenario))
    info: dict = {"method": "c", "scenario": scenario, "rows": len(texts), "max_length": max_length,
                  "batch_size": args.batch_size, "precision": "float32", "torch": torch.__version__,
                  "torch_threads": torch.get_num_threads()}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(names))
    ds = datasets.Dataset.from_dict({"text": texts, "label": label_ids})
    tokenized = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True, remove_columns=["text"])
    timings = {"first_step": None, "epochs": []}

    class Timer(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if timings["first_step"] is None:
                timings["first_step"] = time.time() - START

        def on_epoch_begin(self, a, state, control, **kw):
            self._t = time.time()

        def on_epoch_end(self, a, state, control, **kw):
            timings["epochs"].append(time.time() - self._t)

    out = tempfile.mkdtemp(prefix="bench-trainer-")

    def trainer_for(**kw):
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, group_by_length=True, learning_rate=LR,
            report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True, seed=42,
            dataloader_num_workers=0, disable_tqdm=True, **kw,
        )
        return Trainer(model=model, args=targs, train_dataset=tokenized, data_collator=DataCollatorWithPadding(tokenizer),
                       callbacks=[Timer()])

    trainer_for(max_steps=WARMUP_STEPS).train()
    timings["epochs"].clear()
    trainer = trainer_for(num_train_epochs=args.repeats)
    real = total = 0
    for batch in trainer.get_train_dataloader():
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    info["padding_fraction"] = round(1 - real / total, 4)
    trainer.train()
    lengths = [len(x) for x in tokenized["input_ids"]]
    info["real_tokens_per_epoch"] = int(sum(lengths))
    info["train_flops_per_epoch"] = float(sum(model_flops_per_row(model.config.to_dict(), n) for n in lengths))
    info["time_to_first_step_s"] = round(timings["first_step"], 1)
    info["epoch_seconds"] = [round(t, 2) for t in timings["epochs"]]
    _finish(info, len(texts), np)


def _finish(info: dict, rows: int, np) -> None:
    epochs = info["epoch_seconds"]
    median = statistics.median(epochs)
    info["samples_per_s"] = round(rows / median, 2)
    info["samples_per_s_all"] = [round(rows / t, 2) for t in epochs]
    info["real_tokens_per_s"] = round(info["real_tokens_per_epoch"] / median, 1)
    info["model_gflops_per_s"] = round(info["train_flops_per_epoch"] / median / 1e9, 1)
    _result(info)


def worker_matmul(args) -> None:
    sys.path.insert(0, str(REPO))
    from tfslm._env import import_tensorflow

    tf = import_tensorflow()
    n = 2048
    out = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        a = tf.random.normal([n, n], dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)

        @tf.function
        def run(a, b, reps=tf.constant(10)):
            acc = tf.zeros([n, n], dtype)
            for _ in tf.range(reps):
                acc += tf.matmul(a, b)
            return acc

        run(a, b, tf.constant(2)).numpy()
        best = 0.0
        for _ in range(3):
            t = time.time()
            run(a, b, tf.constant(10)).numpy()
            best = max(best, 2 * n**3 * 10 / (time.time() - t) / 1e9)
        out[name] = round(best, 1)
    _result({"matmul_gflops": out})


def worker_scale(rows: int, args) -> None:
    """Tokenize + prepare ``rows`` rows (essays repeated) through the bucketed path; report peak RSS."""
    sys.path.insert(0, str(REPO))
    import pyarrow as pa
    import pyarrow.parquet as pq

    import tfslm  # noqa: F401
    from tfslm._env import import_tensorflow

    tf = import_tensorflow()
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    from tfslm.inputs.bucketing import BucketSpec, bucket_boundaries, bucketed_dataset, tokenize_cached

    texts, label_ids, names = load_texts(args.essays, "essay", 10_000)
    base = pa.table({"text": texts, "label": pa.array(label_ids, pa.int64())})
    del texts
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    path = tmp / "rows.parquet"
    with pq.ParquetWriter(path, base.schema) as writer:  # repeated on disk, never as one Python list
        written = 0
        while written < rows:
            part = base.slice(0, min(base.num_rows, rows - written))
            writer.write_table(part)
            written += part.num_rows
    del base
    baseline = peak_rss_mb()
    t = time.time()
    ds = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp / "cache"))
    ds = ds.cast_column("label", datasets.ClassLabel(names=names))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    split = tokenize_cached(ds, tokenizer, 512, cache_dir=tmp / "tokens")
    t_tok = time.time() - t
    spec = BucketSpec(bucket_boundaries(split.lengths, 512, batch_size=16), 16, max_length=512)
    tds = bucketed_dataset(split, spec=spec, feature_names=["input_ids", "attention_mask"], shuffle=True, seed=0)
    seen = 0
    for features, _ in tds:
        seen += int(features["input_ids"].shape[0])
    _result({"scale_rows": rows, "rows_seen": seen, "tokenize_s": round(t_tok, 1), "prepare_and_epoch_s": round(time.time() - t - t_tok, 1),
             "rss_before_mb": round(baseline, 1), "padding_fraction": tds.padding_stats["padding_fraction"],
             "num_proc": None})


# ---------------------------------------------------------------- orchestration
def run_worker(python: str, argv: list[str], env_extra: dict | None = None, timeout: int = 1800) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["TF_USE_LEGACY_KERAS"] = "1"
    env["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="bench-ds-cache-")  # cold cache: first-run cost
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    t = time.time()
    proc = subprocess.run([python, str(Path(__file__).resolve()), *argv], capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"error": f"exit {proc.returncode}: {tail}", "argv": argv}
    out = json.loads(lines[-1][len("RESULT "):])
    out["process_seconds"] = round(time.time() - t, 1)
    return out


def machine_info() -> dict:
    flags = set()
    model = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
        "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"}), "platform": platform.platform(),
    }


def versions(python: str, modules: list[str]) -> dict:
    code = "import importlib, json; out={}\nfor m in %r:\n  try: out[m]=importlib.import_module(m).__version__\n  except Exception as e: out[m]=None\nprint(json.dumps(out))" % modules
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                                         env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.strip().splitlines()[-1])
    except Exception:
        return {}


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_report(report: dict, md_path: Path, json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    peak = report.get("matmul", {}).get("matmul_gflops", {})
    lines = [
        "# Steady-state benchmarks (epochs after a warm-up; whole runs: benchmarks.md)",
        "",
        f"Written by `{report['command']}` on {report['finished_utc']} (UTC). Raw figures: `{json_path.name}`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; bf16-related flags: {', '.join(m['bf16_flags']) or 'none'}",
        f"- Load average (1, 5, 15 min) before: {report['load_before']}, after: {report['load_after']}",
        f"- TF-side versions: {report['versions_tf']}; torch side: {report['versions_torch'] or 'torch not available'}",
        f"- Matmul peak (TF, 2048x2048, best of 3): float32 {fmt(peak.get('float32'))} GFLOP/s, bfloat16 {fmt(peak.get('bfloat16'))} GFLOP/s",
        "- GPU/TPU: none here (the device tool was not available to this task), so only CPU figures.",
        "",
        "## Training throughput",
        "",
        f"MiniLM-L6 (all-MiniLM-L6-v2), batch size {report['args']['batch_size']}, first N rows of essay-br development.csv. "
        f"Each cell: one fresh process, a {WARMUP_STEPS}-step warm-up (tracing), then {report['args']['repeats']} measured epochs; "
        "samples/s is the median epoch (min–max in brackets). Real tokens exclude padding. Model FLOP share = training FLOPs of the "
        "real tokens (6 x dense params x tokens + attention) per second / the measured matmul peak of the precision the run used. "
        "Time to first step counts from process start (imports, data, model load, tokenization, tracing), with a cold token cache.",
        "",
        "| scenario | method | precision | samples/s | real tokens/s | padding | model FLOP share | peak RSS MB | first step s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, results in report["results"].items():
        for method in ("a", "b", "c", "d"):
            r = results.get(method)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {scenario} | {method}: {METHOD_NAMES[method]} | – | error: {r['error'][:80]!r} | | | | | |")
                continue
            share = r.get("flop_share")
            spread = f"{min(r['samples_per_s_all']):.1f}–{max(r['samples_per_s_all']):.1f}"
            lines.append(
                f"| {scenario} ({r['rows']} rows) | {method}: {METHOD_NAMES[method]} | {r['precision']} | {r['samples_per_s']:.1f} ({spread}) | "
                f"{r['real_tokens_per_s']:.0f} | {fmt(None if r['padding_fraction'] is None else 100 * r['padding_fraction'])}% | {fmt(None if share is None else 100 * share)}% | "
                f"{r['peak_rss_mb']:.0f} | {r['time_to_first_step_s']:.0f} |"
            )
    lines += ["", "## Ratios and targets", "", "| scenario | b/a | b/c | d/b (keras_hub / transformers) | target b/a | target b/c | target d/b |", "|---|---|---|---|---|---|---|"]
    for scenario, ratio in report["ratios"].items():
        target_a = "≥ 2.0" if scenario.startswith("short") else ("≥ 1.4" if scenario == "essays-512" else "–")
        target_c = "≥ 2.0"
        lines.append(f"| {scenario} | {fmt(ratio.get('b/a'), 2)} | {fmt(ratio.get('b/c'), 2)} | {fmt(ratio.get('d/b'), 2)} | {target_a} | {target_c} | ≥ 0.9 |")
    scale = report.get("scale") or []
    if scale:
        lines += ["", "## Scale: tokenize + prepare (bucketed path, max_length 512)", "",
                  "| rows | peak RSS MB | RSS before MB | tokenize s | pipeline + one epoch of batches s | rows seen |", "|---|---|---|---|---|---|"]
        for s in scale:
            if "error" in s:
                lines.append(f"| ? | error: {s['error'][:80]!r} | | | | |")
                continue
            lines.append(f"| {s['scale_rows']} | {s['peak_rss_mb']:.0f} | {s['rss_before_mb']:.0f} | {s['tokenize_s']} | {s['prepare_and_epoch_s']} | {s['rows_seen']} |")
        if report.get("scale_growth") is not None:
            lines.append(f"\nPeak RSS growth 10x rows: {report['scale_growth']:.2f}x (target < 2x).")
    notes = report.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md_path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--essays", default=str(DEFAULT_ESSAYS))
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--rows", type=int, default=320, help="rows per scenario (first N essays)")
    parser.add_argument("--rows-512", type=int, default=160, help="rows for essays-512 (the slowest scenario)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="measured epochs per run (median reported)")
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--methods", nargs="*", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    parser.add_argument("--torch-python", default="/work/bench-venv/bin/python", help="a Python with torch installed, for (c)")
    parser.add_argument("--scale-rows", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--set", action="append", default=[], help="TrainingConfig override for (b) and (d), KEY=VALUE (e.g. mixed_precision=off)")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks-steady.md"))
    parser.add_argument("--json", default=None, help="default: the --out path with .json")
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rows_for = lambda scenario: args.rows_512 if scenario == "essays-512" else args.rows

    if args.worker:
        kind = args.worker[0]
        if kind == "tf":
            worker_tf(args.worker[1], args.worker[2], args)
        elif kind == "torch":
            worker_torch(args.worker[1], args)
        elif kind == "matmul":
            worker_matmul(args)
        elif kind == "scale":
            worker_scale(int(args.worker[1]), args)
        return 0

    common = ["--essays", args.essays, "--model", args.model, "--rows", str(args.rows), "--rows-512", str(args.rows_512),
              "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)] + [x for s in args.set for x in ("--set", s)]
    torch_ok = "c" in args.methods and Path(args.torch_python).exists() and subprocess.run(
        [args.torch_python, "-c", "import torch, transformers"], capture_output=True).returncode == 0
    report = {
        "command": "python scripts/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: v for k, v in vars(args).items() if k not in ("worker", "rows_for")},
        "machine": machine_info(), "load_before": [round(x, 2) for x in os.getloadavg()],
        "versions_tf": versions(sys.executable, ["tensorflow", "tf_keras", "transformers", "datasets"]),
        "versions_torch": versions(args.torch_python, ["torch", "transformers"]) if torch_ok else None,
        "results": {}, "ratios": {}, "notes": [],
    }
    print(f"machine: {report['machine']}; load {report['load_before']}", flush=True)
    report["matmul"] = run_worker(sys.executable, ["--worker", "matmul"] + common)
    print("matmul:", report["matmul"], flush=True)
    peaks = report["matmul"].get("matmul_gflops", {})
    for scenario in args.only:
        results = {}
        for method in args.methods:
            if method == "c":
                if not torch_ok:
                    report["notes"].append(f"(c) skipped: no torch at {args.torch_python}")
                    continue
                r = run_worker(args.torch_python, ["--worker", "torch", scenario] + common, {"PYTHONPATH": str(REPO)})
            else:
                r = run_worker(sys.executable, ["--worker", "tf", method, scenario] + common)
            if "error" not in r:
                peak = peaks.get("bfloat16" if r.get("precision") == "mixed_bfloat16" else "float32")
                r["flop_share"] = round(r["model_gflops_per_s"] / peak, 3) if peak else None
            r["load_after"] = [round(x, 2) for x in os.getloadavg()]
            results[method] = r
            print(f"{scenario} {method}: " + (r.get("error", "")[:300] or
                  f"{r['samples_per_s']} samples/s {r['samples_per_s_all']}, {r['real_tokens_per_s']} tok/s, padding {r['padding_fraction']}, "
                  f"rss {r['peak_rss_mb']} MB, first step {r['time_to_first_step_s']} s, load {r['load_after']}"), flush=True)
        report["results"][scenario] = results
        ok = {k: v for k, v in results.items() if "error" not in v}
        ratio = {}
        if "b" in ok and "a" in ok:
            ratio["b/a"] = round(ok["b"]["samples_per_s"] / ok["a"]["samples_per_s"], 2)
        if "b" in ok and "c" in ok:
            ratio["b/c"] = round(ok["b"]["samples_per_s"] / ok["c"]["samples_per_s"], 2)
        if "d" in ok and "b" in ok:  # keras_hub vs transformers backend (target: 0.9 or more)
            ratio["d/b"] = round(ok["d"]["samples_per_s"] / ok["b"]["samples_per_s"], 2)
        report["ratios"][scenario] = ratio
        write_report({**report, "load_after": [round(x, 2) for x in os.getloadavg()], "finished_utc": "(partial)"},
                     Path(args.out), Path(args.json or Path(args.out).with_suffix(".json")))
    report["scale"] = []
    for rows in args.scale_rows:
        r = run_worker(sys.executable, ["--worker", "scale", str(rows)] + common)
        print("scale:", r, flush=True)
        report["scale"].append(r)
    ok_scale = [s for s in report["scale"] if "error" not in s]
    if len(ok_scale) >= 2:
        report["scale_growth"] = round(ok_scale[-1]["peak_rss_mb"] / ok_scale[0]["peak_rss_mb"], 3)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    report["total_seconds"] = round(time.time() - START, 1)
    write_report(report, Path(args.out), Path(args.json or Path(args.out).with_suffix(".json")))
    print(f"wrote {args.out} in {report['total_seconds']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
