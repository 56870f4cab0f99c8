"""A Glue-style crawler: walk a folder of the object store, infer each file's format and schema, group the
files into tables with partitions, and register them as raw datasets of the lake's data catalog.

Usage::

    from catalog.client import LakeClient
    from jobs.crawler import crawl

    with LakeClient("http://127.0.0.1:8181") as lake:
        report = crawl("s3://landing/access_logs", "raw", client=lake, object_store_root=root)
    for table in report.tables:
        print(table.name, table.action, table.partitions_added)

Rules (after the Glue crawler, see the module's tests for each):

* **Files.** Names starting with ``_`` or ``.`` (``_SUCCESS``, ``.crc``, ``_temporary/``) and ``*_$folder$``
  markers are ignored, as Hadoop does; ``exclusions`` are globs relative to the crawled path (``*`` and ``?``
  stay inside one folder, ``**`` crosses folders, ``{a,b}`` alternates) that drop files, or whole folders.
* **Classifiers**, in Glue's built-in order: avro, orc, parquet (by their magic bytes; schemas come from the
  file's own metadata), then json (text starting with ``{`` or ``[``: JSON lines, concatenated or pretty-printed
  objects, or a top-level array of objects) and csv (delimiters ``,`` ``|`` tab ``;`` Ctrl-A; at least 2
  columns and 2 rows with the same number of fields; the delimiter giving the most columns wins, ties in that
  order). gzip and bzip2 files are decompressed; other compressions, binary data, non-UTF-8 text, empty and
  corrupt files are skipped and reported with the reason.
* **Sampling.** Text formats are inferred from the first ``sample_bytes`` (after decompression, 2 MiB by
  default) of each file, so a column that first appears later is missed, as in Glue.
* **Types.** JSON integers are ``int`` (``bigint`` beyond 32 bits), fractions ``double``, objects
  ``struct<...>``, arrays ``array<...>``; values seen for one column are merged: int and bigint -> bigint,
  integer and double -> double, structs field by field, arrays by element, anything else -> string; a column
  only ever null is ``string``. CSV values are ``bigint``, ``double``, ``boolean`` or ``string``. Top-level
  column names are lower-cased (the catalog is case-insensitive).
* **CSV header.** The first row is a header when every cell is a non-numeric, non-boolean string under 150
  characters (the last may be empty: a trailing delimiter) and some data row has a non-string value;
  otherwise the columns are ``col1``, ``col2``, ...
* **Tables.** Files in one folder belong to one table: the format (and CSV delimiter and header) most files
  of a folder share wins; the others are skipped as "mixed formats". The folders holding files below the
  crawled path form one table when they are all at the same depth, share the format, make at most 5 clusters
  of similar schemas and more than 70% of them fall in the largest cluster (two column sets are similar when
  70% of the smaller one is in the other); the table's columns are the merge of all its files'. Files
  directly in a folder whose sub-folders form such a table are skipped (they are beside its partitions).
  Otherwise each sub-folder is crawled as its own table root. A folder that is already the location of a
  dataset of the database is not split for dissimilar schemas (a re-crawl does not scatter a registered
  table into per-partition tables when a new partition's schema drifts). Compression does not split tables (Hadoop
  picks a codec per file by its extension); the table's ``compressionType`` is its files' most common one.
* **Partitions.** Each folder level below a table root is a partition key: ``key=value`` folders name it
  (values URL-unescaped as Hive writes them), other levels are ``partition_0``, ``partition_1``, ...; keys are
  ``string`` (types set by hand on an existing dataset are kept when the new values fit them). A data column
  named like a partition key is dropped from the columns (the catalog refuses duplicates).
* **Names.** A table is named after its root folder (``table`` overrides the name of a single table, and
  prefixes ``<table>_<folder>`` when several are found), lower-cased with other characters than letters,
  digits and ``_`` replaced by ``_``. A name taken by a dataset at another location gets a suffix from a hash
  of the location, as Glue does.
* **Updates.** New tables and partitions are always registered; partitions are added idempotently. An
  existing table whose crawled definition differs is updated (a new catalog version) with
  ``UPDATE_IN_DATABASE``; with ``LOG`` the change is only reported. Column order, the description and
  properties the crawler does not own are kept from the registered definition.

Fatal errors (the path is missing, the catalog is unreachable or refuses the database) raise
:class:`CrawlError`; anything wrong with one file or one table is reported in the :class:`CrawlReport`.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import io
import json
import logging
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

import httpx

from catalog import errors
from catalog.client import LakeClient
from catalog.datasets import HIVE_NULL_PARTITION, Dataset, DatasetColumn, DatasetDefinition, canonical_type
from catalog.objectstore import S3_SCHEMES, local_path

if TYPE_CHECKING:
    from rich.console import RenderableType

log = logging.getLogger(__name__)

UpdateBehavior = Literal["UPDATE_IN_DATABASE", "LOG"]
TableAction = Literal["created", "updated", "unchanged", "change-logged", "failed"]

DEFAULT_SAMPLE_BYTES = 2 * 1024 * 1024
#: Candidate CSV delimiters, in Glue's order (the tie-breaker when several fit equally well).
CSV_DELIMITERS = (",", "|", "\t", ";", "\x01")
#: Header cells must be shorter than this (Glue's built-in CSV classifier).
MAX_HEADER_CELL = 150
#: Two column sets are similar when this share of the smaller one is in the other; a folder level is one
#: table when more than this share of its folders are in the largest cluster of similar schemas.
SIMILARITY_THRESHOLD = 0.7
#: At most this many clusters of dissimilar schemas in one table (Glue's limit).
MAX_SCHEMA_CLUSTERS = 5
#: Deeper nested values are typed ``string`` (the catalog accepts at most 64 levels).
MAX_NESTING = 32
#: Share of unparseable JSON records tolerated in a file (logged) before it is skipped as corrupt.
MAX_BAD_JSON_SHARE = 0.1
#: Table properties the crawler owns; other properties of a registered dataset are kept.
CRAWLER_PROPERTIES = frozenset(
    {"classification", "compressionType", "typeOfData", "delimiter", "skip.header.line.count"}
)
#: Classifications in Glue's built-in order (ties between formats in one folder go to the earlier one).
CLASSIFIER_ORDER = ("avro", "orc", "parquet", "json", "csv")

_READ_CHUNK = 64 * 1024
_EXTENSIONS = {"gzip": ".gz", "bzip2": ".bz2"}
_MAX_AVRO_META = 64 * 1024 * 1024
_PLAIN_FIELD = re.compile(r"[A-Za-z0-9_]+")
_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_MAGIC_UNSUPPORTED = {
    b"PK\x03\x04": "zip archive (not supported)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed file (not supported)",
    b"\x04\x22\x4d\x18": "lz4-compressed file (not supported)",
    b"\xff\x06\x00\x00sNaPpY": "snappy-framed file (not supported)",
}


class CrawlError(Exception):
    """A fatal crawl error: the path is missing, or the catalog is unreachable or refuses the database."""


class UnreadableFileError(Exception):
    """A file the crawler cannot classify or read; the message is the reason reported."""


# -- Hive types ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayType:
    element: HiveType


@dataclass(frozen=True)
class MapType:
    key: HiveType
    value: HiveType


@dataclass(frozen=True)
class StructType:
    fields: tuple[tuple[str, HiveType], ...]


#: A primitive type string (``"int"``, ``"decimal(10,2)"``, ``"null"`` for "no value seen") or a nested type.
HiveType = str | ArrayType | MapType | StructType
NULL = "null"
_INTEGRAL = ("tinyint", "smallint", "int", "bigint")
_NUMERIC_RANK = {name: i for i, name in enumerate((*_INTEGRAL, "float", "double"))}


def _merge_fields(
    left: Sequence[tuple[str, HiveType]], right: Sequence[tuple[str, HiveType]]
) -> tuple[tuple[str, HiveType], ...]:
    """Union of two field lists by case-insensitive name, in first-seen order, types merged."""
    merged: dict[str, tuple[str, HiveType]] = {}
    for name, kind in (*left, *right):
        folded = name.lower()
        if folded in merged:
            merged[folded] = (merged[folded][0], merge_types(merged[folded][1], kind))
        else:
            merged[folded] = (name, kind)
    return tuple(merged.values())


def merge_types(left: HiveType, right: HiveType) -> HiveType:
    """The type of a column holding values of both types (Glue's merge, with ``string`` for conflicts)."""
    if left == right:
        return left
    if left == NULL:
        return right
    if right == NULL:
        return left
    if isinstance(left, str) and isinstance(right, str):
        if left in _NUMERIC_RANK and right in _NUMERIC_RANK:
            if left in _INTEGRAL and right in _INTEGRAL:
                return max(left, right, key=_NUMERIC_RANK.__getitem__)
            return "double"
        return "string"
    if isinstance(left, StructType) and isinstance(right, StructType):
        return StructType(_merge_fields(left.fields, right.fields))
    if isinstance(left, ArrayType) and isinstance(right, ArrayType):
        return ArrayType(merge_types(left.element, right.element))
    if isinstance(left, MapType) and isinstance(right, MapType):
        return MapType(merge_types(left.key, right.key), merge_types(left.value, right.value))
    return "string"


def render_type(kind: HiveType) -> str:
    """The Hive/Spark type string of a type (``null`` becomes ``string``)."""
    if isinstance(kind, str):
        return "string" if kind == NULL else kind
    if isinstance(kind, ArrayType):
        return f"array<{render_type(kind.element)}>"
    if isinstance(kind, MapType):
        return f"map<{render_type(kind.key)},{render_type(kind.value)}>"
    parts = []
    for name, child in kind.fields:
        shown = name if _PLAIN_FIELD.fullmatch(name) else "`" + name.replace("`", "``") + "`"
        parts.append(f"{shown}:{render_type(child)}")
    return f"struct<{','.join(parts)}>"


def _field_name(name: str) -> str:
    """A struct field name the catalog accepts (no control characters, not empty)."""
    cleaned = "".join("_" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in name)
    return cleaned or "_empty"


def json_type(value: Any, depth: int = 0) -> HiveType:
    """The Hive type of one decoded JSON value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if _INT32[0] <= value <= _INT32[1]:
            return "int"
        if _INT64[0] <= value <= _INT64[1]:
            return "bigint"
        return "decimal(38,0)" if len(str(abs(value))) <= 38 else "string"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if depth >= MAX_NESTING:
        return "string"
    if isinstance(value, list):
        element: HiveType = NULL
        for item in value:
            element = merge_types(element, json_type(item, depth + 1))
        return ArrayType(element)
    if isinstance(value, dict):
        fields: tuple[tuple[str, HiveType], ...] = ()
        return StructType(
            _merge_fields(fields, [(_field_name(str(k)), json_type(v, depth + 1)) for k, v in value.items()])
        )
    return "string"


def csv_value_type(text: str) -> HiveType:
    """The type of one CSV cell: ``bigint``, ``double``, ``boolean``, ``string``, or null when empty."""
    cell = text.strip()
    if not cell:
        return NULL
    if _INT_TEXT.fullmatch(cell):
        return "bigint" if _INT64[0] <= int(cell) <= _INT64[1] else "string"
    if _FLOAT_TEXT.fullmatch(cell):
        return "double"
    if cell.lower() in ("true", "false"):
        return "boolean"
    return "string"


def arrow_type(kind: Any, depth: int = 0) -> HiveType:
    """The Hive type of a pyarrow ``DataType`` (from a parquet or ORC schema)."""
    import pyarrow as pa

    t = pa.types
    if depth >= MAX_NESTING:
        return "string"
    if t.is_dictionary(kind):
        return arrow_type(kind.value_type, depth)
    if t.is_null(kind):
        return NULL
    if t.is_boolean(kind):
        return "boolean"
    simple = [
        (t.is_int8, "tinyint"),
        (t.is_int16, "smallint"),
        (t.is_uint8, "smallint"),
        (t.is_int32, "int"),
        (t.is_uint16, "int"),
        (t.is_int64, "bigint"),
        (t.is_uint32, "bigint"),
        (t.is_uint64, "decimal(20,0)"),
        (t.is_float16, "float"),
        (t.is_float32, "float"),
        (t.is_float64, "double"),
        (t.is_date, "date"),
        (t.is_timestamp, "timestamp"),
    ]
    for check, name in simple:
        if check(kind):
            return name
    if t.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})" if kind.precision <= 38 else "string"
    if t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        return "string"
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind) or t.is_binary_view(kind):
        return "binary"
    if t.is_map(kind):
        return MapType(arrow_type(kind.key_type, depth + 1), arrow_type(kind.item_type, depth + 1))
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind) or t.is_list_view(kind):
        return ArrayType(arrow_type(kind.value_type, depth + 1))
    if t.is_large_list_view(kind):
        return ArrayType(arrow_type(kind.value_type, depth + 1))
    if t.is_struct(kind):
        children = [
            (_field_name(kind.field(i).name), arrow_type(kind.field(i).type, depth + 1)) for i in range(kind.num_fields)
        ]
        return StructType(_merge_fields((), children))
    return "string"  # time, duration, interval, union: no Hive equivalent


_AVRO_PRIMITIVES = {
    "null": NULL,
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "string": "string",
}


def avro_type(schema: Any, named: dict[str, HiveType], depth: int = 0) -> HiveType:
    """The Hive type of an Avro schema (JSON form); ``named`` collects named types for references."""
    if depth >= MAX_NESTING:
        return "string"
    if isinstance(schema, str):
        return _AVRO_PRIMITIVES.get(schema) or named.get(schema) or named.get(schema.rsplit(".", 1)[-1], "string")
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1:
            return avro_type(branches[0], named, depth)
        return NULL if not branches else "string"  # Hive's uniontype is not supported by the catalog
    if not isinstance(schema, dict):
        return "string"
    kind = schema.get("type")
    logical = schema.get("logicalType")
    if logical == "date" and kind == "int":
        return "date"
    if logical in ("timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros"):
        return "timestamp"
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = int(schema.get("precision", 10)), int(schema.get("scale", 0))
        return f"decimal({precision},{scale})" if 1 <= precision <= 38 and 0 <= scale <= precision else "string"
    if kind == "record":
        name = str(schema.get("name", ""))
        named[name] = "string"  # a recursive reference to the record itself
        children = [
            (_field_name(str(f.get("name", ""))), avro_type(f.get("type"), named, depth + 1))
            for f in schema.get("fields", [])
            if isinstance(f, dict)
        ]
        result: HiveType = StructType(_merge_fields((), children))
        named[name] = named[name.rsplit(".", 1)[-1]] = result
        return result
    if kind == "enum":
        named[str(schema.get("name", ""))] = "string"
        return "string"
    if kind == "fixed":
        named[str(schema.get("name", ""))] = "binary"
        return "binary"
    if kind == "array":
        return ArrayType(avro_type(schema.get("items"), named, depth + 1))
    if kind == "map":
        return MapType("string", avro_type(schema.get("values"), named, depth + 1))
    return avro_type(kind, named, depth) if kind is not None else "string"


# -- classification and schema inference ----------------------------------------------------------------
Columns = tuple[tuple[str, HiveType], ...]
#: Format, CSV delimiter, CSV header.
Layout = tuple[str, str, bool]


@dataclass(frozen=True)
class FileSchema:
    """What the classifiers found in one file."""

    classification: str
    compression: str
    columns: Columns
    #: CSV only: the delimiter and whether the first row is a header.
    delimiter: str | None = None
    header: bool = False
    #: JSON only: records of the sample that did not parse (inferred from the others), and the first error.
    bad_records: int = 0
    first_error: str | None = None

    @property
    def layout(self) -> Layout:
        """What files of one table must share: the format and, for CSV, delimiter and header."""
        return (self.classification, self.delimiter or "", self.header)


def _top_level(columns: Iterable[tuple[str, HiveType]]) -> Columns:
    """Top-level columns with names the catalog takes: lower-cased, cleaned, duplicates merged."""
    named = []
    for i, (name, kind) in enumerate(columns):
        cleaned = "".join("_" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in name).strip().lower()
        named.append((cleaned or f"_col{i}", kind))
    return _merge_fields((), named)


def _detect_compression(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    return "none"


def _open(path: Path, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "bzip2":
        return bz2.open(path, "rb")
    return path.open("rb")


def _read_sample(path: Path, compression: str, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` (decompressed) bytes of the file, and whether that is less than the whole file."""
    chunks: list[bytes] = []
    total = 0
    with _open(path, compression) as fh:
        try:
            while total < limit:
                chunk = fh.read(min(_READ_CHUNK, limit - total))
                if not chunk:
                    return b"".join(chunks), False
                chunks.append(chunk)
                total += len(chunk)
            more = fh.read(1)
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            if not chunks:
                what = f"corrupt {compression} stream" if compression != "none" else "cannot read"
                raise UnreadableFileError(f"{what}: {exc}") from exc
            log.warning(
                "%s: %s stream is damaged after %d bytes (%s); using what was read", path, compression, total, exc
            )
            return b"".join(chunks), True
    return b"".join(chunks), bool(more)


def _decode(sample: bytes, truncated: bool) -> str:
    if b"\x00" in sample:
        raise UnreadableFileError("unrecognised format: binary data")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(sample, final=not truncated)
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"unrecognised format: not UTF-8 text (byte {exc.start})") from exc
    return text.removeprefix("\ufeff")


