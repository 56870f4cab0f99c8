"""Shared helpers of the structural operations: the error column, field paths, schema merging.

Internal to ``jobs.glue.ops``; the contract they implement is described in ``jobs.glue``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    NullType,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from jobs.glue import CHOICE_METADATA_KEY, ERROR_COLUMN
from jobs.glue.errors import ERROR_TYPE

log = logging.getLogger(__name__)


TEMP_PREFIX = "__lf_"
"""Prefix of the temporary columns the operations add and remove again."""


# --------------------------------------------------------------------------------------------
# The error column
# --------------------------------------------------------------------------------------------


def has_errors(df: DataFrame) -> bool:
    """Whether ``df`` carries the reserved error column."""
    return ERROR_COLUMN in df.columns


def data_columns(df: DataFrame) -> list[str]:
    """The record fields of ``df``: every top-level column but the error column."""
    return [c for c in df.columns if c != ERROR_COLUMN]


def data_fields(df: DataFrame) -> list[StructField]:
    return [f for f in df.schema.fields if f.name != ERROR_COLUMN]


def is_error(df: DataFrame) -> Column:
    """True for error records (never null)."""
    if has_errors(df):
        return F.col(quote(ERROR_COLUMN)).isNotNull()
    return F.lit(False)


def is_good(df: DataFrame) -> Column:
    """True for good (non-error) records (never null)."""
    return ~is_error(df)


def good_rows(df: DataFrame) -> DataFrame:
    return df.where(is_good(df)) if has_errors(df) else df


def error_rows(df: DataFrame) -> DataFrame | None:
    """The error records of ``df``, or None when it has no error column."""
    return df.where(is_error(df)) if has_errors(df) else None


def null_error() -> Column:
    """A null error column value of the contract's type."""
    return F.lit(None).cast(ERROR_TYPE).alias(ERROR_COLUMN)


def error_column(df: DataFrame) -> Column:
    """The error column of ``df`` cast to the contract's type, or a null one when absent."""
    if has_errors(df):
        return F.col(quote(ERROR_COLUMN)).cast(ERROR_TYPE).alias(ERROR_COLUMN)
    return null_error()


def record_json(df: DataFrame) -> Column:
    """The record (all data columns) as JSON text, for the ``record`` member of an error."""
    cols = [col(c) for c in data_columns(df)]
    if not cols:
        return F.lit("{}")
    return F.to_json(F.struct(*cols))


def make_error(message: Column | str, stage: str, info: str, record: Column) -> Column:
    """An error struct of the contract's type."""
    msg = F.lit(message) if isinstance(message, str) else message
    return F.struct(
        msg.cast("string").alias("message"),
        F.lit(stage).alias("stage"),
        F.lit(info).alias("info"),
        record.cast("string").alias("record"),
    ).cast(ERROR_TYPE)


# --------------------------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------------------------


