"""The EMR-like cluster end to end on real Ray: a 1 master + 1 core + 2 task cluster from a YAML config through
the Cluster API (backend ``local``: four Ray nodes on this machine, Spark on RayDP), running a Glue-style step
that writes an Iceberg table through the session's catalog server; a Spot interruption mid-step; managed
scaling under a wide job and back when idle; terminate without leftovers; and the ``ray`` backend attached to
a Ray cluster started by another process, whose dead head ends the cluster with a clear state.

One local Ray cluster serves the module (Ray + RayDP start-up costs about 30 s); the tests run in file order
and each leaves the cluster WAITING with its launch shape. The external cluster starts only after the local
cluster is terminated (never two Ray clusters at once on 2 cores).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from pyiceberg.catalog.rest import RestCatalog
from typer.testing import CliRunner

from catalog.server import CatalogServer
from catalog.settings import ClusterSettings, Settings
from cluster.api import Cluster
from cluster.backends import AttachedRayProvider, BackendSpec, build_provider
from cluster.cli import app
from cluster.config import ManagedScalingConfig, load_config
from cluster.events import EntityKind
from cluster.provider import METRIC_NODE_RUNNING_TASKS_PREFIX
from cluster.ray_provider import LocalRayProvider
from cluster.states import ClusterState, ClusterStateChangeReason, NodeState, StepState

pytestmark = [pytest.mark.ray, pytest.mark.slow]

log = logging.getLogger(__name__)

JOBS = Path(__file__).parent / "ray_jobs"
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1"
STEP_TIMEOUT = 420.0
#: Measured timings, logged at the end of the module (pytest -o log_cli=true shows them).
TIMINGS: dict[str, float] = {}

CONFIG = {
    "name": "e2e",
    "release": "emr-7.2.0",
    "applications": ["Hadoop", "Spark"],
    "backend": "local",
    "instance_groups": {
        "master": {"instance_type": "m5.xlarge", "count": 1},
        "core": {"instance_type": "m5.xlarge", "count": 1},
        "task": [{"name": "spot-task", "instance_type": "m5.xlarge", "count": 2, "market": "SPOT"}],
    },
    # m5.xlarge (4 vCPU, 16 GiB) becomes a 1-CPU, 1-GiB Ray node; the 2-minute Spot notice lasts 12 s.
    "resources": {"cpus_per_vcpu": 0.25, "memory_mib_per_gib": 64},
    "spot": {"notice_seconds": 120, "time_scale": 0.1},
    "decommission_timeout_seconds": 3,
}


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def step_conf(server: CatalogServer, **extra: str) -> dict[str, str]:
    conf = {
        "spark.sql.catalog.lake.uri": server.uri,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.executor.extraJavaOptions": QUICK_JVM,
        "spark.driver.extraJavaOptions": QUICK_JVM,
        "spark.ray.raydp_app_master.extraJavaOptions": QUICK_JVM,
    }
    conf.update(extra)
    return conf


def logs_of(cluster: Cluster, step_id: str) -> str:
    step = cluster.step(step_id)
    parts = [f"step {step_id}: {step.state.value} ({step.failure_reason})"]
    for name in ("controller", "stderr", "stdout"):
        path = step.log_dir / name
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()
            parts.append(f"--- {name} (last 40 lines)\n" + "\n".join(lines[-40:]))
    return "\n".join(parts)


def finish(cluster: Cluster, step_id: str, timeout: float = STEP_TIMEOUT) -> StepState:
    try:
        return cluster.wait_for_step(step_id, timeout).state
    except TimeoutError:
        cluster.cancel_step(step_id, force=True)
        pytest.fail(f"step {step_id} did not finish within {timeout}s\n{logs_of(cluster, step_id)}")


def read_ids(server: CatalogServer, name: str, column: str) -> list[int]:
    table = RestCatalog("lake", uri=server.uri).load_table(name)
    return sorted(int(v) for v in table.scan().to_arrow().column(column).to_pylist())


def running(cluster: Cluster, role: str) -> list[str]:
    return [n.node_id for n in cluster.list_nodes(role=role, states=frozenset({NodeState.RUNNING}))]


def settle(cluster: Cluster, tasks: int = 2, timeout: float = 180) -> None:
    """Wait until the cluster is WAITING with ``tasks`` running task nodes and nothing starting or draining."""
    moving = frozenset(
        {NodeState.REQUESTED, NodeState.PROVISIONING, NodeState.BOOTSTRAPPING, NodeState.DECOMMISSIONING}
    )
    cluster.wait_until(
        lambda: (
            cluster.state == ClusterState.WAITING
            and len(running(cluster, "TASK")) == tasks
            and not cluster.list_nodes(states=moving)
        ),
        timeout,
    )


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    yield
    log.warning("cluster_on_ray timings: %s", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    return Settings(home=home / "lake", cluster=ClusterSettings(reconcile_interval_seconds=0.5))  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def cluster(home: Path, settings: Settings) -> Iterator[Cluster]:
    """The module's cluster, created from a YAML file through the API (backend from the config: local)."""
    path = home / "cluster.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    t0 = time.monotonic()
    created = Cluster.create(path, settings=settings, timeout=300)
    TIMINGS["create_to_waiting_s"] = time.monotonic() - t0
    try:
        yield created
    finally:
        created.terminate()


