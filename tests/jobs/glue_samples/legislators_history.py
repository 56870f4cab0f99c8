# A Glue job in the style of aws-glue-samples' join_and_relationalize example: three crawled catalog
# tables joined into a membership history, written as parquet three ways, then relationalized into flat
# tables written through a catalog JDBC connection.
import sys
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job

args = getResolvedOptions(sys.argv, ["JOB_NAME", "output_dir", "TempDir"])

glueContext = GlueContext(SparkContext.getOrCreate())
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)

db_name = "legislators"
tbl_persons = "persons_json"
tbl_membership = "memberships_json"
tbl_organization = "organizations_json"

output_history_dir = args["output_dir"] + "/legislator_history"
output_lg_single_dir = args["output_dir"] + "/legislator_single"
output_lg_partitioned_dir = args["output_dir"] + "/legislator_part"
temp_dir = args["TempDir"]

# Sources: the tables the crawler made of the raw JSON
persons = glueContext.create_dynamic_frame.from_catalog(
    database=db_name, table_name=tbl_persons, transformation_ctx="persons"
)
memberships = glueContext.create_dynamic_frame.from_catalog(database=db_name, table_name=tbl_membership)
orgs = glueContext.create_dynamic_frame.from_catalog(database=db_name, table_name=tbl_organization)
print("persons: %d, memberships: %d, orgs: %d" % (persons.count(), memberships.count(), orgs.count()))
persons.printSchema()

# Keep the fields we need and rename the clashing ones
orgs = orgs.drop_fields(["other_names", "identifiers"]).rename_field("id", "org_id").rename_field("name", "org_name")

# Join persons to their memberships, then to the organizations
l_history = Join.apply(
    orgs, Join.apply(persons, memberships, "id", "person_id"), "org_id", "organization_id"
).drop_fields(["person_id", "org_id"])
print("history: %d records" % l_history.count())

# Write the history as parquet
glueContext.write_dynamic_frame.from_options(
    frame=l_history, connection_type="s3", connection_options={"path": output_history_dir}, format="parquet"
)

# A single file
s_history = l_history.toDF().repartition(1)
s_history.write.parquet(output_lg_single_dir)

# Partitioned by chamber
l_history.toDF().write.parquet(output_lg_partitioned_dir, partitionBy=["org_name"])

# Flatten for the relational warehouse and write every table through the catalog connection
dfc = l_history.relationalize("hist_root", temp_dir)
for df_name in dfc.keys():
    m_df = dfc.select(df_name)
    print("Writing to table: ", df_name)
    glueContext.write_dynamic_frame.from_jdbc_conf(
        frame=m_df,
        catalog_connection="warehouse",
        connection_options={"dbtable": df_name, "database": "history"},
        redshift_tmp_dir=temp_dir,
    )

job.commit()
