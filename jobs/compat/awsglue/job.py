"""``awsglue.job``: lakeforge's ``jobs.glue.job``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.job")
