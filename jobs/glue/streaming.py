"""Glue streaming ETL on Spark Structured Streaming: streaming sources, ``forEachBatch``, and an exactly-once
Iceberg sink (served to scripts through ``GlueContext``).

Sources (``create_data_frame.from_options`` / ``from_catalog`` / ``getStreamingSource``):

* **A landing prefix** in the object store (``s3://`` or ``file``), as Kinesis Data Firehose delivers files:
  ``connection_type="s3"`` with ``connection_options={"paths": [...], "streaming": True, ...}`` (a stream-only
  option such as ``maxFilesPerTrigger`` also makes it a stream). Format from ``format=`` or ``classification``
  (``json``, ``csv``, ``parquet``, ``orc``); CSV options as Glue names them (``withHeader``, ``separator`` /
  ``delimiter``, ``quoteChar``, ``escaper``, ``multiLine``). The schema is ``connection_options["schema"]`` (a
  DDL string such as ``"id long, name string"``, a Spark ``StructType`` or its JSON), else inferred from the
  files already there (at most ``inferSchemaSampleFiles``, default 100). The prefix is read recursively (the
  Firehose ``YYYY/MM/DD/HH/`` layout) unless ``recurse`` is false. Spark's own file-source options pass
  through: ``maxFilesPerTrigger``, ``maxFileAge``, ``latestFirst``, ``fileNameOnly``, ``pathGlobFilter``,
  ``cleanSource``, ``sourceArchiveDir``, ``maxCachedFiles``, ``discardCachedInputRatio``. Files must land
  atomically (complete objects, as S3 PUTs are; locally: write a name starting with ``.`` or ``_``, then
  rename), since a file is read once, when first listed.
* ``from_catalog`` of a raw dataset (what the crawler registers) with ``additional_options={"streaming":
  True}`` or the dataset property ``streaming=true``: the same file stream over the dataset's location, with
  its catalog schema; partition columns are filled from each file's path. An Iceberg table with
  ``{"streaming": True}`` is read as an Iceberg stream of its appends (``stream-from-timestamp``,
  ``streaming-skip-delete-snapshots``, ``streaming-skip-overwrite-snapshots`` pass through).
* ``connection_type="rate"`` (``rowsPerSecond``, ``rampUpTime``, ``numPartitions``) and ``"rate-micro-batch"``
  (``rowsPerBatch``) generate load; ``"socket"`` (``host``, ``port``) reads text lines.
* ``kafka`` and ``kinesis`` raise :class:`StreamingSourceUnavailableError`: their Spark connectors are jars
  from Maven (``spark-sql-kafka-0-10``, a Kinesis connector), which no machine of this project can download.

``glueContext.forEachBatch(frame, batch_function, options)`` (:func:`for_each_batch`), as Glue's: the options
``windowSize`` (the trigger interval, e.g. ``"10 seconds"``) and ``checkpointLocation`` are required;
``persistDataFrame`` (default true) persists each micro-batch with ``storageLevel`` (default
``MEMORY_AND_DISK``) while ``batch_function(data_frame, batch_id)`` runs and unpersists it after; empty batches
are skipped (the function is not called); ``batchMaxRetries`` (default 3, 0-100) restarts a failed query from
its checkpoint after 1 s, 2 s, then 5 s, and re-raises when the retries are spent. The call blocks until the
query stops: SIGTERM or SIGINT to the driver stops it cleanly (the batch in flight is replayed by the next
run), as does ``spark.streams`` ``stop()`` from another thread. lakeforge extensions: ``availableNow``
(process what is there, in batches, then return), ``queryName``. Job bookmarks do not apply to streams (as in
Glue: the checkpoint is the bookmark), so a bookmark-enabled ``Job`` is not tracked while the stream runs.

**Exactly once into Iceberg.** Glue promises at least once: a batch that failed or was cut short is replayed
from the checkpoint. Here every Iceberg write a batch function makes through the GlueContext
(``write_dynamic_frame.from_catalog``, ``write_data_frame.from_catalog``, catalog sinks) records the stream's
query id (kept in the checkpoint, so stable across restarts; a new checkpoint is a new stream), the batch id
and the write's sequence number within the batch in its snapshot summary
(``lakeforge.stream.query-id`` / ``.batch-id`` / ``.write-seq``), and a write already committed by an earlier
attempt of the same batch is skipped. After a crash at any moment the table holds each batch exactly once.
(Writes through other APIs, ``batch_df.writeTo(...)`` or SQL, are not tracked: make them idempotent, e.g. with
MERGE on a key.)

Fault injection for tests: ``LAKEFORGE_STREAM_FAULT=<point>@<batch id>`` with the point ``before-sink-commit``,
``after-sink-commit`` or ``after-batch`` kills the driver (the JVM and this Python process) with SIGKILL at
that point of that batch, as a crash would.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.glue import storage
from jobs.glue.context import GlueContextError, _as_list, _truthy

if TYPE_CHECKING:
    from pyspark.sql.streaming.query import StreamingQuery
    from pyspark.sql.streaming.readwriter import DataStreamReader

    from catalog.datasets import Dataset
    from jobs.glue.context import GlueContext

log = logging.getLogger(__name__)

UNAVAILABLE = {
    "kafka": "the Kafka source needs the spark-sql-kafka-0-10 connector and kafka-clients jars",
    "kinesis": "the Kinesis source needs a Kinesis connector jar (and the AWS SDK)",
}
GENERATOR_CONNECTIONS = ("rate", "rate-micro-batch", "socket")
FILE_CONNECTIONS = ("s3", "file")
STREAM_FORMATS = ("json", "csv", "parquet", "orc")
#: Spark file-source options passed through to the stream (their presence also makes a file source a stream).
FILE_STREAM_OPTIONS = (
    "maxFilesPerTrigger",
    "maxFileAge",
    "latestFirst",
    "fileNameOnly",
    "pathGlobFilter",
    "cleanSource",
    "sourceArchiveDir",
    "maxCachedFiles",
    "discardCachedInputRatio",
)
ICEBERG_STREAM_OPTIONS = (
    "stream-from-timestamp",
    "streaming-skip-delete-snapshots",
    "streaming-skip-overwrite-snapshots",
    "streaming-max-files-per-micro-batch",
    "streaming-max-rows-per-micro-batch",
)
GENERATOR_OPTIONS = {
    "rate": ("rowsPerSecond", "rampUpTime", "numPartitions"),
    "rate-micro-batch": ("rowsPerBatch", "numPartitions", "startTimestamp", "advanceMillisPerBatch"),
    "socket": ("host", "port", "includeTimestamp"),
}
DEFAULT_SAMPLE_FILES = 100
DEFAULT_MAX_RETRIES = 3
BACKOFF_SECONDS = (1.0, 2.0, 5.0)
QUERY_ID_PROPERTY = "sql.streaming.queryId"
#: Snapshot summary keys of an exactly-once stream write.
QUERY_ID_KEY = "lakeforge.stream.query-id"
BATCH_ID_KEY = "lakeforge.stream.batch-id"
WRITE_SEQ_KEY = "lakeforge.stream.write-seq"
FAULT_ENV = "LAKEFORGE_STREAM_FAULT"
FAULT_POINTS = ("before-sink-commit", "after-sink-commit", "after-batch")
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    **dict.fromkeys(("ms", "milli", "millis", "millisecond", "milliseconds"), 0.001),
    **dict.fromkeys(("", "s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hour", "hours"), 3600.0),
}


class StreamingError(GlueContextError):
    """A streaming source or ``forEachBatch`` call that cannot work as asked, with what to change."""


class StreamingSourceUnavailableError(StreamingError):
    """A streaming connection type whose Spark connector cannot be installed here (Kafka, Kinesis)."""


def interval_seconds(value: Any) -> float:
    """Seconds of a Glue ``windowSize`` (``"100 seconds"``, ``"500 ms"``, ``"2 minutes"``, or a number of
    seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _INTERVAL.match(str(value))
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNIT_SECONDS:
            raise StreamingError(
                f"windowSize must be an interval such as '10 seconds', '500 ms' or '2 minutes', got {value!r}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    if seconds <= 0:
        raise StreamingError(f"windowSize must be positive, got {value!r}")
    return seconds


def _interval_text(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis} milliseconds"


def unavailable_error(connection_type: str) -> StreamingSourceUnavailableError:
    ctype = connection_type.lower()
    why = UNAVAILABLE.get(ctype, f"the {connection_type} source needs a connector jar")
    return StreamingSourceUnavailableError(
        f"connection_type={connection_type!r} is not available in lakeforge: {why} from Maven, and no machine of "
        "this project can reach Maven, so they cannot be installed. Stream from a landing prefix instead, as "
        "Kinesis Data Firehose delivers files: create_data_frame.from_options(connection_type='s3', "
        "connection_options={'paths': ['s3://bucket/landing/'], 'streaming': True, 'classification': 'json'}), "
        "or generate load with connection_type='rate'"
    )


def check_connection(connection_type: str) -> None:
    """Raise the clear error of a streaming connection type that cannot work here (Kafka, Kinesis)."""
    if (connection_type or "").lower() in UNAVAILABLE:
        raise unavailable_error(connection_type)


def is_streaming_source(connection_type: str, options: Mapping[str, Any]) -> bool:
    """Whether ``from_options(connection_type, options)`` asks for a stream."""
    ctype = (connection_type or "").lower()
    if ctype in UNAVAILABLE or ctype in GENERATOR_CONNECTIONS:
        return True
    if ctype in FILE_CONNECTIONS:
        return _truthy(options.get("streaming", False)) or any(key in options for key in FILE_STREAM_OPTIONS)
    return False


def is_streaming_catalog_read(kind: str, dataset: Dataset | None, options: Mapping[str, Any]) -> bool:
    """Whether a ``from_catalog`` read of an Iceberg table or raw dataset asks for a stream."""
    if _truthy(options.get("streaming", False)):
        return True
    if dataset is not None:
        props = {k.lower(): v for k, v in dataset.definition.properties.items()}
        if str(props.get("typeofdata", "")).lower() in UNAVAILABLE or _truthy(props.get("streaming", "false")):
            return True
        return any(key in options for key in FILE_STREAM_OPTIONS)
    return False


# -- sources -------------------------------------------------------------------------------------------------
def read_stream(
    glue_context: GlueContext,
    connection_type: str,
    options: Mapping[str, Any],
    fmt: str | None,
    format_options: Mapping[str, Any],
    *,
    dynamic: bool = False,
) -> DataFrame:
    """The streaming DataFrame of ``create_data_frame.from_options`` for a stream (see the module doc)."""
    ctype = (connection_type or "").lower()
    check_connection(ctype)
    if dynamic:
        raise StreamingError(
            "A stream cannot be read as a DynamicFrame (in Glue neither): use create_data_frame.from_options / "
            "from_catalog, and DynamicFrame.fromDF(batch_df, glueContext, name) inside the forEachBatch function"
        )
    spark = glue_context.spark_session
    if ctype in GENERATOR_CONNECTIONS:
        reader = spark.readStream.format(ctype)
        allowed = GENERATOR_OPTIONS[ctype]
        for key, value in options.items():
            if key in allowed:
                reader = reader.option(key, str(value))
            elif key not in ("streaming", "classification", "inferSchema"):
                raise StreamingError(
                    f"Unknown option {key!r} for connection_type={connection_type!r}: one of {', '.join(allowed)}"
                )
        if ctype == "socket" and not options.get("host"):
            raise StreamingError("connection_type='socket' needs connection_options['host'] and ['port']")
        return reader.load()
    if ctype not in FILE_CONNECTIONS:
        raise StreamingError(f"Unsupported streaming connection_type {connection_type!r}: s3, file, rate or socket")
    fmt = _stream_format(fmt or options.get("classification") or options.get("format"))
    paths = _as_list(options.get("paths") or options.get("path"))
    if not paths:
        raise StreamingError(f"A {ctype} stream needs connection_options['paths'] (the landing prefix)")
    if options.get("exclusions"):
        raise StreamingError(
            "exclusions are not supported on streaming file sources (Spark lists the prefix itself): land only "
            "the files to read under the prefix, or filter by name with pathGlobFilter"
        )
    position = str(options.get("startingPosition") or options.get("startingOffsets") or "").lower()
    if position == "latest":
        log.warning("startingPosition=latest: a file stream starts with the files already under its prefix")
    merged = {**_format_options_from_connection(options), **dict(format_options)}
    recurse = _truthy(options.get("recurse", True))
    schema = _resolve_schema(glue_context, options, paths, fmt, merged, recurse)
    for path in paths:
        _ensure_prefix(glue_context, path)
    frames = [_file_stream(spark, path, fmt, merged, schema, recurse, options) for path in paths]
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    log.info("streaming %s files from %s (%d column(s))", fmt, ", ".join(paths), len(df.columns))
    return df


def _ensure_prefix(glue_context: GlueContext, path: str) -> None:
    """An S3 prefix exists as soon as it is named; the local directory behind it is created if missing, so
    a stream can start before the first delivery."""
    if any(ch in path for ch in "*?[{"):
        return
    local = glue_context.local_path(path)
    if not local.exists():
        local.mkdir(parents=True, exist_ok=True)
        log.info("created the empty landing prefix %s (%s)", path, local)


def _stream_format(fmt: Any) -> str:
    if not fmt:
        raise StreamingError(
            "A file stream needs a format: format='json' or connection_options['classification'] (json, csv, "
            "parquet, orc)"
        )
    lowered = str(fmt).lower()
    if lowered == "glueparquet":
        lowered = "parquet"
    if lowered not in STREAM_FORMATS:
        raise StreamingError(f"Unsupported stream format {fmt!r}: one of {', '.join(STREAM_FORMATS)}")
    return lowered


def _format_options_from_connection(options: Mapping[str, Any]) -> dict[str, Any]:
    """Glue's streaming keys that are format options (``delimiter``, header flags) in connection_options."""
    out: dict[str, Any] = {}
    if options.get("delimiter"):
        out["separator"] = options["delimiter"]
    for key in ("withHeader", "separator", "quoteChar", "escaper", "multiLine"):
        if key in options:
            out[key] = options[key]
    return out


def _apply_format_options(reader: Any, fmt: str, format_options: Mapping[str, Any]) -> Any:
    """Glue's format options as Spark reader options (works for ``spark.read`` and ``spark.readStream``)."""
    opts = dict(format_options)
    if fmt == "json":
        if _truthy(opts.pop("multiLine", opts.pop("multiline", False))):
            reader = reader.option("multiLine", "true")
        if opts.pop("jsonPath", None):
            raise StreamingError("jsonPath is not supported on streams: select the fields in the batch function")
    elif fmt == "csv":
        header = _truthy(opts.pop("withHeader", False)) or _truthy(opts.pop("skipFirst", False))
        reader = reader.option("header", "true" if header else "false")
        separator = opts.pop("separator", None) or opts.pop("delimiter", None)
        if separator:
            reader = reader.option("sep", str(separator))
        if "quoteChar" in opts:
            quote = str(opts.pop("quoteChar"))
            reader = reader.option("quote", "" if quote == "-1" else quote)
        if "escaper" in opts:
            reader = reader.option("escape", str(opts.pop("escaper")))
        if _truthy(opts.pop("multiLine", False)):
            reader = reader.option("multiLine", "true")
        opts.pop("optimizePerformance", None)
    for key, value in opts.items():
        reader = reader.option(key, str(value))
    return reader


def _parse_schema(spark: SparkSession, value: Any) -> StructType:
    if isinstance(value, StructType):
        return value
    text = str(value).strip()
    if text.startswith("{"):
        return StructType.fromJson(json.loads(text))
    try:
        parsed = spark._jsparkSession.sessionState().sqlParser().parseTableSchema(text)
    except Exception as exc:
        raise StreamingError(f"Invalid schema {text!r}: expected a DDL string such as 'id long, name string'") from exc
    return StructType.fromJson(json.loads(parsed.json()))


def _resolve_schema(
    glue_context: GlueContext,
    options: Mapping[str, Any],
    paths: Sequence[str],
    fmt: str,
    format_options: Mapping[str, Any],
    recurse: bool,
) -> StructType:
    spark = glue_context.spark_session
    if options.get("schema"):
        return _parse_schema(spark, options["schema"])
    if "inferSchema" in options and not _truthy(options["inferSchema"]):
        raise StreamingError("inferSchema is false and no connection_options['schema'] is given")
    present = [p for p in paths if glue_context.local_path(p).exists()]
    files = storage.list_files(present, glue_context.object_store_root, recurse=recurse) if present else []
    if not files:
        raise StreamingError(
            f"Cannot infer the schema of the stream at {', '.join(paths)}: no file is there yet. Pass "
            "connection_options['schema'] (a DDL string such as 'id long, name string'), or land a sample file first"
        )
    limit = int(options.get("inferSchemaSampleFiles", DEFAULT_SAMPLE_FILES))
    sample = [f.uri for f in files[:limit]]
    reader = _apply_format_options(spark.read, fmt, format_options)
    schema: StructType = reader.format(fmt).load(sample).schema
    log.info("stream schema inferred from %d file(s): %s", len(sample), schema.simpleString())
    return schema


def _file_stream(
    spark: SparkSession,
    path: str,
    fmt: str,
    format_options: Mapping[str, Any],
    schema: StructType,
    recurse: bool,
    options: Mapping[str, Any],
) -> DataFrame:
    reader: DataStreamReader = spark.readStream.format(fmt).schema(schema)
    reader = _apply_format_options(reader, fmt, format_options)
    if recurse:
        reader = reader.option("recursiveFileLookup", "true")
    for key in FILE_STREAM_OPTIONS:
        if key in options:
            reader = reader.option(key, str(options[key]))
    return reader.load(path)


def read_catalog_stream(
    glue_context: GlueContext,
    database: str,
    table: str,
    kind: str,
    dataset: Dataset | None,
    options: Mapping[str, Any],
    *,
    dynamic: bool = False,
) -> DataFrame:
    """The streaming DataFrame of ``create_data_frame.from_catalog`` for a stream (see the module doc)."""
    if dynamic:
        raise StreamingError(
            f"{database}.{table}: a stream cannot be read as a DynamicFrame (in Glue neither): use "
            "create_data_frame.from_catalog"
        )
    spark = glue_context.spark_session
    if kind == "iceberg":
        reader = spark.readStream
        for key in ICEBERG_STREAM_OPTIONS:
            if key in options:
                reader = reader.option(key, str(options[key]))
        return reader.table(glue_context._iceberg_ident(database, table))
    if dataset is None:
        raise StreamingError(f"{database}.{table} is neither an Iceberg table nor a dataset")
    definition = dataset.definition
    props = {k.lower(): v for k, v in definition.properties.items()}
    type_of_data = str(props.get("typeofdata", "")).lower()
    if type_of_data in UNAVAILABLE:
        raise unavailable_error(type_of_data)
    from jobs.glue.context import _catalog_format_options, _ddl_schema

    fmt = _stream_format(definition.format)
    format_options = {
        **_catalog_format_options(fmt, definition.properties),
        **dict(options.get("format_options") or {}),
    }
    schema = (
        _parse_schema(spark, options["schema"]) if options.get("schema") else _ddl_schema(spark, definition.columns)
    )
    if not schema.fields:
        raise StreamingError(f"{database}.{table} has no columns in the catalog: run the crawler or pass a schema")
    _ensure_prefix(glue_context, definition.location)
    df = _file_stream(spark, definition.location, fmt, format_options, schema, True, options)
    keys = definition.partition_keys
    if keys:
        df = _with_path_partitions(df, definition.location, [(k.name, k.type) for k in keys])
    log.info("streaming dataset %s.%s (%s at %s)", database, table, fmt, definition.location)
    return df


def _with_path_partitions(df: DataFrame, location: str, keys: Sequence[tuple[str, str]]) -> DataFrame:
    """Partition columns from the file's path below ``location``: ``key=value`` or plain directory levels."""
    decoded = F.regexp_replace(F.expr("url_decode(replace(input_file_name(), '+', '%2B'))"), "^file:/+", "/")
    if storage.is_s3(location):
        base = location.rstrip("/") + "/"
    else:
        base = str(storage.local_path(location, "/")).rstrip("/") + "/"
    parts = F.split(F.substring_index(decoded, base, -1), "/")
    for i, (name, type_) in enumerate(keys):
        raw = F.element_at(parts, i + 1)
        value = F.when(raw.contains("="), F.substring_index(raw, "=", -1)).otherwise(raw)
        value = F.when(value == "__HIVE_DEFAULT_PARTITION__", F.lit(None)).otherwise(value)
        df = df.withColumn(name, value.cast(type_))
    return df


# -- forEachBatch --------------------------------------------------------------------------------------------
@dataclass
class StreamBatch:
    """The micro-batch a batch function is processing (visible to the Iceberg writes it makes)."""

    query_id: str
    batch_id: int
    writes: dict[str, int] = field(default_factory=dict)

    def next_seq(self, ident: str) -> int:
        seq = self.writes.get(ident, 0)
        self.writes[ident] = seq + 1
        return seq


_active = threading.local()
_cache_lock = threading.Lock()
#: ``(query id, table ident) -> (batch id, write seq)`` of the last write known to be committed.
_committed: dict[tuple[str, str], tuple[int, int]] = {}


def current_batch() -> StreamBatch | None:
    """The micro-batch being processed on this thread, if any."""
    batch = getattr(_active, "batch", None)
    return batch if isinstance(batch, StreamBatch) else None


@contextmanager
def _batch_scope(batch: StreamBatch) -> Iterator[StreamBatch]:
    previous = current_batch()
    _active.batch = batch
    try:
        yield batch
    finally:
        _active.batch = previous


def _forget(query_id: str) -> None:
    with _cache_lock:
        for key in [k for k in _committed if k[0] == query_id]:
            del _committed[key]


def fault_point(point: str, batch_id: int) -> None:
    """SIGKILL the driver here when ``LAKEFORGE_STREAM_FAULT`` is ``<point>@<batch_id>`` (tests)."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec or spec != f"{point}@{batch_id}":
        return
    log.error("fault injection: killing the driver at %s of batch %d (%s=%s)", point, batch_id, FAULT_ENV, spec)
    for handler in logging.getLogger().handlers:
        handler.flush()
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm") as comm:
            is_jvm = comm.read().strip() == "java"
    except OSError:
        is_jvm = False
    if is_jvm:  # spark-submit: the JVM driver is this Python process's parent
        os.kill(parent, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


_catalogs: dict[tuple[str, str | None], Any] = {}


def _rest_catalog(glue_context: GlueContext) -> Any:
    """pyiceberg's client of the lake catalog the GlueContext's Spark catalog uses (one per URI and token)."""
    from pyiceberg.catalog.rest import RestCatalog

    key = (glue_context.catalog_uri(), glue_context._catalog_token())
    with _cache_lock:
        if key not in _catalogs:
            props = {"uri": key[0], **({"token": key[1]} if key[1] else {})}
            _catalogs[key] = RestCatalog(glue_context.catalog_name, **props)
        return _catalogs[key]


def _last_committed(glue_context: GlueContext, database: str, table: str, query_id: str) -> tuple[int, int]:
    """The last ``(batch id, write seq)`` of stream ``query_id`` committed to the table ((-1, -1): none), from
    the snapshot summaries in the table's metadata (one catalog request, no Spark job)."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        loaded = _rest_catalog(glue_context).load_table((*database.split("."), table))
    except NoSuchTableError:
        return (-1, -1)
    found = [(-1, -1)]
    for snapshot in loaded.snapshots():
        summary = snapshot.summary
        if summary is None or summary.get(QUERY_ID_KEY) != query_id:
            continue
        batch, seq = summary.get(BATCH_ID_KEY), summary.get(WRITE_SEQ_KEY)
        if batch is not None:
            found.append((int(batch), int(seq or 0)))
    return max(found)


def exactly_once(
    glue_context: GlueContext, database: str, table: str, write: Callable[[dict[str, str]], None]
) -> Callable[[dict[str, str]], None]:
    """Wrap an Iceberg write (``write(options)``) so that inside a micro-batch it is made at most once per
    (stream, batch, write) and records that in the snapshot summary; outside a stream it is ``write``."""

    def guarded(options: dict[str, str]) -> None:
        batch = current_batch()
        if batch is None:
            write(options)
            return
        ident = glue_context._iceberg_ident(database, table)
        seq = batch.next_seq(ident)
        key = (batch.query_id, ident)
        with _cache_lock:
            last = _committed.get(key)
        if last is None:
            last = _last_committed(glue_context, database, table, batch.query_id)
            with _cache_lock:
                _committed[key] = last
        if (batch.batch_id, seq) <= last:
            log.info(
                "%s: batch %d write %d of stream %s is already committed: skipped (replay after a restart)",
                ident,
                batch.batch_id,
                seq,
                batch.query_id,
            )
            return
        fault_point("before-sink-commit", batch.batch_id)
        write(
            {
                **options,
                f"snapshot-property.{QUERY_ID_KEY}": batch.query_id,
                f"snapshot-property.{BATCH_ID_KEY}": str(batch.batch_id),
                f"snapshot-property.{WRITE_SEQ_KEY}": str(seq),
            }
        )
        with _cache_lock:
            _committed[key] = (batch.batch_id, seq)
        fault_point("after-sink-commit", batch.batch_id)

    return guarded


@dataclass
class BatchStats:
    """What a ``forEachBatch`` call did (its return value)."""

    batches: int = 0
    skipped_empty: int = 0
    records: int = 0
    retries: int = 0
    batch_seconds: list[float] = field(default_factory=list)


class _StopSignals:
    """SIGTERM / SIGINT ask the running query to stop (installed only on the main thread)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the streaming query", signum)
        self.requested.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _query_id(glue_context: GlueContext, checkpoint: str) -> str:
    value = glue_context._sc.getLocalProperty(QUERY_ID_PROPERTY)
    if value:
        return str(value)
    metadata = glue_context.local_path(storage.join(checkpoint, "metadata"))
    try:
        return str(json.loads(metadata.read_text().splitlines()[0])["id"])
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise StreamingError(f"Cannot tell the streaming query's id (checkpoint {checkpoint}): {exc}") from exc


def _storage_level(name: Any) -> StorageLevel:
    level = getattr(StorageLevel, str(name or "MEMORY_AND_DISK").upper(), None)
    if not isinstance(level, StorageLevel):
        raise StreamingError(f"Unknown storageLevel {name!r}: e.g. MEMORY_AND_DISK, MEMORY_ONLY, DISK_ONLY")
    return level


def _streaming_df(frame: Any) -> DataFrame:
    if isinstance(frame, DataFrame):
        df = frame
    elif hasattr(frame, "toDF"):
        df = frame.toDF()
    else:
        raise StreamingError(f"forEachBatch needs a streaming DataFrame, got {type(frame).__name__}")
    if not df.isStreaming:
        raise StreamingError(
            "forEachBatch needs a streaming DataFrame: read it with create_data_frame.from_options(connection_type="
            "'s3', connection_options={'paths': [...], 'streaming': True, ...}) or from_catalog(..., "
            "additional_options={'streaming': True})"
        )
    return df


def for_each_batch(
    glue_context: GlueContext,
    frame: Any,
    batch_function: Callable[[DataFrame, int], Any],
    options: Mapping[str, Any] | None = None,
) -> BatchStats:
    """``glueContext.forEachBatch``: run ``batch_function(batch_df, batch_id)`` on every non-empty micro-batch
    of the stream until the query stops (see the module doc for the options)."""
    opts = dict(options or {})
    available_now = _truthy(opts.get("availableNow", False))
    checkpoint = str(opts.get("checkpointLocation") or "")
    if not checkpoint:
        raise StreamingError("forEachBatch needs options['checkpointLocation'] (e.g. args['TempDir'] + '/checkpoint/')")
    if not available_now and not opts.get("windowSize"):
        raise StreamingError("forEachBatch needs options['windowSize'] (the trigger interval, e.g. '10 seconds')")
    window = interval_seconds(opts["windowSize"]) if opts.get("windowSize") else None
    try:
        max_retries = int(opts.get("batchMaxRetries", DEFAULT_MAX_RETRIES))
    except (TypeError, ValueError):
        raise StreamingError(f"batchMaxRetries must be an integer, got {opts.get('batchMaxRetries')!r}") from None
    if not 0 <= max_retries <= 100:
        raise StreamingError(f"batchMaxRetries must be between 0 and 100, got {max_retries}")
    persist = _truthy(opts.get("persistDataFrame", "true"))
    level = _storage_level(opts.get("storageLevel"))
    if not callable(batch_function):
        raise StreamingError("forEachBatch needs a batch_function(data_frame, batch_id)")
    df = _streaming_df(frame)
    stats = BatchStats()

    def run_batch(batch_df: DataFrame, batch_id: int) -> None:
        start = time.monotonic()
        query_id = _query_id(glue_context, checkpoint)
        if persist:
            batch_df.persist(level)
            count = batch_df.count()
        else:
            count = 1 if batch_df.take(1) else 0
        try:
            if count == 0:
                stats.skipped_empty += 1
                log.debug("batch %d is empty: skipped", batch_id)
                return
            try:
                with _batch_scope(StreamBatch(query_id, int(batch_id))):
                    batch_function(batch_df, int(batch_id))
            except BaseException:
                _forget(query_id)  # the retry looks again at what was committed
                raise
            fault_point("after-batch", int(batch_id))
            seconds = time.monotonic() - start
            stats.batches += 1
            stats.records += count if persist else 0
            stats.batch_seconds.append(seconds)
            log.info(
                "batch %d: %s record(s) processed in %.2f s",
                batch_id,
                count if persist else "some",
                seconds,
            )
        finally:
            if persist:
                batch_df.unpersist()

    job = getattr(glue_context, "current_job", None)
    suspended = job is not None and bool(getattr(job, "tracks_state", False))
    if suspended:
        log.warning(
            "job bookmarks do not apply to streaming (as in Glue): the checkpoint %s tracks progress", checkpoint
        )
        glue_context.current_job = None
    attempt = 0
    try:
        with _StopSignals() as signals:
            while True:
                writer = df.writeStream.foreachBatch(run_batch).option("checkpointLocation", checkpoint)
                if opts.get("queryName"):
                    writer = writer.queryName(str(opts["queryName"]))
                if available_now:
                    writer = writer.trigger(availableNow=True)
                else:
                    assert window is not None
                    writer = writer.trigger(processingTime=_interval_text(window))
                query = writer.start()
                log.info(
                    "streaming query %s started (run %s, trigger %s, checkpoint %s)",
                    query.id,
                    query.runId,
                    "availableNow" if available_now else f"{window:g} s",
                    checkpoint,
                )
                _forget(str(query.id))
                try:
                    _await(query, signals.requested)
                    log.info(
                        "streaming query %s stopped: %d batch(es), %d record(s), %d empty batch(es) skipped",
                        query.id,
                        stats.batches,
                        stats.records,
                        stats.skipped_empty,
                    )
                    return stats
                except Exception as exc:
                    message = str(exc)
                    if message.startswith("CheckpointMetadataNotFound") or attempt >= max_retries:
                        raise
                    delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                    attempt += 1
                    stats.retries += 1
                    log.warning(
                        "streaming query failed (retry %d of %d in %.0f s, from the checkpoint): %s",
                        attempt,
                        max_retries,
                        delay,
                        message.splitlines()[0] if message else type(exc).__name__,
                    )
                    if signals.requested.wait(delay):
                        return stats
    finally:
        if suspended:
            glue_context.current_job = job


def _await(query: StreamingQuery, stop: threading.Event) -> None:
    """Wait for the query to end (re-raising its failure); stop it when ``stop`` is set."""
    while True:
        if query.awaitTermination(1):
            exc = query.exception()
            if exc is not None:
                raise exc
            return
        if stop.is_set():
            query.stop()
            return


# -- getSampleStreamingDynamicFrame --------------------------------------------------------------------------
def sample_stream(
    glue_context: GlueContext,
    frame: Any,
    options: Mapping[str, Any] | None = None,
    batch_function: Callable[[DataFrame, int], Any] | None = None,
) -> Any:
    """``getSampleStreamingDynamicFrame``: run the stream for ``pollingTimeInMs`` (default 10000) or until
    ``recordPollingLimit`` records (default 100) arrived, and return them as a DynamicFrame. With
    ``batch_function``, each micro-batch is first passed through it (its returned frame is sampled)."""
    opts = dict(options or {})
    df = _streaming_df(frame)
    window = interval_seconds(opts.get("windowSize", "1 second"))
    polling = float(opts.get("pollingTimeInMs", 10000)) / 1000.0
    limit = int(opts.get("recordPollingLimit", 100))
    rows: list[Any] = []
    schema: list[StructType] = []
    done = threading.Event()

    def collect(batch_df: DataFrame, batch_id: int) -> None:
        result: Any = batch_df
        if batch_function is not None:
            returned = batch_function(batch_df, batch_id)
            if returned is not None:
                result = (
                    returned.toDF() if hasattr(returned, "toDF") and not isinstance(returned, DataFrame) else returned
                )
        if not schema:
            schema.append(result.schema)
        rows.extend(result.limit(max(0, limit - len(rows))).collect())
        if len(rows) >= limit:
            done.set()

    query = df.writeStream.foreachBatch(collect).trigger(processingTime=_interval_text(window)).start()
    deadline = time.monotonic() + polling
    try:
        while time.monotonic() < deadline and not done.is_set():
            if query.awaitTermination(1):
                break
    finally:
        query.stop()
    exc = query.exception()
    if exc is not None:
        raise StreamingError(f"The sample stream failed: {exc}") from exc
    spark = glue_context.spark_session
    sample = spark.createDataFrame(rows[:limit], schema[0] if schema else df.schema)
    return glue_context._to_dynamic(sample, "sample")
