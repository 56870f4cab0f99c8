"""The lake's main pipeline, run by ``lakeforge demo`` on embedded defaults.

1. Raw access logs (JSON lines, ``dt=/hour=`` partitions, a few malformed lines) land in the object store.
2. The crawler registers them as the raw dataset ``raw.access_logs``.
3. An EMR-like cluster starts on Ray: 1 master, 1 core, and Spot task nodes.
4. The Glue-style job ``jobs/access_logs_job.py`` runs as a step: it reads the raw dataset through the catalog
   with a job bookmark, types and cleans the records (bad ones become error records) and appends them to the
   partitioned Iceberg table ``refined.access_logs``.
5. A second day of logs lands and is crawled; the same step runs again and, thanks to the bookmark, reads only
   the new files.
6. The result is queried (pyiceberg + pyarrow, no Spark needed), the cost report printed, the cluster terminated.

Every figure printed is checked: the rows each run added must equal the good records that landed for it.
The lake stays in ``LAKEFORGE_HOME`` for the notebooks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from catalog.errors import NoSuchDatasetError, NoSuchNamespaceError
from catalog.settings import PROJECT_ROOT, Settings
from cluster.api import Cluster
from cluster.config import ClusterConfig, parse_config
from cluster.cost import CostReport
from cluster.errors import ClusterError
from cluster.lake import Lake
from cluster.states import StepState

log = logging.getLogger(__name__)

JOBS = PROJECT_ROOT / "jobs"
RAW_URI = "s3://lakeforge-demo/raw/access_logs"
ERRORS_URI = "s3://lakeforge-demo/errors/access_logs"
RAW_DATABASE, RAW_TABLE = "raw", "access_logs"
TARGET_DATABASE, TARGET_TABLE = "refined", "access_logs"
JOB_NAME = "refine-access-logs"


class PipelineError(ClusterError):
    """A pipeline stage failed or produced a wrong result (the message says which and where to look)."""


@dataclass(frozen=True)
class PipelineOptions:
    """Knobs of the main pipeline (the defaults finish in a few minutes on a 2-core machine)."""

    records: int = 200_000
    more_records: int = 50_000
    hours_per_day: int = 6
    task_nodes: int = 2
    bad_fraction: float = 0.002
    backend: str | None = None
    address: str | None = None
    start_date: dt.date = dt.date(2026, 11, 1)


@dataclass(frozen=True)
class RunSummary:
    """One run of the bookmarked job."""

    step_id: str
    landed_good: int
    added_rows: int
    seconds: float
    snapshot_id: int


@dataclass
class PipelineResult:
    table: str
    cluster_id: str
    runs: list[RunSummary] = field(default_factory=list)
    rows_by_day: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    cost: CostReport | None = None


def demo_cluster_config(options: PipelineOptions) -> ClusterConfig:
    """1 master + 1 core (on-demand) + ``task_nodes`` Spot task nodes of m5.xlarge."""
    data: dict[str, object] = {
        "name": "lakeforge-demo",
        "hdfs": True,
        "instance_groups": {
            "master": {"instance_type": "m5.xlarge", "count": 1},
            "core": {"instance_type": "m5.xlarge", "count": 1},
            "task": [{"name": "spot-task", "instance_type": "m5.xlarge", "count": options.task_nodes, "market": "SPOT"}]
            if options.task_nodes
            else [],
        },
        "auto_termination": {"idle_timeout_seconds": 3600},
    }
    if options.backend:
        data["backend"] = options.backend
    if options.address:
        data["address"] = options.address
    return parse_config(data)


class Pipeline:
    """The main pipeline, stage by stage (see the module docstring)."""

    def __init__(self, settings: Settings, console: Console, options: PipelineOptions | None = None) -> None:
        self.settings = settings
        self.console = console
        self.options = options or PipelineOptions()

    @contextmanager
    def _stage(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        with self.console.status(title + " ..."):
            yield
        self.console.print(f"[green]✓[/] {title} [dim]({time.monotonic() - started:.1f}s)[/]")

    def run(self) -> PipelineResult:
        opts = self.options
        with Lake(self.settings) as lake:
            self.console.print(f"[green]✓[/] catalog at {lake.uri} (database {self.settings.database_url})")
            first_day = self._first_new_day(lake)
            landed = [self._land(lake, opts.records, first_day, seed=first_day.toordinal())]
            self._crawl(lake)
            config = demo_cluster_config(opts)
            with self._stage(f"cluster {config.name}: 1 master, 1 core, {opts.task_nodes} Spot task node(s) on Ray"):
                cluster = Cluster.create(config, settings=self.settings, timeout=900)
            self.console.print(f"  cluster {cluster.id} is {cluster.state.value} ({cluster.dir})")
            result = PipelineResult(f"lake.{TARGET_DATABASE}.{TARGET_TABLE}", cluster.id)
            try:
                result.runs.append(self._run_job(lake, cluster, landed[-1], "first run"))
                next_day = first_day + dt.timedelta(days=1)
                landed.append(self._land(lake, opts.more_records, next_day, seed=next_day.toordinal()))
                self._crawl(lake)
                result.runs.append(self._run_job(lake, cluster, landed[-1], "second run (bookmarked: new files only)"))
                self._query(lake, result)
            finally:
                with self._stage(f"terminating cluster {cluster.id}"):
                    cluster.terminate()
            result.cost = cluster.cost_report()
            self._show_cost(result.cost, cluster)
        return result

    def _first_new_day(self, lake: Lake) -> dt.date:
        """``start_date``, or the day after the last one already landed by an earlier run in this lake (so a rerun
        adds new days, which the bookmarked job then reads alone, rather than rewriting days already processed)."""
        try:
            partitions = lake.client.list_partitions(RAW_DATABASE, RAW_TABLE)
        except (NoSuchDatasetError, NoSuchNamespaceError):
            return self.options.start_date
        days = [dt.date.fromisoformat(p.values[0]) for p in partitions if p.values and p.values[0]]
        if not days:
            return self.options.start_date
        following = max(days) + dt.timedelta(days=1)
        self.console.print(f"  the lake already holds raw logs up to {max(days)}: landing from {following}")
        return max(following, self.options.start_date)

    def _land(self, lake: Lake, records: int, day: dt.date, seed: int) -> int:
        from jobs.datagen import generate_access_logs

        with self._stage(f"landing {records:,} raw access-log lines for {day} under {RAW_URI}"):
            summary = generate_access_logs(
                RAW_URI, records, days=1, hours_per_day=self.options.hours_per_day, seed=seed,
                bad_fraction=self.options.bad_fraction, start_date=day,
                object_store_root=lake.settings.object_store_root,
            )  # fmt: skip
        refined = summary.good - summary.latency_uncastable
        self.console.print(
            f"  {summary.good:,} well-formed lines ({summary.latency_uncastable:,} of them with a latency that does "
            f"not cast), {summary.bad:,} malformed, {len(summary.partitions)} files"
        )
        return refined

    def _crawl(self, lake: Lake) -> None:
        from jobs.crawler import crawl

        with self._stage(f"crawling {RAW_URI} into {RAW_DATABASE}.{RAW_TABLE}"):
            crawl(
                RAW_URI, RAW_DATABASE, table=RAW_TABLE, client=lake.client,
                object_store_root=lake.settings.object_store_root,
            )  # fmt: skip
        partitions = lake.client.list_partitions(RAW_DATABASE, RAW_TABLE)
        self.console.print(f"  {RAW_DATABASE}.{RAW_TABLE}: {len(partitions)} partitions registered")

    def _run_job(self, lake: Lake, cluster: Cluster, landed_good: int, label: str) -> RunSummary:
        """Run the job as a step; ``landed_good`` is the records landed since the last run that must reach the
        table (well-formed lines whose fields all cast; the others become error records)."""
        args = [
            "--JOB_NAME", JOB_NAME,
            "--source_database", RAW_DATABASE,
            "--source_table", RAW_TABLE,
            "--target_database", TARGET_DATABASE,
            "--target_table", TARGET_TABLE,
            "--errors_path", ERRORS_URI,
            "--job-bookmark-option", "job-bookmark-enable",
        ]  # fmt: skip
        with self._stage(f"step {label}: spark-submit jobs/access_logs_job.py on the cluster"):
            step_id = cluster.add_step(
                f"access-logs ({label.split(' (')[0]})",
                str(JOBS / "access_logs_job.py"),
                args,
                spark_conf={"spark.sql.catalog.lake.uri": lake.uri},
            )
            step = cluster.wait_for_step(step_id, timeout=3600)
        if step.state != StepState.COMPLETED:
            raise PipelineError(
                f"step {step_id} {step.state.value}: {step.failure_reason or ''}; logs in {step.log_dir}"
            )
        table = lake.catalog.load_table(f"{TARGET_DATABASE}.{TARGET_TABLE}")
        snapshot = table.current_snapshot()
        if snapshot is None or snapshot.summary is None:
            raise PipelineError(f"step {step_id} completed but {TARGET_DATABASE}.{TARGET_TABLE} has no snapshot")
        added = int(snapshot.summary.get("added-records", "0"))
        seconds = (step.ended_at or 0.0) - (step.started_at or 0.0)
        self.console.print(
            f"  step {step_id}: {seconds:.1f}s, added {added:,} rows "
            f"(snapshot {snapshot.snapshot_id}); {landed_good:,} valid records had landed since the last run"
        )
        if added != landed_good:
            raise PipelineError(
                f"step {step_id} added {added} rows but {landed_good} valid records were new; logs in {step.log_dir}"
            )
        return RunSummary(step_id, landed_good, added, seconds, snapshot.snapshot_id)

    def _query(self, lake: Lake, result: PipelineResult) -> None:
        with self._stage(f"querying {result.table} with pyiceberg + pyarrow"):
            arrow = lake.catalog.load_table(f"{TARGET_DATABASE}.{TARGET_TABLE}").scan().to_arrow()
            grouped = (
                arrow.group_by(["dt", "status"])
                .aggregate([("status", "count"), ("latency_ms", "mean"), ("bytes", "sum")])
                .sort_by([("dt", "ascending"), ("status", "ascending")])
            )
        out = Table(title=f"{result.table}: requests by day and status ({arrow.num_rows:,} rows)")
        for column in ("dt", "status", "requests", "mean latency ms", "bytes"):
            out.add_column(column, justify="left" if column == "dt" else "right")
        for row in grouped.to_pylist():
            out.add_row(
                str(row["dt"]),
                str(row["status"]),
                f"{row['status_count']:,}",
                f"{row['latency_ms_mean']:.1f}" if row["latency_ms_mean"] is not None else "-",
                f"{row['bytes_sum']:,}",
            )
        self.console.print(out)
        days = pc.value_counts(arrow.column("dt").cast(pa.string())).to_pylist()
        result.rows_by_day = {str(d["values"]): int(d["counts"]) for d in days}

    def _show_cost(self, report: CostReport, cluster: Cluster) -> None:
        out = Table(title=f"cost of cluster {cluster.id} (per-second billing, 60-s minimum, EC2 + EMR)")
        for column in ("scope", "id", "detail", "seconds", "total $"):
            out.add_column(column, justify="right" if column in ("seconds", "total $") else "left")
        for row in report.rows():
            seconds = row["seconds"]
            out.add_row(
                str(row["scope"]),
                str(row["id"]),
                str(row["detail"]),
                "" if seconds is None else f"{float(str(seconds)):.1f}",
                f"{float(str(row['total_usd'])):.4f}",
            )
        self.console.print(out)


def run_demo(settings: Settings, console: Console, options: PipelineOptions | None = None) -> PipelineResult:
    """Run the main pipeline (see the module docstring)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return Pipeline(settings, console, options).run()
