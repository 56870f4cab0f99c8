"""The crawler (jobs/crawler.py) against the real catalog server, on files generated under ``tmp_path``
(the object-store root: ``s3://bucket/key`` is ``<tmp_path>/store/bucket/key``), and its CLI command."""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import os
import re
import uuid
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from catalog.client import LakeClient
from catalog.datasets import DatasetColumn, canonical_type
from catalog.objectstore import local_path
from catalog.server import CatalogServer, free_port
from catalog.settings import get_settings
from cluster.cli import app
from jobs.crawler import (
    CrawlError,
    CrawlReport,
    UnreadableFileError,
    crawl,
    glob_regex,
    infer_file_schema,
    render_type,
)


# -- helpers -------------------------------------------------------------------------------------------
@pytest.fixture
def lake(server: CatalogServer) -> Iterator[LakeClient]:
    with LakeClient(server.uri) as client:
        yield client


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    root.mkdir()
    return root


def put(store: Path, key: str, data: str | bytes) -> Path:
    """Write ``data`` at ``s3://<key>`` (``key`` starts with the bucket)."""
    path = store / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def run(path: str, db: str, lake: LakeClient, store: Path, **options: Any) -> CrawlReport:
    return crawl(path, db, client=lake, object_store_root=store, **options)


def columns(lake: LakeClient, db: str, name: str) -> dict[str, str]:
    return {c.name: c.type for c in lake.get_dataset(db, name).definition.columns}


def keys(lake: LakeClient, db: str, name: str) -> list[tuple[str, str]]:
    return [(k.name, k.type) for k in lake.get_dataset(db, name).definition.partition_keys]


def partitions(lake: LakeClient, db: str, name: str) -> dict[tuple[str | None, ...], str]:
    return {tuple(p.values): p.location for p in lake.list_partitions(db, name)}


def reasons(report: CrawlReport) -> dict[str, str]:
    """Skipped files by their last path segment."""
    return {s.file.rsplit("/", 1)[-1]: s.reason for s in report.skipped}


def access_log(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "ts": f"2024-01-01T03:{i:02d}:00Z",
        "ip": f"10.0.0.{i}",
        "status": 200 if i % 2 else 404,
        "bytes": 5_000_000_000 if i == 1 else 512,  # int and bigint values: bigint
        "latency": 12 if i % 2 else 0.25,  # int and double values: double
        "request": {"method": "GET", "path": f"/p/{i}"} if i % 2 else {"method": "POST", "query": {"q": "x"}},
        "tags": ["a", "b"] if i % 2 else [],
        "user": None if i % 3 else f"u{i}",
        **extra,
    }


def write_access_logs(store: Path, prefix: str, dt: str, hour: str, n: int = 4, **extra: Any) -> None:
    put(store, f"{prefix}/dt={dt}/hour={hour}/part-00000.json", jsonl(*(access_log(i, **extra) for i in range(n))))


ACCESS_LOG_COLUMNS = {
    "ts": "string",
    "ip": "string",
    "status": "int",
    "bytes": "bigint",
    "latency": "double",
    "request": "struct<method:string,query:struct<q:string>,path:string>",  # fields in first-seen order
    "tags": "array<string>",
    "user": "string",
}


# -- JSON, partitions, the first crawl -----------------------------------------------------------------
def test_crawl_json_access_logs_registers_a_partitioned_table(lake: LakeClient, store: Path, unique_ns: str) -> None:
    write_access_logs(store, "bucket/access-logs", "2024-01-01", "03")
    write_access_logs(store, "bucket/access-logs", "2024-01-01", "04")
    # gzip-compressed JSON in the third partition, plus Spark's marker file at the root.
    records = jsonl(*(access_log(i) for i in range(3)))
    put(store, "bucket/access-logs/dt=2024-01-02/hour=00/part-00000.json.gz", gzip.compress(records.encode()))
    put(store, "bucket/access-logs/_SUCCESS", "")

    report = run("s3://bucket/access-logs", unique_ns, lake, store)

    assert report.tables_created == ["access_logs"]
    assert report.files_read == 3 and report.skipped == [] and report.files_ignored == 1
    assert report.partitions_added == 3 and report.partitions_existing == 0
    assert report.elapsed_seconds > 0 and report.started_at > 0
    dataset = lake.get_dataset(unique_ns, "access_logs")
    assert dataset.version == 1
    definition = dataset.definition
    assert definition.format == "json"
    assert definition.location == "s3://bucket/access-logs"
    assert columns(lake, unique_ns, "access_logs") == ACCESS_LOG_COLUMNS
    assert list(columns(lake, unique_ns, "access_logs")) == list(ACCESS_LOG_COLUMNS)  # first-seen order
    assert keys(lake, unique_ns, "access_logs") == [("dt", "string"), ("hour", "string")]
    assert definition.properties == {"classification": "json", "compressionType": "none", "typeOfData": "file"}
    found = partitions(lake, unique_ns, "access_logs")
    assert found == {
        ("2024-01-01", "03"): "s3://bucket/access-logs/dt=2024-01-01/hour=03",
        ("2024-01-01", "04"): "s3://bucket/access-logs/dt=2024-01-01/hour=04",
        ("2024-01-02", "00"): "s3://bucket/access-logs/dt=2024-01-02/hour=00",
    }
    for location in found.values():  # every partition location is a folder holding the data
        assert any(local_path(location, store).iterdir())
    # The catalog's predicate pushdown works on the crawled keys.
    pruned = lake.list_partitions(unique_ns, "access_logs", "dt = '2024-01-01' and hour = '04'")
    assert [p.values for p in pruned] == [["2024-01-01", "04"]]


