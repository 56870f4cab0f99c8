"""The catalog database: engine set-up and schema. Only the catalog package touches it.

The two Iceberg tables (``iceberg_tables``, ``iceberg_namespace_properties``) use the layout that
pyiceberg's SqlCatalog and Iceberg's JdbcCatalog share, so either can open a lakeforge database
directly; views live in ``iceberg_tables`` with ``iceberg_type = 'VIEW'`` as JdbcCatalog does.
The ``lakeforge_*`` tables hold what a Glue Data Catalog has beyond Iceberg.
"""

from __future__ import annotations

import logging
from typing import Any

from pyiceberg.catalog.sql import IcebergNamespaceProperties, IcebergTables
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

iceberg_tables: Table = IcebergTables.__table__  # type: ignore[assignment]
namespace_properties: Table = IcebergNamespaceProperties.__table__  # type: ignore[assignment]

metadata = MetaData()

audit_log = Table(
    "lakeforge_audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False, index=True),
    Column("catalog_name", String(255), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("namespace", String(255), nullable=True),
    Column("name", String(255), nullable=True),
    Column("principal", String(255), nullable=False),
    Column("metadata_location", String(1000), nullable=True),
    Column("snapshot_id", BigInteger, nullable=True),
    Column("detail", JSON, nullable=True),
)
Index("ix_audit_object", audit_log.c.catalog_name, audit_log.c.namespace, audit_log.c.name)

raw_datasets = Table(
    "lakeforge_raw_datasets",
    metadata,
    Column("catalog_name", String(255), primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("definition", JSON, nullable=False),
)

raw_dataset_versions = Table(
    "lakeforge_raw_dataset_versions",
    metadata,
    Column("catalog_name", String(255), primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("principal", String(255), nullable=True),
    Column("definition", JSON, nullable=False),
)

raw_partitions = Table(
    "lakeforge_raw_partitions",
    metadata,
    Column("catalog_name", String(255), primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    # The partition values as a canonical JSON list, in partition-key order.
    Column("values_key", String(2000), primary_key=True),
    Column("values", JSON, nullable=False),
    Column("location", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("parameters", JSON, nullable=True),
)


# -- job bookmarks (catalog/bookmarks.py) ---------------------------------------------------------------
#: One row per job: the current bookmark state (per ``transformation_ctx``) and its version.
bookmarks = Table(
    "lakeforge_bookmarks",
    metadata,
    Column("catalog_name", String(255), primary_key=True),
    Column("job_name", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    # Successful (state-advancing) runs so far: Glue's ``Run``.
    Column("run_number", Integer, nullable=False),
    Column("last_run_id", String(255), nullable=True),
    Column("previous_run_id", String(255), nullable=True),
    Column("state", JSON, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

#: Every version a bookmark had (commit, reset, rewind, recovery): what rewinds and ranges read.
bookmark_versions = Table(
    "lakeforge_bookmark_versions",
    metadata,
    Column("catalog_name", String(255), primary_key=True),
    Column("job_name", String(255), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("action", String(32), nullable=False),
    Column("run_id", String(255), nullable=True),
    Column("principal", String(255), nullable=True),
    Column("state", JSON, nullable=False),
)

#: Every run of a bookmarked job: started, committed or failed.
bookmark_runs = Table(
    "lakeforge_bookmark_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("catalog_name", String(255), nullable=False),
    Column("job_name", String(255), nullable=False),
    Column("run_id", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("option", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=True),
    # The bookmark version the run started from, and the one its commit made (enable runs only).
    Column("base_version", Integer, nullable=False),
    Column("committed_version", Integer, nullable=True),
    Column("from_run_id", String(255), nullable=True),
    Column("to_run_id", String(255), nullable=True),
    # State recorded before the run's first Iceberg write, and the tables it writes (exactly-once recovery).
    Column("pending_state", JSON(none_as_null=True), nullable=True),
    Column("sinks", JSON(none_as_null=True), nullable=True),
    Column("resolved_by", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("principal", String(255), nullable=True),
    UniqueConstraint("catalog_name", "job_name", "run_id", name="uq_bookmark_run"),
)
Index("ix_bookmark_runs_job", bookmark_runs.c.catalog_name, bookmark_runs.c.job_name, bookmark_runs.c.base_version)


def _sqlite_pragmas(fsync: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        cursor.close()

    return on_connect


def make_engine(url: str, *, fsync: bool = True) -> Engine:
    """Create the engine: SQLite in WAL mode with a busy timeout, or any SQLAlchemy URL (PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=20, max_overflow=20
        )
        event.listen(engine, "connect", _sqlite_pragmas(fsync))
    else:
        engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
    return engine


def create_schema(engine: Engine) -> None:
    """Create every table that is missing (idempotent)."""
    iceberg_tables.create(engine, checkfirst=True)
    namespace_properties.create(engine, checkfirst=True)
    metadata.create_all(engine, checkfirst=True)
