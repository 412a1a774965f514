"""Model card of a run directory: front matter, body sections, secrets left out (no TF needed)."""

from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from tfslm.publish.card import build_model_card, hub_dataset_id, hub_model_id, scrub_secrets, write_model_card
from tfslm.errors import RunDirError

SECRETS = ("hf_SECRET_abc", "sk-NESTED-KEY-999", "pw-hunter2-xyz")


def _config(checkpoint="prajjwal1/bert-tiny", **data):
    return {
        "data": {
            "train_file": "data/train.csv",
            "validation_file": "data/validation.csv",
            "test_file": "data/test.csv",
            "text_column": "text",
            "label_column": "label",
            "labels": ["negative", "neutral", "positive"],
            "on_bad_rows": "skip",
            **data,
        },
        "model": {"checkpoint": checkpoint, "architecture": None, "max_length": 96},
        "training": {
            "epochs": 3,
            "batch_size": 16,
            "learning_rate": 5e-5,
            "warmup_ratio": 0.1,
            "weight_decay": 0.01,
            "schedule": "linear",
            "seed": 7,
            "extras": {"api_key": SECRETS[1], "Nested": {"PASSWORD": SECRETS[2], "kept": 1}},
        },
        "output_dir": "runs",
        "run_name": "sentiment-demo",
        "hub": {"repo_id": "x/y", "token": SECRETS[0], "private": True},
    }


def _split_metrics(accuracy, macro_f1, n, **extra):
    return {
        "loss": 0.5,
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "num_examples": n,
        "confusion_matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        **extra,
    }


def _make_run(tmp_path, *, config=None, names=("negative", "neutral", "positive"), kind="categorical",
              ordered=False, qwk=None, saved_model=True, export_info=None, with_metrics=True):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config or _config(), sort_keys=False), encoding="utf-8")
    names = list(names)
    (run / "labels.json").write_text(
        json.dumps(
            {
                "names": names,
                "kind": kind,
                "ordered": ordered,
                "num_labels": len(names),
                "id2label": {str(i): n for i, n in enumerate(names)},
            }
        ),
        encoding="utf-8",
    )
    extra = {} if qwk is None else {"qwk": qwk, "mae": 0.4321}
    counts = {"train": [838, 620, 942], "validation": [102, 72, 126], "test": [105, 76, 119]}
    metrics = {
        "validation": _split_metrics(0.8765, 0.8555, 300, **extra),
        "test": _split_metrics(0.8123, 0.8011, 300, **({} if qwk is None else {"qwk": qwk - 0.05, "mae": 0.5})),
        "monitor": "val_macro_f1",
        "best_epoch": 2,
        "epochs_trained": 3,
        "data": {
            **{
                split: {"rows": sum(c), "per_label": dict(zip(names, c))}
                for split, c in counts.items()
            },
            "skipped_rows": {"train": 17},
        },
        "labels": names,
        "model": {"source": "prajjwal1/bert-tiny", "type": "TFBertForSequenceClassification", "parameters": 4386178},
        "training": {"batch_size": 16},
        "train_seconds": 12.5,
    }
    if with_metrics:
        (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if saved_model:
        extra_dir = run / "saved_model" / "assets.extra"
        extra_dir.mkdir(parents=True)
        info = export_info or {
            "signatures": ["serving_default", "serve_tokens", "tokenize"],
            "in_graph_tokenizer": "tensorflow_text.FastWordpieceTokenizer",
            "consumer_imports": ["tensorflow_text"],
            "labels": names,
            "max_length": 96,
            "note": None,
        }
        (extra_dir / "tfslm_export.json").write_text(json.dumps(info), encoding="utf-8")
    return run


def _results(card):
    return {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}


def test_card_front_matter_parses_and_carries_results(tmp_path):
    run = _make_run(tmp_path)
    path = write_model_card(run)
    assert path == run / "README.md" and path.is_file()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]

    card = ModelCard.load(path)
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert set(["tfslm", "tensorflow", "keras", "text-classification"]) <= set(data.tags)
    assert data.base_model == "prajjwal1/bert-tiny"
    assert data.model_name == "sentiment-demo"
    assert getattr(data, "datasets", None) is None  # local csv files are not Hub datasets
    results = _results(card)
    assert results[("validation", "accuracy")] == pytest.approx(0.8765)
    assert results[("validation", "f1")] == pytest.approx(0.8555)
    assert results[("test", "accuracy")] == pytest.approx(0.8123)
    assert results[("test", "f1")] == pytest.approx(0.8011)
    assert all(r.task_type == "text-classification" for r in data.eval_results)
    assert "cohen_kappa" not in {r.metric_type for r in data.eval_results}