def _complete_lines(text: str, truncated: bool) -> str:
    """The sample without its last, possibly cut, line."""
    if not truncated:
        return text
    end = text.rfind("\n")
    return text[: end + 1] if end >= 0 else ""


def _json_records(text: str, truncated: bool) -> tuple[list[dict[str, Any]], int, str | None]:
    """Objects decoded from JSON lines, concatenated objects or a top-level array: (records, bad, first error)."""
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    bad = 0
    trailing_bad = 0
    first_error: str | None = None
    pos, end = 0, len(text)

    def skip_space(p: int) -> int:
        while p < end and text[p] in " \t\r\n":
            p += 1
        return p

    def note(message: str, at: int) -> None:
        nonlocal bad, trailing_bad, first_error
        bad += 1
        trailing_bad += 1
        if first_error is None:
            first_error = f"line {text.count(chr(10), 0, at) + 1}: {message}"

    pos = skip_space(pos)
    in_array = pos < end and text[pos] == "["
    if in_array:
        pos += 1
    while True:
        pos = skip_space(pos)
        if in_array:
            while pos < end and text[pos] in ",":
                pos = skip_space(pos + 1)
            if pos < end and text[pos] == "]":
                break
        if pos >= end:
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            note(exc.msg, pos)
            if in_array:
                break  # the rest of an array cannot be resynchronised
            nl = text.find("\n", pos)
            pos = end if nl < 0 else nl + 1
            continue
        if isinstance(value, dict):
            records.append(value)
            trailing_bad = 0
        else:
            note(f"a JSON {type(value).__name__} where an object was expected", pos)
    if truncated:
        bad -= trailing_bad  # the sample may cut the last record
    return records, bad, first_error