def test_json_types_merge_like_glue(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(
        jsonl(
            {"a": 1, "b": 1, "c": 1, "d": None, "e": {"x": 1}, "f": [1, 2], "g": [{"k": 1}], "Mixed Case": 1},
            {"a": 2**40, "b": 1.5, "c": "one", "d": None, "e": {"y": "s"}, "f": [2.5], "g": [{"l": True}], "h": [[1]]},
            {"a": 3, "b": 2, "c": True, "e": {"x": 2**40}, "f": [], "g": [], "h": [[]], "i": {"we-ird key": {}}},
        )
    )
    schema = infer_file_schema(path)
    found = {name: render_type(kind) for name, kind in schema.columns}
    assert schema.classification == "json" and schema.compression == "none"
    assert found == {
        "a": "bigint",  # int and bigint
        "b": "double",  # int and double
        "c": "string",  # int, string and boolean
        "d": "string",  # only nulls
        "e": "struct<x:bigint,y:string>",  # structs merged field by field
        "f": "array<double>",
        "g": "array<struct<k:int,l:boolean>>",
        "mixed case": "int",  # top-level names lower-cased
        "h": "array<array<int>>",
        "i": "struct<`we-ird key`:struct<>>",
    }
    for kind in found.values():  # every type string is one the catalog accepts, as spelled
        assert canonical_type(kind) == kind


def test_json_array_and_pretty_printed_documents(tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text(json.dumps([{"id": 1, "name": "a"}, {"id": 2, "score": 0.5}], indent=2))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps({"id": 1}, indent=2) + "\n" + json.dumps({"id": 2, "ok": True}, indent=2))
    assert [(n, render_type(t)) for n, t in infer_file_schema(array).columns] == [
        ("id", "int"),
        ("name", "string"),
        ("score", "double"),
    ]
    assert [(n, render_type(t)) for n, t in infer_file_schema(pretty).columns] == [("id", "int"), ("ok", "boolean")]


# -- CSV -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("delimiter", "label"), [(",", "comma"), ("|", "pipe"), ("\t", "tab"), (";", "semicolon"), ("\x01", "ctrl_a")]
)
def test_csv_with_header_in_each_delimiter(
    lake: LakeClient, store: Path, unique_ns: str, delimiter: str, label: str
) -> None:
    rows = [["id", "name", "price", "active"], ["1", "apple, red", "1.25", "true"], ["2", "pear", "2", "false"]]
    if delimiter == ",":
        rows[1][1] = '"apple, red"'  # a quoted delimiter does not add a column
    else:
        rows[1][1] = "apple, red"
    text = "".join(delimiter.join(r) + "\n" for r in rows)
    put(store, f"bucket/{label}/data.csv", text)

    report = run(f"s3://bucket/{label}", unique_ns, lake, store)

    assert report.tables_created == [label]
    assert columns(lake, unique_ns, label) == {"id": "bigint", "name": "string", "price": "double", "active": "boolean"}
    properties = lake.get_dataset(unique_ns, label).definition.properties
    assert properties["classification"] == "csv"
    assert properties["delimiter"] == delimiter
    assert properties["skip.header.line.count"] == "1"
    assert keys(lake, unique_ns, label) == []


def test_csv_without_header_gets_col_names(lake: LakeClient, store: Path, unique_ns: str) -> None:
    # Numbers in the first row: no header.
    put(store, "bucket/numbers/a.csv", "1,alpha,0.5\n2,beta,1\n3,gamma,2.5\n")
    # All cells strings: the first row is not "sufficiently different" from the rest, so no header either
    # (Glue's rule), even though it looks like one; bzip2-compressed.
    put(store, "bucket/names/b.csv.bz2", bz2.compress(b"first|last\nada|lovelace\nalan|turing\n"))

    numbers = run("s3://bucket/numbers", unique_ns, lake, store)
    names = run("s3://bucket/names", unique_ns, lake, store)

    assert numbers.tables_created == ["numbers"] and names.tables_created == ["names"]
    assert columns(lake, unique_ns, "numbers") == {"col1": "bigint", "col2": "string", "col3": "double"}
    assert columns(lake, unique_ns, "names") == {"col1": "string", "col2": "string"}
    props = lake.get_dataset(unique_ns, "names").definition.properties
    assert props["delimiter"] == "|" and props["compressionType"] == "bzip2"
    assert "skip.header.line.count" not in props


def test_csv_header_rules(tmp_path: Path) -> None:
    def schema(text: str) -> tuple[list[tuple[str, str]], bool]:
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        path.write_text(text)
        found = infer_file_schema(path)
        return [(n, render_type(t)) for n, t in found.columns], found.header

    # A trailing delimiter: the empty last header cell is no column.
    assert schema("a,b,\n1,x,\n2,y,\n") == ([("a", "bigint"), ("b", "string")], True)
    # A header cell of 150 characters or more is data, not a name.
    assert schema(f"{'h' * 150},b,c\n1,x,2\n")[1] is False
    # Duplicate header names are made unique (the catalog refuses duplicates).
    assert schema("id,ID,x\n1,2,3\n")[0] == [("id", "bigint"), ("id_2", "bigint"), ("x", "bigint")]
    # The delimiter giving the most columns wins over an earlier one that also splits rows alike.
    assert schema("a|b,c|d\n1|x,y|2\n")[0] == [("a", "bigint"), ("b,c", "string"), ("d", "bigint")]
    # One column, or one row, is not CSV.
    for text in ("just one column\nanother row\n", "a,b,c\n"):
        path = tmp_path / f"{uuid.uuid4().hex}.csv"
        path.write_text(text)
        with pytest.raises(UnreadableFileError, match="not CSV"):
            infer_file_schema(path)


