"""Step script: a job whose tasks sleep for ten minutes (something to cancel)."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
spark.range(0, 2, numPartitions=2).selectExpr(
    "reflect('java.lang.Thread', 'sleep', CAST(id * 0 + 600000 AS BIGINT))"
).collect()