def _infer_json(text: str, truncated: bool) -> tuple[Columns, int, str | None]:
    """The columns of a JSON sample, the records that did not parse and the first parse error."""
    records, bad, first_error = _json_records(text, truncated)
    if not records:
        raise UnreadableFileError(f"invalid JSON: {first_error or 'no object found'}")
    share = bad / (bad + len(records))
    if share > MAX_BAD_JSON_SHARE:
        raise UnreadableFileError(f"invalid JSON: {bad} of {bad + len(records)} records unparseable ({first_error})")
    merged: HiveType = StructType(())
    for record in records:
        merged = merge_types(merged, json_type(record))
    assert isinstance(merged, StructType)
    return _top_level(merged.fields), bad, first_error


@dataclass(frozen=True)
class _CsvLayout:
    delimiter: str
    rows: list[list[str]]


def _csv_rows(text: str, delimiter: str) -> list[list[str]] | None:
    """The rows of the sample split by ``delimiter`` if they form a table (>= 2 rows, >= 2 same-width columns)."""
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', strict=True) if r]
    except csv.Error:
        return None
    if len(rows) < 2:
        return None
    width = len(rows[0])
    if width < 2 or any(len(r) != width for r in rows):
        return None
    return rows


def _csv_layout(text: str) -> _CsvLayout | None:
    best: _CsvLayout | None = None
    for delimiter in CSV_DELIMITERS:
        if delimiter not in text:
            continue
        rows = _csv_rows(text, delimiter)
        if rows is not None and (best is None or len(rows[0]) > len(best.rows[0])):
            best = _CsvLayout(delimiter, rows)
    return best


