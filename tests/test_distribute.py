"""Strategy resolution, and real multi-replica / multi-worker training in separate processes on loopback."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_rows, tiny_config_dict, write_csv
from tfslm.config import TrainingConfig, config_from_dict
from tfslm.training.distribute import _worker_position, cluster_spec, resolve_strategy, tpu_requested
from tfslm.errors import ConfigError

GLOBAL_BATCH = 16


# --- resolution, in process -------------------------------------------------------------------

def test_default_strategy_has_one_replica_and_global_batch_equals_batch():
    dist = resolve_strategy(TrainingConfig())
    assert dist.kind == "default" and dist.num_replicas == 1 and dist.is_chief
    assert dist.global_batch_size(16) == 16
    assert dist.to_dict(16)["global_batch_size"] == 16


def test_tf_config_parsing():
    assert cluster_spec({}) is None
    one = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    assert cluster_spec({"TF_CONFIG": json.dumps(one)}) is None  # a cluster of one is not multi-worker
    two = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_spec({"TF_CONFIG": json.dumps(two)})["task"]["index"] == 1
    assert _worker_position(two) == (2, 1, False)
    assert _worker_position({**two, "task": {"type": "worker", "index": 0}}) == (2, 0, True)
    with_chief = {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}
    assert _worker_position(with_chief) == (2, 1, False)  # with a chief, worker 0 is not the writer
    with pytest.raises(ConfigError, match="TF_CONFIG: not valid JSON"):
        cluster_spec({"TF_CONFIG": "{cluster:"})
    with pytest.raises(ConfigError, match="task worker 5 is not in the cluster"):
        cluster_spec({"TF_CONFIG": json.dumps({**two, "task": {"type": "worker", "index": 5}})})


def test_tpu_is_only_probed_when_named_or_local():
    assert tpu_requested(TrainingConfig(tpu="my-tpu"), environ={}) == "my-tpu"
    assert tpu_requested(TrainingConfig(), environ={"TPU_NAME": "pod-1"}) == "pod-1"
    if not Path("/dev/accel0").exists():
        assert tpu_requested(TrainingConfig(), environ={}) is None


def test_unreachable_tpu_address_fails_fast_with_one_line():
    port = _free_port()  # nothing listens there
    with pytest.raises(ConfigError, match=rf"training.tpu: grpc://127.0.0.1:{port} is not reachable"):
        resolve_strategy(TrainingConfig(strategy="tpu", tpu=f"grpc://127.0.0.1:{port}"))


def test_tpu_path_connects_initialises_then_builds_the_strategy(monkeypatch):
    """The TPU calls, in order, with TensorFlow's TPU entry points recorded instead of run (no TPU here)."""
    import tensorflow as tf

    calls = []

    class FakeResolver:
        def __init__(self, tpu=None):
            calls.append(("resolver", tpu))

    class FakeStrategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver):
            calls.append(("strategy", type(resolver).__name__))

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: calls.append(("connect", type(r).__name__)))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: calls.append(("initialize", type(r).__name__)))
    monkeypatch.setattr(tf.distribute, "TPUStrategy", FakeStrategy)
    dist = resolve_strategy(TrainingConfig(tpu="my-tpu"))  # auto + a TPU name -> TPU
    assert calls == [("resolver", "my-tpu"), ("connect", "FakeResolver"), ("initialize", "FakeResolver"), ("strategy", "FakeResolver")]
    assert dist.kind == "tpu" and dist.device_kind == "tpu" and dist.global_batch_size(16) == 128

    from tfslm.training.performance import DeviceInfo, resolve_performance

    perf = resolve_performance(TrainingConfig(static_shapes=True), device=DeviceInfo("tpu", "TPU"))
    assert (perf.mixed_precision, perf.jit_compile, perf.steps_per_execution) == ("bf16", True, 32)


def test_strategy_errors_name_the_key():
    with pytest.raises(ConfigError, match="training.strategy: gpu, but TensorFlow sees no GPU"):
        resolve_strategy(TrainingConfig(strategy="gpu"))
    with pytest.raises(ConfigError, match="multi_worker needs TF_CONFIG"):
        resolve_strategy(TrainingConfig(strategy="multi_worker"))
    # TensorFlow already runs in this test process: logical CPUs cannot be added any more.
    with pytest.raises(ConfigError, match="training.cpu_replicas: 7 logical CPUs asked"):
        resolve_strategy(TrainingConfig(strategy="mirrored", cpu_replicas=7))
    with pytest.raises(ConfigError, match="training.strategy: got 'horovod'"):
        config_from_dict({"data": {"train_file": "t.csv"}, "model": {"architecture": "bert"}, "training": {"strategy": "horovod"}})


