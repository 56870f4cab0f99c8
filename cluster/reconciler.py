"""Pure decisions of the cluster's reconcile loop (state + observations in, what to do out).

The facade (:mod:`cluster.api`) observes (provider liveness, step metrics, the clock), calls these functions,
and carries out what they return; tests call them directly with plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cluster.nodes import COUNTED_STATES, CapacityPool, Node, PoolOption
from cluster.provider import (
    METRIC_EXECUTOR_CORES,
    METRIC_EXECUTOR_REQUESTS,
    METRIC_NODE_RUNNING_TASKS_PREFIX,
    METRIC_NODE_SHUFFLE_BYTES_PREFIX,
    METRIC_PENDING_TASKS,
    METRIC_RUNNING_TASKS,
    Market,
    Role,
)
from cluster.states import ClusterState, ClusterStateChangeReason, NodeState


@dataclass(frozen=True)
class LaunchOutcome:
    """Whether the launch nodes are all settled, and if so whether the cluster may run."""

    status: Literal["pending", "ready", "failed"]
    reason: str


def launch_outcome(
    master: NodeState, workers: Sequence[tuple[Role, NodeState]], *, tolerance: float, need_core: bool
) -> LaunchOutcome:
    """Judge the launch once every launch node is RUNNING or gone.

    Args:
        master: State of the (primary) master.
        workers: ``(role, state)`` of every core and task node requested at launch.
        tolerance: Share of workers allowed to fail (EMR: "if too many instances fail").
        need_core: HDFS is on, so at least one core node must come up.
    """
    settled = {NodeState.RUNNING, NodeState.TERMINATED, NodeState.SPOT_INTERRUPTED}
    if master in (NodeState.TERMINATED, NodeState.SPOT_INTERRUPTED):
        return LaunchOutcome("failed", "the master node failed to start")
    if master != NodeState.RUNNING or any(state not in settled for _, state in workers):
        return LaunchOutcome("pending", "launch nodes still starting")
    failed = sum(1 for _, state in workers if state != NodeState.RUNNING)
    if workers and failed / len(workers) > tolerance:
        return LaunchOutcome("failed", f"{failed} of {len(workers)} launch node(s) failed (tolerance {tolerance:.0%})")
    if need_core and not any(role == "CORE" and state == NodeState.RUNNING for role, state in workers):
        return LaunchOutcome("failed", "no core node started, HDFS cannot run")
    return LaunchOutcome("ready", f"{len(workers) - failed} of {len(workers)} launch node(s) running")


def auto_termination_due(idle_since: float | None, now: float, idle_timeout: float | None) -> bool:
    """Whether an idle cluster (no step pending or running since ``idle_since``) reached its idle timeout."""
    return idle_timeout is not None and idle_since is not None and now - idle_since >= idle_timeout


@dataclass(frozen=True)
class StepsVerdict:
    """What the step queue's state means for the cluster."""

    dst: ClusterState | None
    terminate: ClusterStateChangeReason | None
    reason: str


def after_steps(state: ClusterState, *, queue_idle: bool, keep_alive: bool) -> StepsVerdict:
    """Cluster state implied by the step queue (RUNNING while steps are active, else WAITING or terminate)."""
    if state == ClusterState.WAITING and not queue_idle:
        return StepsVerdict(ClusterState.RUNNING, None, "step submitted")
    if state in (ClusterState.RUNNING, ClusterState.WAITING) and queue_idle and not keep_alive:
        return StepsVerdict(None, ClusterStateChangeReason.ALL_STEPS_COMPLETED, "no steps left and keep_alive is off")
    if state == ClusterState.RUNNING and queue_idle:
        return StepsVerdict(ClusterState.WAITING, None, "no step running or pending")
    return StepsVerdict(None, None, "")


@dataclass(frozen=True)
class Load:
    """Spark load summed over running steps."""

    pending_tasks: int = 0
    running_tasks: int = 0
    executor_requests: int = 0
    executor_cores: int = 1
    busy_nodes: frozenset[str] = frozenset()
    shuffle_nodes: frozenset[str] = frozenset()


def aggregate_load(step_metrics: Iterable[Mapping[str, float]], worker_ids: Iterable[str]) -> Load:
    """Sum the metrics of running steps.

    A node is busy when some step reports tasks running on it; if steps run but none reports per-node
    figures, every worker counts as busy (idleness cannot be known, so no node is taken away for it).
    """
    metrics = list(step_metrics)
    workers = frozenset(worker_ids)
    busy: set[str] = set()
    shuffle: set[str] = set()
    per_node_reported = False
    for m in metrics:
        for key, value in m.items():
            if key.startswith(METRIC_NODE_RUNNING_TASKS_PREFIX):
                per_node_reported = True
                if value > 0:
                    busy.add(key[len(METRIC_NODE_RUNNING_TASKS_PREFIX) :])
            elif key.startswith(METRIC_NODE_SHUFFLE_BYTES_PREFIX) and value > 0:
                shuffle.add(key[len(METRIC_NODE_SHUFFLE_BYTES_PREFIX) :])
    if metrics and not per_node_reported:
        busy = set(workers)
    return Load(
        pending_tasks=int(sum(m.get(METRIC_PENDING_TASKS, 0.0) for m in metrics)),
        running_tasks=int(sum(m.get(METRIC_RUNNING_TASKS, 0.0) for m in metrics)),
        executor_requests=int(sum(m.get(METRIC_EXECUTOR_REQUESTS, 0.0) for m in metrics)),
        executor_cores=max([int(m.get(METRIC_EXECUTOR_CORES, 1.0)) for m in metrics] + [1]),
        busy_nodes=frozenset(busy & workers),
        shuffle_nodes=frozenset(shuffle & workers),
    )


PriceFn = Callable[[str, Market], float]


def choose_option(pool: CapacityPool, price: PriceFn) -> PoolOption:
    """The instance type to launch next: the only one of a group; a fleet's cheapest per unit (then listed first)."""
    if len(pool.options) == 1:
        return pool.options[0]
    return min(pool.options, key=lambda o: (price(o.instance_type, pool.market) / o.weight, pool.options.index(o)))


def pool_units(pool: CapacityPool, nodes: Iterable[Node]) -> float:
    """Units (group: instances) of ``pool`` that are running or coming up."""
    return sum(n.weight for n in nodes if n.pool == pool.name and n.state in COUNTED_STATES)


def plan_additions(
    pools: Sequence[CapacityPool], nodes: Sequence[Node], price: PriceFn
) -> list[tuple[CapacityPool, PoolOption]]:
    """Nodes to request so every (non-suspended, non-master) pool reaches its target.

    Fleets may overshoot by less than one instance's weight (EMR fills targets completely).
    Nodes being decommissioned or gone do not count, which is how interrupted Spot capacity is replaced.
    """
    out: list[tuple[CapacityPool, PoolOption]] = []
    for pool in pools:
        if pool.role == "MASTER" or pool.suspended:
            continue
        have = pool_units(pool, nodes)
        while have < pool.target - 1e-9:
            option = choose_option(pool, price)
            out.append((pool, option))
            have += option.weight
    return out
