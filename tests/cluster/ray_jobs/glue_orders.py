"""Glue-style step written against the unmodified ``awsglue`` API: orders -> ApplyMapping -> an Iceberg table
created through the catalog (``write_dynamic_frame.from_catalog`` with ``enableUpdateCatalog``).

Every row sleeps ``delay_ms`` in the map stage and again after the shuffle (``reflect`` of ``Thread.sleep``), so a
stage lasts long enough to lose a node in the middle of it.

Usage: glue_orders.py --JOB_NAME NAME --database DB --table TABLE --rows N --delay_ms MS
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "table", "rows", "delay_ms"])
glue = GlueContext(SparkContext.getOrCreate())
spark = glue.spark_session
job = Job(glue)
job.init(args["JOB_NAME"], args)
rows, ms, database = int(args["rows"]), int(args["delay_ms"]), args["database"]
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{database}")


def nap(name: str) -> str:
    return f"reflect('java.lang.Thread', 'sleep', CAST(id * 0 + {ms} AS BIGINT)) AS {name}"


orders = spark.range(0, rows, numPartitions=12).selectExpr(
    "id", "id % 13 AS customer", "CAST(id * 3 AS DOUBLE) AS amount", nap("nap1")
)
orders = orders.repartition(6, "customer").selectExpr("id", "customer", "amount", nap("nap2"))
frame = DynamicFrame.fromDF(orders, glue, "orders")
mapped = ApplyMapping.apply(
    frame=frame,
    mappings=[
        ("id", "long", "order_id", "long"),
        ("customer", "long", "customer_id", "long"),
        ("amount", "double", "amount", "double"),
    ],
)
glue.write_dynamic_frame.from_catalog(
    frame=mapped, database=database, table_name=args["table"], additional_options={"enableUpdateCatalog": True}
)
job.commit()
written = spark.table(f"lake.{database}.{args['table']}").count()
print(f"written {written}")
sys.exit(0 if written == rows else 3)