def _has_header(rows: list[list[str]]) -> bool:
    first, data = rows[0], rows[1:]
    last = len(first) - 1
    for i, cell in enumerate(first):
        if not cell.strip():
            if i != last:
                return False
            continue
        if csv_value_type(cell) != "string" or (i != last and len(cell) >= MAX_HEADER_CELL):
            return False
        if any(ord(c) < 0x20 for c in cell):
            return False
    # "Sufficiently different": some data value must parse as something other than a string.
    return any(csv_value_type(cell) not in ("string", NULL) for row in data for cell in row)


def _infer_csv(text: str) -> tuple[Columns, str, bool]:
    layout = _csv_layout(text)
    if layout is None:
        raise UnreadableFileError(
            "unrecognised format: not JSON, and not CSV (needs 2 or more rows of 2 or more columns, "
            "split alike by one of , | tab ; Ctrl-A)"
        )
    rows = layout.rows
    header = _has_header(rows)
    data = rows[1:] if header else rows
    width = len(rows[0])
    kinds: list[HiveType] = [NULL] * width
    for row in data:
        for i, cell in enumerate(row):
            kinds[i] = merge_types(kinds[i], csv_value_type(cell))
    if header:
        names = [cell.strip() for cell in rows[0]]
        if not names[-1] and kinds[-1] == NULL:  # a trailing delimiter: no last column
            names, kinds = names[:-1], kinds[:-1]
        names = [n or f"col{i + 1}" for i, n in enumerate(names)]
    else:
        names = [f"col{i + 1}" for i in range(width)]
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        folded = name.lower()
        seen[folded] += 1
        unique.append(name if seen[folded] == 1 else f"{name}_{seen[folded]}")
    return _top_level(zip(unique, kinds, strict=True)), layout.delimiter, header


def _read_varint(fh: IO[bytes]) -> int:
    shift, result = 0, 0
    while True:
        byte = fh.read(1)
        if not byte:
            raise UnreadableFileError("corrupt avro: truncated header")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7
        if shift > 63:
            raise UnreadableFileError("corrupt avro: bad varint in header")


def _avro_schema(path: Path) -> Any:
    """The writer schema in an Avro object container file's header (the ``avro.schema`` metadata)."""
    with path.open("rb") as fh:
        fh.read(4)
        meta: dict[str, bytes] = {}
        while True:
            count = _read_varint(fh)
            if count == 0:
                break
            if count < 0:
                count = -count
                _read_varint(fh)  # block size in bytes
            for _ in range(count):
                key_len = _read_varint(fh)
                if not 0 <= key_len <= _MAX_AVRO_META:
                    raise UnreadableFileError("corrupt avro: bad header")
                key = fh.read(key_len).decode("utf-8", "replace")
                value_len = _read_varint(fh)
                if not 0 <= value_len <= _MAX_AVRO_META:
                    raise UnreadableFileError("corrupt avro: bad header")
                meta[key] = fh.read(value_len)
    if "avro.schema" not in meta:
        raise UnreadableFileError("corrupt avro: no schema in the header")
    try:
        return json.loads(meta["avro.schema"])
    except ValueError as exc:
        raise UnreadableFileError(f"corrupt avro: schema is not JSON ({exc})") from exc


def _arrow_columns(schema: Any) -> Columns:
    return _top_level((f.name, arrow_type(f.type)) for f in schema)


def infer_file_schema(path: Path, sample_bytes: int = DEFAULT_SAMPLE_BYTES) -> FileSchema:
    """Classify one file and infer its schema; :class:`UnreadableFileError` says why when it cannot."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise UnreadableFileError("empty file")
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise UnreadableFileError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        if head.startswith(b"Obj\x01"):
            schema = _avro_schema(path)
            kind = avro_type(schema, {})
            if not isinstance(kind, StructType):
                raise UnreadableFileError("avro file whose schema is not a record")
            return FileSchema("avro", "none", _top_level(kind.fields))
        if head.startswith(b"ORC"):
            import pyarrow.orc as orc

            return FileSchema("orc", "none", _arrow_columns(orc.ORCFile(str(path)).schema))
        if head.startswith(b"PAR1"):
            import pyarrow.parquet as pq

            return FileSchema("parquet", "none", _arrow_columns(pq.read_schema(path)))
    except UnreadableFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for corrupt files
        fmt = "avro" if head.startswith(b"Obj") else "orc" if head.startswith(b"ORC") else "parquet"
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UnreadableFileError(f"corrupt {fmt} file: {first_line[:300]}") from exc
    for magic, reason in _MAGIC_UNSUPPORTED.items():
        if head.startswith(magic):
            raise UnreadableFileError(reason)
    compression = _detect_compression(head)
    sample, truncated = _read_sample(path, compression, sample_bytes)
    if compression != "none" and (sample[:4] in (b"PAR1", b"Obj\x01") or sample[:3] == b"ORC"):
        raise UnreadableFileError(f"{compression}-compressed parquet, orc or avro file (not readable by Spark)")
    text = _complete_lines(_decode(sample, truncated), truncated)
    stripped = text.lstrip()
    if not stripped:
        raise UnreadableFileError(
            "empty file" if not truncated else f"no complete line in the first {len(sample)} bytes"
        )
    if stripped[0] in "{[":
        columns, bad, first_error = _infer_json(text, truncated)
        return FileSchema("json", compression, columns, bad_records=bad, first_error=first_error)
    columns, delimiter, header = _infer_csv(text)
    return FileSchema("csv", compression, columns, delimiter, header)


# -- report --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkippedFile:
    file: str
    reason: str


@dataclass
class TableReport:
    """What the crawl did to one table."""

    name: str
    location: str
    format: str
    action: TableAction = "unchanged"
    version: int | None = None
    columns: list[DatasetColumn] = field(default_factory=list)
    partition_keys: list[DatasetColumn] = field(default_factory=list)
    files: int = 0
    partitions_added: int = 0
    partitions_existing: int = 0
    #: Schema differences against the registered definition (applied, or only logged with ``LOG``).
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class CrawlReport:
    path: str
    database: str
    update_behavior: UpdateBehavior
    tables: list[TableReport] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    #: JSON files read despite some unparseable records in their sample (inferred from the others).
    partly_unparseable: list[SkippedFile] = field(default_factory=list)
    #: Files whose schema went into a table.
    files_read: int = 0
    #: Files left out by the exclusion patterns.
    files_excluded: int = 0
    #: Hidden and marker files (``_SUCCESS``, ``.crc``, ``*_$folder$``).
    files_ignored: int = 0
    started_at: float = 0.0
    scan_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    def _named(self, action: TableAction) -> list[str]:
        return [t.name for t in self.tables if t.action == action]

    @property
    def tables_created(self) -> list[str]:
        return self._named("created")

    @property
    def tables_updated(self) -> list[str]:
        return self._named("updated")

    @property
    def tables_unchanged(self) -> list[str]:
        return self._named("unchanged")

    @property
    def tables_change_logged(self) -> list[str]:
        return self._named("change-logged")

    @property
    def tables_failed(self) -> list[str]:
        return self._named("failed")

    @property
    def partitions_added(self) -> int:
        return sum(t.partitions_added for t in self.tables)

    @property
    def partitions_existing(self) -> int:
        return sum(t.partitions_existing for t in self.tables)

    def table(self, name: str) -> TableReport:
        """The report of the table named ``name``; KeyError if the crawl found none."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def summary(self) -> str:
        return (
            f"{len(self.tables_created)} created, {len(self.tables_updated)} updated, "
            f"{len(self.tables_unchanged)} unchanged, {len(self.tables_change_logged)} with logged changes, "
            f"{len(self.tables_failed)} failed; {self.partitions_added} partitions added, "
            f"{self.partitions_existing} existing; {self.files_read} files read, {len(self.skipped)} skipped, "
            f"{self.files_excluded} excluded in {self.elapsed_seconds:.2f}s"
        )


