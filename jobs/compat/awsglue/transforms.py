"""``awsglue.transforms``: lakeforge's ``jobs.glue.transforms``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.transforms")
