"""A Gradio page for a finished run: type a text (or upload a CSV), see what the model says.

:func:`build_demo` returns the ``gr.Blocks``, a plain object a notebook can
``.launch()``; :func:`serve` is ``tfslm demo``: it binds to the loopback by
default, never shares publicly unless asked, prints the URL and blocks until
Ctrl-C or SIGTERM. Gradio is an optional extra (``pip install -e ".[demo]"``)
and is imported only here, when a page is built.

Example:
    >>> demo = build_demo("runs/quickstart")        # doctest: +SKIP
    >>> demo.launch(server_name="127.0.0.1")         # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from tfslm.demo.scoring import Scorer, prediction_columns
from tfslm.errors import DataError, UserError
from tfslm.run_dir import RunDir, read_json

__all__ = ["MissingExtraError", "build_demo", "card_metrics", "example_texts", "require_gradio", "serve"]

INSTALL_HINT = 'pip install -e ".[demo]"'
_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"]  # no web fonts: works offline
_CSS = "#tfslm-result table {width: 100%} .tfslm-note {color: var(--body-text-color-subdued); font-size: 0.9em}"


class MissingExtraError(UserError, ImportError):
    """An optional dependency (Gradio for the demo) is not installed."""


def require_gradio():
    """Import Gradio with its telemetry off; a one-line :class:`MissingExtraError` when it is missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # must be set before gradio is imported
    try:
        import gradio as gr
    except ImportError:
        raise MissingExtraError(f"tfslm demo: Gradio is not installed; install the demo extra: {INSTALL_HINT}") from None
    return gr


# ---------------------------------------------------------------------- content
def example_texts(run_dir: str | os.PathLike, *, per_label: int = 2, max_chars: int = 400) -> list[str]:
    """A few short validation texts, ``per_label`` of each predicted label, for the page's examples.

    ``predictions/validation.csv`` holds file row numbers; the texts come from the
    run's validation (or training) file, so a run moved away from its data has none.
    """
    import pandas as pd

    run = RunDir(run_dir)
    path = run.predictions("validation")
    cfg = run.read_config() if run.config.is_file() else {}
    data = cfg.get("data") or {}
    source = data.get("validation_file") or data.get("train_file")
    if not path.is_file() or not source or not Path(source).is_file():
        return []
    try:
        preds = pd.read_csv(path)
        texts = pd.read_csv(source, usecols=[data.get("text_column") or "text"]).iloc[:, 0]
    except (ValueError, OSError):
        return []
    if "row" not in preds:
        return []
    from tfslm.data.cleaning import clean_text

    column = "predicted_label" if "predicted_label" in preds else None
    groups = preds.groupby(column, sort=True) if column else [(None, preds)]
    out: list[str] = []
    for _, group in groups:
        candidates = [clean_text(texts.iloc[r - 1]) for r in group["row"] if 0 < r <= len(texts)]
        candidates = sorted((t for t in candidates if t and len(t) <= max_chars), key=len)
        out += candidates[:per_label] if column else candidates[:3 * per_label]
    return out


