"""Nodes and the capacity pools they come from (instance groups, or one market of an instance fleet).

A :class:`CapacityPool` has a target (instances for a group, units for a fleet market); the reconciler adds
nodes until the live ones meet it (:func:`cluster.reconciler.plan_additions`), which is also how Spot
capacity lost to an interruption is replaced. Shrinking is explicit: the caller picks nodes and lowers the target.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from cluster.config import ClusterConfig, fleet_weight
from cluster.events import JsonValue
from cluster.instances import DEFAULT_CATALOG, InstanceType
from cluster.provider import Market, NodeSpec, Role
from cluster.spot import Interruption
from cluster.states import NodeState, StateMachine

#: States in which a node counts towards its pool's target.
COUNTED_STATES = frozenset({NodeState.REQUESTED, NodeState.PROVISIONING, NodeState.BOOTSTRAPPING, NodeState.RUNNING})
#: States of a node that is still coming up.
IN_FLIGHT_STATES = frozenset({NodeState.REQUESTED, NodeState.PROVISIONING, NodeState.BOOTSTRAPPING})
#: A pool stops adding nodes after this many nodes in a row failed to start (EMR: group SUSPENDED).
MAX_CONSECUTIVE_FAILURES = 3


def new_cluster_id() -> str:
    """An EMR-style cluster id: ``j-`` and 13 upper-case letters/digits."""
    return "j-" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))


def new_node_id() -> str:
    """An EC2-style instance id: ``i-`` and 17 hex digits."""
    return "i-" + secrets.token_hex(9)[:17]


@dataclass(frozen=True)
class PoolOption:
    """An instance type a pool may launch, with its weight (units per instance) and bid."""

    instance_type: str
    weight: float = 1.0
    bid_price: float | None = None


@dataclass
class CapacityPool:
    """Where nodes of one role and market come from.

    Attributes:
        name: Group name (``core``, ``task-1``) or ``<fleet>:<MARKET>`` for a fleet (``task:SPOT``).
        group: The configured group or fleet name (``task`` for ``task:SPOT``).
        role: Role of its nodes.
        market: Market of its nodes.
        options: Instance types it may launch (one for an instance group).
        target: Instances (group) or units (fleet) wanted.
        is_fleet: Whether it is a fleet market (units, weighted types) rather than a uniform group.
        suspended: Stopped adding nodes after repeated launch failures, until its target is set again.
        consecutive_failures: Launch failures since the last node that came up.
    """

    name: str
    group: str
    role: Role
    market: Market
    options: tuple[PoolOption, ...]
    target: float
    is_fleet: bool = False
    suspended: bool = False
    consecutive_failures: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "group": self.group,
            "role": self.role,
            "market": self.market,
            "target": self.target,
            "unit": "units" if self.is_fleet else "instances",
            "instance_types": [{"type": o.instance_type, "weight": o.weight} for o in self.options],
            "suspended": self.suspended,
        }


@dataclass
class Node:
    """One instance of the cluster and its life."""

    node_id: str
    role: Role
    pool: str
    group: str
    instance_type: str
    market: Market
    weight: float
    spec: NodeSpec
    machine: StateMachine[NodeState]
    at_launch: bool = False
    virtual: bool = False
    last_busy_at: float = 0.0
    holds_shuffle: bool = False
    interruption: Interruption | None = None
    drain_deadline: float | None = None
    executors_decommissioned: int = 0
    #: Steps already charged with this node's interruption (at its notice), so its loss is not charged twice.
    charged_steps: set[str] = field(default_factory=set)
    #: When those steps were charged (the notice), so the loss adds only the notice window.
    charged_at: float | None = None
    failure: str | None = None
    details: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def state(self) -> NodeState:
        return self.machine.state

    def in_state(self, state: NodeState) -> bool:
        """Whether the node is in ``state`` now (a call, so type checkers do not carry narrowing over it)."""
        return self.machine.state == state

    @property
    def launched_at(self) -> float | None:
        """When the instance launched (PROVISIONING): billing starts here."""
        return self.machine.entered(NodeState.PROVISIONING)

    @property
    def running_at(self) -> float | None:
        return self.machine.entered(NodeState.RUNNING)

    @property
    def ended_at(self) -> float | None:
        return self.machine.since if self.machine.terminal else None

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT_STATES

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "node_id": self.node_id,
            "role": self.role,
            "group": self.group,
            "pool": self.pool,
            "instance_type": self.instance_type,
            "market": self.market,
            "weight": self.weight,
            "state": self.state.value,
            "reason": self.machine.history[-1].reason,
            "num_cpus": self.spec.num_cpus,
            "memory_bytes": self.spec.memory_bytes,
            "launched_at": self.launched_at,
            "running_at": self.running_at,
            "ended_at": self.ended_at,
            "at_launch": self.at_launch,
            "virtual": self.virtual,
            "executors_decommissioned": self.executors_decommissioned,
            "failure": self.failure,
            "interruption": None
            if self.interruption is None
            else {
                "cause": self.interruption.cause,
                "notice_at": self.interruption.notice_at,
                "terminate_at": self.interruption.terminate_at,
            },
            "history": [{"state": h.state.value, "time": h.time, "reason": h.reason} for h in self.machine.history],
        }


def pools_from_config(cfg: ClusterConfig, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG) -> list[CapacityPool]:
    """The pools a config asks for, master first, with their launch targets."""
    pools: list[CapacityPool] = []
    if cfg.instance_groups is not None:
        groups = cfg.instance_groups
        names = cfg.group_names()
        listed = [("MASTER", groups.master)]
        if groups.core is not None:
            listed.append(("CORE", groups.core))
        listed += [("TASK", g) for g in groups.task]
        for (role, group), name in zip(listed, names, strict=True):
            pools.append(
                CapacityPool(
                    name=name,
                    group=name,
                    role=role,  # type: ignore[arg-type]
                    market=group.market,
                    options=(PoolOption(group.instance_type, 1.0, group.bid_price),),
                    target=float(group.count),
                )
            )
        return pools
    fleets = cfg.instance_fleets
    assert fleets is not None
    for role, name, fleet in (
        ("MASTER", "master", fleets.master),
        ("CORE", "core", fleets.core),
        ("TASK", "task", fleets.task),
    ):
        if fleet is None:
            continue
        for market, target in (("ON_DEMAND", fleet.target_on_demand_units), ("SPOT", fleet.target_spot_units)):
            if role == "MASTER" and target == 0:
                continue
            options = []
            for o in fleet.instance_types:
                bid = o.bid_price
                if bid is None and o.bid_price_as_percentage_of_on_demand is not None and o.instance_type in catalog:
                    bid = catalog[o.instance_type].on_demand_hourly * o.bid_price_as_percentage_of_on_demand / 100
                weight = 1.0 if role == "MASTER" else fleet_weight(o, catalog)
                options.append(PoolOption(o.instance_type, weight, bid))
            pools.append(
                CapacityPool(
                    name=f"{name}:{market}",
                    group=name,
                    role=role,  # type: ignore[arg-type]
                    market=market,  # type: ignore[arg-type]
                    options=tuple(options),
                    target=float(target),
                    is_fleet=True,
                )
            )
    return pools
