"""`tfslm demo` in a real browser (headless Chromium), and a pushed run loaded back by its repo id over HTTP.

The browser test starts `tfslm demo RUN_DIR` on a free loopback port, types a
text, submits, and reads back the label and probabilities, which must equal
`tfslm predict`'s; it uploads a CSV and compares the downloaded file too.
docs/demo.png is (re)written when it is missing or TFSLM_UPDATE_SCREENSHOT=1,
so the suite does not dirty the tree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, assert_one_line_error, make_rows, tiny_config_dict, write_csv
from hub_server import HubServer

TOKEN = "hf_SECRET_demo_test_token_77"
SCREENSHOT = REPO / "docs" / "demo.png"
TEXTS = ["The coach saw a great goal by the striker.", "A new theory about the molecule came out of the lab."]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    env.update(extra)
    return env


def _cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tfslm.cli", *map(str, args)], capture_output=True, text=True, check=False,
                          env=_env(**env), timeout=600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- fast checks
def test_missing_gradio_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from tfslm.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    code = main(["demo", str(tmp_path)])
    assert_one_line_error(capsys, code, 'pip install -e ".[demo]"')


def test_resolve_run_tells_paths_from_repo_ids(tmp_path):
    from tfslm.errors import RunDirError
    from tfslm.publish.hub_fetch import is_repo_id, resolve_run

    assert resolve_run(tmp_path) == tmp_path
    assert is_repo_id("tester/tiny") and not is_repo_id("runs/a/b") and not is_repo_id("../x") and not is_repo_id("x")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        resolve_run(tmp_path / "f.txt")
    assert resolve_run(tmp_path / "no" / "such") == tmp_path / "no" / "such"  # `RunDir.require` reports it


def test_a_mistyped_local_run_is_a_missing_run_dir_not_a_remote_fault(tmp_path, monkeypatch, capsys):
    # `runs/typo` also reads as owner/name: where `runs/` exists here, a failed download is the user's typo (exit 2).
    from tfslm.cli import main

    (tmp_path / "runs").mkdir()
    (tmp_path / "in.csv").write_text("text\nhello\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # nothing listens: the download fails fast
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code = main(["predict", "runs/typo", "--input", "in.csv", "--output", "out.csv"])
    assert_one_line_error(capsys, code, "run directory runs/typo not found")


def test_demo_of_a_missing_run_dir_is_one_line_exit_2(tmp_path, capsys):
    pytest.importorskip("gradio", reason='gradio is not installed (pip install -e ".[demo]")')
    from tfslm.cli import main

    assert_one_line_error(capsys, main(["demo", str(tmp_path / "no-run")]), "run directory not found")


# ---------------------------------------------------------------------- a trained run
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`tfslm train` on generated topic texts (3 labels), long enough to be confident; with `tfslm predict` of TEXTS."""
    tmp = tmp_path_factory.mktemp("demo")
    write_csv(tmp / "train.csv", make_rows(150, seed=1))
    cfg = tiny_config_dict(tmp, tmp / "train.csv", run_name="topics", model={"max_length": 24},
                           training={"epochs": 15, "learning_rate": 1e-3, "batch_size": 8})
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    result = _cli("train", tmp / "cfg.yaml", "--verbose", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    write_csv(tmp / "texts.csv", [{"text": t} for t in TEXTS])
    result = _cli("predict", tmp / "runs" / "topics", "--input", tmp / "texts.csv", "--output", tmp / "predicted.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, tmp / "runs" / "topics", pd.read_csv(tmp / "predicted.csv")


@pytest.mark.slow
def test_scorer_saved_model_equals_predictor(demo_run, tmp_path):
    from tfslm.demo.scoring import Scorer

    _, run_dir, predicted = demo_run
    served, python = Scorer.from_run(run_dir), Scorer.from_run(run_dir, prefer="predictor")
    assert served.backend == "saved_model" and python.backend == "predictor"
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("saved_model"))
    fallback = Scorer.from_run(bare)  # no SavedModel: the Python model answers, and the page says so
    assert fallback.backend == "predictor" and "tfslm.Predictor" in fallback.note
    for a, b, (_, row) in zip(served.score(TEXTS), python.score(TEXTS), predicted.iterrows()):
        assert a["label"] == b["label"] == row["predicted_label"]
        for name, p in a["probabilities"].items():
            assert abs(p - b["probabilities"][name]) < 1e-4 and abs(p - row[f"prob_{name}"]) < 1e-4


def _start_demo(target, port: int, **env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tfslm.cli", "demo", str(target), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    from conftest import wait_for

    ok = wait_for(lambda: any("http://" in line for line in lines), proc, timeout=180)
    if not ok:
        proc.kill()
        pytest.fail(f"demo did not start: {lines} {proc.stderr.read()[-3000:]}")
    url = next(line for line in lines if "http://" in line).split(" at ", 1)[1].split()[0]
    assert url.startswith(f"http://127.0.0.1:{port}")
    proc.url = url
    return proc


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _chromium() -> str | None:
    for candidate in (os.environ.get("TFSLM_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _read_result(page) -> tuple[str, dict[str, float], dict[str, float]]:
    """(label, probabilities of the result table, bar values of the gr.Label) as the page shows them."""
    page.wait_for_selector("#tfslm-result table", timeout=30000)
    label = page.locator("#tfslm-label [data-testid=label-output-value]").inner_text().strip()
    table = {}
    for row in page.locator("#tfslm-result tbody tr").all():
        cells = [c.inner_text().strip() for c in row.locator("td").all()]
        table[cells[0]] = float(cells[1])
    bars = {m.get_attribute("aria-label"): float(m.get_attribute("value")) for m in page.locator("#tfslm-label meter").all()}
    return label, table, bars


@pytest.mark.slow
def test_demo_in_a_real_browser_matches_predict(demo_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set TFSLM_CHROMIUM)")
    pytest.importorskip("gradio", reason='gradio is not installed (pip install -e ".[demo]")')
    tmp, run_dir, predicted = demo_run
    proc = _start_demo(run_dir, _free_port())
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.goto(proc.url)
            _check_text(page, predicted)
            _check_upload(page, tmp, tmp_path, predicted)
            if os.environ.get("TFSLM_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.is_file():
                page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    finally:
        code = _stop(proc)
    assert code == 0, proc.stderr.read()[-3000:]


def _check_text(page, predicted: pd.DataFrame) -> None:
    page.locator("#tfslm-text textarea").fill(TEXTS[0])
    page.locator("#tfslm-submit").click()
    label, table, bars = _read_result(page)
    row = predicted.iloc[0]
    assert label == row["predicted_label"]
    names = [c[len("prob_"):] for c in predicted.columns if c.startswith("prob_")]
    assert set(table) == set(bars) == set(names)
    for name in names:
        assert abs(table[name] - row[f"prob_{name}"]) <= 5e-5 + 1e-6  # shown to 4 decimals
        assert abs(bars[name] - row[f"prob_{name}"]) < 1e-4  # the bar's value, unrounded
    assert "Accuracy" in page.locator("#tfslm-metrics").inner_text()


def _check_upload(page, tmp: Path, tmp_path: Path, predicted: pd.DataFrame) -> None:
    page.locator("#tfslm-upload input[type=file]").set_input_files(str(tmp / "texts.csv"))
    page.wait_for_selector("#tfslm-upload .file-preview, #tfslm-upload table", timeout=30000)
    page.locator("#tfslm-score-file").click()
    link = page.locator("#tfslm-download a[download]").first
    link.wait_for(timeout=30000)
    with page.expect_download() as info:
        link.click()
    path = tmp_path / "downloaded.csv"
    info.value.save_as(str(path))
    got = pd.read_csv(path)
    assert list(got.columns) == list(predicted.columns)
    assert (got["predicted_label"] == predicted["predicted_label"]).all()
    probs = [c for c in predicted.columns if c.startswith("prob_")]
    assert np.abs(got[probs].to_numpy() - predicted[probs].to_numpy()).max() < 1e-4


# ---------------------------------------------------------------------- load back by repo id
_LOADER = r"""
import json, sys
import tfslm
from transformers import TFAutoModelForSequenceClassification
from tfslm.demo.scoring import Scorer
from tfslm.publish.hub_fetch import resolve_run

repo, text = sys.argv[1], sys.argv[2]
model = TFAutoModelForSequenceClassification.from_pretrained(repo)
classify = tfslm.text_classification_pipeline(repo, top_k=None)
scorer = Scorer.from_run(resolve_run(repo))
print(json.dumps({"id2label": {str(k): v for k, v in model.config.id2label.items()},
                  "pipeline": {d["label"]: d["score"] for d in classify(text)[0]},
                  "backend": scorer.backend, "scorer": scorer.score([text])[0]}))
"""


@pytest.mark.slow
def test_pushed_run_loads_back_by_repo_id(demo_run, tmp_path):
    tmp, run_dir, predicted = demo_run
    with HubServer(tokens={TOKEN}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf")}
        pushed = _cli("push", run_dir, "--repo-id", "tester/topics", **env)
        assert pushed.returncode == 0, pushed.stderr[-2000:]
        fresh = {**env, "HF_HOME": str(tmp_path / "hf-fresh")}  # an empty cache: everything comes over HTTP
        loaded = subprocess.run([sys.executable, "-c", _LOADER, "tester/topics", TEXTS[0]], capture_output=True,
                                text=True, check=False, env=_env(**fresh), timeout=600)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        out = json.loads(loaded.stdout.strip().splitlines()[-1])
        row = predicted.iloc[0]
        assert out["backend"] == "saved_model" and out["scorer"]["label"] == row["predicted_label"]
        for name, p in out["pipeline"].items():
            assert abs(p - row[f"prob_{name}"]) < 1e-4 and abs(out["scorer"]["probabilities"][name] - p) < 1e-4
        assert any(p.startswith("/tester/topics/resolve/") and "/saved_model/" in p for p in hub.paths("HEAD"))  # the subfolder came too

        result = _cli("predict", "tester/topics", "--input", tmp / "texts.csv", "--output", tmp_path / "by-id.csv", **fresh)
        assert result.returncode == 0, result.stderr[-2000:]
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "by-id.csv"), predicted)

        proc = _start_demo("tester/topics", _free_port(), **fresh)
        import urllib.request

        assert urllib.request.urlopen(proc.url, timeout=30).status == 200
        assert _stop(proc) == 0

        missing = _cli("predict", "tester/nope", "--input", tmp / "texts.csv", "--output", tmp_path / "x.csv", **fresh)
        last = missing.stderr.strip().splitlines()[-1]
        assert missing.returncode == 1 and last.startswith("tfslm: error: remote:") and "tester/nope" in last, missing.stderr
        assert "repository not found" in last and TOKEN not in missing.stderr + missing.stdout
        wrong = "hf_wrong_demo_token_000"
        refused = _cli("predict", "tester/topics", "--input", tmp / "texts.csv", "--output", tmp_path / "y.csv",
                       **{**fresh, "HF_HOME": str(tmp_path / "hf-3"), "HF_TOKEN": wrong})
        last = refused.stderr.strip().splitlines()[-1]
        assert refused.returncode == 1 and "refused (401)" in last and wrong not in refused.stderr + refused.stdout, refused.stderr
    closed = _cli("predict", "tester/topics", "--input", tmp / "texts.csv", "--output", tmp_path / "z.csv",
                  **{**fresh, "HF_HOME": str(tmp_path / "hf-4"), "HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}"})
    last = closed.stderr.strip().splitlines()[-1]
    assert closed.returncode == 1 and last.startswith("tfslm: error: remote:") and "unreachable" in last, closed.stderr
    assert "Traceback" not in closed.stderr
