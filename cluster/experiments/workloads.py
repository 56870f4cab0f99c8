"""The jobs an experiment can run, each with its input preparation and its output check.

A workload turns "``records`` records of this job" into a step (script and arguments), makes the input once per
size (cached for every point that needs it), and after the run checks the output table against what the input
says it must hold, so that a fast but wrong run is never reported as a result.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from catalog.settings import PROJECT_ROOT
from cluster.errors import ConfigError

log = logging.getLogger(__name__)

JOBS_DIR = PROJECT_ROOT / "jobs"


@dataclass(frozen=True)
class Prepared:
    """A workload's input at one size: how to run on it and what the output must hold."""

    script: Path
    args: tuple[str, ...]
    output_table: str
    expected_rows: int
    spark_conf: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    output_rows: int
    expected_rows: int

    @property
    def correct(self) -> bool:
        return self.output_rows == self.expected_rows


@dataclass(frozen=True)
class WorkloadContext:
    """Where a workload's data lives.

    Attributes:
        experiment: Experiment name (prefixes tables and object-store paths).
        catalog: The lake's pyiceberg catalog.
        object_store_root: Local root of ``s3://`` buckets.
        output_namespace: Namespace of per-run output tables.
        options: The workload's ``options`` from the experiment file.
    """

    experiment: str
    catalog: Catalog
    object_store_root: Path
    output_namespace: str = "experiment_outputs"
    options: Mapping[str, str] = field(default_factory=dict)


class Workload(Protocol):
    """A job an experiment can run."""

    description: str

    def prepare(self, ctx: WorkloadContext, name: str, records: int, run_key: str) -> Prepared: ...


def _table_rows(catalog: Catalog, identifier: str) -> int:
    """Rows in an Iceberg table's current snapshot (0 when the table or snapshot is missing)."""
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return 0
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get("total-records", "0"))


def check_output(ctx: WorkloadContext, prepared: Prepared) -> Check:
    """Compare the output table's row count with what the input must produce."""
    return Check(_table_rows(ctx.catalog, prepared.output_table), prepared.expected_rows)


def drop_output(ctx: WorkloadContext, prepared: Prepared) -> None:
    """Drop a run's output table and its files (experiments produce many)."""
    try:
        ctx.catalog.purge_table(prepared.output_table)
    except NoSuchTableError:
        pass


class EventsWorkload:
    """``jobs/events_job.py``: generates its own events, writes a day-partitioned table (CPU and write bound)."""

    description = "synthetic events generated in Spark, written to a day-partitioned Iceberg table"

    def prepare(self, ctx: WorkloadContext, name: str, records: int, run_key: str) -> Prepared:
        days = ctx.options.get("days", "3")
        table = f"{ctx.output_namespace}.{ctx.experiment}_{name}_{run_key}".replace("-", "_")
        return Prepared(
            JOBS_DIR / "events_job.py",
            ("--table", f"lake.{table}", "--rows", str(records), "--days", days),
            table,
            records,
        )


class AccessLogsWorkload:
    """``jobs/access_logs_job.py`` over generated raw JSON access logs (read, type, filter, partitioned write)."""

    description = "raw JSON access logs (dt=/hour= partitions, some malformed) refined into partitioned Iceberg"

    def __init__(self) -> None:
        self._inputs: dict[tuple[str, int, str], tuple[str, int]] = {}

    def _input(self, ctx: WorkloadContext, name: str, records: int) -> tuple[str, int]:
        from jobs.datagen import generate_access_logs

        days = int(ctx.options.get("days", "1"))
        hours = int(ctx.options.get("hours_per_day", "4"))
        bad = float(ctx.options.get("bad_fraction", "0.001"))
        key = (name, records, f"{days}/{hours}/{bad}")
        if key not in self._inputs:
            uri = f"s3://lakeforge-experiments/{ctx.experiment}/{name}-{records}-{days}d{hours}h/raw"
            summary = generate_access_logs(
                uri, records, days=days, hours_per_day=hours, seed=0, bad_fraction=bad,
                object_store_root=ctx.object_store_root,
            )  # fmt: skip
            log.info("generated %s access-log records (%s good) at %s", summary.records, summary.good, uri)
            # well-formed lines whose fields all cast reach the table; the rest become error records
            self._inputs[key] = (uri, summary.good - summary.latency_uncastable)
        return self._inputs[key]

    def prepare(self, ctx: WorkloadContext, name: str, records: int, run_key: str) -> Prepared:
        source, good = self._input(ctx, name, records)
        table = f"{ctx.experiment}_{name}_{run_key}".replace("-", "_")
        errors = f"s3://lakeforge-experiments/{ctx.experiment}/errors/{name}-{run_key}"
        return Prepared(
            JOBS_DIR / "access_logs_job.py",
            (
                "--JOB_NAME",
                f"{ctx.experiment}-{name}-{run_key}",
                "--source_path",
                source,
                "--target_database",
                ctx.output_namespace,
                "--target_table",
                table,
                "--errors_path",
                errors,
                "--job-bookmark-option",
                "job-bookmark-disable",
            ),  # fmt: skip
            f"{ctx.output_namespace}.{table}",
            good,
        )


WORKLOADS: dict[str, Workload] = {"events": EventsWorkload(), "access_logs": AccessLogsWorkload()}


def workload(kind: str) -> Workload:
    """The workload registered as ``kind``.

    Raises:
        ConfigError: Unknown kind (the known ones are listed).
    """
    try:
        return WORKLOADS[kind]
    except KeyError:
        known = ", ".join(sorted(WORKLOADS))
        raise ConfigError("workloads[].job", f"unknown workload {kind!r}; known: {known}") from None
