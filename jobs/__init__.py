"""The Glue-style ETL runtime and the project's own job scripts. Never imports ``cluster``."""
