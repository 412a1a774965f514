#!/usr/bin/env python
"""Whole-run benchmark: what a user waits for, one ``fit(epochs=N)`` or one ``tfslm train``, each in a fresh process.

scripts/benchmark.py times steady-state epochs (``fit(epochs=1)`` repeated after a
warm-up, in a process that imported tfslm). This script times whole runs instead:

  (a) the course notebook's code as written (scripts/seed_notebook.py: load_dataset,
      train_test_split, map, prepare_tf_dataset, create_optimizer, one
      fit(epochs=N, validation_data=...), evaluate); it never imports tfslm;
  (b) ``python -m tfslm.cli train CONFIG`` with a generated YAML of the same recipe
      (MiniLM, max_length L, 11 course bands, batch 16, lr 2e-5, no warmup, linear
      decay, N epochs, no early stopping) and every other tfslm default (precision
      "auto", backups, TensorBoard, whole-validation metrics, TF-IDF baseline, export,
      report, card).

Data: the first --rows essays of essay-br development.csv (--rows-512 for essays-512),
text and scenarios from scripts/benchmark.py; label floor(score/100) -> 0..10; the first
80% train, the last 20% validation (train_test_split(test_size=0.2, shuffle=False)).
A cell is (scenario, method, repeat), each one fresh process with a cold datasets cache.
Before each cell the script waits up to --settle s for the 1-min load average to fall
below 1.5; cells that started above it are run once more at the end (both kept in the
JSON, the re-run used in the table). "Foreign CPU %" = CPU time the rest of the machine
used during the cell (/proc/stat busy time minus this script's and the cell's own CPU
time) / (cell wall time x cores).

    python scripts/benchmark_runs.py                          # 3 scenarios x 2 methods x 2 repeats, 3 epochs: 12 cells,
                                                              # ~35 min of cells on 2 idle cores + up to 1 min settle
                                                              # each; re-runs of busy cells can double it
    python scripts/benchmark_runs.py --only essays-256 --methods a b --repeats 1 --epochs 2   # ~6 min
    python scripts/benchmark_runs.py --set training.mixed_precision=off                      # (b) in float32
    python scripts/benchmark_runs.py --rows 40 --rows-512 40 --epochs 2 --max-length 64 --batch-size 8 \
        --repeats 1 --settle 0 --only short-256 --out /tmp/bench-tiny.md                     # smoke test, 2-5 min

Writes --out (default docs/benchmarks.md) and the raw figures as JSON beside it.
Not a test: it needs ../shared (the essays and all-MiniLM-L6-v2).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import DEFAULT_ESSAYS, DEFAULT_MODEL, SCENARIOS, fmt, load_texts, machine_info, versions  # noqa: I001

REPO = Path(__file__).resolve().parents[1]
SEED_SCRIPT = Path(__file__).resolve().parent / "seed_notebook.py"
METHOD_NAMES = {"a": "course notebook (one fit)", "b": "tfslm train (CLI)"}
LOAD_LIMIT = 1.5
NUM_BANDS = 11
RUN_NAME = "bench"


# ---------------------------------------------------------------- data
def write_cell_data(cell_dir: Path, scenario: str, rows: int, essays: str) -> dict:
    """redacoes.csv (essay, score band) for (a); train.csv / validation.csv, the same 80/20 split, for (b)."""
    kind, _ = SCENARIOS[scenario]
    texts, label_ids, names = load_texts(essays, kind, rows)
    bands = [min(int(float(names[i])) // 100, NUM_BANDS - 1) for i in label_ids]  # 0..1000 -> 0..10 (1000 -> 10)
    records = list(zip(texts, bands))
    n_test = math.ceil(0.2 * len(records))  # datasets' train_test_split: test = ceil(test_size * n)
    parts = {"redacoes.csv": records, "train.csv": records[:-n_test], "validation.csv": records[-n_test:]}
    for name, part in parts.items():
        with open(cell_dir / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["essay", "score"])
            writer.writerows(part)
    return {"rows": len(records), "train_rows": len(records) - n_test, "validation_rows": n_test,
            "bands_present": sorted(set(bands))}


def tfslm_config(cell_dir: Path, model: str, max_length: int, epochs: int, batch_size: int) -> dict:
    """The notebook's recipe as a tfslm config; every key not named here is tfslm's default."""
    return {
        "output_dir": str(cell_dir / "runs"),
        "run_name": RUN_NAME,
        "data": {
            "train_file": str(cell_dir / "train.csv"), "validation_file": str(cell_dir / "validation.csv"),
            "text_column": "essay", "label_column": "score",
            "labels": [str(i) for i in range(NUM_BANDS)],  # the notebook's ClassLabel: 11 classes, present or not
        },
        "model": {"checkpoint": model, "max_length": max_length, "problem_type": "single_label_classification"},
        "training": {
            "epochs": epochs, "batch_size": batch_size, "learning_rate": 2e-5, "warmup_ratio": 0.0, "schedule": "linear",
            "weight_decay": 0.0,  # create_optimizer's default weight_decay_rate (tfslm's default is 0.01)
            # No early stopping: patience null never stops; min_epochs = epochs watches only the last epoch,
            # so the weights kept are the last epoch's, as the notebook's.
            "early_stopping_patience": None, "min_epochs": epochs,
        },
    }


# ---------------------------------------------------------------- measuring
def cpu_busy_seconds() -> float:
    """Machine-wide busy CPU seconds since boot (/proc/stat: user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This script's CPU seconds plus its reaped children's (the cells)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def settle(limit_s: float) -> list[float]:
    """Wait up to ``limit_s`` for the 1-min load average to drop below LOAD_LIMIT; the load average then."""
    deadline = time.time() + limit_s
    while os.getloadavg()[0] >= LOAD_LIMIT and time.time() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.time())))
    return [round(x, 2) for x in os.getloadavg()]


