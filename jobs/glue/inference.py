"""Glue's self-describing readers: JSON and CSV with per-value type inference.

Both readers return a DataFrame in the runtime's encoding (see ``jobs.glue``): one column per
field, a choice struct for a field whose values have several types, ``NullType`` for a field that
is always null, and ``ERROR_COLUMN`` carrying the malformed records (raw text in ``record``).

Types are inferred per value, as Glue does, and merged with :func:`gluetypes.mergeDataTypes`:

* JSON: strings, booleans, doubles (any number written with a fraction or exponent), ``int`` for
  integers that fit in 32 bits and ``long`` for the rest of the 64-bit range (larger ones are
  ``double``), structs for objects, arrays for arrays.
* CSV: ``long`` for integers, ``double`` for other numbers, otherwise ``string``; an empty field is
  null.

Each read is two passes over the input, like Spark's own schema inference: a schema pass, then the
data pass. For JSON lines both run in the JVM when lakeforge's jar carries its JSON helpers
(``jobs/java/GlueJsonShape.java`` and ``GlueJsonKinds.java``, Spark SQL UDFs built by setup):

* schema pass: every line's *shape* (the Glue type of each of its values) is computed in the JVM and
  the lines grouped by shape; the driver merges the few distinct shapes;
* data pass: Spark's JSON parser with the inferred schema (a choice read as its raw text); when a
  choice has a ``string`` branch, the JSON type of the value at each choice path (GlueJsonKinds) picks
  the branch, since the parser reads the number 404 and the string "404" into the same text.

Multi-line JSON, ``jsonPath``, top-level arrays of records, string choices inside arrays, and a jar
without the helpers take the Python passes instead (``mapInArrow`` on the executors, one summary per
partition merged on the driver), which give the same result, several times slower. CSV is read by
Spark's CSV parser with every column as text; the typing of each value and the schema pass (one
aggregation) are Spark expressions.
"""

from __future__ import annotations

import bz2
import datetime
import decimal
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, cast
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as st

from jobs.glue import ERROR_COLUMN
from jobs.glue import gluetypes as gt
from jobs.glue.errors import ERROR_FIELD, error_column, null_error_column

try:  # orjson is several times faster; the standard library is the fallback
    import orjson

    _fast_loads: Callable[[Any], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = json.loads

log = logging.getLogger(__name__)

JSON_STAGE = "json reader"
CSV_STAGE = "csv reader"
MALFORMED_JSON = "Malformed JSON record"

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_CORRUPT = "__glue_corrupt"
_NULL_SENTINEL = "\u0000__glue_null__\u0000"
_SPARK_JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": _CORRUPT,
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "allowNumericLeadingZeros": "false",
    "allowUnquotedControlChars": "false",
}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# ---------------------------------------------------------------------------------------------
# Per-value typing of parsed JSON values (runs on the executors, one column of values at a time)
# ---------------------------------------------------------------------------------------------


def _int_type(values: list[int]) -> gt.DataType:
    lo, hi = min(values), max(values)
    if lo >= _INT_MIN and hi <= _INT_MAX:
        return gt.IntegerType()
    result: gt.DataType = gt.NullType()
    if any(_INT_MIN <= v <= _INT_MAX for v in values):
        result = gt.IntegerType()
    if any((_LONG_MIN <= v < _INT_MIN) or (_INT_MAX < v <= _LONG_MAX) for v in values):
        result = gt.mergeDataTypes(result, gt.LongType())
    if lo < _LONG_MIN or hi > _LONG_MAX:
        result = gt.mergeDataTypes(result, gt.DoubleType())
    return result


def _struct_type(records: list[dict[str, Any]]) -> gt.StructType:
    shapes = dict.fromkeys(map(tuple, records))
    if len(shapes) == 1:
        keys = next(iter(shapes))
        if not keys:
            return gt.StructType()
        if len(keys) == 1:
            columns: list[list[Any]] = [[r[keys[0]] for r in records]]
        else:
            columns = [list(c) for c in zip(*map(itemgetter(*keys), records), strict=True)]
        return gt.StructType(gt.Field(k, infer_type(col)) for k, col in zip(keys, columns, strict=True))
    names = dict.fromkeys(chain.from_iterable(shapes))
    return gt.StructType(gt.Field(k, infer_type([r.get(k) for r in records])) for k in names)


_TYPE_ORDER: dict[type, int] = {bool: 0, int: 1, float: 2, str: 3, dict: 4, list: 5, tuple: 5}


def infer_type(values: list[Any]) -> gt.DataType:
    """The merged Glue type of parsed JSON values (each value typed on its own, then merged)."""
    kinds = set(map(type, values))
    result: gt.DataType = gt.NullType()
    for kind in sorted(kinds, key=lambda k: _TYPE_ORDER.get(k, 9)):
        same: list[Any] = values if len(kinds) == 1 else [v for v in values if type(v) is kind]
        t: gt.DataType
        if kind is bool:
            t = gt.BooleanType()
        elif kind is int:
            t = _int_type(same)
        elif kind is float:
            t = gt.DoubleType()
        elif kind is str:
            t = gt.StringType()
        elif kind is dict:
            t = _struct_type(same)
        elif kind is list or kind is tuple:
            t = gt.ArrayType(infer_type(list(chain.from_iterable(same))))
        elif kind is datetime.datetime:
            t = gt.TimestampType()
        elif kind is datetime.date:
            t = gt.DateType()
        elif kind is decimal.Decimal:
            t = gt.DecimalType(38, 18)
        elif kind is bytes or kind is bytearray:
            t = gt.BinaryType()
        elif kind is type(None):
            t = gt.NullType()
        else:
            raise TypeError(f"Cannot type a value of {kind.__name__}")
        result = gt.mergeDataTypes(result, t)
    return result


def _value_type_name(v: Any) -> str | None:
    """The Glue type name of one parsed JSON value (``None`` for null)."""
    kind = type(v)
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if kind is int:
        if _INT_MIN <= v <= _INT_MAX:
            return "int"
        return "long" if _LONG_MIN <= v <= _LONG_MAX else "double"
    if kind is float:
        return "double"
    if kind is dict:
        return "struct"
    if kind is list or kind is tuple:
        return "array"
    if kind is datetime.datetime:
        return "timestamp"
    if kind is datetime.date:
        return "date"
    if kind is decimal.Decimal:
        return "decimal"
    if kind is bytes or kind is bytearray:
        return "binary"
    return None


# ---------------------------------------------------------------------------------------------
# Encoding parsed values into the Spark encoding (Python data pass)
# ---------------------------------------------------------------------------------------------

Encoder = Callable[[Any], Any]


