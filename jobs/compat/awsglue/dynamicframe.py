"""``awsglue.dynamicframe``: lakeforge's ``jobs.glue.dynamicframe``, plus Glue's reader and writer classes
(``DynamicFrameReader``, ``DynamicFrameWriter``), which live in ``jobs.glue.context`` here."""

from awsglue._alias import alias

alias(
    __name__,
    "jobs.glue.dynamicframe",
    extra={
        "DynamicFrameReader": ("jobs.glue.context", "DynamicFrameReader"),
        "DynamicFrameWriter": ("jobs.glue.context", "DynamicFrameWriter"),
    },
)