def test_card_body_sections(tmp_path):
    run = _make_run(tmp_path)
    text = write_model_card(run).read_text(encoding="utf-8")
    body = ModelCard.load(run / "README.md").text
    for name, counts in (("negative", "838 | 102 | 105"), ("neutral", "620 | 72 | 76"), ("positive", "942 | 126 | 119")):
        assert f"| {name} | {counts} |" in body
    assert "| train | `data/train.csv` | 2400 | 17 |" in body  # rows and skipped rows
    assert "| Accuracy | 0.8765 | 0.8123 |" in body
    assert "| Macro F1 | 0.8555 | 0.8011 |" in body
    assert "Best epoch: 2" in body and "Epochs trained: 3" in body
    assert "learning_rate: 5.0e-05" in body and "repo_id: x/y" in body
    assert 'TFAutoModelForSequenceClassification.from_pretrained("x/y")' in body
    assert 'AutoTokenizer.from_pretrained("x/y")' in body
    assert 'pipeline("text-classification", model="x/y", framework="tf", dtype=None)' in body
    assert "import tensorflow_text  # registers the tokenizer ops" in body
    assert 'm.signatures["serving_default"](text=tf.constant([' in body
    assert 'out["label"]' in body
    assert "tf.saved_model.load(" in body
    assert "saved_model_cli show --all --dir saved_model" in body
    assert text.startswith("---\n")


def test_card_leaves_out_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "envsecret-value-42")
    config = _config()
    config["data"]["encoding"] = "envsecret-value-42"  # an env secret under an innocent key
    run = _make_run(tmp_path, config=config)
    text = write_model_card(run).read_text(encoding="utf-8")
    for secret in (*SECRETS, "envsecret-value-42"):
        assert secret not in text
    shown = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])

    def keys(value):
        if isinstance(value, dict):
            for key, item in value.items():
                yield str(key).lower()
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    assert not [k for k in keys(shown) if any(w in k for w in ("token", "secret", "password", "key"))]
    assert shown["hub"] == {"repo_id": "x/y", "private": True}
    assert shown["training"]["extras"] == {"Nested": {"kept": 1}}
    assert "encoding" not in shown["data"]


def test_scrub_secrets_any_depth():
    cleaned = scrub_secrets(
        {"a": {"HF_Token": "x", "b": [{"secretThing": 1, "c": 2}]}, "monkey": 3, "Passwords": 4, "ok": 5}, set()
    )
    assert cleaned == {"a": {"b": [{"c": 2}]}, "ok": 5}


def test_numeric_ordered_labels_show_qwk(tmp_path):
    run = _make_run(tmp_path, names=("1", "2", "3"), kind="numeric", ordered=True, qwk=0.7777)
    card = ModelCard.load(write_model_card(run))
    results = _results(card)
    assert results[("validation", "cohen_kappa")] == pytest.approx(0.7777)
    assert results[("test", "cohen_kappa")] == pytest.approx(0.7277)
    assert results[("validation", "mae")] == pytest.approx(0.4321)
    assert "| QWK | 0.7777 | 0.7277 |" in card.text
    assert "| MAE | 0.4321 | 0.5000 |" in card.text
    assert "ordered" in card.text and "`1` < `2` < `3`" in card.text


