"""Glue's ``GlueContext`` on plain Spark (served to scripts as ``awsglue.context``): every source and sink
of a Glue job, against the lake's object store and catalog.

Sources (``create_dynamic_frame`` / ``create_data_frame`` / ``getSource``):

* ``s3`` and ``file`` with ``paths``, ``recurse``, ``exclusions`` (JSON list of globs), ``groupFiles`` /
  ``groupSize`` (partition sizing: frames with more partitions than ``total bytes / groupSize`` are
  coalesced), in ``json``, ``csv``, ``parquet``/``glueparquet``, ``orc`` and ``delta``. DynamicFrames of
  JSON and CSV come from Glue's per-value typed readers (:mod:`jobs.glue.inference`); DataFrames from
  Spark's own readers with Glue's format options translated. ``push_down_predicate`` prunes Hive-style
  ``key=value`` directories before any file in them is read.
* ``from_catalog``: an Iceberg table of the ``lake`` catalog (read through Spark; the predicate is pushed
  into the scan) or a raw dataset a crawler registered (:class:`catalog.client.LakeClient`): the
  ``push_down_predicate`` (or ``catalogPartitionPredicate``) is evaluated by the catalog, so pruned
  partitions are never listed; a predicate the catalog cannot evaluate (Spark-only SQL) is evaluated by
  Spark over the partition values instead, still before any listing. Partition columns are added with
  their catalog types, as Glue does.
* JDBC (``postgresql``, ``sqlite``, ``jdbc``) with ``hashfield``/``hashexpression``/``hashpartitions``
  parallel reads (:mod:`jobs.glue.jdbc`).

Sinks (``write_dynamic_frame`` / ``write_data_frame`` / ``getSink``): ``s3``/``file`` with ``path``,
``partitionKeys``, ``compression`` in ``json``, ``csv`` (``writeHeader``, ``separator``, ``quoteChar``,
``escaper``), ``parquet``/``glueparquet``, ``orc``; ``delta`` through delta-rs (``deltalake``, data passes
through the driver as Arrow); JDBC (append, table created when missing); ``from_catalog`` appends to an
Iceberg table (created when missing with ``enableUpdateCatalog``) or writes a raw dataset's files and
registers their partitions; the Glue Studio pattern ``getSink(path=..., enableUpdateCatalog=True,
partitionKeys=[...]) + setCatalogInfo + setFormat("glueparquet") + writeFrame`` creates or updates the
raw dataset and adds its partitions.

The object store: ``GlueContext`` sets Hadoop's ``fs.lakeforge.root`` (unless already set) from
``LAKEFORGE_S3_ROOT`` or the lake settings (``<home>/s3``), and the same JVM-wide as system property
``lakeforge.s3.root`` for configurations captured earlier (the Iceberg catalog's).
Streams (a landing prefix read with ``{"streaming": True}``, ``rate``, ``socket``, ``from_catalog`` with
``{"streaming": True}``), ``forEachBatch`` with its exactly-once Iceberg writes, and the clear error of
``kafka``/``kinesis`` live in :mod:`jobs.glue.streaming`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark import SparkContext
from pyspark.sql import Column, DataFrame, SparkSession, SQLContext
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from catalog import errors as catalog_errors
from catalog.settings import get_settings
from jobs.glue import bookmarks, jdbc, storage
from jobs.glue.storage import StoredFile

if TYPE_CHECKING:
    from catalog.client import LakeClient
    from catalog.datasets import Dataset, Partition

log = logging.getLogger(__name__)

ROOT_KEY = "fs.lakeforge.root"
ROOT_PROPERTY = "lakeforge.s3.root"
FILE_CONNECTIONS = ("s3", "file")
READ_FORMATS = ("json", "csv", "parquet", "glueparquet", "orc", "delta")
WRITE_FORMATS = ("json", "csv", "parquet", "glueparquet", "orc", "delta")
_NATIVE = {"parquet": "parquet", "glueparquet": "parquet", "orc": "orc"}
STREAMING_CONNECTIONS = ("kafka", "kinesis")
UPDATE_BEHAVIORS = ("UPDATE_IN_DATABASE", "LOG")
GRANULARITIES = ("year", "month", "day", "hour", "minute")
_INGEST_FORMATS = {"year": "yyyy", "month": "MM", "day": "dd", "hour": "HH", "minute": "mm"}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
#: connection_options keys Glue itself interprets for S3 (everything else is ignored on read).
_S3_KEYS = {"paths", "path", "recurse", "exclusions", "groupFiles", "groupSize", "compressionType", "partitionKeys"}


class GlueContextError(RuntimeError):
    """A Glue source or sink that cannot work as asked, with what to change."""


class GlueCatalogError(GlueContextError):
    """A catalog entry (database, table, dataset) that is missing or does not fit the call."""


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _dynamic_frame_class() -> Any:
    try:
        from jobs.glue.dynamicframe import DynamicFrame
    except ImportError as exc:
        raise GlueContextError(f"DynamicFrame is not available: {exc}") from exc
    return DynamicFrame


def _is_collection(frame: Any) -> bool:
    return hasattr(frame, "keys") and hasattr(frame, "select") and not isinstance(frame, DataFrame)


def _frame_df(frame: Any) -> DataFrame:
    """The DataFrame a sink writes: a DataFrame as is, a DynamicFrame's good records (``toDF()``)."""
    if isinstance(frame, DataFrame):
        return frame
    if hasattr(frame, "toDF"):
        df = frame.toDF()
        if isinstance(df, DataFrame):
            return df
    raise GlueContextError(f"Expected a DynamicFrame or DataFrame, got {type(frame).__name__}")


def _frame_name(frame: Any) -> str:
    if isinstance(frame, DataFrame):
        return ""  # df.name would be a column
    return str(getattr(frame, "name", "") or "")


class GlueLogger:
    """Glue's ``GlueLogger`` (``glueContext.get_logger()``): ``info``, ``warn``, ``error`` on Python logging
    (logger ``awsglue.GlueLogger``; shown on stderr at INFO when the application configured no logging)."""

    def __init__(self, name: str = "awsglue.GlueLogger") -> None:
        self._log = logging.getLogger(name)
        parent = logging.getLogger("awsglue")
        if not logging.getLogger().handlers and not parent.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            parent.addHandler(handler)
            parent.setLevel(logging.INFO)
            parent.propagate = False

    def info(self, msg: Any) -> None:
        self._log.info("%s", msg)

    def warn(self, msg: Any) -> None:
        self._log.warning("%s", msg)

    warning = warn

    def error(self, msg: Any) -> None:
        self._log.error("%s", msg)

    def debug(self, msg: Any) -> None:
        self._log.debug("%s", msg)


