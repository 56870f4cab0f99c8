"""cluster.ray_provider on real Ray: a local multi-node cluster (master, core, two task nodes), RayDP steps that
write Iceberg tables through a real catalog server, Spot-style decommission, scale-out, cancel, shutdown, and the
attach path against a separately started Ray head.

One Ray cluster at a time: the local cluster lives for the tests that use it and is shut down by
``test_shutdown_leaves_no_processes``; the external head starts only after that (``external_head`` makes sure).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pyiceberg.catalog.rest import RestCatalog

from catalog.server import CatalogServer
from cluster.errors import ProviderError
from cluster.provider import (
    METRIC_EXECUTOR_REQUESTS,
    METRIC_LOST_EXECUTORS,
    METRIC_NODE_RUNNING_TASKS_PREFIX,
    METRIC_RUNNING_TASKS,
    NodeSpec,
)
from cluster.ray_provider import (
    ExternalClusterError,
    LocalRayProvider,
    RayClusterProvider,
    RayStep,
    RayUnavailableError,
)
from tests.conftest import make_settings

pytestmark = [pytest.mark.ray, pytest.mark.slow]

log = logging.getLogger(__name__)

JOBS = Path(__file__).parent / "ray_jobs"
GIB = 1024**3
MASTER = NodeSpec("i-master", "MASTER", "m5.xlarge", "ON_DEMAND", 1.0, GIB)
CORE = NodeSpec("i-core1", "CORE", "m5.xlarge", "ON_DEMAND", 1.0, GIB)
TASK1 = NodeSpec("i-task1", "TASK", "m5.xlarge", "SPOT", 1.0, GIB)
TASK2 = NodeSpec("i-task2", "TASK", "m5.xlarge", "SPOT", 1.0, GIB)
TASK3 = NodeSpec("i-task3", "TASK", "m5.xlarge", "SPOT", 1.0, GIB)
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1"
#: Generous: this machine has 2 cores shared with other test runs; every wait below is bounded by one of these.
STEP_TIMEOUT = 420.0
#: Measured timings, logged at the end of the module (pytest -o log_cli=true shows them).
TIMINGS: dict[str, float] = {}
#: Providers this module started, so that the external head never runs next to the local cluster.
_LOCAL: list[LocalRayProvider] = []


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def logs_of(step: RayStep) -> str:
    parts = []
    for name in ("controller", "stderr", "stdout"):
        path = step.log_dir / name
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()
            parts.append(f"--- {name} (last 40 lines)\n" + "\n".join(lines[-40:]))
    return "\n".join(parts)


def finish(step: RayStep, timeout: float = STEP_TIMEOUT) -> int:
    """Wait for the step's driver; on a hang, kill it and fail with its logs."""
    try:
        return step.wait(timeout)
    except ProviderError:
        step.cancel(force=True)
        pytest.fail(f"step {step.step_id} did not finish within {timeout}s\n{logs_of(step)}")


def step_conf(catalog: CatalogServer, **extra: str) -> dict[str, str]:
    conf = {
        "spark.sql.catalog.lake.uri": catalog.uri,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        # Short jobs on 2 shared cores: the C1 JIT and one GC thread start JVMs with much less CPU.
        "spark.executor.extraJavaOptions": QUICK_JVM,
        "spark.driver.extraJavaOptions": QUICK_JVM,
        "spark.ray.raydp_app_master.extraJavaOptions": QUICK_JVM,
    }
    conf.update(extra)
    return conf


