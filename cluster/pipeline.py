"""The lake's main pipeline, run by ``lakeforge demo`` on embedded defaults.

Starts the catalog server, runs a Spark job with plain ``spark-submit`` that writes a partitioned
Iceberg table through the catalog, then reads the table back with pyiceberg and shows what was written.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from catalog.server import CatalogServer
from catalog.settings import PROJECT_ROOT, Settings
from cluster.submit import spark_submit

log = logging.getLogger(__name__)

JOBS = PROJECT_ROOT / "jobs"


@dataclass(frozen=True)
class DemoResult:
    table: str
    rows_by_day: dict[str, int]
    snapshots: int


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(settings: Settings, console: Console, rows: int = 20_000, days: int = 3) -> DemoResult:
    settings.home.mkdir(parents=True, exist_ok=True)
    if not _port_free(settings.catalog.host, settings.catalog.port):
        console.print(f"[yellow]port {settings.catalog.port} is busy; serving the catalog on a free port[/]")
        settings = settings.model_copy(update={"catalog": settings.catalog.model_copy(update={"port": 0})})
    table = "lake.demo.events"
    with CatalogServer(settings) as server:
        console.print(f"[green]✓[/] catalog serving at {server.uri} (database {settings.database_url})")
        with console.status(f"spark-submit jobs/events_job.py: writing {rows} events into {table}"):
            result = spark_submit(
                JOBS / "events_job.py",
                ["--table", table, "--rows", str(rows), "--days", str(days)],
                conf={"spark.sql.catalog.lake.uri": server.uri, "spark.ui.enabled": "false"},
                log_path=settings.home / "logs" / "events_job.log",
            )
        console.print(f"[green]✓[/] job finished in {result.seconds:.1f}s (log {result.log_path})")

        from pyiceberg.catalog.rest import RestCatalog

        iceberg = RestCatalog("lake", uri=server.uri).load_table("demo.events")
        arrow = iceberg.scan().to_arrow()
        counts: dict[str, int] = {}
        for day in arrow.column("day").to_pylist():
            counts[str(day)] = counts.get(str(day), 0) + 1
        out = Table(title=f"{table} (read back with pyiceberg)")
        out.add_column("day (partition)")
        out.add_column("rows", justify="right")
        for day in sorted(counts):
            out.add_row(day, f"{counts[day]:,}")
        console.print(out)
        snapshot = iceberg.current_snapshot()
        console.print(
            f"snapshot {snapshot.snapshot_id if snapshot else None}, {len(iceberg.metadata.snapshots)} snapshots, "
            f"partition spec {iceberg.spec()}, location {iceberg.location()}"
        )
        return DemoResult(table, counts, len(iceberg.metadata.snapshots))
