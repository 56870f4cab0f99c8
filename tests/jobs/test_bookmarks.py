"""Job bookmarks on real Spark against the real catalog server: incremental file runs (new, modified, the
band of recently seen files, files landing during a run), failure before commit, concurrent runs,
pause / ``--job-bookmark-from`` / ``--job-bookmark-to``, disable, reset and rewind, JDBC keys on SQLite,
and the Iceberg sink's bookmark token (in-process; the crash tests run spark-submit in
``test_bookmarks_exactly_once.py``)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog import errors
from catalog.bookmarks import TOKEN_PROPERTY
from catalog.client import LakeClient
from catalog.server import CatalogServer
from jobs.glue import bookmarks
from jobs.glue.context import GlueContext
from jobs.glue.job import BookmarkVersionMismatchError, Job, JobError
from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures

pytestmark = pytest.mark.spark

ENABLE = {"job_bookmark_option": "job-bookmark-enable"}
PAUSE = {"job_bookmark_option": "job-bookmark-pause"}


def _job_name() -> str:
    return f"job_{uuid.uuid4().hex[:10]}"


def _write(path: Path, ids: list[int], mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "v": f"r{i}"}) + "\n" for i in ids))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _run(
    glue_context: GlueContext,
    name: str,
    source: str,
    args: dict[str, Any] | None = None,
    *,
    commit: bool = True,
    ctx: str = "events",
    options: dict[str, Any] | None = None,
) -> tuple[Job, list[int]]:
    """One run of a bookmarked job reading JSON files; returns the job and the ids it read."""
    job = Job(glue_context).init(name, {**ENABLE, **(args or {})})
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", {"paths": [source], "recurse": True, **(options or {})}, format="json", transformation_ctx=ctx
    )
    df = frame.toDF()
    ids = sorted(r["id"] for r in df.collect()) if "id" in df.columns else []
    if commit:
        job.commit()
    return job, ids


def test_incremental_runs_read_new_and_modified_files_once(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name, base = _job_name(), lake_root / bucket / "in"
    old = time.time() - 120
    for i in range(3):
        _write(base / f"part-{i}.json", [i * 10, i * 10 + 1], old)
    first, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == [0, 1, 10, 11, 20, 21]
    assert first.bookmark_version == 0 and first.attempt == 1

    _write(base / "part-3.json", [30], old + 1)
    _write(base / "part-1.json", [12, 13])  # modified: read again, with its new content
    second, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == [12, 13, 30]
    assert second.bookmark_version == 1

    _third, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == []  # nothing new: an empty frame, and the bookmark still advances a version

    bookmark = lake.get_bookmark(name)
    assert (bookmark.version, bookmark.run) == (3, 3)
    state = bookmark.state["events"]
    assert state["kind"] == "files" and state["files-read"] == 0
    assert sorted(state["band"]) == [f"s3://{bucket}/in/part-{i}.json" for i in range(4)]
    history = lake.bookmark_history(name)
    assert [(r.status, r.committed_version) for r in history] == [("committed", 3), ("committed", 2), ("committed", 1)]
    assert history[2].state is not None and history[2].state["events"]["files-read"] == 3


def test_band_reads_late_files_once_and_defers_files_landing_during_a_run(
    glue_context: GlueContext, lake_root: Path, bucket: str
) -> None:
    name, base = _job_name(), lake_root / bucket / "in"
    band = {"maxBand": "20000"}  # 20 s, so "older than the band" is testable
    start = time.time()
    _write(base / "a.json", [1], start - 10)
    _write(base / "during.json", [2], start + 2)  # being written while the run lists: for the next run
    job = Job(glue_context).init(name, ENABLE)
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/in/"], **band}, format="json", transformation_ctx="events"
    )
    assert sorted(r["id"] for r in frame.toDF().collect()) == [1]
    # Files that show up after the listing with an older modification time (a copy, a rename):
    _write(base / "late.json", [3], start - 5)  # inside the band: the next run reads it
    _write(base / "too-late.json", [4], start - 60)  # older than the band: missed, as in Glue
    job.commit()

    while time.time() <= start + 2.05:
        time.sleep(0.05)
    _job2, ids = _run(glue_context, name, f"s3://{bucket}/in/", options=band)
    assert ids == [2, 3]
    _job3, ids = _run(glue_context, name, f"s3://{bucket}/in/", options=band)
    assert ids == []


def test_failure_before_commit_reprocesses_the_same_input(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name = _job_name()
    _write(lake_root / bucket / "in" / "a.json", [1, 2], time.time() - 60)
    died, ids = _run(glue_context, name, f"s3://{bucket}/in/", commit=False)  # the run dies here
    assert ids == [1, 2]
    failed, ids = _run(glue_context, name, f"s3://{bucket}/in/", commit=False)
    failed.fail("transform raised ValueError")
    assert ids == [1, 2]
    again, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == [1, 2]  # nothing was lost
    assert again.attempt == 3  # Glue's attempt: two runs from this version did not commit

    runs = {r.run_id: r for r in lake.bookmark_history(name)}
    assert runs[str(died.runId)].status == "started" and runs[str(died.runId)].ended_ms is None
    assert runs[str(failed.runId)].status == "failed"
    assert runs[str(failed.runId)].error == "transform raised ValueError"
    assert runs[str(again.runId)].status == "committed"
    _job, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == []
    died.fail("cleanup")  # (so this process does not report it at exit)


def test_concurrent_runs_second_commit_gets_version_mismatch(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name = _job_name()
    _write(lake_root / bucket / "in" / "a.json", [1, 2], time.time() - 60)
    first, ids_first = _run(glue_context, name, f"s3://{bucket}/in/", commit=False)
    second, ids_second = _run(glue_context, name, f"s3://{bucket}/in/", commit=False)
    assert ids_first == ids_second == [1, 2]
    first.commit()
    winner = lake.get_bookmark(name)
    with pytest.raises(BookmarkVersionMismatchError) as mismatch:
        second.commit()
    message = str(mismatch.value)
    assert "GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR" in message
    assert f"started from bookmark version 0, but the bookmark is at version 1 (run '{first.runId}'" in message
    assert lake.get_bookmark(name) == winner  # the loser saved nothing
    loser = lake.get_bookmark_run(name, str(second.runId))
    assert loser.status == "failed" and "VERSION_MISMATCH" in (loser.error or "")
    _job, ids = _run(glue_context, name, f"s3://{bucket}/in/")
    assert ids == []  # the input is not processed a second time


def test_pause_and_ranges_between_runs(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name, base, source = _job_name(), lake_root / bucket / "in", f"s3://{bucket}/in/"
    t0 = time.time() - 300
    _write(base / "f1.json", [1], t0)
    r1, _ = _run(glue_context, name, source)
    _write(base / "f2.json", [2], t0 + 1)
    r2, _ = _run(glue_context, name, source)
    _write(base / "f3.json", [3], t0 + 2)
    r3, _ = _run(glue_context, name, source)
    _write(base / "f4.json", [4], t0 + 3)
    version = lake.get_bookmark(name).version

    paused, ids = _run(glue_context, name, source, PAUSE)
    assert ids == [4] and paused.bookmark_version == version
    assert lake.get_bookmark(name).version == version  # pause never saves state
    _p, ids = _run(glue_context, name, source, {**PAUSE, "job_bookmark_from": r1.runId, "job_bookmark_to": r2.runId})
    assert ids == [2]
    _p, ids = _run(glue_context, name, source, {**PAUSE, "job_bookmark_from": r1.runId, "job_bookmark_to": r3.runId})
    assert ids == [2, 3]
    _p, ids = _run(glue_context, name, source, {**PAUSE, "job_bookmark_from": r2.runId, "job_bookmark_to": r2.runId})
    assert ids == []

    with pytest.raises(errors.ValidationFailedError, match="comes after"):
        Job(glue_context).init(name, {**PAUSE, "job_bookmark_from": r3.runId, "job_bookmark_to": r1.runId})
    with pytest.raises(errors.NoSuchJobRunError):
        Job(glue_context).init(name, {**PAUSE, "job_bookmark_from": r1.runId, "job_bookmark_to": "jr_nope"})
    with pytest.raises(JobError, match="only allowed with --job-bookmark-option job-bookmark-pause"):
        Job(glue_context).init(name, {**ENABLE, "job_bookmark_from": r1.runId, "job_bookmark_to": r2.runId})
    with pytest.raises(JobError, match="go together"):
        Job(glue_context).init(name, {**PAUSE, "job_bookmark_from": r1.runId})
    assert lake.get_bookmark(name).version == version
    _job, ids = _run(glue_context, name, source)
    assert ids == [4]  # the paused runs left f4 for the next enabled run


def test_disable_reads_everything_and_needs_no_catalog(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name, source = _job_name(), f"s3://{bucket}/in/"
    _write(lake_root / bucket / "in" / "a.json", [1, 2], time.time() - 60)
    _run(glue_context, name, source)
    version = lake.get_bookmark(name).version
    _job, ids = _run(glue_context, name, source, {"job_bookmark_option": "job-bookmark-disable"})
    assert ids == [1, 2] and lake.get_bookmark(name).version == version

    nowhere = bookmarks.CatalogBookmarkStore(LakeClient("http://127.0.0.1:9", timeout=2))
    Job(glue_context, nowhere).init(name, {"job_bookmark_option": "job-bookmark-disable"}).commit()
    with pytest.raises(JobError, match=r"Cannot reach the lake catalog at http://127.0.0.1:9 .*job-bookmark-disable"):
        Job(glue_context, nowhere).init(name, ENABLE)


def test_sources_without_transformation_ctx_are_not_tracked(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    name, source = _job_name(), f"s3://{bucket}/in/"
    _write(lake_root / bucket / "in" / "a.json", [1], time.time() - 60)
    for _ in range(2):
        _job, ids = _run(glue_context, name, source, ctx="")
        assert ids == [1]
    assert lake.get_bookmark(name).state == {}


def test_reset_and_rewind_with_the_python_api_and_the_cli(
    glue_context: GlueContext, lake_root: Path, bucket: str, server: CatalogServer
) -> None:
    from cluster.cli import app

    name, base, source = _job_name(), lake_root / bucket / "in", f"s3://{bucket}/in/"
    t0 = time.time() - 300
    _write(base / "f1.json", [1], t0)
    r1, _ = _run(glue_context, name, source)
    _write(base / "f2.json", [2], t0 + 1)
    _run(glue_context, name, source)

    rewound = bookmarks.rewind_bookmark(name, str(r1.runId), catalog_uri=server.uri)
    assert rewound.version == 3 and rewound.state == bookmarks.get_bookmark(name, catalog_uri=server.uri).state
    _job, ids = _run(glue_context, name, source)
    assert ids == [2]
    assert bookmarks.reset_bookmark(name, catalog_uri=server.uri).state == {}
    _job, ids = _run(glue_context, name, source)
    assert ids == [1, 2]
    history = bookmarks.bookmark_history(name, 2, catalog_uri=server.uri)
    assert len(history) == 2 and history[0].run_id == _job.runId

    runner = CliRunner()
    uri = ["--catalog-uri", server.uri]
    shown = runner.invoke(app, ["bookmarks", "show", name, *uri])
    assert shown.exit_code == 0, shown.output
    assert f"version {lake_version(server, name)}" in shown.output and "events" in shown.output
    listed = runner.invoke(app, ["bookmarks", "history", name, "--json", *uri])
    assert listed.exit_code == 0, listed.output
    assert [r["run-id"] for r in json.loads(listed.output)][:1] == [_job.runId]
    rewind = runner.invoke(app, ["bookmarks", "rewind", name, "--to", str(r1.runId), *uri])
    assert rewind.exit_code == 0 and "rewound" in rewind.output
    _job, ids = _run(glue_context, name, source)
    assert ids == [2]
    reset = runner.invoke(app, ["bookmarks", "reset", name, *uri])
    assert reset.exit_code == 0 and "reset" in reset.output
    missing = runner.invoke(app, ["bookmarks", "show", "no_such_job", *uri])
    assert missing.exit_code == 1 and "has no bookmark" in missing.output
    bad = runner.invoke(app, ["bookmarks", "rewind", name, "--to", "jr_unknown", *uri])
    assert bad.exit_code == 1 and "no run 'jr_unknown'" in bad.output


def lake_version(server: CatalogServer, name: str) -> int:
    with LakeClient(server.uri) as lake:
        return lake.get_bookmark(name).version


def _sqlite(path: Path, ddl: str, rows: list[tuple[Any, ...]], table: str) -> None:
    with sqlite3.connect(path) as conn:
        if ddl:
            conn.execute(ddl)
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def test_jdbc_sources_by_primary_key_and_by_bookmark_keys(
    glue_context: GlueContext, tmp_path: Path, lake: LakeClient
) -> None:
    db = tmp_path / "app.db"
    url = f"jdbc:sqlite:{db}"
    _sqlite(db, "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)", [(1, "a"), (2, "b"), (3, "c")], "orders")
    _sqlite(db, "CREATE TABLE events (day TEXT, n INTEGER, v TEXT)", [("d1", 1, "x"), ("d1", 2, "y")], "events")
    name = _job_name()

    def run(args: dict[str, Any] | None = None, **extra: Any) -> dict[str, list[Any]]:
        job = Job(glue_context).init(name, {**ENABLE, **(args or {})})
        orders = glue_context.create_dynamic_frame.from_options(
            "sqlite", {"url": url, "dbtable": "orders"}, transformation_ctx="orders"
        )
        events = glue_context.create_dynamic_frame.from_options(
            "sqlite",
            {"url": url, "dbtable": "events", "jobBookmarkKeys": ["day", "n"], "jobBookmarkKeysSortOrder": "asc"},
            transformation_ctx="events",
        )
        got = {
            "orders": sorted(r["id"] for r in orders.toDF().collect()),
            "events": sorted((r["day"], r["n"]) for r in events.toDF().collect()),
        }
        job.commit()
        return got

    assert run() == {"orders": [1, 2, 3], "events": [("d1", 1), ("d1", 2)]}
    state = lake.get_bookmark(name).state
    assert state["orders"]["keys"] == ["id"] and state["orders"]["last"] == [3]
    assert state["events"]["last"] == ["d1", 2]
    _sqlite(db, "", [(4, "d"), (5, "e")], "orders")
    _sqlite(db, "", [("d1", 3, "z"), ("d2", 1, "w")], "events")
    assert run() == {"orders": [4, 5], "events": [("d1", 3), ("d2", 1)]}
    assert run() == {"orders": [], "events": []}

    with pytest.raises(
        JobError, match="has no primary key to bookmark by: pass connection_options\\['jobBookmarkKeys'\\]"
    ):
        Job(glue_context).init(_job_name(), ENABLE)
        glue_context.create_dynamic_frame.from_options(
            "sqlite", {"url": url, "dbtable": "events"}, transformation_ctx="events"
        )
    with pytest.raises(JobError, match=r"jobBookmarkKeys \['nope'\] are not columns of orders"):
        Job(glue_context).init(_job_name(), ENABLE)
        glue_context.create_dynamic_frame.from_options(
            "sqlite", {"url": url, "dbtable": "orders", "jobBookmarkKeys": '["nope"]'}, transformation_ctx="o"
        )


def test_jdbc_descending_keys(glue_context: GlueContext, tmp_path: Path) -> None:
    db = tmp_path / "countdown.db"
    url = f"jdbc:sqlite:{db}"
    _sqlite(db, "CREATE TABLE countdown (k INTEGER, v TEXT)", [(100, "a"), (90, "b")], "countdown")
    name = _job_name()
    options = {"url": url, "dbtable": "countdown", "jobBookmarkKeys": "k", "jobBookmarkKeysSortOrder": "desc"}

    def run() -> list[int]:
        job = Job(glue_context).init(name, ENABLE)
        df = glue_context.create_data_frame.from_options("sqlite", options, transformation_ctx="c")
        ids = sorted(r["k"] for r in df.collect())
        job.commit()
        return ids

    assert run() == [90, 100]
    _sqlite(db, "", [(80, "c"), (95, "late, out of order")], "countdown")
    assert run() == [80]  # keys must be strictly monotonic: 95 is behind the bookmark


def test_iceberg_sink_token_recovery_and_concurrent_writers(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient, spark
) -> None:  # type: ignore[no-untyped-def]
    name, source = _job_name(), f"s3://{bucket}/in/"
    database, table = f"bm_{uuid.uuid4().hex[:8]}", "events"
    ident = f"lake.{database}.{table}"
    _write(lake_root / bucket / "in" / "a.json", [1, 2], time.time() - 60)

    def run(*, commit: bool = True, job: Job | None = None) -> Job:
        job = job or Job(glue_context).init(name, ENABLE)
        glue_context._attach_job(job)  # in-process stand-in for runs in separate drivers
        frame = glue_context.create_dynamic_frame.from_options(
            "s3", {"paths": [source]}, format="json", transformation_ctx="events"
        )
        glue_context.write_dynamic_frame.from_catalog(
            frame, database=database, table_name=table, additional_options={"enableUpdateCatalog": True}
        )
        if commit:
            job.commit()
        return job

    first = run()
    summary = spark.sql(f"SELECT summary FROM {ident}.snapshots").collect()[0]["summary"]
    assert summary[TOKEN_PROPERTY] == f"0:{first.runId}:1:{name}"
    assert lake.get_bookmark_run(name, str(first.runId)).sinks == [f"{database}.{table}"]

    # A run whose table commit landed but whose bookmark commit did not (the process died in between):
    _write(lake_root / bucket / "in" / "b.json", [3], time.time() - 30)
    crashed = run(commit=False)
    assert sorted(r["id"] for r in spark.table(ident).collect()) == [1, 2, 3]
    rerun = Job(glue_context).init(name, ENABLE)
    recovered = lake.get_bookmark_run(name, str(crashed.runId))
    assert recovered.status == "committed" and recovered.resolved_by == rerun.runId
    assert rerun.bookmark_version == 2  # the crashed run's state was committed first
    run(job=rerun)  # nothing new to read: the rows of b.json are not written again
    assert sorted(r["id"] for r in spark.table(ident).collect()) == [1, 2, 3]

    # Two runs at once, both writing before either commits: the table refuses the second writer's commit,
    # so no row lands twice; a run that starts writing after another committed is stopped before it writes.
    _write(lake_root / bucket / "in" / "c.json", [4], time.time() - 20)
    one, two, three = (Job(glue_context).init(name, ENABLE) for _ in range(3))
    run(job=one, commit=False)
    with pytest.raises(Exception, match="table already holds the output of run") as refused:
        run(job=two, commit=False)
    assert "GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR" in str(refused.value)
    one.commit()
    with pytest.raises(BookmarkVersionMismatchError, match="started from bookmark version 3, but the bookmark is at"):
        run(job=three, commit=False)
    for loser in (two, three):
        loser.fail("refused")
        assert lake.get_bookmark_run(name, str(loser.runId)).status == "failed"
    assert sorted(r["id"] for r in spark.table(ident).collect()) == [1, 2, 3, 4]


def test_bounded_execution_reads_a_parquet_backlog_in_slices(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name, base = _job_name(), lake_root / bucket / "pq"
    t0 = time.time() - 300
    for i in range(5):  # modification times in the order the backlog should be read
        path = base / f"part-{4 - i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": pa.array([i], pa.int64())}), path)
        os.utime(path, (t0 + i, t0 + i))

    def run() -> list[int]:
        job = Job(glue_context).init(name, ENABLE)
        df = glue_context.create_data_frame.from_options(
            "s3", {"paths": [f"s3://{bucket}/pq/"], "boundedFiles": "2"}, format="parquet", transformation_ctx="pq"
        )
        ids = sorted(r["id"] for r in df.collect())
        job.commit()
        return ids

    assert [run() for _ in range(4)] == [[0, 1], [2, 3], [4], []]
    assert lake.get_bookmark(name).state["pq"]["files-read"] == 0


def test_catalog_datasets_are_tracked_across_partitions(
    glue_context: GlueContext, lake_root: Path, bucket: str, lake: LakeClient
) -> None:
    from catalog.datasets import DatasetColumn, DatasetDefinition

    name, database = _job_name(), f"raw_{uuid.uuid4().hex[:8]}"
    base = lake_root / bucket / "csv"
    old = time.time() - 120

    def land(day: str, file: str, ids: list[int]) -> None:
        path = base / f"dt={day}" / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,v\n" + "".join(f"{i},r{i}\n" for i in ids))
        os.utime(path, (old, old))
        lake.add_partitions(database, "events", [([day], f"s3://{bucket}/csv/dt={day}")])

    lake.create_namespace(database)
    definition = {
        "format": "csv",
        "location": f"s3://{bucket}/csv",
        "columns": [DatasetColumn(name="id", type="bigint"), DatasetColumn(name="v", type="string")],
        "partition-keys": [DatasetColumn(name="dt", type="string")],
        "properties": {"classification": "csv", "skip.header.line.count": "1", "delimiter": ","},
    }
    lake.put_dataset(database, "events", DatasetDefinition.model_validate(definition))
    land("2024-01-01", "a.csv", [1, 2])
    land("2024-01-02", "b.csv", [3])

    def run() -> list[tuple[int, str]]:
        job = Job(glue_context).init(name, ENABLE)
        df = glue_context.create_data_frame.from_catalog(
            database=database, table_name="events", transformation_ctx="raw"
        )
        rows = sorted((r["id"], r["dt"]) for r in df.collect())
        job.commit()
        return rows

    assert run() == [(1, "2024-01-01"), (2, "2024-01-01"), (3, "2024-01-02")]
    land("2024-01-02", "c.csv", [4])
    land("2024-01-03", "d.csv", [5])
    assert run() == [(4, "2024-01-02"), (5, "2024-01-03")]
    assert run() == []