def test_launch_places_every_node_by_role(cluster: Cluster) -> None:
    assert cluster.state == ClusterState.WAITING, cluster.describe()
    assert isinstance(cluster.provider, LocalRayProvider)
    assert [(n.role, n.state) for n in cluster.list_nodes()] == [
        ("MASTER", NodeState.RUNNING),
        ("CORE", NodeState.RUNNING),
        ("TASK", NodeState.RUNNING),
        ("TASK", NodeState.RUNNING),
    ]
    ray_nodes = {n.node_id: n for n in cluster.provider.nodes()}
    assert set(ray_nodes) == {n.node_id for n in cluster.list_nodes()}
    for node in cluster.list_nodes():
        ray_node = ray_nodes[node.node_id]
        assert (ray_node.role, ray_node.market, ray_node.instance_type) == (node.role, node.market, "m5.xlarge")
        assert ray_node.num_cpus == 1.0 and ray_node.memory_bytes == 1024**3
    assert cluster.hdfs is not None and cluster.hdfs.live_nodes() == running(cluster, "CORE")


def test_glue_step_writes_an_iceberg_table(cluster: Cluster, server: CatalogServer) -> None:
    t0 = time.monotonic()
    step_id = cluster.add_step(
        "orders",
        str(JOBS / "glue_orders.py"),
        ["--JOB_NAME", "orders", "--database", "e2e", "--table", "orders", "--rows", "3000", "--delay_ms", "0"],
        spark_conf=step_conf(server),
        action_on_failure="CANCEL_AND_WAIT",
    )
    assert finish(cluster, step_id) == StepState.COMPLETED, logs_of(cluster, step_id)
    TIMINGS["glue_step_s"] = time.monotonic() - t0
    assert read_ids(server, "e2e.orders", "order_id") == list(range(3000))
    table = RestCatalog("lake", uri=server.uri).load_table("e2e.orders")
    assert [f.name for f in table.schema().fields] == ["order_id", "customer_id", "amount"]
    # Executors ran on the core and task nodes only; the driver and the application master on the master.
    assert isinstance(cluster.provider, LocalRayProvider)
    placed = {e.node_id for e in cluster.provider.executors(step_id)}
    assert placed == set(running(cluster, "CORE") + running(cluster, "TASK")), placed
    step = cluster.step(step_id)
    assert step.metrics["executors_added"] == 3 and step.counters.lost_executors == 0
    assert "written 3000" in (step.log_dir / "stdout").read_text()
    assert cluster.state == ClusterState.WAITING
    assert cluster.cost_report().step(step_id).total_usd > 0


def test_spot_interruption_mid_step_keeps_the_rows_exact(cluster: Cluster, server: CatalogServer) -> None:
    rows = 1800
    t0 = time.monotonic()
    step_id = cluster.add_step(
        "orders-spot",
        str(JOBS / "glue_orders.py"),
        ["--JOB_NAME", "spot", "--database", "e2e", "--table", "spot", "--rows", str(rows), "--delay_ms", "20"],
        spark_conf=step_conf(server),
    )
    step = cluster.step(step_id)
    victim = running(cluster, "TASK")[-1]
    key = f"{METRIC_NODE_RUNNING_TASKS_PREFIX}{victim}"
    wait_for(lambda: step.metrics.get(key, 0) >= 1 or step.machine.terminal, STEP_TIMEOUT, f"a task on {victim}")
    assert step.state == StepState.RUNNING, logs_of(cluster, step_id)
    notice = cluster.interrupt(victim)
    assert notice.terminate_at - notice.notice_at == pytest.approx(12.0)
    assert cluster.node(victim).state == NodeState.DECOMMISSIONING
    assert finish(cluster, step_id) == StepState.COMPLETED, logs_of(cluster, step_id)
    TIMINGS["spot_step_s"] = time.monotonic() - t0
    assert read_ids(server, "e2e.spot", "order_id") == list(range(rows))  # nothing lost, nothing twice

    node = cluster.node(victim)
    cluster.wait_until(lambda: node.machine.terminal, 60)
    assert node.state == NodeState.SPOT_INTERRUPTED
    assert [h.state for h in node.machine.history][-2:] == [NodeState.DECOMMISSIONING, NodeState.SPOT_INTERRUPTED]
    counters = cluster.step(step_id).counters
    assert counters.lost_executors >= 1 and counters.interrupted_nodes == 1, counters
    assert counters.wasted_node_seconds > 0, counters
    notices = cluster.timeline(kind=EntityKind.SPOT, entity_id=victim, dst="NOTICE")
    assert len(notices) == 1 and notices[0].details["cause"] == "command"
    # The group keeps its target: a replacement Spot node joins.
    settle(cluster)
    assert victim not in running(cluster, "TASK")


