"""Helpers of the structural-operation tests: contract-encoded frames with error records."""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField, StructType

from jobs.glue import ERROR_COLUMN
from jobs.glue.errors import ERROR_TYPE


def encoded(
    spark: SparkSession, schema: StructType, good: list[tuple[Any, ...]], errors: list[tuple[Any, ...]] = ()
) -> DataFrame:
    """A frame in the contract's encoding: ``good`` rows, then ``errors`` rows marked as errors."""
    full = StructType([*schema.fields, StructField(ERROR_COLUMN, ERROR_TYPE, True)])
    rows: list[tuple[Any, ...]] = [(*r, None) for r in good]
    for r in errors:
        record = json.dumps({f.name: v for f, v in zip(schema.fields, r, strict=True) if not isinstance(v, tuple)})
        rows.append((*r, ("upstream failure", "map", "", record)))
    return spark.createDataFrame(rows, full)


def good_of(df: DataFrame) -> DataFrame:
    return df.where(f"`{ERROR_COLUMN}` IS NULL").drop(ERROR_COLUMN)


def errors_of(df: DataFrame) -> DataFrame:
    return df.where(f"`{ERROR_COLUMN}` IS NOT NULL")