# -- walking -------------------------------------------------------------------------------------------
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A Glue exclude pattern as a regex over '/'-separated relative paths."""
    out: list[str] = []
    i, n = 0, len(pattern)
    depth = 0
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                if i < n and pattern[i] == "/":  # '**/' also matches no folder at all
                    out[-1] = "(?:.*/)?"
                    i += 1
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":  # a ']' first in the class is a member
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : close].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                elif body.startswith("^"):
                    body = "\\" + body
                out.append("[" + body + "]")
                i = close
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out))


def _hidden(name: str) -> bool:
    return name.startswith(("_", ".")) or name.endswith("_$folder$")


@dataclass(frozen=True)
class _Entry:
    parts: tuple[str, ...]
    path: Path


def _walk(root: Path, exclusions: Sequence[re.Pattern[str]], report: CrawlReport) -> Iterator[_Entry]:
    def excluded(rel: str) -> bool:
        return any(p.fullmatch(rel) for p in exclusions)

    for current, dirs, files in os.walk(root):
        here = Path(current)
        prefix = here.relative_to(root).parts
        kept = []
        for d in sorted(dirs):
            if _hidden(d):
                report.files_ignored += sum(len(f) for _, _, f in os.walk(here / d))
            elif excluded("/".join((*prefix, d))):
                report.files_excluded += sum(len(f) for _, _, f in os.walk(here / d))
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            rel = (*prefix, name)
            if _hidden(name):
                report.files_ignored += 1
            elif excluded("/".join(rel)):
                report.files_excluded += 1
            elif (here / name).is_file():
                yield _Entry(rel, here / name)


# -- grouping ------------------------------------------------------------------------------------------
@dataclass
class _Folder:
    """The files of one folder that share its majority layout, with their merged columns."""

    parts: tuple[str, ...]
    layout: Layout
    files: list[_Entry]
    columns: Columns
    compressions: Counter[str]
    #: Compressed files without the extension (.gz, .bz2) Hadoop needs to pick the codec.
    misnamed: int = 0


@dataclass
class _TablePlan:
    node: tuple[str, ...]
    folders: list[_Folder]
    dissimilar: int = 0


def _merge_columns(schemas: Iterable[Columns]) -> Columns:
    merged: Columns = ()
    for columns in schemas:
        merged = _merge_fields(merged, columns)
    return merged


def _layout_rank(layout: Layout) -> tuple[int, int, bool]:
    fmt, delimiter, header = layout
    order = CLASSIFIER_ORDER.index(fmt) if fmt in CLASSIFIER_ORDER else len(CLASSIFIER_ORDER)
    delim = CSV_DELIMITERS.index(delimiter) if delimiter in CSV_DELIMITERS else -1
    return (order, delim, not header)


def _describe(layout: Layout) -> str:
    fmt, delimiter, header = layout
    text = fmt
    if fmt == "csv":
        text += f" ({'header' if header else 'no header'}, delimiter {delimiter!r})"
    return text


def _overlap(left: frozenset[str], right: frozenset[str]) -> float:
    if not left or not right:
        return 1.0 if left == right else 0.0
    return len(left & right) / min(len(left), len(right))


def _clusters(folders: Sequence[_Folder]) -> list[list[_Folder]]:
    """Folders grouped greedily by similar column sets, largest group first."""
    by_set: dict[frozenset[str], list[_Folder]] = {}
    for f in folders:
        by_set.setdefault(frozenset(name for name, _ in f.columns), []).append(f)
    clusters: list[tuple[frozenset[str], list[_Folder]]] = []
    for names, members in sorted(by_set.items(), key=lambda item: (-len(item[1]), -len(item[0]))):
        for representative, cluster in clusters:
            if _overlap(names, representative) >= SIMILARITY_THRESHOLD:
                cluster.extend(members)
                break
        else:
            clusters.append((names, list(members)))
    return sorted((c for _, c in clusters), key=len, reverse=True)


_Uri = Callable[[Sequence[str]], str]


class _Planner:
    def __init__(
        self, folders: dict[tuple[str, ...], _Folder], skip: list[SkippedFile], uri: _Uri, registered: set[str]
    ) -> None:
        self.folders = folders
        self.skip = skip
        self.uri = uri
        #: Locations of the database's datasets: table roots that dissimilar schemas do not split.
        self.registered = registered

    def _skip_folders(self, folders: Iterable[_Folder], reason: str) -> None:
        for f in folders:
            self.skip.extend(SkippedFile(self.uri(e.parts), reason) for e in f.files)

    def _one_table(self, node: tuple[str, ...], folders: list[_Folder]) -> _TablePlan | None:
        """The folders as one table rooted at ``node``, if they are at one depth and similar enough."""
        if len({len(f.parts) for f in folders}) != 1:
            return None
        if len(folders) == 1:
            return _TablePlan(node, folders)
        layouts = {f.layout for f in folders}
        clusters = _clusters(folders)
        largest = len(clusters[0]) / len(folders)
        similar = len(clusters) <= MAX_SCHEMA_CLUSTERS and largest > SIMILARITY_THRESHOLD
        if len(layouts) == 1 and (similar or self.uri(node) in self.registered):
            if not similar:
                log.info(
                    "%s: dissimilar schemas, kept as one table: it is a registered dataset's location", self.uri(node)
                )
            return _TablePlan(node, sorted(folders, key=lambda f: f.parts), len(folders) - len(clusters[0]))
        log.info(
            "%s: %d folders, %d formats, %d schema clusters (largest %.0f%%): not one table",
            self.uri(node),
            len(folders),
            len(layouts),
            len(clusters),
            100 * largest,
        )
        return None

    def plan(self, node: tuple[str, ...]) -> list[_TablePlan]:
        """The tables below ``node``: one rooted there, or those of its sub-folders."""
        below = [f for parts, f in self.folders.items() if parts[: len(node)] == node]
        if not below:
            return []
        here = self.folders.get(node)
        deeper = [f for f in below if f is not here]
        whole = self._one_table(node, below)
        if whole is not None:
            return [whole]
        if here is not None and deeper:
            # Files beside partition folders (a stray sample, an empty marker): the folders are the table.
            table = self._one_table(node, deeper)
            if table is not None:
                reason = f"file beside the partition folders of the table at {self.uri(node)}"
                self._skip_folders([here], reason)
                return [table]
        plans: list[_TablePlan] = []
        for child in sorted({f.parts[len(node)] for f in deeper}):
            plans.extend(self.plan((*node, child)))
        if here is not None:
            self._skip_folders([here], f"file beside sub-folders holding separate tables under {self.uri(node)}")
        return plans


def _majority(entries: list[tuple[_Entry, FileSchema]], uri: _Uri, skip: list[SkippedFile]) -> _Folder:
    """The folder's files of the layout most of them share (ties: Glue's classifier order); others are skipped."""
    counts = Counter(schema.layout for _, schema in entries)
    best = min(counts, key=lambda layout: (-counts[layout], _layout_rank(layout)))
    kept = []
    for entry, schema in entries:
        if schema.layout == best:
            kept.append((entry, schema))
        else:
            reason = f"mixed formats in one folder: {_describe(schema.layout)} among {_describe(best)} files"
            skip.append(SkippedFile(uri(entry.parts), reason))
    parts = kept[0][0].parts[:-1]
    compressions = Counter(s.compression for _, s in kept)
    misnamed = sum(
        1
        for e, s in kept
        if s.compression in _EXTENSIONS and not e.parts[-1].lower().endswith(_EXTENSIONS[s.compression])
    )
    columns = _merge_columns(s.columns for _, s in kept)
    return _Folder(parts, best, [e for e, _ in kept], columns, compressions, misnamed)


# -- names, locations, partitions ----------------------------------------------------------------------
def sanitize_name(name: str) -> str:
    """A legal catalog table name after Glue's rules: lower case, ``[a-z0-9_]`` only."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", name.lower())[:255]
    return cleaned or "table"


