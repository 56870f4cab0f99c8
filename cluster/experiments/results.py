"""Experiment results as an Iceberg table in the lake.

One row per finished run, appended (one Iceberg commit per run) as soon as the run ends, so that notebooks and
Spark SQL see results while an experiment is still going, and so that the table itself is the record of what is
done: a rerun of the experiment skips the points whose row is already there. An append is atomic, so a run
interrupted at any moment is either fully recorded or run again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

log = logging.getLogger(__name__)

#: The step completed and its output passed the check.
STATUS_OK = "ok"
#: The step failed, or its output did not match its input (``error`` says which).
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class RunResult:
    """Everything recorded about one run of one point."""

    experiment: str
    point_id: str
    repetition: int
    workload: str
    job: str
    records: int
    shape: str
    core_nodes: int
    task_nodes: int
    core_instance_type: str
    task_instance_type: str
    task_market: str
    spot_rate_per_hour: float
    scaling: str
    status: str
    error: str
    cluster_id: str
    step_id: str
    started_at: float
    wall_seconds: float
    jobs: int
    stages: int
    tasks: int
    failed_tasks: int
    recomputed_tasks: int
    lost_executors: int
    interrupted_nodes: int
    node_seconds_on_demand: float
    node_seconds_spot: float
    wasted_node_seconds: float
    cost_usd: float
    output_rows: int
    expected_rows: int
    correct: bool
    event_log: str

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


_ARROW_TYPES: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
_PY_TYPES = {"str": str, "int": int, "float": float, "bool": bool}

#: The results table's schema, derived from :class:`RunResult` so the two cannot drift apart.
SCHEMA = pa.schema([pa.field(f.name, _ARROW_TYPES[_PY_TYPES[str(f.type)]], nullable=False) for f in fields(RunResult)])


class ResultsTable:
    """The Iceberg table holding experiment results.

    Args:
        catalog: A pyiceberg catalog (the lake's REST catalog).
        identifier: ``namespace.table``.
    """

    def __init__(self, catalog: Catalog, identifier: str) -> None:
        self.catalog = catalog
        self.identifier = identifier
        self._table: Table | None = None

    def table(self) -> Table:
        """The table, created (with its namespace) when missing."""
        if self._table is None:
            namespace = self.identifier.rsplit(".", 1)[0]
            self.catalog.create_namespace_if_not_exists(namespace)
            try:
                self._table = self.catalog.load_table(self.identifier)
            except NoSuchTableError:
                log.info("creating results table %s", self.identifier)
                self._table = self.catalog.create_table_if_not_exists(self.identifier, schema=SCHEMA)
        return self._table

    def append(self, results: Sequence[RunResult]) -> None:
        """Record runs in one commit."""
        if not results:
            return
        batch = pa.Table.from_pylist([r.to_row() for r in results], schema=SCHEMA)
        table = self.table()
        table.append(batch)
        self._table = table.refresh()

    def rows(self, experiment: str) -> pa.Table:
        """Every recorded run of an experiment, oldest first."""
        table = self.table().refresh()
        rows = table.scan(row_filter=f"experiment == {_quote(experiment)}").to_arrow()
        return rows.sort_by("started_at") if rows.num_rows else rows

    def finished(self, experiment: str, *, include_failed: bool = True) -> set[str]:
        """Point ids with a recorded run (successful ones only when ``include_failed`` is false)."""
        rows = self.rows(experiment)
        ids = rows.column("point_id").to_pylist()
        statuses = rows.column("status").to_pylist()
        return {i for i, s in zip(ids, statuses, strict=True) if include_failed or s == STATUS_OK}


def _quote(value: str) -> str:
    """A string literal of pyiceberg's row-filter syntax."""
    return "'" + value.replace("'", "''") + "'"
