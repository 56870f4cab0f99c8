"""``awsglue.utils``: lakeforge's ``jobs.glue.utils``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.utils")
