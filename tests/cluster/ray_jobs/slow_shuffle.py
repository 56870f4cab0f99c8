"""Step script: pass ``rows`` rows through two slow stages and a shuffle into an Iceberg table.

Every row sleeps ``ms`` milliseconds in each stage (``reflect`` of ``Thread.sleep``, evaluated per row because it
depends on ``id``), so a stage lasts long enough to lose an executor in the middle of it.

Usage: slow_shuffle.py <table> <rows> <ms>
"""

import sys

from pyspark.sql import SparkSession

table, rows, ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spark = SparkSession.builder.getOrCreate()
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")


def nap(name: str) -> str:
    return f"reflect('java.lang.Thread', 'sleep', CAST(id * 0 + {ms} AS BIGINT)) AS {name}"


df = spark.range(0, rows, numPartitions=12).selectExpr("id", "id % 13 AS k", nap("nap1"))
df = df.repartition(6, "k").selectExpr("id", "k", "nap1", nap("nap2"))
df.writeTo(table).using("iceberg").createOrReplace()
written = spark.table(table).count()
print(f"written {written}")
sys.exit(0 if written == rows else 3)
