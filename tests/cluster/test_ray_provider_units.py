"""The parts of cluster.ray_provider that need no Ray cluster: executor sizing, spark-defaults parsing, the
Spark event-log reader behind StepHandle.metrics()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.provider import (
    METRIC_LOST_EXECUTORS,
    METRIC_NODE_SHUFFLE_BYTES_PREFIX,
    METRIC_PENDING_TASKS,
    METRIC_RECOMPUTED_TASKS,
    METRIC_RUNNING_TASKS,
)
from cluster.ray_provider import (
    CPU_UNITS,
    EventLogReader,
    RayNode,
    RayProviderError,
    parse_memory,
    plan_executors,
    read_spark_defaults,
    step_spark_conf,
)

MIB = 1024**2


def node(
    node_id: str,
    role: str,
    cpus: float,
    mib: int,
    *,
    itype: str = "m5.xlarge",
    market: str = "ON_DEMAND",
    draining: bool = False,
    alive: bool = True,
) -> RayNode:
    """A node as LocalRayProvider starts it (CPU counted in CPU_UNITS)."""
    amount = cpus * CPU_UNITS
    resources = {"CPU": amount, "memory": float(mib * MIB), f"instance:{itype}": amount, f"market:{market}": amount}
    if role == "MASTER":
        resources["master"] = 64
    else:
        resources[role.lower()] = amount
        resources["executor"] = amount
    return RayNode(
        node_id=node_id,
        ray_node_id=node_id,
        role=role,
        instance_type=itype,
        market=market,
        num_cpus=cpus,
        memory_bytes=mib * MIB,
        resources=resources,
        cpu_units=CPU_UNITS,
        alive=alive,
        draining=draining,
        is_head=role == "MASTER",
        address="127.0.0.1",
    )


CLUSTER = [
    node("i-m", "MASTER", 1.0, 1024),
    node("i-c1", "CORE", 1.0, 1024),
    node("i-t1", "TASK", 0.5, 512, itype="m5.large", market="SPOT"),
    node("i-t2", "TASK", 2.0, 2048, itype="m5.2xlarge", market="SPOT"),
]


def test_default_plan_fills_core_and_task_nodes_never_the_master() -> None:
    plan = plan_executors({}, CLUSTER)
    assert plan.eligible_nodes == ("i-c1", "i-t1", "i-t2")
    # Sized to the smallest node: half a CPU and 512 MiB per executor, so 2 + 1 + 4 slots.
    assert (plan.ray_cpu, plan.ray_memory_bytes, plan.instances) == (0.5, 512 * MIB, 7)
    assert plan.resources == {"executor": 50.0}
    conf = plan.configs()
    assert conf["spark.ray.raydp_spark_executor.actor.resource.executor"] == "50"
    assert conf["spark.ray.raydp_spark_executor.actor.resource.cpu"] == "50"
    assert conf["spark.ray.raydp_spark_executor.actor.resource.memory"] == str(512 * MIB)


def test_plan_by_role_instance_type_and_market() -> None:
    assert plan_executors({"spark.lakeforge.executor.roles": "CORE"}, CLUSTER).eligible_nodes == ("i-c1",)
    plan = plan_executors({"spark.lakeforge.executor.instanceType": "m5.2xlarge", "spark.executor.cores": "2"}, CLUSTER)
    assert plan.eligible_nodes == ("i-t2",) and plan.instances == 1 and plan.ray_cpu == 2.0
    assert plan.resources == {"executor": 200.0, "instance:m5.2xlarge": 200.0}
    spot = plan_executors({"spark.lakeforge.executor.market": "spot"}, CLUSTER)
    assert spot.eligible_nodes == ("i-t1", "i-t2") and "market:SPOT" in spot.resources
    with pytest.raises(RayProviderError, match="CORE and/or TASK"):
        plan_executors({"spark.lakeforge.executor.roles": "MASTER"}, CLUSTER)


def test_plan_skips_draining_and_dead_nodes_and_waits_for_capacity() -> None:
    nodes = [
        node("i-m", "MASTER", 1, 1024),
        node("i-t1", "TASK", 1, 1024, draining=True),
        node("i-t2", "TASK", 1, 1024, alive=False),
    ]
    plan = plan_executors({}, nodes)
    assert plan.eligible_nodes == () and plan.instances == 1  # one pending executor: the scale-out signal
    assert plan_executors({"spark.executor.instances": "4"}, nodes).instances == 4


def test_external_cluster_without_executor_resource_uses_core() -> None:
    head = RayNode(
        node_id="h",
        ray_node_id="h",
        role="MASTER",
        instance_type=None,
        market="ON_DEMAND",
        num_cpus=2.0,
        memory_bytes=2048 * MIB,
        resources={"CPU": 2, "memory": 2048 * MIB, "master": 4, "core": 2},
        cpu_units=1.0,
        alive=True,
        draining=False,
        is_head=True,
        address="10.0.0.1",
    )
    plan = plan_executors({}, [head])
    assert plan.resources == {"core": 1.0} and plan.instances == 2
    assert plan.configs()["spark.ray.raydp_spark_executor.actor.resource.cpu"] == "1"


def test_step_conf_layers_defaults_provider_settings_and_step(tmp_path: Path) -> None:
    defaults = tmp_path / "spark-defaults.conf"
    defaults.write_text(
        "# comment\n\nspark.sql.catalog.lake.uri   http://127.0.0.1:8181\nspark.a=1\nspark.b  two words\n"
        "spark.decommission.enabled false\n"
    )
    assert read_spark_defaults(defaults)["spark.b"] == "two words"
    plan = plan_executors({}, CLUSTER)
    conf = step_spark_conf(
        {"spark.sql.catalog.lake.uri": "http://x", "spark.lakeforge.executor.roles": "CORE,TASK"},
        plan,
        tmp_path / "logs",
        defaults,
    )
    assert conf["spark.sql.catalog.lake.uri"] == "http://x" and conf["spark.a"] == "1"
    assert conf["spark.decommission.enabled"] == "true"  # the provider's settings beat the file
    assert conf["spark.shuffle.service.enabled"] == "false"
    assert conf["spark.eventLog.dir"] == (tmp_path / "logs" / "spark-events").resolve().as_uri()
    assert conf["spark.executor.instances"] == "7"
    assert "spark.lakeforge.executor.roles" not in conf


def test_parse_memory() -> None:
    assert parse_memory("512m") == 512 * MIB and parse_memory("1g") == 1024 * MIB and parse_memory("2048") == 2048
    with pytest.raises(RayProviderError):
        parse_memory("lots")


def _write(path: Path, events: list[dict[str, Any]], partial: str = "") -> None:
    with path.open("a") as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")
        fh.write(partial)


def _task(
    kind: str, stage: int, tid: int, index: int, executor: str, reason: str = "Success", **kw: Any
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "Event": f"SparkListenerTask{kind}",
        "Stage ID": stage,
        "Stage Attempt ID": kw.get("stage_attempt", 0),
        "Task Info": {"Task ID": tid, "Index": index, "Attempt": kw.get("attempt", 0), "Executor ID": executor},
    }
    if kind == "End":
        ev["Task End Reason"] = {"Reason": reason}
        ev["Task Metrics"] = {"Executor Run Time": 1500, "Shuffle Write Metrics": {"Shuffle Bytes Written": 100}}
    return ev


def test_event_log_reader_counts_incrementally(tmp_path: Path) -> None:
    events = tmp_path / "spark-events"
    events.mkdir()
    log = events / "app-1.inprogress"
    added = [
        {
            "Event": "SparkListenerExecutorAdded",
            "Executor ID": e,
            "Executor Info": {"Attributes": {"LAKEFORGE_NODE_ID": n}},
        }
        for e, n in (("1", "i-c1"), ("2", "i-t1"))
    ]
    stage = {
        "Event": "SparkListenerStageSubmitted",
        "Stage Info": {"Stage ID": 0, "Stage Attempt ID": 0, "Number of Tasks": 4},
    }
    _write(log, [*added, stage, _task("Start", 0, 1, 0, "1"), _task("Start", 0, 2, 1, "2")], partial='{"Event": "Spark')
    reader = EventLogReader(events)
    reader.poll()
    snap = reader.snapshot()
    assert snap["executors_added"] == 2 and snap[METRIC_RUNNING_TASKS] == 2 and snap[METRIC_PENDING_TASKS] == 2
    assert snap["node_running_tasks:i-c1"] == 1

    # The partial line completes; executor 2 is lost with its map output (resubmitted) and its running task.
    _write(log, [])
    with log.open("a") as fh:
        fh.write('ListenerLogStart"}\n')
    _write(
        log,
        [
            _task("End", 0, 1, 0, "1"),
            {"Event": "SparkListenerExecutorRemoved", "Executor ID": "2", "Removed Reason": "Executor decommission: x"},
            _task("End", 0, 2, 1, "2", reason="ExecutorLostFailure"),
            _task("End", 0, 1, 0, "1", reason="Resubmitted"),
            _task("Start", 0, 3, 1, "1", attempt=1),
        ],
    )
    log.rename(events / "app-1")  # the application ended: Spark drops ".inprogress"
    reader.poll()
    snap = reader.snapshot()
    assert snap["tasks_completed"] == 1 and snap["tasks_failed"] == 1 and snap["tasks_executor_lost"] == 1
    assert snap[METRIC_LOST_EXECUTORS] == 1 and snap["executors_decommissioned"] == 1
    assert snap[METRIC_RECOMPUTED_TASKS] == 2  # one resubmitted map task, one retried task
    assert snap["executor_run_time_s"] == pytest.approx(3.0)
    assert snap[f"{METRIC_NODE_SHUFFLE_BYTES_PREFIX}i-c1"] == 100
    assert f"{METRIC_NODE_SHUFFLE_BYTES_PREFIX}i-t1" not in snap  # gone with its executor
