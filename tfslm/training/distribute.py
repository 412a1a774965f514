"""Which ``tf.distribute`` strategy a run uses, decided in one place, and what follows from it.

``training.strategy`` (``auto`` by default) resolves as follows:

- ``tpu``: ``TPUClusterResolver(training.tpu)`` → ``experimental_connect_to_cluster``
  → ``initialize_tpu_system`` → ``TPUStrategy``. ``auto`` picks it when a
  TPU is named (``training.tpu``, ``TPU_NAME``) or the machine is a TPU VM
  (``/dev/accel*`` or ``/dev/vfio`` devices): probing Google's metadata server
  from anywhere else would stall on a closed network.
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the cluster that
  ``TF_CONFIG`` describes; ``auto`` picks it when ``TF_CONFIG`` names more
  than one task.
- ``mirrored``: ``MirroredStrategy`` over all GPUs, or over
  ``training.cpu_replicas`` logical CPU devices when there is no GPU (the CPU
  is split before TensorFlow initialises; it is how the multi-replica path
  is tested on a laptop). ``auto`` picks it with 2+ GPUs or ``cpu_replicas > 1``.
- ``gpu``: the first GPU (``OneDeviceStrategy``); ``cpu``: GPUs hidden, the
  default strategy.
- otherwise the default strategy (one device).

``training.batch_size`` is per replica: the global batch is
``batch_size × num_replicas_in_sync``, computed once here
(:meth:`Distribution.global_batch_size`); the input pipeline batches by the
global batch and the learning-rate schedule counts global (optimizer) steps.

Only the chief writes: :attr:`Distribution.is_chief` is false on the other
workers of a multi-worker cluster, which run every step (collective ops need
all workers) but write into a temporary directory that is removed.

Example:
    >>> dist = resolve_strategy(cfg.training)                   # doctest: +SKIP
    >>> with dist.scope():                                      # doctest: +SKIP
    ...     model, tokenizer = build_model(cfg.model, data.labels)
    >>> dist.global_batch_size(cfg.training.batch_size)         # doctest: +SKIP
    32
"""

from __future__ import annotations

import glob
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from tfslm.errors import ConfigError

__all__ = [
    "Distribution", "resolve_strategy", "cluster_spec", "split_cpu", "tpu_requested",
    "shard_options", "with_shard_policy", "shard_by_data",
]

log = logging.getLogger("tfslm")


@dataclass
class Distribution:
    """A resolved strategy and the facts the rest of a run needs from it."""

    strategy: Any
    kind: str  # default | cpu | gpu | mirrored | multi_worker | tpu
    reason: str
    num_workers: int = 1
    worker_index: int = 0
    is_chief: bool = True
    devices: list[str] = field(default_factory=list)

    @property
    def num_replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def device_kind(self) -> str:
        """``tpu``, ``gpu`` or ``cpu``: what :func:`tfslm.training.performance.resolve_performance` tunes for."""
        if self.kind == "tpu":
            return "tpu"
        return "gpu" if any("GPU" in d.upper() for d in self.devices) else "cpu"

    def global_batch_size(self, per_replica: int) -> int:
        return int(per_replica) * self.num_replicas

    def scope(self):
        """``strategy.scope()``: build the model, optimizer and metrics inside it."""
        return self.strategy.scope()

    def to_dict(self, per_replica_batch: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "strategy": self.kind,
            "reason": self.reason,
            "replicas": self.num_replicas,
            "workers": self.num_workers,
            "worker_index": self.worker_index,
            "devices": list(self.devices),
        }
        if per_replica_batch is not None:
            out["per_replica_batch_size"] = int(per_replica_batch)
            out["global_batch_size"] = self.global_batch_size(per_replica_batch)
        return out


