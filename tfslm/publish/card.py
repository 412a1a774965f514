"""The model card of a run directory: ``README.md`` in the Hugging Face Hub format.

:func:`build_model_card` reads what ``tfslm train`` (and ``tfslm export``) left
in a run directory -- ``config.yaml``, ``labels.json``, ``metrics.json`` and,
when present, ``saved_model/assets.extra/tfslm_export.json`` -- and fills a
short Jinja template through ``huggingface_hub.ModelCard.from_template``. The
YAML front matter (``ModelCardData``) carries the library, tags, base model,
data sets and the validation/test results as ``model-index`` eval results, so
the Hub shows them; the body has the label table (for regression runs a Scores section instead:
targets, ranges, score grid, how outputs are decoded, score statistics per
split), the training config, the data
summary, the results and how to call the model from transformers and from
TensorFlow alone.

The config in the card never holds secrets: every key whose name contains
``token``, ``secret``, ``password`` or ``key`` (any case, any depth) is left
out, and so is any value that equals a secret-looking environment variable.

Example:
    >>> path = write_model_card("runs/quickstart")  # doctest: +SKIP
    >>> huggingface_hub.ModelCard.load(path).data.eval_results[0].metric_value  # doctest: +SKIP
    0.9133333333333333
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tfslm.atomic import atomic_write_text
from tfslm.errors import RunDirError, one_line
from tfslm.publish.secrets import SECRET_WORDS, scrub_secrets, scrub_text, secret_env_values
from tfslm.run_dir import RunDir, read_json, read_yaml
from tfslm.publish.markdown import cell as _cell
from tfslm.publish.markdown import number as _number
from tfslm.publish.markdown import section as _section
from tfslm.tasks.base import render

__all__ = ["build_model_card", "write_model_card", "scrub_secrets", "SECRET_WORDS"]

CARD_TAGS = ["tfslm", "tensorflow", "keras", "text-classification"]
SPLITS = ("train", "validation", "test")
EVAL_SPLITS = ("validation", "test")
_DATA_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow", ".gz", ".zip")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9_.-]{1,96})?$")
_HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9_.-]{1,96}$")
# The fix of a run file that parses but is not what `tfslm train` writes (edited or damaged by hand).
_RETRAIN = "restore the file `tfslm train` wrote, or retrain the run with `tfslm train CONFIG --overwrite`"

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

{{ task_section }}## Training config

Secrets (any key containing token, secret, password or key) are left out.

```yaml
{{ config_yaml }}
```

## Data

| split | file | rows | skipped rows |
|-------|------|-----:|-------------:|
{% for row in data_rows -%}
| {{ row.split }} | {{ row.file }} | {{ row.rows }} | {{ row.skipped }} |
{% endfor %}
## Results

| metric |{% for split in result_splits %} {{ split }} |{% endfor %}
|--------|{% for split in result_splits %}------:|{% endfor %}
{% for row in result_rows -%}
| {{ row.name }} |{% for value in row["values"] %} {{ value }} |{% endfor %}
{% endfor %}
{{ results_extra }}{% if baseline_line %}{{ baseline_line }}

{% endif %}{% for fact in run_facts -%}
- {{ fact }}
{% endfor %}
{%- for cm in confusion_matrices %}
Confusion matrix, {{ cm.split }} ({{ cm.axes }}):

| true / predicted |{% for name in cm.names %} {{ name }} |{% endfor %}
|---|{% for name in cm.names %}---:|{% endfor %}
{% for row in cm.rows -%}
| {{ row.name }} |{% for value in row["values"] %} {{ value }} |{% endfor %}
{% endfor %}
{%- endfor %}
{% if backend == "keras_hub" -%}
## How to use with KerasHub

Trained with tfslm's `keras_hub` backend (KerasHub on Keras 3). `model/` is a KerasHub preset
with a preprocessor over the same vocabulary, so raw text goes in (`pip install keras-hub tensorflow-text`):

```python
import keras_hub

classifier = keras_hub.models.TextClassifier.from_preset("{{ model_ref }}")
logits = classifier.predict([{{ example_text }}])  # [texts, {{ num_outputs }}], the head's raw outputs
```

The exact trained model (inputs `input_ids`, `attention_mask`{% if uses_segments %}, `token_type_ids`{% endif %}, tokenized
with the tokenizer in `model/tfslm_tokenizer/`) loads with `keras.saving.load_model("{{ model_ref }}/model.keras")`
after `import keras_hub`.
{% else -%}
## How to use with transformers

```python
{{ usage_imports }}

tokenizer = AutoTokenizer.from_pretrained("{{ model_ref }}")
model = TFAutoModelForSequenceClassification.from_pretrained("{{ model_ref }}")
inputs = tokenizer([{{ example_text }}], return_tensors="tf", padding=True, truncation=True, max_length={{ max_length }})
{{ usage_decode }}
{% endif -%}
{% if long_text_note %}
{{ long_text_note }}
{% endif -%}
{% if saved_model %}
## How to call the SavedModel from TensorFlow only

The `saved_model/` folder needs TensorFlow{% if consumer_imports %} and {% for name in consumer_imports %}`{{ name }}`{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}, not tfslm or transformers.{% if tokenizer_ops %} Tokenizer ops: `{{ tokenizer_ops }}`{% if tokenizer_ops == "core" %} (core TensorFlow only: `saved_model_cli` and the stock TF Serving image can call it with raw text){% elif tokenizer_ops == "tf_text" %} (tensorflow-text's WordPiece op: a TF Serving binary must be built with it){% endif %}.{% endif %}
{%- if export_note %}

Note: {{ export_note }}
{%- endif %}

```python
import tensorflow as tf
{% for name in consumer_imports -%}
import {{ name }}  # registers the tokenizer ops
{% endfor %}
m = tf.saved_model.load("saved_model")
{% if text_signature -%}
out = m.signatures["serving_default"](text=tf.constant([{{ example_text }}]))
print({{ printed_outputs }})
{%- else -%}
# this SavedModel takes token ids; make them with the tokenizer saved next to the model
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{{ model_ref }}")
enc = tokenizer([{{ example_text }}], return_tensors="tf", padding=True, truncation=True, max_length={{ max_length }})
out = m.signatures["serving_default"](
    input_ids=tf.cast(enc["input_ids"], tf.int32),
    attention_mask=tf.cast(enc["attention_mask"], tf.int32),
)
print({{ printed_outputs }})
{%- endif %}
```
{% if signatures %}
Signatures: {% for name in signatures %}`{{ name }}`{% if not loop.last %}, {% endif %}{% endfor %}.
{% endif %}
Inspect the inputs and outputs of every signature with:

```bash
saved_model_cli show --all --dir saved_model
```
{% endif %}
---

Trained with tfslm (TensorFlow/Keras).
"""


