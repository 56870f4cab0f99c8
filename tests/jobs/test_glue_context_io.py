"""GlueContext's sources and sinks against the lake: the object store (``s3://``), the catalog's Iceberg
tables and raw datasets, JDBC (SQLite and PostgreSQL), Delta, purges and ingestion-time columns."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame

from catalog.client import LakeClient
from catalog.datasets import DatasetDefinition
from jobs.glue import jdbc
from jobs.glue.context import GlueCatalogError, GlueContext, GlueContextError
from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures
from tests.postgres import PostgresServer

pytestmark = pytest.mark.spark


def _write(path: Path, text: str, age_hours: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if age_hours:
        stamp = time.time() - age_hours * 3600
        os.utime(path, (stamp, stamp))
    return path


def _rows(df: DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r[c] for c in cols) for r in df.collect())


def _dynamic_frame_class() -> Any:
    module = pytest.importorskip("jobs.glue.dynamicframe")
    return module.DynamicFrame


# -- construction ---------------------------------------------------------------------------------------
def test_glue_context_takes_a_context_a_session_or_nothing(spark, glue_context: GlueContext, lake_root: Path) -> None:
    for arg in (spark.sparkContext, spark, None):
        ctx = GlueContext(arg) if arg is not None else GlueContext()
        assert ctx.spark_session is ctx.sparkSession
        assert ctx.spark_session._jsparkSession.equals(spark._jsparkSession)
        assert ctx._sc is spark.sparkContext and ctx._jvm is spark.sparkContext._jvm
        assert ctx._ssql_ctx is not None
    assert spark.sparkContext._jsc.hadoopConfiguration().get("fs.lakeforge.root") == str(lake_root)
    assert glue_context.object_store_root == lake_root
    assert os.environ["PYSPARK_PYTHON"]
    sized = GlueContext(spark, minPartitions=3, targetPartitions=4)
    assert (sized.min_partitions, sized.target_partitions) == (3, 4)
    with pytest.raises(GlueContextError, match="SparkContext, a SparkSession or nothing"):
        GlueContext("local")  # type: ignore[arg-type]
    with pytest.raises(GlueContextError, match="minPartitions must be an integer"):
        GlueContext(spark, minPartitions="many")


def test_job_attaches_to_the_glue_context(spark) -> None:  # type: ignore[no-untyped-def]
    from jobs.glue.job import Job

    ctx = GlueContext(spark)
    job = Job(ctx)
    job.init("attached", {"JOB_RUN_ID": "jr_1"})
    assert ctx.current_job is job and job.runId == "jr_1"
    job.commit()
    assert job.committed


def test_get_logger_logs_info_warn_error(glue_context: GlueContext, caplog: pytest.LogCaptureFixture) -> None:
    logger = glue_context.get_logger()
    with caplog.at_level("INFO", logger="awsglue"):
        logger.info("starting")
        logger.warn("careful")
        logger.error("broken")
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("awsglue")] == [
        ("INFO", "starting"),
        ("WARNING", "careful"),
        ("ERROR", "broken"),
    ]


# -- from_options -----------------------------------------------------------------------------------------
@pytest.fixture
def landing(lake_root: Path, bucket: str) -> str:
    """A prefix with JSON files at two levels, a text file and a hidden file."""
    base = lake_root / bucket / "landing"
    _write(base / "a.json", '{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    _write(base / "b.json", '{"id": 3, "name": "c"}\n')
    _write(base / "notes.txt", "not json\n")
    _write(base / "_SUCCESS", "")
    _write(base / "2024" / "01" / "c.json", '{"id": 4, "name": "d"}\n')
    _write(base / "2024" / "02" / "skip.json", '{"id": 5, "name": "e"}\n')
    return f"s3://{bucket}/landing"


def test_from_options_json_recurse_and_exclusions(glue_context: GlueContext, landing: str) -> None:
    read = glue_context.create_data_frame.from_options
    top = read("s3", {"paths": [landing], "exclusions": '["**.txt"]'}, format="json")
    assert _rows(top, "id") == [(1,), (2,), (3,)]
    everything = read("s3", {"paths": [landing], "recurse": True, "exclusions": '["**.txt"]'}, "json")
    assert _rows(everything, "id", "name") == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    excluded = read(
        "s3",
        {"paths": [landing], "recurse": True, "exclusions": json.dumps(["**/02/**", "**.txt", "**/b.json"])},
        "json",
    )
    assert _rows(excluded, "id") == [(1,), (2,), (4,)]
    one_file = read("s3", {"paths": [f"{landing}/2024/01/c.json"]}, "json")
    assert _rows(one_file, "id") == [(4,)]
    with pytest.raises(ValueError, match="JSON list of globs"):
        read("s3", {"paths": [landing], "exclusions": "**.txt"}, "json")


def test_from_options_csv_with_glue_format_options(glue_context: GlueContext, lake_root: Path, bucket: str) -> None:
    _write(lake_root / bucket / "csv" / "h.csv", "id|label\n1|'x|y'\n2|z\n")
    _write(lake_root / bucket / "plain" / "n.csv", "7,seven\n8,eight\n")
    df = glue_context.create_data_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/csv"]}, "csv", {"withHeader": True, "separator": "|", "quoteChar": "'"}
    )
    assert df.columns == ["id", "label"]
    assert _rows(df, "id", "label") == [("1", "x|y"), ("2", "z")]
    no_header = glue_context.create_data_frame.from_options(
        "file", {"paths": [str(lake_root / bucket / "plain")]}, "csv"
    )
    assert no_header.columns == ["col0", "col1"]
    assert _rows(no_header, "col0", "col1") == [("7", "seven"), ("8", "eight")]


def test_from_options_parquet_orc_and_group_size(spark, glue_context: GlueContext, bucket: str) -> None:
    df = spark.range(40).selectExpr("id", "id * 2 as twice").repartition(8)
    df.write.parquet(f"s3://{bucket}/pq")
    df.write.orc(f"s3://{bucket}/orc")
    read = glue_context.create_data_frame.from_options
    for fmt, where in (("parquet", "pq"), ("glueparquet", "pq"), ("orc", "orc")):
        back = read("s3", {"paths": [f"s3://{bucket}/{where}"]}, fmt)
        assert back.count() == 40 and back.where("twice = 78").count() == 1
    ungrouped = read("s3", {"paths": [f"s3://{bucket}/pq"]}, "parquet")
    grouped = read(
        "s3", {"paths": [f"s3://{bucket}/pq"], "groupFiles": "inPartition", "groupSize": "1048576"}, "parquet"
    )
    assert ungrouped.rdd.getNumPartitions() > 1
    assert grouped.rdd.getNumPartitions() == 1 and grouped.count() == 40
    spread = read(
        "s3", {"paths": [f"s3://{bucket}/pq"], "groupSize": "1048576"}, "parquet", minPartitions=3, targetPartitions=5
    )
    assert spread.rdd.getNumPartitions() == 5
    as_connection = read("parquet", {"paths": [f"s3://{bucket}/pq"]})
    assert as_connection.count() == 40


def test_from_options_push_down_predicate_prunes_key_value_directories(
    spark, glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    spark.createDataFrame(
        [(1, "2024", "01"), (2, "2024", "02"), (3, "2023", "12")], "id long, year string, month string"
    ).write.partitionBy("year", "month").parquet(f"s3://{bucket}/hive")
    _write(lake_root / bucket / "hive" / "year=2023" / "month=12" / "corrupt.parquet", "not parquet at all")
    df = glue_context.create_data_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/hive"], "recurse": True}, "parquet", push_down_predicate="year = '2024'"
    )
    assert _rows(df, "id") == [(1,), (2,)]
    assert "year" not in df.columns  # from_options does not add partition columns (as in Glue)
    with pytest.raises(GlueContextError, match="Invalid push_down_predicate"):
        glue_context.create_data_frame.from_options(
            "s3", {"paths": [f"s3://{bucket}/hive"], "recurse": True}, "parquet", push_down_predicate="nope = 1"
        ).collect()


def test_from_options_errors_are_clear(glue_context: GlueContext, bucket: str) -> None:
    read = glue_context.create_data_frame.from_options
    with pytest.raises(GlueContextError, match=r"needs connection_options\['paths'\]"):
        read("s3", {}, "json")
    with pytest.raises(GlueContextError, match="Unsupported format 'xml'"):
        read("s3", {"paths": [f"s3://{bucket}/x"]}, "xml")
    with pytest.raises(GlueContextError, match="A format is required"):
        read("s3", {"paths": [f"s3://{bucket}/x"]})
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/missing"):
        read("s3", {"paths": [f"s3://{bucket}/missing"]}, "json")
    with pytest.raises(GlueContextError, match="Unsupported connection_type 'dynamodb'"):
        read("dynamodb", {"dynamodb.input.tableName": "t"})
    # Streams are tested in test_streaming.py; Kafka cannot work here (no connector jars without Maven).
    with pytest.raises(GlueContextError, match="spark-sql-kafka.*Maven"):
        read("kafka", {"bootstrap.servers": "localhost:9092", "topicName": "t"})
    with pytest.raises(GlueContextError, match="checkpointLocation"):
        glue_context.forEachBatch(frame=None, batch_function=print, options={})


def test_dynamic_frames_from_options_json_and_csv(
    glue_context: GlueContext, landing: str, lake_root: Path, bucket: str
) -> None:
    dynamic_frame = _dynamic_frame_class()
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", {"paths": [landing], "recurse": True, "exclusions": '["**.txt"]'}, "json", transformation_ctx="src"
    )
    assert isinstance(frame, dynamic_frame)
    assert frame.count() == 5
    assert _rows(frame.toDF(), "id") == [(1,), (2,), (3,), (4,), (5,)]
    _write(lake_root / bucket / "mixed" / "m.csv", "code,v\n1,a\nx2,b\n3,c\n")
    mixed = glue_context.create_dynamic_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/mixed"]}, "csv", {"withHeader": True}
    )
    assert mixed.count() == 3
    assert "choice" in str(mixed.schema()).lower()  # per-value typing: long and string values of one column


def test_from_rdd(spark, glue_context: GlueContext) -> None:
    _dynamic_frame_class()
    frame = glue_context.create_dynamic_frame.from_rdd(
        spark.sparkContext.parallelize([(1, "a"), (2, "b")]), "rdd", schema="id long, v string"
    )
    assert frame.count() == 2 and _rows(frame.toDF(), "id", "v") == [(1, "a"), (2, "b")]


# -- from_catalog -----------------------------------------------------------------------------------------
def test_from_catalog_reads_an_iceberg_table(spark, glue_context: GlueContext, unique_ns: str) -> None:
    spark.sql(f"CREATE NAMESPACE lake.{unique_ns}")
    spark.sql(f"CREATE TABLE lake.{unique_ns}.orders (id bigint, region string) USING iceberg PARTITIONED BY (region)")
    spark.sql(f"INSERT INTO lake.{unique_ns}.orders VALUES (1, 'eu'), (2, 'us'), (3, 'eu')")
    df = glue_context.create_data_frame.from_catalog(database=unique_ns, table_name="orders")
    assert _rows(df, "id", "region") == [(1, "eu"), (2, "us"), (3, "eu")]
    pruned = glue_context.create_data_frame.from_catalog(
        name_space=unique_ns, table_name="orders", push_down_predicate="region = 'eu'"
    )
    assert _rows(pruned, "id") == [(1,), (3,)]
    schema = glue_context.get_catalog_schema_as_spark_schema(unique_ns, "orders")
    assert [(f.name, f.dataType.simpleString()) for f in schema.fields] == [("id", "bigint"), ("region", "string")]
    with pytest.raises(GlueCatalogError, match="not both"):
        glue_context.create_data_frame.from_catalog(database=unique_ns, name_space=unique_ns, table_name="orders")
    with pytest.raises(GlueCatalogError, match="database"):
        glue_context.create_data_frame.from_catalog(table_name="orders")
    with pytest.raises(GlueCatalogError, match="Entity not found"):
        glue_context.create_data_frame.from_catalog(database=unique_ns, table_name="nope")


def test_unreachable_catalog_is_a_clear_error(spark) -> None:  # type: ignore[no-untyped-def]
    key = "spark.sql.catalog.lake.uri"
    uri = spark.conf.get(key)
    spark.conf.set(key, "http://127.0.0.1:9")
    try:
        ctx = GlueContext(spark)
        with pytest.raises(GlueCatalogError, match=r"Cannot reach the lake catalog at http://127.0.0.1:9"):
            ctx.create_data_frame.from_catalog(database="db", table_name="t")
    finally:
        spark.conf.set(key, uri)


@pytest.fixture
def events_dataset(spark, lake: LakeClient, lake_root: Path, bucket: str, unique_ns: str) -> str:
    """A raw parquet dataset partitioned by (dt string, hour int) with three partitions; the one of
    2024-01-01 has a corrupt file, so reading it fails."""
    location = f"s3://{bucket}/events"
    lake.create_namespace(unique_ns, exist_ok=True)
    lake.put_dataset(
        unique_ns,
        "events",
        DatasetDefinition.model_validate(
            {
                "format": "parquet",
                "location": location,
                "columns": [{"name": "id", "type": "bigint"}, {"name": "kind", "type": "string"}],
                "partition-keys": [{"name": "dt", "type": "string"}, {"name": "hour", "type": "int"}],
                "properties": {"classification": "parquet"},
            }
        ),
    )
    parts = [("2024-01-02", 3, [(1, "click"), (2, "view")]), ("2024-01-02", 4, [(3, "click")]),
             ("2024-01-01", 3, [(9, "old")])]  # fmt: skip
    for dt, hour, rows in parts:
        spark.createDataFrame(rows, "id long, kind string").coalesce(1).write.parquet(f"{location}/dt={dt}/hour={hour}")
    _write(lake_root / bucket / "events" / "dt=2024-01-01" / "hour=3" / "corrupt.parquet", "garbage, not parquet")
    lake.add_partitions(unique_ns, "events", [([dt, hour], f"{location}/dt={dt}/hour={hour}") for dt, hour, _ in parts])
    return unique_ns


def test_from_catalog_raw_dataset_prunes_partitions_in_the_catalog(
    glue_context: GlueContext, events_dataset: str
) -> None:
    ns = events_dataset
    read = glue_context.create_data_frame.from_catalog
    df = read(database=ns, table_name="events", push_down_predicate="dt >= '2024-01-02' and hour = 3")
    assert _rows(df, "id", "kind", "dt", "hour") == [(1, "click", "2024-01-02", 3), (2, "view", "2024-01-02", 3)]
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types == {"id": "bigint", "kind": "string", "dt": "string", "hour": "int"}
    both_hours = read(database=ns, table_name="events", push_down_predicate="dt = '2024-01-02'")
    assert _rows(both_hours, "id", "hour") == [(1, 3), (2, 3), (3, 4)]
    catalog_side = read(database=ns, table_name="events", additional_options={"catalogPartitionPredicate": "hour = 4"})
    assert _rows(catalog_side, "id") == [(3,)]
    # A predicate only Spark understands is evaluated over the partition values, still before any listing.
    spark_only = read(database=ns, table_name="events", push_down_predicate="substring(dt, 9, 2) = '02' AND hour > 3")
    assert _rows(spark_only, "id") == [(3,)]
    # Without a predicate the corrupt partition is read, which proves the ones above were never read.
    with pytest.raises(Exception, match="(?i)parquet"):
        read(database=ns, table_name="events").collect()
    with pytest.raises(GlueCatalogError, match="catalogPartitionPredicate"):
        read(database=ns, table_name="events", additional_options={"catalogPartitionPredicate": "nokey = 1"})
    schema = glue_context.get_catalog_schema_as_spark_schema(ns, "events")
    assert schema.fieldNames() == ["id", "kind", "dt", "hour"]


def test_dynamic_frame_from_catalog_raw_json_dataset(
    glue_context: GlueContext, lake: LakeClient, lake_root: Path, bucket: str, unique_ns: str
) -> None:
    _dynamic_frame_class()
    location = f"s3://{bucket}/clicks"
    lake.create_namespace(unique_ns, exist_ok=True)
    lake.put_dataset(unique_ns, "clicks", DatasetDefinition.model_validate({
        "format": "json", "location": location, "columns": [{"name": "user", "type": "string"}],
        "partition-keys": [{"name": "day", "type": "date"}]}))  # fmt: skip
    _write(lake_root / bucket / "clicks" / "day=2024-05-01" / "a.json", '{"user": "ann"}\n{"user": "bob"}\n')
    _write(lake_root / bucket / "clicks" / "day=2024-05-02" / "a.json", "{{{{ not json\n")
    _write(lake_root / bucket / "clicks" / "day=2024-05-03" / "a.json", '{"user": 7}\n')
    lake.add_partitions(unique_ns, "clicks", [([d], f"{location}/day={d}") for d in ("2024-05-01", "2024-05-02",
                                                                                   "2024-05-03")])  # fmt: skip
    frame = glue_context.create_dynamic_frame.from_catalog(
        database=unique_ns, table_name="clicks", push_down_predicate="day = '2024-05-01'", transformation_ctx="clicks"
    )
    df = frame.toDF()
    assert _rows(df, "user") == [("ann",), ("bob",)]
    assert {str(r["day"]) for r in df.collect()} == {"2024-05-01"}
    assert frame.errorsCount() == 0  # the malformed partition was never read
    both = glue_context.create_dynamic_frame.from_catalog(
        database=unique_ns, table_name="clicks", push_down_predicate="day in ('2024-05-01', '2024-05-03')"
    )
    assert both.count() == 3 and both.errorsCount() == 0
    user = next(f for f in both.schema().fields if f.name == "user")
    assert user.dataType.typeName() == "choice"  # string in one partition, int in the other: Glue's choice
    everything = glue_context.create_dynamic_frame.from_catalog(database=unique_ns, table_name="clicks")
    assert everything.errorsCount() == 1  # reading the malformed partition gives an error record
    glue_schema = glue_context.catalog_schema_provider(unique_ns, "clicks")
    assert [f.name for f in glue_schema.fields] == ["user", "day"]


# -- sinks -----------------------------------------------------------------------------------------------
def test_write_from_options_formats_partitions_and_compression(
    spark, glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    df = spark.createDataFrame([(1, "a", "x"), (2, "b", "y"), (3, "c", "x")], "id long, v string, part string")
    write = glue_context.write_dynamic_frame.from_options
    write(df, "s3", {"path": f"s3://{bucket}/out/csv"}, "csv", {"separator": ";", "writeHeader": False})
    lines = sorted(line for f in (lake_root / bucket / "out" / "csv").glob("part-*") for line in f.read_text().split())
    assert lines == ["1;a;x", "2;b;y", "3;c;x"]
    write(df, "s3", {"path": f"s3://{bucket}/out/csvh"}, "csv")
    first = next((lake_root / bucket / "out" / "csvh").glob("part-*.csv")).read_text().splitlines()[0]
    assert first == "id,v,part"
    write(df, "s3", {"path": f"s3://{bucket}/out/json", "partitionKeys": ["part"], "compression": "gzip"}, "json")
    gz = list((lake_root / bucket / "out" / "json" / "part=x").glob("*.json.gz"))
    assert gz and sorted(json.loads(line)["id"] for f in gz for line in gzip.decompress(f.read_bytes()).split()) == [
        1,
        3,
    ]
    write(
        df,
        "s3",
        {"path": f"s3://{bucket}/out/pq", "partitionKeys": ["part"]},
        "glueparquet",
        {"useGlueParquetWriter": True},
    )
    write(df, "s3", {"path": f"s3://{bucket}/out/pq", "partitionKeys": ["part"]}, "parquet")  # appends
    assert spark.read.parquet(f"s3://{bucket}/out/pq").where("part = 'x'").count() == 4
    write(df, "s3", {"path": f"s3://{bucket}/out/orc"}, "orc")
    assert spark.read.orc(f"s3://{bucket}/out/orc").count() == 3
    with pytest.raises(GlueContextError, match="partitionKeys"):
        write(df, "s3", {"path": f"s3://{bucket}/out/bad", "partitionKeys": ["nope"]}, "json")
    with pytest.raises(GlueContextError, match=r"needs connection_options\['path'\]"):
        write(df, "s3", {}, "json")


def test_glue_studio_sink_creates_and_updates_the_catalog_entry(
    spark, glue_context: GlueContext, lake: LakeClient, bucket: str, unique_ns: str
) -> None:
    path = f"s3://{bucket}/bronze/users"

    def studio_write(df: DataFrame) -> None:
        sink = glue_context.getSink(
            path=path, connection_type="s3", updateBehavior="UPDATE_IN_DATABASE", partitionKeys=["country"],
            enableUpdateCatalog=True, transformation_ctx="sink",
        )  # fmt: skip
        sink.setCatalogInfo(catalogDatabase=unique_ns, catalogTableName="users")
        sink.setFormat("glueparquet")
        sink.writeFrame(df)

    studio_write(spark.createDataFrame([(1, "ann", "de"), (2, "bob", "fr")], "id long, name string, country string"))
    dataset = lake.get_dataset(unique_ns, "users")
    assert dataset.definition.format == "parquet" and dataset.definition.location == path
    assert [(c.name, c.type) for c in dataset.definition.columns] == [("id", "bigint"), ("name", "string")]
    assert [k.name for k in dataset.definition.partition_keys] == ["country"]
    parts = lake.list_partitions(unique_ns, "users")
    assert sorted((p.values[0], p.location) for p in parts) == [
        ("de", f"{path}/country=de"),
        ("fr", f"{path}/country=fr"),
    ]

    studio_write(spark.createDataFrame([(3, "cy", "it", 7)], "id long, name string, country string, age int"))
    updated = lake.get_dataset(unique_ns, "users")
    assert updated.version == 2 and [c.name for c in updated.definition.columns] == ["id", "name", "age"]
    assert sorted(p.values[0] for p in lake.list_partitions(unique_ns, "users")) == ["de", "fr", "it"]
    back = glue_context.create_data_frame.from_catalog(
        database=unique_ns, table_name="users", push_down_predicate="country = 'it'"
    )
    assert _rows(back, "id", "name", "country") == [(3, "cy", "it")]


def test_write_from_catalog_creates_and_appends_to_iceberg(spark, glue_context: GlueContext, unique_ns: str) -> None:
    df = spark.createDataFrame([(1, "eu"), (2, "us")], "id long, region string")
    with pytest.raises(GlueCatalogError, match="enableUpdateCatalog"):
        glue_context.write_dynamic_frame.from_catalog(df, database=unique_ns, table_name="sales")
    glue_context.write_dynamic_frame.from_catalog(
        df, database=unique_ns, table_name="sales",
        additional_options={"enableUpdateCatalog": True, "partitionKeys": ["region"]},
    )  # fmt: skip
    assert spark.sql(f"SELECT * FROM lake.{unique_ns}.sales.partitions").count() == 2
    more = spark.createDataFrame([(3, "eu", 9.5)], "id long, region string, amount double")
    glue_context.write_dynamic_frame.from_catalog(
        more, database=unique_ns, table_name="sales", additional_options={"enableUpdateCatalog": "true"}
    )
    table = spark.table(f"lake.{unique_ns}.sales")
    assert table.columns == ["id", "region", "amount"]
    assert _rows(table, "id", "amount") == [(1, None), (2, None), (3, 9.5)]
    glue_context.write_data_frame.from_catalog(frame=df, database=unique_ns, table_name="sales")
    assert spark.table(f"lake.{unique_ns}.sales").count() == 5


def test_write_from_catalog_to_a_raw_dataset_registers_partitions(
    spark, glue_context: GlueContext, lake: LakeClient, lake_root: Path, events_dataset: str, bucket: str
) -> None:
    ns = events_dataset
    df = spark.createDataFrame([(20, "buy", "2024-02-01", 7)], "id long, kind string, dt string, hour int")
    glue_context.write_dynamic_frame.from_catalog(df, database=ns, table_name="events")
    assert list((lake_root / bucket / "events" / "dt=2024-02-01" / "hour=7").glob("part-*.parquet"))
    new = lake.list_partitions(ns, "events", "dt = '2024-02-01'")
    assert [(p.values, p.location) for p in new] == [
        (["2024-02-01", "7"], f"s3://{bucket}/events/dt=2024-02-01/hour=7")
    ]
    back = glue_context.create_data_frame.from_catalog(
        database=ns, table_name="events", push_down_predicate="dt = '2024-02-01'"
    )
    assert _rows(back, "id", "kind", "hour") == [(20, "buy", 7)]
    assert lake.get_dataset(ns, "events").version == 1  # no enableUpdateCatalog: the definition is unchanged


# -- JDBC ------------------------------------------------------------------------------------------------
def _people(spark, n: int = 50) -> DataFrame:  # type: ignore[no-untyped-def]
    return spark.createDataFrame([(i, f"name{i}", None if i % 10 == 0 else i * 1.5) for i in range(n)],
                                 "id long, name string, score double")  # fmt: skip


def _check_parallel_read(glue_context: GlueContext, ctype: str, options: dict[str, Any], ids: list[int]) -> None:
    n = len(ids)
    by_field = glue_context.create_data_frame.from_options(ctype, {**options, "hashfield": "name"})
    assert by_field.rdd.getNumPartitions() == 7  # Glue's default hashpartitions
    sizes = by_field.rdd.glom().map(len).collect()
    assert sum(sizes) == n and sum(1 for s in sizes if s) >= 2
    assert sorted(int(r.id) for r in by_field.collect()) == sorted(ids)
    by_expr = glue_context.create_data_frame.from_options(
        ctype, {**options, "hashexpression": "id", "hashpartitions": "4"}
    )
    assert by_expr.rdd.getNumPartitions() == 4
    assert by_expr.rdd.glom().map(len).collect() == [len([i for i in ids if i % 4 == p]) for p in range(4)]
    single = glue_context.create_data_frame.from_options(ctype, options)
    assert single.rdd.getNumPartitions() == 1 and single.count() == n
    with_nulls = glue_context.create_data_frame.from_options(
        ctype, {**options, "hashexpression": "CAST(score AS INTEGER)", "hashpartitions": 3}
    )
    assert with_nulls.count() == n  # rows whose hash is NULL are read too (in the first partition)


def test_jdbc_sqlite_write_and_parallel_read(
    spark, glue_context: GlueContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"jdbc:sqlite:{tmp_path / 'app.db'}"
    glue_context.write_dynamic_frame.from_options(_people(spark), "sqlite", {"url": url, "dbtable": "people"})
    glue_context.write_dynamic_frame.from_options(_people(spark, 5), "jdbc", {"url": url, "dbtable": "people"})
    people = {"url": url, "dbtable": "(SELECT * FROM people WHERE id >= 0)"}
    _check_parallel_read(glue_context, "sqlite", people, list(range(50)) + list(range(5)))
    monkeypatch.setenv("LAKEFORGE_GLUE_CONNECTIONS", str(tmp_path / "connections.json"))
    glue_context.register_connection("appdb", url)
    assert glue_context.extract_jdbc_conf("appdb")["vendor"] == "sqlite"
    glue_context.write_dynamic_frame.from_jdbc_conf(
        _people(spark, 3), catalog_connection="appdb",
        connection_options={"dbtable": "copy", "preactions": "CREATE TABLE copy (id BIGINT, name TEXT, score DOUBLE)"},
    )  # fmt: skip
    copied = glue_context.create_data_frame.from_options("sqlite", {"connectionName": "appdb", "dbtable": "copy"})
    assert _rows(copied, "id", "name") == [(0, "name0"), (1, "name1"), (2, "name2")]
    with pytest.raises(jdbc.GlueJdbcError, match="No JDBC connection named 'missing'"):
        glue_context.write_dynamic_frame.from_jdbc_conf(_people(spark, 1), "missing", {"dbtable": "t"})
    with pytest.raises(jdbc.GlueJdbcError, match="dbtable"):
        glue_context.create_data_frame.from_options("sqlite", {"url": url})
    with pytest.raises(jdbc.GlueJdbcError, match="not on Spark's classpath"):
        glue_context.create_data_frame.from_options("mysql", {"url": "jdbc:mysql://h/db", "dbtable": "t"})


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="lakeforge-pg-"))
    server = PostgresServer(base).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_jdbc_postgresql_write_and_parallel_read(spark, glue_context: GlueContext, postgres: PostgresServer) -> None:
    name = f"glue_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    url = f"jdbc:postgresql://127.0.0.1:{postgres.port}/{name}"
    options = {"url": url, "dbtable": "public.people", "user": "postgres", "password": ""}
    glue_context.write_dynamic_frame.from_options(_people(spark, 60), "postgresql", options)
    _check_parallel_read(glue_context, "postgresql", options, list(range(60)))
    host_only = {"url": f"jdbc:postgresql://127.0.0.1:{postgres.port}", "database": name, "dbtable": "people",
                 "user": "postgres"}  # fmt: skip
    assert glue_context.create_data_frame.from_options("postgresql", host_only).count() == 60


# -- Delta -----------------------------------------------------------------------------------------------
def test_delta_sink_writes_a_delta_table(spark, glue_context: GlueContext, lake_root: Path, bucket: str) -> None:
    from deltalake import DeltaTable

    path = f"s3://{bucket}/delta/sales"
    df = spark.createDataFrame([(1, "eu", 2.5), (2, "us", 1.0)], "id long, region string, amount double")
    glue_context.write_dynamic_frame.from_options(df, "delta", {"path": path, "partitionKeys": ["region"]})
    glue_context.write_dynamic_frame.from_options(df.limit(1), "s3", {"path": path}, format="delta")
    table = DeltaTable(str(lake_root / bucket / "delta" / "sales"))
    assert table.metadata().partition_columns == ["region"]
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == [1, 1, 2]
    assert table.version() == 1
    glue_context.write_dynamic_frame.from_options(df.where("id = 2"), "delta", {"path": path, "mode": "overwrite"})
    assert DeltaTable(str(lake_root / bucket / "delta" / "sales")).to_pyarrow_table().column("id").to_pylist() == [2]
    back = glue_context.create_data_frame.from_options("delta", {"path": path})
    assert _rows(back, "id", "region", "amount") == [(2, "us", 1.0)]
    with pytest.raises(GlueContextError, match="append or overwrite"):
        glue_context.write_dynamic_frame.from_options(df, "delta", {"path": path, "mode": "merge"})


# -- purge and utilities ---------------------------------------------------------------------------------
def test_purge_s3_path_keeps_files_newer_than_the_retention(
    glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    base = lake_root / bucket / "purge"
    old = _write(base / "old.json", "{}", age_hours=200)
    old_nested = _write(base / "deep" / "older.json", "{}", age_hours=500)
    recent = _write(base / "recent.json", "{}", age_hours=2)
    glue_context.purge_s3_path(f"s3://{bucket}/purge", {"manifestFilePath": f"s3://{bucket}/manifests/run1"})
    assert not old.exists() and not old_nested.exists() and recent.exists()
    assert not (base / "deep").exists()  # emptied "directories" disappear, as prefixes do
    success = (lake_root / bucket / "manifests" / "run1" / "Success.csv").read_text().split()
    assert sorted(success) == [f"s3://{bucket}/purge/deep/older.json", f"s3://{bucket}/purge/old.json"]
    assert (lake_root / bucket / "manifests" / "run1" / "Failed.csv").read_text() == ""
    glue_context.purge_s3_path(f"s3://{bucket}/purge", {"retentionPeriod": 1})
    assert not recent.exists()
    fresh = _write(base / "fresh.json", "{}")
    glue_context.purge_s3_path(f"s3://{bucket}/purge", {"retentionPeriod": 0, "excludeStorageClasses": ["STANDARD"]})
    assert fresh.exists()  # every object here is STANDARD
    glue_context.purge_s3_path(f"s3://{bucket}/purge", {"retentionPeriod": 0})
    assert not fresh.exists() and not base.exists() and (lake_root / bucket).is_dir()
    glue_context.purge_s3_path(f"s3://{bucket}/never-existed", {"retentionPeriod": 0})  # nothing to do


def test_purge_table_with_a_partition_predicate(
    glue_context: GlueContext, lake: LakeClient, lake_root: Path, events_dataset: str, bucket: str
) -> None:
    ns = events_dataset
    glue_context.purge_table(ns, "events", {"partitionPredicate": "dt = '2024-01-01'", "retentionPeriod": 0})
    assert not (lake_root / bucket / "events" / "dt=2024-01-01").exists()
    assert (lake_root / bucket / "events" / "dt=2024-01-02" / "hour=3").is_dir()
    assert sorted(tuple(p.values) for p in lake.list_partitions(ns, "events")) == [
        ("2024-01-02", "3"),
        ("2024-01-02", "4"),
    ]
    assert glue_context.create_data_frame.from_catalog(database=ns, table_name="events").count() == 3


def test_purge_table_refuses_iceberg_tables(spark, glue_context: GlueContext, unique_ns: str) -> None:
    spark.sql(f"CREATE NAMESPACE lake.{unique_ns}")
    spark.sql(f"CREATE TABLE lake.{unique_ns}.t (id bigint) USING iceberg")
    with pytest.raises(GlueCatalogError, match="Iceberg table"):
        glue_context.purge_table(unique_ns, "t", {"retentionPeriod": 0})


def test_add_ingestion_time_columns(spark, glue_context: GlueContext) -> None:
    df = spark.createDataFrame([(1,)], "id long")
    hourly = glue_context.add_ingestion_time_columns(df, "hour")
    assert hourly.columns == ["id", "ingest_year", "ingest_month", "ingest_day", "ingest_hour"]
    row = hourly.first()
    now = time.gmtime()
    assert row.ingest_year == f"{now.tm_year:04d}" and len(row.ingest_month) == 2 and len(row.ingest_hour) == 2
    assert 1 <= int(row.ingest_month) <= 12 and 0 <= int(row.ingest_hour) <= 23
    assert glue_context.add_ingestion_time_columns(df, "minute").columns[-1] == "ingest_minute"
    assert glue_context.add_ingestion_time_columns(df, "day").columns[-1] == "ingest_day"
    with pytest.raises(GlueContextError, match="timeGranularity"):
        glue_context.add_ingestion_time_columns(df, "week")
