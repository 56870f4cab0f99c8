"""Exactly-once into Iceberg across crashes: a bookmarked Glue job script, run unmodified with
``spark-submit``, is killed (``os._exit`` at a point named by ``LAKEFORGE_BOOKMARK_FAULT``) before its
table commit, between its table commit and its bookmark commit, and after both; each rerun leaves the table
with exactly the input's rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from catalog.client import LakeClient
from catalog.server import CatalogServer
from jobs.glue.bookmarks import FAULT_ENV, FAULT_EXIT_CODE
from jobs.glue.context import GlueContext
from jobs.glue.job import Job
from tests.jobs.glue_io_fixtures import *  # noqa: F403 - the fixtures

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = """\
import sys
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "input", "database"])
glueContext = GlueContext(SparkContext.getOrCreate())
job = Job(glueContext)
job.init(args["JOB_NAME"], args)

events = glueContext.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["input"]], "recurse": True},
    format="json",
    transformation_ctx="events",
)
mapped = ApplyMapping.apply(
    frame=events, mappings=[("id", "long", "id", "long"), ("v", "string", "v", "string")], transformation_ctx="mapped"
)
glueContext.write_dynamic_frame.from_catalog(
    frame=mapped,
    database=args["database"],
    table_name="events",
    additional_options={"enableUpdateCatalog": True},
    transformation_ctx="sink",
)
job.commit()
"""


def _land(directory: Path, name: str, ids: range) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("".join(f'{{"id": {i}, "v": "e{i}"}}\n' for i in ids))
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))


def test_a_rerun_after_a_crash_at_any_point_neither_loses_nor_duplicates_rows(
    server: CatalogServer, spark, glue_context: GlueContext, lake_root: Path, bucket: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "events_to_iceberg.py"
    script.write_text(SCRIPT)
    job_name, database = f"eo_{uuid.uuid4().hex[:8]}", f"eo_{uuid.uuid4().hex[:8]}"
    ident = f"lake.{database}.events"
    landing = lake_root / bucket / "landing"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFORGE_", "PYSPARK_", "SPARK_"))}
    base_env["LAKEFORGE_HOME"] = str(server.settings.home)

    def submit(fault: str | None) -> subprocess.CompletedProcess[str]:
        env = dict(base_env)
        if fault:
            env[FAULT_ENV] = fault
        cmd = [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master", "local[2]",
            "--conf", f"spark.sql.catalog.lake.uri={server.uri}",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=2",
            str(script),
            "--JOB_NAME", job_name,
            "--input", f"s3://{bucket}/landing/",
            "--database", database,
            "--job-bookmark-option", "job-bookmark-enable",
        ]  # fmt: skip
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
        expected = FAULT_EXIT_CODE if fault else 0
        assert result.returncode == expected, result.stdout[-3000:] + result.stderr[-5000:]
        if fault:
            assert f"fault injection: exiting at {fault}" in result.stdout + result.stderr
        return result

    def rows() -> list[int]:
        if not spark.catalog.tableExists(ident):
            return []
        return sorted(r["id"] for r in spark.table(ident).collect())

    _land(landing, "a.json", range(1, 4))
    _land(landing, "b.json", range(4, 6))
    lake = LakeClient(server.uri)

    # 1. Killed after recording its state, before the table commit: nothing written, nothing advanced.
    submit("after-prepare")
    assert rows() == []
    assert lake.get_bookmark(job_name).version == 0

    # 2. Killed between the table commit and the bookmark commit: the rows are in, the bookmark is not.
    submit("after-table-commit")
    assert rows() == [1, 2, 3, 4, 5]
    assert lake.get_bookmark(job_name).version == 0
    crashed = lake.bookmark_history(job_name)[0]
    assert (crashed.status, crashed.prepared) == ("started", True)

    # 3. New input lands; the rerun commits the crashed run's state first (so a.json and b.json are not
    #    written again), processes only c.json, and is killed after both of its commits.
    _land(landing, "c.json", range(6, 8))
    submit("after-bookmark-commit")
    assert rows() == [1, 2, 3, 4, 5, 6, 7]
    history = lake.bookmark_history(job_name)
    assert [(r.status, r.committed_version) for r in history] == [
        ("committed", 2),
        ("committed", 1),
        ("failed", None),
    ]
    assert history[1].resolved_by == history[0].run_id and "recovered by run" in (history[1].error or "")
    assert "superseded" in (history[2].error or "")

    # 4. A later run (in process here) finds nothing new: the table keeps exactly one copy of each row.
    job = Job(glue_context).init(job_name, {"job_bookmark_option": "job-bookmark-enable"})
    frame = glue_context.create_dynamic_frame.from_options(
        "s3", {"paths": [f"s3://{bucket}/landing/"], "recurse": True}, format="json", transformation_ctx="events"
    )
    assert frame.count() == 0
    job.commit()
    assert rows() == [1, 2, 3, 4, 5, 6, 7]
    assert lake.get_bookmark(job_name).version == 3
    lake.close()