# ---------------------------------------------------------------- reading




# ---------------------------------------------------------------- hub ids


def _looks_local(name: str) -> bool:
    return (
        name.startswith(("/", ".", "~", "tfslm:"))
        or "\\" in name
        or ".." in name
        or os.path.exists(os.path.expanduser(name))
    )


def hub_model_id(checkpoint: Any) -> str | None:
    """``checkpoint`` when it names a Hub model (``owner/name`` or a legacy ``name``), else None."""
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        return None
    name = checkpoint.strip()
    if name.startswith("hf://"):
        name = name[len("hf://"):]
    if _looks_local(name) or "--" in name or not _HUB_ID.match(name):
        return None
    return name


def hub_dataset_id(data_file: Any) -> str | None:
    """The Hub dataset id a data file names (``hf://datasets/owner/name/...`` or ``owner/name``), else None."""
    if not isinstance(data_file, str) or not data_file.strip():
        return None
    name = data_file.strip()
    if name.startswith("hf://datasets/"):
        parts = name[len("hf://datasets/"):].split("/")
        if len(parts) >= 2:
            candidate = f"{parts[0]}/{parts[1].split('@')[0]}"
            return candidate if _HUB_DATASET_ID.match(candidate) else None
        return None
    if _looks_local(name) or name.lower().endswith(_DATA_EXTENSIONS) or not _HUB_DATASET_ID.match(name):
        return None
    return name


# ---------------------------------------------------------------- formatting


def _file_label(name: Any) -> str:
    if not isinstance(name, str) or not name:
        return "–"
    return f"`{name}`"


# ---------------------------------------------------------------- the task


def _task_info(run_dir: Path, cfg: dict, metrics: dict):
    """The run's :class:`~tfslm.tasks.base.Task` (``task.json``, else rebuilt from the config's data/model sections)."""
    from tfslm.tasks.base import Task

    path = RunDir(run_dir).task
    task = read_json(path, required=False)
    if not (isinstance(task, dict) and task.get("problem_type")):
        data_cfg, model_cfg = _section(cfg, "data"), _section(cfg, "model")
        problem = metrics.get("problem_type") or model_cfg.get("problem_type") or "single_label_classification"
        task = {"problem_type": problem, "target_names": data_cfg.get("target_names"), "score_range": data_cfg.get("score_range"),
                "score_step": data_cfg.get("score_step"), "derive_total": bool(data_cfg.get("derive_total"))}
    try:
        return Task.from_dict(task)
    except (ValueError, TypeError) as exc:
        raise RunDirError(f"{path}: the run's task cannot be read ({one_line(exc)}); is {run_dir} a finished tfslm run directory?") from None


