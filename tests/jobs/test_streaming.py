"""Glue streaming on Structured Streaming, in the test process: landing-prefix and catalog streams,
``forEachBatch`` (persisted batches, empty batches skipped, retries from the checkpoint, SIGTERM stop), the
exactly-once Iceberg sink under a replayed batch, the rate source and the Kafka/Kinesis errors."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from pyspark import StorageLevel
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame

from catalog.client import LakeClient
from catalog.datasets import DatasetDefinition
from jobs.glue import streaming
from jobs.glue.context import GlueContext
from jobs.glue.streaming import StreamingError, StreamingSourceUnavailableError
from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures

pytestmark = pytest.mark.spark


def _land(path: Path, lines: list[dict[str, Any]] | str) -> Path:
    """Land a file atomically (written under a hidden name, then renamed), as a Firehose delivery appears."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = lines if isinstance(lines, str) else "".join(json.dumps(line) + "\n" for line in lines)
    hidden = path.parent / f".{path.name}.tmp"
    hidden.write_text(text)
    os.replace(hidden, path)
    return path


def _summaries(spark: Any, table: str) -> list[dict[str, str]]:
    rows = spark.sql(f"SELECT summary FROM {table}.snapshots ORDER BY committed_at").collect()
    return [dict(r["summary"]) for r in rows]


def test_unavailable_sources_and_bad_options_fail_clearly(
    glue_context: GlueContext, lake: LakeClient, bucket: str, lake_root: Path
) -> None:
    read = glue_context.create_data_frame.from_options
    with pytest.raises(StreamingSourceUnavailableError, match="spark-sql-kafka.*Maven.*landing prefix"):
        read("kafka", {"bootstrap.servers": "localhost:9092", "topicName": "t", "classification": "json"})
    with pytest.raises(StreamingSourceUnavailableError, match="Kinesis connector"):
        glue_context.getSource("kinesis", streamName="s")
    ns = f"stream_{uuid.uuid4().hex[:8]}"
    lake.create_namespace(ns)
    lake.create_dataset(
        ns,
        "clicks",
        DatasetDefinition.model_validate(
            {
                "format": "json",
                "location": f"s3://{bucket}/clicks",
                "columns": [{"name": "id", "type": "bigint"}],
                "properties": {"typeOfData": "kinesis"},
            }
        ),
    )
    with pytest.raises(StreamingSourceUnavailableError, match="kinesis"):
        glue_context.create_data_frame.from_catalog(database=ns, table_name="clicks")

    landing = f"s3://{bucket}/landing"
    with pytest.raises(StreamingError, match="no file is there yet"):
        read("s3", {"paths": [landing], "streaming": True, "classification": "json"})
    with pytest.raises(StreamingError, match="needs a format"):
        read("s3", {"paths": [landing], "streaming": True, "schema": "id long"})
    with pytest.raises(StreamingError, match="Invalid schema"):
        read("s3", {"paths": [landing], "streaming": True, "classification": "json", "schema": "id lng,"})
    with pytest.raises(StreamingError, match="DynamicFrame"):
        glue_context.create_dynamic_frame.from_options(
            "s3", {"paths": [landing], "maxFilesPerTrigger": 1, "schema": "id long"}, format="json"
        )
    stream = read("s3", {"paths": [landing], "streaming": True, "classification": "json", "schema": "id long"})
    assert stream.isStreaming and stream.schema.simpleString() == "struct<id:bigint>"
    batch = glue_context.spark_session.range(1)
    for options, message in [
        ({"windowSize": "1 second"}, "checkpointLocation"),
        ({"checkpointLocation": f"{landing}/chk"}, "windowSize"),
        ({"windowSize": "soon", "checkpointLocation": "x"}, "windowSize must be an interval"),
        ({"windowSize": "1 second", "checkpointLocation": "x", "batchMaxRetries": 101}, "between 0 and 100"),
        ({"windowSize": "1 second", "checkpointLocation": "x", "storageLevel": "FAST"}, "Unknown storageLevel"),
    ]:
        with pytest.raises(StreamingError, match=message):
            glue_context.forEachBatch(frame=stream, batch_function=print, options=options)
    with pytest.raises(StreamingError, match="needs a streaming DataFrame"):
        glue_context.forEachBatch(batch, print, {"windowSize": "1 second", "checkpointLocation": "x"})
    assert streaming.interval_seconds("100 seconds") == 100
    assert streaming.interval_seconds("500 ms") == 0.5
    assert streaming.interval_seconds("2 minutes") == 120
    assert streaming.interval_seconds(3) == 3


