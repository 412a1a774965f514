#!/usr/bin/env python
"""Quality and per-epoch cost of the speed settings: whole `tfslm train` runs, one per variant.

Each variant is `tfslm train configs/essay-br.yaml` (617/74 real essays, MiniLM, 256 tokens,
batch 8) with a few `--set` overrides, in its own process, one after another. From each run's
metrics.json it prints the validation loss and QWK, the relative validation-loss gap to the first
variant (the float32 reference), the median epoch time of epochs 2..N, and what each epoch-end part
(whole-validation metrics, early stopping's best-weights copy, the backup, history.csv, TensorBoard)
cost as a share of the epoch. A variant whose loss is within 2% of float32 passes the quality check
of docs/speed-notes.md.

    python scripts/precision_check.py                                # the six variants, ~30 min on 2 cores
    python scripts/precision_check.py --epochs 2 --variants f32 bf16-fast
    python scripts/precision_check.py --variant "mine=training.mixed_precision=bf16,model.attention_dropout=0"

Not a test: it needs ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KERAS_OPS = ["training.fast_dropout=false", "training.fused_gelu=false", "training.fused_attention=false"]  # Keras' own ops
VARIANTS = {
    "f32": ["training.mixed_precision=off", *KERAS_OPS],
    "bf16": ["training.mixed_precision=bf16", *KERAS_OPS],
    "bf16-fast": ["training.mixed_precision=bf16", "training.fast_dropout=true", "training.fused_gelu=false",
                  "training.fused_attention=false"],
    "bf16-fast-noattn": ["training.mixed_precision=bf16", "training.fast_dropout=true", "training.fused_gelu=false",
                         "training.fused_attention=false", "model.attention_dropout=0"],
    "bf16-gelu": ["training.mixed_precision=bf16", "training.fused_attention=false"],  # the default before fused_attention
    "bf16-default": ["training.mixed_precision=bf16"],  # fast ops on, model.attention_dropout auto (off for a checkpoint)
    "bf16-default-attn": ["training.mixed_precision=bf16", "model.attention_dropout=null"],  # the checkpoint's own rate
    "f32-default": ["training.mixed_precision=off"],
    "f32-default-attn": ["training.mixed_precision=off", "model.attention_dropout=null"],
}
PARTS = ("validation_metrics", "early_stopping", "backup", "history_csv", "tensorboard")


def run_variant(name: str, overrides: list[str], args, out_root: Path) -> dict:
    command = [sys.executable, "-m", "tfslm.cli", "train", args.config, "--set", f"output_dir={out_root}",
               "--set", f"run_name={name}", "--set", f"training.epochs={args.epochs}", "--overwrite"]
    for item in overrides + args.set:
        command += ["--set", item]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    load_before = os.getloadavg()
    started = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    wall = time.time() - started
    if proc.returncode != 0:
        return {"variant": name, "error": (proc.stderr or proc.stdout)[-600:]}
    metrics = json.loads((out_root / name / "metrics.json").read_text())
    epochs = metrics.get("epoch_seconds", [])
    overhead = metrics.get("epoch_overhead", [])
    steady = epochs[1:] or epochs
    median = statistics.median(steady) if steady else None
    shares = {part: statistics.median([o.get(part, 0.0) / s for o, s in zip(overhead[1:] or overhead, steady)]) for part in PARTS}
    val = metrics["validation"]
    return {"variant": name, "overrides": overrides + args.set, "val_loss": val.get("loss"), "val_qwk": val.get("qwk"),
            "epoch_seconds": epochs, "median_epoch_s": median, "overhead_share": shares, "whole_run_s": round(wall, 1),
            "precision": metrics.get("speed", {}).get("policy"), "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def report(rows: list[dict]) -> str:
    ok = [r for r in rows if "error" not in r]
    ref = ok[0] if ok else None
    header = ("| variant | precision | val loss | vs first | val QWK | epoch s (2..N median) | speed vs first | "
              "whole run s | epoch-end parts, share of the epoch | load before → after |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | error: {r['error'][-120:]!r} | | | | | | | | |")
            continue
        gap = (r["val_loss"] / ref["val_loss"] - 1) * 100 if ref and ref["val_loss"] else float("nan")
        speed = ref["median_epoch_s"] / r["median_epoch_s"] if ref and r["median_epoch_s"] else float("nan")
        parts = ", ".join(f"{k.replace('_', ' ')} {100 * v:.2f}%" for k, v in r["overhead_share"].items())
        total = 100 * sum(r["overhead_share"].values())
        lines.append(f"| {r['variant']} | {r['precision']} | {r['val_loss']:.4f} | {gap:+.1f}% | {r['val_qwk'] if r['val_qwk'] is None else round(r['val_qwk'], 3)} | "
                     f"{r['median_epoch_s']:.1f} | {speed:.2f}x | {r['whole_run_s']:.0f} | {parts} (total {total:.1f}%) | "
                     f"{r['load_before'][0]} → {r['load_after'][0]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/essay-br.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--variant", action="append", default=[], help="NAME=KEY=VALUE,KEY=VALUE: an extra variant")
    parser.add_argument("--set", action="append", default=[], help="override for every variant, KEY=VALUE")
    parser.add_argument("--json", default=None, help="write the rows there too")
    args = parser.parse_args(argv)
    chosen = [(name, VARIANTS[name]) for name in args.variants]
    for spec in args.variant:
        name, _, items = spec.partition("=")
        chosen.append((name, [item for item in items.split(",") if item]))
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {args.config}, {args.epochs} epochs", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tfslm-precision-") as out_root:
        for name, overrides in chosen:
            row = run_variant(name, overrides, args, Path(out_root))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n" + report(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "config": args.config, "epochs": args.epochs, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
