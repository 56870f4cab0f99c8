"""Glue's ``relationalize``: flatten structs, pivot every array into a child table.

Semantics (as in AWS Glue, see ``join_and_relationalize.py``):

* Structs are flattened into columns named by the dotted path (``name.first``).
* Every array column ``c`` of a table becomes a child table named ``<root_name>_<c>``, where ``c``
  is the column's (dotted) name in its parent, so the dots stay: ``hist_root_contact_details``,
  and for an array ``works`` inside the elements of ``programs``: ``root_programs.val.works``.
* In the parent, ``c`` is replaced by a ``long`` join key (null when the array is null).
* The child has ``id`` (that key), ``index`` (``int``, the 0-based position) and the element:
  ``c.val`` for a scalar, or the flattened fields ``c.val.<field>`` for a struct. Arrays inside the
  elements recurse into further child tables.

Keys are generated once per table (``monotonically_increasing_id``) and pinned: written to
``staging_path`` as parquet and read back when a staging path is given (Glue stages through the
path too, as CSV), otherwise held by a local checkpoint. So parent and child keys always agree,
however often either table is evaluated. The keys are unique but not consecutive (Glue's are small
integers; nothing may rely on their values).

Error records stay in the root table with their flattened fields and null join keys; they
produce no child rows. Maps and choice fields are kept as single columns (not pivoted).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, LongType

from jobs.glue import ERROR_COLUMN
from jobs.glue.ops._frame import (
    TEMP_PREFIX,
    col,
    data_fields,
    flatten_frame_columns,
    has_errors,
    is_good,
    null_error,
    pin,
    stage_through,
)

log = logging.getLogger(__name__)

_ROW_ID = TEMP_PREFIX + "rid"


def relationalize(
    df: DataFrame, root_name: str, staging_path: str | None, options: dict[str, Any] | None = None
) -> dict[str, DataFrame]:
    """Relationalize ``df`` into ``{table name: DataFrame}``, the root table first.

    ``options`` is accepted for Glue compatibility and unused (as in Glue).
    """
    if not isinstance(root_name, str) or not root_name:
        raise ValueError(f"relationalize needs a non-empty root table name, got {root_name!r}")
    if staging_path is not None and not isinstance(staging_path, str):
        raise ValueError(f"staging_path must be a string or None, got {staging_path!r}")
    if options:
        log.debug("relationalize ignores options %s (unused, as in Glue)", sorted(options))
    run_dir = None
    if staging_path:
        run_dir = staging_path.rstrip("/") + f"/relationalize-{uuid.uuid4().hex}"
        log.info("relationalize %s: staging intermediates under %s", root_name, run_dir)
    tables: dict[str, DataFrame] = {}
    _Relationalizer(root_name, run_dir, has_errors(df), tables).table(df, root_name)
    return tables


class _Relationalizer:
    def __init__(self, root_name: str, run_dir: str | None, keep_errors: bool, out: dict[str, DataFrame]) -> None:
        self.root_name = root_name
        self.run_dir = run_dir
        self.keep_errors = keep_errors
        self.out = out
        self.counter = 0

    def _stage_path(self, kind: str) -> str | None:
        if self.run_dir is None:
            return None
        self.counter += 1
        return f"{self.run_dir}/{kind}-{self.counter:04d}"

    def table(self, df: DataFrame, name: str) -> None:
        """Emit table ``name`` built from ``df`` (and, recursively, its child tables)."""
        if name in self.out:
            raise ValueError(f"relationalize would produce the table {name!r} twice")
        flat = flatten_frame_columns(data_fields(df))
        arrays = [n for n, _, f in flat if isinstance(f.dataType, ArrayType)]
        errors = [col(ERROR_COLUMN)] if has_errors(df) else ([null_error()] if self.keep_errors else [])
        good = is_good(df)
        flat_cols = [e.alias(n, metadata=f.metadata) for n, e, f in flat]
        if not arrays:
            result = df.select(*flat_cols, *errors)
            staged = self._stage_path("table")
            self.out[name] = stage_through(result, staged) if staged else result
            return

        # One row id per record, pinned so the parent's keys and the children's ids agree.
        keyed = df.select(
            *flat_cols,
            good.alias(TEMP_PREFIX + "good"),
            *errors,
        ).withColumn(_ROW_ID, F.monotonically_increasing_id())
        keyed = pin(keyed, self._stage_path("keyed"))
        is_ok = col(TEMP_PREFIX + "good")
        array_names = set(arrays)
        parent_cols: list[Column] = []
        for n, _, f in flat:
            if n in array_names:
                key = F.when(is_ok & col(n).isNotNull(), col(_ROW_ID)).cast(LongType())
                parent_cols.append(key.alias(n))
            else:
                parent_cols.append(col(n).alias(n, metadata=f.metadata))
        if self.keep_errors:
            parent_cols.append(col(ERROR_COLUMN))
        parent = keyed.select(*parent_cols)
        staged = self._stage_path("table")
        self.out[name] = stage_through(parent, staged) if staged else parent

        for n in arrays:
            exploded = keyed.where(is_ok & col(n).isNotNull()).select(
                col(_ROW_ID).cast(LongType()).alias("id"),
                F.posexplode(col(n)).alias(TEMP_PREFIX + "pos", TEMP_PREFIX + "val"),
            )
            child = exploded.select(
                col("id"),
                col(TEMP_PREFIX + "pos").cast(IntegerType()).alias("index"),
                col(TEMP_PREFIX + "val").alias(f"{n}.val"),
                *([null_error()] if self.keep_errors else []),
            )
            self.table(child, f"{self.root_name}_{n}")