def _hash_suffix(name: str, location: str) -> str:
    digest = hashlib.sha1(location.encode()).hexdigest()[:8]
    return f"{name[:246]}_{digest}"


def _split_key(folder: str) -> tuple[str, str] | None:
    key, sep, value = folder.partition("=")
    if not sep or not key.strip():
        return None
    return key.strip().lower(), value


def _partition_keys(folders: Sequence[_Folder], node: tuple[str, ...]) -> list[tuple[str, bool]]:
    """The partition keys of the folder levels below ``node``: (name, whether the level is ``key=value``)."""
    depth = len(folders[0].parts) - len(node)
    keys: list[tuple[str, bool]] = []
    for level in range(depth):
        names = {_split_key(f.parts[len(node) + level]) for f in folders}
        found = {k[0] for k in names if k is not None}
        keys.append((found.pop(), True) if None not in names and len(found) == 1 else (f"partition_{level}", False))
    seen: Counter[str] = Counter()
    unique = []
    for key, hive in keys:
        seen[key] += 1
        unique.append((key if seen[key] == 1 else f"{key}_{seen[key]}", hive))
    return unique


def _partition_value(folder: str, hive: bool) -> str | None:
    split = _split_key(folder)
    value = unquote(split[1]) if hive and split is not None else folder
    return None if value == HIVE_NULL_PARTITION else value


def _definition_json(definition: DatasetDefinition) -> dict[str, Any]:
    data = definition.to_json()
    data["columns"] = [{**c, "type": canonical_type(c["type"])} for c in data.get("columns", [])]
    data["partition-keys"] = [{**c, "type": canonical_type(c["type"])} for c in data.get("partition-keys", [])]
    return data


def _column_changes(old: Sequence[DatasetColumn], new: Sequence[DatasetColumn]) -> list[str]:
    before = {c.name.lower(): canonical_type(c.type) for c in old}
    after = {c.name.lower(): canonical_type(c.type) for c in new}
    changes = [f"added column {c.name} {c.type}" for c in new if c.name.lower() not in before]
    changes += [f"removed column {c.name} {c.type}" for c in old if c.name.lower() not in after]
    changes += [
        f"changed column {c.name} {before[c.name.lower()]} -> {after[c.name.lower()]}"
        for c in new
        if c.name.lower() in before and before[c.name.lower()] != after[c.name.lower()]
    ]
    return changes


def _changes(old: DatasetDefinition, new: DatasetDefinition) -> list[str]:
    changes = _column_changes(old.columns, new.columns)
    if changes == [] and [c.name.lower() for c in old.columns] != [c.name.lower() for c in new.columns]:
        changes.append("reordered columns")
    old_keys = [(k.name.lower(), canonical_type(k.type)) for k in old.partition_keys]
    new_keys = [(k.name.lower(), canonical_type(k.type)) for k in new.partition_keys]
    if old_keys != new_keys:
        shown = ", ".join(f"{n} {t}" for n, t in new_keys) or "none"
        changes.append(f"partition keys {', '.join(f'{n} {t}' for n, t in old_keys) or 'none'} -> {shown}")
    if old.format.lower() != new.format.lower():
        changes.append(f"format {old.format} -> {new.format}")
    if old.location != new.location:
        changes.append(f"location {old.location} -> {new.location}")
    for key in sorted(set(old.properties) | set(new.properties)):
        if old.properties.get(key) != new.properties.get(key):
            changes.append(f"property {key}: {old.properties.get(key)!r} -> {new.properties.get(key)!r}")
    return changes