def quote(name: str) -> str:
    """A column name quoted for Spark's resolver (dots and backticks are safe inside)."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    """The top-level column called exactly ``name`` (no dotted-path interpretation)."""
    return F.col(quote(name))


def quote_path_segment(name: str) -> str:
    """A field name as one segment of a Glue path (backticks when it contains a dot)."""
    if "." in name or "`" in name:
        return "`" + name.replace("`", "``") + "`"
    return name


def join_path(segments: Iterable[str]) -> str:
    return ".".join(quote_path_segment(s) for s in segments)


def split_path(path: str) -> list[str]:
    """Split a Glue path on dots outside backticks (```` inside backticks is one backtick)."""
    if not isinstance(path, str) or path == "":
        raise ValueError(f"a field path must be a non-empty string, got {path!r}")
    segments: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "`":
            if quoted and i + 1 < len(path) and path[i + 1] == "`":
                current.append("`")
                i += 2
                continue
            quoted = not quoted
        elif ch == "." and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"unbalanced backtick in field path {path!r}")
    segments.append("".join(current))
    if any(s == "" for s in segments):
        raise ValueError(f"empty segment in field path {path!r}")
    return segments


def is_choice(field: StructField) -> bool:
    """Whether a field is a choice (a struct flagged with the choice metadata)."""
    return bool(field.metadata.get(CHOICE_METADATA_KEY)) and isinstance(field.dataType, StructType)


def _find_field(fields: Sequence[StructField], name: str) -> StructField | None:
    for f in fields:
        if f.name == name:
            return f
    lowered = [f for f in fields if f.name.lower() == name.lower()]
    if len(lowered) == 1:
        return lowered[0]
    return None


@dataclass(frozen=True)
class Step:
    """One step of a resolved path: a struct field, or (``field is None``) into array elements."""

    field: StructField | None


def resolve_path(fields: Sequence[StructField], path: str) -> list[Step] | None:
    """Resolve a Glue path against a schema, through structs and (with ``name[]``) arrays.

    Dots inside a field name (``contact_details.val.type``, as ``relationalize``/``unnest``
    produce) match without backticks: at each level the longest run of segments naming a field
    wins. Returns None when the path does not exist.
    """
    segments = split_path(path)
    steps: list[Step] = []
    current: Sequence[StructField] | None = fields
    i = 0
    while i < len(segments):
        if current is None:
            return None
        match: StructField | None = None
        consumed = 0
        array_marker = False
        for k in range(len(segments) - i, 0, -1):
            name = ".".join(segments[i : i + k])
            marker = name.endswith("[]")
            lookup = name[:-2] if marker else name
            found = _find_field(current, lookup)
            if found is not None:
                match, consumed, array_marker = found, k, marker
                break
        if match is None:
            return None
        steps.append(Step(match))
        i += consumed
        dt = match.dataType
        if array_marker:
            if not isinstance(dt, ArrayType):
                return None
            steps.append(Step(None))
            dt = dt.elementType
        elif isinstance(dt, ArrayType) and i < len(segments):
            # ``arr.x`` addresses the field x of the elements of an array of structs
            steps.append(Step(None))
            dt = dt.elementType
        current = dt.fields if isinstance(dt, StructType) else None
    return steps


def path_column(df: DataFrame, path: str, role: str = "field") -> Column:
    """The Column of a path through structs; ValueError naming ``role`` when it is missing."""
    steps = resolve_path(data_fields(df), path)
    if steps is None:
        raise ValueError(f"{role} {path!r} not found; available top-level fields: {data_columns(df)}")
    if any(s.field is None for s in steps):
        raise ValueError(f"{role} {path!r} goes through an array; only struct paths are supported here")
    first = steps[0].field
    assert first is not None
    expr = col(first.name)
    for s in steps[1:]:
        assert s.field is not None
        expr = expr.getField(s.field.name)
    return expr


# --------------------------------------------------------------------------------------------
# Glue type names and schema merging (union, mergeDynamicFrame)
# --------------------------------------------------------------------------------------------

_TYPE_NAMES: list[tuple[type[DataType], str]] = [
    (NullType, "null"),
    (StringType, "string"),
    (BooleanType, "boolean"),
    (ByteType, "byte"),
    (ShortType, "short"),
    (IntegerType, "int"),
    (LongType, "long"),
    (FloatType, "float"),
    (DoubleType, "double"),
    (DecimalType, "decimal"),
    (DateType, "date"),
    (TimestampNTZType, "timestampntz"),
    (TimestampType, "timestamp"),
    (BinaryType, "binary"),
    (StructType, "struct"),
    (ArrayType, "array"),
    (MapType, "map"),
]


def glue_type_name(dt: DataType) -> str:
    """Glue's name of a Spark type (the sub-field name of that branch in a choice)."""
    for cls, name in _TYPE_NAMES:
        if isinstance(dt, cls):
            return name
    return dt.typeName()


_NUMERIC_RANK: dict[type[DataType], int] = {
    ByteType: 1,
    ShortType: 2,
    IntegerType: 3,
    LongType: 4,
    FloatType: 5,
    DoubleType: 6,
}


def _widen_atomic(a: DataType, b: DataType) -> DataType:
    """Common type of two atomic element types (used inside arrays/maps, where no choice fits)."""
    ra, rb = _NUMERIC_RANK.get(type(a)), _NUMERIC_RANK.get(type(b))
    if ra is not None and rb is not None:
        return a if ra >= rb else b
    if isinstance(a, DecimalType) and isinstance(b, DecimalType):
        return _merge_decimal(a, b)
    return StringType()


def _merge_decimal(a: DecimalType, b: DecimalType) -> DecimalType:
    scale = max(a.scale, b.scale)
    integral = max(a.precision - a.scale, b.precision - b.scale)
    return DecimalType(min(38, integral + scale), scale)


def merge_types(a: DataType, b: DataType) -> DataType:
    """Merge two types where no choice can be expressed (array elements, map values)."""
    if a == b:
        return a
    if isinstance(a, NullType):
        return b
    if isinstance(b, NullType):
        return a
    if isinstance(a, StructType) and isinstance(b, StructType):
        return StructType(merge_field_lists(a.fields, b.fields))
    if isinstance(a, ArrayType) and isinstance(b, ArrayType):
        return ArrayType(merge_types(a.elementType, b.elementType), True)
    if isinstance(a, MapType) and isinstance(b, MapType):
        return MapType(merge_types(a.keyType, b.keyType), merge_types(a.valueType, b.valueType), True)
    if isinstance(a, (StructType, ArrayType, MapType)) or isinstance(b, (StructType, ArrayType, MapType)):
        return StringType()
    return _widen_atomic(a, b)