def _long_text_note(cfg: dict, export_info: dict | None, max_length: int) -> str | None:
    data_cfg = _section(cfg, "data")
    if data_cfg.get("long_text") not in ("chunk", "document"):
        return None
    stride = data_cfg.get("chunk_stride")
    pooled_in_graph = isinstance(export_info, dict) and export_info.get("pooling") == "in_graph"
    if data_cfg.get("long_text") == "document":
        return (
            f"This run was trained on whole documents: each text is read in overlapping windows of {max_length} tokens "
            f"({stride} tokens of overlap, at most {data_cfg.get('max_windows') or 'every'} evenly spaced windows) whose "
            "logits are averaged into one prediction, in training too; the snippet above truncates instead. "
            "`tfslm.Predictor` " + ("and the SavedModel below pool" if pooled_in_graph else "pools") + " the windows."
        )
    return (
        f"This run reads long texts in overlapping windows of {max_length} tokens ({stride} tokens of overlap) and "
        "averages the windows of a text (mean probability, or mean score); the snippet above truncates instead. "
        "`tfslm.Predictor` "
        + ("and the SavedModel below pool" if pooled_in_graph else "pools")
        + " the windows."
    )


# ---------------------------------------------------------------- card


def _eval_results(metrics: dict, data_cfg: dict, run_name: str, eval_metrics):
    from huggingface_hub import EvalResult

    results = []
    for split in EVAL_SPLITS:
        split_metrics = _section(metrics, split)
        if not split_metrics:
            continue
        data_file = data_cfg.get(f"{split}_file")
        if split == "validation" and not data_file and data_cfg.get("train_file"):
            data_file = data_cfg.get("train_file")  # validation was split off the training file
        dataset_id = hub_dataset_id(data_file)
        if dataset_id:
            dataset_type = dataset_name = dataset_id
        elif isinstance(data_file, str) and data_file:
            dataset_type = data_file.rsplit("/", 1)[-1].split(":", 1)[-1]
            dataset_name = f"{run_name} {split} data ({dataset_type})"
        else:
            dataset_type = "local"
            dataset_name = f"{run_name} {split} data"
        for key, metric_type, display, args in eval_metrics:
            value = split_metrics.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            results.append(
                EvalResult(
                    task_type="text-classification",
                    task_name="Text Classification",
                    dataset_type=dataset_type,
                    dataset_name=dataset_name,
                    dataset_split=split,
                    metric_type=metric_type,
                    metric_name=f"{display} ({split})",
                    metric_value=float(value),
                    metric_args=args,
                )
            )
    return results


def _summary(run_name: str, cfg: dict, metrics: dict, base_model: str | None, about: dict) -> str:
    """The opening paragraph: what the model is, where it comes from, and what the task says it predicts."""
    model_cfg = _section(cfg, "model")
    checkpoint = model_cfg.get("checkpoint")
    if base_model:
        source = f"fine-tuned from [`{base_model}`](https://huggingface.co/{base_model})"
    elif checkpoint:
        source = f"fine-tuned from the local checkpoint `{checkpoint}`"
    else:
        architecture = model_cfg.get("architecture") or _section(metrics, "model").get("type") or "a small transformer"
        source = f"trained from scratch with the {architecture} architecture"
    model_info = _section(metrics, "model")
    size = ""
    if isinstance(model_info.get("parameters"), int):
        kind_of = f"`{model_info['type']}`, " if model_info.get("type") else ""
        size = f" ({kind_of}{model_info['parameters']:,} parameters)"
    return f"`{run_name}` is a {about['noun']} {source}{size} with tfslm, TensorFlow and Keras. {about['sentence']}"


def _data_rows(cfg: dict, metrics: dict) -> list[dict]:
    data_cfg, data = _section(cfg, "data"), _section(metrics, "data")
    skipped = data.get("skipped_rows") if isinstance(data.get("skipped_rows"), dict) else {}
    rows = []
    for split in SPLITS:
        info = _section(data, split)
        data_file = data_cfg.get(f"{split}_file")
        if not info and not data_file:
            continue
        if split == "validation" and not data_file and data_cfg.get("validation_split"):
            shown_file = f"{data_cfg['validation_split']} of the training file"
        else:
            shown_file = _file_label(data_file)
        rows.append(
            {
                "split": split,
                "file": _cell(shown_file) if not shown_file.startswith("`") else shown_file.replace("|", "\\|"),
                "rows": _number(info.get("rows")),
                "skipped": _number(skipped.get(split, 0)),
            }
        )
    return rows


