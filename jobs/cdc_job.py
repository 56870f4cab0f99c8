"""A Glue job applying AWS DMS-style change files (full load, then CDC files with ``Op`` I/U/D and a change
timestamp) to an Iceberg table with MERGE INTO, as a batch job or as a streaming job.

Run with plain spark-submit (spark-defaults.conf supplies the ``lake`` catalog)::

    # batch: the files under --input (with --job-bookmark-option job-bookmark-enable, only the new ones)
    spark-submit jobs/cdc_job.py --JOB_NAME customers_cdc --input s3://dms/sales/customers/ \\
        --database sales --table customers --keys id [--timestamp_column cdc_ts] [--format csv|parquet|json] \\
        [--partition_by region] [--on_error record|fail]

    # streaming: the change files as they land, one MERGE per micro-batch
    spark-submit jobs/cdc_job.py ... --streaming true --TempDir s3://tmp/ [--window_size "10 seconds"]

Semantics (see :mod:`jobs.glue.cdc`): several changes to a key in one batch resolve to the latest (timestamp,
then file and record order); late and duplicate changes are ignored (the table keeps the applied change
timestamp in ``_cdc_ts``, deleted keys leave tombstones in ``<table>_cdc_tombstones``); columns new in the
files are added to the table first; records that cannot be applied (unknown ``Op``, null key, bad timestamp
or value) go to ``<table>_cdc_errors``, or fail the run with ``--on_error fail``. Applying a batch again
changes nothing, so a crashed run (batch or streaming) is simply run again.
"""

from __future__ import annotations

import logging
import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame

from jobs.glue import cdc

log = logging.getLogger("jobs.cdc_job")

DEFAULTS = {
    "timestamp_column": "cdc_ts",
    "op_column": "Op",
    "format": "csv",
    "separator": ",",
    "partition_by": "",
    "on_error": "record",
    "streaming": "false",
    "window_size": "10 seconds",
    "max_files_per_trigger": "",
}


def optional_args(argv: list[str]) -> dict[str, str]:
    present = [name for name in DEFAULTS if f"--{name}" in argv or any(a.startswith(f"--{name}=") for a in argv)]
    found = getResolvedOptions(argv, present) if present else {}
    return {
        name: str(found.get(name) if found.get(name) is not None else default) for name, default in DEFAULTS.items()
    }


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = getResolvedOptions(argv, ["JOB_NAME", "input", "database", "table", "keys"])
    extra = optional_args(argv)
    options = cdc.CdcOptions(
        keys=_names(args["keys"]),
        op_column=extra["op_column"],
        timestamp_column=extra["timestamp_column"],
        format=extra["format"].lower(),
        separator=extra["separator"],
        partition_by=_names(extra["partition_by"]),
        on_error=extra["on_error"],
    )
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    database, table = args["database"], args["table"]

    if extra["streaming"].lower() in ("true", "1", "yes"):
        if not args.get("TempDir"):
            raise SystemExit(
                "--streaming true needs --TempDir (the checkpoint goes to <TempDir>/<JOB_NAME>/checkpoint/)"
            )
        max_files = int(extra["max_files_per_trigger"]) if extra["max_files_per_trigger"] else None
        arrivals = cdc.file_arrivals(glue_context, [args["input"]], max_files_per_trigger=max_files)

        def process_batch(data_frame: DataFrame, batch_id: int) -> None:
            result = cdc.apply_arrived(glue_context, database, table, data_frame, options)
            log.info("batch %d: %s", batch_id, result.as_dict())

        checkpoint = str(args["TempDir"]).rstrip("/") + "/" + args["JOB_NAME"] + "/checkpoint/"
        glue_context.forEachBatch(
            frame=arrivals,
            batch_function=process_batch,
            options={"windowSize": extra["window_size"], "checkpointLocation": checkpoint},
        )
    else:
        files = cdc.list_change_files(glue_context, [args["input"]], transformation_ctx="changes")
        result = cdc.apply_changes(glue_context, database, table, files, options)
        log.info("applied: %s", result.as_dict())
    job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