def run_streamed(cmd: list[str], env: dict, log_path: Path, timeout: float) -> dict:
    """Run ``cmd``, stdout+stderr timestamped line by line into ``log_path``; wall time, exit code, the child's rusage."""
    started = time.time()
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO))
    with open(log_path, "w", encoding="utf-8") as log:
        for line in proc.stdout:  # the child runs unbuffered (PYTHONUNBUFFERED), so arrival time = print time
            now = time.time()
            lines.append((now, line.rstrip("\n")))
            log.write(f"{now - started:9.2f} {line}")
            if now - started > timeout:
                proc.kill()
                break
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS), not every child's so far
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"started": started, "wall": time.time() - started, "rc": proc.returncode, "lines": lines,
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def convert_checkpoint(source: str, target: str) -> None:
    """(worker) ``source``'s PyTorch safetensors as ``target``/tf_model.h5 (+ config and tokenizer files), without torch.

    The notebook loads with ``from_pt=True``, which needs torch; this venv has none (tfslm reads
    the safetensors with NumPy instead). Converted once, before any cell, so (a) loads TF weights
    (seed_notebook.py drops from_pt when tf_model.h5 is there); same weights, the same fresh 11-class head.
    """
    from safetensors.numpy import load_file
    from transformers import AutoConfig, TFAutoModel
    from transformers import modeling_tf_pytorch_utils as pt_to_tf

    src, dst = Path(source), Path(target)
    model = TFAutoModel.from_config(AutoConfig.from_pretrained(src))
    model(model.dummy_inputs, training=False)
    pt_to_tf.load_pytorch_state_dict_in_tf2_model(model, load_file(str(src / "model.safetensors")), allow_missing_keys=True)
    model.save_pretrained(dst)
    for f in src.iterdir():
        if f.suffix in (".json", ".txt", ".model") and not (dst / f.name).exists():
            shutil.copy2(f, dst / f.name)


def tf_checkpoint(model: str, work: Path) -> str:
    """``model`` itself if it has TF weights, else a converted copy under ``work`` (see :func:`convert_checkpoint`)."""
    if (Path(model) / "tf_model.h5").exists():
        return model
    target = work / "tf-checkpoint"
    env = {**child_env(work), "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, __file__, "--convert-checkpoint", model, str(target)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (target / "tf_model.h5").exists():
        raise SystemExit(f"converting {model} to TF weights failed:\n{proc.stderr[-2000:]}")
    return str(target)


def child_env(cell_dir: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1",
        "HF_DATASETS_CACHE": str(cell_dir / "hf-datasets"),  # cold cache: a user's first run
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    })
    return env