def _result_tables(metrics: dict, label_names: list[str], axes: str, result_rows) -> tuple[list[str], list[dict], list[dict]]:
    splits = [s for s in EVAL_SPLITS if _section(metrics, s)]
    rows = []
    for key, display in result_rows:
        values = [_section(metrics, s).get(key) for s in splits]
        if all(v is None for v in values):
            continue
        rows.append({"name": display, "values": [_number(v) for v in values]})
    matrices = []
    for split in splits:
        matrix = _section(metrics, split).get("confusion_matrix")
        if not (isinstance(matrix, list) and matrix and len(matrix) == len(label_names)):
            continue
        matrices.append(
            {
                "split": split,
                "axes": axes,
                "names": [_cell(n) for n in label_names],
                "rows": [
                    {"name": _cell(name), "values": [_number(v) for v in row]}
                    for name, row in zip(label_names, matrix)
                ],
            }
        )
    return splits, rows, matrices


def _baseline_line(metrics: dict, task, result_rows) -> str | None:
    """"Baseline: tfidf + ridge on the same training split: QWK 0.47 on test (model 0.52)"; None without a baseline."""
    from tfslm.publish.markdown import headline_metric

    baseline = _section(metrics, "baseline")
    splits = [s for s in reversed(EVAL_SPLITS) if _section(baseline, s)]  # test first: the held-out figure
    key = headline_metric(task.report_metric_keys, _section(baseline, splits[0])) if splits else None
    if key is None:
        return None
    display = dict(result_rows).get(key, key)
    figures = ", ".join(f"{_number(_section(baseline, s).get(key))} on {s} (model {_number(_section(metrics, s).get(key))})" for s in splits)
    method = _cell(baseline.get("method", "tfidf"))
    return (f"**Baseline** ({method}, fitted on the same training split and decoded the same way, so fine-tuning "
            f"must beat it): {display} {figures}.")


def _run_facts(metrics: dict) -> list[str]:
    facts = []
    if metrics.get("best_epoch") is not None:
        monitor = f" (by `{metrics['monitor']}`)" if metrics.get("monitor") else ""
        facts.append(f"Best epoch: {metrics['best_epoch']}{monitor}")
    if metrics.get("epochs_trained") is not None:
        stopped = " (stopped early)" if metrics.get("early_stopped") else ""
        facts.append(f"Epochs trained: {metrics['epochs_trained']}{stopped}")
    if isinstance(metrics.get("train_seconds"), (int, float)):
        facts.append(f"Training time: {metrics['train_seconds']:.1f} s")
    return facts


