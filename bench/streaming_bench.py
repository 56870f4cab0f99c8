"""Streaming benchmark: end-to-end latency from a file landing to its rows being visible in the Iceberg table,
and sustained rows/s, of ``jobs/streaming_events_job.py`` at two input rates, next to a plain Spark baseline.

Run::

    .venv/bin/python bench/streaming_bench.py            # full run, about 6 minutes
    .venv/bin/python bench/streaming_bench.py --quick    # smoke run, about 3 minutes (JVM start-up dominates)

What it does, for each system (the Glue job, then the baseline):

* starts a catalog server (``lakeforge catalog serve``, own process and temporary home) once, and the job with
  plain ``spark-submit`` on ``local[2]`` with the trigger interval ``--window`` (default 5 s);
* warms up: lands one file and waits until its rows are visible (start-up and the cold first batch are not
  measured);
* for each input rate (``--rates``, rows/s, default 200 and 4000): lands a JSON file of ``rate x
  --file-interval`` events every ``--file-interval`` seconds for ``--seconds``, atomically (written under a
  hidden name, then renamed, as a Firehose delivery appears), then waits until every row is visible;
* a watcher polls the table's current snapshot through the REST catalog every ``--poll`` seconds and notes
  when each snapshot was first seen. A file's latency is the first-seen time of the snapshot that added its
  rows (found from the snapshot's added data files) minus its landing time. Percentiles are over files.
* sustained rows/s = the job's output rate in the phase: the rows of every commit after the phase's first, over
  the time from its first to its last commit (first-seen times).

The baseline is the same pipeline without the Glue layer: a plain PySpark ``readStream.json`` +
``foreachBatch`` that adds the same ingestion-time columns and appends with ``writeTo().append()`` (no
GlueContext, no DynamicFrame, no persisted batch, no exactly-once bookkeeping). Ratios are cost ratios as in
``bench/README.md``: latency / baseline latency, baseline rows/s / rows/s.

Goals: p50 latency < 2 trigger intervals, and the job keeps up (sustained rows/s >= 90% of the input rate).
Results go to ``bench/results/streaming.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table as RichTable

log = logging.getLogger("lakeforge.bench.streaming")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "streaming.json"
GLUE_SCRIPT = ROOT / "jobs" / "streaming_events_job.py"
DATABASE = "bench"
GOAL_WINDOWS = 2.0
GOAL_KEEP_UP = 0.9
BASELINE_SCRIPT = '''\
"""Plain Spark baseline of the streaming benchmark (no Glue layer)."""
import sys
from pyspark.sql import SparkSession, functions as F

landing, table, checkpoint, window, schema = sys.argv[1:6]
spark = SparkSession.builder.appName("streaming_baseline").getOrCreate()
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
spark.sql(
    f"CREATE TABLE IF NOT EXISTS {table} ({schema}, ingest_year string, ingest_month string, ingest_day string, "
    "ingest_hour string) USING iceberg PARTITIONED BY (ingest_year, ingest_month, ingest_day, ingest_hour)"
)
events = spark.readStream.schema(schema).option("recursiveFileLookup", "true").json(landing)

def append(batch, batch_id):
    now = F.current_timestamp()
    for unit, fmt in (("year", "yyyy"), ("month", "MM"), ("day", "dd"), ("hour", "HH")):
        batch = batch.withColumn(f"ingest_{unit}", F.date_format(now, fmt))
    batch.writeTo(table).append()

query = (events.writeStream.foreachBatch(append).option("checkpointLocation", checkpoint)
         .trigger(processingTime=window).start())
query.awaitTermination()
'''


# -- small helpers -------------------------------------------------------------------------------------------
def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


# -- processes -----------------------------------------------------------------------------------------------
class Server:
    """``lakeforge catalog serve`` on a free port with its own home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).parent / "lakeforge"
        head = [str(exe)] if exe.exists() else [sys.executable, "-m", "cluster.cli"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEFORGE_")}
        env["LAKEFORGE_LOG_LEVEL"] = "WARNING"
        self.home.mkdir(parents=True, exist_ok=True)
        out = (self.home.parent / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [*head, "catalog", "serve", "--port", str(self.port), "--home", str(self.home)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the catalog server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.uri}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the catalog server did not start within 90 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class StreamingJob:
    """One spark-submit run of a streaming script."""

    def __init__(self, name: str, cmd: list[str], home: Path, log_path: Path) -> None:
        self.name, self.cmd, self.home, self.log_path = name, cmd, home, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFORGE_", "PYSPARK_", "SPARK_"))}
        env["LAKEFORGE_HOME"] = str(self.home)
        self.proc = subprocess.Popen(
            self.cmd, env=env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


# -- measuring -----------------------------------------------------------------------------------------------
class Watcher(threading.Thread):
    """Polls the table's snapshots; notes when each was first seen, and the table's total records."""

    def __init__(self, catalog: Any, identifier: tuple[str, str], poll: float) -> None:
        super().__init__(daemon=True, name="snapshot-watcher")
        self.catalog, self.identifier, self.poll = catalog, identifier, poll
        self.first_seen: dict[int, float] = {}
        self.total = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                table = self.catalog.load_table(self.identifier)
            except Exception:  # not created yet
                time.sleep(self.poll)
                continue
            now = time.time()
            for snapshot in table.snapshots():
                self.first_seen.setdefault(snapshot.snapshot_id, now)
            current = table.current_snapshot()
            if current is not None and current.summary is not None:
                self.total = int(current.summary.get("total-records") or 0)
            time.sleep(self.poll)


@dataclass
class Landed:
    key: str
    landed_at: float
    rows: int


class Lander:
    """Lands JSON event files under the landing prefix, atomically, and remembers when."""

    def __init__(self, landing: Path) -> None:
        self.landing = landing
        self.count = 0
        self.rows = 0

    def land(self, phase: str, rows: int) -> Landed:
        key = f"{phase}-{self.count:05d}"
        folder = self.landing / datetime.now(UTC).strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat()
        body = "".join(
            f'{{"event_id": "{key}-{i:05d}", "user_id": {i % 97}, "kind": "view", "value": {i * 0.5}, '
            f'"event_time": "{stamp}"}}\n'
            for i in range(rows)
        )
        hidden = folder / f".{key}.json.tmp"
        hidden.write_text(body)
        landed_at = time.time()
        os.replace(hidden, folder / f"{key}.json")
        self.count += 1
        self.rows += rows
        return Landed(key, landed_at, rows)


@dataclass
class PhaseResult:
    system: str
    rate: int
    seconds: float
    files: int
    rows: int
    snapshots: int
    input_rows_per_s: float
    sustained_rows_per_s: float | None
    latency_s: dict[str, float | None] = field(default_factory=dict)
    unresolved_files: int = 0


def _local(path: str, home: Path) -> Path:
    if path.startswith("file:"):
        return Path("/" + path[len("file:") :].lstrip("/"))
    if path.startswith(("s3://", "s3a://", "s3n://")):
        bucket_key = path.split("://", 1)[1]
        return home / "s3" / bucket_key
    return Path(path)


def files_by_snapshot(catalog: Any, identifier: tuple[str, str], home: Path, snapshots: set[int]) -> dict[str, int]:
    """Landed file key -> the snapshot that added its rows, for the given snapshots."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = catalog.load_table(identifier)
    found: dict[str, int] = {}
    for snapshot_id in snapshots:
        entries = table.inspect.entries(snapshot_id=snapshot_id)
        added = entries.filter(pc.and_(pc.equal(entries["status"], 1), pc.equal(entries["snapshot_id"], snapshot_id)))
        for data_file in added.column("data_file").to_pylist():
            ids = pq.read_table(_local(data_file["file_path"], home), columns=["event_id"]).column("event_id")
            for event_id in pc.unique(ids).to_pylist():
                found.setdefault(event_id.rsplit("-", 1)[0], snapshot_id)
    return found


def run_phase(
    system: str,
    job: StreamingJob,
    lander: Lander,
    watcher: Watcher,
    catalog: Any,
    identifier: tuple[str, str],
    home: Path,
    rate: int,
    args: argparse.Namespace,
) -> PhaseResult:
    rows_per_file = max(1, round(rate * args.file_interval))
    known = set(watcher.first_seen)
    landed: list[Landed] = []
    start = time.time()
    next_at = time.monotonic()
    end_at = next_at + args.seconds
    while time.monotonic() < end_at:
        landed.append(lander.land(f"{system}-{rate}", rows_per_file))
        next_at += args.file_interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    elapsed = time.time() - start
    deadline = time.monotonic() + args.drain_timeout
    while watcher.total < lander.rows and time.monotonic() < deadline:
        if not job.alive():
            raise RuntimeError(f"{system}: the job exited ({job.proc and job.proc.returncode}):\n{job.log_tail()}")
        time.sleep(0.1)
    time.sleep(2 * args.poll)
    new = set(watcher.first_seen) - known
    mapping = files_by_snapshot(catalog, identifier, home, new)
    latencies = [watcher.first_seen[mapping[f.key]] - f.landed_at for f in landed if f.key in mapping]
    rows = sum(f.rows for f in landed)
    # Output rate between the phase's first and last commit: the rows of every commit after the first, over
    # the time between them (the first commit's rows landed before the span started).
    seen = sorted({watcher.first_seen[mapping[f.key]] for f in landed if f.key in mapping})
    after_first = sum(f.rows for f in landed if f.key in mapping and watcher.first_seen[mapping[f.key]] > seen[0])
    sustained = after_first / (seen[-1] - seen[0]) if len(seen) > 1 and len(latencies) == len(landed) else None
    return PhaseResult(
        system=system,
        rate=rate,
        seconds=round(elapsed, 2),
        files=len(landed),
        rows=rows,
        snapshots=len(new),
        input_rows_per_s=round(rows / elapsed, 1),
        sustained_rows_per_s=round(sustained, 1) if sustained else None,
        latency_s={
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "max": max(latencies) if latencies else None,
        },
        unresolved_files=len(landed) - len(latencies),
    )


def run_system(system: str, server: Server, tmp: Path, args: argparse.Namespace) -> tuple[list[PhaseResult], float]:
    from pyiceberg.catalog.rest import RestCatalog

    home = tmp / system
    bucket = "bench"
    landing = home / "s3" / bucket / "landing"
    landing.mkdir(parents=True)
    table = f"events_{system}"
    identifier = (DATABASE, table)
    window = f"{args.window:g} seconds"
    submit = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
              "--conf", f"spark.sql.catalog.lake.uri={server.uri}", "--conf", "spark.ui.enabled=false",
              "--conf", "spark.sql.shuffle.partitions=2"]  # fmt: skip
    if system == "glue":
        cmd = [*submit, str(GLUE_SCRIPT), "--JOB_NAME", "bench_stream", "--landing", f"s3://{bucket}/landing/",
               "--database", DATABASE, "--table", table, "--TempDir", f"s3://{bucket}/tmp/",
               "--window_size", window]  # fmt: skip
    else:
        script = tmp / "baseline_job.py"
        script.write_text(BASELINE_SCRIPT)
        schema = "event_id string, user_id bigint, kind string, value double, event_time timestamp"
        cmd = [*submit, str(script), f"s3://{bucket}/landing/", f"lake.{DATABASE}.{table}",
               f"s3://{bucket}/tmp/baseline/checkpoint/", window, schema]  # fmt: skip
    job = StreamingJob(system, cmd, home, tmp / f"{system}.log")
    catalog = RestCatalog("lake", uri=server.uri)
    watcher = Watcher(catalog, identifier, args.poll)
    lander = Lander(landing)
    started = time.monotonic()
    job.start()
    watcher.start()
    try:
        lander.land(f"{system}-warmup", 10)
        deadline = time.monotonic() + args.startup_timeout
        while watcher.total < lander.rows:
            if not job.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{system}: the warm-up batch never became visible:\n{job.log_tail()}")
            time.sleep(0.1)
        startup = time.monotonic() - started
        log.info("%s: first rows visible %.1f s after spark-submit", system, startup)
        results = []
        for rate in args.rate_list:
            log.info("%s: %d rows/s for %g s", system, rate, args.seconds)
            results.append(run_phase(system, job, lander, watcher, catalog, identifier, home, rate, args))
            log.info("%s: %s", system, results[-1])
        return results, startup
    finally:
        watcher.stop_event.set()
        job.stop()


# -- report --------------------------------------------------------------------------------------------------
def build_checks(results: list[PhaseResult], window: float) -> list[dict[str, Any]]:
    base = {r.rate: r for r in results if r.system == "baseline"}
    checks = []
    for r in results:
        if r.system != "glue":
            continue
        b = base.get(r.rate)
        p50, p95 = r.latency_s["p50"], r.latency_s["p95"]
        lat_goal = p50 is not None and p50 < GOAL_WINDOWS * window
        keeps_up = r.sustained_rows_per_s is not None and r.sustained_rows_per_s >= GOAL_KEEP_UP * r.input_rows_per_s
        checks.append(
            {
                "figure": f"latency p50, {r.rate} rows/s",
                "value": p50,
                "baseline": b.latency_s["p50"] if b else None,
                "unit": "s",
                "goal": f"< {GOAL_WINDOWS * window:g} s (2 trigger intervals)",
                "status": "PASS" if lat_goal else "MISS",
            }
        )
        checks.append(
            {
                "figure": f"latency p95, {r.rate} rows/s",
                "value": p95,
                "baseline": b.latency_s["p95"] if b else None,
                "unit": "s",
                "goal": "-",
                "status": "info",
            }
        )
        checks.append(
            {
                "figure": f"sustained rows/s, {r.rate} rows/s in",
                "value": r.sustained_rows_per_s,
                "baseline": b.sustained_rows_per_s if b else None,
                "unit": "rows/s",
                "goal": f">= {GOAL_KEEP_UP:.0%} of {r.input_rows_per_s:g}",
                "status": "PASS" if keeps_up else "MISS",
            }
        )
    for c in checks:
        value, baseline = c["value"], c["baseline"]
        if value and baseline:
            c["ratio"] = round(baseline / value if c["unit"] == "rows/s" else value / baseline, 2)
        else:
            c["ratio"] = None
    return checks


def print_report(
    console: Console, meta: dict[str, Any], results: list[PhaseResult], checks: list[dict[str, Any]]
) -> None:
    console.print(
        f"[bold]lakeforge streaming benchmark[/bold]  {meta['started']}  host {meta['host']} ({meta['cpus']} CPUs)  "
        f"trigger {meta['window_s']:g} s, files every {meta['file_interval_s']:g} s, {meta['seconds_per_phase']:g} s "
        "per rate"
    )
    console.print(
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; start-up to first visible "
        f"rows: glue {fmt(meta['startup_s'].get('glue'), 1)} s, baseline {fmt(meta['startup_s'].get('baseline'), 1)} s"
    )
    detail = RichTable(title="Phases (latency = snapshot first seen - file landed, over files)", title_justify="left")
    for col in ("system", "rate", "files", "rows", "batches", "in rows/s", "sustained rows/s", "p50 s", "p95 s",
                "max s", "unresolved"):  # fmt: skip
        detail.add_column(col, justify="left" if col == "system" else "right")
    for r in results:
        detail.add_row(
            r.system,
            str(r.rate),
            str(r.files),
            str(r.rows),
            str(r.snapshots),
            fmt(r.input_rows_per_s, 1),
            fmt(r.sustained_rows_per_s, 1),
            fmt(r.latency_s["p50"]),
            fmt(r.latency_s["p95"]),
            fmt(r.latency_s["max"]),
            str(r.unresolved_files),
        )
    console.print(detail)
    table = RichTable(
        title="Results (ratio = cost / baseline cost; > 1 means the Glue job is slower)", title_justify="left"
    )
    for col in ("figure", "glue job", "baseline", "ratio", "goal", "status"):
        table.add_column(col, justify="right" if col in ("glue job", "baseline", "ratio") else "left")
    for c in checks:
        style = "green" if c["status"] == "PASS" else ("red" if c["status"] == "MISS" else "dim")
        table.add_row(
            c["figure"],
            f"{fmt(c['value'])} {c['unit']}",
            f"{fmt(c['baseline'])} {c['unit']}",
            "-" if c["ratio"] is None else f"{c['ratio']:.2f}x",
            c["goal"],
            f"[{style}]{c['status']}[/{style}]",
        )
    console.print(table)
    console.print(
        f"{sum(c['status'] == 'PASS' for c in checks)} PASS, {sum(c['status'] == 'MISS' for c in checks)} MISS"
    )


# -- main ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="short phases (smoke run)")
    p.add_argument("--window", type=float, default=5.0, help="trigger interval in seconds (default 5)")
    p.add_argument("--rates", default="200,4000", help="input rates in rows/s, comma-separated (default 200,4000)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per rate (default 40, quick 12)")
    p.add_argument("--file-interval", type=float, default=0.5, help="seconds between landed files (default 0.5)")
    p.add_argument("--poll", type=float, default=0.05, help="snapshot polling interval in seconds (default 0.05)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain-Spark baseline")
    p.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for the first batch")
    p.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for a phase's last rows")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake (and the job logs)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    args.rate_list = [int(x) for x in args.rates.split(",") if x.strip()]
    if args.seconds is None:
        args.seconds = 12.0 if args.quick else 40.0
    return args


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "window_s": args.window,
        "file_interval_s": args.file_interval,
        "seconds_per_phase": args.seconds,
        "rates": args.rate_list,
        "quick": args.quick,
        "loadavg_start": loadavg(),
        "startup_s": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="lakeforge-streaming-bench-"))
    server = Server(tmp / "catalog")
    results: list[PhaseResult] = []
    try:
        server.start()
        for system in ("glue",) if args.no_baseline else ("glue", "baseline"):
            phases, startup = run_system(system, server, tmp, args)
            results.extend(phases)
            meta["startup_s"][system] = round(startup, 1)
    finally:
        server.stop()
        if args.keep:
            log.info("kept the temporary lake and job logs under %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = loadavg()
    checks = build_checks(results, args.window)
    print_report(console, meta, results, checks)
    return {
        "meta": meta,
        "goals": {"p50_latency_trigger_intervals": GOAL_WINDOWS, "keep_up_fraction": GOAL_KEEP_UP},
        "checks": checks,
        "phases": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("pyiceberg", "urllib3", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    console = Console(width=None if sys.stdout.isatty() else 160)
    results = run(args, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log.info("results written to %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