# -- sources and sinks (Glue's DataSource / DataSink objects) ------------------------------------------
class DataSource:
    """``glueContext.getSource(...)``: ``setFormat``, then ``getFrame`` / ``getDataFrame``."""

    def __init__(
        self,
        glue_context: GlueContext,
        connection_type: str,
        format: str | None = None,  # noqa: A002 - Glue's parameter name
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._ctx = glue_context
        self.connection_type = connection_type
        self.format = format
        self.format_options: dict[str, Any] = {}
        self.transformation_ctx = transformation_ctx
        self.push_down_predicate = push_down_predicate
        self.options = dict(options or {})
        self.name = transformation_ctx

    def setFormat(self, format: str, **options: Any) -> DataSource:  # noqa: N802,A002
        self.format = format
        self.format_options = dict(options)
        return self

    def getDataFrame(self, **kwargs: Any) -> DataFrame:  # noqa: N802
        return self._ctx._read_options(
            self.connection_type,
            self.options,
            self.format,
            self.format_options,
            self.push_down_predicate,
            dynamic=False,
            transformation_ctx=self.transformation_ctx,
            **kwargs,
        )

    def getFrame(self, **kwargs: Any) -> Any:  # noqa: N802
        df = self._ctx._read_options(
            self.connection_type,
            self.options,
            self.format,
            self.format_options,
            self.push_down_predicate,
            dynamic=True,
            transformation_ctx=self.transformation_ctx,
            **kwargs,
        )
        return self._ctx._to_dynamic(df, self.name)

    def getSampleFrame(self, num: int, **options: Any) -> Any:  # noqa: N802
        frame = self.getFrame(**options)
        return self._ctx._to_dynamic(frame.toDF().limit(int(num)), self.name)


class DataSink:
    """``glueContext.getSink(...)``: ``setFormat``, ``setCatalogInfo``, then ``writeFrame`` / ``write``."""

    def __init__(
        self,
        glue_context: GlueContext,
        connection_type: str,
        format: str | None = None,  # noqa: A002
        transformation_ctx: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._ctx = glue_context
        self.connection_type = connection_type
        self.format = format
        self.format_options: dict[str, Any] = {}
        self.transformation_ctx = transformation_ctx
        self.options = dict(options or {})
        self.catalog_database: str | None = None
        self.catalog_table: str | None = None
        self.accumulable_size = 0

    def setFormat(self, format: str, **options: Any) -> DataSink:  # noqa: N802,A002
        self.format = format
        self.format_options = dict(options)
        return self

    def setCatalogInfo(  # noqa: N802
        self,
        catalogDatabase: str,
        catalogTableName: str,
        catalogId: str = "",  # noqa: N803
    ) -> DataSink:
        self.catalog_database = catalogDatabase
        self.catalog_table = catalogTableName
        return self

    def setAccumulableSize(self, size: int) -> DataSink:  # noqa: N802
        self.accumulable_size = int(size)
        return self

    def writeFrame(self, dynamic_frame: Any, info: str = "") -> Any:  # noqa: N802
        """Write the frame; returns its error records as a frame named ``<name>_errors``."""
        df = _frame_df(dynamic_frame)
        self._write_df(df)
        return self._ctx._errors_frame(dynamic_frame)

    def writeDataFrame(self, data_frame: DataFrame, glue_context: Any = None) -> DataFrame:  # noqa: N802
        self._write_df(data_frame)
        return data_frame

    def write(self, frame_or_collection: Any) -> Any:
        if _is_collection(frame_or_collection):
            base = self.options.get("path")
            results = {}
            for key in frame_or_collection.keys():
                frame = frame_or_collection.select(key)
                if base:
                    sink = DataSink(
                        self._ctx,
                        self.connection_type,
                        self.format,
                        self.transformation_ctx,
                        {**self.options, "path": storage.join(str(base), str(key))},
                    )
                    sink.format_options = self.format_options
                    results[key] = sink.writeFrame(frame)
                else:
                    results[key] = self.writeFrame(frame)
            return results
        return self.writeFrame(frame_or_collection)

    def _write_df(self, df: DataFrame) -> None:
        ctx = self._ctx
        fmt = self.format or self.options.get("format")
        if self.catalog_database and self.catalog_table:
            ctx._write_to_catalog_sink(
                df,
                self.catalog_database,
                self.catalog_table,
                self.connection_type,
                self.options,
                fmt,
                self.format_options,
            )
            return
        ctx._write_options(df, self.connection_type, self.options, fmt, self.format_options)


# -- the readers and writers scripts call ---------------------------------------------------------------
class DynamicFrameReader:
    """``glueContext.create_dynamic_frame``."""

    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_rdd(self, data: Any, name: str, schema: Any = None, sampleRatio: float | None = None) -> Any:  # noqa: N803
        return self._glue_context.create_dynamic_frame_from_rdd(data, name, schema, sampleRatio)

    def from_options(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> Any:
        return self._glue_context.create_dynamic_frame_from_options(
            connection_type,
            connection_options,
            format,
            format_options,
            transformation_ctx,
            push_down_predicate,
            **kwargs,
        )

    def from_catalog(
        self,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        database = _database_arg(database, kwargs)
        return self._glue_context.create_dynamic_frame_from_catalog(
            database,
            table_name,
            redshift_tmp_dir,
            transformation_ctx,
            push_down_predicate,
            additional_options,
            catalog_id,
            **kwargs,
        )


class DataFrameReader:
    """``glueContext.create_data_frame``: the same sources, as Spark DataFrames."""

    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_options(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> DataFrame:
        return self._glue_context.create_data_frame_from_options(
            connection_type,
            connection_options,
            format,
            format_options,
            transformation_ctx,
            push_down_predicate,
            **kwargs,
        )

    def from_catalog(
        self,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> DataFrame:
        database = _database_arg(database, kwargs)
        return self._glue_context.create_data_frame_from_catalog(
            database,
            table_name,
            redshift_tmp_dir,
            transformation_ctx,
            push_down_predicate,
            additional_options,
            catalog_id,
            **kwargs,
        )


class DynamicFrameWriter:
    """``glueContext.write_dynamic_frame``."""

    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_options(
        self,
        frame: Any,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
    ) -> Any:
        return self._glue_context.write_from_options(
            frame, connection_type, connection_options, format, format_options, transformation_ctx
        )

    def from_catalog(
        self,
        frame: Any,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        database = _database_arg(database, kwargs)
        return self._glue_context.write_dynamic_frame_from_catalog(
            frame,
            database,
            table_name,
            redshift_tmp_dir,
            transformation_ctx,
            additional_options,
            catalog_id,
            **kwargs,
        )

    def from_jdbc_conf(
        self,
        frame: Any,
        catalog_connection: str,
        connection_options: Mapping[str, Any] | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
    ) -> Any:
        return self._glue_context.write_dynamic_frame_from_jdbc_conf(
            frame, catalog_connection, connection_options, redshift_tmp_dir, transformation_ctx
        )


class DataFrameWriter:
    """``glueContext.write_data_frame``."""

    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_catalog(
        self,
        frame: DataFrame,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> DataFrame:
        database = _database_arg(database, kwargs)
        self._glue_context._write_catalog(frame, database, table_name, additional_options or {}, kwargs)
        return frame

    def from_options(
        self,
        frame: DataFrame,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
    ) -> DataFrame:
        self._glue_context._write_options(frame, connection_type, connection_options or {}, format, format_options)
        return frame


def _database_arg(database: str | None, kwargs: dict[str, Any]) -> str:
    """Glue's ``database`` / ``name_space`` rule: exactly one of them."""
    name_space = kwargs.pop("name_space", None)
    if database is not None and name_space is not None:
        raise GlueCatalogError("Pass either database or name_space, not both")
    chosen = database if database is not None else name_space
    if not chosen:
        raise GlueCatalogError("A database (or name_space) is required")
    return str(chosen)


# -- GlueContext -------------------------------------------------------------------------------------------
class GlueContext(SQLContext):
    """``GlueContext(sparkContext=None, **options)``: a SparkContext, a SparkSession or nothing (the active
    session, created when there is none). Options: ``minPartitions`` and ``targetPartitions`` (a frame read
    with fewer than ``minPartitions`` partitions is repartitioned to ``targetPartitions``; only applied
    when given)."""

    def __init__(self, sparkContext: SparkContext | SparkSession | None = None, **options: Any) -> None:  # noqa: N803
        if isinstance(sparkContext, SparkSession):
            session = sparkContext
        elif isinstance(sparkContext, SparkContext) or sparkContext is None:
            session = SparkSession.builder.getOrCreate()
        else:
            raise GlueContextError(
                f"GlueContext takes a SparkContext, a SparkSession or nothing, got {type(sparkContext).__name__}"
            )
        super().__init__(session.sparkContext, session)
        self.spark_session = session
        self.sparkSession = session
        self._glue_options = dict(options)
        self.min_partitions = _optional_int(options.get("minPartitions"), "minPartitions")
        self.target_partitions = _optional_int(options.get("targetPartitions"), "targetPartitions")
        self.object_store_root = self._configure_object_store()
        self._configure_python()
        self.create_dynamic_frame = DynamicFrameReader(self)
        self.create_data_frame = DataFrameReader(self)
        self.write_dynamic_frame = DynamicFrameWriter(self)
        self.write_data_frame = DataFrameWriter(self)
        #: ``(database, table) -> gluetypes.StructType``: what ``resolveChoice(choice="match_catalog")`` uses.
        self.catalog_schema_provider: Callable[[str, str], Any] = self.get_catalog_schema_as_glue_schema
        self.current_job: Any = None
        self._lake: LakeClient | None = None

    # -- environment ---------------------------------------------------------------------------------------
    def _configure_object_store(self) -> Path:
        hconf = self._jsc.hadoopConfiguration()
        root = hconf.get(ROOT_KEY)
        if not root:
            root = os.environ.get("LAKEFORGE_S3_ROOT") or str(get_settings().object_store_root)
            hconf.set(ROOT_KEY, root)
        jvm = self._jvm
        assert jvm is not None
        jvm.java.lang.System.setProperty(ROOT_PROPERTY, root)
        return Path(root)

    def _configure_python(self) -> None:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if getattr(self._sc, "pythonExec", None) in (None, "python3", "python"):
            self._sc.pythonExec = os.environ["PYSPARK_PYTHON"]

    def _attach_job(self, job: Any) -> None:
        self.current_job = job

    @property
    def catalog_name(self) -> str:
        return get_settings().catalog.name

    def catalog_uri(self) -> str:
        """Where the lake catalog is: the Spark catalog's ``uri``, else lakeforge's settings."""
        uri = self.spark_session.conf.get(f"spark.sql.catalog.{self.catalog_name}.uri", None)
        return str(uri or get_settings().resolved_catalog_uri)

    def lake_client(self) -> LakeClient:
        """The catalog client for raw datasets and partitions (authenticated like the Spark catalog)."""
        if self._lake is None:
            from catalog.client import LakeClient

            self._lake = LakeClient(self.catalog_uri(), token=self._catalog_token())
        return self._lake

    def _catalog_token(self) -> str | None:
        conf = self.spark_session.conf
        prefix = f"spark.sql.catalog.{self.catalog_name}"
        token = conf.get(f"{prefix}.token", None)
        if token:
            return str(token)
        credential = conf.get(f"{prefix}.credential", None)
        if not credential:
            return None
        import httpx

        client_id, _, secret = str(credential).partition(":")
        response = httpx.post(
            f"{self.catalog_uri()}/v1/oauth/tokens",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": "catalog",
            },
            timeout=30,
        )
        if response.status_code != 200:
            raise GlueCatalogError(f"The catalog refused the credential: HTTP {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def get_logger(self) -> GlueLogger:
        return GlueLogger()

    # -- object store helpers --------------------------------------------------------------------------------
    def local_path(self, location: str) -> Path:
        """The local file behind an ``s3://``/``file:`` location."""
        return storage.local_path(location, self.object_store_root)

    # -- frames --------------------------------------------------------------------------------------------
    def _to_dynamic(self, df: DataFrame, name: str) -> Any:
        return _dynamic_frame_class().fromDF(df, self, name or "")

    def _errors_frame(self, frame: Any) -> Any:
        name = f"{_frame_name(frame)}_errors"
        if hasattr(frame, "errorsAsDynamicFrame"):
            errors_frame = frame.errorsAsDynamicFrame()
            if hasattr(errors_frame, "name"):
                try:
                    errors_frame.name = name
                except AttributeError:
                    pass
            return errors_frame
        if isinstance(frame, DataFrame):
            return frame.limit(0)
        return self._to_dynamic(self.spark_session.createDataFrame([], StructType([])), name)

    def _empty(self, schema: StructType | None = None) -> DataFrame:
        return self.spark_session.createDataFrame([], schema or StructType([]))

    def _size(
        self, df: DataFrame, total_bytes: int, options: Mapping[str, Any], kwargs: Mapping[str, Any]
    ) -> DataFrame:
        group_size = options.get("groupSize")
        group_files = str(options.get("groupFiles", "")).strip()
        if group_size is not None or group_files == "inPartition":
            size = _optional_int(group_size, "groupSize") or 128 * 1024 * 1024
            if size <= 0:
                raise GlueContextError(f"groupSize must be a positive number of bytes, got {group_size!r}")
            target = max(1, math.ceil(total_bytes / size))
            if df.rdd.getNumPartitions() > target:
                df = df.coalesce(target)
        min_parts = _optional_int(kwargs.get("minPartitions"), "minPartitions") or self.min_partitions
        target_parts = _optional_int(kwargs.get("targetPartitions"), "targetPartitions") or self.target_partitions
        if min_parts and df.rdd.getNumPartitions() < min_parts:
            df = df.repartition(target_parts or min_parts)
        elif target_parts and not min_parts and df.rdd.getNumPartitions() != target_parts:
            df = df.repartition(target_parts)
        return df

    # -- reading: from_options -----------------------------------------------------------------------------
    def create_dynamic_frame_from_rdd(
        self, data: Any, name: str, schema: Any = None, sample_ratio: float | None = None
    ) -> Any:
        df = self.spark_session.createDataFrame(data, schema, sample_ratio)
        return self._to_dynamic(df, name)

    def create_dynamic_frame_from_options(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> Any:
        source = self.getSource(
            connection_type, format, transformation_ctx, push_down_predicate, **dict(connection_options or {})
        )
        if format:
            source.setFormat(format, **dict(format_options or {}))
        return source.getFrame(**kwargs)

    def create_data_frame_from_options(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **kwargs: Any,
    ) -> DataFrame:
        source = self.getSource(
            connection_type, format, transformation_ctx, push_down_predicate, **dict(connection_options or {})
        )
        if format:
            source.setFormat(format, **dict(format_options or {}))
        return source.getDataFrame(**kwargs)

    def getSource(  # noqa: N802
        self,
        connection_type: str,
        format: str | None = None,  # noqa: A002
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **options: Any,
    ) -> DataSource:
        from jobs.glue import streaming

        streaming.check_connection(connection_type)
        return DataSource(self, connection_type, format, transformation_ctx, push_down_predicate, options)

    def getStreamingSource(  # noqa: N802
        self,
        connection_type: str,
        format: str | None = None,  # noqa: A002
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        **options: Any,
    ) -> DataSource:
        """``getSource`` of a stream: ``getDataFrame()`` returns a streaming DataFrame."""
        options = {**options, "streaming": True}
        return self.getSource(connection_type, format, transformation_ctx, push_down_predicate, **options)

    def forEachBatch(  # noqa: N802
        self, frame: Any, batch_function: Callable[[DataFrame, int], Any], options: Mapping[str, Any] | None = None
    ) -> Any:
        """Run ``batch_function(data_frame, batch_id)`` on each micro-batch (``streaming.for_each_batch``)."""
        from jobs.glue import streaming

        return streaming.for_each_batch(self, frame, batch_function, options)

    def getSampleStreamingDynamicFrame(  # noqa: N802
        self, frame: Any, options: Mapping[str, Any] | None = None, batch_function: Any = None
    ) -> Any:
        from jobs.glue import streaming

        return streaming.sample_stream(self, frame, options, batch_function)

    def _read_options(
        self,
        connection_type: str,
        options: Mapping[str, Any],
        fmt: str | None,
        format_options: Mapping[str, Any],
        push_down_predicate: str,
        *,
        dynamic: bool,
        transformation_ctx: str = "",
        **kwargs: Any,
    ) -> DataFrame:
        ctype = (connection_type or "").lower()
        from jobs.glue import streaming

        if streaming.is_streaming_source(ctype, options):
            return streaming.read_stream(self, ctype, options, fmt, format_options, dynamic=dynamic)
        if ctype in jdbc.JDBC_CONNECTION_TYPES:
            df = jdbc.read(self.spark_session, ctype, options)
            df = bookmarks.track_jdbc(self, transformation_ctx, ctype, options, df)
            if push_down_predicate:
                df = df.where(push_down_predicate)
            return self._size(df, 0, {}, kwargs)
        if ctype in ("parquet", "orc"):
            fmt, ctype = ctype, "s3"
        if ctype == "delta" or (fmt or "").lower() == "delta":
            return self._read_delta(options, push_down_predicate)
        if ctype not in FILE_CONNECTIONS:
            raise GlueContextError(
                f"Unsupported connection_type {connection_type!r}: use s3, file, delta, "
                f"{', '.join(jdbc.JDBC_CONNECTION_TYPES)} (or from_catalog for catalog tables)"
            )
        fmt = _check_format(fmt, READ_FORMATS, "read")
        paths = _as_list(options.get("paths") or options.get("path"))
        if not paths:
            raise GlueContextError(f"connection_type {connection_type!r} needs connection_options['paths']")
        mark = bookmarks.track_files(self, transformation_ctx, options)
        files = storage.list_files(
            paths,
            self.object_store_root,
            recurse=_truthy(options.get("recurse", False)),
            exclusions=options.get("exclusions"),
        )
        if push_down_predicate:
            files = self._prune_hive_files(files, paths, push_down_predicate)
        files = mark.select(files)
        df = self._load_files(files, fmt, format_options, dynamic=dynamic)
        return self._size(df, sum(f.size for f in files), options, kwargs)

    def _load_files(
        self,
        files: Sequence[StoredFile],
        fmt: str,
        format_options: Mapping[str, Any],
        *,
        dynamic: bool,
        schema: StructType | None = None,
    ) -> DataFrame:
        """Read the listed files in one scan: per-value typed (DynamicFrame) or by Spark (DataFrame)."""
        fmt = fmt.lower()
        if not files:
            return self._empty(schema)
        uris = [f.uri for f in files]
        if fmt in _NATIVE:
            reader = self.spark_session.read.format(_NATIVE[fmt])
            for key, value in format_options.items():
                if key not in ("useGlueParquetWriter", "compression", "blockSize", "pageSize"):
                    reader = reader.option(key, str(value))
            return reader.load(uris)
        if dynamic:
            from jobs.glue import inference

            local = [str(f.local) for f in files]
            reader_fn = inference.read_json if fmt == "json" else inference.read_csv
            return reader_fn(self.spark_session, local, dict(format_options))
        return self._spark_text_format(uris, fmt, format_options, schema)

    def _spark_text_format(
        self, uris: list[str], fmt: str, format_options: Mapping[str, Any], schema: StructType | None
    ) -> DataFrame:
        opts = dict(format_options)
        reader = self.spark_session.read
        if schema is not None and len(schema.fields):
            reader = reader.schema(schema)
        if fmt == "json":
            if _truthy(opts.pop("multiLine", opts.pop("multiline", False))):
                reader = reader.option("multiLine", "true")
            opts.pop("jsonPath", None)
            for key, value in opts.items():
                reader = reader.option(key, str(value))
            return reader.json(uris)
        header = _truthy(opts.pop("withHeader", False))
        skip_first = _truthy(opts.pop("skipFirst", False))
        reader = reader.option("header", "true" if header or skip_first else "false")
        if "separator" in opts:
            reader = reader.option("sep", str(opts.pop("separator")))
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
        df = reader.csv(uris)
        if not header and (schema is None or not len(schema.fields)):
            df = df.toDF(*[f"col{i}" for i in range(len(df.columns))])
        return df

    def _prune_hive_files(self, files: list[StoredFile], bases: Sequence[str], predicate: str) -> list[StoredFile]:
        """Keep the files whose ``key=value`` directories satisfy the predicate (values as strings)."""
        values_of: list[dict[str, str | None]] = []
        for stored in files:
            base = next((b for b in bases if stored.uri.startswith(b.rstrip("/") + "/")), None)
            relative = stored.uri[len(base.rstrip("/")) + 1 :] if base else ""
            found: dict[str, str | None] = {}
            for part in relative.split("/")[:-1]:
                if "=" in part:
                    key, _, value = part.partition("=")
                    found[key] = None if value == HIVE_NULL else value
            values_of.append(found)
        keys = sorted({k for v in values_of for k in v})
        if not keys:
            raise GlueContextError(
                f"push_down_predicate {predicate!r} given, but the files have no key=value directories to prune"
            )
        keep = self._matching_rows(
            [[v.get(k) for k in keys] for v in values_of], keys, ["string"] * len(keys), predicate
        )
        return [f for f, ok in zip(files, keep, strict=True) if ok]

    def _matching_rows(
        self, rows: Sequence[Sequence[str | None]], keys: Sequence[str], types: Sequence[str], predicate: str
    ) -> list[bool]:
        """Evaluate a Spark SQL predicate over partition values (strings cast to their types) in Spark."""
        if not rows:
            return []
        schema = StructType(
            [StructField("__row", StringType())] + [StructField(f"__k{i}", StringType()) for i in range(len(keys))]
        )
        data = [[str(i), *row] for i, row in enumerate(rows)]
        table = self.spark_session.createDataFrame(data, schema)
        typed = table.select(
            "__row", *[F.col(f"__k{i}").cast(t).alias(k) for i, (k, t) in enumerate(zip(keys, types, strict=True))]
        )
        try:
            selected = {r["__row"] for r in typed.where(predicate).select("__row").collect()}
        except Exception as exc:
            raise GlueContextError(
                f"Invalid push_down_predicate {predicate!r} over the partition keys {', '.join(keys)}: {exc}"
            ) from exc
        return [str(i) in selected for i in range(len(rows))]

    def _read_delta(self, options: Mapping[str, Any], predicate: str) -> DataFrame:
        from deltalake import DeltaTable
        from pyspark.sql.pandas.types import from_arrow_schema

        path = str(options.get("path") or (_as_list(options.get("paths")) or [""])[0])
        if not path:
            raise GlueContextError("A delta source needs connection_options['path']")
        table = DeltaTable(str(self.local_path(path))).to_pyarrow_table()
        schema = from_arrow_schema(table.schema)
        df = self.spark_session.createDataFrame(table.to_pandas(), schema) if table.num_rows else self._empty(schema)
        return df.where(predicate) if predicate else df

    # -- reading: from_catalog -----------------------------------------------------------------------------
    def create_dynamic_frame_from_catalog(
        self,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        database = _database_arg(database, kwargs)
        df = self._read_catalog(
            database, table_name, push_down_predicate, additional_options or {}, True, kwargs, transformation_ctx
        )
        return self._to_dynamic(df, transformation_ctx or str(table_name))

    def create_data_frame_from_catalog(
        self,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        push_down_predicate: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> DataFrame:
        database = _database_arg(database, kwargs)
        return self._read_catalog(
            database, table_name, push_down_predicate, additional_options or {}, False, kwargs, transformation_ctx
        )

    def _iceberg_ident(self, database: str, table: str) -> str:
        levels = [_quote(level) for level in database.split(".")]
        return ".".join([_quote(self.catalog_name), *levels, _quote(table)])

    def _lookup(self, database: str, table: str | None) -> tuple[str, Dataset | None]:
        """``("dataset", dataset)``, ``("iceberg", None)`` or ``("missing", None)``."""
        if not table:
            raise GlueCatalogError("A table_name is required")
        import httpx

        try:
            return "dataset", self.lake_client().get_dataset(database, table)
        except (catalog_errors.NoSuchDatasetError, catalog_errors.NoSuchNamespaceError):
            pass
        except httpx.TransportError as exc:
            raise GlueCatalogError(
                f"Cannot reach the {self.catalog_name} catalog at {self.catalog_uri()} ({exc}): start it with "
                f"`lakeforge catalog serve` or set spark.sql.catalog.{self.catalog_name}.uri"
            ) from exc
        if self.spark_session.catalog.tableExists(self._iceberg_ident(database, table)):
            return "iceberg", None
        return "missing", None

    def _read_catalog(
        self,
        database: str,
        table: str | None,
        push_down_predicate: str,
        options: Mapping[str, Any],
        dynamic: bool,
        kwargs: Mapping[str, Any],
        transformation_ctx: str = "",
    ) -> DataFrame:
        kind, dataset = self._lookup(database, table)
        assert table is not None
        if kind == "missing":
            raise GlueCatalogError(
                f"Entity not found: no table or dataset {database}.{table} in the {self.catalog_name} catalog "
                f"at {self.catalog_uri()}"
            )
        from jobs.glue import streaming

        if streaming.is_streaming_catalog_read(kind, dataset, options):
            return streaming.read_catalog_stream(self, database, table, kind, dataset, options, dynamic=dynamic)
        catalog_predicate = str(options.get("catalogPartitionPredicate") or "")
        if kind == "iceberg":
            reader = self.spark_session.read
            for key, value in options.items():
                if key in ("snapshot-id", "as-of-timestamp", "branch", "tag", "split-size", "lookback"):
                    reader = reader.option(key, str(value))
            df = reader.table(self._iceberg_ident(database, table))
            for predicate in (catalog_predicate, push_down_predicate):
                if predicate:
                    df = df.where(predicate)
            return self._size(df, 0, options, kwargs)
        assert dataset is not None
        mark = bookmarks.track_files(self, transformation_ctx, options)
        return self._read_dataset(
            database, table, dataset, push_down_predicate, catalog_predicate, options, dynamic, kwargs, mark
        )

    def _read_dataset(
        self,
        database: str,
        table: str,
        dataset: Dataset,
        push_down_predicate: str,
        catalog_predicate: str,
        options: Mapping[str, Any],
        dynamic: bool,
        kwargs: Mapping[str, Any],
        mark: bookmarks.FileBookmark,
    ) -> DataFrame:
        definition = dataset.definition
        fmt = _check_format(definition.format, READ_FORMATS, "read")
        format_options = {
            **_catalog_format_options(definition.format, definition.properties),
            **dict(options.get("format_options") or {}),
        }
        recurse = _truthy(options.get("recurse", True))
        exclusions = options.get("exclusions")
        data_schema = None if dynamic else _ddl_schema(self.spark_session, definition.columns)
        keys = definition.partition_keys
        if not keys:
            files = mark.select(self._list_if_present([definition.location], recurse, exclusions))
            df = self._load_files(files, fmt, format_options, dynamic=dynamic, schema=data_schema)
            if push_down_predicate:
                df = df.where(push_down_predicate)
            return self._size(df, sum(f.size for f in files), options, kwargs)
        partitions = self._select_partitions(database, table, keys, push_down_predicate, catalog_predicate)
        frames: list[DataFrame] = []
        total = 0
        for partition in partitions:
            files = mark.select(self._list_if_present([partition.location], recurse, exclusions))
            if not files:
                continue
            total += sum(f.size for f in files)
            part = self._load_files(files, fmt, format_options, dynamic=dynamic, schema=data_schema)
            for key, value in zip(keys, partition.values, strict=True):
                part = part.withColumn(key.name, F.lit(value).cast(key.type))
            frames.append(part)
        log.info("%s.%s: reading %d partition(s) (%d bytes)", database, table, len(frames), total)
        if not frames:
            full = _ddl_schema(self.spark_session, [*definition.columns, *keys])
            return self._empty(full)
        return self._size(_union(frames, dynamic), total, options, kwargs)

    def _list_if_present(self, locations: Sequence[str], recurse: bool, exclusions: Any) -> list[StoredFile]:
        present = [loc for loc in locations if self.local_path(loc).exists()]
        for missing in set(locations) - set(present):
            log.warning("location %s does not exist: nothing to read there", missing)
        if not present:
            return []
        return storage.list_files(present, self.object_store_root, recurse=recurse, exclusions=exclusions)

    def _select_partitions(
        self, database: str, table: str, keys: Sequence[Any], push_down_predicate: str, catalog_predicate: str
    ) -> list[Partition]:
        """The partitions to read, pruned by the catalog before any file is listed."""
        client = self.lake_client()
        server_expression = catalog_predicate or push_down_predicate or None
        local_predicate = push_down_predicate if catalog_predicate and push_down_predicate else ""
        try:
            partitions = client.list_partitions(database, table, server_expression)
        except catalog_errors.ValidationFailedError as exc:
            if catalog_predicate:
                raise GlueCatalogError(f"Invalid catalogPartitionPredicate {catalog_predicate!r}: {exc}") from exc
            log.info(
                "push_down_predicate %r is not a catalog expression (%s): evaluating it in Spark over the "
                "partition values",
                push_down_predicate,
                exc,
            )
            partitions = client.list_partitions(database, table)
            local_predicate = push_down_predicate
        if local_predicate and partitions:
            keep = self._matching_rows(
                [p.values for p in partitions], [k.name for k in keys], [k.type for k in keys], local_predicate
            )
            partitions = [p for p, ok in zip(partitions, keep, strict=True) if ok]
        return partitions

    def get_catalog_schema_as_spark_schema(
        self, database: str, table_name: str, catalog_id: str | None = None
    ) -> StructType:
        """The catalog's schema of a table or dataset (with its partition keys, last) as a Spark schema."""
        kind, dataset = self._lookup(database, table_name)
        if kind == "iceberg":
            return self.spark_session.table(self._iceberg_ident(database, table_name)).schema
        if kind == "dataset" and dataset is not None:
            definition = dataset.definition
            return _ddl_schema(self.spark_session, [*definition.columns, *definition.partition_keys])
        raise GlueCatalogError(f"Entity not found: no table or dataset {database}.{table_name}")

    def get_catalog_schema_as_glue_schema(self, database: str, table_name: str) -> Any:
        """The catalog schema as ``gluetypes.StructType`` (the ``catalog_schema_provider``)."""
        from jobs.glue import gluetypes

        return gluetypes.from_spark_schema(self.get_catalog_schema_as_spark_schema(database, table_name))

    # -- writing -------------------------------------------------------------------------------------------
    def getSink(  # noqa: N802
        self,
        connection_type: str,
        format: str | None = None,  # noqa: A002
        transformation_ctx: str = "",
        **options: Any,
    ) -> DataSink:
        return DataSink(self, connection_type, format, transformation_ctx, options)

    def write_dynamic_frame_from_options(
        self,
        frame: Any,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
    ) -> Any:
        return self.write_from_options(
            frame, connection_type, connection_options, format, format_options, transformation_ctx
        )

    def write_from_options(
        self,
        frame_or_dfc: Any,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        **kwargs: Any,
    ) -> Any:
        sink = self.getSink(connection_type, format, transformation_ctx, **dict(connection_options or {}))
        if format:
            sink.setFormat(format, **dict(format_options or {}))
        return sink.write(frame_or_dfc)

    def write_dynamic_frame_from_catalog(
        self,
        frame: Any,
        database: str | None = None,
        table_name: str | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
        additional_options: Mapping[str, Any] | None = None,
        catalog_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        database = _database_arg(database, kwargs)
        self._write_catalog(_frame_df(frame), database, table_name, additional_options or {}, kwargs)
        return self._errors_frame(frame)

    def write_dynamic_frame_from_jdbc_conf(
        self,
        frame: Any,
        catalog_connection: str,
        connection_options: Mapping[str, Any] | None = None,
        redshift_tmp_dir: str = "",
        transformation_ctx: str = "",
    ) -> Any:
        conn = jdbc.get_connection(catalog_connection)
        options = {**dict(connection_options or {}), "connectionName": catalog_connection}
        jdbc.write(self.spark_session, _frame_df(frame), conn["vendor"], options)
        return self._errors_frame(frame)

    def extract_jdbc_conf(self, connection_name: str, catalog_id: str | None = None) -> dict[str, Any]:
        return jdbc.extract_jdbc_conf(connection_name)

    def register_connection(
        self, name: str, url: str, user: str | None = None, password: str | None = None, **extra: Any
    ) -> Path:
        """Add a named JDBC connection (lakeforge's stand-in for a Glue catalog Connection)."""
        return jdbc.register_connection(name, url, user, password, **extra)

    def _write_options(
        self,
        df: DataFrame,
        connection_type: str,
        options: Mapping[str, Any],
        fmt: str | None,
        format_options: Mapping[str, Any] | None,
    ) -> None:
        ctype = (connection_type or "").lower()
        format_options = dict(format_options or {})
        if ctype in jdbc.JDBC_CONNECTION_TYPES:
            jdbc.write(self.spark_session, df, ctype, options)
            return
        if ctype in STREAMING_CONNECTIONS:
            from jobs.glue import streaming

            raise streaming.unavailable_error(ctype)
        if ctype == "delta" or (fmt or "").lower() == "delta":
            self._write_delta(df, options, format_options)
            return
        if ctype not in FILE_CONNECTIONS:
            raise GlueContextError(
                f"Unsupported sink connection_type {connection_type!r}: use s3, file, delta or "
                f"{', '.join(jdbc.JDBC_CONNECTION_TYPES)} (or from_catalog)"
            )
        path = options.get("path")
        if not path:
            raise GlueContextError(f"An {ctype} sink needs connection_options['path']")
        self._write_files(
            df,
            str(path),
            _check_format(fmt, WRITE_FORMATS, "write"),
            format_options,
            _as_list(options.get("partitionKeys")),
            options.get("compression") or format_options.get("compression"),
        )

    def _write_files(
        self,
        df: DataFrame,
        path: str,
        fmt: str,
        format_options: Mapping[str, Any],
        partition_keys: Sequence[str],
        compression: Any,
    ) -> None:
        missing = [k for k in partition_keys if k not in df.columns]
        if missing:
            raise GlueContextError(f"partitionKeys {missing} are not columns of the frame ({', '.join(df.columns)})")
        writer = df.write.mode("append")
        if partition_keys:
            writer = writer.partitionBy(*partition_keys)
        if compression:
            writer = writer.option("compression", str(compression))
        opts = dict(format_options)
        if fmt == "csv":
            writer = writer.option("header", "true" if _truthy(opts.get("writeHeader", True)) else "false")
            if "separator" in opts:
                writer = writer.option("sep", str(opts["separator"]))
            if "quoteChar" in opts:
                quote = str(opts["quoteChar"])
                writer = writer.option("quote", "" if quote == "-1" else quote)
            if "escaper" in opts:
                writer = writer.option("escape", str(opts["escaper"]))
            writer.csv(path)
        elif fmt == "json":
            writer.json(path)
        else:
            writer.format(_NATIVE[fmt]).save(path)
        log.info("wrote %s to %s", fmt, path)

    def _write_delta(self, df: DataFrame, options: Mapping[str, Any], format_options: Mapping[str, Any]) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake
        from pyspark.sql.pandas.types import to_arrow_schema

        path = options.get("path")
        if not path:
            raise GlueContextError("A delta sink needs connection_options['path']")
        mode = str(options.get("mode") or format_options.get("mode") or "append").lower()
        if mode not in ("append", "overwrite"):
            raise GlueContextError(f"Delta write mode must be append or overwrite, got {mode!r}")
        keys = _as_list(options.get("partitionKeys") or format_options.get("partitionKeys"))
        batches = df._collect_as_arrow()
        table = (
            pa.Table.from_batches(batches, schema=to_arrow_schema(df.schema))
            if batches
            else (to_arrow_schema(df.schema).empty_table())
        )
        target = self.local_path(str(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "overwrite":
            write_deltalake(str(target), table, mode="overwrite", partition_by=keys or None)
        else:
            write_deltalake(str(target), table, mode="append", partition_by=keys or None)
        log.info("wrote %d rows to delta table %s (%s)", table.num_rows, path, mode)

    # -- writing to the catalog ----------------------------------------------------------------------------
    def _write_catalog(
        self,
        df: DataFrame,
        database: str,
        table: str | None,
        options: Mapping[str, Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        """``write_dynamic_frame.from_catalog``: append to an Iceberg table or a raw dataset."""
        kind, dataset = self._lookup(database, table)
        assert table is not None
        update = _truthy(options.get("enableUpdateCatalog", False))
        behavior = _update_behavior(options)
        keys = _as_list(options.get("partitionKeys"))
        if kind == "iceberg":
            self._append_iceberg(df, database, table, update and behavior == "UPDATE_IN_DATABASE")
        elif kind == "dataset":
            assert dataset is not None
            self._write_dataset(
                df, database, table, dataset, None, None, {}, keys, update, behavior, options.get("compression")
            )
        elif update:
            self._create_iceberg(df, database, table, keys)
        else:
            raise GlueCatalogError(
                f"Entity not found: no table or dataset {database}.{table} in the {self.catalog_name} catalog; pass "
                "additional_options={'enableUpdateCatalog': True} to create it as an Iceberg table"
            )

    def _write_to_catalog_sink(
        self,
        df: DataFrame,
        database: str,
        table: str,
        connection_type: str,
        options: Mapping[str, Any],
        fmt: str | None,
        format_options: Mapping[str, Any],
    ) -> None:
        """A sink with ``setCatalogInfo``: the Glue Studio pattern (files + catalog entry + partitions)."""
        update = _truthy(options.get("enableUpdateCatalog", False))
        behavior = _update_behavior(options)
        keys = _as_list(options.get("partitionKeys"))
        path = options.get("path")
        if not update:
            if not path:
                kind, dataset = self._lookup(database, table)
                if kind == "dataset" and dataset is not None:
                    self._write_dataset(
                        df,
                        database,
                        table,
                        dataset,
                        None,
                        fmt,
                        format_options,
                        keys,
                        False,
                        behavior,
                        options.get("compression"),
                    )
                    return
                raise GlueContextError("A sink without enableUpdateCatalog needs a path")
            self._write_options(df, connection_type, options, fmt, format_options)
            return
        kind, dataset = self._lookup(database, table)
        if kind == "iceberg":
            if path:
                log.warning(
                    "%s.%s is an Iceberg table: appending to it; the sink path %s is not used", database, table, path
                )
            self._append_iceberg(df, database, table, behavior == "UPDATE_IN_DATABASE")
            return
        self._write_dataset(
            df,
            database,
            table,
            dataset,
            str(path) if path else None,
            fmt,
            format_options,
            keys,
            True,
            behavior,
            options.get("compression"),
        )

    def _write_dataset(
        self,
        df: DataFrame,
        database: str,
        table: str,
        dataset: Dataset | None,
        path: str | None,
        fmt: str | None,
        format_options: Mapping[str, Any],
        partition_keys: Sequence[str],
        update_catalog: bool,
        behavior: str,
        compression: Any,
    ) -> None:
        """Write a raw dataset's files, create/update its definition, register its partitions."""
        from catalog.datasets import DatasetColumn, DatasetDefinition

        client = self.lake_client()
        if dataset is not None:
            definition = dataset.definition
            location = definition.location
            if path and path.rstrip("/") != location.rstrip("/"):
                raise GlueCatalogError(
                    f"{database}.{table} lives at {location}; the sink path {path} differs (write to the "
                    "dataset's location or to another table)"
                )
            keys = [k.name for k in definition.partition_keys]
            if partition_keys and [k.lower() for k in partition_keys] != [k.lower() for k in keys]:
                raise GlueCatalogError(
                    f"{database}.{table} is partitioned by {keys}; "
                    f"the sink asked for partitionKeys {list(partition_keys)}"
                )
            stored_format = "parquet" if (fmt or "").lower() == "glueparquet" else (fmt or definition.format).lower()
            if fmt and stored_format != definition.format:
                raise GlueCatalogError(f"{database}.{table} holds {definition.format} files; the sink asked for {fmt}")
            write_format = definition.format
            format_options = {**_catalog_format_options(definition.format, definition.properties), **format_options}
            if write_format == "csv":
                format_options.setdefault(
                    "writeHeader", "withHeader" in format_options and _truthy(format_options["withHeader"])
                )
        else:
            if not path:
                raise GlueCatalogError(f"Creating {database}.{table} needs the sink's path")
            location = path
            keys = list(partition_keys)
            write_format = "parquet" if (fmt or "glueparquet").lower() == "glueparquet" else str(fmt).lower()
        _check_format(write_format, WRITE_FORMATS, "write")
        self._write_files(df, location, write_format, format_options, keys, compression)
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        key_set = {k.lower() for k in keys}
        if dataset is None or (update_catalog and behavior == "UPDATE_IN_DATABASE"):
            properties = dict(dataset.definition.properties) if dataset else {}
            properties.setdefault("classification", write_format)
            if write_format == "csv":
                properties.setdefault("delimiter", str(format_options.get("separator", ",")))
                if _truthy(format_options.get("writeHeader", True)):
                    properties.setdefault("skip.header.line.count", "1")
            new_definition = DatasetDefinition.model_validate(
                {
                    "format": write_format,
                    "location": location,
                    "columns": [
                        DatasetColumn(name=f.name, type=types[f.name])
                        for f in df.schema.fields
                        if f.name.lower() not in key_set
                    ],
                    "partition-keys": [DatasetColumn(name=k, type=types[k]) for k in keys],
                    "properties": properties,
                    "description": dataset.definition.description if dataset else None,
                }
            )
            if dataset is None:
                client.create_namespace(database, exist_ok=True)
            result = client.put_dataset(database, table, new_definition)
            log.info(
                "catalog %s.%s: %s",
                database,
                table,
                "created" if result.created else "updated" if result.changed else "unchanged",
            )
        if keys:
            self._register_partitions(database, table, location, keys)

    def _register_partitions(self, database: str, table: str, location: str, keys: Sequence[str]) -> None:
        from urllib.parse import unquote

        found = storage.hive_partition_dirs(self.local_path(location), keys)
        if not found:
            return
        partitions = []
        for raw_values, relative in found:
            values = [None if v == HIVE_NULL else unquote(v) for v in raw_values]
            partitions.append((values, storage.join(location, relative)))
        try:
            result = self.lake_client().add_partitions(database, table, partitions)
        except catalog_errors.AlreadyExistsError as exc:
            raise GlueCatalogError(
                f"{database}.{table}: a partition is registered at another location than the one written: {exc}"
            ) from exc
        log.info(
            "catalog %s.%s: %d partition(s) added, %d existing",
            database,
            table,
            len(result.added),
            len(result.existing),
        )

    def _append_iceberg(self, df: DataFrame, database: str, table: str, update_schema: bool) -> None:
        """Append by column name; table columns the frame lacks are written as nulls (as Glue's sinks do)."""
        ident = self._iceberg_ident(database, table)
        schema = self.spark_session.table(ident).schema
        existing = {f.name.lower() for f in schema.fields}
        new = [f for f in df.schema.fields if f.name.lower() not in existing]
        if new and update_schema:
            columns = ", ".join(f"{_quote(f.name)} {f.dataType.simpleString()}" for f in new)
            self.spark_session.sql(f"ALTER TABLE {ident} ADD COLUMNS ({columns})")
            log.info("%s: added columns %s", ident, [f.name for f in new])
            schema = self.spark_session.table(ident).schema
        elif new:
            raise GlueCatalogError(
                f"{ident} has no column(s) {[f.name for f in new]}; pass additional_options="
                "{'enableUpdateCatalog': True} to add them"
            )
        by_name = {f.name.lower(): f.name for f in df.schema.fields}
        aligned = df.select(
            *[
                F.col(_quote(by_name[f.name.lower()])).alias(f.name)
                if f.name.lower() in by_name
                else F.lit(None).cast(f.dataType).alias(f.name)
                for f in schema.fields
            ]
        )
        from jobs.glue import streaming

        append = streaming.exactly_once(
            self, database, table, lambda opts: aligned.writeTo(ident).options(**opts).append()
        )
        bookmarks.write_iceberg(self, database, table, append)
        log.info("appended to %s", ident)

    def _create_iceberg(self, df: DataFrame, database: str, table: str, keys: Sequence[str]) -> None:
        levels = ".".join(_quote(level) for level in database.split("."))
        self.spark_session.sql(f"CREATE NAMESPACE IF NOT EXISTS {_quote(self.catalog_name)}.{levels}")
        ident = self._iceberg_ident(database, table)

        def create(options: dict[str, str]) -> None:
            writer = df.writeTo(ident).using("iceberg").options(**options)
            if keys:
                writer = writer.partitionedBy(*[F.col(_quote(k)) for k in keys])
            try:
                writer.create()
            except Exception as exc:
                if "already exists" not in str(exc).lower():
                    raise
                df.writeTo(ident).options(**options).append()  # another writer created it first

        from jobs.glue import streaming

        bookmarks.write_iceberg(self, database, table, streaming.exactly_once(self, database, table, create))
        log.info("created Iceberg table %s", ident)

    # -- storage utilities ---------------------------------------------------------------------------------
    def purge_s3_path(
        self, s3_path: str, options: Mapping[str, Any] | None = None, transformation_ctx: str = ""
    ) -> None:
        """Delete the files under ``s3_path`` older than ``retentionPeriod`` hours (default 168; newer files
        are kept, 0 deletes all); ``manifestFilePath`` gets ``Success.csv`` and ``Failed.csv``."""
        options = dict(options or {})
        result = storage.purge(
            s3_path,
            self.object_store_root,
            retention_hours=float(options.get("retentionPeriod", 168)),
            exclude_storage_classes=_as_list(options.get("excludeStorageClasses")),
        )
        log.info(
            "purged %s: %d deleted, %d kept, %d failed",
            s3_path,
            len(result.deleted),
            len(result.kept),
            len(result.failed),
        )
        if options.get("manifestFilePath"):
            storage.write_manifest(str(options["manifestFilePath"]), self.object_store_root, result)

    def purge_table(
        self,
        database: str,
        table_name: str,
        options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        catalog_id: str | None = None,
    ) -> None:
        """Purge a raw dataset's files (``partitionPredicate`` limits it to matching partitions; a partition
        left without files is removed from the catalog)."""
        options = dict(options or {})
        kind, dataset = self._lookup(database, table_name)
        if kind == "iceberg":
            raise GlueCatalogError(
                f"{database}.{table_name} is an Iceberg table: deleting its files would corrupt it; use DELETE FROM "
                "and CALL lake.system.expire_snapshots / remove_orphan_files"
            )
        if kind != "dataset" or dataset is None:
            raise GlueCatalogError(f"Entity not found: no dataset {database}.{table_name}")
        retention = float(options.get("retentionPeriod", 168))
        excluded = _as_list(options.get("excludeStorageClasses"))
        combined = storage.PurgeResult([], [], [])
        definition = dataset.definition
        if definition.partition_keys:
            client = self.lake_client()
            predicate = options.get("partitionPredicate") or None
            emptied = []
            table_dir = self.local_path(definition.location)
            for partition in client.list_partitions(database, table_name, predicate):
                result = storage.purge(
                    partition.location,
                    self.object_store_root,
                    retention_hours=retention,
                    exclude_storage_classes=excluded,
                )
                _extend(combined, result)
                if not result.kept and not result.failed:
                    emptied.append(partition.values)
                    storage.remove_empty_parents(self.local_path(partition.location), table_dir)
            if emptied:
                client.delete_partitions(database, table_name, emptied)
        else:
            _extend(
                combined,
                storage.purge(
                    definition.location,
                    self.object_store_root,
                    retention_hours=retention,
                    exclude_storage_classes=excluded,
                ),
            )
        log.info("purged %s.%s: %d deleted, %d kept", database, table_name, len(combined.deleted), len(combined.kept))
        if options.get("manifestFilePath"):
            storage.write_manifest(str(options["manifestFilePath"]), self.object_store_root, combined)

    def add_ingestion_time_columns(self, dataFrame: Any, timeGranularity: str) -> Any:  # noqa: N803
        """Add ``ingest_year``, ``ingest_month``, ``ingest_day``, ``ingest_hour``, ``ingest_minute`` (zero-padded
        strings of the current time, session time zone) down to ``timeGranularity``."""
        granularity = str(timeGranularity).lower()
        if granularity not in GRANULARITIES:
            raise GlueContextError(
                f"timeGranularity must be one of {', '.join(GRANULARITIES)}, got {timeGranularity!r}"
            )
        dynamic = not isinstance(dataFrame, DataFrame)
        df = _frame_df(dataFrame) if dynamic else dataFrame
        now: Column = F.current_timestamp()
        for unit in GRANULARITIES[: GRANULARITIES.index(granularity) + 1]:
            df = df.withColumn(f"ingest_{unit}", F.date_format(now, _INGEST_FORMATS[unit]))
        return self._to_dynamic(df, _frame_name(dataFrame)) if dynamic else df


# -- module helpers ------------------------------------------------------------------------------------------
def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GlueContextError(f"{name} must be an integer, got {value!r}") from None


def _check_format(fmt: str | None, allowed: Sequence[str], what: str) -> str:
    if not fmt:
        raise GlueContextError(f"A format is required to {what} files: one of {', '.join(allowed)}")
    lowered = fmt.lower()
    if lowered not in allowed:
        raise GlueContextError(f"Unsupported format {fmt!r} to {what}: one of {', '.join(allowed)}")
    return lowered


def _update_behavior(options: Mapping[str, Any]) -> str:
    behavior = str(options.get("updateBehavior") or "UPDATE_IN_DATABASE").upper()
    if behavior not in UPDATE_BEHAVIORS:
        raise GlueContextError(f"updateBehavior must be one of {', '.join(UPDATE_BEHAVIORS)}, got {behavior!r}")
    return behavior


def _catalog_format_options(fmt: str, properties: Mapping[str, str]) -> dict[str, Any]:
    """Glue format options from a dataset's table properties (what a crawler records)."""
    props = {k.lower(): v for k, v in properties.items()}
    options: dict[str, Any] = {}
    if fmt == "csv":
        for key in ("delimiter", "separatorchar", "field.delim", "separator"):
            if props.get(key):
                options["separator"] = props[key]
                break
        header = (
            props.get("skip.header.line.count") == "1"
            or _truthy(props.get("header", "false"))
            or _truthy(props.get("withheader", "false"))
        )
        options["withHeader"] = header
        if props.get("quotechar"):
            options["quoteChar"] = props["quotechar"]
        if props.get("escapechar"):
            options["escaper"] = props["escapechar"]
    elif fmt == "json":
        if props.get("jsonpath"):
            options["jsonPath"] = props["jsonpath"]
        if _truthy(props.get("multiline", "false")):
            options["multiLine"] = True
    return options


def _ddl_schema(spark: SparkSession, columns: Sequence[Any]) -> StructType:
    if not columns:
        return StructType([])
    ddl = ", ".join(f"{_quote(c.name)} {c.type}" for c in columns)
    parsed = spark._jsparkSession.sessionState().sqlParser().parseTableSchema(ddl)
    return StructType.fromJson(json.loads(parsed.json()))


def _union(frames: list[DataFrame], dynamic: bool) -> DataFrame:
    """One frame of the partitions' frames: for DynamicFrames with Glue's schema merge (a type conflict
    between partitions becomes a choice), for DataFrames by column name."""
    if dynamic:
        from jobs.glue.ops.structure import union

        return functools.reduce(union, frames)
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def _extend(total: storage.PurgeResult, part: storage.PurgeResult) -> None:
    total.deleted.extend(part.deleted)
    total.kept.extend(part.kept)
    total.failed.extend(part.failed)
