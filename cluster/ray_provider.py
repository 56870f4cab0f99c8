"""Ray and RayDP behind :class:`cluster.provider.NodeProvider`: the only module of lakeforge that imports them.

Two backends:

* :class:`LocalRayProvider` (``local``): one machine, each EMR node is a Ray node started here (head = master).
  Every node carries custom resources naming its role (``master`` / ``core`` / ``task``), its instance type
  (``instance:m5.xlarge``) and market (``market:SPOT``), plus ``executor`` on core and task nodes, and labels
  ``lakeforge.io/{node-id,role,instance-type,market}``; ``num_cpus`` and ``memory`` come from the
  :class:`~cluster.provider.NodeSpec`. Ray's temp dir and logs live under the cluster directory.
* :class:`RayClusterProvider` (``ray``): attaches to a running Ray cluster by address. Roles come from the
  nodes' labels or their ``master`` / ``core`` / ``task`` resources; the cluster's own autoscaler owns its
  nodes, so :meth:`~RayClusterProvider.add_node` and :meth:`~RayClusterProvider.remove_node` refuse.

Steps: :meth:`run_step` starts a driver process on this (the master's) machine, ``python -m
cluster.ray_provider run-step <log_dir>/step.json``. It connects to Ray, builds the SparkSession with
``raydp.init_spark`` (the RayDP masters on the ``master`` resource, executors only on core/task nodes, Spark
decommissioning on, shuffle tracking, no external shuffle service, the entries of ``spark-defaults.conf`` plus
the step's conf), then runs the script with :func:`runpy.run_path` so that ``SparkSession.builder.getOrCreate()``
in an unmodified script returns that session. Under ``log_dir``: ``stdout``, ``stderr`` (Spark's log4j output),
``controller`` (this runner's log), ``status.json`` (phases and timings) and ``spark-events/`` (the event log,
which :meth:`RayStep.metrics` reads incrementally).

Executor sizing (step conf keys, all optional):

* ``spark.lakeforge.executor.roles``: ``CORE,TASK`` (default), ``CORE`` or ``TASK``;
* ``spark.lakeforge.executor.instanceType`` / ``spark.lakeforge.executor.market``: only nodes of that type /
  market;
* ``spark.executor.cores`` (default 1) and ``spark.executor.memory`` (default 512m) are the real JVM's threads
  and heap; the Ray request of each executor is scaled to the smallest eligible node (CPU = min(cores, node
  CPUs), memory = the same share of the node's memory, at most the heap), and ``spark.executor.instances``
  defaults to the number of such slots on the eligible nodes (at least 1: pending executors wait for capacity,
  as YARN containers do, and land on nodes added later);
* ``spark.lakeforge.raydp.faultTolerantMode``: ``true`` for RayDP's fault-tolerant mode (off: faster start).

Spot interruption: :meth:`decommission` drains the Ray node (``DRAIN_NODE_REASON_PREEMPTION``, so Ray restarts
no executor there) and sends ``SIGPWR`` to the RayDP executor JVMs on it, which makes Spark decommission them
and migrate their shuffle and RDD blocks; the control plane calls :meth:`remove_node` after the notice window.

Metrics (:meth:`RayStep.metrics`): cumulative counters from the Spark event log; running/pending tasks, per
node too, from ``live.json``, which the driver writes every second from Spark's status tracker (the event log
reaches the disk in 8 KiB chunks); pending executor requests from the RayDP executor actors Ray has not placed.

What one machine needs (measured with Ray 2.60, RayDP 1.6.5, Spark 3.5.7):

* Each local node but the head gets its own loopback address (127.1.x.y). Ray's Java runtime (RayDP's AppMaster
  gateway, the Spark driver's Ray connection) attaches to "a node with this IP"; with one IP for all nodes it
  may pick a task node, and removing that node kills the AppMaster and with it every executor of the step.
* Ray wants whole resource totals per node: local nodes count CPUs in hundredths (label
  ``lakeforge.io/cpu-units``), so a 0.5-CPU ``m5.large`` is 50 units; executor requests are scaled to match.
* Local raylets start Ray's minimal dashboard agent with its ports persisted up front: a raylet otherwise waits
  only 15s for its agent and aborts when a busy machine starts the agent more slowly.
* Dynamic allocation (``spark.dynamicAllocation.enabled=true`` in a step's conf) works, with churn: RayDP
  creates actors for the whole target at once and idle executors are decommissioned (not restarted by Ray).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psutil
import ray
import ray._private.node
import ray._private.parameter
import ray._private.services
import ray._private.utils
from ray._raylet import GcsClient  # type: ignore[attr-defined]

from cluster.errors import ProviderError
from cluster.provider import (
    METRIC_EXECUTOR_CORES,
    METRIC_EXECUTOR_REQUESTS,
    METRIC_LOST_EXECUTORS,
    METRIC_NODE_RUNNING_TASKS_PREFIX,
    METRIC_NODE_SHUFFLE_BYTES_PREFIX,
    METRIC_PENDING_TASKS,
    METRIC_RECOMPUTED_TASKS,
    METRIC_RUNNING_TASKS,
    NodeSpec,
)

if TYPE_CHECKING:
    from ray._private.node import Node

log = logging.getLogger("cluster.ray_provider")  # the same name when run as __main__ (step driver)

T = TypeVar("T")

MIB = 1024**2
#: Custom resources naming the EMR role of a node (executors request one of them, the RayDP masters ``master``).
ROLE_RESOURCES = {"MASTER": "master", "CORE": "core", "TASK": "task"}
#: Custom resource on every core and task node: executors may land on either.
EXECUTOR_RESOURCE = "executor"
INSTANCE_RESOURCE_PREFIX = "instance:"
MARKET_RESOURCE_PREFIX = "market:"
#: ``master`` units on a local head: each running step's two RayDP master actors take one each.
DEFAULT_MASTER_UNITS = 64
LABEL_NODE_ID = "lakeforge.io/node-id"
LABEL_ROLE = "lakeforge.io/role"
LABEL_INSTANCE = "lakeforge.io/instance-type"
LABEL_MARKET = "lakeforge.io/market"
#: Ray wants whole resource totals per node, and simulated nodes have fractional CPUs (m5.large: 0.5): local
#: nodes count CPU (and their role/instance/market resources) in hundredths, and say so in this label.
LABEL_CPU_UNITS = "lakeforge.io/cpu-units"
CPU_UNITS = 100
#: Set in each local raylet's environment: Spark executors report it as an executor attribute (node mapping).
EXECUTOR_NODE_ATTRIBUTE = "LAKEFORGE_NODE_ID"
#: Set in the environment of every process the local provider starts (leftover detection).
CLUSTER_TOKEN_ENV = "LAKEFORGE_RAY_CLUSTER_TOKEN"
STEP_NAMESPACE_PREFIX = "lakeforge-step-"
EXECUTOR_ACTOR_CLASS = "org.apache.spark.executor.RayDPExecutor"
EXECUTOR_CONF_PREFIX = "spark.ray.raydp_spark_executor.actor.resource."
MASTER_CONF_PREFIX = "spark.ray.raydp_spark_master.actor.resource."
CONF_ROLES = "spark.lakeforge.executor.roles"
CONF_INSTANCE_TYPE = "spark.lakeforge.executor.instanceType"
CONF_MARKET = "spark.lakeforge.executor.market"
#: RayDP's fault-tolerant mode connects the Spark driver JVM to Ray too (for ``from_spark_recoverable``); steps
#: rarely need it and it costs seconds at startup, so it is off unless a step's conf sets this to ``true``.
CONF_FAULT_TOLERANT = "spark.lakeforge.raydp.faultTolerantMode"
#: Unix socket paths are limited to 107 bytes; Ray puts ``session_<date>_<pid>/sockets/plasma_store.N`` under
#: its temp dir, so a longer cluster directory gets its Ray temp dir in /tmp (linked from the cluster dir).
MAX_RAY_TEMP_DIR_LEN = 40
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_ACTOR_STATES = {0: "DEPENDENCIES_UNREADY", 1: "PENDING_CREATION", 2: "ALIVE", 3: "RESTARTING", 4: "DEAD"}
_PREEMPTION = 2  # autoscaler_pb2.DrainNodeReason.DRAIN_NODE_REASON_PREEMPTION


class RayProviderError(ProviderError):
    """Ray or RayDP could not do what the provider was asked."""


class RayUnavailableError(RayProviderError):
    """The Ray head (GCS) does not answer."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"Ray head at {address} is not reachable: {reason}")


class ExternalClusterError(RayProviderError):
    """An operation that the attached (external) Ray cluster does not allow."""


# --------------------------------------------------------------------------------------------------------------
# Small helpers