def _encoder(t: gt.DataType) -> Encoder | None:
    """A function turning a parsed JSON value of type ``t`` into its Arrow/Spark shape (None: as is)."""
    if isinstance(t, gt.ChoiceType):
        branches = {name: _encoder(b) for name, b in t.choices.items()}

        def enc_choice(v: Any) -> Any:
            name = _value_type_name(v)
            if name is None or name not in branches:
                return None
            inner = branches[name]
            return {name: inner(v) if inner else v}

        return enc_choice
    if isinstance(t, gt.StructType):
        fields = [(f.name, _encoder(f.dataType)) for f in t.fields]
        if all(e is None for _, e in fields):

            def enc_plain_struct(v: Any) -> Any:
                return v if type(v) is dict else None

            return enc_plain_struct

        def enc_struct(v: Any) -> Any:
            if type(v) is not dict:
                return None
            return {name: (e(v.get(name)) if e else v.get(name)) for name, e in fields}

        return enc_struct
    if isinstance(t, gt.ArrayType):
        inner = _encoder(t.elementType)

        def enc_array(v: Any) -> Any:
            if type(v) is not list and type(v) is not tuple:
                return None
            return [inner(x) for x in v] if inner else v

        return enc_array
    if isinstance(t, gt.DoubleType):

        def enc_double(v: Any) -> Any:
            return float(v) if type(v) in (int, float) else None

        return enc_double
    if isinstance(t, gt.NullType):
        return lambda v: None
    return None


# ---------------------------------------------------------------------------------------------
# JSON record extraction (lines, multi-line documents, jsonPath)
# ---------------------------------------------------------------------------------------------


def _lenient_loads(text: str | bytes) -> Any:
    """Parse one JSON text with the standard library (accepts what orjson rejects but Spark's parser
    accepts, such as lone surrogate escapes, and ignores what follows the first value, as Spark's JSON
    reader does); NaN and Infinity are rejected like Spark does here."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    value, _end = _STRICT_DECODER.raw_decode(text.lstrip())
    return value


def _reject_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_number)


def _loads(text: str) -> Any:
    try:
        return _fast_loads(text)
    except ValueError:
        return _lenient_loads(text)


def parse_json_path(path: str) -> list[str | int | None]:
    """Steps of a simple JSONPath (``$.a.b[*]``, ``$['a'][0]``): names, indexes, ``None`` for ``[*]``."""
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"jsonPath must start with '$': {path!r}")
    steps: list[str | int | None] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            name = text[i + 1 : j]
            steps.append(None if name == "*" else name)
            i = j
        elif ch == "[":
            j = text.index("]", i)
            inner = text[i + 1 : j].strip()
            if inner == "*":
                steps.append(None)
            elif inner[:1] in ("'", '"'):
                steps.append(inner[1:-1])
            else:
                steps.append(int(inner))
            i = j + 1
        else:
            raise ValueError(f"Unsupported jsonPath syntax at {text[i:]!r} in {path!r}")
    return steps


def _select_path(doc: Any, steps: Sequence[str | int | None]) -> list[Any]:
    current = [doc]
    for step in steps:
        nxt: list[Any] = []
        for value in current:
            if step is None:
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and -len(value) <= step < len(value):
                    nxt.append(value[step])
            elif isinstance(value, dict) and step in value:
                nxt.append(value[step])
        current = nxt
    return current


Item = tuple[dict[str, Any] | None, str | None, str]
"""A record (or None), an error message (or None) and the raw text the record came from."""


def _records_of(doc: Any, raw: str, steps: Sequence[str | int | None] | None) -> Iterator[Item]:
    values = _select_path(doc, steps) if steps is not None else (doc if isinstance(doc, list) else [doc])
    for value in values:
        if isinstance(value, dict):
            yield value, None, raw
        else:
            kind = "null" if value is None else type(value).__name__
            yield None, f"{MALFORMED_JSON}: not a JSON object (got {kind})", raw


def _documents(text: str) -> Iterator[tuple[Any, str | None, str]]:
    """The JSON values of a text holding several (multi-line) documents; the unparsable rest as one error."""
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        try:
            doc, nxt = decoder.raw_decode(text, pos)
        except ValueError as exc:
            yield None, f"{MALFORMED_JSON}: {exc}", text[pos:]
            return
        yield doc, None, text[pos:nxt]
        pos = nxt


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _nonblank_column(batch: pa.RecordBatch) -> pa.Array:
    column = batch.column(0)
    if len(column) == 0:
        return column
    keep = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
    if not pc.all(keep).as_py():
        column = column.filter(keep)
    return column


def _nonblank(batch: pa.RecordBatch) -> list[str]:
    return _nonblank_column(batch).to_pylist()  # type: ignore[no-any-return]


# Arrow's C++ JSON reader types a batch of lines several times faster than parsing them in Python.
# Its inference is coarser than Glue's in known ways, each checked below; when a check cannot decide,
# the batch is typed value by value in Python instead (so the result is always exact):
# * it widens integers mixed with fractions to double: the lines where a double field holds a whole
#   number are parsed again (few, usually none) to see whether it was written as an integer;
# * it reads every integer as int64: the range decides between int and long;
# * it types ISO-8601 strings as timestamps: they are strings;
# * any other mixture of types, a malformed line, a duplicate key or a line that is not one object
#   is an error, and so a fallback.
_MAX_RECHECKED_LINES = 256


class _Undecided(Exception):
    """Arrow's typing of a batch cannot be mapped exactly to Glue's."""


def _arrow_int_type(values: pa.Array) -> gt.DataType:
    valid = values.drop_null()
    if len(valid) == 0:
        return gt.NullType()
    bounds = pc.min_max(valid).as_py()
    lo, hi = bounds["min"], bounds["max"]
    if lo >= _INT_MIN and hi <= _INT_MAX:
        return gt.IntegerType()
    in_int = pc.and_(pc.greater_equal(valid, _INT_MIN), pc.less_equal(valid, _INT_MAX))
    if not pc.any(in_int).as_py():
        return gt.LongType()
    return gt.ChoiceType([gt.IntegerType(), gt.LongType()])


DoubleField = tuple[tuple[str, ...], pa.Array]


def _arrow_glue_type(values: pa.Array, path: tuple[str, ...] | None, doubles: list[DoubleField]) -> gt.DataType:
    """The Glue type of an Arrow column; ``path`` is its field path (None inside arrays), ``doubles``
    collects the double fields and their values, aligned with the batch's rows."""
    t = values.type
    if pa.types.is_null(t):
        return gt.NullType()
    if pa.types.is_boolean(t):
        return gt.BooleanType() if values.null_count < len(values) else gt.NullType()
    if pa.types.is_int64(t):
        return _arrow_int_type(values)
    if pa.types.is_float64(t):
        if values.null_count == len(values):
            return gt.NullType()
        if path is None:
            raise _Undecided("double inside an array")
        doubles.append((path, values))
        return gt.DoubleType()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_temporal(t):
        return gt.StringType() if values.null_count < len(values) else gt.NullType()
    if pa.types.is_struct(t):
        if values.null_count == len(values):
            return gt.NullType()
        return gt.StructType(
            gt.Field(
                t.field(i).name,
                _arrow_glue_type(
                    pc.struct_field(values, [i]), None if path is None else (*path, t.field(i).name), doubles
                ),
            )
            for i in range(t.num_fields)
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if values.null_count == len(values):
            return gt.NullType()
        return gt.ArrayType(_arrow_glue_type(values.flatten(), None, doubles))
    raise _Undecided(f"Arrow type {t}")


def _count_lines(chunk: bytes) -> int:
    """The number of non-blank lines of a chunk of text."""
    return sum(1 for line in chunk.split(b"\n") if line.strip())


def _arrow_chunk_type(chunk: bytes, lines: int | None = None) -> gt.StructType | None:
    """The Glue type of a chunk of JSON lines typed by Arrow's reader, or None when undecidable.

    ``lines`` is the number of non-blank lines in the chunk when the caller knows it."""
    import pyarrow.json as pj

    try:
        table = pj.read_json(
            pa.BufferReader(chunk),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(len(chunk) + 16, 1 << 16)),
        )
    except (pa.ArrowException, ValueError):
        return None
    if lines is None:
        newlines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        lines = table.num_rows if table.num_rows == newlines else _count_lines(chunk)
    if table.num_rows != lines:
        return None
    if table.num_columns == 0:
        return gt.StructType()
    doubles: list[DoubleField] = []
    try:
        columns = table.combine_chunks()
        result = gt.StructType(
            gt.Field(name, _arrow_glue_type(columns.column(i).combine_chunks(), (name,), doubles))
            for i, name in enumerate(table.column_names)
        )
    except _Undecided:
        return None
    if doubles and _integers_among_doubles(chunk, table.num_rows, doubles):
        return None
    return result