# --- real processes -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _history(run_dir: Path) -> list[dict]:
    with open(run_dir / "logs" / "history.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def cluster_setup(tmp_path_factory):
    """Data whose train split is a multiple of the global batch, and the single-device reference run.

    Dropout is off (replicas would draw different masks) and precision is
    float32, so a multi-replica run must match the single-device run.
    """
    tmp = tmp_path_factory.mktemp("distribute")
    train = write_csv(tmp / "train.csv", make_rows(10 * GLOBAL_BATCH, seed=1))
    validation = write_csv(tmp / "validation.csv", make_rows(40, seed=2))

    def config(run_name: str, **training) -> Path:
        cfg = tiny_config_dict(tmp, train, run_name=run_name)
        cfg["data"]["validation_file"] = str(validation)
        cfg["model"]["dropout"] = 0.0
        cfg["training"].update({"learning_rate": 5e-3, "mixed_precision": "off", "batch_size": GLOBAL_BATCH, **training})
        path = tmp / f"{run_name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    import tfslm

    reference = tfslm.train(tfslm.load_config(config("single")))
    return tmp, config, reference


@pytest.mark.slow
def test_mirrored_two_cpu_replicas_match_single_device(cluster_setup):
    tmp, config, reference = cluster_setup
    path = config("mirrored", strategy="mirrored", cpu_replicas=2, batch_size=GLOBAL_BATCH // 2)
    proc = subprocess.run([sys.executable, "-m", "tfslm.cli", "train", str(path), "--set", "export.saved_model=false"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "strategy: mirrored (set in config), 2 replica(s); batch 8 per replica, 16 global" in proc.stderr
    run_dir = tmp / "runs" / "mirrored"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["distribution"]["replicas"] == 2 and metrics["training"]["global_batch_size"] == GLOBAL_BATCH
    assert metrics["training"]["steps_per_epoch"] == reference.metrics["training"]["steps_per_epoch"] == 10

    ours, ref = _history(run_dir), _history(reference.run_dir)
    assert len(ours) == len(ref) == 2
    assert ref[1]["val_loss"] < ref[0]["val_loss"]  # it trains, so matching means something
    for mine, theirs in zip(ours, ref):
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)


@pytest.mark.slow
def test_two_worker_cluster_trains_and_only_the_chief_writes(cluster_setup, tmp_path):
    tmp, config, reference = cluster_setup
    path = config("cluster", strategy="multi_worker", batch_size=GLOBAL_BATCH // 2)
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        # Each worker's temporary directory goes under its own TMPDIR, so the test can see it was removed.
        worker_tmp = tmp_path / f"tmp{index}"
        worker_tmp.mkdir()
        procs.append(subprocess.Popen([sys.executable, "-m", "tfslm.cli", "train", str(path)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=_env(TF_CONFIG=tf_config, TMPDIR=str(worker_tmp))))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400))
    finally:
        for proc in procs:
            proc.kill()
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    assert "worker done; the chief wrote the run directory" in outputs[1][0]
    assert "worker 1 of 2 (writes nothing)" in outputs[1][1]

    run_dir = tmp / "runs" / "cluster"
    for artefact in ("metrics.json", "model/config.json", "saved_model/saved_model.pb", "README.md", "logs/history.csv"):
        assert (run_dir / artefact).is_file(), artefact
    assert not any((tmp_path / "tmp1").iterdir()), "the worker's temporary run directory was not removed"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["distribution"]["workers"] == 2 and metrics["training"]["global_batch_size"] == GLOBAL_BATCH

    # Each worker takes half of every global batch, so the cluster computes the single-device run.
    ours, ref = _history(run_dir), _history(reference.run_dir)
    assert len(ours) == len(ref) == 2
    for mine, theirs in zip(ours, ref):
        assert mine["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)


def _start_cluster(path: Path, workers: list[str], tmp_path: Path, attempt: str) -> list[subprocess.Popen]:
    procs = []
    for index in range(len(workers)):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        worker_tmp = tmp_path / f"{attempt}-tmp{index}"
        worker_tmp.mkdir()
        log = open(tmp_path / f"{attempt}-worker{index}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "tfslm.cli", "train", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                      env=_env(TF_CONFIG=tf_config, TMPDIR=str(worker_tmp))))
    return procs


def _wait(procs, timeout: float) -> list[int]:
    try:
        return [proc.wait(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()


@pytest.mark.slow
def test_killed_worker_restarts_and_the_cluster_resumes(cluster_setup, tmp_path):
    """kill -9 a worker in epoch 2: the chief stops with one line; restarted, the cluster resumes from the backup."""
    import time

    tmp, config, _ = cluster_setup
    path = config("rejoin", strategy="multi_worker", batch_size=GLOBAL_BATCH // 2, epochs=3, backup_every_steps=2)
    run_dir = tmp / "runs" / "rejoin"
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = _start_cluster(path, workers, tmp_path, "first")
    history = run_dir / "logs" / "history.csv"
    deadline = time.time() + 300
    try:
        while not (history.is_file() and len(history.read_text().splitlines()) >= 2):  # epoch 1 done
            assert time.time() < deadline, (tmp_path / "first-worker0.log").read_text()[-2000:]
            assert procs[0].poll() is None, (tmp_path / "first-worker0.log").read_text()[-2000:]
            time.sleep(0.2)
        procs[1].kill()  # SIGKILL: no cleanup, no goodbye to the chief
        chief_rc = procs[0].wait(timeout=240)  # TensorFlow's health check notices within about a minute
    finally:
        for proc in procs:
            proc.kill()
    chief_log = (tmp_path / "first-worker0.log").read_text()
    assert chief_rc == 1, chief_log[-2000:]
    assert "another worker of the cluster stopped or is unreachable" in chief_log and "Traceback" not in chief_log
    assert not (run_dir / "metrics.json").exists()

    # The cluster manager's part: start every worker again with the same command.
    codes = _wait(_start_cluster(path, workers, tmp_path, "second"), timeout=400)
    assert codes == [0, 0], (tmp_path / "second-worker0.log").read_text()[-2000:]
    assert "resuming from epoch" in (tmp_path / "second-worker0.log").read_text()
    assert [int(row["epoch"]) for row in _history(run_dir)] == [0, 1, 2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 3 and metrics["resumed_from"]["epoch"] >= 2
    assert not (run_dir / "backup").exists()