# ---------------------------------------------------------------- the two methods
def run_seed(cell_dir: Path, scenario: str, args) -> dict:
    cmd = [sys.executable, str(SEED_SCRIPT), "--csv", str(cell_dir / "redacoes.csv"), "--checkpoint", args.tf_model,
           "--max-length", str(max_length_of(scenario, args)), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    env = child_env(cell_dir)
    env.pop("PYTHONPATH", None)  # nothing of tfslm on the path: the notebook never sees it
    run = run_streamed(cmd, env, cell_dir / "log.txt", args.timeout)
    results = [line for _, line in run["lines"] if line.startswith("RESULT ")]
    out = _common(run, cmd)
    if run["rc"] != 0 or not results:
        return {**out, "error": _tail(run)}
    payload = json.loads(results[-1][len("RESULT "):])
    out.update(payload, epoch_source="seed_notebook.py callback (epoch begin -> end, Keras validation included)",
               first_epoch_end_s=round(payload["epoch_end_unix"][0] - run["started"], 1), precision="float32")
    out["self_peak_rss_mb"] = out.pop("peak_rss_mb")
    out["peak_rss_mb"] = run["peak_rss_mb"]
    return out


def run_tfslm(cell_dir: Path, scenario: str, args) -> dict:
    import yaml

    config = tfslm_config(cell_dir, args.model, max_length_of(scenario, args), args.epochs, args.batch_size)
    config_path = cell_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "tfslm.cli", "train", str(config_path)] + [x for s in args.set for x in ("--set", s)]
    env = child_env(cell_dir)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    run = run_streamed(cmd, env, cell_dir / "log.txt", args.timeout)
    out = _common(run, cmd)
    metrics_path = cell_dir / "runs" / RUN_NAME / "metrics.json"
    if run["rc"] != 0 or not metrics_path.exists():
        return {**out, "error": _tail(run)}
    metrics = json.loads(metrics_path.read_text())
    out.update(_tfslm_epochs(metrics, run))
    speed = metrics.get("speed", {})
    out.update(precision=speed.get("policy"), speed=speed, train_rows=metrics.get("data", {}).get("train", {}).get("rows"),
               train_seconds=metrics.get("train_seconds"), epochs_trained=metrics.get("epochs_trained"),
               best_epoch=metrics.get("best_epoch"), validation=metrics.get("validation"))
    return out


EPOCH_LOG = re.compile(r"^tfslm: epoch (\d+): ([\d.]+) s")
KERAS_HEADER = re.compile(r"^Epoch (\d+)/(\d+)")
KERAS_END = re.compile(r"^\d+/\d+ \[=+\]")


def _tfslm_epochs(metrics: dict, run: dict) -> dict:
    """Per-epoch seconds and time to the first epoch's end: metrics.json, else the log (each fallback named)."""
    lines, started = run["lines"], run["started"]
    logged = [(t, float(m.group(2))) for t, line in lines if (m := EPOCH_LOG.match(line))]
    # Keras' "Epoch k/N" headers are printed at each epoch's begin, before any callback: epoch k = header k+1 -
    # header k, its epoch-end callbacks included; the last epoch ends at its progress bar's final line (without them).
    heads = [t for t, line in lines if KERAS_HEADER.match(line)]
    ends = [t for t, line in lines if KERAS_END.match(line)]
    if logged:
        first_end = logged[0][0]
    else:
        first_end = heads[1] if len(heads) > 1 else (ends[-1] if ends else None)
    if metrics.get("epoch_seconds"):
        out = {"epoch_seconds": metrics["epoch_seconds"], "epoch_overhead": metrics.get("epoch_overhead"),
               "epoch_source": "metrics.json epoch_seconds"}
    elif logged:
        out = {"epoch_seconds": [s for _, s in logged], "epoch_source": "fallback: 'tfslm: epoch N: X s' log lines"}
    else:
        seconds = [b - a for a, b in pairwise(heads)]
        if heads and ends and ends[-1] > heads[-1]:
            seconds.append(ends[-1] - heads[-1])
        out = {"epoch_seconds": [round(s, 2) for s in seconds],
               "epoch_source": "fallback: arrival times of Keras 'Epoch k/N' lines (last epoch without its callbacks)"}
    out["first_epoch_end_s"] = None if first_end is None else round(first_end - started, 1)
    return out


