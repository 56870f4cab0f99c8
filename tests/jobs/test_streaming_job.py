"""``jobs/streaming_events_job.py`` under plain ``spark-submit``, killed with SIGKILL mid-batch (right after
its Iceberg commit, before Spark's commit log: the moment a replay would duplicate rows) and between batches
(at a random moment), restarted each time; then stopped with SIGTERM. The table ends with every landed event
exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog.server import CatalogServer

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "jobs" / "streaming_events_job.py"
JOB = "events_stream"


class StreamingJob:
    """One streaming job's landing prefix, checkpoint, table and spark-submit runs."""

    def __init__(self, server: CatalogServer, tmp_path: Path, rest_catalog: Any) -> None:
        self.server = server
        self.tmp = tmp_path
        self.home = tmp_path / "lake"
        self.bucket = f"stream-{uuid.uuid4().hex[:8]}"
        self.landing = self.home / "s3" / self.bucket / "landing"
        self.checkpoint = self.home / "s3" / self.bucket / "tmp" / JOB / "checkpoint"
        self.database = f"streaming_{uuid.uuid4().hex[:8]}"
        self.catalog = rest_catalog
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.landed: list[str] = []

    def start(self, fault: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFORGE_", "PYSPARK_", "SPARK_"))}
        env["LAKEFORGE_HOME"] = str(self.home)
        if fault:
            env["LAKEFORGE_STREAM_FAULT"] = fault
        cmd = [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master", "local[2]",
            "--conf", f"spark.sql.catalog.lake.uri={self.server.uri}",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=2",
            str(SCRIPT),
            "--JOB_NAME", JOB,
            "--landing", f"s3://{self.bucket}/landing/",
            "--database", self.database,
            "--table", "events",
            "--TempDir", f"s3://{self.bucket}/tmp/",
            "--window_size", "1 second",
        ]  # fmt: skip
        self.runs += 1
        log = (self.tmp / f"run{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self) -> str:
        return "\n".join((self.tmp / f"run{self.runs}.log").read_text(errors="replace").splitlines()[-40:])

    def land(self, count: int) -> None:
        """Land one file of ``count`` new events (atomically, in the Firehose YYYY/MM/DD/HH layout)."""
        start = len(self.landed)
        ids = [f"e{n:05d}" for n in range(start, start + count)]
        folder = self.landing / "2026" / "11" / "22" / f"{7 + start // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            {
                "event_id": i,
                "user_id": int(i[1:]) % 7,
                "kind": "click",
                "value": 0.5,
                "event_time": "2026-11-22T07:00:00Z",
            }
            for i in ids
        ]
        hidden = folder / f".part-{start}.json.tmp"
        hidden.write_text("".join(json.dumps(line) + "\n" for line in lines))
        os.replace(hidden, folder / f"part-{start:05d}.json")
        self.landed.extend(ids)

    def wait(self, what: str, condition: Callable[[], bool], timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"the job exited ({self.proc.returncode}) while waiting for {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.log_tail()}")
            time.sleep(0.05)

    def batches(self, kind: str) -> set[int]:
        folder = self.checkpoint / kind
        return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.exists() else set()

    def total_records(self) -> int:
        try:
            table = self.catalog.load_table(f"{self.database}.events")
        except Exception:  # not created yet
            return 0
        snapshot = table.current_snapshot()
        return int(snapshot.summary["total-records"]) if snapshot else 0

    def caught_up(self, rows: int) -> bool:
        offsets, commits = self.batches("offsets"), self.batches("commits")
        return self.total_records() == rows and bool(offsets) and offsets <= commits

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)

    def python_driver_pid(self) -> int:
        assert self.proc is not None
        tasks = Path(f"/proc/{self.proc.pid}/task")
        children = [c for task in tasks.iterdir() for c in (task / "children").read_text().split()]
        for child in children:
            if "python" in Path(f"/proc/{child}/comm").read_text():
                return int(child)
        raise AssertionError(f"no Python driver among the children {children} of spark-submit")

    def event_ids(self) -> list[str]:
        table = self.catalog.load_table(f"{self.database}.events")
        return list(table.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist())


def test_streaming_job_killed_mid_batch_and_between_batches_loses_and_duplicates_nothing(
    server: CatalogServer, tmp_path: Path, rest_catalog: Any
) -> None:
    rng = random.Random()
    job = StreamingJob(server, tmp_path, rest_catalog)

    # Run 1: killed right after the Iceberg commit of batch 1, before Spark's commit log (the fault point).
    job.land(10)
    job.start(fault="after-sink-commit@1")
    job.wait("batch 0", lambda: job.caught_up(10))
    job.land(10)
    assert job.proc is not None and job.proc.wait(240) != 0
    assert job.total_records() == 20 and 1 in job.batches("offsets") and 1 not in job.batches("commits")

    # Run 2: Spark replays batch 1, whose rows the table already has; more files; then killed between batches
    # (everything committed, nothing in flight) at a random moment.
    job.start()
    job.wait("the replay of batch 1", lambda: job.caught_up(20))
    job.land(15)
    job.land(5)
    job.wait("catching up", lambda: job.caught_up(40))
    time.sleep(rng.uniform(0.0, 1.5))
    job.kill()

    # Run 3: more data, then a clean stop with SIGTERM.
    job.start()
    job.land(12)
    job.wait("the last files", lambda: job.caught_up(52))
    os.kill(job.python_driver_pid(), signal.SIGTERM)
    assert job.proc is not None and job.proc.wait(120) == 0, job.log_tail()

    ids = job.event_ids()
    duplicated = {i: n for i, n in Counter(ids).items() if n > 1}
    assert not duplicated, f"duplicated rows: {duplicated}"
    assert sorted(ids) == sorted(job.landed) and len(ids) == 52

    table = rest_catalog.load_table(f"{job.database}.events")
    assert [f.name for f in table.spec().fields] == ["ingest_year", "ingest_month", "ingest_day", "ingest_hour"]
    rows = table.scan(selected_fields=("ingest_year", "ingest_hour")).to_arrow().to_pylist()
    assert all(len(r["ingest_year"]) == 4 and len(r["ingest_hour"]) == 2 for r in rows)
    summaries = [s.summary for s in table.snapshots() if s.summary is not None]
    assert len(summaries) == len(table.snapshots())
    assert all(s["lakeforge.stream.batch-id"] for s in summaries)
    assert len({s["lakeforge.stream.query-id"] for s in summaries}) == 1