def test_local_checkpoint_has_no_base_model_and_hub_dataset_listed(tmp_path):
    local = tmp_path / "my_checkpoint"
    local.mkdir()
    config = _config(checkpoint=str(local), train_file="hf://datasets/acme/reviews/train.csv")
    del config["hub"]
    run = _make_run(tmp_path, config=config, saved_model=False)
    card = ModelCard.load(write_model_card(run))
    assert getattr(card.data, "base_model", None) is None
    assert card.data.datasets == ["acme/reviews"]
    assert "saved_model_cli" not in card.text
    assert 'from_pretrained("runs/sentiment-demo/model")' in card.text


def test_token_signature_saved_model(tmp_path):
    info = {
        "signatures": ["serving_default", "serve_tokens"],
        "in_graph_tokenizer": None,
        "consumer_imports": [],
        "note": "raw-text signature left out: BPE tokenizer",
    }
    run = _make_run(tmp_path, export_info=info)
    body = build_model_card(run).text
    assert "import tensorflow_text" not in body
    assert "input_ids=tf.cast(" in body
    assert "raw-text signature left out: BPE tokenizer" in body
    assert "saved_model_cli show --all --dir saved_model" in body


def test_hub_id_detection(tmp_path):
    assert hub_model_id("prajjwal1/bert-tiny") == "prajjwal1/bert-tiny"
    assert hub_model_id("bert-base-uncased") == "bert-base-uncased"
    assert hub_model_id(None) is None
    assert hub_model_id("./models/x") is None
    assert hub_model_id("/abs/path/model") is None
    assert hub_model_id(str(tmp_path)) is None
    assert hub_dataset_id("data/train.csv") is None
    assert hub_dataset_id("tfslm:quickstart_train.csv") is None
    assert hub_dataset_id("hf://datasets/acme/reviews@main/train.csv") == "acme/reviews"
    assert hub_dataset_id("acme/reviews") == "acme/reviews"


def test_missing_metrics_raises(tmp_path):
    run = _make_run(tmp_path, with_metrics=False)
    with pytest.raises(RunDirError, match="metrics.json"):
        write_model_card(run)
    assert not (run / "README.md").exists()


def test_missing_run_dir_raises(tmp_path):
    with pytest.raises(RunDirError, match="nope"):
        write_model_card(tmp_path / "nope")


# ---------------------------------------------------------------- score runs (regression)
ESSAY_GRID = [str(v) for v in range(0, 1001, 40)]


def _score_run(tmp_path, *, multi=False, task_json=True, long_text="truncate", export_info=None):
    data = {"label_column": "competence" if multi else "score", "labels": None, "score_range": [0, 200] if multi else [0, 1000],
            "score_step": 40, "target_names": ["c1", "c2", "c3", "c4", "c5"] if multi else None, "derive_total": multi,
            "long_text": long_text, "chunk_stride": 64}
    config = _config(**data)
    config["model"]["problem_type"] = "multi_target_regression" if multi else "regression"
    run = _make_run(tmp_path, config=config, names=ESSAY_GRID, kind="numeric", ordered=True, export_info=export_info)
    metrics = json.loads((run / "metrics.json").read_text())
    per_target = {f"c{i}_{k}": v for i in range(1, 6) for k, v in
                  (("qwk", 0.1 * i), ("mae", 30.0 + i), ("rmse", 40.0 + i), ("exact", 0.3), ("adjacent", 0.7))} if multi else {}
    metrics["validation"] = {"loss": 0.02, "qwk": 0.3281, "mae": 131.4, "rmse": 172.4, "exact": 0.095, "adjacent": 0.338,
                             "num_examples": 74, "confusion_matrix": [[0] * 26 for _ in range(26)], **per_target}
    metrics.pop("test")
    metrics["problem_type"] = config["model"]["problem_type"]
    metrics["data"] = {"train": {"rows": 612, "score_mean": 598.431, "score_min": 0.0, "score_max": 1000.0000153},
                       "validation": {"rows": 74, "score_mean": 601.081, "score_min": 120.00000178813934, "score_max": 960.0}}
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if task_json:
        task = {"problem_type": config["model"]["problem_type"], "target_names": data["target_names"] or ["score"],
                "score_range": data["score_range"], "score_step": 40.0, "derive_total": multi}
        (run / "task.json").write_text(json.dumps(task), encoding="utf-8")
    return run


