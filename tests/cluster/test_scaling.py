"""Managed scaling as a pure function: EMR's order, limits, cooldowns, shuffle-aware scale-in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cluster.scaling import (
    ComputeLimits,
    NodeLoad,
    Pool,
    ScalingAction,
    ScalingInputs,
    UnitType,
    decide,
    node_units,
    scale_in_order,
)

CORE_OD = Pool("core", "CORE", "ON_DEMAND", 1, 4)
CORE_SPOT = Pool("core-spot", "CORE", "SPOT", 1, 4)
TASK_OD = Pool("task-od", "TASK", "ON_DEMAND", 1, 4)
TASK_SPOT = Pool("task-spot", "TASK", "SPOT", 1, 4)
ALL_POOLS = (CORE_OD, CORE_SPOT, TASK_OD, TASK_SPOT)


def core(n: int, **kw: object) -> tuple[NodeLoad, ...]:
    return tuple(NodeLoad(f"core-{i}", "CORE", "ON_DEMAND", 1, 4, **kw) for i in range(n))  # type: ignore[arg-type]


def inputs(
    limits: ComputeLimits, nodes: tuple[NodeLoad, ...] = core(2), pools: tuple[Pool, ...] = ALL_POOLS, **kw: object
) -> ScalingInputs:
    return ScalingInputs(now=1000.0, limits=limits, nodes=nodes, pools=pools, **kw)  # type: ignore[arg-type]


def added(decision_inputs: ScalingInputs) -> dict[str, int]:
    decision = decide(decision_inputs)
    assert decision.action in (ScalingAction.SCALE_OUT, ScalingAction.NONE)
    return {a.pool: a.count for a in decision.additions}


# Scenarios of emr-cluster.md 2.1: 2 on-demand core nodes running, demand for 40 vCPU = 10 nodes of 4 vCPU.
@pytest.mark.parametrize(
    ("scenario", "limits", "pools", "expected"),
    [
        ("core only", ComputeLimits(UnitType.INSTANCES, 2, 10, 10, 10), (CORE_OD, TASK_SPOT), {"core": 8}),
        ("task only", ComputeLimits(UnitType.INSTANCES, 2, 10, 10, 2), ALL_POOLS, {"task-od": 8}),
        (
            "task only, spot tasks",
            ComputeLimits(UnitType.INSTANCES, 2, 10, 10, 2),
            (CORE_OD, TASK_SPOT),
            {"task-spot": 8},
        ),
        ("on-demand only", ComputeLimits(UnitType.INSTANCES, 2, 10, 10, 4), ALL_POOLS, {"core": 2, "task-od": 6}),
        ("spot only", ComputeLimits(UnitType.INSTANCES, 2, 10, 0, 10), (CORE_OD, TASK_OD, TASK_SPOT), {"task-spot": 8}),
        (
            "spot only with spot core",
            ComputeLimits(UnitType.INSTANCES, 2, 10, 0, 6),
            ALL_POOLS,
            {"core-spot": 4, "task-spot": 4},
        ),
        (
            "on-demand core + spot task",
            ComputeLimits(UnitType.INSTANCES, 2, 10, 5, 5),
            ALL_POOLS,
            {"core": 3, "task-spot": 5},
        ),
    ],
)
def test_scale_out_order_per_compute_limits_scenario(
    scenario: str, limits: ComputeLimits, pools: tuple[Pool, ...], expected: dict[str, int]
) -> None:
    assert added(inputs(limits, pools=pools, pending_tasks=40)) == expected


def test_scale_out_covers_only_the_demand_and_stops_at_maximum() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 2, 10)
    assert added(inputs(limits, pending_tasks=5)) == {"core": 2}  # 5 vCPU -> 2 nodes of 4
    assert added(inputs(limits, executor_requests=3, executor_cores=4)) == {"core": 3}
    assert added(inputs(limits, pending_tasks=400)) == {"core": 8}
    full = decide(inputs(limits, nodes=core(10), pending_tasks=400))
    assert full.action == ScalingAction.NONE and "at its limit" in full.reason


def test_vcpu_units_count_cores_against_the_limits() -> None:
    limits = ComputeLimits(UnitType.VCPU, 8, 24)
    pools = (Pool("core", "CORE", "ON_DEMAND", node_units(UnitType.VCPU, 4, 1), 4),)
    nodes = tuple(NodeLoad(f"c{i}", "CORE", "ON_DEMAND", 4, 4) for i in range(2))
    assert added(inputs(limits, nodes=nodes, pools=pools, pending_tasks=100)) == {"core": 4}  # 8 + 16 = 24 vCPU


def test_capacity_coming_up_counts_and_no_double_request() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 2, 10)
    nodes = core(2) + (NodeLoad("new", "TASK", "SPOT", 1, 4, in_flight=True),)
    none = decide(inputs(limits, nodes=nodes, pending_tasks=4))
    assert none.action == ScalingAction.NONE and "still coming up" in none.reason
    assert added(inputs(limits, nodes=nodes, pending_tasks=8)) == {"core": 1}


def test_scale_out_cooldown() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 2, 10)
    base = inputs(limits, pending_tasks=8, scale_out_cooldown=60.0)
    held = decide(replace(base, last_scale_out_at=950.0))
    assert held.action == ScalingAction.NONE and "cooldown until 1010.0" in held.reason
    assert decide(replace(base, last_scale_out_at=940.0)).action == ScalingAction.SCALE_OUT
    assert decide(base).action == ScalingAction.SCALE_OUT


def test_restoring_the_minimum_ignores_cooldown() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 4, 10)
    decision = decide(inputs(limits, nodes=core(1), last_scale_out_at=999.0, scale_out_cooldown=600.0))
    assert decision.action == ScalingAction.SCALE_OUT and "below minimum" in decision.reason
    assert {a.pool: a.count for a in decision.additions} == {"core": 3}


def idle_mix(idle: float = 600.0) -> tuple[NodeLoad, ...]:
    return (
        NodeLoad("core-od", "CORE", "ON_DEMAND", 1, 4, idle),
        NodeLoad("core-spot", "CORE", "SPOT", 1, 4, idle),
        NodeLoad("task-od", "TASK", "ON_DEMAND", 1, 4, idle),
        NodeLoad("task-spot", "TASK", "SPOT", 1, 4, idle),
        NodeLoad("task-spot-shuffle", "TASK", "SPOT", 1, 4, idle, holds_shuffle=True),
    )


def test_scale_in_order_task_before_core_spot_before_on_demand_shuffle_last() -> None:
    order = [n.node_id for n in scale_in_order(list(idle_mix()))]
    assert order == ["task-spot", "task-od", "core-spot", "core-od", "task-spot-shuffle"]
    decision = decide(inputs(ComputeLimits(UnitType.INSTANCES, 2, 10), nodes=idle_mix(), min_core_nodes=1))
    assert decision.action == ScalingAction.SCALE_IN
    assert decision.removals == ("task-spot", "task-od", "core-spot")  # down to the minimum of 2


def test_scale_in_never_goes_below_minimum_or_hdfs_replication() -> None:
    nodes = core(4, idle_seconds=900.0)
    limits = ComputeLimits(UnitType.INSTANCES, 1, 10)
    assert decide(inputs(limits, nodes=nodes, min_core_nodes=3)).removals == ("core-0",)
    at_min = decide(inputs(ComputeLimits(UnitType.INSTANCES, 4, 10), nodes=nodes))
    assert at_min.action == ScalingAction.NONE and "at minimum" in at_min.reason


def test_only_nodes_idle_long_enough_are_removed_and_only_without_demand() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 1, 10)
    nodes = (NodeLoad("a", "TASK", "SPOT", 1, 4, 30.0), NodeLoad("b", "TASK", "SPOT", 1, 4, 90.0)) + core(1)
    assert decide(inputs(limits, nodes=nodes, idle_seconds_to_scale_in=60.0)).removals == ("b",)
    busy = decide(inputs(limits, nodes=nodes, pending_tasks=1, idle_seconds_to_scale_in=60.0))
    assert busy.removals == ()
    assert decide(inputs(limits, nodes=nodes, idle_seconds_to_scale_in=120.0)).action == ScalingAction.NONE


def test_scale_in_cooldown_counts_from_any_scaling() -> None:
    limits = ComputeLimits(UnitType.INSTANCES, 1, 10)
    base = inputs(limits, nodes=idle_mix(), scale_in_cooldown=300.0)
    assert decide(replace(base, last_scale_in_at=800.0)).action == ScalingAction.NONE
    assert decide(replace(base, last_scale_out_at=800.0)).action == ScalingAction.NONE
    assert "cooldown until 1100.0" in decide(replace(base, last_scale_out_at=800.0)).reason
    assert decide(replace(base, last_scale_in_at=700.0, last_scale_out_at=650.0)).action == ScalingAction.SCALE_IN


def test_capacity_above_a_limit_is_shed_at_once() -> None:
    nodes = idle_mix(idle=0.0)
    lowered = decide(
        inputs(ComputeLimits(UnitType.INSTANCES, 1, 3), nodes=nodes, last_scale_in_at=999.0, scale_in_cooldown=600.0)
    )
    assert lowered.action == ScalingAction.SCALE_IN and lowered.removals == ("task-spot", "task-od")
    od = decide(inputs(ComputeLimits(UnitType.INSTANCES, 1, 10, maximum_on_demand=1), nodes=nodes))
    assert od.removals == ("task-od",)


def test_decision_records_its_inputs() -> None:
    ins = inputs(ComputeLimits(UnitType.INSTANCES, 2, 10), pending_tasks=8, running_tasks=3)
    decision = decide(ins)
    assert decision.inputs is ins
    data = decision.to_json()
    assert data["action"] == "SCALE_OUT"
    assert data["inputs"]["pending_tasks"] == 8 and data["inputs"]["running_tasks"] == 3  # type: ignore[index, call-overload]
    assert data["inputs"]["limits"]["unit_type"] == "Instances"  # type: ignore[index, call-overload]
    assert data["additions"] == [{"pool": "core", "role": "CORE", "market": "ON_DEMAND", "count": 2, "units": 2}]
    assert decide(ins) == decision  # pure


def test_no_demand_no_idle_node_means_no_change() -> None:
    decision = decide(inputs(ComputeLimits(UnitType.INSTANCES, 2, 10), nodes=core(3)))
    assert decision.action == ScalingAction.NONE and decision.totals["total"] == 3
