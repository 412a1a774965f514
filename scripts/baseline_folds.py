"""The TF-IDF baseline of ``tfslm train`` (``tfslm.fit_baseline``) alone, k-fold over a score file.

No transformer: the number a fine-tuned essay scorer has to beat. Scores are
scaled by ``--score-range``, predicted by TF-IDF + ridge, mapped back and
rounded to the ``--score-step`` grid (plain rounding), and scored by QWK/MAE
per fold (tfslm's own metrics).

    python scripts/baseline_folds.py ../shared/data/essay-br/development.csv --text essay --label score
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

import numpy as np


class _Table:
    """The part of :class:`tfslm.TextData` that ``fit_baseline`` reads: ``data["train"]["text"|"label"]``."""

    def __init__(self, text, label, labels=None):
        self.splits = {"train": {"text": list(text), "label": np.asarray(label)}}
        self.labels = labels

    def __getitem__(self, split):
        return self.splits[split]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--text", default="essay")
    parser.add_argument("--label", default="score")
    parser.add_argument("--score-range", type=float, nargs=2, default=(0.0, 1000.0))
    parser.add_argument("--score-step", type=float, default=40.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from sklearn.model_selection import KFold

    from tfslm import Task, fit_baseline
    from tfslm.data.cleaning import clean_text
    from tfslm.tasks.metrics import score_metrics

    with open(args.file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    texts = [clean_text(r[args.text]) for r in rows]
    task = Task(problem_type="regression", score_range=tuple(args.score_range), score_step=args.score_step)
    scores = np.asarray([float(r[args.label]) for r in rows])
    scaled = task.scale(scores)
    results = []
    for k, (train, test) in enumerate(KFold(args.folds, shuffle=True, random_state=args.seed).split(texts)):
        started = time.perf_counter()
        baseline = fit_baseline(_Table([texts[i] for i in train], scaled[train]), task, seed=args.seed)
        pred = task.unscale(baseline.outputs([texts[i] for i in test])[:, 0])  # clipped, rounded to the grid
        m = score_metrics(scores[test], pred, task.grid())
        m["seconds"] = time.perf_counter() - started
        results.append(m)
        print(f"fold {k + 1}: QWK {m['qwk']:.3f}  MAE {m['mae']:.1f}  RMSE {m['rmse']:.1f}  exact {m['exact']:.3f}  "
              f"alpha {baseline.params['alpha']:g}  {baseline.num_features} features  {m['seconds']:.1f}s (fit + predict)")
    mean = {k: float(np.mean([r[k] for r in results])) for k in ("qwk", "mae", "rmse", "exact", "adjacent", "seconds")}
    print(f"mean of {args.folds} folds: QWK {mean['qwk']:.3f}  MAE {mean['mae']:.1f}  RMSE {mean['rmse']:.1f}  "
          f"exact {mean['exact']:.3f}  adjacent {mean['adjacent']:.3f}  {mean['seconds']:.1f}s per fold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