def read_table(catalog: CatalogServer, name: str) -> list[dict[str, Any]]:
    table = RestCatalog("lake", uri=catalog.uri).load_table(name)
    rows: list[dict[str, Any]] = table.scan().to_arrow().to_pylist()
    return rows


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    result = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                result.append(proc)
        except psutil.Error:
            continue
    return result


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    """Log what the module measured on this machine (``-o log_cli=true`` shows it)."""
    yield
    log.warning("ray_provider timings: %s", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogServer]:
    with CatalogServer(make_settings(tmp_path_factory.mktemp("ray-lake"))) as server:
        yield server


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRayProvider]:
    """The module's local Ray cluster: master + 1 core + 2 task nodes of 1 CPU / 1 GiB each."""
    provider = LocalRayProvider(tmp_path_factory.mktemp("ray-local") / "cluster", timeout=90)
    _LOCAL.append(provider)
    t0 = time.monotonic()
    try:
        provider.start(MASTER)
        TIMINGS["ray_head_up_s"] = time.monotonic() - t0
        for spec in (CORE, TASK1, TASK2):
            provider.add_node(spec)
        TIMINGS["ray_cluster_up_s"] = time.monotonic() - t0
        yield provider
    finally:
        provider.shutdown()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


# ----------------------------------------------------------------------------------------------------------------
# Local cluster


def test_nodes_carry_role_size_and_market(local: LocalRayProvider) -> None:
    assert local.alive_nodes() == {"i-master", "i-core1", "i-task1", "i-task2"}
    nodes = {n.node_id: n for n in local.nodes()}
    master = nodes["i-master"]
    assert master.is_head and master.role == "MASTER"
    assert master.resources["master"] >= 2  # RayDP's two master actors need one unit each
    assert "executor" not in master.resources and "core" not in master.resources and "task" not in master.resources
    for node_id, role, market in (("i-core1", "CORE", "ON_DEMAND"), ("i-task1", "TASK", "SPOT")):
        node = nodes[node_id]
        assert (node.role, node.market, node.instance_type) == (role, market, "m5.xlarge")
        assert node.num_cpus == 1.0 and node.memory_bytes == GIB
        units = node.cpu_units  # Ray wants whole totals: CPUs (and what follows them) count in hundredths
        assert units == 100 and node.resources["CPU"] == units
        assert node.resources[role.lower()] == units and node.resources["executor"] == units
        assert node.resources[f"market:{market}"] == units and node.resources["instance:m5.xlarge"] == units