def _common(run: dict, cmd: list[str]) -> dict:
    return {"command": " ".join(cmd), "rc": run["rc"], "whole_run_s": round(run["wall"], 1),
            "peak_rss_mb": run["peak_rss_mb"], "cell_cpu_s": run["cpu_s"]}


def _tail(run: dict) -> str:
    return "\n".join(line for _, line in run["lines"][-25:])


def max_length_of(scenario: str, args) -> int:
    return args.max_length or SCENARIOS[scenario][1]


def run_cell(scenario: str, method: str, repeat: int, args, work: Path) -> dict:
    cell_dir = Path(tempfile.mkdtemp(prefix=f"{scenario}-{method}-{repeat}-", dir=work))
    data = write_cell_data(cell_dir, scenario, args.rows_512 if scenario == "essays-512" else args.rows, args.essays)
    load_before = settle(args.settle)
    busy, own = cpu_busy_seconds(), own_cpu_seconds()
    t = time.time()
    result = (run_seed if method == "a" else run_tfslm)(cell_dir, scenario, args)
    wall = time.time() - t
    foreign = max(0.0, (cpu_busy_seconds() - busy) - (own_cpu_seconds() - own))
    result.update(scenario=scenario, method=method, repeat=repeat, max_length=max_length_of(scenario, args), data=data,
                  cell_dir=str(cell_dir), load_before=load_before, load_after=[round(x, 2) for x in os.getloadavg()],
                  foreign_cpu_s=round(foreign, 1), foreign_cpu_pct=round(100 * foreign / (wall * (os.cpu_count() or 1)), 1))
    result.setdefault("train_rows", data["train_rows"])
    if not args.keep:  # a run directory (SavedModel, backup, TensorBoard) per cell adds up; logs and metrics stay
        metrics = cell_dir / "runs" / RUN_NAME / "metrics.json"
        if metrics.exists():
            shutil.copy2(metrics, cell_dir / "metrics.json")
        for name in ("runs", "hf-datasets"):
            shutil.rmtree(cell_dir / name, ignore_errors=True)
    if result["train_rows"] != data["train_rows"]:  # the notebook's own split disagrees with the files (b) reads
        result["split_mismatch"] = f"{result['train_rows']} train rows, files have {data['train_rows']}"
    return result


# ---------------------------------------------------------------- summary and report
def summarize(cells: list[dict], epochs: int) -> dict:
    """Per (scenario, method): medians over the cells used (a re-run replaces the cell it re-ran)."""
    used = [c for c in cells if not c.get("replaced_by_rerun")]
    groups: dict = {}
    for c in used:
        groups.setdefault(c["scenario"], {}).setdefault(c["method"], []).append(c)
    table: dict = {}
    for scenario, methods in groups.items():
        for method, group in methods.items():
            ok = [c for c in group if "error" not in c]
            if not ok:
                table.setdefault(scenario, {})[method] = {"error": group[-1]["error"][-300:]}
                continue
            steady = [s for c in ok for s in (c["epoch_seconds"][1:] if len(c["epoch_seconds"]) > 1 else c["epoch_seconds"])]
            median_epoch = statistics.median(steady)

            table.setdefault(scenario, {})[method] = {
                "cells": len(ok), "precision": ok[0].get("precision"), "train_rows": ok[0]["train_rows"],
                "median_epoch_s": round(median_epoch, 2), "epoch_s_min": round(min(steady), 2), "epoch_s_max": round(max(steady), 2),
                "samples_per_s": round(ok[0]["train_rows"] / median_epoch, 2), "first_epoch_s": _median(ok, "first_epoch_end_s"),
                "whole_run_s": _median(ok, "whole_run_s"), "peak_rss_mb": _median(ok, "peak_rss_mb"),
                "load_before": [c["load_before"][0] for c in ok], "load_after": [c["load_after"][0] for c in ok],
                "foreign_cpu_pct": _median(ok, "foreign_cpu_pct"), "epoch_source": ok[0].get("epoch_source"),
            }
    ratios = {}
    for scenario, methods in table.items():
        a, b = methods.get("a", {}), methods.get("b", {})
        if "samples_per_s" in a and "samples_per_s" in b:
            ratios[scenario] = {"samples_per_s b/a": round(b["samples_per_s"] / a["samples_per_s"], 2),
                                "whole_run_speed b/a": round(a["whole_run_s"] / b["whole_run_s"], 2)}
    return {"table": table, "ratios": ratios}


