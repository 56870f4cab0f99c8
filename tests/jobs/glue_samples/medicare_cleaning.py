# A Glue job in the style of aws-glue-samples' resolve_choice and data_cleaning_and_lambda examples: a
# crawled CSV whose "provider id" column is mostly numbers but not always, so the DynamicFrame sees a
# choice; the choice resolved four ways, the money columns cleaned with a UDF, and the records nested
# with apply_mapping.
import sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql.functions import udf
from pyspark.sql.types import StringType

args = getResolvedOptions(sys.argv, ["JOB_NAME", "output_dir"])

glueContext = GlueContext(SparkContext.getOrCreate())
spark = glueContext.spark_session

medicare_dyf = glueContext.create_dynamic_frame.from_catalog(database="payments", table_name="medicare")
medicare_dyf.printSchema()

# The catalog says bigint for "provider id" (the crawler sampled a prefix); the data says otherwise
medicare_res_cast = medicare_dyf.resolveChoice(specs=[("provider id", "cast:long")])
medicare_res_project = medicare_dyf.resolveChoice(specs=[("provider id", "project:long")])
medicare_res_make_cols = medicare_dyf.resolveChoice(specs=[("provider id", "make_cols")])
medicare_res_make_struct = medicare_dyf.resolveChoice(specs=[("provider id", "make_struct")])
medicare_res_make_struct.printSchema()

medicare_res_cast.toDF().where("`provider id` is NULL").show()
print("cast nulls: %d" % medicare_res_cast.toDF().where("`provider id` is NULL").count())
print("project nulls: %d" % medicare_res_project.toDF().where("`provider id` is NULL").count())
medicare_res_make_cols.toDF().where("`provider id_string` is not NULL").createOrReplaceTempView("odd_ids")
print("odd ids: %s" % sorted(r[0] for r in spark.sql("select `provider id_string` from odd_ids").collect()))

glueContext.write_dynamic_frame.from_options(
    frame=medicare_res_make_struct,
    connection_type="s3",
    connection_options={"path": args["output_dir"] + "/make_struct"},
    format="json",
)

# Drop the records without a numeric provider id, chop the "$" off the money, nest the result
medicare_dataframe = medicare_res_cast.toDF()
medicare_dataframe = medicare_dataframe.where("`provider id` is NOT NULL")
chop_f = udf(lambda x: x[1:], StringType())
medicare_dataframe = medicare_dataframe.withColumn(
    "ACC", chop_f(medicare_dataframe["average covered charges"])
).withColumn("ATP", chop_f(medicare_dataframe["average total payments"]))
medicare_tmp_dyf = DynamicFrame.fromDF(medicare_dataframe, glueContext, "nested")
medicare_nest_dyf = medicare_tmp_dyf.apply_mapping(
    [
        ("drg definition", "string", "drg", "string"),
        ("provider id", "long", "provider.id", "long"),
        ("provider name", "string", "provider.name", "string"),
        ("provider city", "string", "provider.city", "string"),
        ("provider state", "string", "provider.state", "string"),
        ("total discharges", "long", "discharges", "long"),
        ("ACC", "string", "charges.covered", "double"),
        ("ATP", "string", "charges.total_pay", "double"),
    ]
)
medicare_nest_dyf.printSchema()
glueContext.write_dynamic_frame.from_options(
    frame=medicare_nest_dyf,
    connection_type="s3",
    connection_options={"path": args["output_dir"] + "/nested"},
    format="json",
)
