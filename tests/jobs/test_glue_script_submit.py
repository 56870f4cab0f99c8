"""A Glue job script, written exactly as for AWS Glue, run unmodified with plain ``spark-submit``:
``s3://`` input and output, job arguments, a transform, a catalog-updating sink, ``job.commit()``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog.client import LakeClient
from catalog.server import CatalogServer

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SCRIPT = """\
import sys
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job

args = getResolvedOptions(sys.argv, ['JOB_NAME', 'input', 'output', 'database'])

sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args['JOB_NAME'], args)
logger = glueContext.get_logger()

source = glueContext.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args['input']], "recurse": True, "exclusions": "[\\"**.tmp\\"]"},
    format="json",
    transformation_ctx="source",
)
mapped = ApplyMapping.apply(
    frame=source,
    mappings=[("id", "long", "id", "long"), ("user.name", "string", "user_name", "string"),
              ("country", "string", "country", "string")],
    transformation_ctx="mapped",
)
logger.info("mapped %d records" % mapped.count())

sink = glueContext.getSink(
    path=args['output'],
    connection_type="s3",
    updateBehavior="UPDATE_IN_DATABASE",
    partitionKeys=["country"],
    enableUpdateCatalog=True,
    transformation_ctx="sink",
)
sink.setCatalogInfo(catalogDatabase=args['database'], catalogTableName="users")
sink.setFormat("glueparquet")
sink.writeFrame(mapped)

job.commit()
"""


def test_glue_script_runs_unmodified_under_spark_submit(server: CatalogServer, tmp_path: Path) -> None:
    pytest.importorskip("jobs.glue.dynamicframe")
    home = tmp_path / "lake"
    bucket = f"in-{uuid.uuid4().hex[:8]}"
    landing = home / "s3" / bucket / "raw" / "2024" / "05"
    landing.mkdir(parents=True)
    (landing / "a.json").write_text(
        '{"id": 1, "user": {"name": "ann"}, "country": "de"}\n{"id": 2, "user": {"name": "bob"}, "country": "fr"}\n'
    )
    (landing / "b.json").write_text('{"id": 3, "user": {"name": "cy"}, "country": "de", "extra": true}\n')
    (landing / "partial.tmp").write_text("{ not json")
    script = tmp_path / "glue_job.py"
    script.write_text(SCRIPT)
    database = f"etl_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFORGE_", "PYSPARK_", "SPARK_"))}
    env["LAKEFORGE_HOME"] = str(home)
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local[2]",
        "--conf", f"spark.sql.catalog.lake.uri={server.uri}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        str(script),
        "--JOB_NAME", "users_bronze",
        "--input", f"s3://{bucket}/raw/",
        "--output", f"s3://{bucket}/bronze/users",
        "--database", database,
        "--job-bookmark-option", "job-bookmark-disable",
        "--TempDir", f"s3://{bucket}/tmp/",
    ]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    # spark-submit passes the Python driver's stderr on to its own stdout
    assert "awsglue.GlueLogger: mapped 3 records" in result.stdout + result.stderr

    output = home / "s3" / bucket / "bronze" / "users"
    assert sorted(p.name for p in output.iterdir() if p.is_dir()) == ["country=de", "country=fr"]
    table = pq.read_table(output / "country=de")
    assert sorted(zip(table.column("id").to_pylist(), table.column("user_name").to_pylist(), strict=True)) == [
        (1, "ann"),
        (3, "cy"),
    ]
    with LakeClient(server.uri) as lake:
        dataset = lake.get_dataset(database, "users")
        assert dataset.definition.location == f"s3://{bucket}/bronze/users"
        assert [c.name for c in dataset.definition.columns] == ["id", "user_name"]
        assert sorted(p.values[0] for p in lake.list_partitions(database, "users")) == ["de", "fr"]
