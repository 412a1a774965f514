#!/usr/bin/env python
"""Serving latency and throughput of the raw-text SavedModel: tokenizer_ops core vs tf_text.

Exports one classifier twice (``export.tokenizer_ops: core`` and ``tf_text``)
and times, in this process, each SavedModel's ``tokenize`` signature (the
in-graph tokenizer alone) and ``serving_default`` (tokenizer + model) on
batches of 1, 32 and 256 shared essays. The model has all-MiniLM-L6-v2's
architecture with fresh weights (latency does not depend on the weights'
values; the tokenizer is MiniLM's own). Prints a Markdown table and the CPU.

    python scripts/serving_benchmark.py                       # ~5 min on 2 cores
    python scripts/serving_benchmark.py --max-length 512 --repeats 5
    python scripts/serving_benchmark.py --layers 2             # tokenizer-dominated

Not a test: it needs ../shared (the essays and all-MiniLM-L6-v2).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()} ({os.cpu_count()} logical CPUs visible)"


def essays() -> list[str]:
    with open(SHARED / "data" / "essay-br" / "development.csv", encoding="utf-8", newline="") as handle:
        return ["\n".join(ast.literal_eval(row["essay"])) for row in csv.DictReader(handle)]


def time_signature(signature, texts: list[str], batch: int, repeats: int, **kwargs) -> tuple[float, float]:
    """(median seconds per call, texts per second) over ``repeats`` calls on consecutive essay batches."""
    import tensorflow as tf

    def batch_at(i: int) -> list[str]:
        start = (i * batch) % len(texts)
        return (texts[start:] + texts)[:batch]

    signature(text=tf.constant(batch_at(0)), **kwargs)  # warm-up
    seconds = []
    for i in range(1, repeats + 1):
        chunk = tf.constant(batch_at(i))
        started = time.perf_counter()
        out = signature(text=chunk, **kwargs)
        _ = [v.numpy() for v in out.values()]
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return median, batch / median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--layers", type=int, default=None, help="override MiniLM's 6 layers")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--repeats", type=int, default=3, help="calls per batch size (x10 for batch 1)")
    parser.add_argument("--ops", nargs="+", default=["core", "tf_text"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  the tf_text export's op
    from transformers import AutoTokenizer, BertConfig, TFBertForSequenceClassification

    from tfslm.serving.saved_model import export_saved_model

    minilm = SHARED / "models" / "all-MiniLM-L6-v2"
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    config = BertConfig.from_pretrained(str(minilm), num_labels=3)
    if args.layers:
        config.num_hidden_layers = args.layers
    tf.keras.utils.set_random_seed(0)
    model = TFBertForSequenceClassification(config)
    texts = essays()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ops in args.ops:
            started = time.perf_counter()
            export_saved_model(model, tokenizer, ["a", "b", "c"], args.max_length, Path(tmp) / ops, tokenizer_ops=ops)
            export_s = time.perf_counter() - started
            loaded = tf.saved_model.load(str(Path(tmp) / ops))
            for batch in args.batches:
                repeats = args.repeats * (10 if batch == 1 else 1)
                for name in ("tokenize", "serving_default"):
                    median, rate = time_signature(loaded.signatures[name], texts, batch, repeats)
                    rows.append({"ops": ops, "signature": name, "batch": batch, "ms": median * 1000, "texts_per_s": rate,
                                 "export_s": export_s})
                    print(f"{ops:8s} {name:16s} batch {batch:4d}: {median * 1000:9.1f} ms  {rate:8.1f} texts/s", flush=True)
    print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "args": vars(args) | {"json": str(args.json)}, "rows": rows},
                                        indent=2) + "\n", encoding="utf-8")
    return 0


def print_table(rows: list[dict], args) -> None:
    by = {(r["ops"], r["signature"], r["batch"]): r for r in rows}
    print(f"\nCPU: {cpu_name()}; TF threads default; max_length {args.max_length}; "
          f"model: MiniLM architecture ({args.layers or 6} layers, fresh weights); median of {args.repeats} calls "
          f"({args.repeats * 10} for batch 1)\n")
    print("| signature | batch | core ms | tf_text ms | core / tf_text | core texts/s | tf_text texts/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in ("tokenize", "serving_default"):
        for batch in args.batches:
            core, text = by.get(("core", name, batch)), by.get(("tf_text", name, batch))
            if not core or not text:
                continue
            print(f"| {name} | {batch} | {core['ms']:.1f} | {text['ms']:.1f} | {core['ms'] / text['ms']:.2f}x | "
                  f"{core['texts_per_s']:.1f} | {text['texts_per_s']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