def _choice_branches(field: StructField) -> list[StructField]:
    if is_choice(field):
        assert isinstance(field.dataType, StructType)
        return list(field.dataType.fields)
    return [StructField(glue_type_name(field.dataType), field.dataType, True)]


def _merge_branch(a: StructField, b: StructField) -> StructField:
    if a.dataType == b.dataType:
        return a
    if isinstance(a.dataType, DecimalType) and isinstance(b.dataType, DecimalType):
        return StructField(a.name, _merge_decimal(a.dataType, b.dataType), True)
    return StructField(a.name, merge_types(a.dataType, b.dataType), True)


def merge_fields(a: StructField, b: StructField) -> StructField:
    """Merge two same-named fields as Glue's schema merge does.

    Null merged with X gives X; structs merge field by field; arrays and maps merge their
    element types; anything else that differs becomes a choice (a flagged struct with one
    sub-field per Glue type name).
    """
    if a.dataType == b.dataType and is_choice(a) == is_choice(b):
        return StructField(a.name, a.dataType, True, a.metadata)
    if isinstance(a.dataType, NullType):
        return StructField(a.name, b.dataType, True, b.metadata)
    if isinstance(b.dataType, NullType):
        return StructField(a.name, a.dataType, True, a.metadata)
    if not is_choice(a) and not is_choice(b):
        if isinstance(a.dataType, StructType) and isinstance(b.dataType, StructType):
            return StructField(a.name, StructType(merge_field_lists(a.dataType.fields, b.dataType.fields)), True)
        if isinstance(a.dataType, ArrayType) and isinstance(b.dataType, ArrayType):
            return StructField(a.name, ArrayType(merge_types(a.dataType.elementType, b.dataType.elementType)), True)
        if isinstance(a.dataType, MapType) and isinstance(b.dataType, MapType):
            return StructField(a.name, merge_types(a.dataType, b.dataType), True)
        if isinstance(a.dataType, DecimalType) and isinstance(b.dataType, DecimalType):
            return StructField(a.name, _merge_decimal(a.dataType, b.dataType), True)
    branches: list[StructField] = []
    for br in _choice_branches(a) + _choice_branches(b):
        if isinstance(br.dataType, NullType):
            continue
        for i, existing in enumerate(branches):
            if existing.name == br.name:
                branches[i] = _merge_branch(existing, br)
                break
        else:
            branches.append(StructField(br.name, br.dataType, True))
    if len(branches) == 1:
        return StructField(a.name, branches[0].dataType, True)
    return StructField(a.name, StructType(branches), True, {CHOICE_METADATA_KEY: True})


def merge_field_lists(a: Sequence[StructField], b: Sequence[StructField]) -> list[StructField]:
    """Merge two field lists by name: a's order first, then b's new fields."""
    out: list[StructField] = []
    b_by_name = {f.name: f for f in b}
    for f in a:
        other = b_by_name.get(f.name)
        out.append(merge_fields(f, other) if other is not None else StructField(f.name, f.dataType, True, f.metadata))
    a_names = {f.name for f in a}
    out.extend(StructField(f.name, f.dataType, True, f.metadata) for f in b if f.name not in a_names)
    return out


def conform(expr: Column, src: StructField | None, dst: StructField) -> Column:
    """An expression turning a value of field ``src`` into one of field ``dst`` (not aliased)."""
    if src is None or isinstance(src.dataType, NullType):
        return F.lit(None).cast(dst.dataType)
    return _conform(expr, src.dataType, is_choice(src), dst.dataType, is_choice(dst))


def _conform(expr: Column, sdt: DataType, schoice: bool, ddt: DataType, dchoice: bool) -> Column:
    if sdt == ddt and schoice == dchoice:
        return expr
    if isinstance(sdt, NullType):
        return F.lit(None).cast(ddt)
    if dchoice:
        assert isinstance(ddt, StructType)
        if schoice:
            assert isinstance(sdt, StructType)
            src_branches = {f.name: f for f in sdt.fields}
            parts = []
            for br in ddt.fields:
                sb = src_branches.get(br.name)
                value = (
                    _conform(expr.getField(br.name), sb.dataType, False, br.dataType, False)
                    if sb is not None
                    else F.lit(None).cast(br.dataType)
                )
                parts.append(value.alias(br.name))
            return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))
        name = glue_type_name(sdt)
        parts = []
        for br in ddt.fields:
            if br.name == name:
                parts.append(_conform(expr, sdt, False, br.dataType, False).alias(br.name))
            else:
                parts.append(F.lit(None).cast(br.dataType).alias(br.name))
        return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))
    if isinstance(ddt, StructType) and isinstance(sdt, StructType) and not schoice:
        src_fields = {f.name: f for f in sdt.fields}
        parts = []
        for f in ddt.fields:
            sf = src_fields.get(f.name)
            parts.append(conform(expr.getField(f.name), sf, f).alias(f.name, metadata=f.metadata))
        return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))
    if isinstance(ddt, ArrayType) and isinstance(sdt, ArrayType):
        s_el, d_el = sdt.elementType, ddt.elementType
        return F.transform(expr, lambda e: _conform(e, s_el, False, d_el, False))
    if isinstance(ddt, MapType) and isinstance(sdt, MapType):
        s_v, d_v = sdt.valueType, ddt.valueType
        converted = F.transform_values(expr, lambda _k, v: _conform(v, s_v, False, d_v, False))
        return converted.cast(ddt)
    if isinstance(ddt, StringType) and isinstance(sdt, (StructType, ArrayType, MapType)):
        return F.to_json(expr)
    return expr.cast(ddt)


