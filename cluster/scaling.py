"""EMR managed scaling as a pure function: observed load + limits -> one decision.

:func:`decide` follows the documented order of EMR managed scaling (``ComputeLimits``):

* Limits count core and task capacity only, in the policy's unit (Instances, VCPU or InstanceFleetUnits):
  total <= ``maximum``, on-demand <= ``maximum_on_demand`` (default ``maximum``), core <= ``maximum_core``
  (default ``maximum``), and never below ``minimum``.
* Scale out: core before task, on-demand before Spot, i.e. pools are tried in the order
  CORE/ON_DEMAND, CORE/SPOT, TASK/ON_DEMAND, TASK/SPOT, each node only where it keeps every limit.
* Scale in: task before core, Spot before on-demand, longest-idle first; nodes holding shuffle output still
  needed are drained last; never below ``minimum`` nor below ``min_core_nodes`` (dfs.replication).
* Capacity still coming up counts as present (no double requests); cooldowns hold repeated actions, except
  restoring the minimum and shedding capacity above a limit.

Every decision carries the inputs it was made from, for the event timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from cluster.events import JsonValue
from cluster.provider import Market, Role


class UnitType(StrEnum):
    """Unit of ``ComputeLimits``."""

    INSTANCES = "Instances"
    VCPU = "VCPU"
    INSTANCE_FLEET_UNITS = "InstanceFleetUnits"


class ScalingAction(StrEnum):
    SCALE_OUT = "SCALE_OUT"
    SCALE_IN = "SCALE_IN"
    NONE = "NONE"


#: Scale-out order: core before task, on-demand before Spot.
SCALE_OUT_ORDER: tuple[tuple[Role, Market], ...] = (
    ("CORE", "ON_DEMAND"),
    ("CORE", "SPOT"),
    ("TASK", "ON_DEMAND"),
    ("TASK", "SPOT"),
)


@dataclass(frozen=True)
class ComputeLimits:
    """EMR ``ComputeLimits`` (core + task capacity, in ``unit_type`` units)."""

    unit_type: UnitType
    minimum: float
    maximum: float
    maximum_on_demand: float | None = None
    maximum_core: float | None = None

    @property
    def on_demand_cap(self) -> float:
        return self.maximum if self.maximum_on_demand is None else self.maximum_on_demand

    @property
    def core_cap(self) -> float:
        return self.maximum if self.maximum_core is None else self.maximum_core


@dataclass(frozen=True)
class NodeLoad:
    """One core or task node as the policy sees it.

    Attributes:
        node_id: The node.
        role: CORE or TASK (the master is never counted).
        market: ON_DEMAND or SPOT.
        units: Its capacity in the policy's unit.
        vcpus: Its vCPUs (task slots).
        idle_seconds: How long no task ran on it.
        holds_shuffle: It holds shuffle output a running application still needs.
        in_flight: Still coming up (requested, provisioning, bootstrapping): counts as capacity, not removable.
    """

    node_id: str
    role: Role
    market: Market
    units: float
    vcpus: int
    idle_seconds: float = 0.0
    holds_shuffle: bool = False
    in_flight: bool = False


@dataclass(frozen=True)
class Pool:
    """Where new nodes of one role and market come from (an instance group, or a fleet's market)."""

    name: str
    role: Role
    market: Market
    units_per_node: float
    vcpus_per_node: int


@dataclass(frozen=True)
class ScalingInputs:
    """Everything :func:`decide` looks at.

    Attributes:
        now: Clock time.
        limits: The policy.
        nodes: Current core and task nodes (draining and terminated ones excluded).
        pools: Where nodes can be added.
        pending_tasks: Tasks waiting for a slot, over all running steps.
        running_tasks: Tasks running.
        executor_requests: Executors requested (dynamic allocation) but not running.
        executor_cores: Cores per requested executor.
        last_scale_out_at: Clock time of the last scale-out (``None``: never).
        last_scale_in_at: Clock time of the last scale-in.
        scale_out_cooldown: Seconds between scale-outs.
        scale_in_cooldown: Seconds after any scaling before a scale-in.
        idle_seconds_to_scale_in: A node must be idle this long to be removed for low load.
        min_core_nodes: Core nodes that must stay (dfs.replication).
    """

    now: float
    limits: ComputeLimits
    nodes: tuple[NodeLoad, ...]
    pools: tuple[Pool, ...]
    pending_tasks: int = 0
    running_tasks: int = 0
    executor_requests: int = 0
    executor_cores: int = 1
    last_scale_out_at: float | None = None
    last_scale_in_at: float | None = None
    scale_out_cooldown: float = 0.0
    scale_in_cooldown: float = 0.0
    idle_seconds_to_scale_in: float = 60.0
    min_core_nodes: int = 1

    def to_json(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {
            k: v for k, v in asdict(self).items() if k not in ("nodes", "pools", "limits") and v is not None
        }
        data["limits"] = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self.limits).items()}
        data["nodes"] = [
            {
                "node_id": n.node_id,
                "role": n.role,
                "market": n.market,
                "units": n.units,
                "idle_seconds": round(n.idle_seconds, 3),
                "holds_shuffle": n.holds_shuffle,
                "in_flight": n.in_flight,
            }
            for n in self.nodes
        ]
        data["pools"] = [p.name for p in self.pools]
        return data


