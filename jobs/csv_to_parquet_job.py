"""CSV with mixed-type columns to partitioned, compressed Parquet, resolving the choice types on the way.

A Glue job script, run with plain ``spark-submit``::

    spark-submit jobs/csv_to_parquet_job.py --JOB_NAME sales_csv \\
        --source_path s3://landing/sales/ --output_path s3://lake/sales_parquet/ \\
        [--partition_keys region,sold_on] [--compression snappy] [--choice make_cols] \\
        [--errors_path s3://lake/errors/sales/]

Glue's CSV reader types every value on its own (``long``, ``double``, else ``string``), so a column holding
``12.5``, ``7`` and ``N/A`` is a choice of ``double``, ``long`` and ``string``. The job resolves:

* ``amount`` with ``cast:double`` (``7`` becomes ``7.0``, ``N/A`` null),
* ``quantity`` with ``project:long`` (only the integers are kept; ``two`` becomes null),
* every other choice with ``--choice`` (default ``make_cols``: one ``<column>_<type>`` column per type;
  also ``make_struct``, ``cast:<type>``, ``project:<type>``),

then writes Parquet partitioned by ``--partition_keys`` with ``--compression`` (``snappy``, ``gzip``,
``zstd``, ``none``). Rows with another number of values than the header are error records; with
``--errors_path`` they are written there as JSON lines (``message``, ``record``), never silently dropped.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ResolveChoice
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

log = logging.getLogger("jobs.csv_to_parquet_job")

SPECS = [("amount", "cast:double"), ("quantity", "project:long")]
DEFAULTS = {"partition_keys": "region", "compression": "snappy", "choice": "make_cols", "errors_path": ""}


def optional_args(argv: list[str]) -> dict[str, str]:
    """The optional arguments (Glue has none: resolve those present, the ``'--x' in sys.argv`` idiom)."""
    present = [name for name in DEFAULTS if f"--{name}" in argv]
    resolved = getResolvedOptions(argv, present) if present else {}
    return {name: str(resolved.get(name) or default) for name, default in DEFAULTS.items()}


def resolve(source: Any, choice: str) -> Any:
    """The records with every choice resolved: ``SPECS`` first, then ``choice`` for the rest."""
    specified = ResolveChoice.apply(frame=source, specs=SPECS, transformation_ctx="resolve_specs")
    return ResolveChoice.apply(frame=specified, choice=choice, transformation_ctx="resolve_rest")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = getResolvedOptions(argv, ["JOB_NAME", "source_path", "output_path"])
    args.update(optional_args(argv))
    keys = [k.strip() for k in args["partition_keys"].split(",") if k.strip()]

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    source = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [args["source_path"]], "recurse": True},
        format="csv",
        format_options={"withHeader": True, "separator": ","},
        transformation_ctx="source",
    )
    resolved = resolve(source, args["choice"])
    glue_context.write_dynamic_frame.from_options(
        frame=resolved,
        connection_type="s3",
        connection_options={"path": args["output_path"], "partitionKeys": keys},
        format="parquet",
        format_options={"compression": args["compression"]},
        transformation_ctx="sink",
    )
    errors = 0
    if args["errors_path"]:
        error_rows = resolved.errorsAsDynamicFrame().toDF().select("error.*").coalesce(1)
        glue_context.write_dynamic_frame.from_options(
            frame=DynamicFrame.fromDF(error_rows, glue_context, "errors"),
            connection_type="s3",
            connection_options={"path": args["errors_path"]},
            format="json",
            transformation_ctx="errors",
        )
        errors = glue_context.spark_session.read.json(args["errors_path"]).count()
    job.commit()

    written = glue_context.spark_session.read.parquet(args["output_path"])
    log.info(
        "csv_to_parquet_job: wrote %d records (%s) partitioned by %s to %s; %d error records",
        written.count(),
        ", ".join(f"{f.name}:{f.dataType.simpleString()}" for f in written.schema.fields),
        keys,
        args["output_path"],
        errors,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