def conform_frame(df: DataFrame, fields: Sequence[StructField], with_errors: bool) -> DataFrame:
    """Project ``df`` onto ``fields`` (the merged schema), plus the error column when asked."""
    own = {f.name: f for f in data_fields(df)}
    cols = [conform(col(f.name), own.get(f.name), f).alias(f.name, metadata=f.metadata) for f in fields]
    if with_errors:
        cols.append(error_column(df))
    return df.select(*cols)


# --------------------------------------------------------------------------------------------
# Flattening structs into dotted names (unnest, relationalize)
# --------------------------------------------------------------------------------------------


def flatten_field(expr: Column, name: str, field: StructField) -> list[tuple[str, Column, StructField]]:
    """Flatten one field: non-choice structs become ``name.sub`` columns, recursively."""
    dt = field.dataType
    if isinstance(dt, StructType) and not is_choice(field) and dt.fields:
        out: list[tuple[str, Column, StructField]] = []
        for f in dt.fields:
            out.extend(flatten_field(expr.getField(f.name), f"{name}.{f.name}", f))
        return out
    return [(name, expr, StructField(name, dt, True, field.metadata))]


def flatten_frame_columns(fields: Sequence[StructField]) -> list[tuple[str, Column, StructField]]:
    out: list[tuple[str, Column, StructField]] = []
    for f in fields:
        out.extend(flatten_field(col(f.name), f.name, f))
    seen: set[str] = set()
    for name, _, _ in out:
        if name in seen:
            raise ValueError(
                f"flattening produces the column name {name!r} twice (a field literally named {name!r} "
                "collides with a nested path); rename one of them first"
            )
        seen.add(name)
    return out


# --------------------------------------------------------------------------------------------
# Staging through parquet (NullType cannot be written, so it is swapped for string and back)
# --------------------------------------------------------------------------------------------


def _devoid(dt: DataType) -> DataType:
    if isinstance(dt, NullType):
        return StringType()
    if isinstance(dt, StructType):
        return StructType([StructField(f.name, _devoid(f.dataType), f.nullable, f.metadata) for f in dt.fields])
    if isinstance(dt, ArrayType):
        return ArrayType(_devoid(dt.elementType), dt.containsNull)
    if isinstance(dt, MapType):
        return MapType(_devoid(dt.keyType), _devoid(dt.valueType), dt.valueContainsNull)
    return dt


def _revoid(expr: Column, dt: DataType) -> Column:
    if dt == _devoid(dt):
        return expr
    if isinstance(dt, NullType):
        return F.lit(None)
    if isinstance(dt, StructType):
        parts = [_revoid(expr.getField(f.name), f.dataType).alias(f.name, metadata=f.metadata) for f in dt.fields]
        return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))
    if isinstance(dt, ArrayType):
        el = dt.elementType
        return F.transform(expr, lambda e: _revoid(e, el))
    if isinstance(dt, MapType):
        vt = dt.valueType
        return F.transform_values(expr, lambda _k, v: _revoid(v, vt))
    return expr


def stage_through(df: DataFrame, path: str) -> DataFrame:
    """Write ``df`` as parquet under ``path`` and read it back (Glue's staging of intermediates).

    The result no longer depends on ``df``'s lineage, so values computed once (generated keys)
    stay fixed however often the result is evaluated. NullType columns survive the round trip.
    """
    fields = df.schema.fields
    writable = df.select(*[col(f.name).cast(_devoid(f.dataType)).alias(f.name, metadata=f.metadata) for f in fields])
    writable.write.mode("overwrite").parquet(path)
    back = df.sparkSession.read.parquet(path)
    log.debug("staged %d columns through %s", len(fields), path)
    return back.select(*[_revoid(col(f.name), f.dataType).alias(f.name, metadata=f.metadata) for f in fields])


def pin(df: DataFrame, staging_path: str | None) -> DataFrame:
    """Materialise ``df`` once: through ``staging_path`` when given, else a local checkpoint."""
    if staging_path is not None:
        return stage_through(df, staging_path)
    return df.localCheckpoint(eager=True)
