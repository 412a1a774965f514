"""``hub.push: epoch``: the best-so-far model pushed in the background during training, over real HTTP."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config_dict
from hub_server import hub_server  # noqa: F401  (pytest fixture)
from tfslm.config import config_from_dict, hub_push_mode

TOKEN = "hf_SECRET_test_token_123"  # the one tests/hub_server.py accepts
REPO = "tester/tiny-epochs"


def test_hub_push_modes() -> None:
    def mode(value):
        return hub_push_mode(config_from_dict({"data": {"train_file": "t.csv"}, "model": {"architecture": "bert"}, "hub": {"push": value, "repo_id": REPO}}).hub)

    assert [mode(v) for v in (False, True, "end", "epoch")] == ["false", "end", "end", "epoch"]
    with pytest.raises(Exception, match="expected false, end"):
        mode("always")


def test_only_the_latest_snapshot_waits_behind_a_running_push(tmp_path, monkeypatch) -> None:
    from tfslm.training.hub_push import EpochHubPush

    release, started, pushed = threading.Event(), threading.Event(), []

    def slow_push(run_dir, repo_id, **kwargs):
        started.set()
        release.wait(10)
        pushed.append(kwargs["commit_message"])
        return "url"

    monkeypatch.setattr("tfslm.publish.hub.push_run", slow_push)
    pusher = EpochHubPush(tmp_path, REPO, None, monitor="val_macro_f1")
    snapshots = [tmp_path / f"s{i}" for i in range(3)]
    for i, snap in enumerate(snapshots):
        snap.mkdir()
        pusher._submit(i + 1, snap, f"epoch {i + 1}")
        if i == 0:
            assert started.wait(5)  # epoch 1 is uploading; 2 then 3 queue behind it
    release.set()
    pusher.wait(10)
    assert pushed == ["epoch 1", "epoch 3"] and pusher.pushed == [1, 3]
    assert not any(s.exists() for s in snapshots)  # every snapshot is cleaned up, pushed or dropped


def _train(tmp_path: Path, train_csv: Path, server, monkeypatch, epochs: int = 3):
    from huggingface_hub import constants

    from tfslm.training.fit import train

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite is offline; this server is local
    from huggingface_hub.utils import reset_sessions

    reset_sessions()  # sessions cached by earlier tests may carry the offline adapter
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    cfg = tiny_config_dict(tmp_path, train_csv, hub={"push": "epoch", "repo_id": REPO},
                           training={"epochs": epochs, "early_stopping_patience": 5})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return train(config_from_dict(cfg), verbose=0)


@pytest.mark.slow
def test_epoch_pushes_then_the_final_push(tmp_path, train_csv, hub_server, monkeypatch, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="tfslm")
    result = _train(tmp_path, train_csv, hub_server, monkeypatch)
    summaries = [c["summary"] for c in hub_server.commits]
    epoch_commits = [s for s in summaries if s.startswith("epoch ")]
    assert epoch_commits and summaries[-1].startswith("Upload tfslm run")  # the final push lands last
    assert len(epoch_commits) <= result.metrics["epochs_trained"]
    first = hub_server.commits[0]["files"]
    assert {"config.json", "tf_model.h5", "labels.json", "metrics.json"} <= set(first)
    assert "README.md" in hub_server.last_commit()["files"]
    assert TOKEN not in caplog.text


@pytest.mark.slow
def test_a_failed_epoch_push_does_not_stop_training(tmp_path, train_csv, hub_server, monkeypatch, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="tfslm")
    hub_server.fail(500, times=1, path_regex=r"/commit/", message="disk full")
    result = _train(tmp_path, train_csv, hub_server, monkeypatch, epochs=2)
    assert result.metrics["epochs_trained"] == 2
    failed = [r.getMessage() for r in caplog.records if "not pushed" in r.getMessage()]
    assert len(failed) == 1 and "\n" not in failed[0] and "HTTP 500" in failed[0]
    assert hub_server.last_commit()["summary"].startswith("Upload tfslm run")  # the final push still ran
    assert TOKEN not in caplog.text