@dataclass(frozen=True)
class NodeAddition:
    """Add ``count`` nodes to a pool."""

    pool: str
    role: Role
    market: Market
    count: int
    units: float


@dataclass(frozen=True)
class ScalingDecision:
    """The outcome of one evaluation, with its inputs (for the timeline)."""

    action: ScalingAction
    reason: str
    inputs: ScalingInputs
    additions: tuple[NodeAddition, ...] = ()
    removals: tuple[str, ...] = ()
    totals: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "action": self.action.value,
            "reason": self.reason,
            "additions": [asdict(a) for a in self.additions],  # type: ignore[misc]
            "removals": list(self.removals),
            "totals": dict(self.totals),
            "inputs": self.inputs.to_json(),
        }


@dataclass
class _Capacity:
    total: float
    core: float
    on_demand: float

    def fits(self, limits: ComputeLimits, role: Role, market: Market, units: float) -> bool:
        eps = 1e-9
        return (
            self.total + units <= limits.maximum + eps
            and (role != "CORE" or self.core + units <= limits.core_cap + eps)
            and (market != "ON_DEMAND" or self.on_demand + units <= limits.on_demand_cap + eps)
        )

    def add(self, role: Role, market: Market, units: float) -> None:
        self.total += units
        self.core += units if role == "CORE" else 0.0
        self.on_demand += units if market == "ON_DEMAND" else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"total": self.total, "core": self.core, "on_demand": self.on_demand}


def _capacity(nodes: tuple[NodeLoad, ...]) -> _Capacity:
    cap = _Capacity(0.0, 0.0, 0.0)
    for n in nodes:
        cap.add(n.role, n.market, n.units)
    return cap


def scale_in_order(nodes: list[NodeLoad]) -> list[NodeLoad]:
    """Removal preference: no needed shuffle first, then task before core, Spot before on-demand, most idle."""
    return sorted(
        nodes,
        key=lambda n: (n.holds_shuffle, n.role != "TASK", n.market != "SPOT", -n.idle_seconds, n.node_id),
    )


def _plan_out(
    pools: tuple[Pool, ...], limits: ComputeLimits, cap: _Capacity, need_vcpus: float, need_units: float
) -> list[NodeAddition]:
    """Add nodes in EMR order until ``need_vcpus`` and ``need_units`` are covered or no pool fits."""
    by_key: dict[tuple[Role, Market], Pool] = {}
    for p in pools:
        by_key.setdefault((p.role, p.market), p)  # the first pool of a role and market is the one scaled
    counts: dict[str, int] = {}
    while need_vcpus > 0 or need_units > 0:
        for key in SCALE_OUT_ORDER:
            pool = by_key.get(key)
            if pool is not None and cap.fits(limits, pool.role, pool.market, pool.units_per_node):
                break
        else:
            break
        cap.add(pool.role, pool.market, pool.units_per_node)
        counts[pool.name] = counts.get(pool.name, 0) + 1
        need_vcpus -= pool.vcpus_per_node
        need_units -= pool.units_per_node
    named = {p.name: p for p in pools}
    return [
        NodeAddition(name, named[name].role, named[name].market, n, n * named[name].units_per_node)
        for name, n in counts.items()
    ]