# -- parquet, orc, avro --------------------------------------------------------------------------------
TYPED = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "small": pa.array([1, 2], pa.int16()),
        "count": pa.array([1, 2], pa.int32()),
        "ratio": pa.array([0.5, 1.5], pa.float64()),
        "name": pa.array(["a", None], pa.string()),
        "flag": pa.array([True, False]),
        "day": pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32()),
        "at": pa.array([datetime(2024, 1, 1), datetime(2024, 1, 2)], pa.timestamp("us")),
        "price": pa.array([Decimal("1.25"), Decimal("2.50")], pa.decimal128(10, 2)),
        "tags": pa.array([["x"], []], pa.list_(pa.string())),
        "point": pa.array(
            [{"x": 1.0, "y": 2.0}, {"x": 0.0, "y": 0.0}], pa.struct([("x", pa.float64()), ("y", pa.float64())])
        ),
        "attrs": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
        "CamelCase": pa.array(["u", "v"]),
    }
)
TYPED_COLUMNS = {
    "id": "bigint",
    "small": "smallint",
    "count": "int",
    "ratio": "double",
    "name": "string",
    "flag": "boolean",
    "day": "date",
    "at": "timestamp",
    "price": "decimal(10,2)",
    "tags": "array<string>",
    "point": "struct<x:double,y:double>",
    "attrs": "map<string,bigint>",
    "camelcase": "string",
}


def test_parquet_and_orc_in_sibling_folders_become_two_tables(lake: LakeClient, store: Path, unique_ns: str) -> None:
    for dt in ("2024-01-01", "2024-01-02"):
        (store / f"bucket/typed/pq/dt={dt}").mkdir(parents=True)
        pq.write_table(TYPED, store / f"bucket/typed/pq/dt={dt}/part-0.snappy.parquet")
    (store / "bucket/typed/orc").mkdir(parents=True)
    orc.write_table(TYPED.drop_columns(["attrs"]), str(store / "bucket/typed/orc/part-0.orc"))

    report = run("s3://bucket/typed", unique_ns, lake, store)

    # Same columns, but different formats: never one table.
    assert sorted(report.tables_created) == ["orc", "pq"]
    assert columns(lake, unique_ns, "pq") == TYPED_COLUMNS
    assert columns(lake, unique_ns, "orc") == {k: v for k, v in TYPED_COLUMNS.items() if k != "attrs"}
    assert lake.get_dataset(unique_ns, "pq").definition.format == "parquet"
    assert lake.get_dataset(unique_ns, "orc").definition.format == "orc"
    assert lake.get_dataset(unique_ns, "pq").definition.location == "s3://bucket/typed/pq"
    assert keys(lake, unique_ns, "pq") == [("dt", "string")] and keys(lake, unique_ns, "orc") == []
    assert sorted(partitions(lake, unique_ns, "pq")) == [("2024-01-01",), ("2024-01-02",)]


def test_avro_schema_from_the_file_header(lake: LakeClient, store: Path, unique_ns: str) -> None:
    from pyiceberg.avro.file import AvroOutputFile
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.schema import Schema
    from pyiceberg.typedef import Record
    from pyiceberg.types import DateType, DecimalType, DoubleType, ListType, LongType, NestedField, StringType
    from pyiceberg.types import StructType as IcebergStruct

    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "day", DateType(), required=False),
        NestedField(4, "tags", ListType(5, StringType(), element_required=False), required=False),
        NestedField(6, "loc", IcebergStruct(NestedField(7, "lat", DoubleType(), required=False)), required=False),
        NestedField(8, "price", DecimalType(10, 2), required=False),
    )
    path = store / "bucket/avro/users/part-0.avro"
    path.parent.mkdir(parents=True)
    with AvroOutputFile[Record](PyArrowFileIO().new_output(str(path)), schema, "user") as out:
        out.write_block([Record(1, "a", 19723, ["x"], Record(1.5), Decimal("1.25"))])

    report = run("s3://bucket/avro/users", unique_ns, lake, store)

    assert report.tables_created == ["users"]
    assert lake.get_dataset(unique_ns, "users").definition.format == "avro"
    assert columns(lake, unique_ns, "users") == {
        "id": "bigint",
        "name": "string",
        "day": "date",
        "tags": "array<string>",
        "loc": "struct<lat:double>",
        "price": "decimal(10,2)",
    }


# -- partitions without key names, sibling folders ---------------------------------------------------
def test_folders_without_key_names_are_partition_n(lake: LakeClient, store: Path, unique_ns: str) -> None:
    for day in ("01", "02"):
        put(store, f"bucket/clicks/2024/01/{day}/events.json", jsonl({"id": 1, "page": "/"}))
    put(store, "bucket/clicks/2024/02/01/events.json", jsonl({"id": 2, "page": "/a"}))

    report = run("s3://bucket/clicks", unique_ns, lake, store)

    assert report.tables_created == ["clicks"]
    assert keys(lake, unique_ns, "clicks") == [
        ("partition_0", "string"),
        ("partition_1", "string"),
        ("partition_2", "string"),
    ]
    assert partitions(lake, unique_ns, "clicks") == {
        ("2024", "01", "01"): "s3://bucket/clicks/2024/01/01",
        ("2024", "01", "02"): "s3://bucket/clicks/2024/01/02",
        ("2024", "02", "01"): "s3://bucket/clicks/2024/02/01",
    }


