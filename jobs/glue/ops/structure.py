"""Structural DynamicFrame operations on contract-encoded DataFrames.

``unnest``, ``unbox``, ``join``, ``union``, ``split_fields``, ``split_rows``, ``merge_frames`` and
``drop_null_fields``. Each keeps error records (non-null ``__glue_error``): unchanged where the
shape stays, with the new or other-side columns null where it changes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DecimalType,
    DoubleType,
    LongType,
    MapType,
    NullType,
    StringType,
    StructField,
    StructType,
    _parse_datatype_string,
)

from jobs.glue import ERROR_COLUMN
from jobs.glue.ops._frame import (
    TEMP_PREFIX,
    Step,
    col,
    conform_frame,
    data_columns,
    data_fields,
    error_column,
    error_rows,
    flatten_frame_columns,
    good_rows,
    has_errors,
    is_choice,
    is_good,
    join_path,
    make_error,
    merge_field_lists,
    null_error,
    path_column,
    record_json,
    resolve_path,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# unnest
# --------------------------------------------------------------------------------------------


def unnest(df: DataFrame) -> DataFrame:
    """Flatten nested structs into top-level columns named by their dotted path (``a.b.c``).

    Structs inside arrays stay as they are, and so do choice fields (they are one field whose
    value has several possible types, not a struct).
    """
    flat = flatten_frame_columns(data_fields(df))
    cols = [e.alias(n, metadata=f.metadata) for n, e, f in flat]
    if has_errors(df):
        cols.append(col(ERROR_COLUMN))
    return df.select(*cols)


# --------------------------------------------------------------------------------------------
# unbox
# --------------------------------------------------------------------------------------------

_UNBOX_FORMATS = ("json", "csv")
_CORRUPT = TEMP_PREFIX + "corrupt"


def unbox(
    df: DataFrame,
    path: str,
    fmt: str,
    options: Mapping[str, Any] | None = None,
    *,
    stage: str = "unbox",
    info: str = "",
) -> DataFrame:
    """Parse the string field at ``path`` as ``fmt`` (``json`` or ``csv``) into a struct of the same name.

    * json: the field type is inferred from all values (Spark's JSON inference: conflicting types
      widen to string, where Glue would make a choice), or taken from ``withSchema``.
    * csv: one record per value, fields ``col0``, ``col1``... (Glue's CSV names) typed long,
      double, boolean or string by what every value of the column parses as; options
      ``separator`` (default ``,``), ``escaper`` (none), ``quoteChar`` (``"``), ``skipFirst``
      (drop the first line of each value), ``withHeader`` (the first line names the fields),
      ``withSchema`` (a ``StructType.json()`` string, Glue's or Spark's, or a DDL string).

    A value that does not parse (malformed JSON, not a JSON object, an unterminated CSV quote,
    more than one CSV record, a value that does not fit ``withSchema``) turns its record into an
    error record (stage ``stage``) with the field null. Null values stay null.
    """
    if not isinstance(fmt, str) or fmt.lower() not in _UNBOX_FORMATS:
        raise ValueError(f"unsupported unbox format {fmt!r}; supported: {', '.join(_UNBOX_FORMATS)}")
    opts = dict(options or {})
    steps = resolve_path(data_fields(df), path)
    if steps is None:
        raise ValueError(f"unbox: field {path!r} not found; available top-level fields: {data_columns(df)}")
    if any(s.field is None for s in steps):
        raise ValueError(f"unbox: field {path!r} is inside an array; only struct paths are supported")
    last = steps[-1].field
    assert last is not None
    if not isinstance(last.dataType, (StringType, NullType)):
        raise ValueError(f"unbox: field {path!r} is {last.dataType.simpleString()}, not a string")
    source = path_column(df, path)
    parsed, failure = (_unbox_json if fmt.lower() == "json" else _unbox_csv)(df, source, opts)
    # failure: a message for a value that did not parse, null otherwise (and for error records)
    fail = F.when(is_good(df), failure)
    value = F.when(fail.isNull(), parsed)
    cols = [c for _, c in _replace_at(df, steps, value)]
    new_error = make_error(fail, stage, info, record_json(df))
    cols.append(F.when(fail.isNotNull(), new_error).otherwise(error_column(df)).alias(ERROR_COLUMN))
    return df.select(*cols)


def _replace_at(df: DataFrame, steps: Sequence[Step], value: Column) -> list[tuple[str, Column]]:
    """The data columns of ``df`` with the struct path ``steps`` replaced by ``value``."""
    out: list[tuple[str, Column]] = []
    first = steps[0].field
    assert first is not None
    for f in data_fields(df):
        if f.name == first.name:
            out.append((f.name, _rebuild(col(f.name), f, steps[1:], value).alias(f.name, metadata=f.metadata)))
        else:
            out.append((f.name, col(f.name)))
    return out


def _rebuild(expr: Column, field: StructField, rest: Sequence[Step], value: Column) -> Column:
    if not rest:
        return value
    dt = field.dataType
    assert isinstance(dt, StructType)
    target = rest[0].field
    assert target is not None
    parts = []
    for f in dt.fields:
        if f.name == target.name:
            parts.append(_rebuild(expr.getField(f.name), f, rest[1:], value).alias(f.name, metadata=f.metadata))
        else:
            parts.append(expr.getField(f.name).alias(f.name, metadata=f.metadata))
    return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))


def _schema_option(opts: Mapping[str, Any]) -> StructType | None:
    raw = opts.get("withSchema")
    if raw is None or raw == "":
        return None
    if isinstance(raw, StructType):
        return raw
    text = str(raw)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:
            parsed = _parse_datatype_string(text)
        except Exception as exc:
            raise ValueError(f"unbox: withSchema is neither a schema JSON nor a DDL string: {text!r}") from exc
        if not isinstance(parsed, StructType):
            raise ValueError(f"unbox: withSchema must describe a struct, got {parsed.simpleString()}") from None
        return parsed
    dt = _schema_from_json(doc)
    if not isinstance(dt, StructType):
        raise ValueError(f"unbox: withSchema must describe a struct, got {text!r}")
    return dt


_GLUE_ATOMIC: dict[str, str] = {
    "string": "string",
    "boolean": "boolean",
    "byte": "tinyint",
    "short": "smallint",
    "int": "int",
    "integer": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "date": "date",
    "timestamp": "timestamp",
    "timestampntz": "timestamp_ntz",
    "binary": "binary",
    "null": "void",
}


def _schema_from_json(doc: Any) -> DataType:
    """A Spark type from Spark's ``StructType.json()`` or Glue's gluetypes JSON."""
    if isinstance(doc, dict) and "dataType" in doc:  # Glue's gluetypes JSON
        kind = str(doc["dataType"]).lower()
        if kind == "struct":
            fields = [
                StructField(str(f["name"]), _schema_from_json(f.get("container", f)), True) for f in doc["fields"]
            ]
            return StructType(fields)
        if kind == "array":
            return ArrayType(_schema_from_json(doc["elementType"]), True)
        if kind == "map":
            return MapType(StringType(), _schema_from_json(doc["valueType"]), True)
        if kind == "decimal":
            props = doc.get("properties", {})
            return DecimalType(int(props.get("precision", 10)), int(props.get("scale", 2)))
        if kind in _GLUE_ATOMIC:
            return _parse_datatype_string(_GLUE_ATOMIC[kind])
        raise ValueError(f"unbox: unsupported type {kind!r} in withSchema")
    if isinstance(doc, dict) and doc.get("type") == "struct":
        return StructType.fromJson(doc)
    raise ValueError(f"unbox: withSchema is not a struct schema: {doc!r}")


def _unbox_json(df: DataFrame, source: Column, opts: Mapping[str, Any]) -> tuple[Column, Column]:
    schema = _schema_option(opts)
    if schema is None:
        sample = good_rows(df).select(source.alias("v")).where(col("v").isNotNull())
        strings = sample.rdd.map(lambda r: r[0])
        if strings.isEmpty():
            schema = StructType([])
        else:
            inferred = df.sparkSession.read.json(strings).schema
            schema = StructType([f for f in inferred.fields if f.name != "_corrupt_record"])
    with_corrupt = StructType([*schema.fields, StructField(_CORRUPT, StringType(), True)])
    parsed = F.from_json(source, with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
    struct = F.struct(*[parsed.getField(f.name).alias(f.name) for f in schema.fields]) if schema.fields else None
    value = struct if struct is not None else F.struct()
    failure = F.when(
        source.isNotNull() & (parsed.isNull() | parsed.getField(_CORRUPT).isNotNull()),
        F.concat(F.lit("unbox: value is not a JSON object: "), F.substring(source, 1, 200)),
    )
    return F.when(source.isNotNull(), value), failure


def _csv_option(opts: Mapping[str, Any], name: str, default: str | None) -> str | None:
    raw = opts.get(name, default)
    if raw is None or raw == "" or raw == -1:
        return None if raw != "" or default is None else default
    text = str(raw)
    if len(text) != 1:
        raise ValueError(f"unbox: csv option {name} must be a single character, got {text!r}")
    return text


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _csv_parser(
    separator: str, escaper: str | None, quote_char: str | None, skip_first: bool, with_header: bool
) -> Callable[[str | None], tuple[list[str] | None, list[str] | None, str | None]]:
    def parse(value: str | None) -> tuple[list[str] | None, list[str] | None, str | None]:
        """(header, fields, error) of one value."""
        if value is None:
            return None, None, None
        try:
            reader = csv.reader(
                io.StringIO(value),
                delimiter=separator,
                escapechar=escaper,
                quotechar=quote_char or '"',
                quoting=csv.QUOTE_MINIMAL if quote_char else csv.QUOTE_NONE,
                strict=True,
            )
            rows = list(reader)
        except csv.Error as exc:
            return None, None, f"unbox: malformed CSV value ({exc})"
        if skip_first and rows:
            rows = rows[1:]
        header: list[str] | None = None
        if with_header:
            if not rows:
                return None, None, "unbox: CSV value has no header line"
            header, rows = rows[0], rows[1:]
        rows = [r for r in rows if r]
        if len(rows) > 1:
            return None, None, f"unbox: expected one CSV record per value, found {len(rows)}"
        return header, (rows[0] if rows else None), None

    return parse


def _unbox_csv(df: DataFrame, source: Column, opts: Mapping[str, Any]) -> tuple[Column, Column]:
    separator = _csv_option(opts, "separator", ",") or ","
    escaper = _csv_option(opts, "escaper", None)
    quote_char = _csv_option(opts, "quoteChar", '"')
    with_header = _truthy(opts.get("withHeader", False))
    parse = _csv_parser(separator, escaper, quote_char, _truthy(opts.get("skipFirst", False)), with_header)
    result_type = StructType(
        [
            StructField("header", ArrayType(StringType()), True),
            StructField("fields", ArrayType(StringType()), True),
            StructField("error", StringType(), True),
        ]
    )
    parsed = F.udf(parse, result_type)(source)
    schema = _schema_option(opts)
    tmp = TEMP_PREFIX + "csv"
    sample = (
        good_rows(df)
        .select(parsed.alias(tmp))
        .where(col(tmp).getField("error").isNull() & col(tmp).getField("fields").isNotNull())
    )
    names: list[str]
    if schema is not None:
        names = [f.name for f in schema.fields]
    elif with_header:
        headers = [list(r[0]) for r in sample.select(col(tmp).getField("header")).distinct().collect()]
        order: dict[str, tuple[int, int]] = {}
        for h_index, h in enumerate(sorted(headers, key=lambda h: (len(h), h))):
            for pos, name in enumerate(h):
                order.setdefault(name, (pos, h_index))
        names = sorted(order, key=lambda n: order[n])
    else:
        width_row = sample.select(F.max(F.size(col(tmp).getField("fields")))).first()
        width = int(width_row[0]) if width_row is not None and width_row[0] is not None else 0
        names = [f"col{i}" for i in range(width)]

    def raw(struct: Column, i: int, name: str) -> Column:
        fields_arr = struct.getField("fields")
        if with_header:
            pos = F.array_position(struct.getField("header"), name).cast("int")
            return F.when(pos > 0, F.element_at(fields_arr, pos))
        return F.when(F.size(fields_arr) > i, F.element_at(fields_arr, i + 1))

    if schema is not None:
        types: list[DataType] = [f.dataType for f in schema.fields]
    else:
        types = _infer_csv_types(sample, [raw(col(tmp), i, n) for i, n in enumerate(names)])
    typed: list[Column] = []
    mismatch: Column = F.lit(False)
    for i, (n, t) in enumerate(zip(names, types, strict=True)):
        r = raw(parsed, i, n)
        if isinstance(t, StringType):
            typed.append(r.alias(n))
            continue
        blank = r.isNull() | (F.trim(r) == "")
        cast = F.when(~blank, F.trim(r).cast(t))
        typed.append(cast.alias(n))
        mismatch = mismatch | (~blank & cast.isNull())
    value = F.struct(*typed) if typed else F.struct()
    error = parsed.getField("error")
    failure = F.when(source.isNotNull() & error.isNotNull(), error).when(
        source.isNotNull() & parsed.getField("fields").isNotNull() & mismatch,
        F.lit("unbox: CSV value does not fit the schema"),
    )
    return F.when(source.isNotNull() & parsed.getField("fields").isNotNull(), value), failure


def _infer_csv_types(parsed: DataFrame, raws: Sequence[Column]) -> list[DataType]:
    """Per column: long if every non-blank value is an integer, else double, else boolean, else string."""
    if not raws:
        return []
    aggs: list[Column] = []
    for i, r in enumerate(raws):
        value = F.trim(r)
        present = r.isNotNull() & (value != "")
        aggs.append(F.sum(F.when(present, 1).otherwise(0)).alias(f"n{i}"))
        aggs.append(F.sum(F.when(present & value.rlike(r"^[+-]?\d{1,18}$"), 1).otherwise(0)).alias(f"l{i}"))
        aggs.append(F.sum(F.when(present & value.cast(DoubleType()).isNotNull(), 1).otherwise(0)).alias(f"d{i}"))
        aggs.append(F.sum(F.when(present & F.lower(value).isin("true", "false"), 1).otherwise(0)).alias(f"b{i}"))
    row = parsed.agg(*aggs).first()
    types: list[DataType] = []
    for i in range(len(raws)):
        n = (row[f"n{i}"] or 0) if row is not None else 0
        if n == 0:
            types.append(StringType())
        elif row is not None and row[f"l{i}"] == n:
            types.append(LongType())
        elif row is not None and row[f"d{i}"] == n:
            types.append(DoubleType())
        elif row is not None and row[f"b{i}"] == n:
            types.append(BooleanType())
        else:
            types.append(StringType())
    return types


# --------------------------------------------------------------------------------------------
# join, union, merge
# --------------------------------------------------------------------------------------------


def join(df1: DataFrame, df2: DataFrame, keys1: Sequence[str], keys2: Sequence[str]) -> DataFrame:
    """Equi-join on ``keys1 == keys2`` (inner), keeping both frames' key columns.

    Columns of ``df2`` whose name is already taken by ``df1`` are renamed with a leading dot
    (``.name``, more dots until unique), which is how Glue names the second frame's duplicate
    fields. Error records of either frame are kept, with the other frame's columns null.
    """
    keys1, keys2 = _key_list(keys1, "keys1"), _key_list(keys2, "keys2")
    if len(keys1) != len(keys2):
        raise ValueError(f"join needs as many keys on both sides, got {keys1} and {keys2}")
    left_keys = [path_column(df1, k, "join key (frame1)") for k in keys1]
    right_keys = [path_column(df2, k, "join key (frame2)") for k in keys2]
    left_fields = data_fields(df1)
    taken = {f.name for f in left_fields}
    right_names: list[tuple[StructField, str]] = []
    for f in data_fields(df2):
        new = f.name
        while new in taken:
            new = "." + new
        taken.add(new)
        right_names.append((f, new))
    if any(f.name != n for f, n in right_names):
        log.info("join: renamed clashing columns of frame2: %s", {f.name: n for f, n in right_names if f.name != n})
    keep_errors = has_errors(df1) or has_errors(df2)

    lk = [f"{TEMP_PREFIX}lk{i}" for i in range(len(keys1))]
    rk = [f"{TEMP_PREFIX}rk{i}" for i in range(len(keys2))]
    left = good_rows(df1).select(
        *[col(f.name) for f in left_fields], *[k.alias(n) for k, n in zip(left_keys, lk, strict=True)]
    )
    right = good_rows(df2).select(
        *[col(f.name).alias(n, metadata=f.metadata) for f, n in right_names],
        *[k.alias(n) for k, n in zip(right_keys, rk, strict=True)],
    )
    cond = [col(a) == col(b) for a, b in zip(lk, rk, strict=True)]
    joined = left.join(right, on=cond, how="inner")
    out_cols = [col(f.name).alias(f.name, metadata=f.metadata) for f in left_fields] + [
        col(n).alias(n, metadata=f.metadata) for f, n in right_names
    ]
    result = joined.select(*out_cols, *([null_error()] if keep_errors else []))
    if not keep_errors:
        return result
    pieces = [result]
    for df, mine in ((df1, True), (df2, False)):
        errs = error_rows(df)
        if errs is None:
            continue
        cols: list[Column] = []
        for f in left_fields:
            cols.append((col(f.name) if mine else F.lit(None).cast(f.dataType)).alias(f.name, metadata=f.metadata))
        for f, n in right_names:
            cols.append((F.lit(None).cast(f.dataType) if mine else col(f.name)).alias(n, metadata=f.metadata))
        cols.append(error_column(errs))
        pieces.append(errs.select(*cols))
    out = pieces[0]
    for p in pieces[1:]:
        out = out.unionByName(p)
    return out


def _key_list(keys: Sequence[str] | str, name: str) -> list[str]:
    if isinstance(keys, str):
        keys = [keys]
    out = list(keys)
    if not out or not all(isinstance(k, str) and k for k in out):
        raise ValueError(f"{name} must be a non-empty list of field paths, got {keys!r}")
    return out


def union(df1: DataFrame, df2: DataFrame) -> DataFrame:
    """All records of both frames; schemas merged by name (missing fields null, type conflicts choices)."""
    fields = merge_field_lists(data_fields(df1), data_fields(df2))
    keep_errors = has_errors(df1) or has_errors(df2)
    return conform_frame(df1, fields, keep_errors).unionByName(conform_frame(df2, fields, keep_errors))


def merge_frames(df: DataFrame, stage_df: DataFrame, primary_keys: Sequence[str]) -> DataFrame:
    """Glue's ``mergeDynamicFrame``: staging records replace the source records with the same key.

    Source records whose key has no staging record are kept (duplicates included); all staging
    records are in the result (so unmatched ones are inserted); nothing is de-duplicated. Keys
    compare with SQL equality, so a null key never matches. Schemas are merged by name. Error
    records of both frames are kept.
    """
    keys = _key_list(primary_keys, "primary_keys")
    src_keys = [path_column(df, k, "primary key (source frame)") for k in keys]
    stg_keys = [path_column(stage_df, k, "primary key (staging frame)") for k in keys]
    fields = merge_field_lists(data_fields(df), data_fields(stage_df))
    keep_errors = has_errors(df) or has_errors(stage_df)
    src_names = [f"{TEMP_PREFIX}pk{i}" for i in range(len(keys))]
    stg_names = [f"{TEMP_PREFIX}sk{i}" for i in range(len(keys))]
    src = good_rows(df).select("*", *[k.alias(n) for k, n in zip(src_keys, src_names, strict=True)])
    stg = good_rows(stage_df).select(*[k.alias(n) for k, n in zip(stg_keys, stg_names, strict=True)]).distinct()
    on = [col(a) == col(b) for a, b in zip(src_names, stg_names, strict=True)]
    kept = src.join(stg, on=on, how="left_anti").drop(*src_names)
    out = conform_frame(kept, fields, keep_errors).unionByName(conform_frame(good_rows(stage_df), fields, keep_errors))
    for frame in (df, stage_df):
        errs = error_rows(frame)
        if errs is not None:
            out = out.unionByName(conform_frame(errs, fields, True))
    return out


# --------------------------------------------------------------------------------------------
# split_fields, split_rows
# --------------------------------------------------------------------------------------------

_Tree = dict[str, "_Tree"]


def _path_tree(df: DataFrame, paths: Sequence[str]) -> _Tree:
    tree: _Tree = {}
    for p in paths:
        steps = resolve_path(data_fields(df), p)
        if steps is None:
            log.info("split_fields: path %r not found, ignored", p)
            continue
        node = tree
        names = [s.field.name for s in steps if s.field is not None]
        for i, name in enumerate(names):
            if i == len(names) - 1:
                node[name] = {}
            else:
                child = node.setdefault(name, {"": {}})
                if child == {}:
                    break  # an ancestor is already selected whole
                node = child
    return tree


def _or_null(value: Column | None) -> Column:
    return F.lit(None) if value is None else value


def _select_tree(expr: Column, dt: DataType, tree: _Tree) -> Column | None:
    """The part of a value that ``tree`` selects (None when nothing of it is selected)."""
    sub = {k: v for k, v in tree.items() if k != ""}
    if not sub:
        return expr
    if isinstance(dt, ArrayType):
        element = dt.elementType
        return F.transform(expr, lambda e: _or_null(_select_tree(e, element, tree)))
    if not isinstance(dt, StructType):
        return expr
    parts = []
    for f in dt.fields:
        if f.name in sub:
            part = _select_tree(expr.getField(f.name), f.dataType, sub[f.name])
            if part is not None:
                parts.append(part.alias(f.name, metadata=f.metadata))
    if not parts:
        return None
    return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))


def _drop_tree(expr: Column, dt: DataType, tree: _Tree) -> Column | None:
    """The value without what ``tree`` names (None when nothing is left)."""
    sub = {k: v for k, v in tree.items() if k != ""}
    if not sub:
        return None
    if isinstance(dt, ArrayType) and isinstance(dt.elementType, StructType):
        element = dt.elementType
        if not _drop_leaves_anything(element, tree):
            return None
        return F.transform(expr, lambda e: _or_null(_drop_tree(e, element, tree)))
    if not isinstance(dt, StructType):
        return expr
    parts = []
    for f in dt.fields:
        if f.name in sub:
            part = _drop_tree(expr.getField(f.name), f.dataType, sub[f.name])
            if part is None:
                continue
        else:
            part = expr.getField(f.name)
        parts.append(part.alias(f.name, metadata=f.metadata))
    if not parts:
        return None
    return F.when(expr.isNull(), F.lit(None)).otherwise(F.struct(*parts))


def _drop_leaves_anything(dt: StructType, tree: _Tree) -> bool:
    sub = {k: v for k, v in tree.items() if k != ""}
    for f in dt.fields:
        if f.name not in sub:
            return True
        child = sub[f.name]
        if {k for k in child if k != ""}:
            inner = f.dataType.elementType if isinstance(f.dataType, ArrayType) else f.dataType
            if isinstance(inner, StructType) and _drop_leaves_anything(inner, child):
                return True
            if not isinstance(inner, StructType):
                return True
    return False


def select_paths(df: DataFrame, paths: Sequence[str]) -> DataFrame:
    """Keep only ``paths`` (nested paths keep their enclosing structs); the error column stays."""
    tree = _path_tree(df, paths)
    cols: list[Column] = []
    for f in data_fields(df):
        if f.name in tree:
            part = _select_tree(col(f.name), f.dataType, tree[f.name])
            if part is not None:
                cols.append(part.alias(f.name, metadata=f.metadata))
    if has_errors(df):
        cols.append(col(ERROR_COLUMN))
    return df.select(*cols)


def drop_paths(df: DataFrame, paths: Sequence[str]) -> DataFrame:
    """Drop ``paths`` (in structs and in arrays of structs); emptied structs go too."""
    tree = _path_tree(df, paths)
    cols: list[Column] = []
    for f in data_fields(df):
        if f.name in tree:
            part = _drop_tree(col(f.name), f.dataType, tree[f.name])
            if part is None:
                continue
            cols.append(part.alias(f.name, metadata=f.metadata))
        else:
            cols.append(col(f.name))
    if has_errors(df):
        cols.append(col(ERROR_COLUMN))
    return df.select(*cols)


def split_fields(df: DataFrame, paths: Sequence[str]) -> tuple[DataFrame, DataFrame]:
    """(the frame of ``paths``, the frame of everything else). Both keep the error column.

    Paths that do not exist are ignored (as in Glue's ``select_fields``/``drop_fields``).
    """
    if isinstance(paths, str):
        paths = [paths]
    if not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"split_fields needs a list of field paths, got {paths!r}")
    return select_paths(df, paths), drop_paths(df, paths)


_OPS: dict[str, Callable[[Column, Column], Column]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}


def split_rows(df: DataFrame, comparison_dict: Mapping[str, Mapping[str, Any]]) -> tuple[DataFrame, DataFrame]:
    """(records matching every comparison, the rest), e.g. ``{"age": {">": 10, "<": 20}}``.

    Conditions are ANDed; operators ``<, >, <=, >=, =, !=`` (``==`` is accepted for ``=``). A
    comparison with a null value does not match. Error records go to the second frame.
    """
    if not isinstance(comparison_dict, Mapping):
        raise ValueError(f"split_rows needs a dict {{path: {{operator: value}}}}, got {comparison_dict!r}")
    cond: Column = F.lit(True)
    for path, comparisons in comparison_dict.items():
        if not isinstance(comparisons, Mapping):
            raise ValueError(f"split_rows: comparisons for {path!r} must be a dict {{operator: value}}")
        target = path_column(df, path, "split_rows field")
        for op, value in comparisons.items():
            fn = _OPS.get(op)
            if fn is None:
                raise ValueError(f"unknown comparison operator {op!r} for {path!r}; expected one of < > <= >= = !=")
            cond = cond & fn(target, F.lit(value))
    matches = is_good(df) & F.coalesce(cond, F.lit(False))
    flag = TEMP_PREFIX + "match"
    marked = df.withColumn(flag, matches)
    return marked.where(col(flag)).drop(flag), marked.where(~col(flag)).drop(flag)


# --------------------------------------------------------------------------------------------
# drop_null_fields
# --------------------------------------------------------------------------------------------


def drop_null_fields(df: DataFrame) -> tuple[DataFrame, list[str]]:
    """Drop the fields whose every value is null (or whose type is NullType).

    Recurses into structs and into arrays of structs (a field of the elements is dropped when it
    is null in every element of every record), not into maps; choice fields count as one field.
    Only good records are looked at; a frame without good records keeps its typed fields.
    Returns the frame and the dropped paths (Glue paths: dots between levels, backticks around
    names containing dots, no marker for arrays), outermost first.
    """
    candidates: list[tuple[tuple[str, ...], Column | None]] = []

    def walk(names: tuple[str, ...], field: StructField, probe: Callable[[Callable[[Column], Column]], Column]) -> None:
        dt = field.dataType
        if isinstance(dt, NullType):
            candidates.append((names, None))
            return
        candidates.append((names, probe(lambda v: v.isNotNull())))
        if is_choice(field):
            return
        if isinstance(dt, StructType):
            for f in dt.fields:
                walk(names + (f.name,), f, _struct_probe(probe, f.name))
        elif isinstance(dt, ArrayType) and isinstance(dt.elementType, StructType):
            for f in dt.elementType.fields:
                walk(names + (f.name,), f, _array_probe(probe, f.name))

    for f in data_fields(df):
        walk((f.name,), f, _top_probe(f.name))

    measured = [(names, p) for names, p in candidates if p is not None]
    present: dict[tuple[str, ...], bool] = {}
    good = good_rows(df)
    if measured:
        row = good.agg(
            F.count(F.lit(1)).alias("__n"),
            *[F.max(F.coalesce(p, F.lit(False)).cast("int")).alias(f"p{i}") for i, (_, p) in enumerate(measured)],
        ).first()
        empty = row is None or row["__n"] == 0
        for i, (names, _) in enumerate(measured):
            present[names] = True if empty else bool(row is not None and row[f"p{i}"])
    dropped = [names for names, p in candidates if p is None or not present.get(names, True)]
    # keep only outermost dropped paths
    outer: list[tuple[str, ...]] = []
    for names in dropped:
        if not any(names[: len(o)] == o for o in outer):
            outer.append(names)
    # structs left without fields go too
    outer = _with_emptied_parents(df, outer)
    paths = [join_path(n) for n in outer]
    if not paths:
        return df, []
    log.info("null_fields %s", paths)
    return _drop_names(df, outer), paths


def _top_probe(name: str) -> Callable[[Callable[[Column], Column]], Column]:
    return lambda test: test(col(name))


def _struct_probe(
    parent: Callable[[Callable[[Column], Column]], Column], name: str
) -> Callable[[Callable[[Column], Column]], Column]:
    return lambda test: parent(lambda v: test(v.getField(name)))


def _array_probe(
    parent: Callable[[Callable[[Column], Column]], Column], name: str
) -> Callable[[Callable[[Column], Column]], Column]:
    return lambda test: parent(lambda arr: F.exists(arr, lambda e: F.coalesce(test(e.getField(name)), F.lit(False))))


def _with_emptied_parents(df: DataFrame, dropped: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Add the structs all of whose fields are dropped (replacing their children in the list)."""
    changed = True
    result = list(dropped)
    while changed:
        changed = False
        parents = {n[:-1] for n in result if len(n) > 1}
        for parent in sorted(parents):
            children = _child_names(df, parent)
            if children and all(parent + (c,) in result for c in children):
                result = [n for n in result if n[: len(parent)] != parent] + [parent]
                changed = True
                break
    return result


def _child_names(df: DataFrame, names: tuple[str, ...]) -> list[str]:
    fields: Sequence[StructField] = data_fields(df)
    dt: DataType | None = None
    for name in names:
        match = next((f for f in fields if f.name == name), None)
        if match is None:
            return []
        dt = match.dataType
        if isinstance(dt, ArrayType):
            dt = dt.elementType
        fields = dt.fields if isinstance(dt, StructType) else []
    return [f.name for f in fields]


def _drop_names(df: DataFrame, dropped: list[tuple[str, ...]]) -> DataFrame:
    tree: _Tree = {}
    for names in dropped:
        node = tree
        for i, name in enumerate(names):
            if i == len(names) - 1:
                node[name] = {}
            else:
                node = node.setdefault(name, {"": {}})
    cols: list[Column] = []
    for f in data_fields(df):
        if f.name in tree:
            part = _drop_tree(col(f.name), f.dataType, tree[f.name])
            if part is None:
                continue
            cols.append(part.alias(f.name, metadata=f.metadata))
        else:
            cols.append(col(f.name))
    if has_errors(df):
        cols.append(col(ERROR_COLUMN))
    return df.select(*cols)


__all__ = [
    "drop_null_fields",
    "drop_paths",
    "join",
    "merge_frames",
    "select_paths",
    "split_fields",
    "split_rows",
    "union",
    "unbox",
    "unnest",
]
