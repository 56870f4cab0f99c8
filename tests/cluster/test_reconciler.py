"""Pure reconcile decisions: launch outcome, idle timeout, steps -> cluster state, load, pool top-ups."""

from __future__ import annotations

import pytest

from cluster.nodes import CapacityPool, Node, PoolOption
from cluster.provider import NodeSpec
from cluster.reconciler import (
    after_steps,
    aggregate_load,
    auto_termination_due,
    choose_option,
    launch_outcome,
    plan_additions,
)
from cluster.states import NODE_TRANSITIONS, ClusterState, ClusterStateChangeReason, NodeState, StateMachine

N = NodeState
C = ClusterState


@pytest.mark.parametrize(
    ("master", "workers", "status", "fragment"),
    [
        (N.BOOTSTRAPPING, [], "pending", "still starting"),
        (N.RUNNING, [("CORE", N.PROVISIONING)], "pending", "still starting"),
        (N.TERMINATED, [("CORE", N.RUNNING)], "failed", "master"),
        (N.RUNNING, [], "failed", "no core node"),
        (N.RUNNING, [("CORE", N.RUNNING), ("TASK", N.TERMINATED)], "ready", "1 of 2"),
        (N.RUNNING, [("CORE", N.RUNNING), ("TASK", N.TERMINATED), ("TASK", N.TERMINATED)], "failed", "2 of 3"),
        (N.RUNNING, [("TASK", N.RUNNING), ("CORE", N.TERMINATED)], "failed", "no core node"),
    ],
)
def test_launch_outcome(master: NodeState, workers: list[tuple[str, NodeState]], status: str, fragment: str) -> None:
    outcome = launch_outcome(master, workers, tolerance=0.5, need_core=True)  # type: ignore[arg-type]
    assert outcome.status == status and fragment in outcome.reason


def test_launch_without_hdfs_needs_no_core() -> None:
    assert launch_outcome(N.RUNNING, [("TASK", N.RUNNING)], tolerance=0.0, need_core=False).status == "ready"


def test_auto_termination_due() -> None:
    assert not auto_termination_due(None, 10_000.0, 60.0)
    assert not auto_termination_due(100.0, 159.9, 60.0)
    assert auto_termination_due(100.0, 160.0, 60.0)
    assert not auto_termination_due(100.0, 1e9, None)


def test_after_steps() -> None:
    assert after_steps(C.WAITING, queue_idle=False, keep_alive=True).dst == C.RUNNING
    assert after_steps(C.RUNNING, queue_idle=True, keep_alive=True).dst == C.WAITING
    done = after_steps(C.RUNNING, queue_idle=True, keep_alive=False)
    assert done.dst is None and done.terminate == ClusterStateChangeReason.ALL_STEPS_COMPLETED
    assert after_steps(C.RUNNING, queue_idle=False, keep_alive=False).terminate is None
    assert after_steps(C.WAITING, queue_idle=True, keep_alive=True).dst is None


def test_aggregate_load_sums_steps_and_finds_busy_and_shuffle_nodes() -> None:
    load = aggregate_load(
        [
            {"pending_tasks": 3, "running_tasks": 2, "executor_requests": 1, "executor_cores": 2,
             "node_running_tasks:i-1": 2, "node_running_tasks:i-2": 0, "node_shuffle_bytes:i-2": 1e6},
            {"pending_tasks": 1, "node_running_tasks:i-3": 1, "node_shuffle_bytes:i-9": 5.0},
        ],
        ["i-1", "i-2", "i-3"],
    )  # fmt: skip
    assert (load.pending_tasks, load.running_tasks, load.executor_requests, load.executor_cores) == (4, 2, 1, 2)
    assert load.busy_nodes == {"i-1", "i-3"} and load.shuffle_nodes == {"i-2"}


def test_without_per_node_metrics_running_steps_keep_every_worker_busy() -> None:
    assert aggregate_load([{"running_tasks": 1}], ["a", "b"]).busy_nodes == {"a", "b"}
    assert aggregate_load([], ["a", "b"]).busy_nodes == frozenset()


def node(node_id: str, pool: str, state: NodeState, weight: float = 1.0) -> Node:
    machine = StateMachine.new(node_id, NODE_TRANSITIONS, state, 0.0)
    spec = NodeSpec(node_id, "TASK", "m5.xlarge", "SPOT", 1.0, 1)
    return Node(node_id, "TASK", pool, pool, "m5.xlarge", "SPOT", weight, spec, machine)


def flat_price(instance_type: str, market: str) -> float:
    return {"m5.xlarge": 0.08, "r5.xlarge": 0.09, "m5.2xlarge": 0.12}[instance_type]


def test_plan_additions_tops_up_pools_and_replaces_lost_or_draining_nodes() -> None:
    group = CapacityPool("task", "task", "TASK", "SPOT", (PoolOption("m5.xlarge"),), target=3)
    nodes = [node("a", "task", N.RUNNING), node("b", "task", N.DECOMMISSIONING), node("c", "task", N.SPOT_INTERRUPTED)]
    plan = plan_additions([group], nodes, flat_price)
    assert [(p.name, o.instance_type) for p, o in plan] == [("task", "m5.xlarge")] * 2
    nodes.append(node("d", "task", N.REQUESTED))
    assert len(plan_additions([group], nodes, flat_price)) == 1
    group.suspended = True
    assert plan_additions([group], nodes, flat_price) == []


def test_fleet_picks_the_cheapest_per_unit_and_may_overshoot() -> None:
    fleet = CapacityPool(
        "task:SPOT",
        "task",
        "TASK",
        "SPOT",
        (PoolOption("r5.xlarge", 4), PoolOption("m5.2xlarge", 8), PoolOption("m5.xlarge", 4)),
        target=10,
        is_fleet=True,
    )
    assert choose_option(fleet, flat_price).instance_type == "m5.2xlarge"  # 0.015 per unit
    plan = plan_additions([fleet], [], flat_price)
    assert [o.instance_type for _, o in plan] == ["m5.2xlarge", "m5.2xlarge"]  # 16 units >= 10
    master = CapacityPool("master", "master", "MASTER", "ON_DEMAND", (PoolOption("m5.xlarge"),), target=1)
    assert plan_additions([master], [], flat_price) == []
