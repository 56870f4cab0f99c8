"""``DynamicFrame`` (served to scripts as ``awsglue.dynamicframe``): Glue's frame on one Spark DataFrame.

The DataFrame is in the runtime's encoding (see ``jobs.glue``): one column per field, choice fields
as structs marked in their metadata, and the reserved error column carrying error records along with
the good ones. Every transform returns a new frame; none runs a Spark job unless it has to (a
threshold set to a non-zero value, ``count``, ``schema`` needs nothing but the plan). Structural
transforms delegate to ``jobs.glue.ops``; ``map``/``filter`` run the script's Python function on
batches of records in the Python workers (``mapInArrow``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as st

from jobs.glue import CHOICE_METADATA_KEY, ERROR_COLUMN
from jobs.glue import gluetypes as gt
from jobs.glue.collection import DynamicFrameCollection
from jobs.glue.errors import ERROR_FIELD, ErrorThresholdExceededError, null_error_column
from jobs.glue.records import DynamicRecord, unwrap_record, wrap_record

log = logging.getLogger(__name__)

__all__ = ["DynamicFrame", "DynamicFrameCollection", "ResolveOption"]

NONE_RETURNED = "User-specified function returned None instead of DynamicRecord"
_FILTER_DROPS = (KeyError, ValueError, TypeError)


class ResolveOption:
    """How ``toDF`` resolves one choice: ``KeepAsStruct``, ``Project`` or (unlike Glue) ``Cast`` to ``target``."""

    def __init__(self, path: str, action: str, target: Any = None) -> None:
        self.path = path
        self.action = action
        self.target = target


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------

ARRAY_STEP = "[]"


def split_path(path: str) -> list[str]:
    """Segments of a field path: dots separate, backticks quote names with dots, ``[]`` steps into arrays.

    >>> split_path("a.`b.c`.d")
    ['a', 'b.c', 'd']
    >>> split_path("myList[].price")
    ['myList', '[]', 'price']
    """
    segments: list[str] = []
    current = ""
    quoted = False
    i = 0
    pending = False
    while i < len(path):
        ch = path[i]
        if quoted:
            if ch == "`":
                if path[i + 1 : i + 2] == "`":
                    current += "`"
                    i += 1
                else:
                    quoted = False
            else:
                current += ch
        elif ch == "`":
            quoted = True
            pending = True
        elif ch == ".":
            if current or pending:
                segments.append(current)
            current, pending = "", False
        elif path.startswith("[]", i):
            if current or pending:
                segments.append(current)
            segments.append(ARRAY_STEP)
            current, pending = "", False
            i += 1
        else:
            current += ch
        i += 1
    if quoted:
        raise ValueError(f"Unbalanced backtick in path {path!r}")
    if current or pending:
        segments.append(current)
    return segments


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _find(fields: Sequence[st.StructField], name: str, case_sensitive: bool = True) -> st.StructField | None:
    for f in fields:
        if f.name == name:
            return f
    if not case_sensitive:
        lowered = name.lower()
        for f in fields:
            if f.name.lower() == lowered:
                return f
    return None


# ---------------------------------------------------------------------------------------------
# Casting and choices
# ---------------------------------------------------------------------------------------------


def _target_type(target: Any) -> st.DataType:
    """A Spark type from a type name, a Glue type or a Spark type."""
    if isinstance(target, st.DataType):
        return target
    if isinstance(target, gt.DataType):
        return gt.to_spark_type(target)
    return gt.spark_type_from_name(str(target))


def _glue_name(dt: st.DataType) -> str:
    return gt.from_spark_type(dt).typeName()


def _cast(col: Column, source: st.DataType, target: st.DataType) -> Column:
    """``col`` cast to ``target``; values that do not convert become null (Spark's non-ANSI cast)."""
    if isinstance(target, st.StringType) and isinstance(source, st.StructType | st.ArrayType | st.MapType):
        return F.to_json(col)
    if isinstance(source, st.NullType):
        return F.lit(None).cast(target)
    return col.cast(target)


def _choice_branches(field: st.StructField) -> list[st.StructField]:
    return list(field.dataType.fields) if gt.is_choice_field(field) else []  # type: ignore[attr-defined]


def _strip_choice(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Field metadata without the choice markers. A marked field gets ``{"glue.choice": false}``:
    Spark drops an alias whose metadata is empty, and the column would keep its old markers."""
    kept = {k: v for k, v in meta.items() if k not in (CHOICE_METADATA_KEY, gt.CHOICE_NESTED_METADATA_KEY)}
    if len(kept) != len(meta) and not kept:
        kept[CHOICE_METADATA_KEY] = False
    return kept


def _unmark(dt: st.DataType) -> st.DataType:
    """``dt`` without any choice metadata (plain structs)."""
    if isinstance(dt, st.StructType):
        return st.StructType(
            [st.StructField(f.name, _unmark(f.dataType), f.nullable, _strip_choice(f.metadata)) for f in dt.fields]
        )
    if isinstance(dt, st.ArrayType):
        return st.ArrayType(_unmark(dt.elementType), dt.containsNull)
    if isinstance(dt, st.MapType):
        return st.MapType(dt.keyType, _unmark(dt.valueType), dt.valueContainsNull)
    return dt


def _has_marks(dt: st.DataType) -> bool:
    if isinstance(dt, st.StructType):
        return any(
            f.metadata.get(CHOICE_METADATA_KEY)
            or f.metadata.get(gt.CHOICE_NESTED_METADATA_KEY)
            or _has_marks(f.dataType)
            for f in dt.fields
        )
    if isinstance(dt, st.ArrayType):
        return _has_marks(dt.elementType)
    if isinstance(dt, st.MapType):
        return _has_marks(dt.valueType)
    return False


Column3 = tuple[str, Column, dict[str, Any]]
"""A named output column with its field metadata."""


class _Resolution:
    """One resolveChoice action (``cast:T``, ``project:T``, ``make_cols``, ``make_struct``, ``match_catalog``)."""

    def __init__(self, action: str, catalog_type: st.DataType | None = None) -> None:
        text = action.strip()
        kind, _, arg = text.partition(":")
        self.kind = kind.strip().lower()
        if self.kind not in ("cast", "project", "make_cols", "make_struct", "match_catalog"):
            raise ValueError(f"Unknown resolveChoice action {action!r}")
        if self.kind in ("cast", "project") and not arg.strip():
            raise ValueError(f"resolveChoice action {action!r} needs a type, as in '{self.kind}:long'")
        self.target: st.DataType | None = gt.spark_type_from_name(arg) if arg.strip() else None
        if self.kind == "match_catalog":
            self.kind, self.target = ("cast", catalog_type) if catalog_type is not None else ("keep", None)

    def value(self, col: Column, field: st.StructField) -> tuple[Column, dict[str, Any]]:
        """The single resolved value of a field (every action but ``make_cols``)."""
        branches = _choice_branches(field)
        meta = dict(field.metadata)
        if self.kind == "keep":
            return col, meta
        if self.kind == "make_struct" or self.kind == "make_cols":
            return (col, _strip_choice(meta)) if branches else (col, meta)
        target = self.target
        assert target is not None
        if not branches:
            if self.kind == "cast":
                return _cast(col, field.dataType, target), _strip_choice(meta)
            same = _glue_name(field.dataType) == _glue_name(target)
            return (col.cast(target) if same else F.lit(None).cast(target)), _strip_choice(meta)
        if self.kind == "cast":
            casts = [_cast(col[b.name], b.dataType, target) for b in branches]
            return (F.coalesce(*casts) if len(casts) > 1 else casts[0]), _strip_choice(meta)
        name = _glue_name(target)
        branch = next((b for b in branches if b.name == name), None)
        if branch is None:
            return F.lit(None).cast(target), _strip_choice(meta)
        return col[branch.name].cast(target), _strip_choice(meta)

    def apply(self, col: Column, field: st.StructField) -> tuple[list[Column3], list[Column3]]:
        """Replacement columns for the field, and columns to append at the end of its struct."""
        branches = _choice_branches(field)
        if self.kind == "make_cols" and branches:
            first, *rest = branches
            placed = [(f"{field.name}_{first.name}", col[first.name], dict(first.metadata))]
            return placed, [(f"{field.name}_{b.name}", col[b.name], dict(b.metadata)) for b in rest]
        value, meta = self.value(col, field)
        return [(field.name, value, meta)], []


Op = Callable[[Column, st.StructField], tuple[list[Column3], list[Column3]]]


def _element_field(field: st.StructField) -> st.StructField:
    """A pseudo field for the elements of an array field (carrying their choice marker)."""
    assert isinstance(field.dataType, st.ArrayType)
    nested = field.metadata.get(gt.CHOICE_NESTED_METADATA_KEY) or []
    meta = {CHOICE_METADATA_KEY: True} if "element" in nested else {}
    return st.StructField("element", field.dataType.elementType, True, meta)


def _array_meta(field: st.StructField, element_meta: Mapping[str, Any]) -> dict[str, Any]:
    """The array field's metadata once its elements carry ``element_meta``."""
    meta = dict(field.metadata)
    nested = [p for p in meta.get(gt.CHOICE_NESTED_METADATA_KEY) or [] if p != "element"]
    if element_meta.get(CHOICE_METADATA_KEY):
        nested.insert(0, "element")
    if nested:
        meta[gt.CHOICE_NESTED_METADATA_KEY] = nested
    elif gt.CHOICE_NESTED_METADATA_KEY in meta:
        return _strip_choice(meta)
    return meta


def _alias(col: Column, name: str, meta: Mapping[str, Any]) -> Column:
    return col.alias(name, metadata=dict(meta)) if meta else col.alias(name)


def _struct_of(columns: Sequence[Column3]) -> Column:
    return F.struct(*(_alias(c, n, m) for n, c, m in columns))


def _field_getter(col: Column) -> Callable[[str], Column]:
    def get(name: str) -> Column:
        return col[name]

    return get


def _element_op(op: Op, element: st.StructField, box: dict[str, Any], name: str) -> Callable[[Column], Column]:
    """``op`` on each element of an array (for ``F.transform``); the elements' new metadata goes in ``box``."""

    def on_element(e: Column) -> Column:
        replaced, _ = op(e, element)
        if len(replaced) != 1:
            raise ValueError(f"Cannot split the elements of array {name!r} into columns")
        box["meta"] = replaced[0][2]
        return replaced[0][1]

    return on_element


def _struct_element_op(
    fields: Sequence[st.StructField],
    steps: Sequence[str],
    op: Op,
    implicit_arrays: bool,
    case_sensitive: bool,
    box: dict[str, bool],
) -> Callable[[Column], Column]:
    """The rewrite of the struct elements of an array (for ``F.transform``); whether it hit goes in ``box``."""

    def on_struct(e: Column) -> Column:
        sub, hit = _rewrite_fields(fields, lambda n: e[n], steps, op, implicit_arrays, case_sensitive)
        box["found"] = hit
        return F.when(e.isNotNull(), _struct_of(sub))

    return on_struct


def _rewrite_fields(
    fields: Sequence[st.StructField],
    getter: Callable[[str], Column],
    segments: Sequence[str],
    op: Op,
    implicit_arrays: bool,
    case_sensitive: bool = True,
) -> tuple[list[Column3], bool]:
    """The fields of a struct with ``op`` applied to the field at ``segments`` (found or not)."""
    head, rest = segments[0], list(segments[1:])
    target = _find(fields, head, case_sensitive)
    out: list[Column3] = []
    appended: list[Column3] = []
    found = False
    for f in fields:
        col = getter(f.name)
        if target is None or f.name != target.name:
            out.append((f.name, col, dict(f.metadata)))
            continue
        if not rest:
            replaced, extra = op(col, f)
            out.extend(replaced)
            appended.extend(extra)
            found = True
            continue
        dt = f.dataType
        if isinstance(dt, st.ArrayType) and (rest[0] == ARRAY_STEP or implicit_arrays):
            inner = rest[1:] if rest[0] == ARRAY_STEP else rest
            if not inner:
                element = _element_field(f)
                captured: dict[str, Any] = {}
                on_element = _element_op(op, element, captured, f.name)
                new = F.transform(col, on_element)
                out.append((f.name, new, _array_meta(f, captured.get("meta", {}))))
                found = True
                continue
            if isinstance(dt.elementType, st.StructType):
                result: dict[str, bool] = {}
                on_struct = _struct_element_op(
                    dt.elementType.fields, inner, op, implicit_arrays, case_sensitive, result
                )
                new = F.transform(col, on_struct)
                out.append((f.name, new, dict(f.metadata)))
                found = found or result.get("found", False)
                continue
        if isinstance(dt, st.StructType) and rest[0] != ARRAY_STEP:
            sub, hit = _rewrite_fields(dt.fields, _field_getter(col), rest, op, implicit_arrays, case_sensitive)
            out.append((f.name, F.when(col.isNotNull(), _struct_of(sub)), dict(f.metadata)))
            found = found or hit
            continue
        out.append((f.name, col, dict(f.metadata)))
    return out + appended, found


def _choice_paths(dt: st.DataType, prefix: list[str], meta: Mapping[str, Any], position: str = "") -> list[list[str]]:
    """Paths (segments) of every choice below a type."""
    nested = set(meta.get(gt.CHOICE_NESTED_METADATA_KEY) or [])
    is_choice = (position == "" and bool(meta.get(CHOICE_METADATA_KEY))) or (position != "" and position in nested)
    if is_choice:
        return [prefix]
    found: list[list[str]] = []
    if isinstance(dt, st.StructType):
        for f in dt.fields:
            found.extend(_choice_paths(f.dataType, [*prefix, f.name], f.metadata))
    elif isinstance(dt, st.ArrayType):
        step = f"{position}.element" if position else "element"
        found.extend(_choice_paths(dt.elementType, [*prefix, ARRAY_STEP], meta, step))
    return found


def _type_at(schema: gt.DataType, segments: Sequence[str]) -> gt.DataType | None:
    current: gt.DataType | None = schema
    for seg in segments:
        if current is None:
            return None
        if seg == ARRAY_STEP:
            current = current.elementType if isinstance(current, gt.ArrayType) else None
        elif isinstance(current, gt.StructType):
            match = next((f for f in current.fields if f.name.lower() == seg.lower()), None)
            current = match.dataType if match else None
        elif isinstance(current, gt.ArrayType) and isinstance(current.elementType, gt.StructType):
            current = _type_at(current.elementType, [seg])
        else:
            return None
    return current


# ---------------------------------------------------------------------------------------------
# Records (Python side of map/filter)
# ---------------------------------------------------------------------------------------------

Decoder = Callable[[Any], Any]


def _decoder(t: gt.DataType) -> Decoder | None:
    """A function turning a Spark row value of Glue type ``t`` into a record value (choices to their value)."""
    if isinstance(t, gt.ChoiceType):
        branches = [(name, _decoder(b)) for name, b in sorted(t.choices.items())]

        def dec_choice(v: Any) -> Any:
            if v is None:
                return None
            for name, inner in branches:
                value = v.get(name)
                if value is not None:
                    return inner(value) if inner else value
            return None

        return dec_choice
    if isinstance(t, gt.StructType):
        fields = [(f.name, _decoder(f.dataType)) for f in t.fields]
        if all(d is None for _, d in fields):
            return None

        def dec_struct(v: Any) -> Any:
            if v is None:
                return None
            out = dict(v)
            for name, d in fields:
                if d is not None and name in out:
                    out[name] = d(out[name])
            return out

        return dec_struct
    if isinstance(t, gt.ArrayType):
        inner = _decoder(t.elementType)
        if inner is None:
            return None
        return lambda v: None if v is None else [inner(x) for x in v]
    if isinstance(t, gt.MapType):
        inner_v = _decoder(t.valueType)
        if inner_v is None:
            return None
        return lambda v: None if v is None else {k: inner_v(x) for k, x in v.items()}
    return None


def _batch_rows(batch: pa.RecordBatch) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """``(error, record)`` per row of a batch in the encoding, converted column by column."""
    names = [n for n in batch.schema.names if n != ERROR_COLUMN]
    columns = [batch.column(n).to_pylist() for n in names]
    if ERROR_COLUMN in batch.schema.names:
        error_column = batch.column(ERROR_COLUMN)
        errors = error_column.to_pylist() if error_column.null_count < len(error_column) else [None] * len(batch)
    else:
        errors = [None] * len(batch)
    for error, values in zip(errors, zip(*columns, strict=True) if columns else ((),) * len(batch), strict=True):
        yield error, dict(zip(names, values, strict=True))


def _struct_names(schema: st.StructType) -> list[str]:
    return [f.name for f in schema.fields if f.name != ERROR_COLUMN and isinstance(f.dataType, st.StructType)]


def _as_record(row: dict[str, Any], nested: Sequence[str] | None) -> DynamicRecord:
    """A DynamicRecord of a fresh row dict; ``nested`` names the fields that may hold dicts (None: look)."""
    if nested is None:
        return wrap_record(row)
    record = DynamicRecord(row)
    for name in nested:
        value = row[name]
        if type(value) is dict:
            dict.__setitem__(record, name, DynamicRecord(value))
    return record


def _record_json(record: Mapping[str, Any]) -> str:
    return json.dumps(unwrap_record(record), default=str, ensure_ascii=False)


def _error_row(message: str, stage: str, info: str, record: Mapping[str, Any]) -> dict[str, Any]:
    return {ERROR_COLUMN: {"message": message, "stage": stage, "info": info, "record": _record_json(record)}}


def _exception_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# DynamicFrame
# ---------------------------------------------------------------------------------------------


def _with_error_column(df: DataFrame) -> DataFrame:
    if ERROR_COLUMN in df.columns:
        return df
    return df.select(*(F.col(_quote(c)) for c in df.columns), null_error_column().alias(ERROR_COLUMN))


class DynamicFrame:
    """A distributed collection of self-describing records (Glue's DynamicFrame) on one DataFrame."""

    def __init__(self, jdf: DataFrame, glue_ctx: Any, name: str = "") -> None:
        if not isinstance(jdf, DataFrame):
            raise TypeError(f"DynamicFrame wraps a pyspark DataFrame, got {type(jdf).__name__}")
        self._df = _with_error_column(jdf)
        self.glue_ctx = glue_ctx
        self.name = name
        self._schema: gt.StructType | None = None
        self._stage = "source"
        self._info = ""
        self._parents: tuple[DynamicFrame, ...] = ()
        self._stage_threshold = 0
        self._total_threshold = 0
        self._errors_total: int | None = None

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def fromDF(cls, dataframe: DataFrame, glue_ctx: Any, name: str = "") -> DynamicFrame:  # noqa: N802
        """A DynamicFrame of a DataFrame (its records; an error column it carries is kept)."""
        return cls(dataframe, glue_ctx, name)

    def _derive(
        self,
        df: DataFrame,
        stage: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        parents: Sequence[DynamicFrame] | None = None,
        name: str | None = None,
    ) -> DynamicFrame:
        frame = DynamicFrame(df, self.glue_ctx, self.name if name is None else name)
        frame._stage = transformation_ctx or stage
        frame._info = info
        frame._parents = tuple(parents) if parents is not None else (self,)
        frame._stage_threshold = int(stageThreshold or 0)
        frame._total_threshold = int(totalThreshold or 0)
        if frame._stage_threshold > 0 or frame._total_threshold > 0:
            frame.assertErrorThreshold()
        return frame

    def _stage_name(self, method: str, transformation_ctx: str) -> str:
        return transformation_ctx or method

    @property
    def spark_session(self) -> SparkSession:
        return self._df.sparkSession

    @property
    def df(self) -> DataFrame:
        """The DataFrame in the runtime's encoding (error records and the error column included)."""
        return self._df

    def with_frame_schema(self, schema: gt.StructType) -> DynamicFrame:
        """This frame with a precomputed Glue schema (returned by ``schema()``)."""
        self._schema = schema
        return self

    # -- inspection --------------------------------------------------------------------------------
    def _good(self) -> DataFrame:
        return self._df.where(F.col(ERROR_COLUMN).isNull())

    def _data_fields(self) -> list[st.StructField]:
        return [f for f in self._df.schema.fields if f.name != ERROR_COLUMN]

    def count(self) -> int:
        """The number of (good) records."""
        return int(self._good().count())

    def schema(self) -> gt.StructType:
        """The Glue schema of the records (``awsglue.gluetypes.StructType``); no Spark job."""
        if self._schema is None:
            self._schema = gt.from_spark_schema(self._df.schema)
        return self._schema

    def printSchema(self) -> None:  # noqa: N802
        print(gt.schema_tree_string(self.schema()), end="")  # noqa: T201 - printing is the API

    def _records(self, limit: int | None = None) -> list[dict[str, Any]]:
        df = self._good().drop(ERROR_COLUMN)
        rows = (df.limit(limit) if limit is not None else df).collect()
        decode = _decoder(self.schema())
        out: list[dict[str, Any]] = []
        for row in rows:
            record = row.asDict(recursive=True)
            out.append(decode(record) if decode else record)
        return out

    def show(self, num_rows: int = 20) -> None:
        """Print up to ``num_rows`` records, one JSON object a line (as Glue does)."""
        for record in self._records(num_rows):
            print(_record_json(record))  # noqa: T201 - printing is the API

    def getNumPartitions(self) -> int:  # noqa: N802
        return int(self._df.rdd.getNumPartitions())

    def toDF(self, options: Sequence[ResolveOption] | None = None) -> DataFrame:  # noqa: N802
        """The good records as a DataFrame: error records and the error column dropped; choices stay
        structs (one field per type) unless ``options`` resolve them."""
        frame: DynamicFrame = self
        for option in options or []:
            action = option.action.strip().lower()
            if action == "keepasstruct":
                spec = "make_struct"
            elif action in ("project", "cast"):
                if option.target is None:
                    raise ValueError(f"Missing target type for resolve action {option.action}")
                spec = f"{action}:{_target_type(option.target).simpleString()}"
            else:
                raise ValueError(f"Unknown resolve action {option.action!r} (KeepAsStruct, Project or Cast)")
            frame = frame._resolve_path(split_path(option.path), _Resolution(spec))
        good = frame._good()
        columns = []
        for f in frame._data_fields():
            col = F.col(_quote(f.name))
            if _has_marks(f.dataType):
                col = col.cast(_unmark(f.dataType))
            columns.append(_alias(col, f.name, _strip_choice(f.metadata)))
        return good.select(*columns)

    # -- errors -------------------------------------------------------------------------------------
    def errorsAsDynamicFrame(self) -> DynamicFrame:  # noqa: N802
        """The error records (this stage's and upstream), each nested as ``error: {message, stage, info, record}``."""
        errors = self._df.where(F.col(ERROR_COLUMN).isNotNull()).select(
            F.col(ERROR_COLUMN).alias("error"), null_error_column().alias(ERROR_COLUMN)
        )
        return DynamicFrame(errors, self.glue_ctx, self.name)

    def errorsCount(self) -> int:  # noqa: N802
        """Error records in this frame, upstream stages' included."""
        if self._errors_total is None:
            self._errors_total = int(self._df.where(F.col(ERROR_COLUMN).isNotNull()).count())
        return self._errors_total

    def stageErrorsCount(self) -> int:  # noqa: N802
        """Error records this frame's transformation produced."""
        return max(0, self.errorsCount() - sum(p.errorsCount() for p in self._parents))

    def assertErrorThreshold(self) -> None:  # noqa: N802
        """Count the errors and raise ``ErrorThresholdExceededError`` when a non-zero threshold is exceeded."""
        total = self.errorsCount()
        stage = self.stageErrorsCount()
        if self._stage_threshold > 0 and stage > self._stage_threshold:
            raise ErrorThresholdExceededError(self._stage, "stageThreshold", stage, self._stage_threshold)
        if self._total_threshold > 0 and total > self._total_threshold:
            raise ErrorThresholdExceededError(self._stage, "totalThreshold", total, self._total_threshold)

    # -- partitions ---------------------------------------------------------------------------------
    def repartition(
        self,
        num_partitions: int,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        return self._derive(
            self._df.repartition(num_partitions),
            "repartition",
            transformation_ctx,
            info,
            stageThreshold,
            totalThreshold,
        )

    def coalesce(
        self,
        num_partitions: int,
        shuffle: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        df = self._df.repartition(num_partitions) if shuffle else self._df.coalesce(num_partitions)
        return self._derive(df, "coalesce", transformation_ctx, info, stageThreshold, totalThreshold)

    # -- field transforms ---------------------------------------------------------------------------
    def _select_with_error(self, columns: Sequence[Column3]) -> DataFrame:
        return self._df.select(*(_alias(c, n, m) for n, c, m in columns), F.col(ERROR_COLUMN))

    def _rewrite(
        self, segments: Sequence[str], op: Op, implicit_arrays: bool = False, case_sensitive: bool = True
    ) -> tuple[DataFrame, bool]:
        fields = self._data_fields()
        if not segments or not fields:
            return self._df, False
        columns, found = _rewrite_fields(
            fields, lambda n: F.col(_quote(n)), segments, op, implicit_arrays, case_sensitive
        )
        return (self._select_with_error(columns), True) if found else (self._df, False)

    def apply_mapping(
        self,
        mappings: Sequence[Sequence[str]] | tuple[str, ...],
        case_sensitive: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Select, rename and cast fields: ``(source, source_type, target, target_type)`` tuples (also
        ``(source, target)`` and ``(source, target, target_type)``). Unmapped fields are dropped; a dotted
        target builds structs, a dotted source reads nested fields; a value that does not cast is null."""
        if isinstance(mappings, tuple) and mappings and isinstance(mappings[0], str):
            mappings = [mappings]
        tree: dict[str, Any] = {}
        fields = self._data_fields()
        for mapping in mappings:
            source, target, target_type = _parse_mapping(mapping)
            resolved = _resolve_source(fields, split_path(source), case_sensitive)
            if resolved is None:
                log.debug("apply_mapping: no field %r in %s", source, self.name or "the frame")
                continue
            col, field = resolved
            if target_type is None or target_type.strip().lower() in ("struct", "array", "map", "choice"):
                value, meta = col, dict(field.metadata)
            else:
                value, meta = _Resolution(f"cast:{target_type}").value(col, field)
            _insert_tree(tree, split_path(target), (value, meta))
        columns = _tree_columns(tree, F.col(ERROR_COLUMN).isNull())
        df = self._df.select(*(_alias(c, n, m) for n, c, m in columns), F.col(ERROR_COLUMN))
        return self._derive(df, "apply_mapping", transformation_ctx, info, stageThreshold, totalThreshold)

    def applyMapping(self, *args: Any, **kwargs: Any) -> DynamicFrame:  # noqa: N802
        return self.apply_mapping(*args, **kwargs)

    def select_fields(
        self,
        paths: Sequence[str] | str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Keep only the given fields (full paths; a nested path keeps its parents with that field)."""
        if isinstance(paths, str):
            paths = [paths]
        tree: dict[str, Any] = {}
        fields = self._data_fields()
        for path in paths:
            segments = split_path(path)
            resolved = _resolve_source(fields, segments, True)
            if resolved is not None:
                _insert_tree(tree, segments, (resolved[0], dict(resolved[1].metadata)))
        columns = _tree_columns(tree, F.col(ERROR_COLUMN).isNull())
        df = self._df.select(*(_alias(c, n, m) for n, c, m in columns), F.col(ERROR_COLUMN))
        return self._derive(df, "select_fields", transformation_ctx, info, stageThreshold, totalThreshold)

    def drop_fields(
        self,
        paths: Sequence[str] | str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Drop fields by full path, inside structs and inside arrays of structs; missing paths are ignored."""
        if isinstance(paths, str):
            paths = [paths]
        frame: DynamicFrame = self
        for path in paths:
            df, _ = frame._rewrite(split_path(path), lambda _c, _f: ([], []), implicit_arrays=True)
            frame = DynamicFrame(df, self.glue_ctx, self.name)
        return self._derive(frame._df, "drop_fields", transformation_ctx, info, stageThreshold, totalThreshold)

    def rename_field(
        self,
        oldName: str,  # noqa: N803
        newName: str,  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Rename a field (full paths, backticks for names with dots); a new parent path moves it."""
        old, new = split_path(oldName), split_path(newName)
        if not old or not new:
            raise ValueError("rename_field needs non-empty paths")
        if old[:-1] == new[:-1]:
            last = new[-1]

            def rename(col: Column, field: st.StructField) -> tuple[list[Column3], list[Column3]]:
                return [(last, col, dict(field.metadata))], []

            df, _ = self._rewrite(old, rename, implicit_arrays=True)
        else:
            resolved = _resolve_source(self._data_fields(), old, True)
            if resolved is None:
                df = self._df
            else:
                value, field = resolved
                carry = "__lf_moved"
                staged = DynamicFrame(self._df.select("*", value.alias(carry)), self.glue_ctx, self.name)
                dropped, _ = staged._rewrite(old, lambda _c, _f: ([], []))
                moved = DynamicFrame(dropped, self.glue_ctx, self.name)
                inserted = moved._insert(new, F.col(carry), dict(field.metadata))
                df = inserted.drop(carry)
        return self._derive(df, "rename_field", transformation_ctx, info, stageThreshold, totalThreshold)

    def _insert(self, segments: Sequence[str], value: Column, meta: dict[str, Any]) -> DataFrame:
        fields = self._data_fields()
        if len(segments) == 1:
            columns = [(f.name, F.col(_quote(f.name)), dict(f.metadata)) for f in fields if f.name != segments[0]]
            return self._select_with_error([*columns, (segments[0], value, meta)])
        parent, last = list(segments[:-1]), segments[-1]
        if _resolve_source(fields, parent, True) is None:
            tree: dict[str, Any] = {}
            _insert_tree(tree, [last], (value, meta))
            return self._insert(parent, _tree_columns_struct(tree), {})

        def add(col: Column, field: st.StructField) -> tuple[list[Column3], list[Column3]]:
            if not isinstance(field.dataType, st.StructType):
                return [(field.name, col, dict(field.metadata))], []
            sub = [(f.name, col[f.name], dict(f.metadata)) for f in field.dataType.fields if f.name != last]
            return [(field.name, _struct_of([*sub, (last, value, meta)]), dict(field.metadata))], []

        df, _ = self._rewrite(parent, add)
        return df

    # -- choices ------------------------------------------------------------------------------------
    def _resolve_path(self, segments: Sequence[str], resolution: _Resolution) -> DynamicFrame:
        df, found = self._rewrite(segments, resolution.apply, implicit_arrays=False)
        if not found:
            log.debug("resolveChoice: no field at %s", ".".join(segments))
        return DynamicFrame(df, self.glue_ctx, self.name)

    def resolveChoice(  # noqa: N802
        self,
        specs: Sequence[tuple[str, str]] | tuple[str, str] | None = None,
        choice: str = "",
        database: str | None = None,
        table_name: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        catalog_id: str | None = None,
    ) -> DynamicFrame:
        """Resolve choice fields: ``specs`` as ``(path, action)`` pairs, or one ``choice`` action for all.

        Actions: ``cast:T`` (values that do not cast become null), ``project:T`` (only values of type
        T), ``make_cols`` (a ``<field>_<type>`` column per type), ``make_struct`` (a plain struct, one
        field per type) and ``match_catalog`` (cast to the type of the catalog table's column).
        """
        if specs is None and not choice:
            raise ValueError("resolveChoice needs specs or choice: both are missing")
        if specs is not None and choice:
            raise ValueError("resolveChoice takes specs or choice, not both")
        catalog: gt.StructType | None = None

        def catalog_schema() -> gt.StructType:
            nonlocal catalog
            if catalog is None:
                if not database or not table_name:
                    raise ValueError("match_catalog needs database and table_name")
                provider = getattr(self.glue_ctx, "catalog_schema_provider", None)
                if provider is None:
                    raise ValueError("match_catalog needs a glue context with a catalog_schema_provider")
                catalog = provider(database, table_name)
            return catalog

        def resolution(path: Sequence[str], action: str) -> _Resolution:
            if action.strip().lower() == "match_catalog":
                target = _type_at(catalog_schema(), path)
                return _Resolution(action, gt.to_spark_type(target) if target is not None else None)
            return _Resolution(action)

        frame: DynamicFrame = self
        if specs is not None:
            pairs = [specs] if isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[0], str) else specs
            for path, action in pairs:  # type: ignore[misc]
                segments = split_path(path)
                frame = frame._resolve_path(segments, resolution(segments, action))
        else:
            for field in self._data_fields():
                for segments in _choice_paths(field.dataType, [field.name], field.metadata):
                    frame = frame._resolve_path(segments, resolution(segments, choice))
        return self._derive(frame._df, "resolveChoice", transformation_ctx, info, stageThreshold, totalThreshold)

    # -- Python functions ---------------------------------------------------------------------------
    def filter(
        self,
        f: Callable[[DynamicRecord], Any],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Keep the records for which ``f`` is true. ``f`` raising KeyError, ValueError or TypeError drops
        the record; any other exception makes it an error record. ``f`` gets a copy of each record."""
        stage = self._stage_name("filter", transformation_ctx)
        schema_json = json.dumps(self.schema().jsonValue())

        nested = _struct_names(self._df.schema)

        def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            decode = _decoder(gt._deserialize_json_string(schema_json))
            for batch in batches:
                keep: list[bool] = []
                errors: list[dict[str, Any]] = []
                for error, row in _batch_rows(batch):
                    if error is not None:
                        keep.append(True)
                        continue
                    plain = decode(row) if decode else row
                    try:
                        keep.append(bool(f(_as_record(plain, nested if decode is None else None))))
                    except _FILTER_DROPS:
                        keep.append(False)
                    except Exception as exc:  # noqa: BLE001 - a record error, by Glue's contract
                        keep.append(False)
                        errors.append(_error_row(_exception_message(exc), stage, info, plain))
                yield batch.filter(pa.array(keep, pa.bool_())) if not all(keep) else batch
                if errors:
                    yield pa.RecordBatch.from_pylist(errors, schema=batch.schema)

        df = self._df.mapInArrow(run, self._df.schema)
        df = _restore_metadata(df, self._df.schema)
        return self._derive(df, "filter", transformation_ctx, info, stageThreshold, totalThreshold)

    def map(
        self,
        f: Callable[[DynamicRecord], Any],
        preservesPartitioning: bool = False,  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Apply ``f`` to a copy of every record. An exception, or ``None`` returned, makes the record an
        error record. The output's schema is inferred from the records ``f`` returns (one Spark job)."""
        stage = self._stage_name("map", transformation_ctx)

        def per_record(records: Iterator[tuple[dict[str, Any], Any]]) -> Iterator[tuple[Any, dict[str, Any] | None]]:
            for plain, _ in records:
                try:
                    out = f(wrap_record(plain))
                except Exception as exc:  # noqa: BLE001 - a record error, by Glue's contract
                    yield None, _error_row(_exception_message(exc), stage, info, plain)
                    continue
                if out is None:
                    yield None, _error_row(NONE_RETURNED, stage, info, plain)
                elif not isinstance(out, dict):
                    message = f"User-specified function returned {type(out).__name__} instead of DynamicRecord"
                    yield None, _error_row(message, stage, info, plain)
                else:
                    yield unwrap_record(out), None

        return self._python_transform(per_record, "map", transformation_ctx, info, stageThreshold, totalThreshold)

    def mapPartitions(  # noqa: N802
        self,
        f: Callable[[Iterator[DynamicRecord]], Iterable[Any]],
        preservesPartitioning: bool = True,  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Apply ``f`` to the iterator of a partition's records; it yields the output records."""
        return self.mapPartitionsWithIndex(
            lambda _i, it: f(it), preservesPartitioning, transformation_ctx, info, stageThreshold, totalThreshold
        )

    def mapPartitionsWithIndex(  # noqa: N802
        self,
        f: Callable[[int, Iterator[DynamicRecord]], Iterable[Any]],
        preservesPartitioning: bool = False,  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Apply ``f(partition_index, records)`` to every partition; it yields the output records."""
        from pyspark import TaskContext

        def per_partition(records: Iterator[tuple[dict[str, Any], Any]]) -> Iterator[tuple[Any, Any]]:
            context = TaskContext.get()
            index = context.partitionId() if context is not None else 0
            for out in f(index, (wrap_record(plain) for plain, _ in records)):
                if isinstance(out, dict):
                    yield unwrap_record(out), None

        return self._python_transform(
            per_partition, "mapPartitions", transformation_ctx, info, stageThreshold, totalThreshold
        )

    def _python_transform(
        self,
        fn: Callable[[Iterator[tuple[dict[str, Any], Any]]], Iterator[tuple[Any, dict[str, Any] | None]]],
        method: str,
        transformation_ctx: str,
        info: str,
        stageThreshold: int,  # noqa: N803
        totalThreshold: int,  # noqa: N803
    ) -> DynamicFrame:
        """Run a record-level Python function: one job infers the output schema, the frame encodes it."""
        from pyspark.sql.pandas.types import to_arrow_schema

        from jobs.glue import inference

        in_json = json.dumps(self.schema().jsonValue())

        def outputs(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[Any, dict[str, Any] | None]]:
            decode = _decoder(gt._deserialize_json_string(in_json))

            def records() -> Iterator[tuple[dict[str, Any], Any]]:
                for batch in batches:
                    for error, row in _batch_rows(batch):
                        if error is not None:
                            passthrough.append({ERROR_COLUMN: error})
                            continue
                        yield (decode(row) if decode else row), None

            passthrough: list[dict[str, Any]] = []
            for out, error in fn(records()):
                while passthrough:
                    yield None, passthrough.pop()
                yield out, error
            while passthrough:
                yield None, passthrough.pop()

        def summarize(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            merged: gt.DataType = gt.StructType()
            chunk: list[Any] = []
            for out, _ in outputs(batches):
                if out is not None:
                    chunk.append(out)
                    if len(chunk) >= 10_000:
                        merged = gt.mergeDataTypes(merged, inference.infer_type(chunk))
                        chunk = []
            if chunk:
                merged = gt.mergeDataTypes(merged, inference.infer_type(chunk))
            yield pa.RecordBatch.from_pydict({"schema": [json.dumps(merged.jsonValue())]})

        rows = self._df.mapInArrow(summarize, "schema string").collect()
        out_schema: gt.DataType = gt.StructType()
        for row in rows:
            out_schema = gt.mergeDataTypes(out_schema, gt._deserialize_json_string(row["schema"]))
        if not isinstance(out_schema, gt.StructType):
            out_schema = gt.StructType()
        preferred = _prefer_input_types(out_schema, self.schema())
        out_schema = preferred if isinstance(preferred, gt.StructType) else out_schema
        spark_schema = gt.to_spark_schema(out_schema)
        full = st.StructType([*spark_schema.fields, ERROR_FIELD])
        arrow_schema = to_arrow_schema(full)
        out_json = json.dumps(out_schema.jsonValue())

        def encode(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            enc = inference._encoder(gt._deserialize_json_string(out_json))
            buffer: list[dict[str, Any]] = []
            for out, error in outputs(batches):
                if out is None:
                    buffer.append(error or {})
                else:
                    buffer.append(enc(out) if enc else out)
                if len(buffer) >= 10_000:
                    yield pa.RecordBatch.from_pylist(buffer, schema=arrow_schema)
                    buffer = []
            if buffer:
                yield pa.RecordBatch.from_pylist(buffer, schema=arrow_schema)

        df = _restore_metadata(self._df.mapInArrow(encode, full), full)
        return self._derive(df, method, transformation_ctx, info, stageThreshold, totalThreshold)

    # -- structural transforms (jobs.glue.ops) ------------------------------------------------------
    def _collection(self, frames: Mapping[str, DynamicFrame]) -> Any:
        return DynamicFrameCollection(dict(frames), self.glue_ctx)

    def join(
        self,
        paths1: Sequence[str] | str,
        paths2: Sequence[str] | str,
        frame2: DynamicFrame,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Equi-join with ``frame2`` on ``paths1 == paths2`` (both key columns kept)."""
        from jobs.glue.ops import structure

        keys1 = [paths1] if isinstance(paths1, str) else list(paths1)
        keys2 = [paths2] if isinstance(paths2, str) else list(paths2)
        df = structure.join(self._df, frame2._df, keys1, keys2)
        return self._derive(
            df,
            "join",
            transformation_ctx,
            info,
            stageThreshold,
            totalThreshold,
            parents=(self, frame2),
            name=self.name + frame2.name,
        )

    def union(
        self,
        other_frame: DynamicFrame,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        from jobs.glue.ops import structure

        df = structure.union(self._df, other_frame._df)
        return self._derive(
            df, "union", transformation_ctx, info, stageThreshold, totalThreshold, parents=(self, other_frame)
        )

    def mergeDynamicFrame(  # noqa: N802
        self,
        stage_dynamic_frame: DynamicFrame,
        primary_keys: Sequence[str] | str,
        transformation_ctx: str = "",
        options: Mapping[str, Any] | None = None,
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Upsert: a staging record replaces the record with the same primary keys."""
        from jobs.glue.ops import structure

        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        df = structure.merge_frames(self._df, stage_dynamic_frame._df, keys)
        return self._derive(
            df,
            "mergeDynamicFrame",
            transformation_ctx,
            info,
            stageThreshold,
            totalThreshold,
            parents=(self, stage_dynamic_frame),
        )

    def unnest(
        self,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        from jobs.glue.ops import structure

        return self._derive(
            structure.unnest(self._df), "unnest", transformation_ctx, info, stageThreshold, totalThreshold
        )

    def unbox(
        self,
        path: str,
        format: str,  # noqa: A002
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        **options: Any,
    ) -> DynamicFrame:
        """Parse the string field at ``path`` as ``format`` (json or csv); a value that does not parse makes
        its record an error record of this stage (``transformation_ctx`` or ``unbox``) carrying ``info``."""
        from jobs.glue.ops import structure

        df = structure.unbox(
            self._df, path, format, options, stage=self._stage_name("unbox", transformation_ctx), info=info
        )
        return self._derive(df, "unbox", transformation_ctx, info, stageThreshold, totalThreshold)

    def split_fields(
        self,
        paths: Sequence[str] | str,
        name1: str,
        name2: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        """A collection ``{name1: the given fields, name2: the rest}``."""
        from jobs.glue.ops import structure

        selected, rest = structure.split_fields(self._df, [paths] if isinstance(paths, str) else list(paths))
        args = (transformation_ctx, info, stageThreshold, totalThreshold)
        return self._collection(
            {
                name1: self._derive(selected, "split_fields", *args, name=name1),
                name2: self._derive(rest, "split_fields", *args, name=name2),
            }
        )

    def split_rows(
        self,
        comparison_dict: Mapping[str, Mapping[str, Any]],
        name1: str,
        name2: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        """A collection ``{name1: records matching every comparison, name2: the rest}``."""
        from jobs.glue.ops import structure

        matching, rest = structure.split_rows(self._df, comparison_dict)
        args = (transformation_ctx, info, stageThreshold, totalThreshold)
        return self._collection(
            {
                name1: self._derive(matching, "split_rows", *args, name=name1),
                name2: self._derive(rest, "split_rows", *args, name=name2),
            }
        )

    def relationalize(
        self,
        root_table_name: str,
        staging_path: str | None,
        options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        """Flatten structs and pivot arrays into child tables: a collection keyed by table name."""
        from jobs.glue.ops import relationalize as rel

        tables = rel.relationalize(self._df, root_table_name, staging_path, dict(options or {}))
        args = (transformation_ctx, info, stageThreshold, totalThreshold)
        return self._collection(
            {name: self._derive(df, "relationalize", *args, name=name) for name, df in tables.items()}
        )

    def drop_null_fields(
        self,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Drop the fields that are null in every record (lakeforge's; Glue has the DropNullFields transform)."""
        from jobs.glue.ops import structure

        df, dropped = structure.drop_null_fields(self._df)
        log.info("null_fields %s", dropped)
        return self._derive(df, "drop_null_fields", transformation_ctx, info, stageThreshold, totalThreshold)

    def spigot(
        self,
        path: str,
        options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> DynamicFrame:
        """Write a sample of the records to ``path`` (``topk`` or ``prob`` options); returns this frame."""
        from jobs.glue.ops import spigot as spigot_op

        spigot_op.spigot(self._df, path, dict(options or {}))
        return self

    def write(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,  # noqa: A002
        format_options: Mapping[str, Any] | None = None,
        accumulator_size: int = 0,
    ) -> Any:
        return self.glue_ctx.write_from_options(
            frame_or_dfc=self,
            connection_type=connection_type,
            connection_options=dict(connection_options or {}),
            format=format,
            format_options=dict(format_options or {}),
            accumulator_size=accumulator_size,
        )

    def __repr__(self) -> str:
        return f"DynamicFrame(name={self.name!r}, stage={self._stage!r})"


# ---------------------------------------------------------------------------------------------
# apply_mapping helpers
# ---------------------------------------------------------------------------------------------


def _parse_mapping(mapping: Sequence[str]) -> tuple[str, str, str | None]:
    """``(source, target, target_type)`` of a 2-, 3- or 4-tuple mapping."""
    items = list(mapping)
    if len(items) == 4:
        return str(items[0]), str(items[2]), str(items[3])
    if len(items) == 3:
        return str(items[0]), str(items[1]), str(items[2])
    if len(items) == 2:
        return str(items[0]), str(items[1]), None
    raise ValueError(f"A mapping has 2, 3 or 4 elements: {mapping!r}")


def _resolve_source(
    fields: Sequence[st.StructField], segments: Sequence[str], case_sensitive: bool
) -> tuple[Column, st.StructField] | None:
    """The column and field at a path of structs (None when it does not exist)."""
    current = list(fields)
    col: Column | None = None
    field: st.StructField | None = None
    for seg in segments:
        if seg == ARRAY_STEP:
            return None
        match = _find(current, seg, case_sensitive)
        if match is None:
            return None
        col = F.col(_quote(match.name)) if col is None else col[match.name]
        field = match
        current = list(match.dataType.fields) if isinstance(match.dataType, st.StructType) else []
    if col is None or field is None:
        return None
    return col, field


def _insert_tree(tree: dict[str, Any], segments: Sequence[str], leaf: tuple[Column, dict[str, Any]]) -> None:
    node = tree
    for seg in segments[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            child = {}
            node[seg] = child
        node = child
    node[segments[-1]] = leaf


def _tree_columns(tree: Mapping[str, Any], present: Column | None = None) -> list[Column3]:
    out: list[Column3] = []
    for name, node in tree.items():
        if isinstance(node, dict):
            struct = _tree_columns_struct(node)
            out.append((name, F.when(present, struct) if present is not None else struct, {}))
        else:
            value, meta = node
            out.append((name, value, meta))
    return out


def _tree_columns_struct(tree: Mapping[str, Any]) -> Column:
    return _struct_of(_tree_columns(tree))


_NARROWER = {
    "long": {"int"},
    "int": set(),
    "short": {"int"},
    "byte": {"int"},
    "float": {"double"},
    "decimal": {"decimal", "int", "long"},
}


def _prefer_input_types(out: gt.DataType, given: gt.DataType | None) -> gt.DataType:
    """The type of a map's output with Python's widened numbers narrowed back to the input field's type
    (a long that came back as a small Python int stays long; a float stays float)."""
    if given is None:
        return out
    if isinstance(out, gt.StructType) and isinstance(given, gt.StructType):
        return gt.StructType(
            gt.Field(f.name, _prefer_input_types(f.dataType, given.field_map[f.name].dataType))
            if f.name in given.field_map
            else f
            for f in out.fields
        )
    if isinstance(out, gt.ArrayType) and isinstance(given, gt.ArrayType):
        return gt.ArrayType(_prefer_input_types(out.elementType, given.elementType))
    if isinstance(out, gt.MapType) and isinstance(given, gt.MapType):
        return gt.MapType(_prefer_input_types(out.valueType, given.valueType))
    given_branches = dict(given.choices) if isinstance(given, gt.ChoiceType) else {given.typeName(): given}
    out_branches = dict(out.choices) if isinstance(out, gt.ChoiceType) else {out.typeName(): out}
    chosen: dict[str, gt.DataType] = {}
    for name, branch in out_branches.items():
        if name in given_branches and not isinstance(branch, gt.StructType | gt.ArrayType | gt.MapType):
            chosen[name] = given_branches[name]
            continue
        wider = next((g for g in given_branches if name in _NARROWER.get(g, set())), None)
        if wider is None:
            return out
        chosen[wider] = given_branches[wider]
    if len(chosen) == 1:
        return next(iter(chosen.values()))
    return gt.ChoiceType(chosen.values())


def _restore_metadata(df: DataFrame, schema: st.StructType) -> DataFrame:
    """Re-apply field metadata a plan step (mapInArrow) may not carry through."""
    meta = {f.name: f.metadata for f in schema.fields}
    if all(f.metadata == meta.get(f.name, {}) for f in df.schema.fields):
        return df
    return df.select(*(F.col(_quote(f.name)).alias(f.name, metadata=meta.get(f.name, {})) for f in df.schema.fields))
