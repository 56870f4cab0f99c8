"""Cluster benchmark: the EMR-like cluster on a local Ray cluster against plain ``spark-submit --master local[2]``.

Run::

    .venv/bin/python bench/cluster_bench.py             # full run, 8-15 minutes on 2 cores
    .venv/bin/python bench/cluster_bench.py --quick     # smoke run (less data, task nodes 0 and 2), 4-8 minutes

What it measures, in one run, with one catalog server and one workload (``bench/jobs/orders_job.py``, a
Glue-style job: build orders, shuffle, ApplyMapping, write an Iceberg table through the catalog):

* time from ``Cluster.create`` to WAITING for 1 master + 1 core + 2 task nodes (backend ``local``: four Ray
  nodes on this machine);
* the same step on that cluster and under plain ``.venv/bin/spark-submit --master local[2]`` (the baseline),
  back to back (local, cluster, Spot run, cluster, local): end-to-end runtime (``step`` RUNNING to COMPLETED,
  against the spark-submit process) and in-job runtime (the job's own clock, from its SparkSession to the end);
* runtime and cost of the step with 0, 1, 2 and 4 task nodes (the task group resized between runs);
* the runtime overhead of one Spot interruption (a task node interrupted while it runs tasks; 2-minute notice
  scaled by ``spot.time_scale``), with the executors lost, tasks recomputed and node-seconds wasted.

Results go to ``bench/results/cluster.json``; see ``bench/README.md`` for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table as RichTable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.server import CatalogServer  # noqa: E402
from catalog.settings import CatalogSettings, ClusterSettings, Settings  # noqa: E402
from cluster.api import Cluster  # noqa: E402
from cluster.provider import METRIC_NODE_RUNNING_TASKS_PREFIX  # noqa: E402
from cluster.states import ClusterState, NodeState, StepState  # noqa: E402
from cluster.submit import spark_submit_path  # noqa: E402

log = logging.getLogger("lakeforge.bench.cluster")

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "cluster.json"
JOB = ROOT / "bench" / "jobs" / "orders_job.py"
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1"
JOB_SECONDS = re.compile(r"job_seconds=([0-9.]+)")

# Goals of the issue.
GOAL_CLUSTER_OVER_LOCAL = 1.5  # step runtime on the 1+1+2 cluster / spark-submit --master local[2]

CONFIG: dict[str, Any] = {
    "name": "bench",
    "release": "emr-7.2.0",
    "applications": ["Hadoop", "Spark"],
    "backend": "local",
    "instance_groups": {
        "master": {"instance_type": "m5.xlarge", "count": 1},
        "core": {"instance_type": "m5.xlarge", "count": 1},
        "task": [{"name": "task", "instance_type": "m5.xlarge", "count": 2, "market": "SPOT"}],
    },
    # m5.xlarge (4 vCPU, 16 GiB) -> a 1-CPU, 1-GiB Ray node; the 2-minute Spot notice lasts 12 s.
    "resources": {"cpus_per_vcpu": 0.25, "memory_mib_per_gib": 64},
    "spot": {"notice_seconds": 120, "time_scale": 0.1},
    "decommission_timeout_seconds": 3,
}


@dataclass
class Run:
    """One execution of the workload."""

    label: str
    where: str  # "local[2]" or "cluster"
    task_nodes: int | None
    runtime_s: float
    job_s: float | None
    ok: bool
    cost_usd: float | None = None
    node_seconds: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    spark_up_s: float | None = None
    loadavg: list[float] = field(default_factory=list)


@dataclass
class Check:
    figure: str
    value: float | None
    baseline: float | None
    unit: str
    ratio: float | None
    goal: str
    status: str


def loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


def conf(catalog_uri: str, partitions: int) -> dict[str, str]:
    """The Spark conf of every run, local or on the cluster (spark-defaults.conf supplies the rest)."""
    return {
        "spark.sql.catalog.lake.uri": catalog_uri,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.driver.memory": "1g",
        "spark.executor.extraJavaOptions": QUICK_JVM,
        "spark.driver.extraJavaOptions": QUICK_JVM,
        "spark.ray.raydp_app_master.extraJavaOptions": QUICK_JVM,
    }


def job_args(args: argparse.Namespace, table: str) -> list[str]:
    return [
        "--JOB_NAME",
        table,
        "--database",
        "bench",
        "--table",
        table,
        "--rows",
        str(args.rows),
        "--delay_ms",
        str(args.delay_ms),
        "--partitions",
        str(args.partitions),
    ]


def job_seconds(text: str) -> float | None:
    found = JOB_SECONDS.findall(text)
    return float(found[-1]) if found else None


# ----------------------------------------------------------------------------------------------------
# The two ways of running the workload
# ----------------------------------------------------------------------------------------------------
def run_local(args: argparse.Namespace, catalog_uri: str, table: str, logs: Path) -> Run:
    """``spark-submit --master local[2]``: the baseline."""
    cmd = [str(spark_submit_path()), "--master", "local[2]"]
    for key, value in conf(catalog_uri, args.partitions).items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(JOB), *job_args(args, table)]
    log_path = logs / f"{table}.log"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    start = time.monotonic()
    with log_path.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    runtime = time.monotonic() - start
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        log.error("local run %s failed (exit %d); log %s", table, proc.returncode, log_path)
    return Run(table, "local[2]", None, runtime, job_seconds(text), proc.returncode == 0, loadavg=loadavg())


def run_on_cluster(
    args: argparse.Namespace,
    cluster: Cluster,
    catalog_uri: str,
    table: str,
    *,
    interrupt: bool = False,
) -> Run:
    """The workload as a step; with ``interrupt``, one task node gets a Spot notice while it runs tasks."""
    tasks = len(running(cluster, "TASK"))
    step_id = cluster.add_step(table, str(JOB), job_args(args, table), spark_conf=conf(catalog_uri, args.partitions))
    step = cluster.step(step_id)
    if interrupt:
        victim = running(cluster, "TASK")[-1]
        key = f"{METRIC_NODE_RUNNING_TASKS_PREFIX}{victim}"
        cluster.wait_until(lambda: step.metrics.get(key, 0) >= 1 or step.machine.terminal, args.step_timeout)
        if not step.machine.terminal:
            log.info("interrupting %s while step %s runs tasks on it", victim, step_id)
            cluster.interrupt(victim)
    done = cluster.wait_for_step(step_id, args.step_timeout)
    assert done.started_at is not None and done.ended_at is not None
    stdout = (done.log_dir / "stdout").read_text(errors="replace") if (done.log_dir / "stdout").exists() else ""
    ok = done.state == StepState.COMPLETED
    if not ok:
        log.error("step %s (%s) ended %s: %s; logs %s", step_id, table, done.state, done.failure_reason, done.log_dir)
    report = cluster.cost_report().step(step_id)
    return Run(
        table,
        "cluster",
        tasks,
        done.ended_at - done.started_at,
        job_seconds(stdout),
        ok,
        cost_usd=report.total_usd,
        node_seconds=report.node_seconds,
        counters=done.counters.to_json(),
        spark_up_s=done.metrics.get("spark_up_s"),
        loadavg=loadavg(),
    )


def running(cluster: Cluster, role: str) -> list[str]:
    return [n.node_id for n in cluster.list_nodes(role=role, states=frozenset({NodeState.RUNNING}))]


def settle(cluster: Cluster, tasks: int, timeout: float) -> None:
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


def resize(cluster: Cluster, tasks: int, timeout: float) -> None:
    if len(running(cluster, "TASK")) != tasks:
        log.info("resizing the task group to %d", tasks)
        cluster.resize("task", tasks)
    settle(cluster, tasks, timeout)


# ----------------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def build_checks(create_s: float, runs: list[Run]) -> list[Check]:
    checks: list[Check] = [
        Check("create -> WAITING, 1 master + 1 core + 2 task", create_s, None, "s", None, "", "info")
    ]
    base = [r for r in runs if r.where == "local[2]" and r.ok]
    base_runtime = mean([r.runtime_s for r in base])
    base_job = mean([r.job_s for r in base if r.job_s is not None])
    twos = [r for r in runs if r.label.startswith("tasks2") and r.ok]
    two_runtime = mean([r.runtime_s for r in twos])
    two_job = mean([r.job_s for r in twos if r.job_s is not None])
    if two_runtime is not None and base_runtime:
        ratio = two_runtime / base_runtime
        status = "PASS" if ratio < GOAL_CLUSTER_OVER_LOCAL else "MISS (ratio)"
        checks.append(
            Check(
                f"step runtime, 1+1+2 cluster vs local[2] (means of {len(twos)} and {len(base)} runs)",
                two_runtime,
                base_runtime,
                "s",
                ratio,
                "< 1.5x",
                status,
            )
        )
        if two_job is not None and base_job:
            checks.append(
                Check(
                    "in-job runtime (no start-up), cluster vs local[2]", two_job, base_job, "s", two_job / base_job, "",
                    "info",
                )
            )  # fmt: skip
    counts = sorted({r.task_nodes for r in runs if r.where == "cluster" and r.label.startswith("tasks")}, key=int)
    for count in counts:
        same = [r for r in runs if r.label.startswith(f"tasks{count}") and r.where == "cluster"]
        ok = [r for r in same if r.ok]
        runtime = mean([r.runtime_s for r in ok])
        cost = mean([r.cost_usd for r in ok if r.cost_usd is not None])
        checks.append(
            Check(
                f"runtime, {count} task node(s) (cost ${fmt(cost, 4)} per run)",
                runtime,
                two_runtime,
                "s",
                runtime / two_runtime if runtime is not None and two_runtime else None,
                "",
                "info" if len(ok) == len(same) else "FAILED",
            )
        )
    spot = next((r for r in runs if r.label.startswith("spot")), None)
    if spot is not None and two_runtime:
        c = spot.counters
        checks.append(
            Check(
                f"runtime with one Spot interruption (lost executors {c.get('lost_executors')}, recomputed tasks "
                f"{c.get('recomputed_tasks')}, wasted node-s {fmt(c.get('wasted_node_seconds'))})",
                spot.runtime_s,
                two_runtime,
                "s",
                spot.runtime_s / two_runtime,
                "",
                "info" if spot.ok else "FAILED",
            )
        )
    return checks


def print_report(console: Console, meta: dict[str, Any], checks: list[Check], runs: list[Run]) -> None:
    console.rule("cluster benchmark")
    console.print(
        f"workload: {meta['rows']} rows, {meta['partitions']} partitions, {meta['delay_ms']} ms sleep per row per "
        f"stage; load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
        f"{meta['cpus']} CPUs; elapsed {meta.get('elapsed_seconds')} s"
    )
    detail = RichTable(title="runs")
    for col in ("run", "where", "task nodes", "runtime s", "in-job s", "spark up s", "cost $", "node-s", "ok", "load"):
        detail.add_column(col, justify="left" if col in ("run", "where") else "right")
    for r in runs:
        detail.add_row(
            r.label,
            r.where,
            "-" if r.task_nodes is None else str(r.task_nodes),
            fmt(r.runtime_s),
            fmt(r.job_s),
            fmt(r.spark_up_s),
            fmt(r.cost_usd, 4),
            fmt(r.node_seconds, 0),
            "yes" if r.ok else "NO",
            " ".join(f"{x:g}" for x in r.loadavg[:1]),
        )
    console.print(detail)
    table = RichTable(title="results (ratio = cost per run / baseline's; 1.0x = as fast)")
    for col in ("figure", "value", "baseline", "ratio", "goal", "status"):
        table.add_column(col, justify="left" if col in ("figure", "goal", "status") else "right")
    for c in checks:
        style = "green" if c.status == "PASS" else ("red" if c.status.startswith(("MISS", "FAILED")) else "")
        table.add_row(
            c.figure,
            f"{fmt(c.value)} {c.unit}",
            f"{fmt(c.baseline)} {c.unit}" if c.baseline is not None else "-",
            f"{c.ratio:.2f}x" if c.ratio is not None else "-",
            c.goal,
            f"[{style}]{c.status}[/]" if style else c.status,
        )
    console.print(table)


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="less data, task nodes 0 and 2 only (checks the script)")
    p.add_argument("--rows", type=int, default=None, help="rows of the workload (default 2400, quick 1200)")
    p.add_argument("--delay-ms", type=int, default=None, help="sleep per row per stage, ms (default 10, quick 5)")
    p.add_argument("--partitions", type=int, default=12, help="partitions per stage (default 12)")
    p.add_argument("--task-nodes", default=None, help="task node counts to run, comma-separated (default 0,1,2,4)")
    p.add_argument("--no-spot", action="store_true", help="skip the Spot interruption run")
    p.add_argument("--step-timeout", type=float, default=900.0, help="longest step, seconds")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake and cluster directories")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    if args.rows is None:
        args.rows = 1200 if args.quick else 2400
    if args.delay_ms is None:
        args.delay_ms = 5 if args.quick else 10
    counts = args.task_nodes or ("0,2" if args.quick else "0,1,2,4")
    args.task_counts = sorted({int(x) for x in counts.split(",") if x.strip()})
    if 2 not in args.task_counts:
        args.task_counts.append(2)  # the comparison with local[2] is on the 1+1+2 cluster
    return args


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("pyiceberg", "urllib3", "httpx", "httpcore", "uvicorn", "uvicorn.access", "catalog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("cluster").setLevel(logging.DEBUG if verbose else logging.WARNING)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so ``finally`` blocks terminate the cluster and delete the temp dirs."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyspark": dist_version("pyspark"),
        "ray": dist_version("ray"),
        "raydp": dist_version("raydp"),
        "quick": args.quick,
        "rows": args.rows,
        "delay_ms": args.delay_ms,
        "partitions": args.partitions,
        "task_counts": args.task_counts,
        "config": CONFIG,
        "loadavg_start": loadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="lfcb-", dir="/tmp"))
    logs = tmp / "local-logs"
    logs.mkdir()
    settings = Settings(  # type: ignore[call-arg]
        home=tmp / "lake",
        catalog=CatalogSettings(port=0, fsync=False),  # type: ignore[call-arg]
        cluster=ClusterSettings(),  # type: ignore[call-arg]  # the default reconcile interval (1 s)
    )
    runs: list[Run] = []
    create_s = float("nan")
    t_start = time.monotonic()
    cluster: Cluster | None = None
    try:
        with CatalogServer(settings) as server:
            uri = server.uri
            config_path = tmp / "cluster.yaml"
            config_path.write_text(yaml.safe_dump(CONFIG))
            t0 = time.monotonic()
            cluster = Cluster.create(config_path, settings=settings, timeout=600)
            create_s = time.monotonic() - t0
            log.info("cluster %s %s after %.1fs (catalog at %s)", cluster.id, cluster.state.value, create_s, uri)
            if cluster.state != ClusterState.WAITING:
                raise RuntimeError(f"cluster {cluster.id} is {cluster.state.value}: {cluster.state_detail}")
            # The comparison runs back to back, local - cluster - (Spot) - cluster - local, so that both sides see
            # the same machine load (the idle cluster stays up during the local runs too).
            log.info("baseline run 1 (spark-submit --master local[2])")
            runs.append(run_local(args, uri, "local_1", logs))
            log.info("cluster run 1 with 2 task nodes")
            runs.append(run_on_cluster(args, cluster, uri, "tasks2_1"))
            if not args.no_spot:
                settle(cluster, 2, 300)
                log.info("cluster run with 2 task nodes and one Spot interruption")
                runs.append(run_on_cluster(args, cluster, uri, "spot_2", interrupt=True))
                settle(cluster, 2, 300)  # the replacement joined
            log.info("cluster run 2 with 2 task nodes")
            runs.append(run_on_cluster(args, cluster, uri, "tasks2_2"))
            log.info("baseline run 2")
            runs.append(run_local(args, uri, "local_2", logs))
            for count in sorted((n for n in args.task_counts if n != 2), reverse=True):
                resize(cluster, count, 300)
                log.info("cluster run with %d task node(s)", count)
                runs.append(run_on_cluster(args, cluster, uri, f"tasks{count}"))
            t1 = time.monotonic()
            cluster.terminate()
            meta["terminate_seconds"] = round(time.monotonic() - t1, 1)
            meta["cluster_cost_usd"] = round(cluster.cost_report().total_usd, 6)
        meta["elapsed_seconds"] = round(time.monotonic() - t_start, 1)
    finally:
        if cluster is not None:
            cluster.terminate()
        if args.keep:
            log.info("kept the temporary lake and cluster under %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = loadavg()
    meta["create_to_waiting_seconds"] = round(create_s, 1)
    checks = build_checks(create_s, runs)
    print_report(console, meta, checks, runs)
    return {
        "meta": meta,
        "goals": {"cluster_over_local2_runtime_ratio": GOAL_CLUSTER_OVER_LOCAL},
        "checks": [asdict(c) for c in checks],
        "runs": [asdict(r) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        with interrupt_on_sigterm():
            results = run(args, console)
    except KeyboardInterrupt:
        log.error("interrupted; cluster terminated and temporary files removed")
        return 130
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log.info("results written to %s", args.output)
    return 0 if all(r["ok"] for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