# -- the crawl -----------------------------------------------------------------------------------------
class _Crawl:
    def __init__(
        self,
        path: str,
        database: str,
        table: str | None,
        client: LakeClient,
        object_store_root: Path,
        update_behavior: UpdateBehavior,
        sample_bytes: int,
        exclusions: Sequence[str],
    ) -> None:
        self.database = database
        self.table = table
        self.client = client
        self.behavior = update_behavior
        self.sample_bytes = sample_bytes
        self.exclusions = [glob_regex(p.strip("/")) for p in exclusions if p.strip("/")]
        self.report = CrawlReport(path=path, database=database, update_behavior=update_behavior)
        parsed = urlparse(path)
        if parsed.scheme in S3_SCHEMES:
            self.scheme = "s3"
            self.root_uri = path.rstrip("/") if parsed.path.strip("/") else f"{parsed.scheme}://{parsed.netloc}"
            try:
                self.root = local_path(self.root_uri, object_store_root)
            except errors.CatalogError as exc:
                raise CrawlError(f"Invalid path {path!r}: {exc.message}") from exc
            self.root_name = unquote(parsed.path).strip("/").rsplit("/", 1)[-1] or parsed.netloc
        elif parsed.scheme in ("", "file"):
            self.scheme = "file"
            self.root = local_path(path, object_store_root).resolve()
            self.root_uri = self.root.as_uri()
            self.root_name = self.root.name or "root"
        else:
            raise CrawlError(f"Unsupported path {path!r}: use s3://bucket/prefix, a file: URI or a local folder")
        self.only: str | None = None
        if self.root.is_file():
            self.only = self.root.name
            self.root = self.root.parent
            self.root_uri = self.root_uri.rsplit("/", 1)[0]
            self.root_name = self.root.name or self.root_name
        elif not self.root.is_dir():
            raise CrawlError(f"Path {path} does not exist (looked in {self.root})")

    def uri(self, parts: Sequence[str]) -> str:
        if not parts:
            return self.root_uri
        if self.scheme == "file":
            return self.root.joinpath(*parts).as_uri()
        return self.root_uri + "/" + "/".join(p.replace("%", "%25") for p in parts)

    # -- scanning --------------------------------------------------------------------------------------
    def scan(self) -> dict[tuple[str, ...], _Folder]:
        by_folder: dict[tuple[str, ...], list[tuple[_Entry, FileSchema]]] = {}
        count = 0
        if self.only is not None:  # the path names one file
            entries: Iterable[_Entry] = [_Entry((self.only,), self.root / self.only)]
        else:
            entries = _walk(self.root, self.exclusions, self.report)
        for entry in entries:
            count += 1
            try:
                schema = infer_file_schema(entry.path, self.sample_bytes)
            except UnreadableFileError as exc:
                log.warning("skipping %s: %s", self.uri(entry.parts), exc)
                self.report.skipped.append(SkippedFile(self.uri(entry.parts), str(exc)))
                continue
            log.debug("%s: %s, %d columns", self.uri(entry.parts), _describe(schema.layout), len(schema.columns))
            if schema.bad_records:
                reason = f"{schema.bad_records} unparseable records in the sample ({schema.first_error})"
                log.info("%s: %s; inferring from the others", self.uri(entry.parts), reason)
                self.report.partly_unparseable.append(SkippedFile(self.uri(entry.parts), reason))
            by_folder.setdefault(entry.parts[:-1], []).append((entry, schema))
            if count % 1000 == 0:
                log.info("classified %d files", count)
        folders = {parts: _majority(entries, self.uri, self.report.skipped) for parts, entries in by_folder.items()}
        if self.report.partly_unparseable:
            first = self.report.partly_unparseable[0]
            log.warning(
                "%d file(s) hold unparseable JSON records (schemas inferred from the others), first %s: %s",
                len(self.report.partly_unparseable), first.file, first.reason,
            )  # fmt: skip
        log.info("classified %d files in %d folders (%d skipped)", count, len(folders), len(self.report.skipped))
        return folders

    # -- naming ----------------------------------------------------------------------------------------
    def _names(self, plans: list[_TablePlan]) -> list[str]:
        names = []
        for plan in plans:
            folder = plan.node[-1] if plan.node else self.root_name
            if self.table is not None:
                names.append(self.table if len(plans) == 1 else f"{self.table}_{sanitize_name(folder)}")
            else:
                names.append(sanitize_name(folder))
        taken: set[str] = set()
        unique = []
        for name, plan in zip(names, plans, strict=True):
            if name in taken:
                name = _hash_suffix(name, self.uri(plan.node))
            taken.add(name)
            unique.append(name)
        return unique

    # -- registering -----------------------------------------------------------------------------------
    def _existing(self, name: str) -> Dataset | None:
        try:
            return self.client.get_dataset(self.database, name)
        except errors.NoSuchDatasetError:
            return None

    def _definition(
        self, plan: _TablePlan, key_names: list[str], columns: Columns, existing: DatasetDefinition | None
    ) -> DatasetDefinition:
        """The crawled definition; against a registered one, its column order, comments, description,
        partition-key types (when the names match) and properties the crawler does not own are kept."""
        fmt, delimiter, header = plan.folders[0].layout
        compression = sum((f.compressions for f in plan.folders), Counter[str]()).most_common(1)[0][0]
        properties = {"classification": fmt, "compressionType": compression, "typeOfData": "file"}
        if fmt == "csv":
            properties["delimiter"] = delimiter
            if header:
                properties["skip.header.line.count"] = "1"
        keys = [DatasetColumn(name=k, type="string") for k in key_names]
        crawled = [DatasetColumn(name=c, type=render_type(t)) for c, t in columns]
        description = None
        if existing is not None:
            comments = {c.name.lower(): c.comment for c in (*existing.columns, *existing.partition_keys)}
            if [k.name.lower() for k in existing.partition_keys] == key_names:
                keys = [k.model_copy() for k in existing.partition_keys]
            position = {c.name.lower(): i for i, c in enumerate(existing.columns)}
            crawled.sort(key=lambda c: position.get(c.name.lower(), len(position)))
            crawled = [c.model_copy(update={"comment": comments.get(c.name.lower())}) for c in crawled]
            kept = {k: v for k, v in existing.properties.items() if k not in CRAWLER_PROPERTIES}
            properties = {**kept, **properties}
            description = existing.description
        return DatasetDefinition.model_validate(
            {
                "format": fmt,
                "location": self.uri(plan.node),
                "columns": crawled,
                "partition-keys": keys,
                "properties": properties,
                "description": description,
            }
        )

    def register(self, plan: _TablePlan, name: str) -> TableReport:
        location = self.uri(plan.node)
        out = TableReport(name=name, location=location, format=plan.folders[0].layout[0])
        out.files = sum(len(f.files) for f in plan.folders)
        if plan.dissimilar:
            out.notes.append(f"{plan.dissimilar} partition folder(s) with a dissimilar schema merged into the table")
        misnamed = sum(f.misnamed for f in plan.folders)
        if misnamed:
            out.notes.append(
                f"{misnamed} compressed file(s) without a .gz or .bz2 extension: Spark and Hive will not read them"
            )
        levels = _partition_keys(plan.folders, plan.node)
        key_names = [name for name, _ in levels]
        columns = _merge_columns(f.columns for f in plan.folders)
        clashing = [c for c, _ in columns if c in key_names]
        if clashing:
            out.notes.append(f"data column(s) {', '.join(clashing)} dropped: named like partition keys")
            columns = tuple((c, t) for c, t in columns if c not in key_names)
        try:
            current = self._existing(name)
            if current is not None and current.definition.location.rstrip("/") != location:
                if self.table is not None:
                    raise errors.AlreadyExistsError(
                        f"Dataset {self.database}.{name} exists with location {current.definition.location}, "
                        f"not {location}"
                    )
                log.info(
                    "%s.%s has another location: naming the table after a hash of %s", self.database, name, location
                )
                name = out.name = _hash_suffix(name, location)
                current = self._existing(name)
            existing = current.definition if current is not None else None
            definition = self._definition(plan, key_names, columns, existing)
            out.columns, out.partition_keys = definition.columns, definition.partition_keys
            add_partitions = bool(key_names)
            if current is None or existing is None:
                result = self.client.put_dataset(self.database, name, definition)
                out.action, out.version = "created", result.dataset.version
            elif _definition_json(existing) == _definition_json(definition):
                out.action, out.version = "unchanged", current.version
            elif self.behavior == "LOG":
                out.changes = _changes(existing, definition)
                out.action, out.version = "change-logged", current.version
                out.columns, out.partition_keys = existing.columns, existing.partition_keys
                log.warning("%s.%s: schema change logged, not applied: %s", self.database, name, "; ".join(out.changes))
                if add_partitions and [k.name.lower() for k in existing.partition_keys] != key_names:
                    add_partitions = False
                    out.notes.append("partitions not added: the registered partition keys differ")
            else:
                out.changes = _changes(existing, definition)
                result = self.client.put_dataset(self.database, name, definition)
                out.action, out.version = ("updated" if result.changed else "unchanged"), result.dataset.version
            if add_partitions:
                self._add_partitions(plan, name, [hive for _, hive in levels], out)
        except errors.CatalogError as exc:
            out.action, out.error = "failed", exc.message
            log.error("%s.%s: %s", self.database, name, exc.message)
        return out

    def _add_partitions(self, plan: _TablePlan, name: str, hive: list[bool], out: TableReport) -> None:
        partitions: list[tuple[list[Any], str]] = []
        for f in plan.folders:
            rel = f.parts[len(plan.node) :]
            values: list[Any] = [_partition_value(folder, kv) for folder, kv in zip(rel, hive, strict=True)]
            partitions.append((values, self.uri(f.parts)))
        result = self.client.add_partitions(self.database, name, partitions)
        out.partitions_added, out.partitions_existing = len(result.added), len(result.existing)

    def run(self) -> CrawlReport:
        report = self.report
        report.started_at = time.time()
        start = time.monotonic()
        log.info("crawling %s into database %s (%s)", report.path, self.database, self.behavior)
        try:
            self.client.create_namespace(self.database, exist_ok=True)
        except httpx.TransportError as exc:
            raise CrawlError(f"Catalog unreachable at {self.client.uri}: {exc}") from exc
        except errors.CatalogError as exc:
            raise CrawlError(f"Cannot create database {self.database!r}: {exc.message}") from exc
        folders = self.scan()
        report.scan_seconds = time.monotonic() - start
        try:
            registered = {d.definition.location.rstrip("/") for d in self.client.iter_datasets(self.database)}
        except httpx.TransportError as exc:
            raise CrawlError(f"Catalog unreachable at {self.client.uri}: {exc}") from exc
        except errors.CatalogError as exc:
            raise CrawlError(f"Cannot list the datasets of {self.database!r}: {exc.message}") from exc
        plans = _Planner(folders, report.skipped, self.uri, registered).plan(())
        try:
            for plan, name in zip(plans, self._names(plans), strict=True):
                table = self.register(plan, name)
                report.tables.append(table)
                if table.action != "failed":
                    report.files_read += table.files
                log.info(
                    "table %s.%s: %s (version %s), %d partitions added, %d existing",
                    self.database,
                    table.name,
                    table.action,
                    table.version,
                    table.partitions_added,
                    table.partitions_existing,
                )
        except httpx.TransportError as exc:
            raise CrawlError(f"Catalog unreachable at {self.client.uri}: {exc}") from exc
        report.elapsed_seconds = time.monotonic() - start
        log.info("crawl of %s done: %s", report.path, report.summary())
        return report