def _integers_among_doubles(chunk: bytes, rows: int, doubles: list[DoubleField]) -> bool:
    """Whether a double field holds a value written as an integer (or whether that is undecidable).

    Only a whole number can have been written as an integer; the lines holding one are parsed again.
    """
    suspects: set[int] = set()
    for _, values in doubles:
        whole = pc.and_(pc.is_finite(values), pc.equal(pc.trunc(values), values))
        suspects.update(np.flatnonzero(whole.fill_null(False).to_numpy(zero_copy_only=False)).tolist())
        if len(suspects) > _MAX_RECHECKED_LINES:
            return True
    if not suspects:
        return False
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    if len(ends) + (0 if chunk.endswith(b"\n") else 1) != rows:
        return True  # blank lines: rows and lines do not line up
    for row in sorted(suspects):
        start = int(ends[row - 1]) + 1 if row else 0
        stop = int(ends[row]) if row < len(ends) else len(chunk)
        try:
            doc: Any = _loads(chunk[start:stop].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return True
        for path, _ in doubles:
            value = doc
            for name in path:
                value = value.get(name) if isinstance(value, dict) else None
            if type(value) is int:
                return True
    return False


def _arrow_batch_type(lines: pa.Array) -> gt.StructType | None:
    """:func:`_arrow_chunk_type` of a batch of non-blank lines from Spark's text reader."""
    if len(lines) == 0:
        return gt.StructType()
    offsets = pa.array([0, len(lines)], pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, lines), "\n")[0].as_buffer()
    if joined is None:
        return None
    return _arrow_chunk_type(joined.to_pybytes(), len(lines))


def _batch_items(
    batch: pa.RecordBatch, multiline: bool, steps: Sequence[str | int | None] | None
) -> tuple[list[dict[str, Any]] | None, list[Item], int]:
    """:func:`_text_items` of the non-blank texts of a batch of Spark's text reader."""
    return _text_items(_nonblank(batch), multiline, steps)


def _text_items(
    texts: Sequence[str | bytes], multiline: bool, steps: Sequence[str | int | None] | None
) -> tuple[list[dict[str, Any]] | None, list[Item], int]:
    """Parse JSON texts: ``(records, [], 0)`` on the fast path (every text one JSON object), else
    ``(None, items, n)`` with every record and error in input order and the number of texts that
    held a top-level array."""
    if not multiline and steps is None:
        try:
            docs = list(map(_fast_loads, texts))
        except ValueError:
            docs = None
        if docs is not None and (not docs or set(map(type, docs)) == {dict}):
            return docs, [], 0
    items: list[Item] = []
    arrays = 0
    for item in texts:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
        if multiline:
            for doc, error, raw in _documents(text):
                if error is not None:
                    items.append((None, error, raw))
                else:
                    items.extend(_records_of(doc, raw, steps))
            continue
        try:
            doc = _loads(text)
        except ValueError as exc:
            items.append((None, f"{MALFORMED_JSON}: {exc}", text))
            continue
        arrays += isinstance(doc, list)
        items.extend(_records_of(doc, text, steps))
    return None, items, arrays


# ---------------------------------------------------------------------------------------------
# JSON reader
# ---------------------------------------------------------------------------------------------


def _raw_json_frame(spark: SparkSession, paths: Sequence[str], multiline: bool) -> DataFrame:
    return spark.read.text(list(paths), wholetext=multiline)