def test_step_writes_iceberg_table_on_core_and_task_nodes(
    local: LocalRayProvider, catalog: CatalogServer, logs: Path
) -> None:
    probe = logs.parent / "probe.json"
    t0 = time.monotonic()
    step = local.run_step(
        "s-write",
        str(JOBS / "write_table.py"),
        ["lake.raytest.numbers", "10000", str(probe)],
        step_conf(catalog),
        logs,
    )
    assert step.poll() is None
    assert finish(step) == 0, logs_of(step)
    TIMINGS["step_write_s"] = time.monotonic() - t0
    status = step.status()
    TIMINGS["spark_up_s"] = status["spark_up_s"]
    assert status["state"] == "COMPLETED"

    rows = read_table(catalog, "raytest.numbers")
    assert sorted(r["id"] for r in rows) == list(range(10000))
    assert all(r["v"] == 2 * r["id"] and r["k"] == r["id"] % 7 for r in rows)

    # Every executor ran on a core or task node, never on the master; the application master stayed there.
    executors = step.executors()
    assert len(executors) == 3, executors
    assert {e.node_id for e in executors} == {"i-core1", "i-task1", "i-task2"}

    seen = json.loads(probe.read_text())
    assert seen["count"] == 10000
    conf = seen["conf"]
    assert conf["spark.master"].startswith("ray://")
    assert conf["spark.sql.catalog.lake.uri"] == catalog.uri  # the step's conf wins over spark-defaults.conf
    assert conf["spark.sql.extensions"].endswith("IcebergSparkSessionExtensions")  # from spark-defaults.conf
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.decommission.enabled"] == conf["spark.storage.decommission.enabled"] == "true"
    assert conf["spark.storage.decommission.shuffleBlocks.enabled"] == "true"
    assert conf["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"
    assert conf["spark.shuffle.service.enabled"] == "false"
    assert conf["spark.executor.instances"] == "3"

    metrics = step.metrics()
    assert metrics["tasks_completed"] >= 6 and metrics.get("tasks_failed", 0) == 0
    assert metrics[METRIC_LOST_EXECUTORS] == 0
    assert metrics["executors_added"] == 3
    assert metrics["executor_cores"] == 1
    assert (logs / "stdout").is_file() and (logs / "stderr").is_file() and (logs / "controller").is_file()
    assert len(list((logs / "spark-events").iterdir())) == 1


def test_decommission_and_remove_task_node_mid_step(
    local: LocalRayProvider, catalog: CatalogServer, logs: Path
) -> None:
    rows = 1200
    step = local.run_step(
        "s-spot", str(JOBS / "slow_shuffle.py"), ["lake.raytest.spot", str(rows), "15"], step_conf(catalog), logs
    )

    def running_on_task2() -> bool:
        return step.metrics().get(f"{METRIC_NODE_RUNNING_TASKS_PREFIX}i-task2", 0) >= 1

    wait_for(lambda: running_on_task2() or step.poll() is not None, STEP_TIMEOUT, "a task running on i-task2")
    assert step.poll() is None, logs_of(step)
    t0 = time.monotonic()
    assert local.decommission("i-task2", notice_s=30) == 1
    time.sleep(8)  # the (time-scaled) two-minute notice: blocks migrate off the executor
    local.remove_node("i-task2", graceful=False)
    TIMINGS["decommission_to_gone_s"] = time.monotonic() - t0
    assert "i-task2" not in local.alive_nodes()
    local.remove_node("i-task2", graceful=False)  # already gone: a no-op

    assert finish(step) == 0, logs_of(step)
    got = read_table(catalog, "raytest.spot")
    assert sorted(r["id"] for r in got) == list(range(rows))  # nothing lost, nothing twice
    metrics = step.metrics()
    assert metrics[METRIC_LOST_EXECUTORS] >= 1, metrics
    assert metrics.get("executors_decommissioned", 0) >= 1, metrics
    # Executors that Ray restarted stayed off the drained node.
    assert all(e.node_id != "i-task2" for e in step.executors() if e.num_restarts > 0)


def test_added_task_node_takes_the_pending_executor(
    local: LocalRayProvider, catalog: CatalogServer, logs: Path
) -> None:
    assert local.alive_nodes() == {"i-master", "i-core1", "i-task1"}
    step = local.run_step(
        "s-grow",
        str(JOBS / "wait_executors.py"),
        ["lake.raytest.grow", "3000", "3", str(STEP_TIMEOUT)],
        step_conf(catalog, **{"spark.executor.instances": "3"}),
        logs,
    )
    # Two slots for three executors: one waits, which is the scale-out signal the control plane reads.
    wait_for(
        lambda: step.poll() is not None or step.metrics().get(METRIC_EXECUTOR_REQUESTS, 0) == 1,
        STEP_TIMEOUT,
        "a pending executor",
    )
    assert step.poll() is None, logs_of(step)
    t0 = time.monotonic()
    local.add_node(TASK3)
    TIMINGS["add_node_s"] = time.monotonic() - t0
    assert finish(step) == 0, logs_of(step)
    assert {e.node_id for e in step.executors()} == {"i-core1", "i-task1", "i-task3"}
    assert len(read_table(catalog, "raytest.grow")) == 3000
    assert step.metrics()["executors_added"] == 3


def test_cancel_stops_a_long_step(local: LocalRayProvider, catalog: CatalogServer, logs: Path) -> None:
    step = local.run_step("s-long", str(JOBS / "sleepy.py"), [], step_conf(catalog), logs)
    wait_for(
        lambda: step.poll() is not None or step.metrics().get(METRIC_RUNNING_TASKS, 0) >= 1,
        STEP_TIMEOUT,
        "the long tasks to run",
    )
    assert step.poll() is None, logs_of(step)
    tree = process_tree(step.pid)
    assert len(tree) >= 2  # the driver and its Spark JVM
    t0 = time.monotonic()
    step.cancel(force=False)
    code = finish(step, 60)
    TIMINGS["cancel_s"] = time.monotonic() - t0
    assert code == 143, logs_of(step)
    assert step.status()["state"] == "CANCELLED"
    wait_for(lambda: not alive(tree), 30, "the step's processes to exit")
    wait_for(lambda: not [e for e in step.executors() if e.state != "DEAD"], 60, "the step's executors to be released")
    step.cancel(force=True)  # after the end: a no-op


def test_force_cancel_while_spark_starts(local: LocalRayProvider, catalog: CatalogServer, logs: Path) -> None:
    step = local.run_step("s-kill", str(JOBS / "sleepy.py"), [], step_conf(catalog), logs)
    wait_for(lambda: step.status().get("state") in ("STARTING_SPARK", "RUNNING"), 120, "the driver to reach Ray")
    tree = process_tree(step.pid)
    step.cancel(force=True)
    assert finish(step, 30) == -signal.SIGKILL
    wait_for(lambda: not alive(tree), 30, "the killed step's processes to exit")
    wait_for(lambda: not [e for e in step.executors() if e.state != "DEAD"], 60, "the step's executors to be released")


def test_shutdown_leaves_no_processes(local: LocalRayProvider) -> None:
    before = local.leftover_processes()
    names = " ".join(p.name() for p in before)
    assert "raylet" in names and "gcs_server" in names
    t0 = time.monotonic()
    local.shutdown()
    TIMINGS["shutdown_s"] = time.monotonic() - t0
    assert not alive(before)
    assert local.leftover_processes() == []
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(local.ray_temp_dir) in cmdline or "cluster.ray_provider run-step" in cmdline:
            leftovers.append(cmdline[:200])
    assert leftovers == []
    local.shutdown()  # idempotent


# ----------------------------------------------------------------------------------------------------------------
# Attach to an existing Ray cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExternalHead:
    """``ray start --head --block`` in its own session; stopped by pid (never ``ray stop``, which kills by name)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = Path(tempfile.mkdtemp(prefix="lfext-", dir="/tmp"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: list[psutil.Process] = []

    def start(self, timeout: float = 120) -> None:
        ray_cli = Path(sys.executable).parent / "ray"
        cmd = [
            str(ray_cli),
            "start",
            "--head",
            f"--port={self.port}",
            """--resources={"master": 4, "core": 2}""",
            "--num-cpus=2",
            f"--memory={2 * GIB}",
            f"--object-store-memory={80 * 1024**2}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ]
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        env.pop("RAY_ADDRESS", None)
        log_file = (self.temp_dir / "ray-start.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.log()}")
            try:
                RayClusterProvider(self.address, timeout=5).shutdown()
                self.tree = process_tree(self.proc.pid)
                return
            except ProviderError:
                time.sleep(1)
        raise RuntimeError(f"ray start did not come up within {timeout}s: {self.log()}")

    def log(self) -> str:
        path = self.temp_dir / "ray-start.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        if self.proc is None:
            return
        procs = process_tree(self.proc.pid) + self.tree
        with_temp_dir = [
            p for p in psutil.process_iter(["cmdline"]) if str(self.temp_dir) in " ".join(p.info["cmdline"] or [])
        ]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        for proc in alive(procs + with_temp_dir):
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs + with_temp_dir, timeout=10)
        if self.proc.poll() is None:
            self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def external_head() -> Iterator[ExternalHead]:
    for provider in _LOCAL:  # never two Ray clusters at once
        provider.shutdown()
    head = ExternalHead()
    t0 = time.monotonic()
    try:
        head.start()
        TIMINGS["external_head_up_s"] = time.monotonic() - t0
        yield head
    finally:
        head.cleanup()


def test_attach_runs_steps_and_decommissions(external_head: ExternalHead, catalog: CatalogServer, logs: Path) -> None:
    provider = RayClusterProvider(external_head.address, timeout=10, local_signals=False)
    try:
        provider.start(MASTER)
        assert provider.alive_nodes() == {"i-master"}
        (head,) = provider.nodes()
        assert head.role == "MASTER" and head.resources["core"] == 2
        with pytest.raises(ExternalClusterError, match="autoscaler"):
            provider.add_node(TASK1)
        with pytest.raises(ExternalClusterError, match="autoscaler"):
            provider.remove_node("i-master", graceful=True)

        ready, release = logs.parent / "ready", logs.parent / "release"
        step = provider.run_step(
            "s-ext",
            str(JOBS / "write_then_hold.py"),
            ["lake.raytest.ext", "500", str(ready), str(release), str(STEP_TIMEOUT)],
            step_conf(catalog),
            logs,
        )
        # No `executor` resource on that cluster: executors ask for `core`, which its head offers twice.
        assert step.plan.resources == {"core": 1.0} and step.plan.instances == 2
        wait_for(lambda: ready.exists() or step.poll() is not None, STEP_TIMEOUT, "the table to be written")
        assert step.poll() is None, logs_of(step)
        assert {e.node_id for e in step.executors() if e.state == "ALIVE"} == {"i-master"}
        # The remote path (a Ray task pinned to the node sends SIGPWR), as for a node on another machine.
        t0 = time.monotonic()
        assert provider.decommission("i-master", drain=False) == 2
        TIMINGS["remote_sigpwr_s"] = time.monotonic() - t0

        def decommissioned() -> int:
            text = (logs / "stdout").read_text(errors="replace") + (logs / "stderr").read_text(errors="replace")
            return text.count("decommissioned message")

        wait_for(lambda: decommissioned() >= 2, 60, "Spark to see both executors decommissioning")
        release.touch()
        assert finish(step) == 0, logs_of(step)
        assert sorted(r["id"] for r in read_table(catalog, "raytest.ext")) == list(range(500))
    finally:
        provider.shutdown()


def test_dead_head_is_a_clear_error_not_a_hang(external_head: ExternalHead, logs: Path) -> None:
    provider = RayClusterProvider(external_head.address, timeout=5)
    external_head.kill()

    t0 = time.monotonic()
    with pytest.raises(RayUnavailableError, match=external_head.address):
        provider.alive_nodes()
    with pytest.raises(RayUnavailableError):
        provider.run_step("s-dead", str(JOBS / "sleepy.py"), [], {}, logs)
    with pytest.raises(RayUnavailableError, match="not reachable"):
        RayClusterProvider(external_head.address, timeout=5)
    assert time.monotonic() - t0 < 60

    # A step driver whose head died before it connected fails on its own, with the reason.
    logs.mkdir(parents=True, exist_ok=True)
    spec = {
        "step_id": "s-orphan",
        "script": str(JOBS / "sleepy.py"),
        "args": [],
        "address": external_head.address,
        "namespace": "lakeforge-step-s-orphan",
        "app_name": "orphan",
        "num_executors": 1,
        "executor_cores": 1,
        "executor_memory": "512m",
        "configs": {},
        "status_path": str(logs / "status.json"),
        "controller_log": str(logs / "controller"),
        "startup_timeout": 30,
        "gcs_timeout": 5,
        "parent_pid": os.getpid(),
    }
    (logs / "step.json").write_text(json.dumps(spec))
    t1 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cluster.ray_provider", "run-step", str(logs / "step.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert time.monotonic() - t1 < 60
    status = json.loads((logs / "status.json").read_text())
    assert status["state"] == "FAILED" and "not reachable" in status["error"]
    provider.shutdown()