def build_model_card(run_dir: str | os.PathLike):
    """Build the ``huggingface_hub.ModelCard`` of ``run_dir`` from its files (nothing is written).

    Raises:
        RunDirError: ``run_dir`` is missing, or lacks ``config.yaml``, ``labels.json``
            or ``metrics.json``, or one of them cannot be parsed.
    """
    import yaml
    from huggingface_hub import ModelCard, ModelCardData

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: run directory not found; pass the directory a training run wrote (runs/<name>)")
    cfg = read_yaml(RunDir(run_dir).config)
    if not isinstance(cfg, dict):
        raise RunDirError(f"{run_dir / 'config.yaml'}: expected a mapping at the top level, got {type(cfg).__name__}; {_RETRAIN}")
    labels = read_json(RunDir(run_dir).labels, required=True)
    metrics = read_json(RunDir(run_dir).metrics, required=True)
    if not isinstance(labels, dict):
        raise RunDirError(f"{run_dir / 'labels.json'}: expected a JSON object, got {type(labels).__name__}; {_RETRAIN}")
    if not isinstance(metrics, dict):
        raise RunDirError(f"{run_dir / 'metrics.json'}: expected a JSON object, got {type(metrics).__name__}; {_RETRAIN}")

    env_secrets = secret_env_values()
    safe_cfg = scrub_secrets(cfg, env_secrets)
    data_cfg, model_cfg = _section(safe_cfg, "data"), _section(safe_cfg, "model")
    run_name = str(safe_cfg.get("run_name") or run_dir.name)
    label_names = [str(n) for n in labels.get("names") or metrics.get("labels") or []]

    base_model = hub_model_id(model_cfg.get("checkpoint"))
    dataset_ids = []
    for split in SPLITS:
        dataset_id = hub_dataset_id(data_cfg.get(f"{split}_file"))
        if dataset_id and dataset_id not in dataset_ids:
            dataset_ids.append(dataset_id)
    task = _task_info(run_dir, safe_cfg, metrics)
    about = task.card_context(labels, metrics, data_cfg)
    eval_results = _eval_results(metrics, data_cfg, run_name, about["eval_metrics"])
    metric_ids = []
    for result in eval_results:
        if result.metric_type not in metric_ids:
            metric_ids.append(result.metric_type)

    backend = "keras_hub" if (RunDir(run_dir).model / "model.keras").is_file() else "transformers"
    card_data = ModelCardData(
        library_name="keras-hub" if backend == "keras_hub" else "transformers",
        tags=list(CARD_TAGS),
        pipeline_tag="text-classification",
        model_name=run_name,
        base_model=base_model,
        datasets=dataset_ids or None,
        metrics=metric_ids or None,
        eval_results=eval_results or None,
    )

    hub_cfg = _section(safe_cfg, "hub")
    repo_id = hub_cfg.get("repo_id") if isinstance(hub_cfg.get("repo_id"), str) else None
    if repo_id:
        model_ref = repo_id
    else:
        model_ref = f"{safe_cfg.get('output_dir') or run_dir.parent.name or '.'}/{run_name}/model".lstrip("/")

    saved_model_dir = RunDir(run_dir).saved_model
    export_info = read_json(saved_model_dir / "assets.extra" / "tfslm_export.json", required=False)
    export_info = export_info if isinstance(export_info, dict) else None
    if export_info is not None:
        signatures = [str(s) for s in export_info.get("signatures") or []]
        text_signature = bool(export_info.get("in_graph_tokenizer"))
        consumer_imports = [str(s) for s in export_info.get("consumer_imports") or []]
        export_note = export_info.get("note")
    else:
        # No record of the export: assume the usual raw-text signature; saved_model_cli tells for sure.
        signatures, text_signature, consumer_imports = [], True, ["tensorflow_text"]
        export_note = (
            "assets.extra/tfslm_export.json is missing, so this assumes the raw-text signature; "
            "check the signatures with saved_model_cli below"
        )

    config_yaml = yaml.safe_dump(safe_cfg, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()
    result_splits, result_rows, confusion = _result_tables(metrics, label_names, about["axes"], about["result_rows"])
    example = json.dumps(about["example_text"])
    max_length = model_cfg.get("max_length") if isinstance(model_cfg.get("max_length"), int) else 128

    card = ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        title=run_name,
        summary=_summary(run_name, safe_cfg, metrics, base_model, about),
        task_section=about["section"],
        results_extra=about["results_extra"],
        baseline_line=_baseline_line(metrics, task, about["result_rows"]),
        usage_imports=about["usage_imports"],
        usage_decode=render(about["usage_decode"], model_ref=model_ref, example_text=example, **about["usage_context"]),
        printed_outputs=about["printed_outputs"],
        long_text_note=_long_text_note(safe_cfg, export_info, max_length),
        config_yaml=config_yaml,
        data_rows=_data_rows(safe_cfg, metrics),
        result_splits=result_splits,
        result_rows=result_rows,
        run_facts=_run_facts(metrics),
        confusion_matrices=confusion,
        model_ref=model_ref,
        example_text=example,
        max_length=max_length,
        saved_model=saved_model_dir.is_dir(),
        signatures=signatures,
        text_signature=text_signature,
        consumer_imports=consumer_imports,
        tokenizer_ops=(export_info or {}).get("tokenizer_ops"),
        export_note=export_note,
        backend=backend,
        num_outputs=len(label_names) if not task.is_regression else "scores",
        uses_segments=model_cfg.get("architecture") != "distilbert",
    )
    text = str(card)
    scrubbed = scrub_text(text, env_secrets, replacement="<redacted>")
    if scrubbed != text:  # e.g. a label name or file path that happens to equal a secret
        card = ModelCard(scrubbed)
    return card


def write_model_card(run_dir: str | os.PathLike) -> Path:
    """Write ``run_dir/README.md`` (Hub model-card format) atomically from the run's files; return its path.

    Example:
        >>> write_model_card("runs/quickstart")   # doctest: +SKIP
        PosixPath('runs/quickstart/README.md')
    """
    card = build_model_card(run_dir)
    path = RunDir(run_dir).card
    text = str(card)
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    return path
