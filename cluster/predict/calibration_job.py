"""The calibration workload: a small multi-stage Spark job run at several data sizes in one application.

Run by :func:`cluster.predict.calibrate.run_local_campaign` with ``spark-submit --master local[k]`` (one launch
per core count); usable by hand too::

    spark-submit --master local[2] --conf spark.eventLog.enabled=true --conf spark.eventLog.dir=/tmp/ev \\
        cluster/predict/calibration_job.py --sizes 1,2,4 --out /tmp/runs.json

Each measured run is one Spark job group (``calibration-<size>-<repeat>``) over ``size * rows_per_unit`` rows:

* stage A: ``spark.range`` split into ``size * partitions_per_unit`` partitions (a source stage whose task count
  grows with the data), a hashed join key per row, shuffle write of every row;
* stage B: a second source of a tenth of the rows (the "dimension", half as many partitions), shuffle write;
* stage C: sort-merge join of A and B, partial aggregation by one of 97 groups (8 shuffle partitions: the task
  count is fixed, the data per task grows with the size);
* stage D: final aggregation, collected to the driver.

Every stage's work is proportional to the size (the sorts add a logarithmic factor).

The plan is pinned (adaptive execution off, broadcast joins off, 8 shuffle partitions) so that the task
structure is the same at every core count and grows with the data in a known way; adaptive coalescing would
change the reduce task count with the core count. Before the measured runs a warm-up writes and reads a small
Parquet dataset (so the event log holds input and output metrics) and runs the workload once at the smallest
size (JIT and code generation warm-up); the warm-up is not measured.

The driver writes one JSON document to ``--out``: the application id, the event log path, the core count, and
per run its job group, size, rows and wall-clock window (epoch seconds, the clock of the event log).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

log = logging.getLogger("lakeforge.calibration_job")

#: Shuffle partitions of the pinned plan.
SHUFFLE_PARTITIONS = 8
PINNED_CONF = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.shuffle.partitions": str(SHUFFLE_PARTITIONS),
    "spark.ui.enabled": "false",
}


def run_workload(spark: SparkSession, size: float, rows_per_unit: int, partitions_per_unit: int) -> int:
    """One run of the workload over ``size`` units; returns the number of result rows."""
    rows = max(10, int(size * rows_per_unit))
    parts = max(1, round(size * partitions_per_unit))
    keys = max(1, rows // 10)
    facts = spark.range(0, rows, 1, parts).select(
        (F.abs(F.xxhash64("id")) % keys).alias("k"),
        (F.col("id") * 7 % 1000).alias("v"),
    )
    dims = spark.range(0, keys, 1, max(1, parts // 2)).select(F.col("id").alias("k"), (F.col("id") % 97).alias("g"))
    result = facts.join(dims, "k").groupBy("g").agg(F.sum("v").alias("total"), F.count(F.lit(1)).alias("n"))
    return len(result.collect())


def warm_up(spark: SparkSession, scratch: Path) -> None:
    """A Parquet write and read (input/output metrics in the log), then nothing else heavy."""
    spark.sparkContext.setJobGroup("warmup-io", "warm-up: parquet write and read")
    path = str(scratch / "warmup.parquet")
    spark.range(0, 200_000, 1, 4).select(F.col("id"), (F.col("id") % 13).alias("m")).write.mode("overwrite").parquet(
        path
    )
    spark.read.parquet(path).groupBy("m").count().collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4", help="comma-separated data sizes (units)")
    parser.add_argument("--rows-per-unit", type=int, default=2_000_000)
    parser.add_argument("--partitions-per-unit", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per size")
    parser.add_argument("--scratch", type=Path, required=True, help="directory for the warm-up dataset")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]

    builder = SparkSession.builder.appName("lakeforge-calibration")
    for key, value in PINNED_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("WARN")
    args.scratch.mkdir(parents=True, exist_ok=True)
    warm_up(spark, args.scratch)
    sc.setJobGroup("warmup-run", "warm-up: smallest size")
    run_workload(spark, min(sizes), args.rows_per_unit, args.partitions_per_unit)

    runs = []
    for size in sizes:
        for rep in range(args.repeat):
            group = f"calibration-{size:g}-{rep}"
            sc.setJobGroup(group, f"calibration size {size:g} repeat {rep}")
            start = time.time()
            n = run_workload(spark, size, args.rows_per_unit, args.partitions_per_unit)
            end = time.time()
            log.info("size %g repeat %d: %.3f s (%d rows)", size, rep, end - start, n)
            runs.append(
                {
                    "group": group,
                    "size": size,
                    "repeat": rep,
                    "rows": max(10, int(size * args.rows_per_unit)),
                    "start": start,
                    "end": end,
                    "seconds": end - start,
                }
            )
    conf = sc.getConf()
    event_dir = conf.get("spark.eventLog.dir", "") or ""
    doc = {
        "app_id": sc.applicationId,
        "master": sc.master,
        "cores": sc.defaultParallelism,
        "event_log_dir": event_dir,
        "rows_per_unit": args.rows_per_unit,
        "partitions_per_unit": args.partitions_per_unit,
        "runs": runs,
    }
    spark.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
