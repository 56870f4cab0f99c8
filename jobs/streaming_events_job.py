"""A Glue streaming job: JSON events landing under a prefix (as Kinesis Data Firehose delivers them) go into a
partitioned Iceberg table with ingestion-time columns, exactly once.

Run with plain spark-submit (spark-defaults.conf supplies the ``lake`` catalog)::

    spark-submit jobs/streaming_events_job.py --JOB_NAME events_stream \\
        --landing s3://landing/events/ --database streaming --table events \\
        --TempDir s3://tmp/events_stream/ [--window_size "5 seconds"] [--max_files_per_trigger 100]

Each micro-batch gets ``ingest_year``/``ingest_month``/``ingest_day``/``ingest_hour`` (the table's partition
columns) and is appended with ``write_dynamic_frame.from_catalog`` (the first batch creates the table). Progress
is kept in the checkpoint ``<TempDir>/<JOB_NAME>/checkpoint/``: a restart after a crash at any moment resumes
there, and the exactly-once sink of ``forEachBatch`` skips a replayed batch the table already holds, so no row
is lost or written twice. SIGTERM stops the job cleanly.

The events are JSON lines with the fields of ``EVENT_SCHEMA`` (``--schema`` gives another DDL schema).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame

log = logging.getLogger("jobs.streaming_events_job")

EVENT_SCHEMA = "event_id string, user_id bigint, kind string, value double, event_time timestamp"
PARTITION_KEYS = ["ingest_year", "ingest_month", "ingest_day", "ingest_hour"]
DEFAULTS = {"window_size": "5 seconds", "max_files_per_trigger": "", "schema": EVENT_SCHEMA}


def optional_args(argv: list[str]) -> dict[str, str]:
    """The optional arguments that were given (Glue scripts ask for them only when present)."""
    present = [name for name in DEFAULTS if f"--{name}" in argv or any(a.startswith(f"--{name}=") for a in argv)]
    found = getResolvedOptions(argv, present) if present else {}
    return {name: str(found.get(name) or default) for name, default in DEFAULTS.items()}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = getResolvedOptions(argv, ["JOB_NAME", "landing", "database", "table", "TempDir"])
    options = optional_args(argv)

    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    source_options: dict[str, Any] = {
        "paths": [args["landing"]],
        "streaming": True,
        "classification": "json",
        "schema": options["schema"],
    }
    if options["max_files_per_trigger"]:
        source_options["maxFilesPerTrigger"] = options["max_files_per_trigger"]
    events = glue_context.create_data_frame.from_options(
        connection_type="s3", connection_options=source_options, transformation_ctx="events"
    )

    def process_batch(data_frame: DataFrame, batch_id: int) -> None:
        stamped = glue_context.add_ingestion_time_columns(data_frame, "hour")
        frame = DynamicFrame.fromDF(stamped, glue_context, "from_data_frame")
        glue_context.write_dynamic_frame.from_catalog(
            frame=frame,
            database=args["database"],
            table_name=args["table"],
            additional_options={"enableUpdateCatalog": True, "partitionKeys": PARTITION_KEYS},
        )

    checkpoint = args["TempDir"].rstrip("/") + "/" + args["JOB_NAME"] + "/checkpoint/"
    glue_context.forEachBatch(
        frame=events,
        batch_function=process_batch,
        options={"windowSize": options["window_size"], "checkpointLocation": checkpoint},
    )
    job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