def _median(cells: list[dict], key: str):
    values = [c[key] for c in cells if c.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def write_report(report: dict, md_path: Path, json_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    m, a = report["machine"], report["args"]
    summary = report["summary"]
    lines = [
        "# Whole runs: the course notebook vs tfslm train",
        "",
        f"Written by `{report['command']}` on {report['finished_utc']} (UTC). Raw figures: `{json_path.name}`.",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; bf16-related flags: {', '.join(m['bf16_flags']) or 'none'}",
        f"- Versions: {report['versions']}",
        ("- Recipe: all-MiniLM-L6-v2, 11 bands (floor(score/100)), first 80% train / last 20% validation, "
         f"batch {a['batch_size']}, lr 2e-5 linear to 0, no warmup, {a['epochs']} epochs, no early stopping; "
         f"{a['repeats']} repeat(s) per cell, each a fresh process."),
        ("- (a) scripts/seed_notebook.py: the notebook's code (one `fit(epochs=N, validation_data=...)`, then `evaluate`); "
         "its epoch = training steps + Keras' validation pass."),
        ("- (b) `python -m tfslm.cli train` on a generated YAML (every other key tfslm's default"
         + (f"; --set {' '.join(a['set'])}" if a["set"] else "") + "); its epoch = training steps + "
         "the epoch-end callbacks: whole-validation metrics (one forward pass over the validation split, as (a)'s Keras pass, "
         "plus the metrics), early stopping's weight copy, backup, CSV log, TensorBoard."),
        ("- Epoch s: median over epochs 2..N of every cell (min–max); samples/s = training rows / that median. "
         "Whole run and first epoch end: from process spawn (imports, data, model load, tokenization, tracing included); "
         "(b)'s whole run also holds its final evaluation, baseline, export, report and card; (a)'s its `evaluate`."),
        (f"- Load: 1-min load average before/after each cell (a cell is re-run once if it started at ≥ {LOAD_LIMIT}); "
         "foreign CPU % = other processes' CPU during the cell / (wall × cores)."),
        "",
        "| scenario | method | precision | epoch s (2..N) | samples/s | whole run s | first epoch end s | peak RSS MB | load before / after | foreign CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, methods in summary["table"].items():
        for method in ("a", "b"):
            r = methods.get(method)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {scenario} | {method}: {METHOD_NAMES[method]} | – | error: {r['error'][-120:]!r} | | | | | | |")
                continue
            loads = f"{'/'.join(fmt(x, 2) for x in r['load_before'])} → {'/'.join(fmt(x, 2) for x in r['load_after'])}"
            lines.append(
                f"| {scenario} ({r['train_rows']} train rows) | {method}: {METHOD_NAMES[method]} | {r['precision']} | "
                f"{r['median_epoch_s']:.1f} ({r['epoch_s_min']:.1f}–{r['epoch_s_max']:.1f}) | {r['samples_per_s']:.2f} | "
                f"{fmt(r['whole_run_s'])} | {fmt(r['first_epoch_s'])} | {fmt(r['peak_rss_mb'], 0)} | {loads} | {fmt(r['foreign_cpu_pct'])} |"
            )
    lines += ["", "| scenario | samples/s b/a (epochs 2..N) | whole-run speed b/a (= a's s / b's s; > 1: tfslm finishes sooner) |", "|---|---|---|"]
    for scenario, ratio in summary["ratios"].items():
        lines.append(f"| {scenario} | {fmt(ratio['samples_per_s b/a'], 2)} | {fmt(ratio['whole_run_speed b/a'], 2)} |")
    sources = sorted({r.get("epoch_source") for ms in summary["table"].values() for r in ms.values() if r.get("epoch_source")})
    notes = [f"epoch timing source: {s}" for s in sources] + list(report.get("notes", []))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md_path.write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--essays", default=str(DEFAULT_ESSAYS))
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--rows", type=int, default=240, help="essays per scenario (the first N)")
    parser.add_argument("--rows-512", type=int, default=120, help="essays for essays-512")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="both methods (the notebook: 16)")
    parser.add_argument("--max-length", type=int, default=None, help="override every scenario's max_length (smoke tests)")
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait for the 1-min load to drop below 1.5")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per cell")
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--methods", nargs="*", default=["a", "b"], choices=["a", "b"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="tfslm train --set for (b)")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--keep", action="store_true", help="keep each cell's run directory and datasets cache")
    parser.add_argument("--convert-checkpoint", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.convert_checkpoint:
        convert_checkpoint(*args.convert_checkpoint)
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    args.tf_model = tf_checkpoint(args.model, work) if "a" in args.methods else None
    md_path = Path(args.out)
    json_path = md_path.with_suffix(".json")
    report = {
        "command": "python scripts/benchmark_runs.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": vars(args), "machine": machine_info(), "work_dir": str(work),
        "versions": versions(sys.executable, ["tensorflow", "tf_keras", "transformers", "datasets", "tfslm"]),
        "cells": [], "notes": [],
    }
    if args.tf_model and args.tf_model != args.model:
        report["notes"].append("(a) loads a TF copy of the checkpoint (tf_model.h5, converted before the cells, not timed): "
                               "from_pt=True needs torch, which this venv lacks; a notebook user with torch pays the conversion")
    plan = [(s, m, r) for s in args.only for r in range(args.repeats) for m in args.methods]
    print(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; {len(plan)} cells in {work}", flush=True)

    def do(scenario, method, repeat, rerun=False):
        cell = run_cell(scenario, method, repeat, args, work)
        cell["rerun"] = rerun
        report["cells"].append(cell)
        print(f"{scenario} {method} #{repeat}{' (re-run)' if rerun else ''}: "
              + (f"error {cell['error'][-300:]}" if "error" in cell else
                 f"epochs {cell['epoch_seconds']} s, whole run {cell['whole_run_s']} s, first epoch end {cell['first_epoch_end_s']} s, "
                 f"rss {cell['peak_rss_mb']} MB, load {cell['load_before'][0]} -> {cell['load_after'][0]}, foreign CPU {cell['foreign_cpu_pct']}%"),
              flush=True)
        report["summary"] = summarize(report["cells"], args.epochs)
        write_report({**report, "finished_utc": "(partial)"}, md_path, json_path)
        return cell

    for scenario, method, repeat in plan:
        do(scenario, method, repeat)
    for cell in [c for c in report["cells"] if c["load_before"][0] >= LOAD_LIMIT]:
        print(f"re-running {cell['scenario']} {cell['method']} #{cell['repeat']}: load before was {cell['load_before'][0]}", flush=True)
        cell["replaced_by_rerun"] = True
        do(cell["scenario"], cell["method"], cell["repeat"], rerun=True)
    busy_reruns = sum(1 for c in report["cells"] if c["rerun"] and c["load_before"][0] >= LOAD_LIMIT)
    if busy_reruns:
        report["notes"].append(f"{busy_reruns} re-run(s) also started at a 1-min load ≥ {LOAD_LIMIT}: the machine was shared")
    if not args.keep and args.tf_model and args.tf_model != args.model:
        shutil.rmtree(args.tf_model, ignore_errors=True)
    report["summary"] = summarize(report["cells"], args.epochs)
    report["finished_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    write_report(report, md_path, json_path)
    print(f"wrote {md_path} and {json_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
