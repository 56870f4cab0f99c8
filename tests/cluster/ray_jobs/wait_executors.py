"""Step script: wait until ``n`` executors joined, then write ``rows`` rows using all of them.

Usage: wait_executors.py <table> <rows> <n> <timeout_s>
"""

import sys
import time

from pyspark.sql import SparkSession

table, rows, wanted, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
deadline = time.monotonic() + timeout
while (joined := sc._jsc.sc().getExecutorMemoryStatus().size() - 1) < wanted:
    if time.monotonic() > deadline:
        print(f"only {joined} of {wanted} executors joined within {timeout}s", file=sys.stderr)
        sys.exit(4)
    time.sleep(1)
print(f"{joined} executors")
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
df = spark.range(0, rows, numPartitions=wanted * 2).selectExpr("id", "id % 5 AS k")
df.writeTo(table).using("iceberg").createOrReplace()
sys.exit(0 if spark.table(table).count() == rows else 3)
