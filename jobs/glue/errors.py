"""Error records and the runtime's exceptions.

An error record is a row whose ``ERROR_COLUMN`` is non-null: a struct ``(message, stage, info,
record)`` with ``record`` the original record as JSON text (or the raw input text for records that
could not be parsed). Its data columns are null.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as st

from jobs.glue import ERROR_COLUMN

ERROR_FIELDS = ("message", "stage", "info", "record")
ERROR_TYPE = st.StructType([st.StructField(name, st.StringType(), True) for name in ERROR_FIELDS])
"""The Spark type of ``ERROR_COLUMN``."""

ERROR_FIELD = st.StructField(ERROR_COLUMN, ERROR_TYPE, True)


class GlueJobError(Exception):
    """Base of the Glue-compatible runtime's errors."""


class ErrorThresholdExceededError(GlueJobError):
    """A transformation produced more error records than its ``stageThreshold`` or ``totalThreshold``."""

    def __init__(self, stage: str, kind: str, count: int, threshold: int) -> None:
        self.stage = stage
        self.kind = kind
        self.count = count
        self.threshold = threshold
        scope = "in this stage" if kind == "stageThreshold" else "in total, including upstream stages"
        super().__init__(
            f"Error threshold exceeded in stage {stage!r}: {count} error records {scope}, more than {kind}={threshold}"
        )


def error_column(message: Column | str, stage: str, info: str, record: Column) -> Column:
    """An ``ERROR_COLUMN`` value (a struct) built from a message, the stage, its info and the record text."""
    msg = F.lit(message) if isinstance(message, str) else message
    return F.struct(
        msg.cast("string").alias("message"),
        F.lit(stage).cast("string").alias("stage"),
        F.lit(info).cast("string").alias("info"),
        record.cast("string").alias("record"),
    )


def null_error_column() -> Column:
    """The ``ERROR_COLUMN`` value of a good record."""
    return F.lit(None).cast(ERROR_TYPE)
