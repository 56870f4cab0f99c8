"""What a cluster cost: per node, per step and in total, the way EMR bills.

* Per second, with a 60-second minimum per instance, from launch (PROVISIONING) to termination.
* EC2 part: the On-Demand price, or for Spot the Spot price over the node's lifetime (it may drift: the
  price is integrated piece by piece). You pay the Spot price, not the bid.
* EMR part: a fixed fee per instance type, the same for Spot and On-Demand.
* A step is charged the node-seconds (and dollars) of every node alive while it ran; at moments when several
  steps run, each gets an equal share. What no step used (idle time, the 60-s minimum top-up) is reported as
  unattributed, so steps + unattributed = total.

Times are clock seconds of the cluster (the same clock as its events).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cluster.events import JsonValue
from cluster.instances import DEFAULT_CATALOG, InstanceType, SpotPriceModel
from cluster.provider import Market, Role

#: EMR and EC2 bill at least this many seconds per instance.
MINIMUM_BILLED_SECONDS = 60.0


@dataclass(frozen=True)
class NodeUsage:
    """One node's billable life (``end`` is ``None`` while it runs)."""

    node_id: str
    role: Role
    instance_type: str
    market: Market
    start: float
    end: float | None


@dataclass(frozen=True)
class StepWindow:
    """When a step ran (``end`` is ``None`` while it runs)."""

    step_id: str
    name: str
    start: float
    end: float | None


class PriceBook:
    """Prices per instance type and market over time.

    Args:
        catalog: Instance types (On-Demand price and EMR fee).
        spot: Spot price model (defaults to a seed-0 model without drift).
    """

    def __init__(self, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG, spot: SpotPriceModel | None = None):
        self.catalog = catalog
        self.spot = spot or SpotPriceModel(catalog)

    def ec2_segments(
        self, instance_type: str, market: Market, start: float, end: float
    ) -> list[tuple[float, float, float]]:
        """``(from, to, usd_per_hour)`` pieces of constant EC2 price over ``[start, end]``."""
        if end <= start:
            return []
        if market == "SPOT":
            return self.spot.segments(instance_type, start, end)
        return [(start, end, self.catalog[instance_type].on_demand_hourly)]

    def emr_hourly(self, instance_type: str) -> float:
        return self.catalog[instance_type].emr_hourly


@dataclass(frozen=True)
class NodeCost:
    node_id: str
    role: Role
    instance_type: str
    market: Market
    seconds: float
    billed_seconds: float
    ec2_usd: float
    emr_usd: float

    @property
    def total_usd(self) -> float:
        return self.ec2_usd + self.emr_usd


@dataclass(frozen=True)
class StepCost:
    step_id: str
    name: str
    node_seconds: float
    ec2_usd: float
    emr_usd: float

    @property
    def total_usd(self) -> float:
        return self.ec2_usd + self.emr_usd


