"""The ``tfslm`` command: argparse front end over the public functions; no logic of its own.

Exit codes: 0 success, 2 user error (one line on stderr, no traceback unless
``--debug``), 1 remote fault or internal error, 130 interrupted.

Example:
    $ tfslm train configs/quickstart.yaml --set training.epochs=1
    $ tfslm cv configs/quickstart.yaml --folds 5
    $ tfslm predict runs/quickstart --input reviews.csv --output scored.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import Sequence

from tfslm import _env
from tfslm._version import __version__
from tfslm.errors import RemoteError, StorageError, UserError, one_line, storage_problem
from tfslm.run_dir import RunDir

__all__ = ["main", "build_parser"]


def _add_export_parser(sub, common) -> None:
    p = sub.add_parser("export", parents=[common], help="write a run's SavedModel (raw-text and token-id signatures)")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`")
    p.add_argument("--output", help="SavedModel directory (default RUN_DIR/saved_model); never inside the run's other files")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output directory that tfslm did not write")
    p.add_argument("--tokenizer-ops", choices=("auto", "core", "tf_text"), default=None,
                   help="WordPiece in the raw-text signatures: core TF ops (stock TensorFlow/TF Serving), tensorflow-text's, "
                        "or auto (core when it passes the parity check); default: the run's export.tokenizer_ops")


def _add_demo_parser(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="a web page to try a run: type a text or upload a CSV (needs the demo extra)")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`, or owner/name of a run pushed to the Hub")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--revision", help="branch, tag or commit of a Hub repository (default main)")


def _add_zero_shot_parser(sub, common) -> None:
    p = sub.add_parser("zero-shot", parents=[common], help="score a config's validation/test split with no training (NLI or sentence-embedding baseline)")
    p.add_argument("config", help="YAML config file; writes OUTPUT_DIR/RUN_NAME-zero-shot like a trained run's evaluation")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value parsed as YAML (repeatable): --set zero_shot.temperature=0.1")
    p.add_argument("--checkpoint", help="NLI model or sentence encoder (directory or hub id); default zero_shot.checkpoint")
    p.add_argument("--template", help="label template, {} or {label} marks the label (default 'This text is {}.')")
    p.add_argument("--overwrite", action="store_true", help="replace a finished zero-shot run in the same directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfslm", description="Fine-tune small language models as text classifiers with TensorFlow/Keras.")
    parser.add_argument("--version", action="version", version=f"tfslm {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's start-up logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", parents=[common], help="train a model from a YAML config into a run directory")
    p.add_argument("config", help="YAML config file, e.g. configs/quickstart.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value parsed as YAML (repeatable): --set training.epochs=3")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the same run directory, or discard an unfinished run's backup and start over (without it, an unfinished run resumes)")
    p.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"], help="Keras progress output (default auto)")

    p = sub.add_parser("cv", parents=[common], help="stratified k-fold cross-validation over the training file: mean ± std of every metric")
    p.add_argument("config", help="YAML config file; its data.train_file is split into the folds (data.test_file is not used)")
    p.add_argument("--folds", type=int, required=True, metavar="K", help="number of folds (>= 2), e.g. 5")
    p.add_argument("--fold", type=int, default=None, metavar="N", help="train only fold N (1..K), e.g. to rerun one that crashed")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value parsed as YAML (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="retrain finished folds (without it they are kept, and an unfinished one resumes)")
    p.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"], help="Keras progress output (default auto)")

    p = sub.add_parser("prepare", parents=[common], help="write a config's tokenized, labelled splits as sharded TFRecords (for TPUs and remote workers)")
    p.add_argument("config", help="YAML config file; its data, model and training.seed decide the rows and the tokenizer")
    p.add_argument("--output", help="directory to write, local or gs://... (default: data.tfrecord_dir of the config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, value parsed as YAML (repeatable)")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="files per split (default 8; a multiple of the number of input workers)")
    p.add_argument("--compression", choices=["none", "gzip"], default="none",
                   help="GZIP makes smaller files that read slower (default none)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")

    p = sub.add_parser("evaluate", parents=[common], help="metrics of a trained run on a labelled file")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`")
    p.add_argument("--data", required=True, help="labelled CSV/TSV/JSON/JSONL/Parquet with the run's text and label columns")
    p.add_argument("--output", help="metrics JSON file (default RUN_DIR/evaluations/<data file stem>.json); never a run artefact")
    p.add_argument("--text-column", help="text column of the data (default: the run's data.text_column)")
    p.add_argument("--label-column", help="label column of the data (default: the run's data.label_column)")
    p.add_argument("--encoding", help="text encoding of the data (default: the run's data.encoding)")
    p.add_argument("--skip-bad-rows", action="store_true", default=None, help="leave out rows with empty text or no label instead of failing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--batch-size", type=int, default=32)

    p = sub.add_parser("predict", parents=[common], help="label every row of a file with a trained run")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`, or owner/name of a run pushed to the Hub")
    p.add_argument("--input", required=True, help="CSV/TSV/JSON/JSONL/Parquet with the run's text column")
    p.add_argument("--output", required=True, help="output .csv, .tsv, .jsonl or .parquet (input rows + predictions)")
    p.add_argument("--text-column", help="text column of the input (default: the run's data.text_column)")
    p.add_argument("--encoding", help="text encoding of the input (default: the run's data.encoding)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file (never the input)")
    p.add_argument("--batch-size", type=int, default=32)
    _add_export_parser(sub, common)
    _add_demo_parser(sub, common)
    _add_zero_shot_parser(sub, common)

    p = sub.add_parser("report", parents=[common], help="(re)write a run's report.md and plots/ from its files")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`")

    p = sub.add_parser("push", parents=[common], help="upload a run to a Hugging Face Hub repository (token from HF_TOKEN)")
    p.add_argument("run_dir", help="a run directory written by `tfslm train`")
    p.add_argument("--repo-id", required=True, help="owner/name of the Hub repository (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--commit-message", help="commit message (default: 'Upload tfslm run <name>')")
    return parser


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record (pytest's capture, a notebook, a redirect).

    A plain ``StreamHandler(sys.stderr)`` keeps the stream of its first call, so
    a second in-process ``main()`` after stderr was swapped logs into a closed file.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _setup_logging(debug: bool) -> None:
    logger = logging.getLogger("tfslm")
    if not any(isinstance(h, _CurrentStderrHandler) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("tfslm: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    if not debug:
        import datasets

        datasets.utils.logging.disable_progress_bar()
        datasets.utils.logging.set_verbosity_error()
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)


def _cmd_train(args) -> int:
    from tfslm.config import load_config
    from tfslm.training.fit import train

    cfg = load_config(args.config, args.overrides)
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    result = train(cfg, overwrite=args.overwrite, verbose=verbose)
    if not result.is_chief:
        print(f"worker done; the chief wrote the run directory {cfg.run_dir}")
        return 0
    _print_metrics(result.metrics["validation"], "validation")
    if "test" in result.metrics:
        _print_metrics(result.metrics["test"], "test")
    print(f"run directory: {result.run_dir}")
    return 0


def _cmd_cv(args) -> int:
    from tfslm.config import load_config
    from tfslm.training.cross_validation import cross_validate, mean_std_text

    cfg = load_config(args.config, args.overrides)
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    result = cross_validate(cfg, folds=args.folds, fold=args.fold, overwrite=args.overwrite, verbose=verbose)
    print(f"folds finished: {len(result.finished)} of {result.folds}" + (
        f" (missing: {', '.join(map(str, result.missing))}; run them with --fold N)" if result.missing else ""))
    for key in result.headline or result.mean:
        baseline = f"   baseline {mean_std_text(result.baseline_mean[key], result.baseline_std.get(key))}" if key in result.baseline_mean else ""
        pooled = f"   pooled {mean_std_text(result.pooled[key], None)}" if key in result.pooled else ""
        print(f"{key}: {mean_std_text(result.mean[key], result.std.get(key))}{baseline}{pooled}")
    print(f"cross-validation directory: {result.cv_dir}")
    return 0


def _cmd_prepare(args) -> int:
    from tfslm.config import load_config
    from tfslm.inputs.tfrecords import DEFAULT_SHARDS, prepare

    cfg = load_config(args.config, args.overrides)
    shards = DEFAULT_SHARDS if args.shards is None else args.shards
    info = prepare(cfg, args.output, shards=shards, overwrite=args.overwrite, compression=args.compression)
    for split, entry in info["splits"].items():
        print(f"{split}: {entry['rows']} rows, longest {entry['longest']} tokens, {len(entry['shards'])} shard(s)")
    print(f"bucket edges: {info['bucket_edges']}")
    print(f"prepared: {args.output or cfg.data.tfrecord_dir} (train from it with --set data.tfrecord_dir=...)")
    return 0


def _cmd_evaluate(args) -> int:
    from tfslm.serving.predictor import evaluate_file

    _check_batch_size(args.batch_size)
    metrics = evaluate_file(args.run_dir, args.data, output_path=args.output, batch_size=args.batch_size,
                            text_column=args.text_column, label_column=args.label_column, encoding=args.encoding,
                            skip_bad_rows=args.skip_bad_rows, overwrite=args.overwrite)
    _print_metrics(metrics, args.data)
    print(f"metrics written to {metrics['output']}")
    return 0


def _cmd_predict(args) -> int:
    from tfslm.publish.hub_fetch import resolve_run
    from tfslm.serving.predictor import predict_file

    _check_batch_size(args.batch_size)
    rows = predict_file(resolve_run(args.run_dir), args.input, args.output, text_column=args.text_column, batch_size=args.batch_size,
                        encoding=args.encoding, overwrite=args.overwrite)
    print(f"wrote {rows} rows to {args.output}")
    return 0


def _cmd_export(args) -> int:
    from tfslm.serving.saved_model import export_run

    info = export_run(args.run_dir, args.output, overwrite=args.overwrite, tokenizer_ops=args.tokenizer_ops)
    if info.get("note"):
        print(f"note: {info['note']}")
    print(f"SavedModel written to {info['path']} (signatures: {', '.join(info['signatures'])})")
    return 0


def _cmd_report(args) -> int:
    from tfslm.publish.report import write_report

    paths = write_report(args.run_dir)
    plots = [p.name for k, p in paths.items() if k != "report"]
    print(f"report written to {paths['report']} (plots: {', '.join(plots) or 'none'})")
    return 0


def _cmd_push(args) -> int:
    from tfslm.publish.card import write_model_card
    from tfslm.publish.hub import push_run

    run = RunDir(args.run_dir)
    if run.is_finished() and not run.card.is_file():
        write_model_card(args.run_dir)
    url = push_run(args.run_dir, args.repo_id, private=args.private, revision=args.revision, commit_message=args.commit_message)
    print(f"pushed {args.run_dir} to {url}")
    return 0


def _cmd_demo(args) -> int:
    from tfslm.demo.app import require_gradio, serve
    from tfslm.publish.hub_fetch import resolve_run

    require_gradio()  # before any download or model load: a missing extra is a one-line error
    return serve(resolve_run(args.run_dir, revision=args.revision), host=args.host, port=args.port, share=args.share)


def _cmd_zero_shot(args) -> int:
    from tfslm.config import load_config
    from tfslm.training.zero_shot import zero_shot, zero_shot_run_dir

    cfg = load_config(args.config, args.overrides)
    metrics = zero_shot(cfg, checkpoint=args.checkpoint, template=args.template, overwrite=args.overwrite)
    for split in ("validation", "test"):
        if split in metrics:
            _print_metrics(metrics[split], split)
    print(f"run directory: {zero_shot_run_dir(cfg)}")
    return 0


def _check_batch_size(value: int) -> None:
    if value < 1:
        from tfslm.errors import ConfigError

        raise ConfigError(f"--batch-size: expected a positive integer, got {value}; pass e.g. --batch-size 32 (the default)")


def _print_metrics(metrics: dict, title: str) -> None:
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if k not in ("confusion_matrix", "per_label", "output")}
    print(f"{title}: {json.dumps(shown)}")


COMMANDS = {
    "train": _cmd_train,
    "cv": _cmd_cv,
    "prepare": _cmd_prepare,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "export": _cmd_export,
    "report": _cmd_report,
    "push": _cmd_push,
    "demo": _cmd_demo,
    "zero-shot": _cmd_zero_shot,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    debug = bool(getattr(args, "debug", False))
    if debug and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    from tfslm.training.interrupt import TrainingInterrupted, raise_on_sigterm

    raise_on_sigterm()  # docker stop, Slurm, Kubernetes: like Ctrl-C, one line and the signal's exit code
    try:
        _env.import_tensorflow(quiet=not debug)
        _setup_logging(debug)
        return COMMANDS[args.command](args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"tfslm: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except StorageError as exc:
        if debug:
            traceback.print_exc()
        print(f"tfslm: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except RemoteError as exc:
        if debug:
            traceback.print_exc()
        print(f"tfslm: error: remote: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except TrainingInterrupted as exc:
        print(f"tfslm: error: interrupted: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tfslm: error: interrupted (SIGINT); rerun the same command to resume an unfinished training", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user mistake: say so, keep it to one line
        if debug:
            traceback.print_exc()
        storage = storage_problem(exc, where=getattr(exc, "filename", None))
        if storage:  # the machine's fault, not the user's input nor a bug: exit 1 like a remote fault
            print(f"tfslm: error: {storage}", file=sys.stderr)
            return 1
        print(f"tfslm: error: internal: {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