def card_metrics(run_dir: str | os.PathLike) -> str:
    """The Results section of the run's model card (``README.md``); a table from ``metrics.json`` without a card."""
    run = RunDir(run_dir)
    if run.card.is_file():
        text = run.card.read_text(encoding="utf-8")
        match = re.search(r"^## Results\s*$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
        if match:
            return match.group(1).strip()
    metrics = read_json(run.metrics, required=False) or {}
    splits = [s for s in ("validation", "test") if isinstance(metrics.get(s), dict)]
    keys = [k for k, v in (metrics.get(splits[0], {}) if splits else {}).items() if isinstance(v, (int, float))]
    if not keys:
        return "No metrics recorded."
    lines = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for key in keys:
        cells = [_fmt(metrics[s].get(key)) for s in splits]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "–" if value is None else str(value)


def _describe(scorer: Scorer, cfg: dict) -> tuple[str, str]:
    """(title, one-line summary) of the run for the page's header."""
    task = scorer.task
    name = cfg.get("run_name") or scorer.run_dir.name
    kind = {"single_label_classification": "text classification", "multi_label_classification": "multi-label classification",
            "ordinal": "ordinal scoring", "regression": "score regression",
            "multi_target_regression": "multi-target scoring"}.get(task.problem_type, task.problem_type)
    m = cfg.get("model") or {}
    model = f"{m['architecture']} (from scratch)" if not m.get("checkpoint") and m.get("architecture") else \
        Path(str(m.get("checkpoint") or "model")).name
    if task.num_targets > 0:
        outputs = f"targets: {', '.join(task.target_names)}" if len(task.target_names) > 1 else "predicts a score"
    else:
        outputs = f"labels: {', '.join(map(str, scorer.labels.names))}"
    via = "the run's SavedModel (`serving_default`)" if scorer.backend == "saved_model" else "the Python model (tfslm.Predictor)"
    return f"{name} — {kind}", f"{model} · {outputs} · scored by {via}"


# ---------------------------------------------------------------------- results
def result_markdown(row: dict[str, Any], task: Any) -> str:
    """The result of one text as Markdown: the label or score, then every probability / target (4 decimals)."""
    lines = []
    if "label" in row:
        lines.append(f"**Predicted label: {row['label']}**")
    if "labels" in row:
        lines.append(f"**Predicted labels: {', '.join(row['labels']) or '(none)'}**")
    if "score" in row:
        lines.append(f"**Predicted score: {_number(row['score'])}**" + _range_note(task))
    if "scores" in row:
        lines += ["", "| target | score |", "|---|---:|"] + [f"| {k} | {_number(v)} |" for k, v in row["scores"].items()]
    if "probabilities" in row:
        lines += ["", "| label | probability |", "|---|---:|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in sorted(row["probabilities"].items(), key=lambda kv: -kv[1])]
    if "windows" in row:
        n = row["windows"]
        how = "one window" if n == 1 else f"{n} overlapping windows, pooled as the run was trained"
        lines += ["", f"<span class='tfslm-note'>scored in {how}</span>"]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def _range_note(task: Any) -> str:
    rng = task.total_range
    return f" (scale {_number(rng[0])}–{_number(rng[1])})" if rng else ""


def _label_value(row: dict[str, Any]) -> dict[str, float] | None:
    return dict(row["probabilities"]) if "probabilities" in row else None


def score_csv(scorer: Scorer, path: str | os.PathLike, text_column: str, out_dir: str | os.PathLike) -> Path:
    """Score an uploaded CSV's ``text_column`` (or its only column); write ``<name>-scored.csv`` in ``out_dir``."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: not a readable CSV file ({type(exc).__name__}); upload a UTF-8 CSV with a header") from None
    column = text_column if text_column in frame else frame.columns[0] if len(frame.columns) == 1 else None
    if column is None:
        raise DataError(f"{path.name}: no {text_column!r} column (has {', '.join(map(str, frame.columns))}); "
                        f"name the text column {text_column!r}, or upload a file with one column")
    columns = prediction_columns(scorer.score(frame[column].tolist()), scorer.task, scorer.labels)
    clash = [c for c in columns if c in frame]
    if clash:
        raise DataError(f"{path.name}: already has column(s) {', '.join(clash)}; drop them and upload again")
    for name, values in columns.items():
        frame[name] = values
    out = Path(out_dir) / f"{path.stem}-scored.csv"
    frame.to_csv(out, index=False)
    return out


# ---------------------------------------------------------------------- the page
def build_demo(run: str | os.PathLike | Scorer):
    """The ``gr.Blocks`` page of a finished run (a run directory or a :class:`Scorer`); not launched.

    Example:
        >>> build_demo("runs/quickstart").launch(server_name="127.0.0.1", server_port=7860)   # doctest: +SKIP
    """
    gr = require_gradio()
    scorer = run if isinstance(run, Scorer) else Scorer.from_run(run)
    cfg = RunDir(scorer.run_dir).read_config()
    title, summary = _describe(scorer, cfg)
    text_column = (cfg.get("data") or {}).get("text_column") or "text"
    theme = gr.themes.Soft(font=_FONTS, font_mono=["ui-monospace", "monospace"])
    with gr.Blocks(title=title, theme=theme, css=_CSS, analytics_enabled=False) as demo:
        gr.Markdown(f"# {title}\n{summary}")
        gr.Markdown("Type or paste a text and press **Score**, or pick an example below. "
                    f"To score many texts, upload a CSV with a `{text_column}` column under *Score a CSV file*.")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Text", lines=6, placeholder="A text to score", elem_id="tfslm-text")
                with gr.Row():
                    button = gr.Button("Score", variant="primary", elem_id="tfslm-submit")
                    gr.ClearButton([text], value="Clear")
                examples = example_texts(scorer.run_dir)
                if examples:
                    gr.Examples(examples=[[t] for t in examples], inputs=[text], label="Examples from the validation set")
            with gr.Column(scale=2):
                label = gr.Label(label="Prediction", num_top_classes=max(1, len(scorer.labels.names)), elem_id="tfslm-label",
                                 visible="probabilities" in _first_row_keys(scorer))
                result = gr.Markdown(elem_id="tfslm-result")
        _file_section(gr, scorer, text_column)
        with gr.Accordion("Model card metrics", open=True):
            gr.Markdown(card_metrics(scorer.run_dir), elem_id="tfslm-metrics")
        if scorer.note:
            gr.Markdown(f"<span class='tfslm-note'>{scorer.note}</span>")

        def on_score(value: str):
            if not (value or "").strip():
                raise gr.Error("Type a text first.")
            row = scorer.score([value])[0]
            return _label_value(row), result_markdown(row, scorer.task)

        gr.on([button.click, text.submit], on_score, inputs=[text], outputs=[label, result], api_name="score")
    return demo


def _first_row_keys(scorer: Scorer) -> set[str]:
    """What a result holds, known from the task without scoring (probabilities for classes, none for scores)."""
    return set() if scorer.task.num_targets > 0 else {"probabilities"}


def _file_section(gr, scorer: Scorer, text_column: str) -> None:
    out_dir = tempfile.mkdtemp(prefix="tfslm-demo-")

    def on_file(upload):
        if upload is None:
            raise gr.Error("Choose a CSV file first.")
        try:
            out = score_csv(scorer, getattr(upload, "name", upload), text_column, out_dir)
        except UserError as exc:
            raise gr.Error(str(exc)) from None
        return str(out)

    with gr.Accordion("Score a CSV file", open=True):
        with gr.Row():
            upload = gr.File(label=f"CSV with a `{text_column}` column", file_types=[".csv"], elem_id="tfslm-upload")
            scored = gr.File(label="Scored file (the rows plus the prediction columns of `tfslm predict`)",
                             elem_id="tfslm-download", interactive=False)
        gr.Button("Score file", elem_id="tfslm-score-file").click(on_file, inputs=[upload], outputs=[scored], api_name="score_file")


def serve(run: str | os.PathLike | Scorer, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False) -> int:
    """``tfslm demo``: launch the page, print its URL, block until Ctrl-C or SIGTERM; 0 when stopped.

    Example:
        >>> serve("runs/quickstart", port=7860)   # doctest: +SKIP
        demo of runs/quickstart at http://127.0.0.1:7860/ (Ctrl-C to stop)
    """
    demo = build_demo(run)
    stop = threading.Event()
    on_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    try:
        _, local_url, share_url = demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                                              quiet=True, inbrowser=False, show_api=False)
        where = run.run_dir if isinstance(run, Scorer) else run
        print(f"demo of {where} at {local_url}" + (f" (public: {share_url})" if share_url else "") + " (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        demo.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