def cluster_spec(environ=os.environ) -> dict[str, Any] | None:
    """The parsed ``TF_CONFIG`` when it describes a cluster of more than one task, else None.

    Raises ConfigError for a ``TF_CONFIG`` that is not valid JSON or has no ``task``.
    """
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG: not valid JSON ({exc.msg} at char {exc.pos}); see the multi-worker section of the README") from None
    cluster = tf_config.get("cluster") or {}
    tasks = sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))
    if tasks < 2:
        return None
    task = tf_config.get("task") or {}
    if task.get("type") not in ("chief", "worker") or not isinstance(task.get("index"), int):
        raise ConfigError(
            f"TF_CONFIG: task must be {{\"type\": \"chief\"|\"worker\", \"index\": N}}, got {task!r}; "
            "set it on each machine, e.g. \"task\": {\"type\": \"worker\", \"index\": 0}"
        )
    role = task["type"]
    if task["index"] >= len(cluster.get(role, [])):
        count = len(cluster.get(role, []))
        fix = f"use a task index from 0 to {count - 1}, or add" if count else "add"
        raise ConfigError(
            f"TF_CONFIG: task {role} {task['index']} is not in the cluster's {count} {role} address(es); "
            f"{fix} this machine's address to the cluster's {role} list"
        )
    return tf_config


def _worker_position(tf_config: dict[str, Any]) -> tuple[int, int, bool]:
    """``(num_workers, index, is_chief)``: the chief (or worker 0 when there is no chief) writes."""
    cluster, task = tf_config["cluster"], tf_config["task"]
    chiefs = len(cluster.get("chief", []))
    workers = len(cluster.get("worker", []))
    if task["type"] == "chief":
        return chiefs + workers, 0, True
    index = chiefs + task["index"]
    return chiefs + workers, index, index == 0


def tpu_requested(training, environ=os.environ) -> str | None:
    """The TPU to connect to for ``auto``, or None: named in config or env, or this is a TPU VM."""
    if training.tpu:
        return training.tpu
    for var in ("TPU_NAME", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS"):
        if environ.get(var):
            return environ[var]
    if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):
        return "local"
    return None


def split_cpu(replicas: int) -> None:
    """Split the first CPU into ``replicas`` logical devices (before TensorFlow initialises).

    Raises ConfigError when TensorFlow already runs with fewer CPU devices:
    logical devices cannot be added to an initialised runtime.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0]) or []
    if len(current) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have >= replicas:
            return
        raise ConfigError(
            f"training.cpu_replicas: {replicas} logical CPUs asked, but TensorFlow already started in this process "
            f"with {have}; set it before any TensorFlow op runs (e.g. a fresh process: tfslm train ... --set training.cpu_replicas={replicas})"
        ) from None


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast on a ``grpc://host:port`` nobody listens on: TensorFlow would wait for it forever."""
    import socket

    host, _, port = address[len("grpc://"):].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"training.tpu: {address} is not reachable ({type(exc).__name__}: {exc}); "
            "check the TPU worker's address and port (usually 8470), or use its TPU name"
        ) from None


def _connect_tpu(name: str):
    """TPUClusterResolver → connect → initialise → TPUStrategy (``local`` on a TPU VM)."""
    import tensorflow as tf

    if name.startswith("grpc://"):
        _check_reachable(name)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as exc:  # URLError (name lookup off GCE), ValueError, NotFoundError, ...
        raise ConfigError(
            f"training.tpu: no TPU reachable as {name!r} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "give the TPU name, grpc://host:8470, or local on a TPU VM; off-TPU use training.strategy: auto or cpu"
        ) from None
    return tf.distribute.TPUStrategy(resolver), resolver


