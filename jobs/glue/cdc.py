"""Change-data capture into Iceberg: AWS DMS-style change files applied to a table with ``MERGE INTO``.

The input is what DMS writes to an S3 target (with ``AddColumnName=true`` so CSV files carry a header, and a
``TimestampColumnName``): **full-load files** (``LOAD00000001.csv``..., no ``Op`` column, or ``Op=I`` with
``includeOpForFullLoad``) followed by **CDC files** (one per flush, named by time) whose rows carry ``Op``
(``I`` insert, ``U`` update, ``D`` delete; case-insensitive), the change timestamp and the full row image.
CSV (with header), Parquet and JSON lines are read; a file in which no record has an ``Op`` is a full-load file.

One batch of files (:func:`apply_changes`) is applied as follows.

1. **Read and validate.** Every record gets its file and its position in the file. A record is an *error
   record* when its ``Op`` is not I/U/D (or missing in a CDC file), a key is null, the change timestamp of a
   CDC record is missing or unparsable, or a value does not fit its column's type. Error records are not
   applied; they go to ``<table>_cdc_errors`` (file, record number, op, reason, the record as JSON), keyed by
   file and record number so a replay does not add them twice, or, with ``on_error="fail"``, the batch fails
   before anything is written. Nothing is dropped silently: every record read is counted in exactly one of
   :class:`CdcResult`'s buckets.
2. **Resolve.** Several changes to one key in the batch collapse to the last one: latest change timestamp,
   ties by file order (full-load files first, then by path, which for DMS is time order) and position in the
   file. Full-load records without a timestamp are older than any change.
3. **Schema.** Columns the files have and the table lacks are added first (``ALTER TABLE ADD COLUMNS``; types
   inferred from the values for CSV: bigint, double, boolean, timestamp, else string). The table is created
   on the first batch (columns in file order, ``partition_by`` if given).
4. **Apply, late and duplicate changes ignored.** The table keeps the timestamp of the change each row
   reflects in ``_cdc_ts``. A change applies only when it is newer than the row's ``_cdc_ts``, so a change
   that arrives late (older than the row) or again (same timestamp: a duplicate) is ignored. Deletes leave a
   tombstone (key, timestamp) in ``<table>_cdc_tombstones``, so a late insert or update of a deleted key is
   ignored too, while a newer insert brings the key back. The tombstones are merged first, then the table,
   each with one ``MERGE INTO`` (delete, update, insert).

Applying a batch twice, or a batch and then its replay after a crash at any point, gives the same table: the
whole procedure is idempotent, which is what makes the streaming variant exactly-once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructField, StructType

from jobs.glue import storage
from jobs.glue.context import GlueContextError
from jobs.glue.storage import StoredFile

if TYPE_CHECKING:
    from jobs.glue.context import GlueContext

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "json")
OPS = ("I", "U", "D")
APPLIED_COLUMN = "_cdc_ts"
ERRORS_SUFFIX = "_cdc_errors"
TOMBSTONES_SUFFIX = "_cdc_tombstones"
#: The oldest possible change: full-load records without a timestamp, rows never changed by CDC.
MIN_TS = "TIMESTAMP '0001-01-01 00:00:00'"
_CORRUPT = "__cdc_corrupt"
_OP, _TS, _FILE, _ROW, _NUM, _FULL, _REASON, _RECORD, _ACTION = (
    "__cdc_op",
    "__cdc_ts",
    "__cdc_file",
    "__cdc_row",
    "__cdc_num",
    "__cdc_full_load",
    "__cdc_reason",
    "__cdc_record",
    "__cdc_action",
)
_INFER_ORDER = ("bigint", "double", "boolean", "timestamp")


class CdcError(GlueContextError):
    """Change files that cannot be applied as configured (with what to change), or error records under
    ``on_error="fail"``."""


@dataclass(frozen=True)
class CdcOptions:
    """How to read and apply the change files."""

    keys: tuple[str, ...]
    op_column: str = "Op"
    timestamp_column: str = "cdc_ts"
    format: str = "csv"
    separator: str = ","
    partition_by: tuple[str, ...] = ()
    on_error: str = "record"
    errors_table: str | None = None
    tombstones_table: str | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise CdcError("CDC needs the table's primary key column(s)")
        if self.format not in FORMATS:
            raise CdcError(f"Unsupported change file format {self.format!r}: one of {', '.join(FORMATS)}")
        if self.on_error not in ("record", "fail"):
            raise CdcError(f"on_error must be 'record' or 'fail', got {self.on_error!r}")


@dataclass
class CdcResult:
    """What one batch did. ``records`` = ``errors + superseded + inserted + updated + deleted + ignored``."""

    files: int = 0
    records: int = 0
    errors: int = 0
    superseded: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    ignored: int = 0
    added_columns: list[str] = field(default_factory=list)
    created: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- naming ------------------------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    return F.col(_quote(name))


def _ident(glue_context: GlueContext, database: str, table: str) -> str:
    return glue_context._iceberg_ident(database, table)


# -- files -------------------------------------------------------------------------------------------------
def is_full_load_name(uri: str) -> bool:
    return uri.rstrip("/").rsplit("/", 1)[-1].upper().startswith("LOAD")


def order_files(files: Iterable[StoredFile]) -> list[StoredFile]:
    """Full-load files (``LOAD*``) first, then the others, each by path (DMS names CDC files by time)."""
    return sorted(files, key=lambda f: (not is_full_load_name(f.uri), f.uri))


def list_change_files(
    glue_context: GlueContext, paths: Sequence[str], exclusions: Any = None, transformation_ctx: str = ""
) -> list[StoredFile]:
    """The change files under ``paths`` (recursively), in apply order. With a ``transformation_ctx`` and job
    bookmarks enabled, only the files the job has not processed yet (the bookmark advances at
    ``job.commit()``; a run that fails before it is redone, which the idempotent apply makes harmless)."""
    from jobs.glue import bookmarks

    mark = bookmarks.track_files(glue_context, transformation_ctx, {"paths": list(paths)})  # before listing
    present = [p for p in paths if glue_context.local_path(p).exists()]
    if not present:
        return []
    found = storage.list_files(present, glue_context.object_store_root, recurse=True, exclusions=exclusions)
    return order_files(mark.select(found))


def stored_file(glue_context: GlueContext, uri: str) -> StoredFile:
    """The :class:`StoredFile` of a URI Spark reported (``s3://...``, ``file:/...``)."""
    local = storage.local_path(uri, glue_context.object_store_root)
    stat = local.stat()
    return StoredFile(uri, local, stat.st_size, stat.st_mtime)


# -- reading -----------------------------------------------------------------------------------------------
def _csv_header(path: Path, separator: str) -> tuple[str, ...]:
    with path.open(newline="") as handle:
        line = handle.readline()
    import csv

    return tuple(next(csv.reader([line], delimiter=separator), []))


def _read_files(spark: SparkSession, files: Sequence[StoredFile], options: CdcOptions) -> DataFrame | None:
    """The records of ``files`` (columns as in the files) plus their file, position and, for a malformed
    record, its raw text (None: no records at all)."""
    frames: list[DataFrame] = []
    if options.format == "csv":
        groups: dict[tuple[str, ...], list[str]] = {}
        for stored in files:
            groups.setdefault(_csv_header(stored.local, options.separator), []).append(stored.uri)
        for header, uris in groups.items():
            if not header:
                log.warning("CDC: %d empty file(s) skipped: %s", len(uris), ", ".join(uris[:5]))
                continue
            schema = StructType([StructField(name, StringType()) for name in (*header, _CORRUPT)])
            frames.append(
                spark.read.schema(schema)
                .option("header", "true")
                .option("columnNameOfCorruptRecord", _CORRUPT)
                .option("multiLine", "true")  # a multi-line CSV file is never split: record order is file order
                .option("sep", options.separator)
                .option("enforceSchema", "false")
                .csv(uris)
            )
    elif options.format == "parquet":
        frames.append(spark.read.option("mergeSchema", "true").parquet(*[f.uri for f in files]))
    else:
        frames.append(spark.read.option("columnNameOfCorruptRecord", _CORRUPT).json([f.uri for f in files]))
    if not frames:
        return None
    path = F.regexp_replace(F.expr("url_decode(replace(_metadata.file_path, '+', '%2B'))"), "^file:/+", "/")
    with_position = [df.withColumn(_FILE, path).withColumn(_ROW, F.monotonically_increasing_id()) for df in frames]
    result = with_position[0]
    for other in with_position[1:]:
        result = result.unionByName(other, allowMissingColumns=True)
    if _CORRUPT not in result.columns:
        result = result.withColumn(_CORRUPT, F.lit(None).cast("string"))
    return result


def read_changes(glue_context: GlueContext, files: Sequence[StoredFile], options: CdcOptions) -> DataFrame | None:
    """The change records of ``files``, materialized, with ``__cdc_file`` (path), ``__cdc_num`` (1-based record
    number in the file), ``__cdc_full_load`` and the raw ``Op`` as ``__cdc_op``."""
    spark = glue_context.spark_session
    conf = spark.conf
    previous = conf.get("spark.sql.files.maxPartitionBytes")
    largest = max((f.size for f in files), default=0)
    # No file is split across partitions, so monotonically_increasing_id follows the order inside each file.
    conf.set("spark.sql.files.maxPartitionBytes", str(max(largest + 1, 128 * 1024 * 1024)))
    try:
        raw = _read_files(spark, files, options)
        if raw is None:
            return None
        op_name = _find(raw.columns, options.op_column)
        op = F.upper(F.trim(_col(op_name).cast("string"))) if op_name else F.lit(None).cast("string")
        raw = raw.withColumn(_OP, F.when(op != "", op))
        by_file = Window.partitionBy(_FILE)
        raw = raw.withColumn(_FULL, F.max(F.col(_OP).isNotNull().cast("int")).over(by_file) == 0)
        raw = raw.withColumn(_NUM, F.row_number().over(by_file.orderBy(_ROW)))
        if op_name:
            raw = raw.drop(op_name)
        return raw.localCheckpoint(eager=True)
    finally:
        if previous is None:
            conf.unset("spark.sql.files.maxPartitionBytes")
        else:
            conf.set("spark.sql.files.maxPartitionBytes", previous)


def _find(columns: Iterable[str], name: str) -> str | None:
    lowered = name.lower()
    return next((c for c in columns if c.lower() == lowered), None)


# -- types -------------------------------------------------------------------------------------------------
def _try_cast(name: str, type_name: str) -> Column:
    return F.expr(f"try_cast({_quote(name)} AS {type_name})")


def _infer_types(df: DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """For string columns: the first of bigint, double, boolean, timestamp every non-null value casts to,
    else string (one aggregation over the batch)."""
    if not columns:
        return {}
    checks = [
        F.sum(F.when(_col(c).isNotNull() & _try_cast(c, t).isNull(), 1).otherwise(0)).alias(f"{i}:{t}")
        for i, c in enumerate(columns)
        for t in _INFER_ORDER
    ]
    counts = df.agg(*checks).first()
    assert counts is not None
    types: dict[str, str] = {}
    for i, name in enumerate(columns):
        types[name] = next((t for t in _INFER_ORDER if not counts[f"{i}:{t}"]), "string")
    return types


def _type_name(data_type: DataType) -> str:
    return data_type.simpleString()


# -- apply -------------------------------------------------------------------------------------------------
def apply_changes(
    glue_context: GlueContext,
    database: str,
    table: str,
    files: Sequence[StoredFile],
    options: CdcOptions,
) -> CdcResult:
    """Apply one batch of change files to ``database.table`` (see the module doc)."""
    files = order_files(files)
    result = CdcResult(files=len(files))
    if not files:
        return result
    spark = glue_context.spark_session
    ident = _ident(glue_context, database, table)
    changes = read_changes(glue_context, files, options)
    if changes is None:
        return result
    internal = {_OP, _FILE, _ROW, _NUM, _FULL, _CORRUPT}
    source_columns = [c for c in changes.columns if c not in internal]
    ts_name = _find(source_columns, options.timestamp_column)
    keys = []
    for key in options.keys:
        found = _find(source_columns, key)
        if found is None:
            raise CdcError(f"The change files have no key column {key!r} (columns: {', '.join(source_columns)})")
        keys.append(found)
    data_columns = [c for c in source_columns if c != ts_name]

    # Target schema: the table's types, new columns inferred (strings) or as read (typed formats).
    exists = spark.catalog.tableExists(ident)
    table_types: dict[str, str] = {}
    table_names: dict[str, str] = {}
    if exists:
        for f in spark.table(ident).schema.fields:
            table_types[f.name.lower()] = _type_name(f.dataType)
            table_names[f.name.lower()] = f.name
    new_columns = [c for c in data_columns if c.lower() not in table_types]
    add_applied = exists and APPLIED_COLUMN not in table_types
    string_new = [c for c in new_columns if isinstance(changes.schema[c].dataType, StringType)]
    inferred = _infer_types(changes.where(F.col(_OP).isNull() | (F.col(_OP) != "D")), string_new)
    target_type = {
        c: table_types.get(c.lower()) or inferred.get(c) or _type_name(changes.schema[c].dataType) for c in data_columns
    }

    # Validate: the first reason a record cannot be applied.
    ts_value = _try_cast(ts_name, "timestamp") if ts_name else F.lit(None).cast("timestamp")
    reasons: list[Column] = [
        F.when(F.col(_CORRUPT).isNotNull(), F.lit("malformed record")),
        F.when(F.col(_OP).isNull() & ~F.col(_FULL), F.lit(f"missing {options.op_column} in a CDC file")),
        F.when(
            F.col(_OP).isNotNull() & ~F.col(_OP).isin(*OPS),
            F.concat(F.lit(f"unknown {options.op_column} '"), F.col(_OP), F.lit("' (expected I, U or D)")),
        ),
        *[F.when(_col(k).isNull(), F.lit(f"null key {k}")) for k in keys],
    ]
    if ts_name:
        reasons.append(
            F.when(_col(ts_name).isNull() & ~F.col(_FULL), F.lit(f"missing change timestamp {ts_name}")),
        )
        reasons.append(
            F.when(
                _col(ts_name).isNotNull() & ts_value.isNull(),
                F.concat(F.lit(f"unparsable change timestamp {ts_name} '"), _col(ts_name).cast("string"), F.lit("'")),
            )
        )
    for c in data_columns:
        wanted = target_type[c]
        if _type_name(changes.schema[c].dataType) != wanted:
            reasons.append(
                F.when(
                    _col(c).isNotNull() & _try_cast(c, wanted).isNull(),
                    F.concat(F.lit("value '"), _col(c).cast("string"), F.lit(f"' of {c} is not a {wanted}")),
                )
            )
    typed = changes.select(
        *[_try_cast(c, target_type[c]).alias(c) for c in data_columns],
        F.when(F.col(_FULL) & F.col(_OP).isNull(), F.lit("I")).otherwise(F.col(_OP)).alias(_OP),
        ts_value.alias(_TS),
        F.col(_FILE),
        F.col(_ROW),
        F.col(_NUM),
        F.col(_FULL),
        F.coalesce(*reasons).alias(_REASON),
        F.coalesce(
            F.col(_CORRUPT), F.to_json(F.struct(*[_col(c).cast("string").alias(c) for c in source_columns]))
        ).alias(_RECORD),
    )

    errors = typed.where(F.col(_REASON).isNotNull())
    good = typed.where(F.col(_REASON).isNull())
    counts = typed.agg(
        F.count(F.lit(1)).alias("n"), F.count(_REASON).alias("errors"), F.sum((~F.col(_FULL)).cast("int")).alias("cdc")
    ).first()
    assert counts is not None
    if ts_name is None and counts["cdc"]:
        raise CdcError(
            f"The CDC files have no change timestamp column {options.timestamp_column!r} (DMS "
            "TimestampColumnName): without it late and duplicate changes cannot be told apart"
        )
    result.records, result.errors = int(counts["n"]), int(counts["errors"])
    if result.errors and options.on_error == "fail":
        sample = [f"{r[_FILE]}#{r[_NUM]}: {r[_REASON]}" for r in errors.orderBy(_FILE, _NUM).limit(5).collect()]
        raise CdcError(f"{result.errors} change record(s) cannot be applied; nothing was written: {'; '.join(sample)}")

    # Resolve several changes to one key: the latest timestamp, then file order, then position in the file.
    order = [
        F.coalesce(F.col(_TS), F.expr(MIN_TS)).desc(),
        F.col(_FULL).asc(),
        F.col(_FILE).desc(),
        F.col(_NUM).desc(),
    ]
    ranked = good.withColumn("__cdc_rank", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
    resolved = ranked.where(F.col("__cdc_rank") == 1).drop("__cdc_rank")

    # Schema: create the table, or add the new columns.
    if not exists:
        _create_table(spark, glue_context, database, ident, data_columns, target_type, options.partition_by)
        result.created = True
    elif new_columns or add_applied:
        added = ", ".join(
            [*(f"{_quote(c)} {target_type[c]}" for c in new_columns), *([f"{APPLIED_COLUMN} timestamp"] * add_applied)]
        )
        spark.sql(f"ALTER TABLE {ident} ADD COLUMNS ({added})")
        log.info("%s: added column(s) %s", ident, ", ".join(new_columns))
        result.added_columns = list(new_columns)
    names = {c: table_names.get(c.lower(), c) for c in data_columns}
    tomb_ident = _ident(glue_context, database, options.tombstones_table or f"{table}{TOMBSTONES_SUFFIX}")
    key_types = {k: target_type[k] for k in keys}
    _ensure_tombstones(spark, tomb_ident, keys, names, key_types)

    # Plan each resolved key against the table and the tombstones (a snapshot of both, materialized).
    target = spark.table(ident).select(
        *[_col(names[k]).alias(f"__t_{i}") for i, k in enumerate(keys)],
        _col(APPLIED_COLUMN).alias("__t_ts"),
        F.lit(True).alias("__t_exists"),
    )
    tombs = spark.table(tomb_ident).select(
        *[_col(names[k]).alias(f"__d_{i}") for i, k in enumerate(keys)], _col(APPLIED_COLUMN).alias("__d_ts")
    )
    joined = resolved.join(
        target, [resolved[_quote(k)].eqNullSafe(target[f"__t_{i}"]) for i, k in enumerate(keys)], "left"
    ).join(tombs, [resolved[_quote(k)].eqNullSafe(tombs[f"__d_{i}"]) for i, k in enumerate(keys)], "left")
    src_ts = F.coalesce(F.col(_TS), F.expr(MIN_TS))
    newer_than_row = src_ts > F.coalesce(F.col("__t_ts"), F.expr(MIN_TS))
    newer_than_tomb = F.col("__d_ts").isNull() | (src_ts > F.col("__d_ts"))
    exists_col = F.col("__t_exists").isNotNull()
    action = (
        F.when((F.col(_OP) == "D") & exists_col & newer_than_row, "delete")
        .when((F.col(_OP) != "D") & exists_col & newer_than_row, "update")
        .when((F.col(_OP) != "D") & ~exists_col & newer_than_tomb, "insert")
        .otherwise("ignore")
    )
    plan = joined.select(*[_col(c) for c in data_columns], _OP, _TS, action.alias(_ACTION)).localCheckpoint(eager=True)
    tally: dict[str, int] = {}
    deletes = False
    for row in plan.groupBy(_ACTION, (F.col(_OP) == "D").alias("d")).agg(F.count(F.lit(1)).alias("n")).collect():
        tally[row[_ACTION]] = tally.get(row[_ACTION], 0) + int(row["n"])
        deletes = deletes or bool(row["d"])
    result.inserted, result.updated = tally.get("insert", 0), tally.get("update", 0)
    result.deleted, result.ignored = tally.get("delete", 0), tally.get("ignore", 0)
    result.superseded = result.records - result.errors - sum(tally.values())

    # Write: errors, tombstones, then the table (each step idempotent).
    if result.errors:
        _record_errors(spark, glue_context, database, table, options, errors)
    view = f"cdc_{uuid.uuid4().hex[:12]}"
    plan.where(F.col(_OP) == "D").createOrReplaceTempView(f"{view}_d")
    on = " AND ".join(f"t.{_quote(names[k])} = s.{_quote(k)}" for k in keys)
    newer = f"coalesce(s.{_TS}, {MIN_TS}) > coalesce(t.{APPLIED_COLUMN}, {MIN_TS})"
    try:
        if deletes:
            spark.sql(
                f"MERGE INTO {tomb_ident} t USING {view}_d s ON {on} "
                f"WHEN MATCHED AND {newer} THEN UPDATE SET t.{APPLIED_COLUMN} = s.{_TS} "
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(_quote(names[k]) for k in keys)}, {APPLIED_COLUMN}) "
                f"VALUES ({', '.join('s.' + _quote(k) for k in keys)}, s.{_TS})"
            )
        if result.inserted or result.updated or result.deleted:
            plan.where(F.col(_ACTION) != "ignore").createOrReplaceTempView(view)
            sets = ", ".join(f"t.{_quote(names[c])} = s.{_quote(c)}" for c in data_columns if c not in keys)
            sets = f"{sets}, t.{APPLIED_COLUMN} = s.{_TS}" if sets else f"t.{APPLIED_COLUMN} = s.{_TS}"
            columns = ", ".join([*(_quote(names[c]) for c in data_columns), APPLIED_COLUMN])
            values = ", ".join([*(f"s.{_quote(c)}" for c in data_columns), f"s.{_TS}"])
            spark.sql(
                f"MERGE INTO {ident} t USING {view} s ON {on} "
                f"WHEN MATCHED AND s.{_ACTION} = 'delete' AND {newer} THEN DELETE "
                f"WHEN MATCHED AND s.{_ACTION} = 'update' AND {newer} THEN UPDATE SET {sets} "
                f"WHEN NOT MATCHED AND s.{_ACTION} = 'insert' THEN INSERT ({columns}) VALUES ({values})"
            )
    finally:
        spark.catalog.dropTempView(view)
        spark.catalog.dropTempView(f"{view}_d")
    log.info(
        "%s: %d file(s), %d record(s): %d inserted, %d updated, %d deleted, %d ignored (late or duplicate), "
        "%d superseded in the batch, %d error record(s)",
        ident,
        result.files,
        result.records,
        result.inserted,
        result.updated,
        result.deleted,
        result.ignored,
        result.superseded,
        result.errors,
    )
    return result


def _create_table(
    spark: SparkSession,
    glue_context: GlueContext,
    database: str,
    ident: str,
    columns: Sequence[str],
    types: Mapping[str, str],
    partition_by: Sequence[str],
) -> None:
    levels = ".".join(_quote(level) for level in database.split("."))
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {_quote(glue_context.catalog_name)}.{levels}")
    missing = [p for p in partition_by if _find(columns, p) is None]
    if missing:
        raise CdcError(f"partition_by names column(s) the change files do not have: {', '.join(missing)}")
    spec = f" PARTITIONED BY ({', '.join(_quote(p) for p in partition_by)})" if partition_by else ""
    body = ", ".join([*(f"{_quote(c)} {types[c]}" for c in columns), f"{APPLIED_COLUMN} timestamp"])
    spark.sql(f"CREATE TABLE IF NOT EXISTS {ident} ({body}) USING iceberg{spec}")
    log.info("created %s (%s)", ident, body)


def _ensure_tombstones(
    spark: SparkSession, ident: str, keys: Sequence[str], names: Mapping[str, str], types: Mapping[str, str]
) -> None:
    if spark.catalog.tableExists(ident):
        return
    body = ", ".join([*(f"{_quote(names[k])} {types[k]}" for k in keys), f"{APPLIED_COLUMN} timestamp"])
    spark.sql(f"CREATE TABLE IF NOT EXISTS {ident} ({body}) USING iceberg")


def _record_errors(
    spark: SparkSession,
    glue_context: GlueContext,
    database: str,
    table: str,
    options: CdcOptions,
    errors: DataFrame,
) -> None:
    ident = _ident(glue_context, database, options.errors_table or f"{table}{ERRORS_SUFFIX}")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {ident} (source_file string, record_number bigint, op string, reason string, "
        "record string, recorded_at timestamp) USING iceberg"
    )
    view = f"cdc_err_{uuid.uuid4().hex[:12]}"
    errors.select(
        F.col(_FILE).alias("source_file"),
        F.col(_NUM).cast("bigint").alias("record_number"),
        F.col(_OP).alias("op"),
        F.col(_REASON).alias("reason"),
        F.col(_RECORD).alias("record"),
        F.current_timestamp().alias("recorded_at"),
    ).createOrReplaceTempView(view)
    try:
        spark.sql(
            f"MERGE INTO {ident} t USING {view} s "
            "ON t.source_file = s.source_file AND t.record_number = s.record_number "
            "WHEN NOT MATCHED THEN INSERT *"
        )
    finally:
        spark.catalog.dropTempView(view)
    log.warning("%s: error record(s) kept in %s", _ident(glue_context, database, table), ident)


# -- streaming: change files as they arrive -----------------------------------------------------------------
ARRIVAL_SCHEMA = "path string, modificationTime timestamp, length bigint, content binary"


def file_arrivals(
    glue_context: GlueContext, paths: Sequence[str], *, max_files_per_trigger: int | None = None
) -> DataFrame:
    """A stream of the change files landing under ``paths`` (one row per file: its ``path``), for
    ``forEachBatch`` with :func:`apply_arrived`. The files are read by :func:`apply_changes`, so each batch
    sees each file's own columns (schema additions included)."""
    from jobs.glue import streaming

    spark = glue_context.spark_session
    frames = []
    for path in paths:
        streaming._ensure_prefix(glue_context, path)
        reader = spark.readStream.format("binaryFile").schema(ARRIVAL_SCHEMA).option("recursiveFileLookup", "true")
        if max_files_per_trigger:
            reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
        frames.append(reader.load(path).select("path"))
    result = frames[0]
    for other in frames[1:]:
        result = result.unionByName(other)
    return result


def apply_arrived(
    glue_context: GlueContext, database: str, table: str, batch: DataFrame, options: CdcOptions
) -> CdcResult:
    """Apply the change files of one micro-batch of :func:`file_arrivals`."""
    uris = sorted({str(r["path"]) for r in batch.select("path").collect()})
    return apply_changes(glue_context, database, table, [stored_file(glue_context, u) for u in uris], options)
