"""``awsglue.context``: lakeforge's ``jobs.glue.context``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.context")
