"""The event timeline: ordered, queryable, written as JSON lines and read back."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from cluster.events import EntityKind, EventLog


def test_events_are_numbered_queryable_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "c" / "events.jsonl"
    log = EventLog(path)
    log.record(EntityKind.CLUSTER, "j-1", "STARTING", "requested", time=1.0)
    log.record(EntityKind.NODE, "i-1", "RUNNING", "joined", time=2.0, src="BOOTSTRAPPING", details={"role": "CORE"})
    log.record(EntityKind.HDFS, "hdfs:///a", "DATA_LOST", "gone", time=3.0, details={"blocks": [{"id": "b"}]})
    assert [e.seq for e in log.query()] == [0, 1, 2]
    assert [e.entity_id for e in log.query(kind=EntityKind.NODE)] == ["i-1"]
    assert [e.dst for e in log.query(since=2.0)] == ["RUNNING", "DATA_LOST"]
    assert [e.dst for e in log.query(until=1.5)] == ["STARTING"]
    assert log.query(entity_id="j-1", dst="RUNNING") == []
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1])["src"] == "BOOTSTRAPPING"
    assert EventLog.load(path) == log.query()
    assert log.to_jsonl().splitlines() == lines


def test_memory_only_log_and_concurrent_writers_keep_a_gap_free_sequence() -> None:
    log = EventLog()

    def write(n: int) -> None:
        for i in range(200):
            log.record(EntityKind.STEP, f"s-{n}", "RUNNING", "x", time=float(i))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.seq for e in log.query()] == list(range(800))
    assert len(log) == 800
