"""Access logs: raw JSON lines (``dt=/hour=`` partitions) to a refined, partitioned Iceberg table.

A Glue job script, run with plain ``spark-submit`` (spark-defaults.conf supplies the ``lake`` catalog)::

    spark-submit jobs/access_logs_job.py --JOB_NAME access_logs \\
        --source_path s3://landing/access_logs/ \\
        --target_database web --target_table access_logs --errors_path s3://lake/errors/access_logs/

    # or from the raw dataset a crawler registered (lakeforge crawl s3://landing/access_logs --database raw),
    # pruning partitions in the catalog before any file is listed:
    spark-submit jobs/access_logs_job.py --JOB_NAME access_logs --source_database raw --source_table access_logs \\
        --push_down_predicate "dt >= '2026-11-02'" \\
        --target_database web --target_table access_logs --errors_path s3://lake/errors/access_logs/

What it does:

1. reads the raw records with Glue's per-value typing (``status`` is an ``int``/``string`` choice and
   ``latency_ms`` a ``double``/``string`` choice in typical input), ``transformation_ctx="source"`` so that
   job bookmarks pick up only new files;
2. types them: ``ResolveChoice`` makes both choices text, ``ApplyMapping`` casts to the refined types (and
   flattens the nested ``user`` struct); a value that does not cast (``latency_ms: "timeout"``, an
   unparseable ``ts``) is a *failed cast*;
3. derives columns (``dt``/``hour`` from ``ts`` in UTC, ``status_class``, ``is_server_error``, ``path_root``,
   ``is_bot``, ``tag_count``);
4. appends the good records to the Iceberg table ``--target_database``.``--target_table`` (partitioned by
   ``dt``, ``hour``; created when missing) through the REST catalog;
5. writes the error records as JSON lines under ``--errors_path``: malformed input lines (``kind`` =
   ``malformed``, the raw line in ``record``) and failed casts (``kind`` = ``cast``, the record as text).
   No good record is dropped: every input line is either in the table or an error record.

The last log line is a one-line summary (``access_logs_job: ... appended N records ...``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping, ResolveChoice
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("jobs.access_logs_job")

SOURCE_CTX = "source"
PARTITION_KEYS = ["dt", "hour"]
#: The typing: (source path, source type, target field, target type). ``*_text`` keep the raw text of the
#: fields whose cast can fail, to tell a failed cast (text present, value null) from a missing value.
MAPPINGS = [
    ("request_id", "string", "request_id", "string"),
    ("ts", "string", "ts_text", "string"),
    ("ts", "string", "ts", "timestamp"),
    ("ip", "string", "client_ip", "string"),
    ("method", "string", "method", "string"),
    ("path", "string", "path", "string"),
    ("status", "string", "status_text", "string"),
    ("status", "string", "status", "int"),
    ("bytes", "long", "bytes", "long"),
    ("latency_ms", "string", "latency_text", "string"),
    ("latency_ms", "string", "latency_ms", "double"),
    ("user_agent", "string", "user_agent", "string"),
    ("referrer", "string", "referrer", "string"),
    ("user.id", "long", "user_id", "long"),
    ("user.plan", "string", "user_plan", "string"),
    ("user.geo.country", "string", "country", "string"),
    ("user.geo.city", "string", "city", "string"),
    ("tags", "array", "tags", "array"),
]
#: (typed field, its raw text, target type name) of the casts that can fail.
CHECKED_CASTS = [
    ("ts", "ts_text", "timestamp"),
    ("status", "status_text", "int"),
    ("latency_ms", "latency_text", "double"),
]
TEXT_FIELDS = [text for _, text, _ in CHECKED_CASTS]
BOTS = r"(?i)(bot|crawler|spider|curl|httpx|okhttp|python-requests)"


def read_source(glue_context: Any, args: dict[str, Any]) -> Any:
    """The raw records: a crawler-registered dataset (``--source_database``/``--source_table``) or the files
    under ``--source_path``; ``--push_down_predicate`` prunes ``dt=/hour=`` partitions either way."""
    predicate = args.get("push_down_predicate") or ""
    if args.get("source_database") and args.get("source_table"):
        return glue_context.create_dynamic_frame.from_catalog(
            database=args["source_database"],
            table_name=args["source_table"],
            push_down_predicate=predicate,
            transformation_ctx=SOURCE_CTX,
        )
    if not args.get("source_path"):
        raise ValueError("Give --source_path, or --source_database and --source_table")
    return glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [args["source_path"]], "recurse": True},
        format="json",
        push_down_predicate=predicate,
        transformation_ctx=SOURCE_CTX,
    )


def type_records(source: Any) -> Any:
    """Resolve the choices to text and map every field to its refined type (unmapped fields are dropped)."""
    as_text = ResolveChoice.apply(
        frame=source,
        specs=[("status", "cast:string"), ("latency_ms", "cast:string")],
        transformation_ctx="choices_as_text",
    )
    return ApplyMapping.apply(frame=as_text, mappings=MAPPINGS, transformation_ctx="typed")


def failed_cast(df: DataFrame) -> Column:
    """True for a record with a value whose text did not cast (or without a ``ts``)."""
    failed = F.col("ts").isNull()
    for typed, text, _ in CHECKED_CASTS[1:]:
        failed = failed | (F.col(text).isNotNull() & F.col(typed).isNull())
    return failed


def cast_errors(df: DataFrame, stage: str = "typed") -> DataFrame:
    """The records of a typed frame whose casts failed, as error rows (``kind``, ``message``, ``stage``,
    ``info``, ``record``)."""
    reasons = [
        F.when(F.col("ts_text").isNull(), F.lit("ts is missing")).when(
            F.col("ts").isNull(), F.format_string("ts '%s' is not a timestamp", F.col("ts_text"))
        )
    ]
    for typed, text, type_name in CHECKED_CASTS[1:]:
        failed = F.col(text).isNotNull() & F.col(typed).isNull()
        reasons.append(F.when(failed, F.format_string(f"{typed} '%s' is not {type_name}", F.col(text))))
    record = F.to_json(F.struct(*[F.col(c) for c in df.columns if c not in ("ts", "status", "latency_ms")]))
    return df.where(failed_cast(df)).select(
        F.lit("cast").alias("kind"),
        F.concat_ws("; ", *reasons).alias("message"),
        F.lit(stage).alias("stage"),
        F.lit("failed cast").alias("info"),
        record.alias("record"),
    )


def derive(df: DataFrame) -> DataFrame:
    """The refined columns of the typed records (the session's time zone must be UTC for ``dt``/``hour``)."""
    return df.select(
        "request_id",
        "ts",
        F.to_date("ts").alias("dt"),
        F.hour("ts").alias("hour"),
        "client_ip",
        "method",
        "path",
        F.regexp_extract("path", r"^(/[^/?#]*)", 1).alias("path_root"),
        "status",
        F.concat((F.col("status") / 100).cast("int").cast("string"), F.lit("xx")).alias("status_class"),
        (F.col("status") >= 500).alias("is_server_error"),
        "bytes",
        "latency_ms",
        "user_agent",
        F.col("user_agent").rlike(BOTS).alias("is_bot"),
        "referrer",
        "user_id",
        "user_plan",
        "country",
        "city",
        F.col("tags").cast("array<string>").alias("tags"),
        F.when(F.col("tags").isNull(), F.lit(0)).otherwise(F.size("tags")).cast("int").alias("tag_count"),
    )


def malformed_errors(frame: Any) -> DataFrame:
    """The frame's error records (malformed input lines and other upstream errors) as error rows."""
    errors: DataFrame = frame.errorsAsDynamicFrame().toDF()
    return errors.select(
        F.lit("malformed").alias("kind"),
        F.col("error.message").alias("message"),
        F.col("error.stage").alias("stage"),
        F.col("error.info").alias("info"),
        F.col("error.record").alias("record"),
    )


def refine(glue_context: Any, source: Any) -> tuple[Any, DataFrame]:
    """The job's logic: (refined good records as a DynamicFrame, all error rows as a DataFrame)."""
    typed = type_records(source)
    df = typed.toDF()
    good = derive(df.where(~failed_cast(df)))
    errors = malformed_errors(typed).unionByName(cast_errors(df))
    return DynamicFrame.fromDF(good, glue_context, "refined"), errors


def optional_args(argv: list[str], names: list[str]) -> dict[str, Any]:
    """Glue has no optional job arguments: resolve the ones present (the usual ``'--x' in sys.argv`` idiom)."""
    present = [n for n in names if f"--{n}" in argv]
    resolved = getResolvedOptions(argv, present) if present else {}
    return {n: resolved.get(n) for n in names}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = getResolvedOptions(argv, ["JOB_NAME", "target_database", "target_table", "errors_path"])
    args.update(optional_args(argv, ["source_path", "source_database", "source_table", "push_down_predicate"]))

    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    source = read_source(glue_context, args)
    refined, errors = refine(glue_context, source)
    glue_context.write_dynamic_frame.from_catalog(
        frame=refined,
        database=args["target_database"],
        table_name=args["target_table"],
        additional_options={"enableUpdateCatalog": True, "partitionKeys": PARTITION_KEYS},
        transformation_ctx="target",
    )
    errors_run = f"{args['errors_path'].rstrip('/')}/run={job_run_label(args, job)}"
    glue_context.write_dynamic_frame.from_options(
        frame=DynamicFrame.fromDF(errors.coalesce(1), glue_context, "errors"),
        connection_type="s3",
        connection_options={"path": errors_run},
        format="json",
        transformation_ctx="errors",
    )
    job.commit()

    table = f"{glue_context.catalog_name}.{args['target_database']}.{args['target_table']}"
    added = appended_records(spark, table)
    kinds: dict[str, int] = {}
    if any(p.stat().st_size for p in glue_context.local_path(errors_run).glob("part-*")):
        written = spark.read.json(errors_run).groupBy("kind").agg(F.count("*").alias("n"))
        kinds = {r["kind"]: int(r["n"]) for r in written.collect()}
    log.info(
        "access_logs_job: appended %d records to %s; %d malformed lines and %d failed casts written to %s",
        added,
        table,
        kinds.get("malformed", 0),
        kinds.get("cast", 0),
        errors_run,
    )
    return 0


def job_run_label(args: dict[str, Any], job: Any) -> str:
    """The run's id: ``--JOB_RUN_ID`` when given, else the one ``Job.init`` made."""
    run_id = getattr(job, "runId", None)
    if callable(run_id):
        run_id = run_id()
    return str(args.get("JOB_RUN_ID") or run_id or "manual")


def appended_records(spark: Any, table: str) -> int:
    """``added-records`` of the table's latest snapshot (what this run appended)."""
    rows = spark.sql(f"SELECT summary FROM {table}.snapshots ORDER BY committed_at DESC LIMIT 1").collect()
    return int(rows[0]["summary"].get("added-records", 0)) if rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
