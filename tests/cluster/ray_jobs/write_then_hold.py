"""Step script: write ``rows`` rows into an Iceberg table, touch ``ready``, then hold the session (and its
executors) until ``release`` exists or ``timeout`` seconds pass.

Usage: write_then_hold.py <table> <rows> <ready> <release> <timeout_s>
"""

import os
import sys
import time

from pyspark.sql import SparkSession

table, rows, ready, release, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
spark = SparkSession.builder.getOrCreate()
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
spark.range(0, rows, numPartitions=4).selectExpr("id").writeTo(table).using("iceberg").createOrReplace()
written = spark.table(table).count()
open(ready, "w").close()
deadline = time.monotonic() + timeout
while not os.path.exists(release):
    if time.monotonic() > deadline:
        sys.exit(5)
    time.sleep(0.5)
sys.exit(0 if written == rows else 3)
