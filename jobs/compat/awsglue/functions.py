"""``awsglue.functions``: lakeforge's ``jobs.glue.functions``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.functions")