def resolve_strategy(training) -> Distribution:
    """Resolve ``training.strategy`` (see the module docstring) and return the :class:`Distribution`.

    Call it before any other TensorFlow work in the process: splitting the CPU
    and connecting to a TPU must happen before the runtime initialises.

    Args:
        training: the ``training`` config section (``strategy``, ``tpu``, ``cpu_replicas``).

    Example:
        >>> dist = resolve_strategy(TrainingConfig(strategy="mirrored", cpu_replicas=2))  # doctest: +SKIP
        >>> dist.num_replicas                                                            # doctest: +SKIP
        2
    """
    import tensorflow as tf

    kind = training.strategy
    cpu_replicas = training.cpu_replicas or 1
    reason = "set in config"
    if kind == "auto":
        tpu = tpu_requested(training)
        if tpu:
            kind, reason = "tpu", f"a TPU is named or local ({tpu})"
        elif cluster_spec() is not None:
            kind, reason = "multi_worker", "TF_CONFIG describes a cluster"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            kind, reason = "mirrored", f"{len(tf.config.list_physical_devices('GPU'))} GPUs"
        elif cpu_replicas > 1:
            kind, reason = "mirrored", f"training.cpu_replicas: {cpu_replicas}"
        else:
            kind, reason = "default", "one device"

    if kind == "tpu":
        strategy, resolver = _connect_tpu(training.tpu or tpu_requested(training) or "local")
        devices = [d.name for d in tf.config.list_logical_devices("TPU")]
        return Distribution(strategy, "tpu", reason, devices=devices)

    if kind == "multi_worker":
        tf_config = cluster_spec()
        if tf_config is None:
            raise ConfigError(
                "training.strategy: multi_worker needs TF_CONFIG describing a cluster of 2+ tasks, got none or one task; set TF_CONFIG "
                'on every machine, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}, '
                "or use training.strategy: auto"
            )
        if cpu_replicas > 1:
            split_cpu(cpu_replicas)
        # Collectives over the network: RING works on CPUs and GPUs alike; NCCL is picked by AUTO on GPUs.
        options = tf.distribute.experimental.CommunicationOptions(implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        workers, index, chief = _worker_position(tf_config)
        devices = list(strategy.extended.worker_devices)
        return Distribution(strategy, "multi_worker", reason, workers, index, chief, devices)

    if kind == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # already initialised: placing on the CPU explicitly does the same
            pass
        return Distribution(tf.distribute.OneDeviceStrategy("/cpu:0"), "cpu", reason, devices=["/cpu:0"])

    if kind == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise ConfigError("training.strategy: gpu, but TensorFlow sees no GPU; use auto or cpu, or install a CUDA build of TensorFlow")
        return Distribution(tf.distribute.OneDeviceStrategy("/gpu:0"), "gpu", reason, devices=["/gpu:0"])

    if kind == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            devices = [f"/gpu:{i}" for i in range(len(gpus))]
        else:
            if cpu_replicas > 1:
                split_cpu(cpu_replicas)
            devices = [d.name for d in tf.config.list_logical_devices("CPU")][:cpu_replicas]
        if len(devices) < 2:
            log.warning("strategy mirrored on one device: set training.cpu_replicas (CPU) or use a machine with several GPUs")
        # On one host, collectives are local copies; the default cross-device op (NCCL) needs GPUs.
        cross = None if gpus else tf.distribute.ReductionToOneDevice()
        strategy = tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross)
        return Distribution(strategy, "mirrored", reason, devices=devices)

    strategy = tf.distribute.get_strategy()
    return Distribution(strategy, "default", reason, devices=[d.name for d in tf.config.list_logical_devices()[:1]])


def shard_options(policy: str, options=None):
    """``tf.data.Options`` (``options``, or new ones) with the ``AutoShardPolicy`` for ``policy``.

    The one place tfslm names a ``tf.distribute`` auto-shard policy: the input
    pipelines call it (:mod:`tfslm.inputs`) and report the same ``policy`` in
    :attr:`tfslm.inputs.input_data.InputData.shard_policy`.

    Args:
        policy: ``data`` (input built in memory: every worker builds the same
            batches in the same seeded order and keeps its share of each global
            batch; AUTO would first try FILE, fail and warn) or ``file`` (each
            input worker reads its own files: TFRecords from ``tfslm prepare``).
        options: options to add the policy to.
    """
    import tensorflow as tf

    policies = {"data": tf.data.experimental.AutoShardPolicy.DATA, "file": tf.data.experimental.AutoShardPolicy.FILE}
    if policy not in policies:
        raise ValueError(f"shard policy: got {policy!r}, expected data or file")
    options = tf.data.Options() if options is None else options
    options.experimental_distribute.auto_shard_policy = policies[policy]
    return options


def with_shard_policy(dataset, policy: str):
    """``dataset`` with the auto-shard policy ``data`` or ``file`` (see :func:`shard_options`)."""
    return dataset.with_options(shard_options(policy))


def shard_by_data(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA``: for input built in memory (``prepare_tf_dataset``).

    In a multi-worker cluster every worker then builds the same batches in the
    same seeded order and keeps its share of each global batch; AUTO would
    first try FILE, fail and warn. (The bucketed pipeline sets DATA itself,
    TFRecords from ``tfslm prepare`` set FILE.)
    """
    return with_shard_policy(dataset, "data")
