"""State machines: every legal edge, a sample of illegal ones, reachability, history."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import pytest

from cluster.errors import InvalidTransitionError
from cluster.states import (
    CLUSTER_TRANSITIONS,
    NODE_TRANSITIONS,
    STEP_TRANSITIONS,
    ClusterState,
    NodeState,
    StateMachine,
    StepState,
    check_transition,
    exists_path,
    is_terminal,
    reachable,
    transition,
)

MACHINES: list[tuple[str, type[StrEnum], Mapping[StrEnum, Mapping[StrEnum, str]], StrEnum, set[StrEnum]]] = [
    (
        "cluster",
        ClusterState,
        CLUSTER_TRANSITIONS,  # type: ignore[list-item]
        ClusterState.STARTING,
        {ClusterState.TERMINATED, ClusterState.TERMINATED_WITH_ERRORS},
    ),
    (
        "node",
        NodeState,
        NODE_TRANSITIONS,  # type: ignore[list-item]
        NodeState.REQUESTED,
        {NodeState.TERMINATED, NodeState.SPOT_INTERRUPTED},
    ),
    (
        "step",
        StepState,
        STEP_TRANSITIONS,  # type: ignore[list-item]
        StepState.PENDING,
        {StepState.COMPLETED, StepState.CANCELLED, StepState.FAILED, StepState.INTERRUPTED},
    ),
]

LEGAL = [
    pytest.param(table, src, dst, id=f"{name}:{src.value}->{dst.value}")
    for name, _enum, table, _initial, _terminal in MACHINES
    for src, edges in table.items()
    for dst in edges
]
ILLEGAL = [
    pytest.param(table, src, dst, id=f"{name}:{src.value}->{dst.value}")
    for name, enum, table, _initial, _terminal in MACHINES
    for src in enum
    for dst in enum
    if dst not in table.get(src, {})
]


@pytest.mark.parametrize(("table", "src", "dst"), LEGAL)
def test_every_legal_edge_is_taken_and_recorded(
    table: Mapping[StrEnum, Mapping[StrEnum, str]], src: StrEnum, dst: StrEnum
) -> None:
    machine = StateMachine.new("e-1", table, src, time=10.0)
    entry = machine.transition(dst, time=11.5, reason="because")
    assert machine.state == dst
    assert (entry.state, entry.time, entry.reason) == (dst, 11.5, "because")
    assert [h.state for h in machine.history] == [src, dst]


@pytest.mark.parametrize(("table", "src", "dst"), ILLEGAL)
def test_every_missing_edge_is_refused(
    table: Mapping[StrEnum, Mapping[StrEnum, str]], src: StrEnum, dst: StrEnum
) -> None:
    machine = StateMachine.new("e-1", table, src, time=0.0)
    with pytest.raises(InvalidTransitionError) as info:
        machine.transition(dst, time=1.0)
    assert (info.value.entity_id, info.value.src, info.value.dst) == ("e-1", src.value, dst.value)
    assert machine.state == src and len(machine.history) == 1


def test_illegal_samples_named_in_the_emr_model() -> None:
    # A finished cluster cannot come back; a cluster cannot skip bootstrapping; a step cannot un-finish.
    for table, src, dst in [
        (CLUSTER_TRANSITIONS, ClusterState.TERMINATED, ClusterState.RUNNING),
        (CLUSTER_TRANSITIONS, ClusterState.STARTING, ClusterState.RUNNING),
        (CLUSTER_TRANSITIONS, ClusterState.WAITING, ClusterState.TERMINATED),
        (NODE_TRANSITIONS, NodeState.REQUESTED, NodeState.RUNNING),
        (NODE_TRANSITIONS, NodeState.SPOT_INTERRUPTED, NodeState.RUNNING),
        (NODE_TRANSITIONS, NodeState.DECOMMISSIONING, NodeState.RUNNING),
        (STEP_TRANSITIONS, StepState.COMPLETED, StepState.RUNNING),
        (STEP_TRANSITIONS, StepState.PENDING, StepState.COMPLETED),
        (STEP_TRANSITIONS, StepState.CANCELLED, StepState.PENDING),
    ]:
        with pytest.raises(InvalidTransitionError):
            check_transition(table, "x", src, dst)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "enum", "table", "initial", "terminal"), MACHINES, ids=[m[0] for m in MACHINES])
def test_tables_cover_the_enum_and_every_state_is_reachable(
    name: str,
    enum: type[StrEnum],
    table: Mapping[StrEnum, Mapping[StrEnum, str]],
    initial: StrEnum,
    terminal: set[StrEnum],
) -> None:
    assert reachable(table, initial) == set(enum)
    assert {s for s in enum if is_terminal(table, s)} == terminal
    for state in enum:
        assert all(isinstance(cause, str) and cause for cause in table.get(state, {}).values())
        # Nothing is stuck: every state can still end.
        assert any(exists_path(table, state, t) for t in terminal)
    for t in terminal:
        assert reachable(table, t) == {t}


def test_exists_path_follows_edges_only() -> None:
    assert exists_path(CLUSTER_TRANSITIONS, ClusterState.STARTING, ClusterState.TERMINATED_WITH_ERRORS)
    assert exists_path(NODE_TRANSITIONS, NodeState.RUNNING, NodeState.SPOT_INTERRUPTED)
    assert not exists_path(NODE_TRANSITIONS, NodeState.DECOMMISSIONING, NodeState.BOOTSTRAPPING)
    assert not exists_path(STEP_TRANSITIONS, StepState.RUNNING, StepState.PENDING)


def test_reason_defaults_to_the_edge_cause_and_history_keeps_times() -> None:
    machine = StateMachine.new("j-1", CLUSTER_TRANSITIONS, ClusterState.STARTING, time=1.0)
    transition(machine, ClusterState.BOOTSTRAPPING, time=2.0)
    machine.transition(ClusterState.WAITING, time=5.0, reason="ready")
    assert machine.history[1].reason == CLUSTER_TRANSITIONS[ClusterState.STARTING][ClusterState.BOOTSTRAPPING]
    assert machine.since == 5.0
    assert machine.entered(ClusterState.BOOTSTRAPPING) == 2.0
    assert machine.entered(ClusterState.RUNNING) is None
    assert machine.can(ClusterState.RUNNING) and not machine.can(ClusterState.STARTING)
    assert not machine.terminal