def decide(inputs: ScalingInputs) -> ScalingDecision:
    """Evaluate the managed scaling policy once (pure; same inputs, same decision)."""
    limits = inputs.limits
    cap = _capacity(inputs.nodes)
    totals = cap.as_dict()

    def none(reason: str) -> ScalingDecision:
        return ScalingDecision(ScalingAction.NONE, reason, inputs, totals=totals)

    # 1. Restore the minimum (ignores cooldowns: capacity was lost or never came).
    if cap.total < limits.minimum - 1e-9:
        additions = _plan_out(inputs.pools, limits, cap, 0.0, limits.minimum - cap.total)
        if additions:
            return ScalingDecision(
                ScalingAction.SCALE_OUT,
                f"below minimum {limits.minimum:g} {limits.unit_type.value}",
                inputs,
                additions=tuple(additions),
                totals=totals,
            )

    # 2. Shed capacity above a limit (ignores cooldowns and idleness; keeps minimum and HDFS core count).
    over_total = cap.total - limits.maximum
    over_core = cap.core - limits.core_cap
    over_od = cap.on_demand - limits.on_demand_cap
    if max(over_total, over_core, over_od) > 1e-9:
        removable = scale_in_order([n for n in inputs.nodes if not n.in_flight])
        removals: list[str] = []
        cores = sum(1 for n in inputs.nodes if n.role == "CORE")
        for node in removable:
            if max(over_total, over_core, over_od) <= 1e-9:
                break
            helps = (
                over_total > 1e-9
                or (over_core > 1e-9 and node.role == "CORE")
                or (over_od > 1e-9 and node.market == "ON_DEMAND")
            )
            if not helps or cap.total - node.units < limits.minimum - 1e-9:
                continue
            if node.role == "CORE" and cores - 1 < inputs.min_core_nodes:
                continue
            removals.append(node.node_id)
            cap.add(node.role, node.market, -node.units)
            cores -= node.role == "CORE"
            over_total, over_core, over_od = (
                cap.total - limits.maximum,
                cap.core - limits.core_cap,
                cap.on_demand - limits.on_demand_cap,
            )
        if removals:
            return ScalingDecision(
                ScalingAction.SCALE_IN, "above a capacity limit", inputs, removals=tuple(removals), totals=totals
            )

    # 3. Demand: pending tasks or executor requests beyond the capacity already coming up.
    demand = max(inputs.pending_tasks, inputs.executor_requests * inputs.executor_cores)
    coming = sum(n.vcpus for n in inputs.nodes if n.in_flight)
    if demand > 0:
        need = demand - coming
        if need <= 0:
            return none(f"demand of {demand} vCPU covered by {coming} vCPU still coming up")
        if inputs.last_scale_out_at is not None and inputs.now - inputs.last_scale_out_at < inputs.scale_out_cooldown:
            until = inputs.last_scale_out_at + inputs.scale_out_cooldown
            return none(f"scale-out cooldown until {until:.1f}")
        additions = _plan_out(inputs.pools, limits, cap, need, 0.0)
        if not additions:
            return none(f"demand of {need} vCPU but every pool is at its limit")
        return ScalingDecision(
            ScalingAction.SCALE_OUT,
            f"{inputs.pending_tasks} pending task(s), {inputs.executor_requests} executor request(s)",
            inputs,
            additions=tuple(additions),
            totals=totals,
        )

    # 4. No demand: remove idle nodes, in EMR's order, down to the minimum.
    idle = [n for n in inputs.nodes if not n.in_flight and n.idle_seconds >= inputs.idle_seconds_to_scale_in]
    if not idle:
        return none("no demand and no idle node")
    last = max((t for t in (inputs.last_scale_in_at, inputs.last_scale_out_at) if t is not None), default=None)
    if last is not None and inputs.now - last < inputs.scale_in_cooldown:
        return none(f"scale-in cooldown until {last + inputs.scale_in_cooldown:.1f}")
    cores = sum(1 for n in inputs.nodes if n.role == "CORE")
    removals = []
    for node in scale_in_order(idle):
        if cap.total - node.units < limits.minimum - 1e-9:
            continue
        if node.role == "CORE" and cores - 1 < inputs.min_core_nodes:
            continue
        removals.append(node.node_id)
        cap.add(node.role, node.market, -node.units)
        cores -= node.role == "CORE"
    if not removals:
        return none(f"idle nodes but at minimum {limits.minimum:g} {limits.unit_type.value}")
    return ScalingDecision(
        ScalingAction.SCALE_IN,
        f"{len(removals)} idle node(s), no demand",
        inputs,
        removals=tuple(removals),
        totals=totals,
    )


def node_units(unit_type: UnitType, vcpus: int, fleet_weight: float) -> float:
    """A node's capacity in the policy's unit."""
    if unit_type == UnitType.INSTANCES:
        return 1.0
    if unit_type == UnitType.VCPU:
        return float(vcpus)
    return fleet_weight