@dataclass(frozen=True)
class CostReport:
    """Costs of one cluster up to ``as_of``."""

    as_of: float
    nodes: tuple[NodeCost, ...]
    steps: tuple[StepCost, ...]
    unattributed_usd: float

    @property
    def ec2_usd(self) -> float:
        return sum(n.ec2_usd for n in self.nodes)

    @property
    def emr_usd(self) -> float:
        return sum(n.emr_usd for n in self.nodes)

    @property
    def total_usd(self) -> float:
        return self.ec2_usd + self.emr_usd

    def step(self, step_id: str) -> StepCost:
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)

    def node(self, node_id: str) -> NodeCost:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def rows(self) -> list[dict[str, JsonValue]]:
        """One row per node, per step, the unattributed remainder and the total."""
        rows: list[dict[str, JsonValue]] = []
        for n in self.nodes:
            rows.append(
                {
                    "scope": "node",
                    "id": n.node_id,
                    "detail": f"{n.role} {n.instance_type} {n.market}",
                    "seconds": round(n.seconds, 3),
                    "billed_seconds": round(n.billed_seconds, 3),
                    "ec2_usd": round(n.ec2_usd, 6),
                    "emr_usd": round(n.emr_usd, 6),
                    "total_usd": round(n.total_usd, 6),
                }
            )
        for s in self.steps:
            rows.append(
                {
                    "scope": "step",
                    "id": s.step_id,
                    "detail": s.name,
                    "seconds": round(s.node_seconds, 3),
                    "billed_seconds": None,
                    "ec2_usd": round(s.ec2_usd, 6),
                    "emr_usd": round(s.emr_usd, 6),
                    "total_usd": round(s.total_usd, 6),
                }
            )
        rows.append(
            {
                "scope": "unattributed",
                "id": "-",
                "detail": "idle time and 60-s minimums",
                "seconds": None,
                "billed_seconds": None,
                "ec2_usd": None,
                "emr_usd": None,
                "total_usd": round(self.unattributed_usd, 6),
            }
        )
        rows.append(
            {
                "scope": "cluster",
                "id": "total",
                "detail": f"{len(self.nodes)} node(s)",
                "seconds": round(sum(n.seconds for n in self.nodes), 3),
                "billed_seconds": round(sum(n.billed_seconds for n in self.nodes), 3),
                "ec2_usd": round(self.ec2_usd, 6),
                "emr_usd": round(self.emr_usd, 6),
                "total_usd": round(self.total_usd, 6),
            }
        )
        return rows

    def to_text(self) -> str:
        """The rows as an aligned plain-text table."""
        header = ("scope", "id", "detail", "seconds", "billed", "ec2 $", "emr $", "total $")
        table = [header]
        for r in self.rows():
            table.append(
                (
                    str(r["scope"]),
                    str(r["id"]),
                    str(r["detail"]),
                    _num(r["seconds"], 1),
                    _num(r["billed_seconds"], 1),
                    _num(r["ec2_usd"], 4),
                    _num(r["emr_usd"], 4),
                    _num(r["total_usd"], 4),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            for row in table
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


def _num(value: JsonValue, digits: int) -> str:
    return "" if value is None else f"{float(str(value)):.{digits}f}"


def node_cost(usage: NodeUsage, prices: PriceBook, now: float) -> NodeCost:
    """Bill one node: per second, at least 60 s, EC2 (integrated Spot price) + EMR fee."""
    end = now if usage.end is None else usage.end
    seconds = max(0.0, end - usage.start)
    billed = max(seconds, MINIMUM_BILLED_SECONDS)
    segments = prices.ec2_segments(usage.instance_type, usage.market, usage.start, usage.start + billed)
    ec2 = sum((b - a) * p for a, b, p in segments) / 3600.0
    emr = prices.emr_hourly(usage.instance_type) * billed / 3600.0
    return NodeCost(usage.node_id, usage.role, usage.instance_type, usage.market, seconds, billed, ec2, emr)


def cost_report(nodes: Iterable[NodeUsage], steps: Sequence[StepWindow], prices: PriceBook, now: float) -> CostReport:
    """Bill every node and share node time among the steps that ran.

    Args:
        nodes: Billable node lives.
        steps: Step run windows (steps that never ran are left out by the caller or have zero length).
        prices: Prices.
        now: End of open intervals.
    """
    usages = list(nodes)
    costs = tuple(node_cost(u, prices, now) for u in usages)
    windows = [(s, s.start, now if s.end is None else s.end) for s in steps]
    points = sorted({t for _, a, b in windows for t in (a, b)})
    shares: dict[str, list[float]] = {s.step_id: [0.0, 0.0, 0.0] for s in steps}
    for usage in usages:
        end = now if usage.end is None else usage.end
        emr_rate = prices.emr_hourly(usage.instance_type)
        for a, b, rate in prices.ec2_segments(usage.instance_type, usage.market, usage.start, end):
            cuts = [a, *points[bisect.bisect_right(points, a) : bisect.bisect_left(points, b)], b]
            for lo, hi in zip(cuts, cuts[1:], strict=False):
                if hi <= lo:
                    continue
                mid = (lo + hi) / 2
                active = [s.step_id for s, sa, sb in windows if sa <= mid < sb]
                if not active:
                    continue
                secs = (hi - lo) / len(active)
                for step_id in active:
                    share = shares[step_id]
                    share[0] += secs
                    share[1] += secs * rate / 3600.0
                    share[2] += secs * emr_rate / 3600.0
    step_costs = tuple(StepCost(s.step_id, s.name, *shares[s.step_id]) for s in steps)
    total = sum(c.total_usd for c in costs)
    attributed = sum(s.total_usd for s in step_costs)
    return CostReport(now, costs, step_costs, max(0.0, total - attributed))