@pytest.mark.parametrize("task_json", [True, False])
def test_regression_card_describes_the_scores_not_a_label_grid(tmp_path, task_json):
    body = build_model_card(_score_run(tmp_path, task_json=task_json)).text
    assert "## Labels" not in body and "| 0 | 0 | – | – | – |" not in body
    assert "## Scores" in body
    assert "| `score` | `logits[:, 0]` | 0–1000 | steps of 40: 0, 40, …, 1000 (26 values) |" in body
    assert "mapped back with `output × 1000`, clipped to the range and rounded to the nearest grid value `k × 40` (halves up)" in body
    assert "`tfslm predict` writes `predicted_score`; the SavedModel returns `score` and `scores`" in body
    assert "| train | 612 | 598.431 | 0 | 1000 |" in body and "| validation | 74 | 601.081 | 120 | 960 |" in body
    for row in ("| QWK | 0.3281 |", "| MAE | 131.4000 |", "| RMSE | 172.4000 |", "| Exact agreement | 0.0950 |",
                "| Adjacent agreement (±1 step) | 0.3380 |"):
        assert row in body
    assert "rows: true score, columns: predicted score, both on the grid" in body
    assert "Per target" not in body
    # usage snippets decode scores instead of taking an argmax over one output
    assert "argmax" not in body and "pipeline(" not in body
    assert "scores = np.clip(low + outputs * (high - low), low, high)" in body and "low, high, step = 0, 1000, 40" in body
    assert 'print(out["score"], out["scores"])' in body and 'out["label"]' not in body


def test_multi_target_card_lists_targets_total_and_per_target_metrics(tmp_path):
    body = build_model_card(_score_run(tmp_path, multi=True)).text
    assert "| `c1` | `logits[:, 0]` | 0–200 | steps of 40: 0, 40, 80, 120, 160, 200 (6 values) |" in body
    assert "| `c5` | `logits[:, 4]` | 0–200 |" in body
    assert "| total (`score`) | sum of the decoded targets | 0–1000 | steps of 40: 0, 40, …, 1000 (26 values) |" in body
    assert "the total is the sum of the rounded targets" in body
    assert "`predicted_c1`, `predicted_c2`, `predicted_c3`, `predicted_c4`, `predicted_c5` and `predicted_score` (the total)" in body
    assert "| split | rows | mean (sum of the targets) | min | max |" in body
    assert "Per target (the results above are on the total, the sum of the targets):" in body
    assert "| `c2` | validation | 0.2000 | 32.0000 | 42.0000 | 0.3000 | 0.7000 |" in body
    assert "total = scores.sum(axis=1)" in body and "[texts, 5]: c1, c2, c3, c4, c5, scaled to [0, 1]" in body


def test_chunk_run_card_says_how_windows_are_pooled(tmp_path):
    info = {"signatures": ["serving_default", "serve_tokens", "tokenize", "tokenize_windows"],
            "in_graph_tokenizer": "tensorflow_text.FastWordpieceTokenizer", "consumer_imports": ["tensorflow_text"],
            "long_text": "chunk", "chunk_stride": 64, "pooling": "in_graph", "note": None}
    body = build_model_card(_score_run(tmp_path, long_text="chunk", export_info=info)).text
    assert "overlapping windows of 96 tokens (64 tokens of overlap)" in body
    assert "`tfslm.Predictor` and the SavedModel below pool the windows." in body
    (tmp_path / "truncating").mkdir()
    assert "overlapping windows" not in build_model_card(_score_run(tmp_path / "truncating")).text