def crawl(
    path: str,
    database: str,
    *,
    table: str | None = None,
    client: LakeClient,
    object_store_root: Path,
    update_behavior: UpdateBehavior = "UPDATE_IN_DATABASE",
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    exclusions: Sequence[str] = (),
) -> CrawlReport:
    """Crawl ``path`` (``s3://bucket/prefix`` under ``object_store_root``, a ``file:`` URI or a local folder)
    and register the tables found in ``database`` (created if missing).

    :param table: the name of the table (each table's prefix when several are found), made a legal name
        like folder names are; default: the root folder's name.
    :param update_behavior: ``UPDATE_IN_DATABASE`` applies schema changes to registered tables (a new
        version); ``LOG`` only reports them. New tables and partitions are registered either way.
    :param sample_bytes: how much of each JSON or CSV file (decompressed) is read to infer its schema.
    :param exclusions: glob patterns, relative to ``path``, of files or folders to leave out.
    :raises CrawlError: the path is missing, or the catalog is unreachable or refuses the database.
    """
    if update_behavior not in ("UPDATE_IN_DATABASE", "LOG"):
        raise ValueError(f"update_behavior must be UPDATE_IN_DATABASE or LOG, not {update_behavior!r}")
    if sample_bytes <= 0:
        raise ValueError("sample_bytes must be positive")
    if table is not None:
        table = sanitize_name(table)
    return _Crawl(path, database, table, client, object_store_root, update_behavior, sample_bytes, exclusions).run()


def catalog_token(uri: str, client_id: str, client_secret: str, *, timeout: float = 30.0) -> str:
    """A bearer token from the catalog's OAuth2 client-credentials endpoint (when auth is on)."""
    try:
        response = httpx.post(
            f"{uri.rstrip('/')}/v1/oauth/tokens",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            timeout=timeout,
        )
    except httpx.TransportError as exc:
        raise CrawlError(f"Catalog unreachable at {uri}: {exc}") from exc
    if response.status_code != 200:
        raise CrawlError(f"Catalog at {uri} refused the client credentials: HTTP {response.status_code}")
    return str(response.json()["access_token"])


def report_renderables(report: CrawlReport) -> list[RenderableType]:
    """Rich tables showing a crawl report (the CLI prints them)."""
    from rich.table import Table

    tables = Table(title=f"Crawl of {report.path} into {report.database} ({report.update_behavior})")
    for column in (
        "table",
        "action",
        "version",
        "format",
        "columns",
        "partition keys",
        "partitions +new/existing",
        "files",
    ):
        tables.add_column(column)
    tables.add_column("changes / notes", overflow="fold")
    styles = {"created": "green", "updated": "cyan", "change-logged": "yellow", "failed": "red"}
    for t in report.tables:
        details = [*t.changes, *t.notes, *([t.error] if t.error else [])]
        tables.add_row(
            t.name,
            f"[{styles.get(t.action, 'default')}]{t.action}[/]",
            "" if t.version is None else str(t.version),
            t.format,
            str(len(t.columns)),
            ", ".join(f"{k.name} {k.type}" for k in t.partition_keys),
            f"+{t.partitions_added}/{t.partitions_existing}",
            str(t.files),
            "\n".join(details),
        )
    out: list[RenderableType] = [tables]
    for title, files in (
        ("Skipped files", report.skipped),
        ("Read despite unparseable records", report.partly_unparseable),
    ):
        if files:
            listing = Table(title=f"{title} ({len(files)})")
            listing.add_column("file", overflow="fold")
            listing.add_column("reason", overflow="fold")
            for s in files:
                listing.add_row(s.file, s.reason)
            out.append(listing)
    out.append(report.summary())
    return out
