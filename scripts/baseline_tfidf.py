"""TF-IDF + ridge regression baseline for a scoring config, on tfslm's own split.

The texts, targets and train/validation split come from ``tfslm.load_data``
with the config's task (same seed, same ``tfslm.data.splits.stratified_split``), and
the metrics from ``tfslm.tasks.metrics.score_metrics``, so the figures sit next to a
``tfslm train`` run of the same config. Needs scikit-learn (the test extra).

    python scripts/baseline_tfidf.py configs/essay-br.yaml
    python scripts/baseline_tfidf.py configs/essay-br.yaml --alpha 3 --output runs/baseline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a tfslm YAML config with a regression/ordinal score target")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--alpha", type=float, default=None, help="ridge alpha (default: chosen by 5-fold CV on train)")
    parser.add_argument("--output", help="write the metrics as JSON here too")
    args = parser.parse_args(argv)

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.metrics import cohen_kappa_score

    import tfslm
    from tfslm.tasks.metrics import grid_ids, score_metrics

    cfg = tfslm.load_config(args.config, args.overrides)
    task = tfslm.Task.from_config(cfg)
    started = time.time()
    data = tfslm.load_data(cfg.data, seed=cfg.training.seed, task=task)

    def xy(split):
        ds = data[split]
        if task.is_regression:
            y = task.unscale(np.asarray(ds["label"], dtype=np.float64).reshape(ds.num_rows, -1), round_to_grid=False)
            y = y.sum(axis=1) if y.shape[1] > 1 else y[:, 0]
        else:
            y = np.asarray(data.labels.values, dtype=np.float64)[np.asarray(ds["label"])]
        return list(ds["text"]), y

    train_x, train_y = xy("train")
    val_x, val_y = xy("validation")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000, strip_accents=None)
    x_train = vectorizer.fit_transform(train_x)
    x_val = vectorizer.transform(val_x)
    if args.alpha is None:
        model = RidgeCV(alphas=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30]).fit(x_train, train_y)
        alpha = float(model.alpha_)
    else:
        alpha = args.alpha
        model = Ridge(alpha=alpha).fit(x_train, train_y)
    if task.is_regression:
        low, high = task.total_range if task.num_targets > 1 else task.score_range
        grid = task.grid(total=task.num_targets > 1)
        pred = task.round(np.clip(model.predict(x_val), low, high), total=task.num_targets > 1)
    else:
        grid = np.asarray(data.labels.values, dtype=np.float64)
        pred = grid[grid_ids(model.predict(x_val), grid)]
    metrics = score_metrics(val_y, pred, grid)
    if grid is not None:
        metrics["qwk_sklearn"] = float(cohen_kappa_score(grid_ids(val_y, grid), grid_ids(pred, grid), weights="quadratic", labels=list(range(len(grid)))))
    constant = score_metrics(val_y, np.full_like(val_y, grid[grid_ids([np.median(train_y)], grid)][0] if grid is not None else np.median(train_y)), grid)
    out = {
        "config": args.config,
        "model": f"TF-IDF (1-2 grams, min_df 2, sublinear tf) + ridge (alpha {alpha:g})",
        "train_rows": len(train_y),
        "validation_rows": len(val_y),
        "validation": {k: round(v, 4) for k, v in metrics.items()},
        "median_baseline": {k: round(v, 4) for k, v in constant.items()},
        "seconds": round(time.time() - started, 1),
    }
    print(json.dumps(out, indent=2))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