def test_managed_scaling_follows_a_wide_job_and_shrinks_when_idle(cluster: Cluster, server: CatalogServer) -> None:
    policy = ManagedScalingConfig(
        minimum=3,
        maximum=4,
        maximum_core=1,
        scale_out_cooldown_seconds=0,
        scale_in_cooldown_seconds=20,
        evaluation_interval_seconds=1,
        idle_seconds_before_scale_in=20,
    )
    cluster.put_managed_scaling_policy(policy)
    try:
        before = set(running(cluster, "TASK"))
        t0 = time.monotonic()
        # A wide job: 12 slow tasks per stage and four executors for three 1-CPU worker nodes, so tasks and one
        # executor wait for capacity (the scale-out signals) until a task node is added.
        step_id = cluster.add_step(
            "wide",
            str(JOBS / "glue_orders.py"),
            ["--JOB_NAME", "wide", "--database", "e2e", "--table", "wide", "--rows", "2400", "--delay_ms", "20"],
            spark_conf=step_conf(server, **{"spark.executor.instances": "4"}),
        )
        cluster.wait_until(lambda: len(running(cluster, "TASK")) == 3 or cluster.step(step_id).machine.terminal, 300)
        TIMINGS["scale_out_s"] = time.monotonic() - t0
        assert finish(cluster, step_id) == StepState.COMPLETED, logs_of(cluster, step_id)
        assert read_ids(server, "e2e.wide", "order_id") == list(range(2400))
        outs = cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_OUT")
        assert outs, cluster.describe()["managed_scaling"]
        first: Any = outs[0].details
        assert first["additions"][0]["role"] == "TASK", first  # the core group is at maximum_core
        assert first["inputs"]["pending_tasks"] > 0 or first["inputs"]["executor_requests"] > 0, first
        added = {n.node_id for n in cluster.list_nodes(role="TASK") if n.node_id not in before and n.running_at}
        assert added, cluster.describe()["nodes"]
        assert isinstance(cluster.provider, LocalRayProvider)
        assert added & {e.node_id for e in cluster.provider.executors(step_id)}  # an added node took an executor

        t1 = time.monotonic()
        settle(cluster, tasks=2, timeout=180)
        TIMINGS["scale_in_s"] = time.monotonic() - t1
        ins = cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_IN")
        assert ins and "idle" in ins[-1].reason
        assert cluster.pools["spot-task"].target == 2
        removed: Any = ins[-1].details["removals"]
        assert removed and all(cluster.node(n).state == NodeState.TERMINATED for n in removed)
        assert not set(removed) & cluster.provider.alive_nodes()
    finally:
        cluster.put_managed_scaling_policy(None)


