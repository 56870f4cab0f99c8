"""When Spot nodes are reclaimed: Poisson by rate, at scheduled times, or on command.

Each source yields :class:`Interruption` records ``(node, notice time, termination time)``. Spot durations are
*simulated* seconds; the clock sees them multiplied by ``time_scale`` (0.1 makes EC2's two-minute notice last
12 clock seconds). Poisson rates are per simulated instance-hour; a node's interruption time is drawn once,
from a generator seeded by ``(seed, node_id)``, so a run is reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cluster.provider import Role

#: EC2's Spot interruption notice.
DEFAULT_NOTICE_SECONDS = 120.0

Cause = Literal["poisson", "scheduled", "command"]


@dataclass(frozen=True)
class SpotNode:
    """A running Spot node as the schedules see it."""

    node_id: str
    instance_type: str
    role: Role
    group: str
    launched_at: float


@dataclass(frozen=True)
class Interruption:
    """A Spot interruption: notice at ``notice_at``, instance gone at ``terminate_at`` (clock times)."""

    node_id: str
    notice_at: float
    terminate_at: float
    cause: Cause


@dataclass(frozen=True)
class ScheduledInterruption:
    """Interrupt ``count`` matching Spot nodes ``at_seconds`` simulated seconds after the origin.

    Nodes are chosen by ``node_id``, ``group`` or ``role`` (or any Spot node), oldest first.
    """

    at_seconds: float
    node_id: str | None = None
    group: str | None = None
    role: Role | None = None
    count: int = 1

    def matches(self, node: SpotNode) -> bool:
        return (
            (self.node_id is None or node.node_id == self.node_id)
            and (self.group is None or node.group == self.group)
            and (self.role is None or node.role == self.role)
        )


@dataclass(frozen=True)
class Window:
    """Turns simulated Spot durations into clock durations."""

    notice_seconds: float = DEFAULT_NOTICE_SECONDS
    time_scale: float = 1.0

    @property
    def notice_clock_seconds(self) -> float:
        return self.notice_seconds * self.time_scale

    def interruption(self, node_id: str, notice_at: float, cause: Cause) -> Interruption:
        return Interruption(node_id, notice_at, notice_at + self.notice_clock_seconds, cause)


class PoissonInterruptions:
    """Each Spot node is reclaimed after an exponential time with its type's rate (per simulated hour).

    Args:
        rate_per_hour: One rate for every type, or a rate per instance type, or a function of the type.
        seed: Seed; a node's draw depends only on ``(seed, node_id)``.
        window: Notice window and time scale.
    """

    def __init__(
        self,
        rate_per_hour: float | Mapping[str, float] | Callable[[str], float],
        *,
        seed: int = 0,
        window: Window = Window(),
    ) -> None:
        self.rate_per_hour = rate_per_hour
        self.seed = seed
        self.window = window
        self._at: dict[str, float] = {}
        self._launched: dict[str, int] = {}

    def rate(self, instance_type: str) -> float:
        r = self.rate_per_hour
        if callable(r):
            return r(instance_type)
        if isinstance(r, Mapping):
            return r.get(instance_type, 0.0)
        return r

    def notice_time(self, node: SpotNode) -> float:
        """Clock time of the node's interruption notice (``inf`` when its rate is 0)."""
        at = self._at.get(node.node_id)
        if at is None:
            rate = self.rate(node.instance_type)
            if rate <= 0:
                at = math.inf
            else:
                # Seeded by the node's launch ordinal in its group, not its (random) id: with the same seed, the
                # n-th node of a group gets the same draw in every run, so experiments repeat.
                ordinal = self._launched.get(node.group, 0)
                self._launched[node.group] = ordinal + 1
                hours = random.Random(f"{self.seed}:{node.group}:{ordinal}").expovariate(rate)
                at = node.launched_at + hours * 3600.0 * self.window.time_scale
            self._at[node.node_id] = at
        return at

    def due(self, now: float, nodes: Iterable[SpotNode]) -> list[Interruption]:
        return [self.window.interruption(n.node_id, t, "poisson") for n in nodes if (t := self.notice_time(n)) <= now]


class ScheduledInterruptions:
    """Interruptions at fixed (simulated) times after ``origin``.

    An entry fires once; if no node matches then, it is reported in :attr:`misses` and dropped.
    """

    def __init__(self, entries: Sequence[ScheduledInterruption], *, origin: float, window: Window = Window()) -> None:
        self.entries = list(entries)
        self.origin = origin
        self.window = window
        self._fired: set[int] = set()
        self.misses: list[ScheduledInterruption] = []

    def clock_time(self, entry: ScheduledInterruption) -> float:
        return self.origin + entry.at_seconds * self.window.time_scale

    def due(self, now: float, nodes: Iterable[SpotNode]) -> list[Interruption]:
        pool = sorted(nodes, key=lambda n: (n.launched_at, n.node_id))
        taken: set[str] = set()
        out: list[Interruption] = []
        for i, entry in enumerate(self.entries):
            at = self.clock_time(entry)
            if i in self._fired or at > now:
                continue
            self._fired.add(i)
            chosen = [n for n in pool if n.node_id not in taken and entry.matches(n)][: entry.count]
            if not chosen:
                self.misses.append(entry)
            for n in chosen:
                taken.add(n.node_id)
                out.append(self.window.interruption(n.node_id, at, "scheduled"))
        return out


@dataclass
class CommandInterruptions:
    """Interruptions asked for by a user (``lakeforge cluster interrupt``), effective at once."""

    window: Window = field(default_factory=Window)
    _queue: list[Interruption] = field(default_factory=list)

    def request(self, node_id: str, now: float) -> Interruption:
        interruption = self.window.interruption(node_id, now, "command")
        self._queue.append(interruption)
        return interruption

    def due(self, now: float, nodes: Iterable[SpotNode]) -> list[Interruption]:
        alive = {n.node_id for n in nodes}
        ready = [i for i in self._queue if i.notice_at <= now]
        self._queue = [i for i in self._queue if i.notice_at > now]
        return [i for i in ready if i.node_id in alive]


class SpotInterrupter:
    """All interruption sources of a cluster; each node is interrupted at most once.

    Args:
        window: Notice window and time scale (shared by the sources).
        poisson: Rate-based source, if any.
        scheduled: Time-based source, if any.
    """

    def __init__(
        self,
        window: Window = Window(),
        *,
        poisson: PoissonInterruptions | None = None,
        scheduled: ScheduledInterruptions | None = None,
    ) -> None:
        self.window = window
        self.poisson = poisson
        self.scheduled = scheduled
        self.commands = CommandInterruptions(window)
        self._done: set[str] = set()

    def request(self, node_id: str, now: float) -> Interruption:
        """Interrupt ``node_id`` now (the caller checked it is a running Spot node)."""
        return self.commands.request(node_id, now)

    def collect(self, now: float, nodes: Sequence[SpotNode]) -> list[Interruption]:
        """Interruptions whose notice time has come, for running Spot ``nodes``, first one per node wins."""
        candidates = [n for n in nodes if n.node_id not in self._done]
        found: list[Interruption] = []
        for source in (self.commands, self.scheduled, self.poisson):
            if source is not None:
                found += source.due(now, candidates)
        out: list[Interruption] = []
        for interruption in sorted(found, key=lambda i: (i.notice_at, i.node_id)):
            if interruption.node_id not in self._done:
                self._done.add(interruption.node_id)
                out.append(interruption)
        return out
