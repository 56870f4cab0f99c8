"""``awsglue.gluetypes``: lakeforge's ``jobs.glue.gluetypes``."""

from awsglue._alias import alias

alias(__name__, "jobs.glue.gluetypes")
