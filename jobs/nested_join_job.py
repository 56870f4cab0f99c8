"""Join two nested JSON inputs and relationalize the result into Iceberg tables.

The pattern of aws-glue-samples' ``join_and_relationalize.py``, on orders (with an array of line items,
each with an array of options, and a nested shipping address) and customers (a nested name and address,
an array of phone numbers). A Glue job script, run with plain ``spark-submit``::

    spark-submit jobs/nested_join_job.py --JOB_NAME orders_relational \\
        --orders_path s3://landing/orders/ --customers_path s3://landing/customers/ \\
        --target_database sales --TempDir s3://lake/tmp/ [--root_table order_root]

Steps: read both inputs (``transformation_ctx`` set, so bookmarks can track them), drop the customers'
internal fields and rename their key, ``Join.apply`` on the customer id (orders of unknown customers are
left out, as an inner join does), ``Relationalize.apply`` into a root table plus one child table per array
(``<root>_items``, ``<root>_items.val.options``, ``<root>_phones``: ``id`` joins the parent's array column,
``index`` is the position), staged under ``--TempDir``. Each table of the collection is appended to an
Iceberg table of ``--target_database`` (created when missing) named after it, with every character other
than letters, digits and ``_`` replaced by ``_`` (``order_root_items_val_options``); columns are renamed
the same way (``shipping.address.city`` becomes ``shipping_address_city``).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import Join, Relationalize
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("jobs.nested_join_job")

INTERNAL_CUSTOMER_FIELDS = ["internal_notes", "created_by"]


def sql_name(name: str) -> str:
    """A table or column name with everything but letters, digits and ``_`` replaced by ``_``."""
    return re.sub(r"[^0-9a-zA-Z_]", "_", name).lower()


def flat_columns(df: DataFrame) -> DataFrame:
    """``df`` with its (dotted, relationalized) column names made SQL names; a clash is an error."""
    names = [sql_name(c) for c in df.columns]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"columns {clashes} clash once dots are replaced: {df.columns}")
    return df.select(*[F.col(f"`{c}`").alias(n) for c, n in zip(df.columns, names, strict=True)])


def join_orders(glue_context: Any, orders_path: str, customers_path: str) -> Any:
    """Orders joined with their customers (a DynamicFrame), customers' internal fields dropped."""
    orders = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [orders_path], "recurse": True},
        format="json",
        transformation_ctx="orders",
    )
    customers = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [customers_path], "recurse": True},
        format="json",
        transformation_ctx="customers",
    )
    customers = customers.drop_fields(INTERNAL_CUSTOMER_FIELDS).rename_field("customer_id", "cust_id")
    return Join.apply(orders, customers, "customer_id", "cust_id").drop_fields(["cust_id"])


def relational_tables(joined: Any, root_table: str, staging_path: str) -> dict[str, DataFrame]:
    """``{table name: DataFrame with SQL column names}`` of the relationalized frame, root table first."""
    collection = Relationalize.apply(
        frame=joined, staging_path=staging_path, name=root_table, transformation_ctx="relationalize"
    )
    return {sql_name(name): flat_columns(collection.select(name).toDF()) for name in collection.keys()}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = getResolvedOptions(argv, ["JOB_NAME", "orders_path", "customers_path", "target_database", "TempDir"])
    root_table = getResolvedOptions(argv, ["root_table"])["root_table"] if "--root_table" in argv else "order_root"

    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)

    joined = join_orders(glue_context, args["orders_path"], args["customers_path"])
    tables = relational_tables(joined, root_table, args["TempDir"])
    for table, df in tables.items():
        glue_context.write_dynamic_frame.from_catalog(
            frame=DynamicFrame.fromDF(df, glue_context, table),
            database=args["target_database"],
            table_name=table,
            additional_options={"enableUpdateCatalog": True},
            transformation_ctx=f"write_{table}",
        )
    job.commit()

    written = []
    for table in tables:
        ident = f"{glue_context.catalog_name}.{args['target_database']}.{table}"
        snapshot = spark.sql(f"SELECT summary FROM {ident}.snapshots ORDER BY committed_at DESC LIMIT 1").first()
        written.append(f"{table}={snapshot['summary'].get('added-records', '0') if snapshot else 0}")
    log.info("nested_join_job: appended %s in %s", ", ".join(written), args["target_database"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
