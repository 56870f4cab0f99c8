"""The cluster benchmark's workload: a Glue-style job (unmodified ``awsglue`` API) that builds orders, shuffles
them by customer, maps the fields and writes an Iceberg table through the catalog.

Every row sleeps ``delay_ms`` in the map stage and again after the shuffle (``reflect`` of ``Thread.sleep``): the
tasks then take time without taking CPU, like tasks waiting on storage, so the runtime follows the number of
executor slots instead of this machine's two cores (every simulated node shares them). ``--delay_ms 0`` leaves
only the CPU work.

Prints ``job_seconds=<s>``: the time from the SparkSession being ready to the end (no JVM or Spark start-up).

Usage: orders_job.py --JOB_NAME NAME --database DB --table TABLE --rows N --delay_ms MS --partitions P
"""

import sys
import time

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "table", "rows", "delay_ms", "partitions"])
glue = GlueContext(SparkContext.getOrCreate())
spark = glue.spark_session
t0 = time.monotonic()
job = Job(glue)
job.init(args["JOB_NAME"], args)
rows, ms, parts, database = int(args["rows"]), int(args["delay_ms"]), int(args["partitions"]), args["database"]
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{database}")
spark.sql(f"DROP TABLE IF EXISTS lake.{database}.{args['table']}")


def nap(name: str) -> str:
    return f"reflect('java.lang.Thread', 'sleep', CAST(id * 0 + {ms} AS BIGINT)) AS {name}"


orders = spark.range(0, rows, numPartitions=parts).selectExpr(
    "id", "id % 97 AS customer", "CAST(id * 3 AS DOUBLE) AS amount", "sha2(CAST(id AS STRING), 256) AS h", nap("n1")
)
orders = orders.repartition(parts, "customer").selectExpr("id", "customer", "amount", "h", nap("n2"))
frame = DynamicFrame.fromDF(orders, glue, "orders")
mapped = ApplyMapping.apply(
    frame=frame,
    mappings=[
        ("id", "long", "order_id", "long"),
        ("customer", "long", "customer_id", "long"),
        ("amount", "double", "amount", "double"),
        ("h", "string", "digest", "string"),
    ],
)
glue.write_dynamic_frame.from_catalog(
    frame=mapped, database=database, table_name=args["table"], additional_options={"enableUpdateCatalog": True}
)
job.commit()
written = spark.table(f"lake.{database}.{args['table']}").count()
print(f"written={written} job_seconds={time.monotonic() - t0:.3f}")
sys.exit(0 if written == rows else 3)
