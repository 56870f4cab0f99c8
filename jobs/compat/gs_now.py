"""``gs_now``: Glue Studio's "Add current timestamp" visual transform, the example of the ``gs_*`` pattern.

Glue Studio scripts ``import gs_now`` and then call ``frame.gs_now(colName="ts")``: a ``gs_*`` module
adds one method to ``DynamicFrame`` when imported. To support another one, add ``jobs/compat/gs_<name>.py``
that defines the function taking the frame as ``self`` and assigns it to ``DynamicFrame.gs_<name>``
(see ``jobs/compat/README.md``).
"""

from __future__ import annotations

from typing import Any

from awsglue.dynamicframe import DynamicFrame
from pyspark.sql import functions as F


def gs_now(self: Any, colName: str, dateFormat: str | None = None) -> Any:  # noqa: N803 - Glue Studio's names
    """Add column ``colName``: the current timestamp, or that time formatted with ``dateFormat``."""
    now = F.current_timestamp()
    value = F.date_format(now, dateFormat) if dateFormat else now
    return DynamicFrame.fromDF(self.toDF().withColumn(colName, value), self.glue_ctx, f"{self.name}_gs_now")


DynamicFrame.gs_now = gs_now
