"""Catalog performance benchmark: the lakeforge REST catalog against pyiceberg's in-process SqlCatalog.

Run::

    .venv/bin/python bench/catalog_bench.py             # full run, 1.5-2 minutes
    .venv/bin/python bench/catalog_bench.py --quick     # smoke run, 20-35 seconds (server start-up dominates)

What it measures, in one run and on one database:

* commits/s with 1, 4 and 16 writer threads, each writer on its own table and all writers on one shared
  table. The unit of work is a metadata-only commit (a transaction setting one table property to a new
  value); a ``CommitFailedException`` is counted as a conflict, the table refreshed and the commit retried.
  Optionally a small pyarrow append per commit, as a second workload.
* loadTable latency (p50/p95/p99) of a table with many snapshots: a raw HTTP GET (httpx), pyiceberg's
  ``RestCatalog.load_table``, and ``SqlCatalog.load_table`` in-process.

The REST server is ``lakeforge catalog serve`` in a separate process (so its GIL is not the clients'),
on a free port with a temporary ``--home``. The baseline is pyiceberg's ``SqlCatalog`` opened in this
process on the server's own SQLite database (WAL mode): our schema is SqlCatalog's, so the baseline runs
the same workload on the same database, at the same moment of machine load. Every figure is printed
next to its baseline and the ratio; see ``bench/README.md`` for how to read them.

Results go to ``bench/results/catalog.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.table import Table as RichTable

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

# pyarrow, pyiceberg and SQLAlchemy are imported lazily (see ``import_clients``), after the server
# process has been launched: the two imports then overlap on the two cores instead of queueing.

log = logging.getLogger("lakeforge.bench.catalog")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "catalog.json"
CATALOG_NAME = "lake"  # the server's default catalog name: SqlCatalog must use the same catalog_name rows
NAMESPACE = "bench"
PROPERTY = "bench.value"


def import_clients() -> None:
    """Import the heavy client libraries (pyiceberg, pyarrow, SQLAlchemy) once."""
    import pyarrow  # noqa: F401
    import pyiceberg.catalog.rest  # noqa: F401
    import pyiceberg.catalog.sql  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401  (loaded by the first Table a catalog returns)


def table_schema() -> Schema:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    return Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "payload", StringType(), required=False),
    )


# Goals of the issue (2-core machine).
GOAL_COMMITS_PER_S = 100.0  # aggregate, writers on distinct tables (checked at >= 4 writers)
GOAL_LOAD_P99_MS = 20.0
GOAL_MAX_RATIO = 2.0  # REST cost per operation / in-process cost per operation

REST = "rest"
SQL = "sql"

#: Unique property values (``next`` on a count is atomic under the GIL).
_VALUES = itertools.count()

#: Set on Ctrl-C / SIGTERM: every worker loop stops at its next check.
STOP = threading.Event()


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))  # ceil(q/100 * n)
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float | None:
    """User+system CPU time of a process (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def sleep_until(deadline: float) -> None:
    while not STOP.is_set():
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def git_revision() -> str | None:
    """``HEAD``'s short hash, with ``+dirty`` when the working tree has uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        status = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = head.stdout.strip()
    if not revision:
        return None
    return revision + ("+dirty" if status.stdout.strip() else "")


# ----------------------------------------------------------------------------------------------------
# The server process
# ----------------------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when this script dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ServerProcess:
    """``lakeforge catalog serve`` on a free port with its own home, in a separate process."""

    def __init__(self, home: Path, *, fsync: bool, workers: int = 1) -> None:
        self.home = home
        self.fsync = fsync
        self.workers = workers
        self.db_path = home / "catalog.db"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = home.parent / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        exe = Path(sys.executable).parent / "lakeforge"
        head = [str(exe)] if exe.exists() else [sys.executable, "-m", "cluster.cli"]
        return [
            *head,
            "catalog",
            "serve",
            "--port",
            str(self.port),
            "--home",
            str(self.home),
            "--database-url",
            f"sqlite:///{self.db_path}",
            "--workers",
            str(self.workers),
        ]

    def launch(self) -> None:
        """Start the process; :meth:`wait_ready` waits for it to answer."""
        # A clean environment for the server: no stray LAKEFORGE_* (auth, another database) from the caller.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEFORGE_")}
        env["LAKEFORGE_CATALOG__FSYNC"] = "true" if self.fsync else "false"
        env["LAKEFORGE_LOG_LEVEL"] = "WARNING"
        self.home.mkdir(parents=True, exist_ok=True)
        command = self._command()
        log.info("starting catalog server: %s", " ".join(command))
        with open(self.log_path, "wb") as out:
            # Own session: a Ctrl-C reaches only this script, which then stops the server in order.
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not STOP.is_set():
            if self.proc.poll() is not None:
                raise RuntimeError(f"catalog server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.uri}/healthz", timeout=1.0).status_code == 200:
                    log.info("catalog server up at %s (pid %d)", self.uri, self.proc.pid)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"catalog server not up within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def cpu_seconds(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log.info("stopping catalog server (pid %d)", self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("catalog server did not stop on SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait(timeout=10)


# ----------------------------------------------------------------------------------------------------
# Catalog clients
# ----------------------------------------------------------------------------------------------------
def rest_catalog(uri: str) -> RestCatalog:
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog(CATALOG_NAME, uri=uri)


def sql_catalog(db_path: Path, warehouse: str, *, fsync: bool) -> SqlCatalog:
    """pyiceberg's SqlCatalog on the server's database, with the server's SQLite settings.

    WAL mode is a property of the database file (the server set it). ``synchronous`` is per connection:
    FULL with fsync on, NORMAL with it off, as the server does. SqlCatalog itself never fsyncs the
    metadata files it writes; the server does when fsync is on.
    """
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy import event

    catalog = SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{db_path}", warehouse=warehouse)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        cursor.close()

    event.listen(catalog.engine, "connect", on_connect)
    catalog.engine.dispose()  # drop connections opened before the listener
    with catalog.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    if str(mode).lower() != "wal":
        raise RuntimeError(f"baseline database is not in WAL mode (journal_mode={mode})")
    return catalog


def create_table(catalog: Catalog, name: str, properties: dict[str, str] | None = None) -> Table:
    return catalog.create_table((NAMESPACE, name), schema=table_schema(), properties=properties or {})


def warm_up(rest: RestCatalog, sql: SqlCatalog) -> None:
    """A few untimed commits and loads through both catalogs: lazy imports, caches, connection pools."""
    for system, catalog in ((REST, rest), (SQL, sql)):
        table = create_table(catalog, f"warmup_{system}")
        for i in range(5):
            commit_property(table, 0, i)
            catalog.load_table(table.name())
        table.append(small_batch(5, "warmup"))


def small_batch(rows: int, tag: str) -> pa.Table:
    import pyarrow as pa

    schema = pa.schema([pa.field("id", pa.int64()), pa.field("payload", pa.string())])
    return pa.table({"id": list(range(rows)), "payload": [f"{tag}-{i}" for i in range(rows)]}, schema=schema)


# ----------------------------------------------------------------------------------------------------
# Commit throughput
# ----------------------------------------------------------------------------------------------------
@dataclass
class WorkerStats:
    commits: int = 0
    conflicts: int = 0
    errors: int = 0
    abandoned: int = 0
    latencies: list[float] = field(default_factory=list)
    last_value: str | None = None


@dataclass
class CellResult:
    system: str
    workload: str  # "props" | "append"
    mode: str  # "own" (each writer on its own table) | "shared" (all on one table)
    writers: int
    seconds: float
    commits: int
    conflicts: int
    errors: int
    abandoned: int
    commits_per_s: float
    commit_latency_ms: dict[str, float]
    client_cpu_ms_per_commit: float | None
    server_cpu_ms_per_commit: float | None
    lost_updates: int


Op = Callable[["Table", int, int], "str | None"]


def commit_property(table: Table, writer: int, seq: int) -> str:
    """The unit of work: a metadata-only commit setting one property to a new value.

    The value is unique in the run: SqlCatalog skips a commit that changes nothing.
    """
    value = f"{writer}-{seq}-{next(_VALUES)}"
    with table.transaction() as tx:
        tx.set_properties({PROPERTY: value})
    return value


def append_rows(table: Table, writer: int, seq: int) -> None:
    """The second workload: append a 10-row pyarrow table (a data file, a manifest, a manifest list)."""
    table.append(small_batch(10, f"{writer}-{seq}"))
    return None


def _total(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def run_cell(
    tables: list[Table],
    op: Op,
    *,
    seconds: float,
    warmup: float,
    server: ServerProcess | None,
) -> tuple[list[WorkerStats], float | None, float | None]:
    """Run ``op`` in one thread per table object until the window closes.

    Only commits that complete inside the measuring window ``[t0, t1]`` (after ``warmup``) count.
    A ``CommitFailedException`` is a conflict: refresh the table and retry the same commit.
    Returns per-writer stats and the client and server CPU seconds spent over the window.
    """
    from pyiceberg.exceptions import CommitFailedException

    n = len(tables)
    stats = [WorkerStats() for _ in range(n)]
    barrier = threading.Barrier(n + 1)
    window: dict[str, float] = {}
    give_up_after = max(5.0, seconds)

    def worker(i: int) -> None:
        table, st = tables[i], stats[i]
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        t0, t1 = window["t0"], window["t1"]
        seq = 0
        while not STOP.is_set():
            start = time.perf_counter()
            if start >= t1:
                break
            seq += 1
            conflicts = errors = 0
            done = False
            value: str | None = None
            while not STOP.is_set():
                try:
                    value = op(table, i, seq)
                    done = True
                    break
                except CommitFailedException:
                    conflicts += 1
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    errors += 1
                    if st.errors + errors <= 3:
                        log.warning("writer %d: commit error: %s: %s", i, type(exc).__name__, exc)
                    time.sleep(0.01)
                if time.perf_counter() - start > give_up_after:
                    break
                try:
                    table.refresh()
                except Exception as exc:  # noqa: BLE001
                    errors += 1
                    log.warning("writer %d: refresh failed: %s", i, exc)
                    time.sleep(0.01)
            end = time.perf_counter()
            if done:
                st.last_value = value
            if t0 <= end <= t1:
                st.conflicts += conflicts
                st.errors += errors
                if done:
                    st.commits += 1
                    st.latencies.append(end - start)
                else:
                    st.abandoned += 1

    threads = [threading.Thread(target=worker, args=(i,), name=f"writer-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    window["t0"] = now + warmup
    window["t1"] = now + warmup + seconds
    barrier.wait(timeout=60)
    sleep_until(window["t0"])
    cpu0, srv0 = time.process_time(), (server.cpu_seconds() if server else None)
    sleep_until(window["t1"])
    cpu1, srv1 = time.process_time(), (server.cpu_seconds() if server else None)
    deadline = time.monotonic() + give_up_after + 30
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            t.join(timeout=0.2)
        if t.is_alive():
            log.warning("%s still running after the window; leaving it (daemon thread)", t.name)
    if STOP.is_set():
        raise KeyboardInterrupt
    server_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
    return stats, cpu1 - cpu0, server_cpu


class CommitBench:
    """The commit-throughput matrix: {props, append} x {own, shared} x writers, REST and SqlCatalog."""

    def __init__(
        self,
        server: ServerProcess,
        rest_clients: list[RestCatalog],
        sql: SqlCatalog,
        *,
        seconds: float,
        warmup: float,
        rounds: int,
    ) -> None:
        self.rounds = rounds
        self.server = server
        self.rest_clients = rest_clients
        self.sql = sql
        self.seconds = seconds
        self.warmup = warmup
        self.results: list[CellResult] = []
        self._cell = 0

    def _catalog(self, system: str, writer: int) -> Catalog:
        return self.rest_clients[writer] if system == REST else self.sql

    def _prepare(self, system: str, workload: str, mode: str, writers: int) -> list[Table]:
        """Fresh tables for one cell (not timed); one Table object per writer, each from its own client."""
        count = writers if mode == "own" else 1
        # No client-side retries inside pyiceberg: every conflict surfaces to the benchmark loop.
        props = {"commit.retry.num-retries": "0"}
        creator = self._catalog(system, 0)
        names = [f"{system}_{workload}_{mode}_{writers}w_{k}" for k in range(count)]
        for name in names:
            create_table(creator, name, props)
        return [
            self._catalog(system, w).load_table((NAMESPACE, names[w if mode == "own" else 0])) for w in range(writers)
        ]

    def _check_lost_updates(self, system: str, tables: list[Table], stats: list[WorkerStats], mode: str) -> int:
        """Props workload, own tables: each table's property is its writer's last committed value."""
        if mode != "own":
            return 0
        lost = 0
        for w, (table, st) in enumerate(zip(tables, stats, strict=True)):
            if st.last_value is None:
                continue
            current = self._catalog(system, w).load_table(table.name()).properties.get(PROPERTY)
            if current != st.last_value:
                lost += 1
                log.warning(
                    "%s: %s has %s=%r, last commit wrote %r", system, table.name(), PROPERTY, current, st.last_value
                )
        return lost

    def run_pair(self, workload: str, mode: str, writers: int) -> None:
        """Both systems on the same cell, in alternating rounds, so that both see the same machine noise.

        With ``rounds`` = 3 the order is REST, SQL, SQL, REST, REST, SQL (or the mirror image, alternating
        per cell); each round measures ``seconds / rounds`` after its own short warm-up.
        """
        first, second = (REST, SQL) if self._cell % 2 == 0 else (SQL, REST)
        self._cell += 1
        op: Op = commit_property if workload == "props" else append_rows
        tables = {system: self._prepare(system, workload, mode, writers) for system in (first, second)}
        window = self.seconds / self.rounds
        stats: dict[str, list[WorkerStats]] = {REST: [], SQL: []}
        cpu: dict[str, list[float | None]] = {REST: [], SQL: []}
        server_cpu: dict[str, list[float | None]] = {REST: [], SQL: []}
        for r in range(self.rounds):
            for system in (first, second) if r % 2 == 0 else (second, first):
                round_stats, client, srv = run_cell(
                    tables[system],
                    op,
                    seconds=window,
                    warmup=self.warmup,
                    server=self.server if system == REST else None,
                )
                stats[system].extend(round_stats)
                cpu[system].append(client)
                server_cpu[system].append(srv)
        for system in (REST, SQL):
            st = stats[system]
            commits = sum(s.commits for s in st)
            last_round = st[-writers:]
            lost = self._check_lost_updates(system, tables[system], last_round, mode) if workload == "props" else 0
            client_cpu = _total(cpu[system])
            srv_cpu = _total(server_cpu[system])
            result = CellResult(
                system=system,
                workload=workload,
                mode=mode,
                writers=writers,
                seconds=self.seconds,
                commits=commits,
                conflicts=sum(s.conflicts for s in st),
                errors=sum(s.errors for s in st),
                abandoned=sum(s.abandoned for s in st),
                commits_per_s=commits / self.seconds,
                commit_latency_ms=summary_ms([x for s in st for x in s.latencies]),
                client_cpu_ms_per_commit=(client_cpu * 1000 / commits) if commits and client_cpu is not None else None,
                server_cpu_ms_per_commit=(srv_cpu * 1000 / commits) if commits and srv_cpu is not None else None,
                lost_updates=lost,
            )
            self.results.append(result)
            log.info(
                "%-4s %-6s %-6s %2d writers: %7.1f commits/s, %d conflicts, %d errors, p50 %.1f ms",
                system,
                workload,
                mode,
                writers,
                result.commits_per_s,
                result.conflicts,
                result.errors,
                result.commit_latency_ms["p50"],
            )

    def get(self, system: str, workload: str, mode: str, writers: int) -> CellResult:
        for r in self.results:
            if (r.system, r.workload, r.mode, r.writers) == (system, workload, mode, writers):
                return r
        raise KeyError((system, workload, mode, writers))


# ----------------------------------------------------------------------------------------------------
# loadTable latency
# ----------------------------------------------------------------------------------------------------
@dataclass
class LoadResult:
    snapshots: int
    metadata_bytes: int
    iterations: int
    latency_ms: dict[str, dict[str, float]]  # method -> summary


LOAD_METHODS = ("http", "rest", "sql")
LOAD_LABEL = {
    "http": "raw HTTP GET (httpx)",
    "rest": "RestCatalog.load_table",
    "sql": "SqlCatalog.load_table",
}


def bench_load(
    server: ServerProcess, rest: RestCatalog, sql: SqlCatalog, *, snapshots: int, iterations: int
) -> LoadResult:
    """Latency of loading one table with ``snapshots`` snapshots, three ways, interleaved round-robin."""
    name = "load_target"
    table = create_table(rest, name)
    log.info("loadTable: appending %d snapshots to %s.%s", snapshots, NAMESPACE, name)
    for i in range(snapshots):
        if STOP.is_set():
            raise KeyboardInterrupt
        table.append(small_batch(5, f"s{i}"))
    ident = (NAMESPACE, name)
    path = f"/v1/namespaces/{NAMESPACE}/tables/{name}"
    with httpx.Client(base_url=server.uri, timeout=30) as http:
        first = http.get(path)
        first.raise_for_status()
        body = first.json()
        loaded_snapshots = len(body["metadata"].get("snapshots", []))
        if loaded_snapshots != snapshots:
            log.warning("expected %d snapshots, the table has %d", snapshots, loaded_snapshots)
        metadata_bytes = len(json.dumps(body["metadata"]).encode())

        def via_http() -> None:
            response = http.get(path)
            response.raise_for_status()
            _ = response.content

        def via_rest() -> None:
            rest.load_table(ident)

        def via_sql() -> None:
            sql.load_table(ident)

        funcs = {"http": via_http, "rest": via_rest, "sql": via_sql}
        # Same table, same metadata file, for all three.
        if sql.load_table(ident).metadata_location != rest.load_table(ident).metadata_location:
            raise RuntimeError("SqlCatalog and the REST server disagree on the table's metadata location")
        for _ in range(max(10, iterations // 20)):  # warm-up: connections, caches, imports
            for f in funcs.values():
                f()
        samples: dict[str, list[float]] = {m: [] for m in LOAD_METHODS}
        for i in range(iterations):
            if STOP.is_set():
                raise KeyboardInterrupt
            # Rotate the order so no method always runs right after another one.
            order = LOAD_METHODS[i % 3 :] + LOAD_METHODS[: i % 3]
            for m in order:
                start = time.perf_counter()
                funcs[m]()
                samples[m].append(time.perf_counter() - start)
    return LoadResult(
        snapshots=loaded_snapshots,
        metadata_bytes=metadata_bytes,
        iterations=iterations,
        latency_ms={m: summary_ms(samples[m]) for m in LOAD_METHODS},
    )


# ----------------------------------------------------------------------------------------------------
# Checks and reporting
# ----------------------------------------------------------------------------------------------------
@dataclass
class Check:
    figure: str
    value: float
    baseline: float
    unit: str
    ratio: float  # REST cost per operation / baseline cost per operation (> 1: REST is slower)
    goal: str
    status: str  # PASS | MISS | info


def throughput_check(cell: CellResult, base: CellResult, label: str, absolute_goal: bool) -> Check:
    ratio = base.commits_per_s / cell.commits_per_s if cell.commits_per_s else float("inf")
    goals, missed = [f"ratio <= {GOAL_MAX_RATIO:g}x"], []
    if ratio > GOAL_MAX_RATIO:
        missed.append("ratio")
    if absolute_goal:
        goals.insert(0, f">= {GOAL_COMMITS_PER_S:g}/s")
        if cell.commits_per_s < GOAL_COMMITS_PER_S:
            missed.insert(0, "rate")
    return Check(
        figure=label,
        value=cell.commits_per_s,
        baseline=base.commits_per_s,
        unit="commits/s",
        ratio=ratio,
        goal=", ".join(goals),
        status="PASS" if not missed else "MISS (" + ", ".join(missed) + ")",
    )


def build_checks(
    commits: CommitBench | None, load: LoadResult | None, writers: list[int], append_writers: list[int]
) -> list[Check]:
    checks: list[Check] = []
    if commits is not None:
        for mode, noun in (("own", "own tables"), ("shared", "one shared table")):
            for w in writers:
                checks.append(
                    throughput_check(
                        commits.get(REST, "props", mode, w),
                        commits.get(SQL, "props", mode, w),
                        f"commits/s, props, {w} writer{'s' if w > 1 else ''}, {noun}",
                        absolute_goal=(mode == "own" and w >= 4),
                    )
                )
        for w in append_writers:
            checks.append(
                throughput_check(
                    commits.get(REST, "append", "own", w),
                    commits.get(SQL, "append", "own", w),
                    f"commits/s, append, {w} writer{'s' if w > 1 else ''}, own tables",
                    absolute_goal=False,
                )
            )
    if load is not None:
        base = load.latency_ms["sql"]
        for method in ("http", "rest"):
            lat = load.latency_ms[method]
            for q in ("p50", "p95", "p99"):
                ratio = lat[q] / base[q] if base[q] else float("inf")
                goals, missed = [], []
                if method == "rest":
                    goals.append(f"ratio <= {GOAL_MAX_RATIO:g}x")
                    if ratio > GOAL_MAX_RATIO:
                        missed.append("ratio")
                if q == "p99":
                    goals.insert(0, f"< {GOAL_LOAD_P99_MS:g} ms")
                    if lat[q] >= GOAL_LOAD_P99_MS:
                        missed.insert(0, "latency")
                status = "info" if not goals else ("PASS" if not missed else "MISS (" + ", ".join(missed) + ")")
                checks.append(
                    Check(
                        figure=f"loadTable {q}, {LOAD_LABEL[method]}",
                        value=lat[q],
                        baseline=base[q],
                        unit="ms",
                        ratio=ratio,
                        goal=", ".join(goals) if goals else "-",
                        status=status,
                    )
                )
    return checks


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None or x != x:  # None or NaN
        return "-"
    return f"{x:,.{digits}f}"


def print_report(
    console: Console,
    meta: dict[str, Any],
    checks: list[Check],
    commits: CommitBench | None,
    load: LoadResult | None,
) -> None:
    console.print(
        f"[bold]lakeforge catalog benchmark[/bold]  {meta['started']}  host {meta['host']} "
        f"({meta['cpus']} CPUs)  fsync={'on' if meta['fsync'] else 'off'}  "
        f"{meta['seconds_per_cell']:g}s/cell/system in {meta['rounds']} alternating round(s) "
        f"(+{meta['warmup_seconds']:g}s warm-up each)"
    )
    console.print(
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
        f"baseline = pyiceberg SqlCatalog in this process on the server's SQLite database (WAL)"
    )
    if commits is not None:
        detail = RichTable(
            title="Commit cells (window counts; latency = one commit incl. retries)", title_justify="left"
        )
        for col in ("system", "workload", "tables", "writers", "commits/s", "commits", "conflicts", "errors"):
            detail.add_column(col, justify="right" if col not in ("system", "workload", "tables") else "left")
        for col in ("p50 ms", "p99 ms", "client CPU ms/commit", "server CPU ms/commit"):
            detail.add_column(col, justify="right")
        for r in commits.results:
            detail.add_row(
                "REST" if r.system == REST else "SqlCatalog",
                r.workload,
                r.mode,
                str(r.writers),
                fmt(r.commits_per_s),
                str(r.commits),
                str(r.conflicts),
                str(r.errors + r.abandoned) + (f" [red]lost {r.lost_updates}[/red]" if r.lost_updates else ""),
                fmt(r.commit_latency_ms["p50"]),
                fmt(r.commit_latency_ms["p99"]),
                fmt(r.client_cpu_ms_per_commit),
                fmt(r.server_cpu_ms_per_commit),
            )
        console.print(detail)
    if load is not None:
        console.print(
            f"loadTable target: {load.snapshots} snapshots, metadata {load.metadata_bytes / 1024:.1f} KiB, "
            f"{load.iterations} loads per method (interleaved)"
        )
    table = RichTable(
        title="Results (ratio = REST cost per operation / baseline cost per operation; > 1 means REST is slower)",
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("REST", justify="right")
    table.add_column("baseline", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("goal")
    table.add_column("status")
    for c in checks:
        style = "green" if c.status == "PASS" else ("red" if c.status.startswith("MISS") else "dim")
        table.add_row(
            c.figure,
            f"{fmt(c.value)} {c.unit}",
            f"{fmt(c.baseline)} {c.unit}",
            f"{c.ratio:.2f}x",
            c.goal,
            f"[{style}]{c.status}[/{style}]",
        )
    console.print(table)
    passed = sum(c.status == "PASS" for c in checks)
    missed = sum(c.status.startswith("MISS") for c in checks)
    console.print(f"{passed} PASS, {missed} MISS")


# ----------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="measuring window per commit cell (default 3, quick 0.6)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (20-35 s; noisy, for checking the script, not for judging)",
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="alternating REST/baseline rounds per cell (default 3, quick 1)"
    )
    p.add_argument("--writers", default="1,4,16", help="writer thread counts, comma-separated (default 1,4,16)")
    p.add_argument("--append-writers", default=None, help="writer counts of the append workload (default 1,4)")
    p.add_argument("--no-append", action="store_true", help="skip the pyarrow append workload")
    p.add_argument("--server-workers", type=int, default=1, help="server processes (lakeforge catalog serve --workers)")
    p.add_argument(
        "--snapshots", type=int, default=None, help="snapshots of the loadTable table (default 50, quick 10)"
    )
    p.add_argument("--load-iterations", type=int, default=None, help="loads per method (default 500, quick 80)")
    p.add_argument(
        "--fsync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server fsync (LAKEFORGE_CATALOG__FSYNC) and matching SQLite synchronous FULL/NORMAL for the baseline",
    )
    p.add_argument("--skip-commits", action="store_true", help="only the loadTable benchmark")
    p.add_argument("--skip-load", action="store_true", help="only the commit benchmark")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake home (for inspection)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.6 if args.quick else 3.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    args.warmup = min(0.5, max(0.2, args.seconds / args.rounds / 4))
    if args.snapshots is None:
        args.snapshots = 10 if args.quick else 50
    if args.load_iterations is None:
        args.load_iterations = 80 if args.quick else 500
    args.writer_counts = [int(x) for x in args.writers.split(",") if x.strip()]
    if args.no_append:
        args.append_counts = []
    else:
        args.append_counts = [
            int(x) for x in (args.append_writers or ("1" if args.quick else "1,4")).split(",") if x.strip()
        ]
    return args


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("pyiceberg", "urllib3", "httpx", "httpcore", "sqlalchemy"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so ``finally`` blocks stop the server and delete the temp dirs."""

    def handler(signum: int, _frame: object) -> None:
        STOP.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyiceberg": dist_version("pyiceberg"),
        "sqlalchemy": dist_version("sqlalchemy"),
        "git_revision": git_revision(),
        "fsync": args.fsync,
        "seconds_per_cell": args.seconds,
        "warmup_seconds": args.warmup,
        "rounds": args.rounds,
        "quick": args.quick,
        "loadavg_start": loadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="lakeforge-catalog-bench-"))
    server = ServerProcess(tmp / "lake", fsync=args.fsync, workers=args.server_workers)
    commits: CommitBench | None = None
    load: LoadResult | None = None
    sql: SqlCatalog | None = None
    try:
        t_start = time.monotonic()
        server.launch()
        import_clients()  # overlaps with the server's own start-up
        server.wait_ready()
        meta["server_start_seconds"] = round(time.monotonic() - t_start, 1)
        log.info("server ready after %.1fs", meta["server_start_seconds"])
        n_clients = max([*args.writer_counts, *args.append_counts, 1])
        rest_clients = [rest_catalog(server.uri) for _ in range(n_clients)]
        rest_clients[0].create_namespace(NAMESPACE)
        warehouse = (server.home / "warehouse").as_uri()
        sql = sql_catalog(server.db_path, warehouse, fsync=args.fsync)
        warm_up(rest_clients[0], sql)
        if not args.skip_commits:
            commits = CommitBench(
                server, rest_clients, sql, seconds=args.seconds, warmup=args.warmup, rounds=args.rounds
            )
            for mode in ("own", "shared"):
                for w in args.writer_counts:
                    commits.run_pair("props", mode, w)
            for w in args.append_counts:
                commits.run_pair("append", "own", w)
        if not args.skip_load:
            load = bench_load(server, rest_clients[0], sql, snapshots=args.snapshots, iterations=args.load_iterations)
        meta["elapsed_seconds"] = round(time.monotonic() - t_start, 1)
    finally:
        STOP.set()  # any worker left behind stops at its next check
        if sql is not None:
            sql.engine.dispose()
        server.stop()
        if args.keep:
            log.info("kept the temporary lake under %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = loadavg()
    checks = build_checks(commits, load, args.writer_counts if commits else [], args.append_counts if commits else [])
    print_report(console, meta, checks, commits, load)
    return {
        "meta": meta,
        "goals": {
            "commits_per_s_distinct_tables": GOAL_COMMITS_PER_S,
            "load_table_p99_ms": GOAL_LOAD_P99_MS,
            "max_rest_over_in_process_ratio": GOAL_MAX_RATIO,
        },
        "checks": [asdict(c) for c in checks],
        "commits": [asdict(r) for r in commits.results] if commits else [],
        "load_table": asdict(load) if load else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        with interrupt_on_sigterm():
            results = run(args, console)
    except KeyboardInterrupt:
        log.error("interrupted; server stopped and temporary files removed")
        return 130
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log.info("results written to %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
