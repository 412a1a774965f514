"""Score decodings and a TF-IDF blend compared on the folds of a finished ``tfslm cv`` run.

Each fold's model is re-run on its validation and test essays (raw outputs),
the fold's TF-IDF baseline is refitted on the same training split, and a blend
``a * model + b * baseline + c`` is fitted by least squares on the validation
split. Every source is then decoded by every rule (``round``, ``stretch``,
``thresholds``), fitted on validation exactly as ``tfslm train`` fits them, and
scored on the held-out fold. Prints mean ± std over the folds and the pooled
out-of-fold QWK; nothing is retrained.

    python scripts/cv_decodings.py runs/essay-br-cv [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SOURCES = ("model", "baseline", "blend")


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fit_blend(model_out: np.ndarray, baseline_out: np.ndarray, targets: np.ndarray) -> list[tuple[float, float, float]]:
    """Per target ``(a, b, c)`` of the least-squares fit ``a * model + b * baseline + c ≈ target``."""
    params = []
    for j in range(targets.shape[1]):
        design = np.stack([model_out[:, j], baseline_out[:, j], np.ones(len(targets))], axis=1)
        solution, *_ = np.linalg.lstsq(design, targets[:, j], rcond=None)
        params.append(tuple(float(v) for v in solution))
    return params


def apply_blend(model_out: np.ndarray, baseline_out: np.ndarray, params) -> np.ndarray:
    return np.stack([a * model_out[:, j] + b * baseline_out[:, j] + c for j, (a, b, c) in enumerate(params)], axis=1).astype(np.float32)


def fold_outputs(fold_dir: Path) -> dict:
    """Raw outputs of the model, the baseline and the blend on the fold's splits, with the targets and the task."""
    from tfslm import load_config
    from tfslm.data.loading import load_data
    from tfslm.serving.predictor import Predictor
    from tfslm.tasks.base import Task
    from tfslm.training.baseline import fit_baseline

    cfg = load_config(fold_dir / "config.yaml")
    task = Task.from_config(cfg)
    data = load_data(cfg.data, seed=cfg.training.seed, task=task)
    predictor = Predictor.from_run(fold_dir)
    baseline = fit_baseline(data, task, seed=cfg.training.seed)
    out: dict = {"task": task, "labels": data.labels, "train": np.asarray(data["train"]["label"], dtype=np.float64)}
    for split in ("validation", "test"):
        texts = list(data[split]["text"])
        out[split] = {
            "model": predictor.logits(texts).astype(np.float32),
            "baseline": baseline.outputs(texts).astype(np.float32),
            "y": np.asarray(data[split]["label"], dtype=np.float64),
        }
    for split in ("validation", "test"):
        for key in ("model", "baseline"):
            out[split][key] = out[split][key].reshape(len(out[split][key]), -1)
        out[split]["y"] = out[split]["y"].reshape(len(out[split]["y"]), -1)
    blend = fit_blend(out["validation"]["model"], out["validation"]["baseline"], out["validation"]["y"])
    for split in ("validation", "test"):
        out[split]["blend"] = apply_blend(out[split]["model"], out[split]["baseline"], blend)
    out["blend_params"] = blend
    return out


def score_fold(out: dict, rules) -> dict:
    """``{(source, rule): (test metrics, decoded test headline scores)}`` of one fold."""
    results = {}
    val, test, task = out["validation"], out["test"], out["task"]
    for source in SOURCES:
        for rule in rules:
            decoder = dataclasses.replace(task, score_decoding=rule, decoding_params=())
            decoder = decoder.fit_decoding(val[source], val["y"], out["labels"], train_targets=out["train"])
            metrics = decoder.evaluate(test[source], test["y"], out["labels"])
            decoded = decoder.decode(test[source], out["labels"])
            results[(source, rule)] = (metrics, decoded.get("score", decoded.get("scores")))
    return results


def main(argv=None) -> int:
    from tfslm.tasks.metrics import score_metrics
    from tfslm.tasks.score_decoding import SCORE_DECODINGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cv_dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    folds = sorted(p for p in args.cv_dir.glob("fold-*") if (p / "metrics.json").is_file())
    if not folds:
        print(f"{args.cv_dir}: no finished fold-N run directories", file=sys.stderr)
        return 2
    per_fold, pooled_true, pooled_pred, blends = [], [], {}, []
    for fold in folds:
        out = fold_outputs(fold)
        results = score_fold(out, SCORE_DECODINGS)
        per_fold.append({key: value[0] for key, value in results.items()})
        task = out["task"]
        true = task.unscale(out["test"]["y"], round_to_grid=False)
        pooled_true.append(true.sum(axis=1) if true.shape[1] > 1 else true[:, 0])
        for key, (_, decoded) in results.items():
            decoded = np.asarray(decoded)
            pooled_pred.setdefault(key, []).append(decoded.sum(axis=1) if decoded.ndim > 1 else decoded)
        blends.append(out["blend_params"])
        print(f"{fold.name}: done", file=sys.stderr)
    task = out["task"]
    grid = task.grid(total=bool(getattr(task, "derive_total", False)) and task.num_targets > 1)
    print(f"\n{len(folds)} folds of {args.cv_dir} · CPU: {cpu_name()}\n")
    print("| source | decoding | QWK (mean ± std) | MAE (mean ± std) | pooled OOF QWK |")
    print("|---|---|---:|---:|---:|")
    table = []
    for key in per_fold[0]:
        qwk = np.array([f[key]["qwk"] for f in per_fold])
        mae = np.array([f[key]["mae"] for f in per_fold])
        pooled = score_metrics(np.concatenate(pooled_true), np.concatenate(pooled_pred[key]), grid)["qwk"]
        table.append({"source": key[0], "decoding": key[1], "qwk_mean": float(qwk.mean()), "qwk_std": float(qwk.std(ddof=1)),
                      "mae_mean": float(mae.mean()), "mae_std": float(mae.std(ddof=1)), "pooled_qwk": float(pooled)})
        print(f"| {key[0]} | {key[1]} | {qwk.mean():.3f} ± {qwk.std(ddof=1):.3f} | {mae.mean():.1f} ± {mae.std(ddof=1):.1f} | {pooled:.3f} |")
    print("\nblend weights (model, baseline, intercept) per fold:", [[tuple(round(v, 3) for v in p) for p in b] for b in blends])
    if args.json:
        args.json.write_text(json.dumps({"cv_dir": str(args.cv_dir), "cpu": cpu_name(), "table": table, "blends": blends}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
