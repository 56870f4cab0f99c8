"""Change-data capture into Iceberg (``jobs.glue.cdc``, ``jobs/cdc_job.py``): DMS full-load and CDC files,
several changes to a key in a batch, late and duplicate changes, deletes and re-inserts, schema additions,
error records, idempotent replays, and the streaming variant."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame

from jobs.glue import cdc
from jobs.glue.cdc import CdcError, CdcOptions
from jobs.glue.context import GlueContext
from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures

pytestmark = pytest.mark.spark

OPTIONS = CdcOptions(keys=("id",), timestamp_column="cdc_ts")


def _land(path: Path, text: str) -> Path:
    """Land a file atomically (written under a hidden name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.parent / f".{path.name}.tmp"
    hidden.write_text(text)
    os.replace(hidden, path)
    return path


def _ts(second: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, 0, 0, second)


def _table(spark: Any, ident: str, key: str = "id") -> list[tuple[Any, ...]]:
    """The rows (columns in name order) by key."""
    df = spark.table(ident)
    return [tuple(r) for r in df.select(*sorted(df.columns)).orderBy(key).collect()]


def _files(glue_context: GlueContext, *paths: Path) -> list[Any]:
    return [cdc.stored_file(glue_context, str(p)) for p in paths]


def test_full_load_then_cdc_resolves_orders_and_ignores_late_and_duplicate_changes(
    spark: Any, glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    ns, base = f"cdc_{uuid.uuid4().hex[:8]}", lake_root / bucket / "dms" / "customers"
    ident = f"lake.{ns}.customers"
    load = _land(base / "LOAD00000001.csv", "id,name,city\n1,ann,berlin\n2,bob,paris\n3,cy,rome\n")
    cdc1 = _land(
        base / "20260101-000001.csv",
        "Op,cdc_ts,id,name,city\n"
        "U,2026-01-01 00:00:01,1,ann,munich\n"
        "I,2026-01-01 00:00:02,4,dee,oslo\n"
        "U,2026-01-01 00:00:03,4,dee,bergen\n"
        "D,2026-01-01 00:00:02,2,bob,paris\n"
        "U,2026-01-01 00:00:05,3,cy,milan\n"
        "U,2026-01-01 00:00:04,3,cy,turin\n",  # older than the change above it: milan stays
    )
    cdc2 = _land(
        base / "20260101-000002.csv",  # a column added at the source
        "Op,cdc_ts,id,name,city,tier\nu,2026-01-01 00:00:06,1,ann,munich,2\nI,2026-01-01 00:00:06,5,eve,lima,1\n"
        'I,2026-01-01 00:00:06,5,eve,"quito, ec",3\n',  # same timestamp: the later record wins
    )
    files = cdc.list_change_files(glue_context, [f"s3://{bucket}/dms/customers/"])
    assert [f.local for f in files] == [load, cdc1, cdc2]

    first = cdc.apply_changes(glue_context, ns, "customers", files, OPTIONS)
    assert (first.records, first.errors, first.inserted, first.updated, first.deleted) == (12, 0, 4, 0, 0)
    assert (first.ignored, first.superseded, first.created) == (1, 7, True)  # key 2: load and delete, one batch
    # columns sorted: _cdc_ts, city, id, name, tier
    assert _table(spark, ident) == [
        (_ts(6), "munich", 1, "ann", 2),
        (_ts(5), "milan", 3, "cy", None),
        (_ts(3), "bergen", 4, "dee", None),
        (_ts(6), "quito, ec", 5, "eve", 3),
    ]
    assert dict(spark.table(ident).dtypes)["tier"] == "bigint"
    assert _table(spark, f"lake.{ns}.customers_cdc_tombstones") == [(_ts(2), 2)]

    cdc3 = _land(
        base / "20260101-000003.csv",
        "Op,cdc_ts,id,name,city,tier\n"
        "U,2026-01-01 00:00:04,1,ann,OLD,1\n"  # late: the row is at :06
        "U,2026-01-01 00:00:06,1,ann,munich,2\n"  # duplicate of an applied change
        "I,2026-01-01 00:00:01,2,bob,LATE,0\n"  # late insert of a deleted key (tombstone at :02)
        "D,2026-01-01 00:00:07,4,dee,bergen,\n",
    )
    cdc4 = _land(
        base / "20260101-000004.csv",
        "Op,cdc_ts,id,name,city,tier\nI,2026-01-01 00:00:09,2,bob,vienna,4\nU,2026-01-01 00:00:08,3,cy,naples,\n",
    )
    second = cdc.apply_changes(glue_context, ns, "customers", _files(glue_context, cdc3, cdc4), OPTIONS)
    assert (second.records, second.inserted, second.updated, second.deleted) == (6, 1, 1, 1)
    assert (second.ignored, second.superseded, second.errors) == (1, 2, 0)
    expected = [
        (_ts(6), "munich", 1, "ann", 2),
        (_ts(9), "vienna", 2, "bob", 4),  # re-inserted after its delete, by a newer change
        (_ts(8), "naples", 3, "cy", None),
        (_ts(6), "quito, ec", 5, "eve", 3),
    ]
    assert _table(spark, ident) == expected

    # Applying a batch again (a replay after a crash) changes nothing.
    again = cdc.apply_changes(glue_context, ns, "customers", _files(glue_context, cdc3, cdc4), OPTIONS)
    assert (again.inserted, again.updated, again.deleted, again.errors) == (0, 0, 0, 0)
    assert (again.ignored, again.superseded, again.records) == (4, 2, 6)
    assert _table(spark, ident) == expected


def test_bad_change_records_become_error_records_and_nothing_is_lost(
    spark: Any, glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    ns, base = f"cdc_{uuid.uuid4().hex[:8]}", lake_root / bucket / "dms"
    ident = f"lake.{ns}.t"
    seed = _land(
        base / "20260101-000001.csv",
        "Op,cdc_ts,id,name,tier\nI,2026-01-01 00:00:01,1,ann,1\nI,2026-01-01 00:00:01,2,bob,2\n"
        "I,2026-01-01 00:00:09,3,cy,3\n",
    )
    cdc.apply_changes(glue_context, ns, "t", _files(glue_context, seed), OPTIONS)
    bad = _land(
        base / "20260101-000002.csv",
        "Op,cdc_ts,id,name,tier\n"
        "X,2026-01-01 00:00:10,1,ann,1\n"
        "U,2026-01-01 00:00:10,,nobody,1\n"
        "U,not-a-time,2,bob,5\n"
        "U,2026-01-01 00:00:10,2,bob,many\n"
        ",2026-01-01 00:00:10,2,bob,7\n"
        "U,2026-01-01 00:00:10,1,ann,1,EXTRA\n"
        "D,2026-01-01 00:00:08,3,cy,3\n"  # late delete: the row is at :09
        "U,2026-01-01 00:00:11,2,bob,9\n",
    )
    snapshots = spark.sql(f"SELECT count(*) AS n FROM {ident}.snapshots").first()["n"]
    with pytest.raises(CdcError, match=r"6 change record\(s\) cannot be applied; nothing was written.*unknown Op 'X'"):
        cdc.apply_changes(glue_context, ns, "t", _files(glue_context, bad), CdcOptions(keys=("id",), on_error="fail"))
    assert spark.sql(f"SELECT count(*) AS n FROM {ident}.snapshots").first()["n"] == snapshots

    result = cdc.apply_changes(glue_context, ns, "t", _files(glue_context, bad), OPTIONS)
    assert (result.records, result.errors, result.updated, result.ignored, result.superseded) == (8, 6, 1, 1, 0)
    assert _table(spark, ident) == [(_ts(1), 1, "ann", 1), (_ts(11), 2, "bob", 9), (_ts(9), 3, "cy", 3)]
    errors = spark.table(f"lake.{ns}.t_cdc_errors").orderBy("record_number").collect()
    assert [(e.record_number, e.op, e.reason) for e in errors] == [
        (1, "X", "unknown Op 'X' (expected I, U or D)"),
        (2, "U", "null key id"),
        (3, "U", "unparsable change timestamp cdc_ts 'not-a-time'"),
        (4, "U", "value 'many' of tier is not a bigint"),
        (5, None, "missing Op in a CDC file"),
        (6, "U", "malformed record"),
    ]
    assert all(e.source_file.endswith("/dms/20260101-000002.csv") for e in errors)
    assert errors[3].record == '{"cdc_ts":"2026-01-01 00:00:10","id":"2","name":"bob","tier":"many"}'
    cdc.apply_changes(glue_context, ns, "t", _files(glue_context, bad), OPTIONS)
    assert errors[5].record == "U,2026-01-01 00:00:10,1,ann,1,EXTRA"
    assert spark.table(f"lake.{ns}.t_cdc_errors").count() == 6  # a replay does not record them twice

    no_ts = _land(base / "20260101-000003.csv", "Op,id,name\nU,1,ann\n")
    with pytest.raises(CdcError, match="no change timestamp column 'cdc_ts'"):
        cdc.apply_changes(glue_context, ns, "t", _files(glue_context, no_ts), OPTIONS)
    with pytest.raises(CdcError, match="no key column 'customer_id'"):
        cdc.apply_changes(glue_context, ns, "t", _files(glue_context, seed), CdcOptions(keys=("customer_id",)))


def test_streaming_cdc_applies_files_as_they_land_and_survives_a_replay(
    spark: Any, glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    ns, base = f"cdc_{uuid.uuid4().hex[:8]}", lake_root / bucket / "dms"
    ident = f"lake.{ns}.orders"
    _land(base / "LOAD00000001.csv", "id,status\n1,new\n2,new\n")
    _land(base / "2026/01/01/20260101-000001.csv", "Op,cdc_ts,id,status\nU,2026-01-01 00:00:01,1,paid\n")
    arrivals = cdc.file_arrivals(glue_context, [f"s3://{bucket}/dms/"])
    results: list[tuple[int, int]] = []

    def process(data_frame: DataFrame, batch_id: int) -> None:
        result = cdc.apply_arrived(glue_context, ns, "orders", data_frame, OPTIONS)
        results.append((batch_id, result.records))

    options = {"checkpointLocation": f"s3://{bucket}/chk", "availableNow": True}
    glue_context.forEachBatch(arrivals, process, options)
    assert results == [(0, 3)]  # one batch: the full load, then the change
    assert _table(spark, ident) == [(_ts(1), 1, "paid"), (None, 2, "new")]
    _land(base / "2026/01/02/20260102-000001.csv", "Op,cdc_ts,id,status\nD,2026-01-02 00:00:01,2,new\n")
    _land(base / "2026/01/02/20260102-000002.csv", "Op,cdc_ts,id,status\nI,2026-01-01 00:00:00,2,late\n")
    glue_context.forEachBatch(arrivals, process, options)
    assert _table(spark, ident) == [(_ts(1), 1, "paid")]
    (lake_root / bucket / "chk" / "commits" / "1").unlink()  # crash after the MERGE, before Spark's commit
    results.clear()
    glue_context.forEachBatch(arrivals, process, options)
    assert results == [(1, 2)]
    assert _table(spark, ident) == [(_ts(1), 1, "paid")]


def test_cdc_job_script_applies_parquet_change_files_with_bookmarks(
    spark: Any, glue_context: GlueContext, lake_root: Path, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    from jobs import cdc_job

    ns, base = f"cdc_{uuid.uuid4().hex[:8]}", lake_root / bucket / "dms" / "items"
    base.mkdir(parents=True)
    pq.write_table(pa.table({"sku": ["a", "b"], "qty": pa.array([1, 2], pa.int32())}), base / "LOAD00000001.parquet")
    pq.write_table(
        pa.table(
            {
                "Op": ["U", "D", "I"],
                "cdc_ts": [dt.datetime(2026, 1, 1, 0, 0, 1)] * 3,
                "sku": ["a", "b", "c"],
                "qty": pa.array([5, 2, 7], pa.int32()),
                "note": ["restock", None, "new"],
            }
        ),
        base / "20260101-000001.parquet",
    )
    argv = ["cdc_job.py", "--JOB_NAME", f"items_cdc_{ns}", "--input", f"s3://{bucket}/dms/items/", "--database",
            ns, "--table", "items", "--keys", "sku", "--format", "parquet", "--partition_by", "sku",
            "--job-bookmark-option", "job-bookmark-enable"]  # fmt: skip
    with caplog.at_level("INFO", logger="jobs.glue.cdc"):
        assert cdc_job.main(argv) == 0
    assert "2 file(s), 5 record(s)" in caplog.text
    ident = f"lake.{ns}.items"
    assert _table(spark, ident, "sku") == [(_ts(1), "restock", 5, "a"), (_ts(1), "new", 7, "c")]
    assert dict(spark.table(ident).dtypes)["qty"] == "int"
    partitions = spark.sql(f"SELECT partition.sku AS sku FROM {ident}.partitions").collect()
    assert sorted(r.sku for r in partitions) == ["a", "c"]

    # The next bookmarked run reads only the file that landed since.
    update = {"Op": ["U"], "cdc_ts": [dt.datetime(2026, 1, 1, 0, 0, 2)], "sku": ["c"], "qty": pa.array([8], pa.int32())}
    pq.write_table(pa.table(update), base / "20260101-000002.parquet")
    caplog.clear()
    with caplog.at_level("INFO", logger="jobs.glue.cdc"):
        assert cdc_job.main(argv) == 0
    assert "1 file(s), 1 record(s): 0 inserted, 1 updated" in caplog.text
    assert _table(spark, ident, "sku") == [(_ts(1), "restock", 5, "a"), (_ts(2), "new", 8, "c")]