def test_landing_prefix_stream_is_exactly_once_into_iceberg_under_replay(
    spark: Any, glue_context: GlueContext, bucket: str, lake_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Firehose-style nested delivery, schema inferred from the files there, one file per batch; an empty
    file makes an empty batch (skipped); each batch is persisted while the function runs and unpersisted
    after; every batch lands in the table once, also when Spark replays the last one after a crash."""
    base = lake_root / bucket / "landing"
    _land(base / "2026/11/22/07/a.json", [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}])
    _land(base / "2026/11/22/07/b.json", "")
    _land(base / "2026/11/22/08/c.json", [{"id": 3, "name": "cy"}])
    ns = f"stream_{uuid.uuid4().hex[:8]}"
    table = f"lake.{ns}.people"
    stream = glue_context.create_data_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [f"s3://{bucket}/landing/"], "classification": "json", "maxFilesPerTrigger": 1},
    )
    assert stream.isStreaming and sorted(stream.columns) == ["id", "name"]
    calls: list[tuple[int, int, bool]] = []
    frames: list[DataFrame] = []

    def process(data_frame: DataFrame, batch_id: int) -> None:
        calls.append((batch_id, data_frame.count(), data_frame.storageLevel != StorageLevel.NONE))
        frames.append(data_frame)
        glue_context.write_data_frame.from_catalog(
            frame=data_frame, database=ns, table_name="people", additional_options={"enableUpdateCatalog": True}
        )

    checkpoint = f"s3://{bucket}/chk/people/"
    options = {"windowSize": "1 second", "checkpointLocation": checkpoint, "availableNow": True}
    stats = glue_context.forEachBatch(frame=stream, batch_function=process, options=options)
    assert calls == [(0, 2, True), (2, 1, True)]  # batch 1 (the empty file) skipped
    assert (stats.batches, stats.skipped_empty, stats.records) == (2, 1, 3)
    assert all(f.storageLevel == StorageLevel.NONE for f in frames)  # unpersisted after the function
    assert sorted((r.id, r.name) for r in spark.table(table).collect()) == [(1, "ann"), (2, "bob"), (3, "cy")]
    summaries = _summaries(spark, table)
    query_ids = {s[streaming.QUERY_ID_KEY] for s in summaries}
    assert len(query_ids) == 1 and [s[streaming.BATCH_ID_KEY] for s in summaries] == ["0", "2"]

    # A crash after the table commit of batch 2 and before Spark's commit log: Spark replays batch 2.
    (lake_root / bucket / "chk/people/commits/2").unlink()
    _land(base / "2026/11/22/09/d.json", [{"id": 4, "name": "dee"}])
    calls.clear()
    with caplog.at_level("INFO", logger="jobs.glue.streaming"):
        glue_context.forEachBatch(frame=stream, batch_function=process, options=options)
    assert calls == [(2, 1, True), (3, 1, True)]
    assert "batch 2 write 0 of stream" in caplog.text and "already committed: skipped" in caplog.text
    rows = sorted((r.id, r.name) for r in spark.table(table).collect())
    assert rows == [(1, "ann"), (2, "bob"), (3, "cy"), (4, "dee")]  # cy once
    summaries = _summaries(spark, table)
    assert [s[streaming.BATCH_ID_KEY] for s in summaries] == ["0", "2", "3"]
    assert {s[streaming.QUERY_ID_KEY] for s in summaries} == query_ids  # the checkpoint keeps the query id


def test_failed_batches_are_retried_from_the_checkpoint(
    glue_context: GlueContext, bucket: str, lake_root: Path
) -> None:
    _land(lake_root / bucket / "in" / "a.json", [{"id": 1}, {"id": 2}])
    stream = glue_context.create_data_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/in"], "streaming": True, "schema": "id long"}, format="json"
    )
    seen: list[tuple[int, list[int]]] = []

    def flaky(data_frame: DataFrame, batch_id: int) -> None:
        seen.append((batch_id, sorted(r.id for r in data_frame.collect())))
        if len(seen) == 1:
            raise RuntimeError("sink unavailable")

    options = {"windowSize": "1 second", "checkpointLocation": f"s3://{bucket}/chk1", "availableNow": True}
    stats = glue_context.forEachBatch(stream, flaky, options)
    assert seen == [(0, [1, 2]), (0, [1, 2])]  # the same batch again, from the checkpoint
    assert stats.retries == 1 and stats.batches == 1

    def broken(data_frame: DataFrame, batch_id: int) -> None:
        raise RuntimeError("always broken")

    options = {**options, "checkpointLocation": f"s3://{bucket}/chk2", "batchMaxRetries": 0}
    with pytest.raises(StreamingQueryException, match="always broken"):
        glue_context.forEachBatch(stream, broken, options)


def test_rate_source_runs_until_sigterm_and_samples(glue_context: GlueContext, bucket: str) -> None:
    rate = glue_context.create_data_frame.from_options("rate", {"rowsPerSecond": 20})
    assert rate.isStreaming and rate.columns == ["timestamp", "value"]
    with pytest.raises(StreamingError, match="Unknown option 'rowsPerMinute'"):
        glue_context.create_data_frame.from_options("rate", {"rowsPerMinute": 20})
    values: list[int] = []

    def count(data_frame: DataFrame, batch_id: int) -> None:
        values.extend(r.value for r in data_frame.collect())
        if len(values) >= 20:
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()

    stats = glue_context.forEachBatch(
        rate, count, {"windowSize": "500 ms", "checkpointLocation": f"s3://{bucket}/rate-chk"}
    )
    assert stats.batches >= 1 and sorted(values)[:20] == list(range(20))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again

    sample = glue_context.getSampleStreamingDynamicFrame(
        rate, {"windowSize": "500 ms", "pollingTimeInMs": 20000, "recordPollingLimit": 5}
    )
    assert sample.count() == 5 and sorted(sample.toDF().columns) == ["timestamp", "value"]


def test_catalog_dataset_and_iceberg_table_streams(
    spark: Any, glue_context: GlueContext, lake: LakeClient, bucket: str, lake_root: Path
) -> None:
    ns = f"stream_{uuid.uuid4().hex[:8]}"
    lake.create_namespace(ns)
    lake.create_dataset(
        ns,
        "orders",
        DatasetDefinition.model_validate(
            {
                "format": "csv",
                "location": f"s3://{bucket}/orders",
                "columns": [{"name": "id", "type": "bigint"}, {"name": "amount", "type": "double"}],
                "partition-keys": [{"name": "day", "type": "date"}, {"name": "partition_1", "type": "string"}],
                "properties": {"typeOfData": "file", "skip.header.line.count": "1", "streaming": "true"},
            }
        ),
    )
    _land(lake_root / bucket / "orders/day=2026-11-01/eu/a.csv", "id,amount\n1,9.5\n2,1.25\n")
    _land(lake_root / bucket / "orders/day=2026-11-02/us west/b.csv", "id,amount\n3,4.0\n")
    orders = glue_context.create_data_frame.from_catalog(database=ns, table_name="orders")
    assert orders.isStreaming
    got: list[tuple[Any, ...]] = []
    glue_context.forEachBatch(
        orders,
        lambda df, _: got.extend(tuple(r) for r in df.collect()),
        {"checkpointLocation": f"s3://{bucket}/chk-orders", "availableNow": True},
    )
    import datetime as dt

    assert sorted(got) == [
        (1, 9.5, dt.date(2026, 11, 1), "eu"),
        (2, 1.25, dt.date(2026, 11, 1), "eu"),
        (3, 4.0, dt.date(2026, 11, 2), "us west"),
    ]

    spark.sql(f"CREATE TABLE lake.{ns}.t (id bigint) USING iceberg")
    spark.sql(f"INSERT INTO lake.{ns}.t VALUES (1), (2)")
    spark.sql(f"INSERT INTO lake.{ns}.t VALUES (3)")
    appends = glue_context.create_data_frame.from_catalog(
        database=ns, table_name="t", additional_options={"streaming": True}
    )
    ids: list[int] = []
    glue_context.forEachBatch(
        appends,
        lambda df, _: ids.extend(r.id for r in df.collect()),
        {"checkpointLocation": f"s3://{bucket}/chk-t", "availableNow": True},
    )
    assert sorted(ids) == [1, 2, 3]