def test_mixed_key_levels_and_hive_escaped_values(lake: LakeClient, store: Path, unique_ns: str) -> None:
    # Level 0 is key=value everywhere; level 1 is not, so it is partition_1. Hive escapes ':' as %3A.
    put(store, "bucket/mixed/region=eu/ts=2024-01-01 10%3A00/x.json", jsonl({"v": 1}))
    put(store, "bucket/mixed/region=us/raw/x.json", jsonl({"v": 2}))
    put(store, "bucket/mixed/region=__HIVE_DEFAULT_PARTITION__/raw/x.json", jsonl({"v": 3}))

    run("s3://bucket/mixed", unique_ns, lake, store)

    assert keys(lake, unique_ns, "mixed") == [("region", "string"), ("partition_1", "string")]
    found = partitions(lake, unique_ns, "mixed")
    assert set(found) == {("eu", "ts=2024-01-01 10%3A00"), ("us", "raw"), (None, "raw")}
    escaped = found[("eu", "ts=2024-01-01 10%3A00")]
    assert local_path(escaped, store) == store / "bucket/mixed/region=eu/ts=2024-01-01 10%3A00"


def test_unescaped_values_of_key_value_folders(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/esc/ts=2024-01-01 10%3A00/x.json", jsonl({"v": 1}))

    run("s3://bucket/esc", unique_ns, lake, store)

    [(values, location)] = partitions(lake, unique_ns, "esc").items()
    assert values == ("2024-01-01 10:00",)
    assert local_path(location, store).is_dir()


def test_incompatible_sibling_folders_become_two_tables(lake: LakeClient, store: Path, unique_ns: str) -> None:
    for dt in ("2024-01-01", "2024-01-02"):
        put(store, f"bucket/shop/orders/dt={dt}/o.json", jsonl({"order_id": 1, "amount": 9.5, "customer_id": 7}))
        put(store, f"bucket/shop/customers/dt={dt}/c.json", jsonl({"customer_id": 7, "name": "n", "email": "e"}))

    report = run("s3://bucket/shop", unique_ns, lake, store)

    assert sorted(report.tables_created) == ["customers", "orders"]
    assert not lake.dataset_exists(unique_ns, "shop")
    assert columns(lake, unique_ns, "orders") == {"order_id": "int", "amount": "double", "customer_id": "int"}
    assert columns(lake, unique_ns, "customers") == {"customer_id": "int", "name": "string", "email": "string"}
    assert keys(lake, unique_ns, "orders") == [("dt", "string")]
    assert partitions(lake, unique_ns, "customers") == {
        ("2024-01-01",): "s3://bucket/shop/customers/dt=2024-01-01",
        ("2024-01-02",): "s3://bucket/shop/customers/dt=2024-01-02",
    }


def test_similar_sibling_folders_become_partitions_of_one_table(lake: LakeClient, store: Path, unique_ns: str) -> None:
    # Glue's documented behaviour: similar schemas in table1/ and table2/ make one table with partition_0.
    put(store, "bucket/events/web/e.json", jsonl({"id": 1, "kind": "view", "ms": 5}))
    put(store, "bucket/events/mobile/e.json", jsonl({"id": 2, "kind": "tap", "ms": 7, "os": "ios"}))

    report = run("s3://bucket/events", unique_ns, lake, store)

    assert report.tables_created == ["events"]
    assert keys(lake, unique_ns, "events") == [("partition_0", "string")]
    assert set(partitions(lake, unique_ns, "events")) == {("web",), ("mobile",)}
    assert columns(lake, unique_ns, "events") == {"id": "int", "kind": "string", "ms": "int", "os": "string"}


def test_files_off_the_partition_depth_are_skipped(lake: LakeClient, store: Path, unique_ns: str) -> None:
    for dt in ("2024-01-01", "2024-01-02"):
        put(store, f"bucket/stray/dt={dt}/x.json", jsonl({"a": 1}))
    put(store, "bucket/stray/sample.json", jsonl({"a": 1}))

    report = run("s3://bucket/stray", unique_ns, lake, store)

    assert report.tables_created == ["stray"]
    assert reasons(report) == {"sample.json": "file beside the partition folders of the table at s3://bucket/stray"}
    assert keys(lake, unique_ns, "stray") == [("dt", "string")]


# -- re-crawls and schema changes ----------------------------------------------------------------------
def test_recrawl_adds_only_the_new_partition_without_a_new_version(
    lake: LakeClient, store: Path, unique_ns: str
) -> None:
    write_access_logs(store, "bucket/logs", "2024-01-01", "03")
    write_access_logs(store, "bucket/logs", "2024-01-01", "04")
    first = run("s3://bucket/logs", unique_ns, lake, store)
    assert first.tables_created == ["logs"] and first.partitions_added == 2
    created = {p.values[1]: p.created_ms for p in lake.list_partitions(unique_ns, "logs")}

    write_access_logs(store, "bucket/logs", "2024-01-02", "00")
    second = run("s3://bucket/logs", unique_ns, lake, store)

    table = second.table("logs")
    assert table.action == "unchanged" and table.version == 1 and table.changes == []
    assert (table.partitions_added, table.partitions_existing) == (1, 2)
    assert second.tables_unchanged == ["logs"] and second.tables_created == []
    assert [v.version for v in lake.list_versions(unique_ns, "logs")] == [1]
    after = {tuple(p.values): p.created_ms for p in lake.list_partitions(unique_ns, "logs")}
    assert set(after) == {("2024-01-01", "03"), ("2024-01-01", "04"), ("2024-01-02", "00")}
    assert after[("2024-01-01", "03")] == created["03"]  # the old partitions were not rewritten

    third = run("s3://bucket/logs", unique_ns, lake, store)
    assert (third.partitions_added, third.partitions_existing) == (0, 3)
    assert [v.version for v in lake.list_versions(unique_ns, "logs")] == [1]


def test_schema_change_with_update_in_database_makes_a_new_version(
    lake: LakeClient, store: Path, unique_ns: str
) -> None:
    write_access_logs(store, "bucket/logs", "2024-01-01", "03")
    run("s3://bucket/logs", unique_ns, lake, store)
    # A new partition, crawled first (it sorts first), whose records start with a new column and have
    # doubles in the int column 'status'.
    put(
        store,
        "bucket/logs/dt=2023-12-31/hour=00/part-0.json",
        jsonl({"referrer": "https://x", **access_log(1, status=200.5)}, access_log(2)),
    )

    report = run("s3://bucket/logs", unique_ns, lake, store, update_behavior="UPDATE_IN_DATABASE")

    table = report.table("logs")
    assert table.action == "updated" and table.version == 2
    assert "added column referrer string" in table.changes
    assert "changed column status int -> double" in table.changes
    assert report.tables_updated == ["logs"]
    assert [v.version for v in lake.list_versions(unique_ns, "logs")] == [1, 2]
    found = columns(lake, unique_ns, "logs")
    assert found["referrer"] == "string" and found["status"] == "double"
    assert list(found) == [*ACCESS_LOG_COLUMNS, "referrer"]  # registered columns keep their order; new ones last
    assert table.partitions_added == 1


def test_schema_change_with_log_is_reported_not_applied(lake: LakeClient, store: Path, unique_ns: str) -> None:
    write_access_logs(store, "bucket/logs", "2024-01-01", "03")
    run("s3://bucket/logs", unique_ns, lake, store)
    write_access_logs(store, "bucket/logs", "2024-01-02", "00", referrer="https://x")

    report = run("s3://bucket/logs", unique_ns, lake, store, update_behavior="LOG")

    table = report.table("logs")
    assert table.action == "change-logged" and table.version == 1
    assert table.changes == ["added column referrer string"]
    assert report.tables_change_logged == ["logs"]
    assert [v.version for v in lake.list_versions(unique_ns, "logs")] == [1]
    assert "referrer" not in columns(lake, unique_ns, "logs")
    # New partitions are always added (Glue: "new tables and partitions are always created").
    assert table.partitions_added == 1
    assert ("2024-01-02", "00") in partitions(lake, unique_ns, "logs")
    # The change is applied by a later crawl with UPDATE_IN_DATABASE.
    applied = run("s3://bucket/logs", unique_ns, lake, store)
    assert applied.table("logs").action == "updated" and applied.table("logs").version == 2


def test_a_drifting_partition_does_not_split_a_registered_table(lake: LakeClient, store: Path, unique_ns: str) -> None:
    old = {"ip": "1.2.3.4", "status": 200, "req": {"m": "GET"}}
    drifted = {"ip": "1.2.3.4", "status": 200, "new": [1]}  # 2 of 3 columns shared: not similar
    for prefix in ("bucket/fresh", "bucket/kept"):
        put(store, f"{prefix}/dt=2024-01-01/x.json", jsonl(old))
        put(store, f"{prefix}/dt=2024-01-02/x.json", jsonl(old))
    run("s3://bucket/kept", unique_ns, lake, store)
    for prefix in ("bucket/fresh", "bucket/kept"):
        put(store, f"{prefix}/dt=2024-01-03/x.json", jsonl(drifted))

    fresh = run("s3://bucket/fresh", unique_ns, lake, store)
    kept = run("s3://bucket/kept", unique_ns, lake, store)

    # First crawl: 2 of 3 folders alike is not more than 70%, so Glue's rule makes a table per folder.
    assert sorted(fresh.tables_created) == ["dt_2024_01_01", "dt_2024_01_02", "dt_2024_01_03"]
    # Re-crawl of a registered table: it stays one table, with the new partition and the merged schema.
    table = kept.table("kept")
    assert [t.name for t in kept.tables] == ["kept"]
    assert table.action == "updated" and table.changes == ["added column new array<int>"]
    assert table.partitions_added == 1 and table.partitions_existing == 2
    assert table.notes == ["1 partition folder(s) with a dissimilar schema merged into the table"]


def test_edits_to_a_registered_dataset_survive_a_recrawl(lake: LakeClient, store: Path, unique_ns: str) -> None:
    write_access_logs(store, "bucket/logs", "2024-01-01", "03")
    run("s3://bucket/logs", unique_ns, lake, store)
    definition = lake.get_dataset(unique_ns, "logs").definition
    edited = definition.model_copy(
        update={
            "description": "web access logs",
            "columns": [
                c.model_copy(update={"comment": "client"}) if c.name == "ip" else c for c in definition.columns
            ],
            "partition_keys": [DatasetColumn(name="dt", type="date"), DatasetColumn(name="hour", type="int")],
            "properties": {**definition.properties, "owner": "web-team"},
        }
    )
    lake.drop_dataset(unique_ns, "logs")  # partition keys cannot change while partitions exist
    lake.put_dataset(unique_ns, "logs", edited)
    write_access_logs(store, "bucket/logs", "2024-01-02", "00")

    report = run("s3://bucket/logs", unique_ns, lake, store)

    table = report.table("logs")
    assert table.action == "unchanged" and table.version == 1, table.changes
    after = lake.get_dataset(unique_ns, "logs").definition
    assert after.description == "web access logs" and after.properties["owner"] == "web-team"
    assert keys(lake, unique_ns, "logs") == [("dt", "date"), ("hour", "int")]
    assert set(partitions(lake, unique_ns, "logs")) == {("2024-01-01", "3"), ("2024-01-02", "0")}


def test_changed_partition_layout_fails_the_table_not_the_crawl(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/a/flat/dt=2024-01-01/x.json", jsonl({"v": 1}))
    put(store, "bucket/a/other/y.csv", "id,name\n1,x\n")
    run("s3://bucket/a", unique_ns, lake, store)
    (store / "bucket/a/flat/dt=2024-01-01/x.json").unlink()
    put(store, "bucket/a/flat/dt=2024-01-02/hour=01/x.json", jsonl({"v": 1}))

    report = run("s3://bucket/a", unique_ns, lake, store)

    assert report.tables_failed == ["flat"]
    assert "partition keys" in (report.table("flat").error or "")
    assert report.table("other").action == "unchanged"
    assert keys(lake, unique_ns, "flat") == [("dt", "string")]


# -- bad files -----------------------------------------------------------------------------------------
def test_bad_files_are_reported_and_skipped(lake: LakeClient, store: Path, unique_ns: str) -> None:
    folder = "bucket/messy/dt=2024-01-01"
    put(store, f"{folder}/good-1.json", jsonl({"id": 1, "msg": "a"}))
    put(store, f"{folder}/good-2.json", jsonl({"id": 2, "msg": "b"}))
    put(store, f"{folder}/good-3.json.gz", gzip.compress(jsonl({"id": 3, "msg": "c"}).encode()))
    put(store, f"{folder}/empty.json", "")
    put(store, f"{folder}/junk.json", bytes(range(256)) * 4)
    put(store, f"{folder}/latin1.json", "caf\xe9,cr\xe8me\n1,2\n".encode("latin-1"))
    put(store, f"{folder}/stray.csv", "a,b\n1,2\n3,4\n")
    put(store, f"{folder}/broken.json", '{"id": 4, "msg": \n{"oops"\n')
    put(store, f"{folder}/truncated.json.gz", gzip.compress(jsonl({"id": 5}).encode())[:12])
    archive = store / f"{folder}/bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("inner.json", jsonl({"id": 6}))
    put(store, "bucket/messy/dt=2024-01-02/good.snappy.parquet", b"")  # replaced below by a real file
    pq.write_table(pa.table({"id": [7], "msg": ["p"]}), store / "bucket/messy/dt=2024-01-02/good.snappy.parquet")
    put(store, "bucket/messy/dt=2024-01-02/corrupt.parquet", b"PAR1" + os.urandom(64) + b"PAR1")
    put(
        store,
        "bucket/messy/dt=2024-01-02/cut.parquet",
        (store / "bucket/messy/dt=2024-01-02/good.snappy.parquet").read_bytes()[:-20],
    )

    report = run("s3://bucket/messy", unique_ns, lake, store)

    why = reasons(report)
    assert why["empty.json"] == "empty file"
    assert why["junk.json"] == "unrecognised format: binary data"
    assert why["latin1.json"].startswith("unrecognised format: not UTF-8 text")
    assert why["stray.csv"].startswith("mixed formats in one folder: csv")
    assert why["broken.json"].startswith("invalid JSON")
    assert why["truncated.json.gz"].startswith("corrupt gzip stream")
    assert why["bundle.zip"] == "zip archive (not supported)"
    assert why["corrupt.parquet"].startswith("corrupt parquet file")
    assert why["cut.parquet"].startswith("corrupt parquet file")
    assert set(why) == {
        "empty.json",
        "junk.json",
        "latin1.json",
        "stray.csv",
        "broken.json",
        "truncated.json.gz",
        "bundle.zip",
        "corrupt.parquet",
        "cut.parquet",
    }
    # The good JSON files of the first folder are a table; the parquet folder is not the same format.
    assert report.files_read == 4
    assert sorted(report.tables_created) == ["dt_2024_01_01", "dt_2024_01_02"]
    assert columns(lake, unique_ns, "dt_2024_01_01") == {"id": "int", "msg": "string"}
    assert columns(lake, unique_ns, "dt_2024_01_02") == {"id": "bigint", "msg": "string"}
    assert {s.file for s in report.skipped} >= {f"s3://{folder}/junk.json", f"s3://{folder}/empty.json"}


def test_a_few_bad_json_lines_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "mostly.json"
    path.write_text(jsonl(*({"id": i} for i in range(20))) + "not json\n")
    schema = infer_file_schema(path)
    assert [(n, render_type(t)) for n, t in schema.columns] == [("id", "int")]
    assert schema.bad_records == 1 and schema.first_error is not None and "line 21" in schema.first_error
    path.write_text(jsonl({"id": 1}) + "not json\nnor this\n")
    with pytest.raises(UnreadableFileError, match=r"2 of 3 records unparseable \(line 2"):
        infer_file_schema(path)


def test_compressed_files_without_extension_are_noted(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/noext/part-0", gzip.compress(jsonl({"id": 1}).encode()))

    report = run("s3://bucket/noext", unique_ns, lake, store)

    assert report.tables_created == ["noext"]
    assert any("without a .gz or .bz2 extension" in note for note in report.table("noext").notes)
    assert lake.get_dataset(unique_ns, "noext").definition.properties["compressionType"] == "gzip"


# -- sampling, exclusions, names, locations ------------------------------------------------------------
def test_only_a_prefix_of_each_file_is_sampled(lake: LakeClient, store: Path, unique_ns: str) -> None:
    early = jsonl(*({"id": i, "msg": "x" * 50} for i in range(100)))
    put(store, "bucket/sampled/a.json", early + jsonl({"id": 101, "late": True}))

    small = run("s3://bucket/sampled", unique_ns, lake, store, sample_bytes=1024)
    assert columns(lake, unique_ns, "sampled") == {"id": "int", "msg": "string"}  # 'late' is past the sample

    full = run("s3://bucket/sampled", unique_ns, lake, store)
    assert small.table("sampled").action == "created"
    assert full.table("sampled").action == "updated"
    assert columns(lake, unique_ns, "sampled") == {"id": "int", "msg": "string", "late": "boolean"}


def test_a_sample_that_cuts_a_gzip_record_keeps_the_complete_ones(tmp_path: Path) -> None:
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(jsonl(*({"id": i, "pad": "y" * 30} for i in range(1000))).encode()))
    schema = infer_file_schema(path, sample_bytes=700)  # ends mid-record
    assert schema.compression == "gzip"
    assert [(n, render_type(t)) for n, t in schema.columns] == [("id", "int"), ("pad", "string")]


def test_exclusions_drop_files_and_folders(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/ex/dt=2024-01-01/a.json", jsonl({"id": 1}))
    put(store, "bucket/ex/dt=2024-01-01/a.json.tmp", "{broken")
    put(store, "bucket/ex/dt=2024-01-02/b.json", jsonl({"id": 2, "secret": "s"}))
    put(store, "bucket/ex/dt=2024-01-03/c.json", jsonl({"id": 3}))

    report = run("s3://bucket/ex", unique_ns, lake, store, exclusions=["**.tmp", "dt=2024-01-0{2,9}"])

    assert report.files_excluded == 2 and report.skipped == []
    assert columns(lake, unique_ns, "ex") == {"id": "int"}
    assert set(partitions(lake, unique_ns, "ex")) == {("2024-01-01",), ("2024-01-03",)}


def test_glob_patterns() -> None:
    assert glob_regex("*.json").fullmatch("a.json")
    assert not glob_regex("*.json").fullmatch("dt=1/a.json")
    assert glob_regex("**/*.json").fullmatch("dt=1/a.json")
    assert glob_regex("**/*.json").fullmatch("a.json")
    assert glob_regex("dt=2024-0[1-2]/**").fullmatch("dt=2024-02/x/y.csv")
    assert glob_regex("{a,b}/?.csv").fullmatch("b/1.csv")
    assert not glob_regex("[!a]*").fullmatch("abc")


def test_table_names_are_sanitised_or_given(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/Web-Logs.v2/a.json", jsonl({"id": 1}))
    put(store, "bucket/multi/x/a.json", jsonl({"id": 1}))
    put(store, "bucket/multi/y/b.csv", "k,v\na,1\n")

    assert run("s3://bucket/Web-Logs.v2", unique_ns, lake, store).tables_created == ["web_logs_v2"]
    assert run("s3://bucket/Web-Logs.v2/", unique_ns, lake, store, table="Clicks").tables_created == ["clicks"]
    # Several tables: the given name is a prefix.
    assert sorted(run("s3://bucket/multi", unique_ns, lake, store, table="t").tables_created) == ["t_x", "t_y"]
    assert lake.get_dataset(unique_ns, "clicks").definition.location == "s3://bucket/Web-Logs.v2"


def test_a_name_taken_at_another_location_gets_a_hash_suffix(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/a/logs/x.json", jsonl({"id": 1}))
    put(store, "bucket/b/logs/x.json", jsonl({"id": 2}))
    run("s3://bucket/a/logs", unique_ns, lake, store)

    second = run("s3://bucket/b/logs", unique_ns, lake, store)
    again = run("s3://bucket/b/logs", unique_ns, lake, store)

    [name] = second.tables_created
    assert re.fullmatch(r"logs_[0-9a-f]{8}", name)
    assert again.tables_unchanged == [name]
    assert lake.get_dataset(unique_ns, "logs").definition.location == "s3://bucket/a/logs"
    assert lake.get_dataset(unique_ns, name).definition.location == "s3://bucket/b/logs"
    # An explicit name is not renamed: that table fails, the crawl does not.
    explicit = run("s3://bucket/b/logs", unique_ns, lake, store, table="logs")
    assert explicit.tables_failed == ["logs"] and "exists with location" in (explicit.table("logs").error or "")


def test_data_columns_named_like_partition_keys_are_dropped(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/dup/dt=2024-01-01/x.json", jsonl({"dt": "2024-01-01", "v": 1}))

    report = run("s3://bucket/dup", unique_ns, lake, store)

    assert columns(lake, unique_ns, "dup") == {"v": "int"}
    assert keys(lake, unique_ns, "dup") == [("dt", "string")]
    assert any("dt dropped" in note for note in report.table("dup").notes)


def test_a_local_folder_is_registered_with_file_uris(lake: LakeClient, tmp_path: Path, unique_ns: str) -> None:
    folder = tmp_path / "local data"
    put(tmp_path, "local data/dt=2024-01-01/x.json", jsonl({"id": 1}))

    report = run(str(folder), unique_ns, lake, tmp_path / "unused")

    assert report.tables_created == ["local_data"]
    definition = lake.get_dataset(unique_ns, "local_data").definition
    assert definition.location == folder.resolve().as_uri()
    [location] = partitions(lake, unique_ns, "local_data").values()
    assert local_path(location, tmp_path) == folder.resolve() / "dt=2024-01-01"


def test_a_path_naming_one_file_crawls_only_that_file(lake: LakeClient, store: Path, unique_ns: str) -> None:
    put(store, "bucket/single/data.csv", "id,name\n1,a\n2,b\n")
    put(store, "bucket/single/other.json", jsonl({"x": 1}))

    report = run("s3://bucket/single/data.csv", unique_ns, lake, store)

    assert report.tables_created == ["single"] and report.files_read == 1 and report.skipped == []
    definition = lake.get_dataset(unique_ns, "single").definition
    assert definition.location == "s3://bucket/single" and definition.format == "csv"
    assert columns(lake, unique_ns, "single") == {"id": "bigint", "name": "string"}


# -- fatal errors --------------------------------------------------------------------------------------
def test_fatal_errors_raise_crawl_error(lake: LakeClient, store: Path, unique_ns: str) -> None:
    with pytest.raises(CrawlError, match="does not exist"):
        run("s3://bucket/nowhere", unique_ns, lake, store)
    put(store, "bucket/ok/x.json", jsonl({"id": 1}))
    with pytest.raises(CrawlError, match="Cannot create database"):
        run("s3://bucket/ok", "bad/name", lake, store)
    with pytest.raises(CrawlError, match="Unsupported path"):
        run("gs://bucket/ok", unique_ns, lake, store)
    with LakeClient(f"http://127.0.0.1:{free_port()}", timeout=5) as unreachable:
        with pytest.raises(CrawlError, match="Catalog unreachable"):
            run("s3://bucket/ok", unique_ns, unreachable, store)


# -- the CLI -------------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(server: CatalogServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from the environment: the session server and a lake home under tmp_path (its object store
    is yielded). The command installs a log handler on the runner's stderr: the logging setup is restored."""
    home = tmp_path / "home"
    monkeypatch.setenv("LAKEFORGE_CATALOG_URI", server.uri)
    monkeypatch.setenv("LAKEFORGE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "250")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("catalog", "jobs", "cluster", "lakeforge")}
    get_settings.cache_clear()
    yield home / "s3"
    get_settings.cache_clear()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_cli_crawl_prints_the_report(cli_env: Path, lake: LakeClient, unique_ns: str) -> None:
    write_access_logs(cli_env, "bucket/cli-logs", "2024-01-01", "03")
    put(cli_env, "bucket/cli-logs/dt=2024-01-01/hour=03/junk.bin", os.urandom(100) + b"\x00")
    runner = CliRunner()

    result = runner.invoke(app, ["crawl", "s3://bucket/cli-logs", "--database", unique_ns])

    assert result.exit_code == 0, result.output
    assert "cli_logs" in result.stdout and "created" in result.stdout
    assert "junk.bin" in result.stdout and "binary data" in result.stdout
    assert "1 created, 0 updated" in result.stdout
    assert columns(lake, unique_ns, "cli_logs") == ACCESS_LOG_COLUMNS

    write_access_logs(cli_env, "bucket/cli-logs", "2024-01-02", "00", referrer="r")
    put(cli_env, "bucket/cli-logs/dt=2024-01-03/hour=00/x.json", jsonl({"secret": 1}))
    logged = runner.invoke(
        app,
        ["crawl", "s3://bucket/cli-logs", "-d", unique_ns, "--update-behavior", "log", "--exclude", "dt=2024-01-03"],
    )
    assert logged.exit_code == 0, logged.output
    assert "change-logged" in logged.stdout and "added column referrer string" in logged.stdout
    assert [v.version for v in lake.list_versions(unique_ns, "cli_logs")] == [1]
    assert ("2024-01-03", "00") not in partitions(lake, unique_ns, "cli_logs")
    assert ("2024-01-02", "00") in partitions(lake, unique_ns, "cli_logs")


def test_cli_fatal_errors_exit_non_zero_with_one_line(
    cli_env: Path, unique_ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["crawl", "s3://bucket/missing", "--database", unique_ns])
    assert missing.exit_code == 1 and missing.stdout == ""
    assert re.fullmatch(r"error: Path s3://bucket/missing does not exist \(looked in .*\)\n", missing.stderr)

    put(cli_env, "bucket/present/x.json", jsonl({"id": 1}))
    monkeypatch.setenv("LAKEFORGE_CATALOG_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    down = runner.invoke(app, ["crawl", "s3://bucket/present", "--database", unique_ns])
    assert down.exit_code == 1 and down.stdout == ""
    # Progress logs may come first on stderr; the error is the last line, and one line.
    last = down.stderr.splitlines()[-1]
    assert re.fullmatch(r"error: Catalog unreachable at http://127\.0\.0\.1:\d+: .+", last)

    bad = runner.invoke(app, ["crawl", "s3://bucket/present", "--database", unique_ns, "--update-behavior", "NEVER"])
    assert bad.exit_code == 2  # a usage error, from the CLI itself


def test_partly_unparseable_files_are_reported_once(
    lake: LakeClient, store: Path, unique_ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = jsonl(*({"id": i} for i in range(30)))
    put(store, "bucket/partly/a.json", good + "{broken\n")
    put(store, "bucket/partly/b.json", good + "{broken\n")
    put(store, "bucket/partly/c.json", good)

    with caplog.at_level(logging.WARNING, logger="jobs.crawler"):
        report = run("s3://bucket/partly", unique_ns, lake, store)

    assert report.tables_created == ["partly"]
    assert sorted(f.file for f in report.partly_unparseable) == [
        "s3://bucket/partly/a.json",
        "s3://bucket/partly/b.json",
    ]
    assert all("1 unparseable records" in f.reason for f in report.partly_unparseable)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 file(s) hold unparseable JSON records" in warnings[0]
