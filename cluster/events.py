"""The per-cluster event timeline: every state change, decision and data-loss notice, in order.

Events are kept in memory for queries and, when the log has a path, appended as JSON lines to
``<cluster dir>/events.jsonl`` as they happen (flushed per event, so another process can tail it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias

JsonValue: TypeAlias = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class EntityKind(StrEnum):
    """What an event is about."""

    CLUSTER = "CLUSTER"
    NODE = "NODE"
    STEP = "STEP"
    GROUP = "GROUP"
    HDFS = "HDFS"
    SCALING = "SCALING"
    SPOT = "SPOT"


@dataclass(frozen=True)
class Event:
    """One entry of the timeline.

    Attributes:
        seq: Position in the timeline (0-based, gap-free).
        time: Clock time of the event.
        kind: What kind of entity it concerns.
        entity_id: The cluster, node, step or group id (or the HDFS path).
        src: State before (``None`` for events that are not transitions).
        dst: State after, or the event's name (``DATA_LOST``, ``DECISION``, ``NOTICE``, ...).
        reason: Why, in words.
        details: Structured facts (JSON-serialisable).
    """

    seq: int
    time: float
    kind: EntityKind
    entity_id: str
    src: str | None
    dst: str
    reason: str
    details: Mapping[str, JsonValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind.value,
            "entity_id": self.entity_id,
            "src": self.src,
            "dst": self.dst,
            "reason": self.reason,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> Event:
        details = data.get("details") or {}
        src = data.get("src")
        return cls(
            seq=int(str(data["seq"])),
            time=float(str(data["time"])),
            kind=EntityKind(str(data["kind"])),
            entity_id=str(data["entity_id"]),
            src=None if src is None else str(src),
            dst=str(data["dst"]),
            reason=str(data["reason"]),
            details=dict(details) if isinstance(details, dict) else {},
        )


class EventLog:
    """Append-only, thread-safe event timeline of one cluster.

    Args:
        path: JSON-lines file to append to (created with its directory); ``None`` keeps events in memory only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._events: list[Event] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        kind: EntityKind,
        entity_id: str,
        dst: str,
        reason: str,
        *,
        time: float,
        src: str | None = None,
        details: Mapping[str, JsonValue] | None = None,
    ) -> Event:
        """Append one event and return it."""
        with self._lock:
            event = Event(len(self._events), time, kind, entity_id, src, dst, reason, dict(details or {}))
            self._events.append(event)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(event.to_json(), sort_keys=True) + "\n")
            return event

    def query(
        self,
        *,
        kind: EntityKind | None = None,
        entity_id: str | None = None,
        dst: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Event]:
        """Events matching every given filter, in timeline order (``since``/``until`` inclusive)."""
        with self._lock:
            events = list(self._events)
        return [
            e
            for e in events
            if (kind is None or e.kind == kind)
            and (entity_id is None or e.entity_id == entity_id)
            and (dst is None or e.dst == dst)
            and (since is None or e.time >= since)
            and (until is None or e.time <= until)
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def to_jsonl(self) -> str:
        """The whole timeline as JSON lines."""
        return "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in self.query())

    @staticmethod
    def load(path: Path) -> list[Event]:
        """Read a timeline written by an :class:`EventLog` (e.g. by another process)."""
        return list(_parse(path.read_text(encoding="utf-8").splitlines()))


def _parse(lines: Iterable[str]) -> Iterable[Event]:
    for line in lines:
        if line.strip():
            yield Event.from_json(json.loads(line))
