"""Write a day-partitioned Iceberg table of synthetic web events through the lake catalog.

Run with plain spark-submit (spark-defaults.conf supplies the `lake` catalog)::

    spark-submit jobs/events_job.py --table lake.demo.events --rows 10000 --days 3
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

log = logging.getLogger("jobs.events_job")


def generate_events(spark: SparkSession, rows: int, days: int, start: str = "2026-11-01") -> DataFrame:
    """Deterministic synthetic events: ``rows`` rows spread evenly over ``days`` days."""
    return (
        spark.range(rows)
        .withColumn("day", F.date_add(F.lit(start).cast("date"), (F.col("id") % days).cast("int")))
        .withColumn("user_id", (F.col("id") * 7919 % 1000).cast("int"))
        .withColumn(
            "status",
            F.element_at(F.array(F.lit(200), F.lit(200), F.lit(404), F.lit(500)), (F.col("id") % 4 + 1).cast("int")),
        )
        .withColumn("bytes", (F.col("id") * 131 % 50_000).cast("long"))
        .withColumnRenamed("id", "event_id")
    )


def write_events(spark: SparkSession, table: str, events: DataFrame) -> None:
    namespace = table.rsplit(".", 1)[0]
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {table} "
        "(event_id bigint, day date, user_id int, status int, bytes bigint) USING iceberg PARTITIONED BY (day)"
    )
    events.writeTo(table).overwritePartitions()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="lake.demo.events")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    spark = SparkSession.builder.appName("events_job").getOrCreate()
    write_events(spark, args.table, generate_events(spark, args.rows, args.days))
    for row in spark.sql(f"SELECT day, count(*) AS n FROM {args.table} GROUP BY day ORDER BY day").collect():
        log.info("partition day=%s rows=%d", row["day"], row["n"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