def test_terminate_leaves_no_processes(cluster: Cluster, settings: Settings) -> None:
    provider = cluster.provider
    assert isinstance(provider, LocalRayProvider)
    before = provider.leftover_processes()
    assert "raylet" in " ".join(p.name() for p in before)
    t0 = time.monotonic()
    cluster.terminate()
    TIMINGS["terminate_s"] = time.monotonic() - t0
    assert cluster.state == ClusterState.TERMINATED
    assert cluster.state_reason == ClusterStateChangeReason.USER_REQUEST
    assert {n.state for n in cluster.list_nodes()} <= {NodeState.TERMINATED, NodeState.SPOT_INTERRUPTED}
    assert not alive(before) and provider.leftover_processes() == []
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        # this cluster's Ray processes and step drivers (not other clusters' on a shared machine)
        if str(provider.ray_temp_dir) in cmdline or f"cluster.ray_provider run-step {cluster.dir}" in cmdline:
            leftovers.append(cmdline[:200])
    assert leftovers == []
    report = json.loads((cluster.dir / "cost.json").read_text())
    assert {r["scope"] for r in report} >= {"node", "step", "cluster"}
    # The CLI reads a finished cluster from its files.
    result = CliRunner().invoke(
        app, ["cluster", "--clusters-dir", str(settings.clusters_dir), "describe", cluster.id, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "TERMINATED"


class ExternalRay:
    """A Ray cluster (head with the master resource + one core node) run by another process: tests.external_ray."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lfx-", dir="/tmp"))  # short: Ray's socket paths live under it
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self, timeout: float = 240) -> None:
        log_file = (self.dir / "external.log").open("wb")
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.external_ray", str(self.dir)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        ready = self.dir / "address.json"
        wait_for(lambda: ready.exists() or self.proc.poll() is not None, timeout, "the external Ray cluster")  # type: ignore[union-attr]
        if not ready.exists():
            raise RuntimeError(f"the external Ray cluster did not start:\n{self.log()}")
        self.address = json.loads(ready.read_text())["address"]

    def log(self) -> str:
        path = self.dir / "external.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def processes(self) -> list[psutil.Process]:
        own = [self.proc.pid] if self.proc is not None else []
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if proc.pid in own or str(self.dir) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        return alive(found)

    def kill(self) -> None:
        """SIGKILL, as a crashed head: its Ray processes die with it (they are started with PDEATHSIG)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        left = self.processes()
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(left, timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def external(cluster: Cluster) -> Iterator[ExternalRay]:
    cluster.terminate()  # never two Ray clusters at once
    t0 = time.monotonic()
    ext = ExternalRay()
    try:
        ext.start()
        TIMINGS["external_ray_up_s"] = time.monotonic() - t0
        yield ext
    finally:
        ext.cleanup()


def test_attached_ray_cluster_runs_a_step_and_a_dead_head_ends_it_clearly(
    external: ExternalRay, server: CatalogServer, settings: Settings, home: Path
) -> None:
    config = {
        **CONFIG,
        "name": "attached",
        "backend": "ray",
        "address": external.address,
        "instance_groups": {
            "master": {"instance_type": "m5.xlarge", "count": 1},
            "core": {"instance_type": "m5.xlarge", "count": 1},
        },
    }
    path = home / "attached.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = load_config(path)
    # The backend the config names, built by the factory, with short Ray timeouts so a dead head shows quickly.
    cluster_id = "j-ATTACHEDTEST1"
    spec = BackendSpec(cfg.backend, cfg.address, timeout=5)
    provider = build_provider(spec, settings.clusters_dir / cluster_id, cfg)
    assert isinstance(provider, AttachedRayProvider)
    attached = Cluster.create(cfg, provider, cluster_id=cluster_id, settings=settings, timeout=120)
    try:
        assert attached.state == ClusterState.WAITING, attached.describe()
        (master,) = running(attached, "MASTER")
        (core,) = running(attached, "CORE")
        assert provider.alive_nodes() == {master, core}
        ray_names = {n.ray_node_id: n.node_id for n in provider._ray().nodes()}
        assert {ray_names[r] for r, _ in provider.claims.values()} == {"ext-head", "ext-core"}
        step_id = attached.add_step(
            "write",
            str(JOBS / "write_table.py"),
            ["lake.e2e.attached", "500", str(home / "probe.json")],
            spark_conf=step_conf(server),
        )
        assert finish(attached, step_id) == StepState.COMPLETED, logs_of(attached, step_id)
        assert read_ids(server, "e2e.attached", "id") == list(range(500))

        attached.liveness_grace = 5.0
        t0 = time.monotonic()
        external.kill()
        attached.wait_until(lambda: attached.machine.terminal, 120)
        TIMINGS["dead_head_detected_s"] = time.monotonic() - t0
        assert attached.state == ClusterState.TERMINATED_WITH_ERRORS
        assert attached.state_reason == ClusterStateChangeReason.INSTANCE_FAILURE
        assert f"Ray head at {external.address}" in attached.state_detail
        assert attached.node(master).state == NodeState.TERMINATED
        result = CliRunner().invoke(
            app, ["cluster", "--clusters-dir", str(settings.clusters_dir), "describe", cluster_id, "--json"]
        )
        data = json.loads(result.stdout)
        assert data["state"] == "TERMINATED_WITH_ERRORS" and "unreachable" in data["state_detail"]
        wait_for(lambda: not external.processes(), 30, "the dead cluster's processes to exit")
    finally:
        attached.terminate()
