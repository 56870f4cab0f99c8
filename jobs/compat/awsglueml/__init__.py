"""``awsglueml``: Glue's ML transforms, re-exported from lakeforge's ``jobs.glue.transforms``."""