class _Summary:
    """What the schema pass learns about a part of the input."""

    def __init__(self) -> None:
        self.schema: gt.DataType = gt.StructType()
        self.records = 0
        self.errors = 0
        self.arrays = 0

    def add_type(self, t: gt.DataType, records: int) -> None:
        self.schema = gt.mergeDataTypes(self.schema, t)
        self.records += records

    def add_texts(
        self, texts: Sequence[str | bytes], multiline: bool, steps: Sequence[str | int | None] | None
    ) -> None:
        """Type texts value by value (exact; the fallback of the Arrow path)."""
        docs, items, arrays = _text_items(texts, multiline, steps)
        self.arrays += arrays
        if docs is None:
            docs = [r for r, _, _ in items if r is not None]
            self.errors += sum(1 for r, _, _ in items if r is None)
        if docs:
            self.add_type(infer_type(docs), len(docs))

    def add_chunk(self, chunk: bytes) -> None:
        """Type a chunk of JSON lines (Arrow's reader when it can decide, else value by value)."""
        fast = _arrow_chunk_type(chunk)
        if fast is not None:
            self.add_type(fast, chunk.count(b"\n"))
            return
        self.add_texts([line for line in chunk.split(b"\n") if line.strip()], False, None)

    def add_batch(self, batch: pa.RecordBatch, multiline: bool, steps: Sequence[str | int | None] | None) -> None:
        """Type a batch of Spark's text reader."""
        if not multiline and steps is None:
            lines = _nonblank_column(batch)
            fast = _arrow_batch_type(lines)
            if fast is not None:
                self.add_type(fast, len(lines))
                return
        self.add_texts(_nonblank(batch), multiline, steps)

    def row(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(
            {
                "schema": [json.dumps(self.schema.jsonValue())],
                "records": [self.records],
                "errors": [self.errors],
                "arrays": [self.arrays],
            }
        )


_SUMMARY_SCHEMA = "schema string, records long, errors long, arrays long"


@dataclass(frozen=True)
class _SchemaResult:
    schema: gt.StructType
    errors: int
    arrays: int


def _merge_summaries(rows: Sequence[Any]) -> _SchemaResult:
    schema: gt.DataType = gt.StructType()
    for row in rows:
        schema = gt.mergeDataTypes(schema, gt._deserialize_json_string(row["schema"]))
    if not isinstance(schema, gt.StructType):  # pragma: no cover - records are always structs
        raise TypeError(f"JSON records did not infer to a struct: {schema!r}")
    errors = sum(int(r["errors"]) for r in rows)
    log.debug("JSON schema pass: %d errors over %d partitions", errors, len(rows))
    return _SchemaResult(schema, errors, sum(int(r["arrays"]) for r in rows))


def _schema_pass(raw: DataFrame, multiline: bool, steps: Sequence[str | int | None] | None) -> _SchemaResult:
    """Pass 1 over Spark's text reader: the merged Glue schema of all records, one summary per partition."""

    def summarize(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        summary = _Summary()
        for batch in batches:
            summary.add_batch(batch, multiline, steps)
        yield summary.row()

    return _merge_summaries(raw.mapInArrow(summarize, _SUMMARY_SCHEMA).collect())


# Pass 1 over local files reads them in the Python workers directly (no trip through the JVM), in
# splits of whole lines like Spark's text reader makes them.

_CHUNK_BYTES = 4 << 20
_OPEN_COST_BYTES = 4 << 20
_MAX_SPLIT_BYTES = 128 << 20
_OPENERS: dict[str, Callable[[str], Any]] = {".gz": gzip.open, ".bz2": bz2.open}
_SPARK_ONLY_CODECS = frozenset({".deflate", ".lz4", ".snappy", ".zst", ".zstd", ".xz", ".lzo", ".br"})

Split = tuple[str, int, int]


def _local_file(path: str) -> str | None:
    if path.startswith("file:"):
        local = unquote(urlparse(path).path) if path.startswith("file://") else path[len("file:") :]
    elif "://" in path:
        return None
    else:
        local = path
    return local if os.path.isfile(local) else None


def _file_splits(paths: Sequence[str], parallelism: int) -> list[list[Split]] | None:
    """Splits of local files packed into tasks (Spark's sizing rule), or None if a path is not a local file."""
    files: list[tuple[str, int, bool]] = []
    for path in paths:
        local = _local_file(path)
        if local is None:
            return None
        ext = os.path.splitext(local)[1].lower()
        if ext in _SPARK_ONLY_CODECS:
            return None
        files.append((local, os.path.getsize(local), ext in _OPENERS))
    total = sum(size + _OPEN_COST_BYTES for _, size, _ in files)
    max_split = min(_MAX_SPLIT_BYTES, max(_OPEN_COST_BYTES, total // max(parallelism, 1)))
    splits: list[Split] = []
    for local, size, compressed in files:
        if compressed or size <= max_split:
            splits.append((local, 0, size))
        else:
            splits.extend((local, start, min(max_split, size - start)) for start in range(0, size, max_split))
    tasks: list[list[Split]] = []
    current: list[Split] = []
    current_bytes = 0
    for split in sorted(splits, key=lambda sp: sp[2], reverse=True):
        if current and current_bytes + split[2] + _OPEN_COST_BYTES > max_split:
            tasks.append(current)
            current, current_bytes = [], 0
        current.append(split)
        current_bytes += split[2] + _OPEN_COST_BYTES
    if current:
        tasks.append(current)
    return tasks


def _split_chunks(path: str, start: int, length: int) -> Iterator[bytes]:
    """Chunks of whole lines of a split: the lines whose first byte lies in ``[start, start+length)``."""
    opener = _OPENERS.get(os.path.splitext(path)[1].lower())
    if opener is not None:
        with opener(path) as stream:
            carry = b""
            while block := stream.read(_CHUNK_BYTES):
                data = carry + block
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                carry = data[cut:]
            if carry:
                yield carry
        return
    end = start + length
    with open(path, "rb") as f:
        pos = start
        if start > 0:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()
            pos = f.tell()
        carry = b""
        while pos < end:
            block = f.read(min(_CHUNK_BYTES, end - pos))
            if not block:
                break
            pos += len(block)
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            carry = data[cut:]
        if carry:  # the last line started inside the split: read it to its end
            yield carry + f.readline()


def _schema_pass_files(spark: SparkSession, tasks: list[list[Split]]) -> _SchemaResult:
    """Pass 1 over local JSON-lines files, read by the Python workers themselves."""

    def summarize(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        summary = _Summary()
        for batch in batches:
            for index in batch.column(0).to_pylist():
                for path, start, length in tasks[index]:
                    for chunk in _split_chunks(path, start, length):
                        summary.add_chunk(chunk)
        yield summary.row()

    ids = spark.range(0, len(tasks), 1, max(len(tasks), 1))
    return _merge_summaries(ids.mapInArrow(summarize, _SUMMARY_SCHEMA).collect())


# Pass 1 in the JVM: lakeforge's jar carries GlueJsonShape (jobs/java), a Spark SQL UDF giving each line's
# shape (the Glue type of every value of the record, as compact text). Spark groups the lines by shape, so
# the driver parses and merges a few dozen distinct shapes, whatever the number of records: the pass costs
# what Spark's own JSON schema inference costs. GlueJsonKinds gives the JSON type of the values at the
# choice paths of a record, which pass 2 needs when a choice has a string branch (Spark's parser reads the
# number 404 and the string "404" into the same text). Without the jar (setup not run), the Python passes
# above and below do the same work.

SHAPE_UDF = "lakeforge_json_shape"
KINDS_UDF = "lakeforge_json_kinds"
#: UDF name: (class, number of arguments).
_JVM_CLASSES = {SHAPE_UDF: ("lakeforge.glue.GlueJsonShape", 1), KINDS_UDF: ("lakeforge.glue.GlueJsonKinds", 2)}
_jvm_missing: str | None = None


def jvm_json_helpers(spark: SparkSession) -> bool:
    """Whether the JVM helpers are registered in ``spark`` (registering them on first use)."""
    global _jvm_missing
    if _jvm_missing is not None:
        return False
    try:
        if all(spark.catalog.functionExists(name) for name in _JVM_CLASSES):
            return True
        for name, (cls, arity) in _JVM_CLASSES.items():
            # Marked non-deterministic, so that the optimizer never copies a call into the expressions that
            # use its result (a filter pushed below the projection would parse every record once per use).
            spark._jsparkSession.udf().register(name, _java_udf(spark, cls, arity).asNondeterministic())
    except Exception as exc:  # noqa: BLE001 - py4j/analysis errors when the jar lacks the classes
        _jvm_missing = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning(
            "lakeforge's JVM JSON helpers are not available (%s): JSON is typed in Python, which is slower; "
            "run setup (python -m jobs.sparkenv) to build them",
            _jvm_missing,
        )
        return False
    return True


def _java_udf(spark: SparkSession, cls: str, arity: int) -> Any:
    """``functions.udf(new cls(), StringType)`` for a Java ``UDF<arity>``, the overload picked by reflection:
    left to py4j, the choice among ``udf``'s overloads varies between JVMs, and the untyped Scala one is
    refused by Spark."""
    jvm = spark._jvm
    gateway = spark.sparkContext._gateway
    assert jvm is not None and gateway is not None
    find = jvm.java.lang.Class.forName
    params = gateway.new_array(jvm.java.lang.Class, 2)
    params[0] = find(f"org.apache.spark.sql.api.java.UDF{arity}")
    params[1] = find("org.apache.spark.sql.types.DataType")
    method = find("org.apache.spark.sql.functions").getMethod("udf", params)
    args = gateway.new_array(jvm.java.lang.Object, 2)
    args[0] = (
        find(cls)
        .getConstructor(gateway.new_array(jvm.java.lang.Class, 0))
        .newInstance(gateway.new_array(jvm.java.lang.Object, 0))
    )
    args[1] = jvm.org.apache.spark.sql.types.DataTypes.StringType
    return method.invoke(None, args)


_SHAPE_ATOMS: dict[str, Callable[[], gt.DataType]] = {
    "s": gt.StringType,
    "i": gt.IntegerType,
    "l": gt.LongType,
    "d": gt.DoubleType,
    "b": gt.BooleanType,
    "n": gt.NullType,
}
_KEY_DECODER = json.JSONDecoder()


def parse_shape(text: str) -> gt.DataType:
    """The Glue type of a record's shape as GlueJsonShape writes it (``{"a":i,"b":[s|n]}``)."""
    t, end = _shape_at(text, 0)
    if end != len(text):
        raise ValueError(f"Trailing text in JSON shape {text!r} at {end}")
    return t


def _shape_at(text: str, pos: int) -> tuple[gt.DataType, int]:
    ch = text[pos]
    atom = _SHAPE_ATOMS.get(ch)
    if atom is not None:
        return atom(), pos + 1
    if ch == "{":
        fields: list[gt.Field] = []
        pos += 1
        if text[pos] == "}":
            return gt.StructType(), pos + 1
        while True:
            name, pos = _KEY_DECODER.raw_decode(text, pos)
            if text[pos] != ":":
                raise ValueError(f"Expected ':' in JSON shape {text!r} at {pos}")
            t, pos = _shape_at(text, pos + 1)
            fields.append(gt.Field(name, t))
            if text[pos] == ",":
                pos += 1
            elif text[pos] == "}":
                return gt.StructType(fields), pos + 1
            else:
                raise ValueError(f"Expected ',' or '}}' in JSON shape {text!r} at {pos}")
    if ch == "[":
        element: gt.DataType = gt.NullType()
        pos += 1
        if text[pos] == "]":
            return gt.ArrayType(element), pos + 1
        while True:
            t, pos = _shape_at(text, pos)
            element = gt.mergeDataTypes(element, t)
            if text[pos] == "|":
                pos += 1
            elif text[pos] == "]":
                return gt.ArrayType(element), pos + 1
            else:
                raise ValueError(f"Expected '|' or ']' in JSON shape {text!r} at {pos}")
    raise ValueError(f"Unexpected {ch!r} in JSON shape {text!r} at {pos}")


def _schema_pass_jvm(spark: SparkSession, paths: Sequence[str]) -> _SchemaResult:
    """Pass 1 in the JVM: the distinct shapes of the lines (with their counts), merged in input order."""
    shape = F.call_udf(SHAPE_UDF, F.col("value"))
    rows = (
        spark.read.text(list(paths))
        .select(shape.alias("shape"), F.monotonically_increasing_id().alias("row"))
        .where(F.col("shape").isNotNull())
        .groupBy("shape")
        .agg(F.count(F.lit(1)).alias("records"), F.min("row").alias("first"))
        .collect()
    )
    schema: gt.DataType = gt.StructType()
    errors = arrays = 0
    for row in sorted(rows, key=itemgetter("first")):
        text, count = row["shape"], int(row["records"])
        if text == "!":
            errors += count
        elif text == "A":
            arrays += count
        else:
            schema = gt.mergeDataTypes(schema, parse_shape(text))
    if not isinstance(schema, gt.StructType):  # pragma: no cover - records are always structs
        raise TypeError(f"JSON records did not infer to a struct: {schema!r}")
    log.debug("JSON schema pass (JVM): %d shapes, %d errors", len(rows), errors)
    return _SchemaResult(schema, errors, arrays)


def _has_string_choice(t: gt.DataType) -> bool:
    if isinstance(t, gt.ChoiceType):
        return "string" in t.choices or any(_has_string_choice(b) for b in t.choices.values())
    if isinstance(t, gt.StructType):
        return any(_has_string_choice(f.dataType) for f in t.fields)
    if isinstance(t, gt.ArrayType):
        return _has_string_choice(t.elementType)
    if isinstance(t, gt.MapType):
        return _has_string_choice(t.valueType)
    return False


def _has_choice(t: gt.DataType) -> bool:
    if isinstance(t, gt.ChoiceType):
        return True
    if isinstance(t, gt.StructType):
        return any(_has_choice(f.dataType) for f in t.fields)
    if isinstance(t, gt.ArrayType):
        return _has_choice(t.elementType)
    if isinstance(t, gt.MapType):
        return _has_choice(t.valueType)
    return False


def _parse_type(t: gt.DataType) -> st.DataType:
    """The Spark type Spark's JSON parser reads ``t`` as (a choice as its raw JSON text)."""
    if isinstance(t, gt.ChoiceType):
        return st.StringType()
    if isinstance(t, gt.StructType):
        return st.StructType([st.StructField(f.name, _parse_type(f.dataType), True) for f in t.fields])
    if isinstance(t, gt.ArrayType):
        return st.ArrayType(_parse_type(t.elementType), True)
    if isinstance(t, gt.MapType):
        return st.MapType(st.StringType(), _parse_type(t.valueType), True)
    return gt.to_spark_type(t)


_INTEGER_TEXT = r"^-?[0-9]+$"


def _decode_choice(raw: Column, t: gt.ChoiceType) -> Column:
    """The choice struct of a value Spark parsed as raw JSON text (choices without a string branch)."""
    integral = raw.rlike(_INTEGER_TEXT)
    as_long = raw.cast("long")
    fits_long = integral & as_long.isNotNull()
    fits_int = fits_long & as_long.between(_INT_MIN, _INT_MAX)
    parts: list[Column] = []
    for name in sorted(t.choices):
        branch = t.choices[name]
        value: Column
        if name == "int":
            value = F.when(fits_int, as_long.cast("int"))
        elif name == "long":
            value = F.when(fits_long & ~fits_int, as_long)
        elif name == "double":
            value = F.when(raw.rlike(r"^-?[0-9]") & ~fits_long, raw.cast("double"))
        elif name == "boolean":
            value = F.when(raw.isin("true", "false"), raw == F.lit("true"))
        elif name in ("struct", "map"):
            parsed = F.from_json(raw, cast(st.StructType, _parse_type(branch)), _SPARK_JSON_OPTIONS)
            value = F.when(raw.startswith("{"), _decode(parsed, branch))
        elif name == "array":
            parsed = F.from_json(raw, cast(st.StructType, _parse_type(branch)), _SPARK_JSON_OPTIONS)
            value = F.when(raw.startswith("["), _decode(parsed, branch))
        else:  # pragma: no cover - JSON values have no other types
            value = F.lit(None)
        parts.append(value.cast(gt.to_spark_type(branch)).alias(name))
    return F.when(raw.isNotNull(), F.struct(*parts))


def _decode(col: Column, t: gt.DataType) -> Column:
    """``col`` (read with :func:`_parse_type`) in the runtime's encoding of ``t``."""
    if not _has_choice(t):
        return col
    if isinstance(t, gt.ChoiceType):
        return _decode_choice(col, t)
    if isinstance(t, gt.StructType):
        return F.when(col.isNotNull(), F.struct(*(_decode(col[f.name], f.dataType).alias(f.name) for f in t.fields)))
    if isinstance(t, gt.ArrayType):
        element = t.elementType
        return F.transform(col, lambda e: _decode(e, element))
    if isinstance(t, gt.MapType):
        value = t.valueType
        return F.transform_values(col, lambda _k, v: _decode(v, value))
    return col


def _native_json_frame(
    spark: SparkSession, paths: Sequence[str], schema: gt.StructType, with_errors: bool = True
) -> DataFrame:
    """Pass 2 on Spark's JSON data source (JVM): choices are read as raw JSON text and decoded.

    Without ``with_errors`` (the schema pass found no malformed record) the frame is exactly Spark's
    JSON reader with an explicit schema, and the error column a null constant the optimizer removes.
    """
    fields = [st.StructField(f.name, _parse_type(f.dataType), True) for f in schema.fields]
    if with_errors:
        fields.append(st.StructField(_CORRUPT, st.StringType(), True))
    parsed = spark.read.schema(st.StructType(fields)).options(**_SPARK_JSON_OPTIONS).json(list(paths))
    bad: Column | None = None
    if with_errors:
        # Spark refuses a scan that needs only the corrupt-record column (say, a count of the errors),
        # so the test also reads the first data column, in a term that is always true.
        first = F.col(_quote(schema.fields[0].name)).cast("string")
        bad = F.col(_CORRUPT).isNotNull() & (F.coalesce(F.substring(first, 1, 0), F.lit("")) == F.lit(""))
    columns: list[Column] = []
    for f in schema.fields:
        spark_field = gt.to_spark_field(f.name, f.dataType)
        value = _decode(F.col(_quote(f.name)), f.dataType)
        if spark_field.metadata.get(gt.CHOICE_NESTED_METADATA_KEY) or (
            _has_choice(f.dataType) and not isinstance(f.dataType, gt.ChoiceType)
        ):
            value = value.cast(spark_field.dataType)
        if bad is not None:
            value = F.when(~bad, value)
        columns.append(value.alias(f.name, metadata=spark_field.metadata))
    if bad is None:
        columns.append(null_error_column().alias(ERROR_COLUMN))
    else:
        error = F.struct(
            F.lit(MALFORMED_JSON).alias("message"),
            F.lit(JSON_STAGE).alias("stage"),
            F.lit("").alias("info"),
            F.col(_CORRUPT).alias("record"),
        )
        columns.append(F.when(bad, error).alias(ERROR_COLUMN))
    return parsed.select(*columns)


_KIND_OF_BRANCH = {"int": "i", "long": "l", "double": "d", "boolean": "b", "string": "s", "struct": "{", "array": "["}


def _kind_paths(schema: gt.StructType) -> list[tuple[str, ...]] | None:
    """The paths (through structs only) of the schema's choices, for GlueJsonKinds; None when a choice
    with a string branch sits where kinds cannot reach it (in an array, a map or a choice's branch)."""
    paths: list[tuple[str, ...]] = []

    def walk(t: gt.DataType, path: tuple[str, ...]) -> bool:
        if isinstance(t, gt.ChoiceType):
            if any(name not in _KIND_OF_BRANCH for name in t.choices):
                return False
            paths.append(path)
            return not any(_has_string_choice(b) for b in t.choices.values())
        if isinstance(t, gt.StructType):
            return all(walk(f.dataType, (*path, f.name)) for f in t.fields)
        if isinstance(t, gt.ArrayType):
            return not _has_string_choice(t.elementType)
        if isinstance(t, gt.MapType):
            return not _has_string_choice(t.valueType)
        return True

    return paths if walk(schema, ()) else None


def _decode_choice_kind(raw: Column, t: gt.ChoiceType, kind: Column) -> Column:
    """The choice struct of a value Spark parsed as raw text, its branch told by its JSON ``kind``."""
    parts: list[Column] = []
    for name in sorted(t.choices):
        branch = t.choices[name]
        value: Column
        if name in ("int", "long", "double"):
            value = raw.cast(gt.to_spark_type(branch))
        elif name == "boolean":
            value = raw == F.lit("true")
        elif name == "string":
            value = raw
        else:  # struct, array
            value = _decode(F.from_json(raw, _parse_type(branch), _SPARK_JSON_OPTIONS), branch)  # type: ignore[arg-type]
        parts.append(F.when(kind == F.lit(_KIND_OF_BRANCH[name]), value).cast(gt.to_spark_type(branch)).alias(name))
    known = kind.isin(*(_KIND_OF_BRANCH[name] for name in t.choices))
    return F.when(known, F.struct(*parts))


def _decode_kinds(
    col: Column, t: gt.DataType, path: tuple[str, ...], kinds: Column, index: dict[tuple[str, ...], int]
) -> Column:
    """``col`` in the runtime's encoding of ``t``: choices reachable through structs by their kinds."""
    if not _has_choice(t):
        return col
    if isinstance(t, gt.ChoiceType):
        return _decode_choice_kind(col, t, F.substring(kinds, index[path] + 1, 1))
    if isinstance(t, gt.StructType):
        fields = (_decode_kinds(col[f.name], f.dataType, (*path, f.name), kinds, index).alias(f.name) for f in t.fields)
        return F.when(col.isNotNull(), F.struct(*fields))
    return _decode(col, t)


_INT_RANGE = (_INT_MIN, _INT_MAX)
_FAST_ORDER = ("double", "boolean", "struct", "array")


def _fast_branches(t: gt.ChoiceType) -> list[str]:
    """The branches of a choice with a string branch that Spark's parser reads directly (its values of
    the other branches fail to convert and take the slow path): the integers (int and long, told apart by
    range), else the first of double, boolean, struct, array."""
    integers: list[str] = [name for name in ("int", "long") if name in t.choices]
    if integers:
        return integers
    return [next(name for name in _FAST_ORDER if name in t.choices)]


def _fast_type(t: gt.DataType) -> st.DataType:
    """The Spark type the JSON data source reads ``t`` as on the fast path."""
    if isinstance(t, gt.ChoiceType):
        if "string" not in t.choices:
            return st.StringType()  # raw JSON text, decoded by _decode
        fast = _fast_branches(t)
        if fast[0] in ("int", "long"):
            return st.LongType() if "long" in fast else st.IntegerType()
        return _parse_type(t.choices[fast[0]])
    if isinstance(t, gt.StructType):
        return st.StructType([st.StructField(f.name, _fast_type(f.dataType), True) for f in t.fields])
    return _parse_type(t)


def _fast_decode(col: Column, t: gt.DataType) -> Column:
    """``col`` (read with :func:`_fast_type`) in the runtime's encoding of ``t``."""
    if isinstance(t, gt.ChoiceType):
        if "string" not in t.choices:
            return _decode_choice(col, t)
        fast = _fast_branches(t)
        fits_int = col.between(*_INT_RANGE)
        parts: list[Column] = []
        for name in sorted(t.choices):
            branch = t.choices[name]
            value: Column
            if name not in fast:
                value = F.lit(None)
            elif name == "int" and "long" in fast:
                value = F.when(fits_int, col)
            elif name == "long" and "int" in fast:
                value = F.when(~fits_int, col)
            else:
                value = _decode(col, branch)
            parts.append(value.cast(gt.to_spark_type(branch)).alias(name))
        return F.when(col.isNotNull(), F.struct(*parts))
    if isinstance(t, gt.StructType) and _has_choice(t):
        fields = (_fast_decode(col[f.name], f.dataType).alias(f.name) for f in t.fields)
        return F.when(col.isNotNull(), F.struct(*fields))
    return _decode(col, t)


def _kinds_json_frame(
    spark: SparkSession, paths: Sequence[str], schema: gt.StructType, kind_paths: list[tuple[str, ...]]
) -> DataFrame:
    """Pass 2 on Spark's JSON data source for a schema with string choices.

    Fast path: the data source reads each string choice as its main non-string branch (an ``int``, a
    ``double``...), so the records whose values all have that branch's type (usually nearly all) are read
    and typed by Spark's parser alone. A value of another type (a string where the fast type is int) fails
    to convert, which puts the line in the corrupt-record column: only those lines are parsed again
    (``from_json``, choices as raw text) and their choices' branches picked by GlueJsonKinds, which also
    says which of them are malformed, as pass 1 decided.
    """
    fields = [st.StructField(f.name, _fast_type(f.dataType), True) for f in schema.fields]
    fields.append(st.StructField(_CORRUPT, st.StringType(), True))
    parsed = spark.read.schema(st.StructType(fields)).options(**_SPARK_JSON_OPTIONS).json(list(paths))
    parse_schema = st.StructType([st.StructField(f.name, _parse_type(f.dataType), True) for f in schema.fields])
    index = {path: i for i, path in enumerate(kind_paths)}
    spec = json.dumps([list(p) for p in kind_paths])
    corrupt = F.col(_CORRUPT)
    staged = parsed.select(
        *(F.col(_quote(f.name)) for f in schema.fields),
        corrupt,
        # null (and cheap) for the lines the fast path read; the UDF is non-deterministic, so the optimizer
        # keeps this projection (no filter pushed below it duplicates the parsing)
        F.when(corrupt.isNotNull(), F.call_udf(KINDS_UDF, corrupt, F.lit(spec))).alias("__kinds"),
        F.when(corrupt.isNotNull(), F.from_json(corrupt, parse_schema, _SPARK_JSON_OPTIONS)).alias("__rec"),
    )
    kinds = F.col("__kinds")
    slow = corrupt.isNotNull()
    # Spark refuses a scan that needs only the corrupt-record column (a count of the errors, say): the test
    # also reads the first data column, in a term that is always true.
    first = F.col(_quote(schema.fields[0].name)).cast("string")
    bad = slow & (F.coalesce(F.substring(first, 1, 0), F.lit("")) == F.lit("")) & kinds.startswith("!")
    columns: list[Column] = []
    for f in schema.fields:
        spark_field = gt.to_spark_field(f.name, f.dataType)
        target = spark_field.dataType
        fast = _fast_decode(F.col(_quote(f.name)), f.dataType).cast(target)
        again = _decode_kinds(F.col("__rec")[f.name], f.dataType, (f.name,), kinds, index).cast(target)
        value = F.when(~slow, fast).when(~bad, again)
        columns.append(value.alias(f.name, metadata=spark_field.metadata))
    error = F.struct(
        F.concat(F.lit(f"{MALFORMED_JSON}: "), F.expr("substring(__kinds, 2)")).alias("message"),
        F.lit(JSON_STAGE).alias("stage"),
        F.lit("").alias("info"),
        corrupt.alias("record"),
    )
    # The partition id is never negative: the term only makes this projection non-deterministic, so the
    # optimizer neither pushes a filter below it nor inlines its columns (each choice a CASE building a
    # struct) into every expression that uses them: each value is computed once per record.
    barrier = F.when(F.spark_partition_id() < F.lit(0), error)
    columns.append(F.when(bad, error).otherwise(barrier).alias(ERROR_COLUMN))
    return staged.select(*columns)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _python_json_frame(
    raw: DataFrame, schema: gt.StructType, multiline: bool, steps: Sequence[str | int | None] | None
) -> DataFrame:
    """Pass 2 in Python on the executors (choices with a string branch, multi-line input, jsonPath)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    spark_schema = gt.to_spark_schema(schema)
    out_schema = st.StructType([*spark_schema.fields, ERROR_FIELD])
    arrow_schema = to_arrow_schema(out_schema)
    schema_json = json.dumps(schema.jsonValue())

    def encode(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        glue_schema = gt._deserialize_json_string(schema_json)
        enc = _encoder(glue_schema)
        for batch in batches:
            docs, items, _ = _batch_items(batch, multiline, steps)
            rows: list[dict[str, Any]]
            if docs is not None:
                rows = [enc(d) for d in docs] if enc else docs
            else:
                rows = []
                for record, error, text in items:
                    if record is not None:
                        rows.append(enc(record) if enc else record)
                    else:
                        rows.append({ERROR_COLUMN: {"message": error, "stage": JSON_STAGE, "info": "", "record": text}})
            yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    out = raw.mapInArrow(encode, out_schema)
    return out.select(
        *(F.col(f"`{f.name}`").alias(f.name, metadata=f.metadata) for f in spark_schema.fields), ERROR_COLUMN
    )


def read_json(spark: SparkSession, paths: Sequence[str], options: Mapping[str, Any] | None = None) -> DataFrame:
    """Read JSON records with Glue's per-value typing.

    ``options``: ``multiline``/``multiLine`` (records may span lines; a file may hold several
    documents, a top-level array yields one record per element) and ``jsonPath`` (``$.a.b[*]``,
    selecting the records inside each document). Blank lines are skipped; a line (or document) that
    is not JSON, or a selected value that is not an object, becomes an error record whose ``record``
    is the raw text.
    """
    opts = dict(options or {})
    multiline = _truthy(opts.get("multiline", opts.get("multiLine", False)))
    json_path = opts.get("jsonPath")
    steps = parse_json_path(str(json_path)) if json_path else None
    lines = not multiline and steps is None
    jvm = lines and jvm_json_helpers(spark)
    if jvm:
        result = _schema_pass_jvm(spark, paths)
    else:
        tasks = _file_splits(paths, spark.sparkContext.defaultParallelism) if lines else None
        if tasks is not None:
            result = _schema_pass_files(spark, tasks)
        else:
            result = _schema_pass(_raw_json_frame(spark, paths, multiline), multiline, steps)
    schema = result.schema
    if lines and result.arrays == 0 and schema.fields:
        if not _has_string_choice(schema):
            log.debug("JSON data pass on Spark's parser for %s", list(paths))
            return _native_json_frame(spark, paths, schema, with_errors=result.errors > 0)
        kind_paths = _kind_paths(schema) if jvm else None
        if kind_paths is not None:
            log.debug("JSON data pass on Spark's parser with the values' kinds for %s", list(paths))
            return _kinds_json_frame(spark, paths, schema, kind_paths)
    raw = _raw_json_frame(spark, paths, multiline)
    log.debug("JSON data pass in Python for %s", list(paths))
    return _python_json_frame(raw, schema, multiline, steps)


# ---------------------------------------------------------------------------------------------
# CSV reader
# ---------------------------------------------------------------------------------------------

_LONG_TEXT = r"^[+-]?[0-9]+$"
_DOUBLE_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _csv_reader_options(options: Mapping[str, Any]) -> dict[str, str]:
    sep = str(options.get("separator", options.get("sep", ",")))
    quote = options.get("quoteChar", '"')
    quote_text = "\u0000" if quote in (-1, "-1", None, "") else str(quote)
    escaper = options.get("escaper")
    escape_text = str(escaper) if escaper not in (None, "") else quote_text
    multiline = _truthy(options.get("multiLine", options.get("multiline", False)))
    return {
        "sep": sep,
        "quote": quote_text,
        "escape": escape_text,
        "multiLine": "true" if multiline else "false",
        "mode": "PERMISSIVE",
        "nullValue": _NULL_SENTINEL,
        "emptyValue": "",
        "ignoreLeadingWhiteSpace": "false",
        "ignoreTrailingWhiteSpace": "false",
        "inferSchema": "false",
        "enforceSchema": "true",
        "columnPruning": "false",
        "encoding": str(options.get("encoding", "UTF-8")),
    }


def _csv_columns(
    spark: SparkSession, paths: Sequence[str], reader_options: Mapping[str, str], header: bool
) -> list[str]:
    """Column names from the first line (Spark reads only that line without schema inference)."""
    reader = spark.read.options(**reader_options).option("header", "true" if header else "false")
    names = reader.csv(list(paths)).columns
    if not header:
        return [f"col{i}" for i in range(len(names))]
    result: list[str] = []
    for i, name in enumerate(names):
        clean = name if name and not (name.startswith("_c") and name[2:].isdigit()) else f"col{i}"
        result.append(clean if clean not in result else f"{clean}_{i}")
    return result


def read_csv(spark: SparkSession, paths: Sequence[str], options: Mapping[str, Any] | None = None) -> DataFrame:
    """Read CSV records with Glue's per-value typing (``long``, ``double``, else ``string``).

    ``options``: ``separator`` (``,``), ``quoteChar`` (``"``; ``-1`` turns quoting off), ``escaper``
    (none: a quote inside a quoted value is doubled), ``withHeader`` (False: columns ``col0``...),
    ``skipFirst`` (skip the first data line of each file), ``multiLine``. The first line fixes the
    number of columns; a row with another number of values becomes an error record with the raw line
    in ``record``.
    """
    opts = dict(options or {})
    reader_options = _csv_reader_options(opts)
    with_header = _truthy(opts.get("withHeader", False))
    skip_first = _truthy(opts.get("skipFirst", False))
    names = _csv_columns(spark, paths, reader_options, with_header)
    if skip_first and not with_header and names:
        count = _second_line_width(spark, paths, reader_options)
        names = [f"col{i}" for i in range(count)] if count is not None else names
    if not names:
        empty = st.StructType([ERROR_FIELD])
        return spark.createDataFrame([], empty)
    internal = [f"__c{i}" for i in range(len(names))]
    read_schema = st.StructType(
        [st.StructField(c, st.StringType(), True) for c in internal] + [st.StructField(_CORRUPT, st.StringType(), True)]
    )
    frame = (
        spark.read.schema(read_schema)
        .options(**reader_options)
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .option("header", "true" if (with_header or skip_first) else "false")
        .csv(list(paths))
    )
    if with_header and skip_first:
        frame = _drop_first_row_per_file(frame)
    cols = [F.col(c) for c in internal]
    # columnPruning is off, so Spark compares every row's length with the full column list.
    bad = F.col(_CORRUPT).isNotNull()
    raw_text = F.coalesce(F.col(_CORRUPT), F.concat_ws(reader_options["sep"], *cols))
    flags: dict[str, dict[str, Column]] = {}
    for c in internal:
        value = F.col(c)
        present = value.isNotNull() & (value != "")
        is_long = value.rlike(_LONG_TEXT) & value.cast("long").isNotNull()
        is_double = ~is_long & value.rlike(_DOUBLE_TEXT) & value.cast("double").isNotNull()
        flags[c] = {"long": is_long, "double": is_double, "string": present & ~is_long & ~is_double}
    typed = frame.select(
        *cols,
        bad.alias("__bad"),
        raw_text.alias("__raw"),
        *(flag.alias(f"{c}__{kind}") for c in internal for kind, flag in flags[c].items()),
    )
    aggregates = [
        F.max(F.when(~F.col("__bad"), F.col(f"{c}__{kind}").cast("int"))).alias(f"{c}__{kind}")
        for c in internal
        for kind in ("long", "double", "string")
    ]
    seen = typed.agg(*aggregates).first()
    columns: list[Column] = []
    for c, name in zip(internal, names, strict=True):
        kinds = [k for k in ("double", "long", "string") if seen is not None and seen[f"{c}__{k}"] == 1]
        value = F.col(c)
        field: st.StructField
        if not kinds:
            field = st.StructField(name, st.NullType(), True)
            expr = F.lit(None).cast(st.NullType())
        elif len(kinds) == 1:
            glue_type = gt.type_from_name(kinds[0])
            field = gt.to_spark_field(name, glue_type)
            expr = F.when(F.col(f"{c}__{kinds[0]}"), value.cast(field.dataType))
        else:
            field = gt.to_spark_field(name, gt.ChoiceType(gt.type_from_name(k) for k in kinds))
            expr = F.struct(
                *(F.when(F.col(f"{c}__{k}"), value.cast(gt.spark_type_from_name(k))).alias(k) for k in sorted(kinds))
            )
            any_kind = F.col(f"{c}__{kinds[0]}")
            for k in kinds[1:]:
                any_kind = any_kind | F.col(f"{c}__{k}")
            expr = F.when(any_kind, expr)
        columns.append(F.when(~F.col("__bad"), expr).cast(field.dataType).alias(name, metadata=field.metadata))
    message = f"Malformed CSV record: expected {len(names)} columns"
    columns.append(
        F.when(F.col("__bad"), error_column(message, CSV_STAGE, "", F.col("__raw")))
        .otherwise(null_error_column())
        .alias(ERROR_COLUMN)
    )
    return typed.select(*columns)


def _second_line_width(spark: SparkSession, paths: Sequence[str], reader_options: Mapping[str, str]) -> int | None:
    """The number of values on the second line of the first file (``skipFirst`` skips the first)."""
    import csv

    lines = [r[0] for r in spark.read.text(list(paths[:1])).limit(2).collect()]
    if len(lines) < 2:
        return None
    quote = reader_options["quote"]
    dialect: dict[str, Any] = {"delimiter": reader_options["sep"][:1] or ","}
    if quote == "\u0000":
        dialect["quoting"] = csv.QUOTE_NONE
    else:
        dialect["quotechar"] = quote
        if reader_options["escape"] != quote:
            dialect["escapechar"] = reader_options["escape"]
            dialect["doublequote"] = False
    return len(next(csv.reader([lines[1]], **dialect)))


def _drop_first_row_per_file(frame: DataFrame) -> DataFrame:
    """Drop the first data row of every file (``skipFirst`` together with ``withHeader``)."""
    tagged = frame.select(
        "*", F.col("_metadata.file_path").alias("__file"), F.monotonically_increasing_id().alias("__rid")
    )
    firsts = tagged.groupBy("__file").agg(F.min("__rid").alias("__rid"))
    return tagged.join(firsts, on=["__file", "__rid"], how="left_anti").drop("__file", "__rid")
