"""Step script: write ``rows`` rows (id, k, v = 2 * id) into an Iceberg table; record the session's conf.

Usage: write_table.py <table> <rows> <probe.json>
"""

import json
import sys

from pyspark.sql import SparkSession

table, rows, probe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
spark = SparkSession.builder.appName("ignored: the step's RayDP session is returned").getOrCreate()
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
df = spark.range(0, rows, numPartitions=6).selectExpr("id", "id % 7 AS k", "id * 2 AS v").repartition(4, "k")
df.writeTo(table).using("iceberg").createOrReplace()
keys = [
    "spark.master",
    "spark.sql.catalog.lake.uri",
    "spark.sql.extensions",
    "spark.sql.session.timeZone",
    "spark.decommission.enabled",
    "spark.storage.decommission.enabled",
    "spark.storage.decommission.shuffleBlocks.enabled",
    "spark.dynamicAllocation.shuffleTracking.enabled",
    "spark.shuffle.service.enabled",
    "spark.eventLog.enabled",
    "spark.executor.instances",
]
conf = {k: spark.conf.get(k, None) for k in keys}
with open(probe, "w") as fh:
    json.dump({"conf": conf, "count": spark.table(table).count()}, fh)
