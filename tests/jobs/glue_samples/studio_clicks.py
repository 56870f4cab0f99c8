import sys
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job
from awsgluedq.transforms import EvaluateDataQuality
from awsglue import DynamicFrame
import gs_now
from pyspark.sql import functions as SqlFuncs

def sparkSqlQuery(glueContext, query, mapping, transformation_ctx) -> DynamicFrame:
    for alias, frame in mapping.items():
        frame.toDF().createOrReplaceTempView(alias)
    result = spark.sql(query)
    return DynamicFrame.fromDF(result, glueContext, transformation_ctx)
def sparkAggregate(glueContext, parentFrame, groups, aggs, transformation_ctx) -> DynamicFrame:
    aggsFuncs = []
    for column, func in aggs:
        aggsFuncs.append(getattr(SqlFuncs, func)(column))
    result = parentFrame.toDF().groupBy(*groups).agg(*aggsFuncs) if len(groups) > 0 else parentFrame.toDF().agg(*aggsFuncs)
    return DynamicFrame.fromDF(result, glueContext, transformation_ctx)

args = getResolvedOptions(sys.argv, ['JOB_NAME'])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args['JOB_NAME'], args)

# Default ruleset used by all target nodes with data quality enabled
DEFAULT_DATA_QUALITY_RULESET = """
    Rules = [
        ColumnCount > 0
    ]
"""

# Script generated for node Amazon S3
AmazonS3_node1731000000001 = glueContext.create_dynamic_frame.from_options(format_options={"multiline": False}, connection_type="s3", format="json", connection_options={"paths": ["s3://studio-landing/clicks/"], "recurse": True}, transformation_ctx="AmazonS3_node1731000000001")

# Script generated for node Change Schema
ChangeSchema_node1731000000002 = ApplyMapping.apply(frame=AmazonS3_node1731000000001, mappings=[("click_id", "string", "click_id", "string"), ("user.id", "int", "user_id", "long"), ("user.country", "string", "country", "string"), ("page", "string", "page", "string"), ("duration_ms", "choice", "duration_ms", "double"), ("event_date", "string", "event_date", "string")], transformation_ctx="ChangeSchema_node1731000000002")

# Script generated for node Drop Duplicates
DropDuplicates_node1731000000003 =  DynamicFrame.fromDF(ChangeSchema_node1731000000002.toDF().dropDuplicates(["click_id"]), glueContext, "DropDuplicates_node1731000000003")

# Script generated for node Filter
Filter_node1731000000004 = Filter.apply(frame=DropDuplicates_node1731000000003, f=lambda row: (row["duration_ms"] > 0), transformation_ctx="Filter_node1731000000004")

# Script generated for node Add Current Timestamp
AddCurrentTimestamp_node1731000000005 = Filter_node1731000000004.gs_now(colName="ingested_at")

# Script generated for node SQL Query
SqlQuery0 = '''
select click_id, user_id, upper(country) as country, page, duration_ms, event_date, ingested_at
from myDataSource
'''
SQLQuery_node1731000000006 = sparkSqlQuery(glueContext, query = SqlQuery0, mapping = {"myDataSource":AddCurrentTimestamp_node1731000000005}, transformation_ctx = "SQLQuery_node1731000000006")

# Script generated for node Aggregate
Aggregate_node1731000000007 = sparkAggregate(glueContext, parentFrame = SQLQuery_node1731000000006, groups = ["page"], aggs = [["duration_ms", "avg"], ["click_id", "count"]], transformation_ctx = "Aggregate_node1731000000007")

# Script generated for node Amazon S3
AmazonS3_node1731000000008 = glueContext.getSink(path="s3://studio-curated/clicks/", connection_type="s3", updateBehavior="UPDATE_IN_DATABASE", partitionKeys=["event_date"], enableUpdateCatalog=True, transformation_ctx="AmazonS3_node1731000000008")
AmazonS3_node1731000000008.setCatalogInfo(catalogDatabase="studio_db",catalogTableName="clicks_curated")
AmazonS3_node1731000000008.setFormat("glueparquet", compression="snappy")
AmazonS3_node1731000000008.writeFrame(SQLQuery_node1731000000006)
# Script generated for node Amazon S3
AmazonS3_node1731000000009 = glueContext.write_dynamic_frame.from_options(frame=Aggregate_node1731000000007, connection_type="s3", format="json", connection_options={"path": "s3://studio-curated/page_stats/", "partitionKeys": []}, transformation_ctx="AmazonS3_node1731000000009")

job.commit()
