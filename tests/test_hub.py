"""push_run against a real HTTP server speaking the Hub protocol (tests/hub_server.py)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from tfslm.errors import ConfigError, RemoteError, RunDirError, UserError
from tfslm.publish.hub import HubAuthError, collect_run_files, push_run

from hub_server import HubServer, hub_server  # noqa: F401  (pytest fixture)

TOKEN = "hf_SECRET_test_token_123"
REPO = "tester/tiny-sentiment"

EXPECTED = {
    # repo path: (local path relative to the run dir, LFS?)
    "config.json": ("model/config.json", False),
    "tf_model.h5": ("model/tf_model.h5", True),
    "tokenizer.json": ("model/tokenizer.json", False),
    "tokenizer_config.json": ("model/tokenizer_config.json", False),
    "special_tokens_map.json": ("model/special_tokens_map.json", False),
    "vocab.txt": ("model/vocab.txt", False),
    "labels.json": ("labels.json", False),
    "README.md": ("README.md", False),
    "metrics.json": ("metrics.json", False),
    "config.yaml": ("config.yaml", False),
    "saved_model/saved_model.pb": ("saved_model/saved_model.pb", True),
    "saved_model/fingerprint.pb": ("saved_model/fingerprint.pb", True),
    "saved_model/variables/variables.data-00000-of-00001": (
        "saved_model/variables/variables.data-00000-of-00001", True),
    "saved_model/variables/variables.index": ("saved_model/variables/variables.index", True),
    "saved_model/assets/vocab.txt": ("saved_model/assets/vocab.txt", True),
}


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory shaped like the one training writes, with small stand-in files."""
    run = tmp_path / "runs" / "tiny"
    rng = hashlib.sha256(b"seed")
    blob = b"".join(hashlib.sha256(rng.digest() + bytes([i % 256, i // 256])).digest() for i in range(6400))
    _write(run / "model" / "config.json", '{"model_type": "bert", "num_labels": 2}\n')
    _write(run / "model" / "tf_model.h5", b"\x89HDF\r\n\x1a\n\x00\x00" + blob)  # ~200 KB binary -> LFS
    _write(run / "model" / "tokenizer.json", '{"version": "1.0", "model": {"type": "WordPiece"}}\n')
    _write(run / "model" / "tokenizer_config.json", '{"do_lower_case": true}\n')
    _write(run / "model" / "special_tokens_map.json", '{"cls_token": "[CLS]"}\n')
    _write(run / "model" / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ngood\nbad\n")
    _write(run / "labels.json", '["negative", "positive"]\n')
    _write(run / "README.md", "---\nlicense: apache-2.0\nlibrary_name: tfslm\n---\n# tiny-sentiment\n")
    _write(run / "metrics.json", '{"accuracy": 0.5}\n')
    _write(run / "config.yaml", "model:\n  name: tiny\ntraining:\n  epochs: 1\n")
    _write(run / "saved_model" / "saved_model.pb", b"\x08\x01\x12" + blob[:3000])
    _write(run / "saved_model" / "fingerprint.pb", b"\x08\x02" + blob[:50])
    _write(run / "saved_model" / "variables" / "variables.data-00000-of-00001", blob[:20000])
    _write(run / "saved_model" / "variables" / "variables.index", b"\x00\x01index" + blob[:100])
    _write(run / "saved_model" / "assets" / "vocab.txt", "good\nbad\n")
    _write(run / "logs" / "train.log", "epoch 1 loss 0.69\n")
    _write(run / "logs" / "events.out.tfevents.1", blob[:500])
    _write(run / "checkpoints" / "ckpt-1.index", blob[:64])
    _write(run / "backup" / "config.yaml", "old\n")
    _write(run / "model" / ".DS_Store", b"junk")
    return run


@pytest.fixture(autouse=True)
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No real token or endpoint leaks in: a private HF_HOME and no HF_* variables."""
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import reset_sessions

    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    # huggingface_hub resolved the token path from HF_HOME at import time: point it here too.
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # The suite runs offline (tests/conftest.py sets HF_HUB_OFFLINE=1 before huggingface_hub is
    # imported); these tests talk to a local server, so lift that for them only.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()  # sessions cached by earlier tests may carry the offline adapter
    yield home
    reset_sessions()


def _digest(run: Path) -> dict[str, str]:
    return {
        p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*")) if p.is_file()
    }


def _assert_clean_one_liner(exc: BaseException, endpoint: str, caplog, capsys) -> str:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert endpoint in message, message
    captured = capsys.readouterr()
    for text in (message, repr(exc), caplog.text, captured.out, captured.err):
        assert TOKEN not in text
    assert exc.__cause__ is None and exc.__context__ is None  # nothing token-bearing chained
    return message


def _assert_pushed(hub: HubServer, run: Path, revision: str = "main", message: str | None = None) -> dict:
    assert len(hub.commits) == 1, hub.commits
    commit = hub.last_commit()
    assert commit["repo_id"] == REPO
    assert commit["revision"] == revision
    if message is not None:
        assert commit["summary"] == message
    assert set(commit["files"]) == set(EXPECTED)
    for repo_path, (local, lfs) in EXPECTED.items():
        data = (run / local).read_bytes()
        got = commit["files"][repo_path]
        assert got["size"] == len(data), repo_path
        assert got["sha256"] == hashlib.sha256(data).hexdigest(), repo_path
        assert got["lfs"] is lfs, repo_path
    return commit


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- success


def test_collect_run_files_skips_logs_checkpoints_and_hidden(run_dir: Path) -> None:
    files = collect_run_files(run_dir)
    assert set(files) == set(EXPECTED)
    assert files["README.md"] == run_dir / "README.md"


def test_push_uploads_run_in_one_commit(hub_server: HubServer, run_dir: Path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    before = _digest(run_dir)
    url = push_run(run_dir, REPO, private=True, revision="experiment-1", commit_message="First push",
                   token=TOKEN, endpoint=hub_server.url, timeout=5)

    commit = _assert_pushed(hub_server, run_dir, revision="experiment-1", message="First push")
    assert url == f"{hub_server.url}/{REPO}/commit/{commit['oid']}"
    assert hub_server.created == [{"repo_id": REPO, "private": True, "type": "model"}]
    assert hub_server.branches_created == [(REPO, "experiment-1")]
    # The client offered xet (hf_xet is installed) but this server chose plain LFS.
    assert all("xet" in b["transfers"] and b["ref"] == {"name": "experiment-1"} for b in hub_server.lfs_batches)
    assert {p for _, p, _ in hub_server.requests if p.startswith("/lfs-storage/")}
    # Every Hub API call carried the token; the LFS PUTs (presigned storage URLs) carried none.
    for call in hub_server.calls:
        expected = None if call["path"].startswith("/lfs-storage/") else f"Bearer {TOKEN}"
        assert call["authorization"] == expected, call
    assert all(status < 400 for _, _, status in hub_server.requests), hub_server.requests
    assert _digest(run_dir) == before
    out = capsys.readouterr()
    assert TOKEN not in caplog.text + out.out + out.err


def test_push_defaults_to_main_public_and_hf_endpoint_env(
    hub_server: HubServer, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants
    from huggingface_hub import lfs
    from huggingface_hub.utils import _http

    endpoint_before, backoff_before = constants.ENDPOINT, lfs.http_backoff
    factory_before = _http._GLOBAL_BACKEND_FACTORY
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url + "/")  # read at call time, not import time
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    url = push_run(run_dir, REPO)

    commit = _assert_pushed(hub_server, run_dir, revision="main")
    assert commit["summary"] == "Upload tfslm run tiny"
    assert url.startswith(hub_server.url + "/")
    assert hub_server.created == [{"repo_id": REPO, "private": False, "type": "model"}]
    assert hub_server.branches_created == []
    assert not any("/branch/" in p for p in hub_server.paths())
    # process-wide huggingface_hub settings are restored after the push
    assert constants.ENDPOINT == endpoint_before
    assert lfs.http_backoff is backoff_before
    assert _http._GLOBAL_BACKEND_FACTORY is factory_before


def test_push_uses_stored_login_token(hub_server: HubServer, run_dir: Path, hf_env: Path) -> None:
    (hf_env / "token").write_text(TOKEN)
    push_run(run_dir, REPO, endpoint=hub_server.url)
    assert len(hub_server.commits) == 1
    assert set(hub_server.auth_headers) <= {f"Bearer {TOKEN}", None}


def test_second_push_to_existing_repo_adds_a_commit(hub_server: HubServer, run_dir: Path) -> None:
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url)
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, revision="main")
    assert len(hub_server.commits) == 2
    assert len(hub_server.created) == 1  # the second create_repo got 409 and went on
    # LFS objects already stored: the second push re-uploads no bytes
    puts = [p for m, p, _ in hub_server.requests if m == "PUT"]
    assert len(puts) == sum(1 for _, lfs in EXPECTED.values() if lfs)


def test_whoami_route_speaks_the_client_protocol(hub_server: HubServer) -> None:
    from huggingface_hub import HfApi

    assert HfApi(endpoint=hub_server.url, token=TOKEN).whoami()["name"] == "tester"


# --------------------------------------------------------------------------- validation


def test_no_token_is_a_user_error_before_any_request(hub_server: HubServer, run_dir: Path) -> None:
    with pytest.raises(HubAuthError) as info:
        push_run(run_dir, REPO, endpoint=hub_server.url)
    assert isinstance(info.value, UserError)
    assert "HF_TOKEN" in str(info.value) and "huggingface-cli login" in str(info.value)
    assert hub_server.requests == []


@pytest.mark.parametrize("layout", ["missing", "no_model", "empty_model"])
def test_bad_run_dir_is_run_dir_error(hub_server: HubServer, tmp_path: Path, layout: str) -> None:
    run = tmp_path / "runs" / "broken"
    if layout != "missing":
        (run / "logs").mkdir(parents=True)
    if layout == "empty_model":
        (run / "model").mkdir()
    with pytest.raises(RunDirError) as info:
        push_run(run, REPO, token=TOKEN, endpoint=hub_server.url)
    assert str(run) in str(info.value)
    assert hub_server.requests == []


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "me/bad name", "me/x--y", "me/.hidden", "", "me/m.git"])
def test_bad_repo_id_is_config_error(hub_server: HubServer, run_dir: Path, repo_id: str) -> None:
    with pytest.raises(ConfigError):
        push_run(run_dir, repo_id, token=TOKEN, endpoint=hub_server.url)
    assert hub_server.requests == []


@pytest.mark.parametrize("kwargs", [{"endpoint": "ftp://hub"}, {"timeout": 0}, {"timeout": -1.0}])
def test_bad_endpoint_or_timeout_is_config_error(hub_server: HubServer, run_dir: Path, kwargs: dict) -> None:
    kwargs.setdefault("endpoint", hub_server.url)
    with pytest.raises(ConfigError):
        push_run(run_dir, REPO, token=TOKEN, **kwargs)
    assert hub_server.requests == []


def test_offline_mode_is_a_user_error_without_requests(
    hub_server: HubServer, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as info:
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url)
    assert "HF_HUB_OFFLINE" in str(info.value) and hub_server.url in str(info.value)
    assert hub_server.requests == []


# --------------------------------------------------------------------------- failures


def test_rejected_token_401(run_dir: Path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    before = _digest(run_dir)
    with HubServer(tokens={"hf_the_right_token"}) as hub:
        with pytest.raises(HubAuthError) as info:
            push_run(run_dir, REPO, token=TOKEN, endpoint=hub.url, timeout=5)
        message = _assert_clean_one_liner(info.value, hub.url, caplog, capsys)
        assert "401" in message and "rejected the token" in message
        assert hub.commits == []
        hub.tokens.add(TOKEN)  # the user fixes the token and retries
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub.url, timeout=5)
        _assert_pushed(hub, run_dir)
    assert _digest(run_dir) == before


@pytest.mark.parametrize(
    ("status", "path_regex", "error_type", "words"),
    [
        (401, r"/api/repos/create", HubAuthError, "rejected the token"),
        (403, None, HubAuthError, "no write access"),
        (500, r"/api/repos/create", RemoteError, "HTTP 500"),
        (503, r"/commit/", RemoteError, "HTTP 503"),  # after the LFS bytes went up
        (502, r"/preupload/", RemoteError, "HTTP 502"),
    ],
)
def test_http_failures_are_one_line_and_token_free(
    hub_server: HubServer, run_dir: Path, caplog, capsys, status, path_regex, error_type, words
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _digest(run_dir)
    # A server that echoes the credentials back in its error text: still must not leak.
    hub_server.fail(status, times=None, path_regex=path_regex,
                    message=f"denied for Authorization: Bearer {TOKEN}\nsecond line")
    started = time.monotonic()
    with pytest.raises(error_type) as info:
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    assert time.monotonic() - started < 5  # no slow client retry loop
    message = _assert_clean_one_liner(info.value, hub_server.url, caplog, capsys)
    assert words in message and "***" in message
    assert hub_server.commits == []
    assert _digest(run_dir) == before

    hub_server.clear_faults()
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    _assert_pushed(hub_server, run_dir)
    assert _digest(run_dir) == before


def test_connection_refused_is_remote_error(run_dir: Path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(RemoteError) as info:
        push_run(run_dir, REPO, token=TOKEN, endpoint=endpoint, timeout=2)
    message = _assert_clean_one_liner(info.value, endpoint, caplog, capsys)
    assert "connection refused" in message


@pytest.mark.slow
def test_timeout_is_remote_error_and_retry_succeeds(hub_server: HubServer, run_dir: Path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    before = _digest(run_dir)
    hub_server.hang(4.0, times=1, path_regex=r"/api/repos/create")
    started = time.monotonic()
    with pytest.raises(RemoteError) as info:
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=1)
    assert time.monotonic() - started < 3
    message = _assert_clean_one_liner(info.value, hub_server.url, caplog, capsys)
    assert "timed out" in message and "1 s" in message
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    _assert_pushed(hub_server, run_dir)
    assert _digest(run_dir) == before


@pytest.mark.slow
def test_hanging_lfs_storage_fails_in_bounded_time(hub_server: HubServer, run_dir: Path, caplog, capsys) -> None:
    weights_oid = hashlib.sha256((run_dir / "model" / "tf_model.h5").read_bytes()).hexdigest()
    hub_server.hang(3.0, times=None, path_regex=rf"^/lfs-storage/{weights_oid}$")
    started = time.monotonic()
    with pytest.raises(RemoteError) as info:
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=0.5)
    # 3 tries x 0.5 s + 0.5 s + 1 s of backoff (not huggingface_hub's 6 tries + 1+2+4+8+8 s)
    assert time.monotonic() - started < 5
    message = _assert_clean_one_liner(info.value, hub_server.url, caplog, capsys)
    assert "timed out" in message and "/lfs-storage/" in message
    assert hub_server.commits == []
    hub_server.clear_faults()
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    _assert_pushed(hub_server, run_dir)


def test_no_token_written_anywhere(hub_server: HubServer, run_dir: Path, tmp_path: Path) -> None:
    hub_server.fail(500, path_regex=r"/commit/")
    with pytest.raises(RemoteError):
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url, timeout=5)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert not os.environ.get("HF_TOKEN")


def test_an_unfinished_run_is_refused_before_any_request(hub_server: HubServer, run_dir: Path) -> None:
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunDirError, match="did not finish .*rerun the same `tfslm train`"):
        push_run(run_dir, REPO, token=TOKEN, endpoint=hub_server.url)
    assert hub_server.requests == []


def test_check_push_before_training(hub_server: HubServer, monkeypatch) -> None:
    from tfslm.publish.hub import check_push

    hub_server.tokens = {TOKEN}
    assert check_push(REPO, token=TOKEN, endpoint=hub_server.url) != ""  # whoami answered for the token
    with pytest.raises(HubAuthError):
        check_push(REPO, token="hf_not_the_right_one", endpoint=hub_server.url)
    with pytest.raises(ConfigError):
        check_push("no-namespace", token=TOKEN, endpoint=hub_server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(HubAuthError, match="HF_TOKEN"):
        check_push(REPO, endpoint=hub_server.url)
    # Unreachable endpoint: only a warning; the push after training tries again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    assert check_push(REPO, token=TOKEN, endpoint=closed, timeout=2) == ""


def test_train_with_hub_push_and_no_token_fails_before_training(tmp_path, monkeypatch, capsys, train_csv) -> None:
    import yaml

    from conftest import assert_one_line_error, tiny_config_dict
    from tfslm.cli import main

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    config = tmp_path / "push.yaml"
    config.write_text(yaml.safe_dump(tiny_config_dict(tmp_path, train_csv, hub={"push": True, "repo_id": "me/tiny"})))
    code = main(["train", str(config)])
    assert_one_line_error(capsys, code, "no Hugging Face token")
    assert not (tmp_path / "runs" / "tiny").exists()  # nothing trained, nothing written