def _parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayProviderError(f"not a Ray address (host:port): {address!r}")
    return host, int(port)


def _check_tcp(address: str, timeout: float) -> None:
    host, port = _parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise RayUnavailableError(address, f"nothing answers on {host}:{port} ({exc})") from exc


def _with_timeout(fn: Callable[[], T], timeout: float, what: str, address: str) -> T:
    """Run ``fn`` on a helper thread; RayUnavailableError when it does not return within ``timeout``."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakeforge-ray-call")
    try:
        return pool.submit(fn).result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise RayUnavailableError(address, f"{what} did not answer within {timeout:.0f}s") from exc
    except ray.exceptions.RpcError as exc:
        raise RayUnavailableError(address, f"{what} failed: {exc}") from exc
    finally:
        pool.shutdown(wait=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def parse_memory(value: str | int) -> int:
    """Bytes of a Spark/JVM memory string (``512m``, ``1g``, ``2048k``, ``1073741824``)."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", value.lower())
    if not match:
        raise RayProviderError(f"not a memory size: {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    scale = {"": 1, "k": 1024, "m": MIB, "g": 1024**3, "t": 1024**4}[unit]
    return int(number * scale)


def read_spark_defaults(path: Path) -> dict[str, str]:
    """Entries of a ``spark-defaults.conf`` (Java properties with whitespace or ``=`` separators)."""
    entries: dict[str, str] = {}
    if not path.is_file():
        return entries
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.match(r"([^\s=:]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            entries[match.group(1)] = match.group(2).strip()
    return entries


def _default_spark_defaults() -> Path:
    from jobs.sparkenv import SPARK_DEFAULTS

    return SPARK_DEFAULTS


def _label_ok(value: str) -> bool:
    return bool(_LABEL_VALUE.match(value))


def _kill_tree(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pids: Iterable[int], timeout: float) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=timeout)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        return children
    except psutil.Error:
        return []


# --------------------------------------------------------------------------------------------------------------
# Cluster state read from the GCS


@dataclass(frozen=True)
class RayNode:
    """A Ray node as the GCS reports it, with its lakeforge identity."""

    node_id: str
    ray_node_id: str
    role: str | None
    instance_type: str | None
    market: str
    num_cpus: float
    memory_bytes: int
    resources: dict[str, float]
    cpu_units: float
    alive: bool
    draining: bool
    is_head: bool
    address: str


@dataclass(frozen=True)
class ExecutorActor:
    """A RayDP executor (a Ray Java actor) of a step."""

    actor_id: str
    name: str
    state: str
    pid: int
    ray_node_id: str
    node_id: str | None
    namespace: str
    num_restarts: int


def _node_from_info(info: Any, draining: set[str]) -> RayNode:
    ray_id = info.node_id.hex()
    labels = dict(info.labels)
    try:
        units = float(labels.get(LABEL_CPU_UNITS, 1)) or 1.0
    except ValueError:
        units = 1.0
    resources = {k: float(v) for k, v in info.resources_total.items()}
    role = labels.get(LABEL_ROLE)
    if role is None:
        role = next((r for r, res in ROLE_RESOURCES.items() if resources.get(res, 0) > 0), None)
    itype = labels.get(LABEL_INSTANCE) or next(
        (k.removeprefix(INSTANCE_RESOURCE_PREFIX) for k in resources if k.startswith(INSTANCE_RESOURCE_PREFIX)), None
    )
    market = labels.get(LABEL_MARKET) or next(
        (k.removeprefix(MARKET_RESOURCE_PREFIX) for k in resources if k.startswith(MARKET_RESOURCE_PREFIX)),
        "ON_DEMAND",
    )
    return RayNode(
        node_id=labels.get(LABEL_NODE_ID, ray_id),
        ray_node_id=ray_id,
        role=role,
        instance_type=itype,
        market=market,
        num_cpus=resources.get("CPU", 0.0) / units,
        memory_bytes=int(resources.get("memory", 0)),
        resources=resources,
        cpu_units=units,
        alive=info.state == 0,
        draining=ray_id in draining,
        is_head=bool(info.is_head_node),
        address=info.node_manager_address,
    )


class _Gcs:
    """The GCS of one Ray cluster, every call bounded by a timeout (a dead head is an error, never a hang)."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        _check_tcp(address, timeout)
        self._client: GcsClient = _with_timeout(lambda: GcsClient(address=address), timeout, "the GCS", address)
        self._aliases: dict[str, str] = {}

    def alias(self, node_id: str, ray_node_id: str) -> None:
        """Name a Ray node (that has no ``lakeforge.io/node-id`` label) with a control-plane id."""
        self._aliases[ray_node_id] = node_id

    def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return _with_timeout(fn, self.timeout + 2, what, self.address)
        except RayUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - any RPC failure means the head is not usable
            raise RayUnavailableError(self.address, f"{what} failed: {exc}") from exc

    def nodes(self, *, alive_only: bool = True) -> list[RayNode]:
        infos = self._call(lambda: self._client.get_all_node_info(timeout=self.timeout), "listing nodes")
        draining: set[str] = set()
        with contextlib.suppress(RayUnavailableError):
            draining = set(self._call(lambda: self._client.get_draining_nodes(timeout=self.timeout), "draining"))
        result = []
        for info in infos.values():
            node = _node_from_info(info, draining)
            if node.ray_node_id in self._aliases and node.node_id == node.ray_node_id:
                node = dataclasses.replace(node, node_id=self._aliases[node.ray_node_id])
            if node.alive or not alive_only:
                result.append(node)
        return result

    def actors(self) -> list[Any]:
        async def fetch() -> Any:
            return await self._client.async_get_all_actor_info(timeout=self.timeout)

        infos: dict[Any, Any] = self._call(lambda: asyncio.run(fetch()), "listing actors")
        return list(infos.values())

    def drain(self, ray_node_id: str, reason: str, deadline_s: float) -> bool:
        deadline_ms = int((time.time() + deadline_s) * 1000)
        accepted, why = self._call(
            lambda: self._client.drain_node(
                bytes.fromhex(ray_node_id), _PREEMPTION, reason, deadline_ms, timeout=self.timeout
            ),
            "draining a node",
        )
        if not accepted:
            log.warning("Ray refused to drain node %s: %s", ray_node_id, why)
        return bool(accepted)

    def executors(self, namespace: str | None = None, *, nodes: list[RayNode] | None = None) -> list[ExecutorActor]:
        """RayDP executor actors (all steps, or the step with Ray namespace ``namespace``)."""
        known = nodes if nodes is not None else self.nodes(alive_only=False)
        by_ray_id = {n.ray_node_id: n.node_id for n in known}
        found = []
        for info in self.actors():
            if info.class_name != EXECUTOR_ACTOR_CLASS:
                continue
            if namespace is not None and info.ray_namespace != namespace:
                continue
            ray_node = info.address.node_id.hex()
            state = _ACTOR_STATES.get(info.state, str(info.state))
            placed = state in ("ALIVE", "DEAD")  # a pending actor's address is only where Ray is trying
            found.append(
                ExecutorActor(
                    actor_id=info.actor_id.hex(),
                    name=info.name,
                    state=state,
                    pid=int(info.pid),
                    ray_node_id=ray_node,
                    node_id=by_ray_id.get(ray_node) if placed else None,
                    namespace=info.ray_namespace,
                    num_restarts=int(info.num_restarts),
                )
            )
        return found


# --------------------------------------------------------------------------------------------------------------
# Executor sizing


@dataclass(frozen=True)
class ExecutorPlan:
    """How a step's executors are sized and where Ray may place them."""

    instances: int
    cores: int
    memory: str
    ray_cpu: float
    ray_memory_bytes: int
    resources: dict[str, float]
    eligible_nodes: tuple[str, ...]
    cpu_units: float = 1.0

    def configs(self) -> dict[str, str]:
        """RayDP's executor-actor requests (custom resources as Ray counts them, CPU in the nodes' units)."""
        confs = {f"{EXECUTOR_CONF_PREFIX}{name}": _fmt(amount) for name, amount in self.resources.items()}
        confs[f"{EXECUTOR_CONF_PREFIX}cpu"] = _fmt(self.ray_cpu * self.cpu_units)
        confs[f"{EXECUTOR_CONF_PREFIX}memory"] = str(self.ray_memory_bytes)
        return confs


def plan_executors(conf: dict[str, str], nodes: Iterable[RayNode], *, role_resource: str | None = None) -> ExecutorPlan:
    """Size a step's executors from its conf and the nodes that may host them (see the module docstring)."""
    roles = {r.strip().upper() for r in conf.get(CONF_ROLES, "CORE,TASK").split(",") if r.strip()}
    if not roles or not roles <= {"CORE", "TASK"}:
        raise RayProviderError(f"{CONF_ROLES} must name CORE and/or TASK, got {conf.get(CONF_ROLES)!r}")
    itype = conf.get(CONF_INSTANCE_TYPE)
    market = conf.get(CONF_MARKET)
    # Eligibility is by resource, never by the master label: a local master has no executor/core/task resource,
    # while the head of an external cluster started with {"master": 4, "core": 2} may host executors.
    live = [n for n in nodes if n.alive and not n.draining]
    if role_resource is None:
        if roles == {"CORE", "TASK"}:
            role_resource = EXECUTOR_RESOURCE
            if live and not any(n.resources.get(EXECUTOR_RESOURCE, 0) > 0 for n in live):
                role_resource = "core"
                log.warning("no node has the %r resource: executors go to core nodes only", EXECUTOR_RESOURCE)
        else:
            (only,) = roles
            role_resource = ROLE_RESOURCES[only]
    eligible = [
        n
        for n in live
        if n.resources.get(role_resource, 0) > 0
        and (itype is None or n.instance_type == itype)
        and (market is None or n.market == market.upper())
    ]
    cores = int(conf.get("spark.executor.cores", "1"))
    heap = parse_memory(conf.get("spark.executor.memory", "512m"))
    smallest = min(eligible, key=lambda n: (n.num_cpus, n.memory_bytes), default=None)
    ray_cpu = float(conf.get(f"{EXECUTOR_CONF_PREFIX}cpu", 0)) or (
        min(float(cores), smallest.num_cpus) if smallest and smallest.num_cpus > 0 else float(cores)
    )
    if f"{EXECUTOR_CONF_PREFIX}memory" in conf:
        ray_memory = int(float(conf[f"{EXECUTOR_CONF_PREFIX}memory"]))
    elif smallest and smallest.num_cpus > 0 and smallest.memory_bytes > 0:
        ray_memory = min(heap, int(smallest.memory_bytes * min(1.0, ray_cpu / smallest.num_cpus)))
    else:
        ray_memory = heap
    units = smallest.cpu_units if smallest else 1.0
    if len({n.cpu_units for n in eligible}) > 1:
        log.warning(
            "executor nodes count CPUs in different units %s: sizing in %s", {n.cpu_units for n in eligible}, units
        )
    amount = round(ray_cpu * units, 4)
    resources = {role_resource: amount}
    if itype is not None:
        resources[f"{INSTANCE_RESOURCE_PREFIX}{itype}"] = amount
    if market is not None:
        resources[f"{MARKET_RESOURCE_PREFIX}{market.upper()}"] = amount
    if "spark.executor.instances" in conf:
        instances = int(conf["spark.executor.instances"])
    else:
        slots = 0
        for n in eligible:
            by_cpu = math.floor(n.num_cpus / ray_cpu + 1e-9) if ray_cpu > 0 else 1
            by_mem = math.floor(n.memory_bytes / ray_memory + 1e-9) if ray_memory > 0 else by_cpu
            slots += max(0, min(by_cpu, by_mem))
        instances = max(1, slots)
    return ExecutorPlan(
        instances=instances,
        cores=cores,
        memory=conf.get("spark.executor.memory", "512m"),
        ray_cpu=ray_cpu,
        ray_memory_bytes=ray_memory,
        resources=resources,
        eligible_nodes=tuple(sorted(n.node_id for n in eligible)),
        cpu_units=units,
    )


def step_spark_conf(
    step_conf: dict[str, str], plan: ExecutorPlan, log_dir: Path, spark_defaults: Path
) -> dict[str, str]:
    """The full Spark conf of a step: spark-defaults.conf, then the provider's settings, then the step's conf."""
    events = log_dir / "spark-events"
    conf = read_spark_defaults(spark_defaults)
    conf.update(
        {
            # RayDP's two master actors (Python RayDPSparkMaster and Java RayAppMaster) on the master node only.
            f"{MASTER_CONF_PREFIX}master": "1",
            f"{MASTER_CONF_PREFIX}CPU": "0",
            # Graceful decommission (SIGPWR, Spot notice): migrate shuffle and RDD blocks off the executor.
            "spark.decommission.enabled": "true",
            "spark.storage.decommission.enabled": "true",
            "spark.storage.decommission.shuffleBlocks.enabled": "true",
            "spark.storage.decommission.rddBlocks.enabled": "true",
            "spark.executor.decommission.killInterval": "120s",
            "spark.stage.ignoreDecommissionFetchFailure": "true",
            # Dynamic allocation works with shuffle tracking; no external shuffle service (RayDP starts one per
            # IP; it would keep a lost node's shuffle files "available" and hide the recompute a loss causes).
            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
            "spark.shuffle.service.enabled": "false",
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": events.resolve().as_uri(),
            "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false",
            # Small write buffer: task events reach the file within ~8 KiB (the JVM writer's own buffer), not only
            # at stage ends. Running/pending tasks come from the driver's live.json sample, not from this log.
            "spark.eventLog.buffer.kb": "1k",
            "spark.ui.showConsoleProgress": "false",
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
        }
    )
    conf.update(step_conf)
    conf.update(plan.configs())  # after the step's conf: the plan already read its cpu/memory overrides
    if conf.get("spark.dynamicAllocation.enabled") == "true":
        conf.setdefault("spark.dynamicAllocation.maxExecutors", str(max(plan.instances, 1) * 2))
    for key in (CONF_ROLES, CONF_INSTANCE_TYPE, CONF_MARKET):
        conf.pop(key, None)  # CONF_FAULT_TOLERANT stays: the step driver reads it
    conf["spark.executor.instances"] = str(plan.instances)
    conf["spark.executor.cores"] = str(plan.cores)
    conf["spark.executor.memory"] = plan.memory
    return conf


# --------------------------------------------------------------------------------------------------------------
# Spark event log


class EventLogReader:
    """Incremental reader of one Spark application's event log: counters the control plane polls."""

    def __init__(self, events_dir: Path) -> None:
        self.events_dir = events_dir
        self._path: Path | None = None
        self._offset = 0
        self._partial = b""
        self.counts: dict[str, float] = {}
        self.executor_node: dict[str, str] = {}
        self.active_executors: set[str] = set()
        self.removed_reasons: dict[str, str] = {}
        self.app_id: str | None = None
        self.app_ended = False
        self._stage_tasks: dict[tuple[int, int], int] = {}
        self._stage_done: dict[tuple[int, int], set[int]] = {}
        self._stage_running: dict[tuple[int, int], dict[int, int]] = {}
        self._running: dict[int, str] = {}
        self._shuffle_by_executor: dict[str, float] = {}

    def _find(self) -> Path | None:
        if not self.events_dir.is_dir():
            return None
        files = sorted(p for p in self.events_dir.iterdir() if p.is_file())
        if self._path is not None:
            stem = self._path.name.removesuffix(".inprogress")
            for p in files:
                if p.name.removesuffix(".inprogress") == stem:
                    return p
        return files[0] if files else None

    def poll(self) -> None:
        path = self._find()
        if path is None:
            return
        self._path = path
        try:
            with path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:  # renamed from .inprogress between listing and opening
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                try:
                    self._event(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue

    def _inc(self, key: str, by: float = 1.0) -> None:
        self.counts[key] = self.counts.get(key, 0.0) + by

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("Event")
        if kind == "SparkListenerApplicationStart":
            self.app_id = ev.get("App ID")
        elif kind == "SparkListenerApplicationEnd":
            self.app_ended = True
        elif kind == "SparkListenerExecutorAdded":
            eid = str(ev["Executor ID"])
            self.active_executors.add(eid)
            self._inc("executors_added")
            node = (ev.get("Executor Info", {}).get("Attributes") or {}).get(EXECUTOR_NODE_ATTRIBUTE)
            if node:
                self.executor_node[eid] = node
        elif kind == "SparkListenerExecutorRemoved":
            eid = str(ev["Executor ID"])
            self.active_executors.discard(eid)
            reason = str(ev.get("Removed Reason", ""))
            self.removed_reasons[eid] = reason
            if not self.app_ended:
                self._inc("executors_removed")
                if "decommission" in reason.lower():
                    self._inc("executors_decommissioned")
            self._shuffle_by_executor.pop(eid, None)
        elif kind == "SparkListenerStageSubmitted":
            info = ev["Stage Info"]
            key = (int(info["Stage ID"]), int(info.get("Stage Attempt ID", 0)))
            self._stage_tasks[key] = int(info.get("Number of Tasks", 0))
            self._stage_done.setdefault(key, set())
            self._stage_running.setdefault(key, {})
            if key[1] > 0:
                self._inc("stage_retries")
        elif kind == "SparkListenerStageCompleted":
            info = ev["Stage Info"]
            key = (int(info["Stage ID"]), int(info.get("Stage Attempt ID", 0)))
            self._stage_tasks.pop(key, None)
            self._stage_done.pop(key, None)
            self._stage_running.pop(key, None)
            self._inc("stages_failed" if info.get("Failure Reason") else "stages_completed")
        elif kind == "SparkListenerJobEnd":
            result = ev.get("Job Result", {}).get("Result")
            self._inc("jobs_succeeded" if result == "JobSucceeded" else "jobs_failed")
        elif kind == "SparkListenerTaskStart":
            self._task_start(ev)
        elif kind == "SparkListenerTaskEnd":
            self._task_end(ev)

    def _task_start(self, ev: dict[str, Any]) -> None:
        info = ev["Task Info"]
        key = (int(ev["Stage ID"]), int(ev.get("Stage Attempt ID", 0)))
        tid, eid = int(info["Task ID"]), str(info["Executor ID"])
        self._running[tid] = eid
        self._stage_running.setdefault(key, {})[tid] = int(info["Index"])
        self._inc("tasks_started")
        if int(info.get("Attempt", 0)) > 0 or key[1] > 0:  # a retried task, or any task of a stage re-attempt
            self._inc("tasks_retried")

    def _task_end(self, ev: dict[str, Any]) -> None:
        info = ev["Task Info"]
        key = (int(ev["Stage ID"]), int(ev.get("Stage Attempt ID", 0)))
        tid, eid = int(info["Task ID"]), str(info["Executor ID"])
        reason = ev.get("Task End Reason", {}).get("Reason", "Success")
        if reason == "Resubmitted":  # a finished map task whose output was lost with its executor
            self._inc("tasks_resubmitted")
            return
        self._running.pop(tid, None)
        self._stage_running.get(key, {}).pop(tid, None)
        if reason == "Success":
            self._inc("tasks_completed")
            self._stage_done.setdefault(key, set()).add(int(info["Index"]))
        elif reason == "TaskKilled":
            self._inc("tasks_killed")
        else:
            self._inc("tasks_failed")
            if reason == "ExecutorLostFailure":
                self._inc("tasks_executor_lost")
        metrics = ev.get("Task Metrics") or {}
        self._inc("executor_run_time_s", float(metrics.get("Executor Run Time", 0)) / 1000.0)
        written = float((metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0))
        self._inc("shuffle_write_bytes", written)
        read = metrics.get("Shuffle Read Metrics") or {}
        self._inc(
            "shuffle_read_bytes", float(read.get("Remote Bytes Read", 0)) + float(read.get("Local Bytes Read", 0))
        )
        self._inc("input_bytes", float((metrics.get("Input Metrics") or {}).get("Bytes Read", 0)))
        self._inc("output_bytes", float((metrics.get("Output Metrics") or {}).get("Bytes Written", 0)))
        if reason == "Success" and written:
            self._shuffle_by_executor[eid] = self._shuffle_by_executor.get(eid, 0.0) + written

    def snapshot(self) -> dict[str, float]:
        out = dict(self.counts)
        running = len(self._running)
        pending = 0
        for key, total in self._stage_tasks.items():
            busy = set(self._stage_running.get(key, {}).values()) | self._stage_done.get(key, set())
            pending += max(0, total - len(busy))
        out[METRIC_RUNNING_TASKS] = float(running)
        out[METRIC_PENDING_TASKS] = float(pending)
        out["executors_active"] = float(len(self.active_executors))
        out[METRIC_LOST_EXECUTORS] = self.counts.get("executors_removed", 0.0)
        out[METRIC_RECOMPUTED_TASKS] = self.counts.get("tasks_resubmitted", 0.0) + self.counts.get("tasks_retried", 0.0)
        per_node_running: dict[str, float] = {}
        for eid in self._running.values():
            node = self.executor_node.get(eid)
            if node:
                per_node_running[node] = per_node_running.get(node, 0.0) + 1
        per_node_shuffle: dict[str, float] = {}
        for eid, written in self._shuffle_by_executor.items():
            node = self.executor_node.get(eid)
            if node and eid in self.active_executors:
                per_node_shuffle[node] = per_node_shuffle.get(node, 0.0) + written
        for node in {n for e, n in self.executor_node.items() if e in self.active_executors} | set(per_node_running):
            out[f"{METRIC_NODE_RUNNING_TASKS_PREFIX}{node}"] = per_node_running.get(node, 0.0)
            out[f"{METRIC_NODE_SHUFFLE_BYTES_PREFIX}{node}"] = per_node_shuffle.get(node, 0.0)
        return out


# --------------------------------------------------------------------------------------------------------------
# Steps


@dataclass
class RayStep:
    """A step's driver process (:class:`cluster.provider.StepHandle`)."""

    step_id: str
    log_dir: Path
    process: subprocess.Popen[bytes]
    namespace: str
    plan: ExecutorPlan
    gcs: _Gcs | None
    cancel_grace_s: float = 20.0
    _events: EventLogReader = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _killer: threading.Timer | None = field(default=None, init=False)
    _tree: set[int] = field(default_factory=set, init=False)
    _last_ray_metrics: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._events = EventLogReader(self.log_dir / "spark-events")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def status_path(self) -> Path:
        return self.log_dir / "status.json"

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None and self._killer is not None:
            self._killer.cancel()
        return code

    def wait(self, timeout: float | None = None) -> int:
        """Block until the driver exits (not part of the Protocol; for tests and scripts)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RayProviderError(f"step {self.step_id} still running after {timeout}s") from exc

    def _remember_tree(self) -> None:
        self._tree.update(p.pid for p in _descendants(self.process.pid))

    def cancel(self, force: bool) -> None:
        if self.process.poll() is not None:
            return
        self._remember_tree()
        if force:
            log.info("step %s: SIGKILL to driver %d and its descendants", self.step_id, self.pid)
            self._kill_all()
            return
        log.info("step %s: SIGTERM to driver %d (SIGKILL after %.0fs)", self.step_id, self.pid, self.cancel_grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self._killer is None:
            self._killer = threading.Timer(self.cancel_grace_s, self._kill_all)
            self._killer.daemon = True
            self._killer.start()

    def _kill_all(self) -> None:
        if self.process.poll() is None:
            self._remember_tree()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        _kill_tree(self._tree)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def executors(self) -> list[ExecutorActor]:
        """This step's RayDP executor actors (live and dead) with the nodes they are on."""
        return self.gcs.executors(self.namespace) if self.gcs is not None else []

    def live(self) -> dict[str, Any]:
        """The driver's latest status-tracker sample (``live.json``, every second while Spark runs)."""
        try:
            data: dict[str, Any] = json.loads((self.log_dir / "live.json").read_text())
            return data
        except (OSError, ValueError):
            return {}

    def metrics(self) -> dict[str, float]:
        with self._lock:
            self._events.poll()
            out = self._events.snapshot()
        out[METRIC_EXECUTOR_CORES] = float(self.plan.cores)
        out["executor_instances"] = float(self.plan.instances)
        status = self.status()
        for key in ("ray_connect_s", "spark_up_s", "script_s", "runtime_s"):
            if isinstance(status.get(key), int | float):
                out[key] = float(status[key])
        running = self.process.poll() is None
        nodes: list[RayNode] = []
        if running and self.gcs is not None:
            try:
                nodes = self.gcs.nodes(alive_only=False)
                actors = self.gcs.executors(self.namespace, nodes=nodes)
                waiting = [a for a in actors if a.state in ("PENDING_CREATION", "RESTARTING", "DEPENDENCIES_UNREADY")]
                self._last_ray_metrics = {
                    METRIC_EXECUTOR_REQUESTS: float(len(waiting)),
                    "executor_actors_alive": float(sum(a.state == "ALIVE" for a in actors)),
                    "executor_actor_restarts": float(sum(a.num_restarts for a in actors)),
                }
            except RayProviderError as exc:
                log.warning("step %s: executor actors unavailable: %s", self.step_id, exc)
        elif not running:
            self._last_ray_metrics[METRIC_EXECUTOR_REQUESTS] = 0.0
        out.update(self._last_ray_metrics)
        for key in [k for k in out if k.startswith(METRIC_NODE_RUNNING_TASKS_PREFIX)]:
            out[key] = 0.0  # the event log lags running tasks by a few events: the live sample replaces it
        out[METRIC_RUNNING_TASKS] = out[METRIC_PENDING_TASKS] = 0.0
        live = self.live() if running else {}
        if live:
            stages = live.get("stages", [])
            out[METRIC_RUNNING_TASKS] = float(sum(st["active"] for st in stages))
            out[METRIC_PENDING_TASKS] = float(
                sum(max(0, st["tasks"] - st["active"] - st["completed"]) for st in stages)
            )
            by_host: dict[str, list[str]] = {}
            for node in nodes:
                by_host.setdefault(node.address, []).append(node.node_id)
            for ex in live.get("executors", []):
                owners = by_host.get(ex["host"], [])
                if len(owners) == 1 and ex["host"] != live.get("driver_host"):
                    key = f"{METRIC_NODE_RUNNING_TASKS_PREFIX}{owners[0]}"
                    out[key] = out.get(key, 0.0) + float(ex["running"])
        return out


class _RayProviderBase:
    """What both backends share: node views, decommission, steps."""

    backend = "base"

    def __init__(self, *, timeout: float, spark_defaults: Path | None, python: str | None) -> None:
        self.timeout = timeout
        self.spark_defaults = spark_defaults or _default_spark_defaults()
        self.python = python or sys.executable
        self._gcs: _Gcs | None = None
        self._steps: dict[str, RayStep] = {}
        self._lock = threading.RLock()

    # -- views ---------------------------------------------------------------------------------------------------

    @property
    def gcs(self) -> _Gcs:
        if self._gcs is None:
            raise RayProviderError(f"{type(self).__name__} is not started")
        return self._gcs

    @property
    def address(self) -> str:
        return self.gcs.address

    def nodes(self) -> list[RayNode]:
        """The live nodes as Ray reports them."""
        return self.gcs.nodes()

    def alive_nodes(self) -> set[str]:
        return {n.node_id for n in self.gcs.nodes()}

    def executors(self, step_id: str | None = None) -> list[ExecutorActor]:
        """RayDP executor actors (of one step, or all) with the node each is on."""
        return self.gcs.executors(STEP_NAMESPACE_PREFIX + step_id if step_id else None)

    def _ray_node(self, node_id: str) -> RayNode | None:
        return next((n for n in self.gcs.nodes() if n.node_id == node_id or n.ray_node_id == node_id), None)

    # -- decommission --------------------------------------------------------------------------------------------

    def _signal_local(self, node: RayNode) -> bool:
        return True

    def decommission(self, node_id: str, *, notice_s: float = 120.0, drain: bool = True) -> int:
        """Spot notice: no new executors on the node, SIGPWR to its Spark executors; returns how many."""
        node = self._ray_node(node_id)
        if node is None:
            log.info("decommission %s: node is not alive, nothing to do", node_id)
            return 0
        if drain:
            self.gcs.drain(node.ray_node_id, f"lakeforge: decommission of {node_id}", notice_s)
        targets = [
            a for a in self.gcs.executors() if a.ray_node_id == node.ray_node_id and a.state == "ALIVE" and a.pid > 0
        ]
        if not targets:
            log.info("decommission %s: no running Spark executors", node_id)
            return 0
        pids = [a.pid for a in targets]
        if self._signal_local(node):
            sent = 0
            for actor in targets:
                try:
                    proc = psutil.Process(actor.pid)
                    if "java" not in proc.name().lower():
                        log.warning("decommission %s: pid %d is %s, not a JVM", node_id, actor.pid, proc.name())
                        continue
                    proc.send_signal(signal.SIGPWR)
                    sent += 1
                except psutil.Error as exc:
                    log.warning("decommission %s: executor pid %d: %s", node_id, actor.pid, exc)
        else:
            sent = self._signal_remote(node, pids)
        log.info(
            "decommission %s: SIGPWR to %d executor(s) %s (pids %s)",
            node_id,
            sent,
            ",".join(a.name for a in targets),
            ",".join(map(str, pids)),
        )
        return sent

    def _signal_remote(self, node: RayNode, pids: list[int]) -> int:
        """SIGPWR to pids on another machine: a one-off Ray task pinned to that node does it."""
        cmd = [
            self.python,
            "-m",
            "cluster.ray_provider",
            "signal",
            "--address",
            self.address,
            "--node",
            node.ray_node_id,
            "--pids",
            ",".join(map(str, pids)),
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout + 60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RayProviderError(f"signalling executors on {node.node_id} timed out") from exc
        if out.returncode != 0:
            raise RayProviderError(f"signalling executors on {node.node_id} failed: {out.stderr[-2000:]}")
        return int(out.stdout.strip().splitlines()[-1])

    # -- steps ---------------------------------------------------------------------------------------------------

    def _step_env(self, step_id: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        env["PYSPARK_PYTHON"] = self.python
        env["PYSPARK_DRIVER_PYTHON"] = self.python
        env["LAKEFORGE_STEP_ID"] = step_id
        env.setdefault("PYTHONUNBUFFERED", "1")
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        return env

    def run_step(
        self,
        step_id: str,
        script: str,
        args: list[str],
        spark_conf: dict[str, str],
        log_dir: Path,
        *,
        startup_timeout: float = 300.0,
    ) -> RayStep:
        """Start the step's driver process and return its handle at once."""
        script_path = Path(script).resolve()
        if not script_path.is_file():
            raise RayProviderError(f"step {step_id}: no such script {script}")
        log_dir = Path(log_dir).resolve()
        (log_dir / "spark-events").mkdir(parents=True, exist_ok=True)
        plan = plan_executors(spark_conf, self.gcs.nodes())
        conf = step_spark_conf(spark_conf, plan, log_dir, self.spark_defaults)
        namespace = STEP_NAMESPACE_PREFIX + step_id
        spec = {
            "step_id": step_id,
            "script": str(script_path),
            "args": list(args),
            "address": self.address,
            "namespace": namespace,
            "app_name": f"lakeforge-{step_id}",
            "num_executors": plan.instances,
            "executor_cores": plan.cores,
            "executor_memory": plan.memory,
            "configs": conf,
            "status_path": str(log_dir / "status.json"),
            "controller_log": str(log_dir / "controller"),
            "startup_timeout": startup_timeout,
            "gcs_timeout": self.timeout,
            "parent_pid": os.getpid(),
            "node_ip_address": self._driver_node_ip(),
        }
        spec_path = log_dir / "step.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        with (log_dir / "stdout").open("ab") as out, (log_dir / "stderr").open("ab") as err:
            process = subprocess.Popen(
                [self.python, "-m", "cluster.ray_provider", "run-step", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=log_dir,
                env=self._step_env(step_id),
                start_new_session=True,
            )
        handle = RayStep(step_id, log_dir, process, namespace, plan, self._gcs)
        with self._lock:
            self._steps[step_id] = handle
        log.info(
            "step %s: driver pid %d, %d executor(s) x %d core(s) %s on %s (Ray request %s), logs %s",
            step_id,
            process.pid,
            plan.instances,
            plan.cores,
            plan.memory,
            ",".join(plan.eligible_nodes) or "no node yet",
            plan.resources,
            log_dir,
        )
        return handle

    def _driver_node_ip(self) -> str | None:
        """The IP of the Ray node step drivers attach to (None: let Ray pick the node of this host)."""
        return None

    def _stop_steps(self) -> None:
        with self._lock:
            steps = list(self._steps.values())
        for step in steps:
            if step.poll() is None:
                step.cancel(force=True)
        for step in steps:
            step._kill_all()


# --------------------------------------------------------------------------------------------------------------
# Backend "local": a multi-node Ray cluster on this machine


class LocalRayProvider(_RayProviderBase):
    """EMR nodes as Ray nodes started on this machine (head = master). See the module docstring."""

    backend = "local"

    def __init__(
        self,
        cluster_dir: Path,
        *,
        timeout: float = 60.0,
        master_units: int = DEFAULT_MASTER_UNITS,
        object_store_bytes: int = 80 * MIB,
        health_check_s: float = 1.0,
        health_check_failures: int = 10,
        spark_defaults: Path | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__(timeout=timeout, spark_defaults=spark_defaults, python=python)
        if master_units < 2:
            raise RayProviderError("master_units must be >= 2: RayDP's two master actors each take one")
        self.cluster_dir = Path(cluster_dir).resolve()
        self.master_units = master_units
        self.object_store_bytes = object_store_bytes
        self.health_check_s = health_check_s
        self.health_check_failures = health_check_failures
        self.token = uuid.uuid4().hex
        self.ray_temp_dir: Path | None = None
        self._head: Node | None = None
        self._nodes: dict[str, Node] = {}
        self._specs: dict[str, NodeSpec] = {}
        # Node processes die with the thread that started them (PR_SET_PDEATHSIG): start them all on one
        # long-lived thread, never on the caller's (possibly short-lived) provisioning thread.
        self._spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakeforge-ray-nodes")
        # The head takes this host's address (Ray rewrites 127.0.0.1 in a driver's address to it anyway).
        self._head_ip: str = ray._private.services.get_node_ip_address()  # type: ignore[no-untyped-call]
        self._ips = (f"127.1.{n // 250}.{n % 250 + 2}" for n in range(250 * 250))
        self._stopped = False
        atexit.register(self.shutdown)

    # -- nodes ---------------------------------------------------------------------------------------------------

    def _temp_dir(self) -> Path:
        wanted = self.cluster_dir / "ray"
        if len(str(wanted)) <= MAX_RAY_TEMP_DIR_LEN:
            wanted.mkdir(parents=True, exist_ok=True)
            return wanted
        short = Path(tempfile.mkdtemp(prefix="lfray-", dir="/tmp"))
        if wanted.is_symlink():
            wanted.unlink()
        elif wanted.exists():
            wanted.rename(wanted.with_name(f"ray.{int(time.time())}"))
        wanted.symlink_to(short, target_is_directory=True)
        return short

    def _keep_logs(self) -> None:
        """Move a /tmp Ray temp dir (see MAX_RAY_TEMP_DIR_LEN) into the cluster dir, minus its sockets."""
        link = self.cluster_dir / "ray"
        short = self.ray_temp_dir
        if short is None or not link.is_symlink():
            return
        try:
            staged = link.with_name("ray.moving")
            shutil.copytree(short, staged, symlinks=True, ignore=shutil.ignore_patterns("sockets"))
            latest = staged / "session_latest"
            if latest.is_symlink():
                target = Path(os.readlink(latest)).name
                latest.unlink()
                latest.symlink_to(target)
            link.unlink()
            staged.rename(link)
            shutil.rmtree(short, ignore_errors=True)
        except OSError as exc:
            log.warning("Ray logs stay in %s (linked from %s): %s", short, link, exc)

    def _params(self, spec: NodeSpec, node_ip: str, **extra: Any) -> Any:
        role = ROLE_RESOURCES[spec.role]
        cpus = float(max(1, round(spec.num_cpus * CPU_UNITS)))
        resources = {
            role: float(self.master_units) if spec.role == "MASTER" else cpus,
            f"{INSTANCE_RESOURCE_PREFIX}{spec.instance_type}": cpus,
            f"{MARKET_RESOURCE_PREFIX}{spec.market}": cpus,
        }
        if spec.role != "MASTER":
            resources[EXECUTOR_RESOURCE] = cpus
        labels = {
            LABEL_NODE_ID: spec.node_id,
            LABEL_ROLE: spec.role,
            LABEL_INSTANCE: spec.instance_type,
            LABEL_MARKET: spec.market,
            LABEL_CPU_UNITS: str(CPU_UNITS),
        }
        labels = {k: v for k, v in labels.items() if _label_ok(v)}
        if LABEL_NODE_ID not in labels:
            raise RayProviderError(f"node id {spec.node_id!r} is not usable as a Ray label value")
        params = ray._private.parameter.RayParams(
            node_ip_address=node_ip,
            num_cpus=int(cpus),
            num_gpus=0,
            memory=int(spec.memory_bytes),
            object_store_memory=self.object_store_bytes,
            resources=resources,
            labels=labels,
            temp_dir=str(self.ray_temp_dir),
            include_log_monitor=False,  # type: ignore[arg-type]
            min_worker_port=0,
            max_worker_port=0,
            # An explicit port: with port 0 the raylet waits only 15s for the agent to write its port file, and
            # aborts when a loaded machine starts the agent slower than that (see _minimal_agents for the others).
            runtime_env_agent_port=_free_port(),
            env_vars={
                f"SPARK_EXECUTOR_ATTRIBUTE_{EXECUTOR_NODE_ATTRIBUTE}": spec.node_id,
                CLUSTER_TOKEN_ENV: self.token,
            },
            **extra,
        )
        return params

    def _spawn(self, spec: NodeSpec, head: bool) -> Node:
        # Every simulated node but the head gets its own loopback address. Ray's Java runtime (RayDP's AppMaster
        # gateway and the Spark driver's Ray connection) attaches to "a node with this IP": with one IP for all
        # nodes it can pick a task node, and removing that node then kills the AppMaster and every executor of the
        # step. Distinct IPs also let Spark tell the simulated hosts apart (block locations, decommissioned hosts).
        node_ip = self._head_ip if head else next(self._ips)
        if head:
            params = self._params(
                spec,
                node_ip,
                include_dashboard=False,
                no_monitor=True,
                dashboard_port=_free_port(),
                _system_config={
                    "health_check_period_ms": int(self.health_check_s * 1000),
                    "health_check_timeout_ms": int(self.health_check_s * 1000),
                    "health_check_failure_threshold": self.health_check_failures,
                    # On a busy 2-core machine a node's agents can take more than the default 30s to start.
                    "agent_register_timeout_ms": int(max(self.timeout, 120) * 1000),
                    # With CPU counted in hundredths, "one idle Python worker per CPU" would be a hundred.
                    "enable_worker_prestart": False,
                    "prestart_worker_first_driver": False,
                },
            )
        else:
            assert self._head is not None
            params = self._params(spec, node_ip, gcs_address=self._head.gcs_address, node_manager_port=0)
        # spawn_reaper=True means kernel fate-sharing on Linux (no reaper process); shutdown_at_exit would install
        # a SIGTERM handler, which only the main thread may do: this provider registers its own atexit instead.
        node = ray._private.node.Node(params, head=head, shutdown_at_exit=False, spawn_reaper=True)
        try:
            ray._private.services.wait_for_node(node.gcs_address, node.plasma_store_socket_name, int(self.timeout))
        except Exception:
            node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
            raise
        return node

    def _on_spawner(self, fn: Callable[[], T]) -> T:
        return self._spawner.submit(fn).result()

    def _spawn_retrying(self, spec: NodeSpec, head: bool, attempts: int = 3) -> Node:
        """Start a node, retrying when it timed out (a loaded machine); a bad spec fails at once."""
        if spec.num_cpus <= 0 or spec.memory_bytes <= 0:
            raise RayProviderError(f"{spec.node_id}: num_cpus and memory_bytes must be positive, got {spec}")
        for attempt in range(1, attempts + 1):
            try:
                with _minimal_agents():
                    return self._spawn(spec, head)
            except (ValueError, TypeError):
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise
                log.warning("node %s: Ray node start failed (attempt %d): %s; retrying", spec.node_id, attempt, exc)
        raise AssertionError("unreachable")

    def start(self, master: NodeSpec) -> None:
        if master.role != "MASTER":
            raise RayProviderError(f"start() needs the MASTER node, got {master.role} {master.node_id}")
        if self._head is not None:
            raise RayProviderError("the local Ray cluster is already started")
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        self.ray_temp_dir = self._temp_dir()
        t0 = time.monotonic()
        try:
            head = self._on_spawner(lambda: self._spawn_retrying(master, head=True))
        except Exception as exc:
            raise RayProviderError(f"the Ray head for {master.node_id} did not start: {exc}") from exc
        self._head = head
        self._nodes[master.node_id] = head
        self._specs[master.node_id] = master
        self._gcs = _Gcs(head.gcs_address, self.timeout)
        log.info(
            "node %s (MASTER %s) up as Ray head %s at %s in %.1fs (temp dir %s)",
            master.node_id,
            master.instance_type,
            head.node_id,
            head.gcs_address,
            time.monotonic() - t0,
            self.ray_temp_dir,
        )

    def add_node(self, spec: NodeSpec) -> None:
        if self._head is None:
            raise RayProviderError("start() the cluster before adding nodes")
        if spec.role == "MASTER":
            raise RayProviderError(f"{spec.node_id}: a cluster has exactly one master")
        if spec.node_id in self._nodes:
            raise RayProviderError(f"{spec.node_id}: node id already used")
        t0 = time.monotonic()
        try:
            node = self._on_spawner(lambda: self._spawn_retrying(spec, head=False))
        except Exception as exc:
            raise RayProviderError(f"node {spec.node_id} did not start: {exc}") from exc
        with self._lock:
            self._nodes[spec.node_id] = node
            self._specs[spec.node_id] = spec
        log.info(
            "node %s (%s %s %s, %s CPU, %d MiB) up as Ray node %s in %.1fs",
            spec.node_id,
            spec.role,
            spec.instance_type,
            spec.market,
            _fmt(spec.num_cpus),
            spec.memory_bytes // MIB,
            node.node_id,
            time.monotonic() - t0,
        )

    def _node_pids(self, node: Node) -> set[int]:
        pids: set[int] = set()
        for info in node.all_processes.values():
            for proc in info:
                if proc.process is not None:
                    pids.add(proc.process.pid)
                    pids.update(p.pid for p in _descendants(proc.process.pid))
        return pids

    def remove_node(self, node_id: str, *, graceful: bool) -> None:
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None or node is self._head:
                if node is self._head and node is not None:
                    raise RayProviderError(f"{node_id} is the master: shut the cluster down instead")
                log.info("remove %s: unknown or already removed, nothing to do", node_id)
                return
            del self._nodes[node_id]
        t0 = time.monotonic()
        ray_id = node.node_id
        pids = self._node_pids(node)
        if graceful:
            with contextlib.suppress(RayProviderError):
                self.gcs.drain(ray_id, f"lakeforge: removing {node_id}", 0)

        def kill() -> None:
            node.kill_all_processes(check_alive=False, allow_graceful=graceful, wait=True)
            # Workers of the node (executor JVMs) go with it, as on a lost instance.
            _kill_tree(p for p in pids if psutil.pid_exists(p))

        self._on_spawner(kill)
        self._wait_dead(ray_id, node_id)
        log.info(
            "node %s removed (%s) in %.1fs", node_id, "graceful" if graceful else "hard loss", time.monotonic() - t0
        )

    def _wait_dead(self, ray_id: str, node_id: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if all(n.ray_node_id != ray_id for n in self.gcs.nodes()):
                return
            time.sleep(0.2)
        log.warning("node %s: Ray still lists it as alive %.0fs after removal", node_id, self.timeout)

    def _driver_node_ip(self) -> str | None:
        return self._head_ip

    def specs(self) -> dict[str, NodeSpec]:
        return dict(self._specs)

    # -- shutdown ------------------------------------------------------------------------------------------------

    def _own_processes(self) -> list[psutil.Process]:
        """Processes of this cluster: Ray's (temp dir in their command line) or marked with its token."""
        found = []
        temp = str(self.ray_temp_dir) if self.ray_temp_dir else None
        me = os.getpid()
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if proc.pid == me:
                continue
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                if temp and temp in cmdline:
                    found.append(proc)
                    continue
                if proc.environ().get(CLUSTER_TOKEN_ENV) == self.token:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def leftover_processes(self) -> list[psutil.Process]:
        """Processes of this cluster still alive (empty after a clean :meth:`shutdown`)."""
        return [p for p in self._own_processes() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        t0 = time.monotonic()
        self._stop_steps()
        tracked: set[int] = set()
        for node in self._nodes.values():
            tracked |= self._node_pids(node)
        workers = [n for n in self._nodes.values() if n is not self._head]

        def kill_nodes() -> None:
            for node in [*workers, self._head]:
                if node is not None:
                    with contextlib.suppress(Exception):
                        node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)

        with contextlib.suppress(Exception):
            self._on_spawner(kill_nodes)
        self._spawner.shutdown(wait=True)
        _kill_tree(p for p in tracked if psutil.pid_exists(p))
        _wait_gone(tracked, 10)
        leftovers = self.leftover_processes()
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(leftovers, timeout=10)
        self._nodes.clear()
        self._head = None
        atexit.unregister(self.shutdown)
        self._keep_logs()
        log.info(
            "local Ray cluster %s shut down in %.1fs (%d leftover process(es) killed)",
            self.cluster_dir,
            time.monotonic() - t0,
            len(leftovers),
        )


# --------------------------------------------------------------------------------------------------------------
# Backend "ray": an existing Ray cluster


@contextlib.contextmanager
def _minimal_agents() -> Iterator[None]:
    """Start nodes with Ray's minimal dashboard agent, and never wait for it.

    The minimal agent (no dashboard HTTP server, no metrics exporter) is lighter and starts faster, and the node
    provider needs neither. A raylet waits only 15s for its agent to persist the metrics and dashboard ports and
    aborts after that, which a loaded 2-core machine exceeds; in minimal mode those ports are ``-1`` ("not in
    use"), so they are persisted before the raylet starts (the agent writes the same value later).
    """
    from ray._raylet import (  # type: ignore[attr-defined]
        DASHBOARD_AGENT_LISTEN_PORT_NAME,
        METRICS_AGENT_PORT_NAME,
        METRICS_EXPORT_PORT_NAME,
        persist_port,
    )

    utils = ray._private.utils
    services = ray._private.services
    original_check = utils.get_dashboard_dependency_error
    original_start = services.start_raylet
    signature = inspect.signature(original_start)

    def start_raylet(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        session_dir, node_id = bound.arguments["session_dir"], bound.arguments["node_id"]
        for name in (METRICS_AGENT_PORT_NAME, METRICS_EXPORT_PORT_NAME, DASHBOARD_AGENT_LISTEN_PORT_NAME):
            persist_port(session_dir, node_id, name, -1)
        return original_start(*args, **kwargs)

    utils.get_dashboard_dependency_error = lambda: ImportError("lakeforge: minimal agents")
    services.start_raylet = start_raylet  # type: ignore[assignment]
    try:
        yield
    finally:
        utils.get_dashboard_dependency_error = original_check  # type: ignore[assignment]
        services.start_raylet = original_start  # type: ignore[assignment]


def _local_ips() -> set[str]:
    ips = {"127.0.0.1", "localhost"}
    for addrs in psutil.net_if_addrs().values():
        ips.update(a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))
    return ips


class RayClusterProvider(_RayProviderBase):
    """Attach to a running Ray cluster (backend ``ray``). See the module docstring."""

    backend = "ray"

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 15.0,
        spark_defaults: Path | None = None,
        python: str | None = None,
        local_signals: bool | None = None,
    ) -> None:
        super().__init__(timeout=timeout, spark_defaults=spark_defaults, python=python)
        self._gcs = _Gcs(address, timeout)
        self._local_signals = local_signals
        self._stopped = False
        nodes = self._gcs.nodes()
        masters = [n for n in nodes if n.resources.get("master", 0) >= 2]
        if not masters:
            raise RayProviderError(
                f"no node of the Ray cluster at {address} has the 'master' resource with >= 2 units "
                "(RayDP's two master actors need one each): start its head with "
                """--resources='{"master": 4}'"""
            )
        log.info(
            "attached to Ray cluster at %s: %d node(s) (%s)",
            address,
            len(nodes),
            ", ".join(f"{n.node_id}:{n.role or '?'}" for n in nodes),
        )

    def start(self, master: NodeSpec) -> None:
        """Name the cluster's master node (the one with the ``master`` resource) with the control plane's id."""
        nodes = self.gcs.nodes()
        head = next((n for n in nodes if n.node_id == master.node_id), None)
        if head is None:
            candidates = sorted(
                (n for n in nodes if n.resources.get("master", 0) >= 2), key=lambda n: (not n.is_head, n.node_id)
            )
            if not candidates:
                raise RayProviderError(f"the Ray cluster at {self.address} has no master node")
            self.gcs.alias(master.node_id, candidates[0].ray_node_id)
            head = candidates[0]
        log.info("master %s is Ray node %s at %s", master.node_id, head.ray_node_id, self.address)

    def add_node(self, spec: NodeSpec) -> None:
        raise ExternalClusterError(
            f"cannot add node {spec.node_id}: the external Ray cluster at {self.address} owns its nodes "
            "(its own autoscaler adds them); use the 'local' backend to simulate scaling"
        )

    def remove_node(self, node_id: str, *, graceful: bool) -> None:
        raise ExternalClusterError(
            f"cannot remove node {node_id}: the external Ray cluster at {self.address} owns its nodes "
            "(its own autoscaler removes them); use the 'local' backend to simulate scaling"
        )

    def _signal_local(self, node: RayNode) -> bool:
        if self._local_signals is not None:
            return self._local_signals
        return node.address in _local_ips()

    def shutdown(self) -> None:
        """Stop this provider's steps; the external cluster keeps running."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_steps()
        log.info("detached from Ray cluster at %s", self.gcs.address)


# --------------------------------------------------------------------------------------------------------------
# The step driver (runs in its own process: python -m cluster.ray_provider run-step <step.json>)


class StepCancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """SIGTERM (EMR SEND_INTERRUPT) reached the step driver."""


class _Status:
    def __init__(self, path: Path, step_id: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"step_id": step_id, "pid": os.getpid(), "started_at": time.time()}
        self._lock = threading.Lock()

    def update(self, **values: Any) -> None:
        with self._lock:
            self.data.update(values)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2))
            tmp.replace(self.path)


class _Watchdog:
    """Kill this driver (with a clear message) when a phase outlives its deadline."""

    def __init__(self, status: _Status, step_id: str) -> None:
        self.status = status
        self.step_id = step_id
        self._timer: threading.Timer | None = None

    @contextlib.contextmanager
    def phase(self, name: str, timeout: float, hint: str) -> Iterator[None]:
        """Run a phase; past ``timeout``, the step FAILED with exit code 3 and the reason in status.json."""

        def expire() -> None:
            message = f"{name} did not finish within {timeout:.0f}s: {hint}"
            log.error("step %s: %s", self.step_id, message)
            self.status.update(state="FAILED", error=message, exit_code=3, finished_at=time.time())
            logging.shutdown()
            os._exit(3)

        self._timer = threading.Timer(timeout, expire)
        self._timer.daemon = True
        self._timer.start()
        try:
            yield
        finally:
            self._timer.cancel()


def _sample_live(sc: Any, path: Path, stop: threading.Event, interval: float = 1.0) -> None:
    """Write the status tracker's view (active stages, running tasks per executor host) to ``live.json``."""
    tracker = sc.statusTracker()
    driver_host = sc.getConf().get("spark.driver.host")
    while not stop.wait(interval):
        try:
            stages = []
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    stages.append(
                        {
                            "id": info.stageId,
                            "attempt": info.currentAttemptId,
                            "tasks": info.numTasks,
                            "active": info.numActiveTasks,
                            "completed": info.numCompletedTasks,
                            "failed": info.numFailedTasks,
                        }
                    )
            executors = [
                {"host": e.host(), "port": e.port(), "running": e.numRunningTasks()}
                for e in sc._jsc.sc().statusTracker().getExecutorInfos()
            ]
            sample = {"time": time.time(), "driver_host": driver_host, "stages": stages, "executors": executors}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sample))
            tmp.replace(path)
        except Exception:  # noqa: BLE001 - Spark stopping under us (the script may stop it): keep quiet, retry
            continue


def _watch_parent(parent_pid: int, step_id: str) -> None:
    while True:
        time.sleep(2)
        if not psutil.pid_exists(parent_pid) or os.getppid() == 1:
            log.error("step %s: the provider process %d is gone, stopping the step", step_id, parent_pid)
            logging.shutdown()
            os._exit(4)


class _Cancel:
    """SIGTERM handling of the step driver (EMR's SEND_INTERRUPT).

    A Python signal handler only runs on the main thread between bytecodes, and the main thread sits in a py4j
    call for as long as a Spark job runs; Ray's core worker also installs a SIGTERM handler that aborts. So the
    driver blocks SIGTERM in every thread (before Ray starts any) and one thread takes it with ``sigwait``: it
    cancels the running Spark jobs (the script's action then fails and the driver ends the step as CANCELLED),
    and exits with 143 itself if the driver has not finished ``grace`` seconds later.
    """

    def __init__(self, status: _Status, step_id: str, grace: float = 15.0) -> None:
        self.status = status
        self.step_id = step_id
        self.grace = grace
        self.requested = threading.Event()
        self.done = threading.Event()
        self.spark: Any = None
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(target=self._wait, name="sigterm", daemon=True).start()

    def _wait(self) -> None:
        signal.sigwait({signal.SIGTERM})
        self.requested.set()
        log.warning("step %s: SIGTERM: cancelling the step", self.step_id)
        if self.spark is not None:
            with contextlib.suppress(Exception):
                self.spark.sparkContext.cancelAllJobs()
        if self.spark is None or not self.done.wait(self.grace):
            self.status.update(state="CANCELLED", exit_code=143, finished_at=time.time())
            logging.shutdown()
            os._exit(143)


def run_step_driver(spec_path: Path) -> int:
    """The step driver: connect to Ray, start Spark on RayDP, run the script; returns the exit code."""
    spec = json.loads(spec_path.read_text())
    step_id = spec["step_id"]
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.FileHandler(spec["controller_log"]), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    status = _Status(Path(spec["status_path"]), step_id)
    cancel = _Cancel(status, step_id)  # first: SIGTERM must be blocked before any other thread starts
    watchdog = _Watchdog(status, step_id)
    threading.Thread(target=_watch_parent, args=(spec["parent_pid"], step_id), daemon=True).start()
    t0 = time.monotonic()
    address = spec["address"]
    status.update(state="CONNECTING", address=address)
    code = 1
    spark_started = False
    stop_live = threading.Event()
    try:
        try:
            _check_tcp(address, spec["gcs_timeout"])
        except RayUnavailableError as exc:
            log.error("step %s: %s", step_id, exc)
            status.update(state="FAILED", error=str(exc), exit_code=2, finished_at=time.time())
            return 2
        with watchdog.phase("connecting to Ray", spec["startup_timeout"], f"is the Ray head at {address} up?"):
            ray.init(
                address=address,
                _node_ip_address=spec.get("node_ip_address"),
                namespace=spec["namespace"],
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        ray_s = time.monotonic() - t0
        job_id = ray.get_runtime_context().get_job_id()
        log.info("step %s: connected to Ray at %s as job %s in %.1fs", step_id, address, job_id, ray_s)
        status.update(state="STARTING_SPARK", ray_connect_s=ray_s, ray_job_id=job_id)
        import raydp

        configs = dict(spec["configs"])
        hint = (
            "RayDP's master actors need 2 units of the 'master' resource; executors need "
            f"{ {k: v for k, v in configs.items() if k.startswith(EXECUTOR_CONF_PREFIX)} }"
        )
        t1 = time.monotonic()
        with watchdog.phase("starting Spark on RayDP", spec["startup_timeout"], hint):
            spark = raydp.init_spark(
                spec["app_name"],
                spec["num_executors"],
                spec["executor_cores"],
                spec["executor_memory"],
                fault_tolerant_mode=configs.get(CONF_FAULT_TOLERANT, "false").lower() == "true",
                configs=configs,
            )
        spark_started = True
        cancel.spark = spark
        spark_s = time.monotonic() - t1
        app_id = spark.sparkContext.applicationId
        log.info("step %s: Spark %s up on RayDP in %.1fs (%s)", step_id, app_id, spark_s, spark.sparkContext.master)
        status.update(state="RUNNING", spark_up_s=spark_s, app_id=app_id)
        live_path = Path(spec["status_path"]).with_name("live.json")
        threading.Thread(
            target=_sample_live, args=(spark.sparkContext, live_path, stop_live), name="live-status", daemon=True
        ).start()
        script = spec["script"]
        sys.argv = [script, *spec["args"]]
        sys.path.insert(0, str(Path(script).parent))
        t2 = time.monotonic()
        if cancel.requested.is_set():
            raise StepCancelled()
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - the script's failure is the step's
            if not cancel.requested.is_set():
                traceback.print_exc()
            code = 1
        if cancel.requested.is_set():
            raise StepCancelled()
        status.update(script_s=time.monotonic() - t2)
        state = "COMPLETED" if code == 0 else "FAILED"
        log.info("step %s: script exited %d (%s) after %.1fs", step_id, code, state, time.monotonic() - t2)
        status.update(state=state, exit_code=code)
    except StepCancelled:
        log.warning("step %s: cancelled (SIGTERM)", step_id)
        code = 143
        status.update(state="CANCELLED", exit_code=code)
    except Exception as exc:  # noqa: BLE001 - reported in status.json and the controller log
        log.exception("step %s: failed before the script ran", step_id)
        code = 1
        status.update(state="FAILED", exit_code=code, error=f"{type(exc).__name__}: {exc}")
    finally:
        stop_live.set()

        def stop() -> None:
            if spark_started:
                with contextlib.suppress(Exception):
                    import raydp

                    raydp.stop_spark()
            with contextlib.suppress(Exception):
                ray.shutdown()

        stopper = threading.Thread(target=stop, name="stop-spark", daemon=True)
        stopper.start()
        stopper.join(timeout=60)
        cancel.done.set()
        status.update(runtime_s=time.monotonic() - t0, finished_at=time.time())
        if stopper.is_alive():
            log.warning("step %s: Spark/Ray did not stop in time; exiting %d anyway", step_id, code)
            logging.shutdown()
            os._exit(code)
    return code


def _signal_main(address: str, ray_node_id: str, pids: list[int], sig: str) -> int:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)

    @ray.remote(num_cpus=0)
    def send(pids: list[int], signum: int) -> int:
        sent = 0
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
                sent += 1
        return sent

    strategy = NodeAffinitySchedulingStrategy(node_id=ray_node_id, soft=False)
    signum = int(getattr(signal, f"SIG{sig}"))
    count = int(ray.get(send.options(scheduling_strategy=strategy).remote(pids, signum), timeout=60))
    sys.stdout.write(f"{count}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.ray_provider")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-step", help="run a step driver from its step.json")
    run.add_argument("spec", type=Path)
    sig = sub.add_parser("signal", help="send a signal to processes on a Ray node")
    sig.add_argument("--address", required=True)
    sig.add_argument("--node", required=True)
    sig.add_argument("--pids", required=True)
    sig.add_argument("--signal", default="PWR")
    ns = parser.parse_args(argv)
    if ns.command == "run-step":
        return run_step_driver(ns.spec)
    return _signal_main(ns.address, ns.node, [int(p) for p in ns.pids.split(",") if p], ns.signal)


if __name__ == "__main__":
    sys.exit(main())
