"""Raw (non-Iceberg) datasets of the lake's data catalog: definitions, versions and partitions.

This is the Glue Data Catalog side of the catalog. A crawler registers what it found in the object
store (format, location, columns, partition keys, properties) and adds partitions; Glue-style jobs
list the partitions that match a ``push_down_predicate`` before they list any file.

Rules (after Glue's tables and partitions):

* A dataset shares its namespace's names with Iceberg tables and views: creating one over another
  object is a 409.
* Every change of the definition makes a new version (Glue's table versions, all kept, including the
  current one); storing an identical definition again makes none.
* Column and partition-key types are Spark/Hive type strings (``bigint``, ``decimal(10,2)``,
  ``struct<a:int>``), validated and kept in a canonical spelling (lower-case keywords, no spaces,
  ``long`` -> ``bigint``), so spelling differences are not definition changes.
* Partition values are kept as strings, like Glue's ``Values``, in partition-key order, after being
  checked against the key types and canonicalised (``"03"`` for an ``int`` key is ``"3"``; ``null`` and
  ``__HIVE_DEFAULT_PARTITION__`` are the null partition). Adding a partition that exists identically
  is reported as existing, not duplicated.
* Partition predicates use Iceberg's expression syntax (``dt >= '2024-01-02' and hour in (1, 2)``,
  ``or``, ``not``, ``between``, ``is null``, ``like 'x%'``), column names case-insensitive, bound to a
  schema built from the partition-key types: string keys compare as strings, numeric keys as numbers,
  ``date`` keys as dates.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field
from pyiceberg.expressions import And, BooleanExpression, Not, Or, Reference, UnboundPredicate
from pyiceberg.expressions.parser import parse as parse_expression
from pyiceberg.expressions.visitors import expression_evaluator
from pyiceberg.schema import Schema
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    PrimitiveType,
    StringType,
    TimestampType,
)
from pyparsing import ParseBaseException
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from catalog import db
from catalog.backend import Backend, LostRace, now_ms, retrying
from catalog.errors import (
    AlreadyExistsError,
    NoSuchDatasetError,
    NoSuchNamespaceError,
    NotFoundError,
    ValidationFailedError,
)
from catalog.identifiers import MAX_NAME_LENGTH, Namespace, dotted, namespace_to_db
from catalog.models import StrictWireModel
from catalog.namespaces import require_namespace
from catalog.objectstore import S3_SCHEMES, local_path
from catalog.tables import TableIdent

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Storage formats a raw dataset may have (Glue's ``classification``).
FORMATS = ("json", "csv", "parquet", "orc", "avro", "text")
#: The directory name Hive and Spark write for a null partition value.
HIVE_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
MAX_COLUMNS = 10_000
MAX_PROPERTY_KEY = 255
MAX_TYPE_LENGTH = 100_000
MAX_TYPE_DEPTH = 64
MAX_PARTITIONS_PER_REQUEST = 10_000
MAX_EXPRESSION_LENGTH = 10_000
#: Values of a partition as canonical JSON must fit the database key column.
MAX_VALUES_KEY_LENGTH = 2000
#: Partition rows read per round trip while a predicate is evaluated.
_SCAN_BATCH = 1000
#: How many partition value lists an audit record names (the counts are always complete).
_AUDITED_VALUES = 100
_CHUNK = 500
#: Stand-in object-store root: locations are only checked for syntax, never touched.
_NOWHERE = Path("/nonexistent-object-store-root")

PartitionValue = str | int | float | bool | None
DatasetIdent = TableIdent


# -- wire models ---------------------------------------------------------------------------------------
class DatasetColumn(StrictWireModel):
    """A column or partition key: a name, a Spark/Hive type string and an optional comment."""

    name: str
    type: str
    comment: str | None = None


class DatasetDefinition(StrictWireModel):
    """What a crawler registers for a raw dataset; every change of it is a new version."""

    format: str
    location: str
    columns: list[DatasetColumn] = Field(default_factory=list)
    partition_keys: list[DatasetColumn] = Field(default_factory=list, alias="partition-keys")
    properties: dict[str, str] = Field(default_factory=dict)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class CreateDatasetRequest(DatasetDefinition):
    """``POST /lakeforge/v1/namespaces/{namespace}/datasets``: a definition plus the dataset's name."""

    name: str


class PartitionInput(StrictWireModel):
    """A partition to add: its values in partition-key order, where its files are, optional parameters."""

    values: list[PartitionValue]
    location: str
    parameters: dict[str, str] = Field(default_factory=dict)


class AddPartitionsRequest(StrictWireModel):
    partitions: list[PartitionInput]
    #: Replace partitions that exist with another location or parameters (otherwise that is a 409).
    replace: bool = False


class DeletePartitionsRequest(StrictWireModel):
    values: list[list[PartitionValue]]


# -- results -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    namespace: Namespace
    name: str
    version: int
    created_ms: int
    updated_ms: int
    definition: DatasetDefinition

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": list(self.namespace),
            "name": self.name,
            "version": self.version,
            "created-ms": self.created_ms,
            "updated-ms": self.updated_ms,
            "definition": self.definition.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dataset:
        return cls(
            namespace=tuple(data["namespace"]),
            name=data["name"],
            version=data["version"],
            created_ms=data["created-ms"],
            updated_ms=data["updated-ms"],
            definition=DatasetDefinition.model_validate(data["definition"]),
        )


@dataclass(frozen=True)
class DatasetVersion:
    version: int
    ts_ms: int
    principal: str | None
    definition: DatasetDefinition

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ts-ms": self.ts_ms,
            "principal": self.principal,
            "definition": self.definition.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatasetVersion:
        return cls(
            version=data["version"],
            ts_ms=data["ts-ms"],
            principal=data.get("principal"),
            definition=DatasetDefinition.model_validate(data["definition"]),
        )


@dataclass(frozen=True)
class UpsertResult:
    dataset: Dataset
    #: The dataset did not exist before.
    created: bool
    #: A new version was made (always true when created).
    changed: bool

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset.to_json(), "created": self.created, "changed": self.changed}


@dataclass(frozen=True)
class Partition:
    #: Canonical values as strings (``None`` for the null partition), in partition-key order.
    values: list[str | None]
    location: str
    parameters: dict[str, str]
    created_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "location": self.location,
            "parameters": self.parameters,
            "created-ms": self.created_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Partition:
        return cls(
            values=list(data["values"]),
            location=data["location"],
            parameters=dict(data.get("parameters") or {}),
            created_ms=data["created-ms"],
        )


@dataclass(frozen=True)
class AddPartitionsResult:
    added: list[list[str | None]]
    #: Identical partitions that were already there (nothing changed).
    existing: list[list[str | None]]
    #: Partitions that existed with another location or parameters and were replaced (``replace=true``).
    replaced: list[list[str | None]]

    def to_json(self) -> dict[str, Any]:
        return {"added": self.added, "existing": self.existing, "replaced": self.replaced}


@dataclass(frozen=True)
class DeletePartitionsResult:
    deleted: list[list[str | None]]
    missing: list[list[str | None]]

    def to_json(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "missing": self.missing}


# -- Spark/Hive types ----------------------------------------------------------------------------------
_PRIMITIVES = {
    "tinyint": "tinyint",
    "byte": "tinyint",
    "smallint": "smallint",
    "short": "smallint",
    "int": "int",
    "integer": "int",
    "bigint": "bigint",
    "long": "bigint",
    "float": "float",
    "real": "float",
    "double": "double",
    "boolean": "boolean",
    "string": "string",
    "binary": "binary",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
    "timestamp_ltz": "timestamp",
    "void": "void",
}
_TOKEN = re.compile(r"\s*(?:(`(?:[^`]|``)*`)|([A-Za-z0-9_]+)|([<>(),:]))")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
_INT_RANGES = {
    "tinyint": (-(2**7), 2**7 - 1),
    "smallint": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")
_SIZED_STRING = re.compile(r"(?:var)?char\((\d+)\)")


class _TypeParser:
    """A recursive-descent parser of Spark/Hive type strings producing their canonical spelling."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if not match or match.end() == pos:
                raise self._error(f"unexpected character {stripped[pos:].lstrip()[:1]!r}")
            self.tokens.append(match.group(match.lastindex or 0))
            pos = match.end()
        self.pos = 0

    def _error(self, reason: str) -> ValueError:
        return ValueError(reason)

    def _next(self) -> str:
        if self.pos >= len(self.tokens):
            raise self._error("unexpected end of type")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _peek(self, token: str) -> bool:
        if self.pos < len(self.tokens) and self.tokens[self.pos] == token:
            self.pos += 1
            return True
        return False

    def _expect(self, token: str) -> None:
        got = self._next()
        if got != token:
            raise self._error(f"expected {token!r} but found {got!r}")

    def _int(self) -> int:
        token = self._next()
        if not token.isdigit():
            raise self._error(f"expected a number but found {token!r}")
        return int(token)

    def parse(self) -> str:
        result = self._type(0)
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.pos]!r} after the type")
        return result

    def _field_name(self) -> str:
        token = self._next()
        if token.startswith("`"):
            name = token[1:-1].replace("``", "`")
        elif _PLAIN_NAME.fullmatch(token):
            name = token
        else:
            raise self._error(f"expected a field name but found {token!r}")
        if not name:
            raise self._error("empty struct field name")
        return name

    def _type(self, depth: int) -> str:
        if depth > MAX_TYPE_DEPTH:
            raise self._error(f"nested deeper than {MAX_TYPE_DEPTH} levels")
        word = self._next().lower()
        if word in _PRIMITIVES:
            return _PRIMITIVES[word]
        if word in ("decimal", "dec", "numeric"):
            precision, scale = 10, 0
            if self._peek("("):
                precision = self._int()
                if self._peek(","):
                    scale = self._int()
                self._expect(")")
            if not 1 <= precision <= 38 or scale > precision:
                raise self._error(f"decimal({precision},{scale}) needs 1 <= precision <= 38 and scale <= precision")
            return f"decimal({precision},{scale})"
        if word in ("varchar", "char"):
            self._expect("(")
            length = self._int()
            self._expect(")")
            if not 1 <= length <= 65535:
                raise self._error(f"{word} length must be 1 to 65535")
            return f"{word}({length})"
        if word == "array":
            self._expect("<")
            element = self._type(depth + 1)
            self._expect(">")
            return f"array<{element}>"
        if word == "map":
            self._expect("<")
            key = self._type(depth + 1)
            self._expect(",")
            value = self._type(depth + 1)
            self._expect(">")
            return f"map<{key},{value}>"
        if word == "struct":
            self._expect("<")
            fields: list[str] = []
            seen: set[str] = set()
            if not self._peek(">"):
                while True:
                    name = self._field_name()
                    if name.lower() in seen:
                        raise self._error(f"duplicate struct field {name!r}")
                    seen.add(name.lower())
                    self._expect(":")
                    shown = name if _PLAIN_NAME.fullmatch(name) else "`" + name.replace("`", "``") + "`"
                    fields.append(f"{shown}:{self._type(depth + 1)}")
                    if self._peek(">"):
                        break
                    self._expect(",")
            return f"struct<{','.join(fields)}>"
        raise self._error(f"unknown type {word!r}")


def canonical_type(text: str) -> str:
    """The canonical spelling of a Spark/Hive type string; ValueError saying why when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty type")
    if len(text) > MAX_TYPE_LENGTH:
        raise ValueError(f"longer than {MAX_TYPE_LENGTH} characters")
    return _TypeParser(text).parse()


def _iceberg_type(canonical: str) -> PrimitiveType | None:
    """The Iceberg type a partition key of this (canonical) type is evaluated as; None if unsupported."""
    simple: dict[str, PrimitiveType] = {
        "string": StringType(),
        "tinyint": IntegerType(),
        "smallint": IntegerType(),
        "int": IntegerType(),
        "bigint": LongType(),
        "float": FloatType(),
        "double": DoubleType(),
        "boolean": BooleanType(),
        "date": DateType(),
        "timestamp": TimestampType(),
        "timestamp_ntz": TimestampType(),
    }
    if canonical in simple:
        return simple[canonical]
    if _SIZED_STRING.fullmatch(canonical):
        return StringType()
    match = _DECIMAL.fullmatch(canonical)
    if match:
        return DecimalType(int(match.group(1)), int(match.group(2)))
    return None


# -- partition values ----------------------------------------------------------------------------------
_INTEGER = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1) - _EPOCH


def _convert_value(key: DatasetColumn, value: PartitionValue) -> tuple[str | None, Any]:
    """``(canonical string, value as Iceberg evaluates it)`` of one partition value; ValueError if it
    does not fit the key's type."""
    if value is None or value == HIVE_NULL_PARTITION:
        return None, None
    kind = key.type
    if kind == "string" or _SIZED_STRING.fullmatch(kind):
        if not isinstance(value, str):
            raise ValueError(f"a {kind} value must be a JSON string, not {json.dumps(value)}")
        sized = _SIZED_STRING.fullmatch(kind)
        if sized and len(value) > int(sized.group(1)):
            raise ValueError(f"{value[:40]!r} is longer than {kind} allows")
        return value, value
    if kind in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{json.dumps(value)} is not an integer")
        if isinstance(value, str):
            if not _INTEGER.fullmatch(value.strip()):
                raise ValueError(f"{value!r} is not an integer")
            value = int(value.strip())
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise ValueError(f"{value} is out of the range of {kind}")
        return str(value), value
    if kind in ("float", "double"):
        if isinstance(value, bool):
            raise ValueError(f"{json.dumps(value)} is not a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        return repr(number), number
    match = _DECIMAL.fullmatch(kind)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if isinstance(value, bool):
            raise ValueError(f"{json.dumps(value)} is not a decimal")
        try:
            dec = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal") from None
        if not dec.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        try:
            quantized = dec.quantize(Decimal(1).scaleb(-scale))
        except InvalidOperation:
            raise ValueError(f"{value!r} has more than {precision} digits") from None
        if quantized != dec:
            raise ValueError(f"{value!r} has more than {scale} digits after the point")
        if len(quantized.as_tuple().digits) > precision and quantized != 0:
            raise ValueError(f"{value!r} has more than {precision} digits")
        return str(quantized), quantized
    if kind == "boolean":
        if isinstance(value, bool):
            return ("true" if value else "false"), value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            flag = value.strip().lower() == "true"
            return ("true" if flag else "false"), flag
        raise ValueError(f"{json.dumps(value)} is not a boolean")
    if kind == "date":
        if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
            raise ValueError(f"{json.dumps(value)} is not a date (YYYY-MM-DD)")
        day = date.fromisoformat(value.strip())
        return day.isoformat(), (day - _EPOCH.date()).days
    if kind in ("timestamp", "timestamp_ntz"):
        if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value.strip()):
            raise ValueError(f"{json.dumps(value)} is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])")
        moment = datetime.fromisoformat(value.strip().replace(" ", "T"))
        micros = (moment - _EPOCH) // _MICROSECOND
        return moment.isoformat(sep=" "), micros
    raise ValueError(f"partition keys of type {kind} are not supported")


def _values_key(values: Sequence[str | None]) -> str:
    return json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        key = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
        if isinstance(json.loads(key), list):
            return key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationFailedError(f"Invalid page token {token[:64]!r}")


# -- validation ----------------------------------------------------------------------------------------
def _check_label(value: str, what: str) -> None:
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ValidationFailedError(f"Invalid {what}: must be 1 to {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValidationFailedError(f"Invalid {what} {value[:64]!r}: control characters are not allowed")
    if value.strip() != value:
        raise ValidationFailedError(f"Invalid {what} {value!r}: leading or trailing white space")


def check_location(location: str, what: str = "location") -> str:
    """Accept ``s3://bucket/prefix`` (also s3a, s3n) and absolute ``file:`` URIs; 400 otherwise."""
    if not isinstance(location, str) or not location or len(location) > 4000:
        raise ValidationFailedError(f"Invalid {what}: must be a URI of 1 to 4000 characters")
    if any(ord(c) < 0x20 for c in location):
        raise ValidationFailedError(f"Invalid {what} {location[:64]!r}: control characters are not allowed")
    scheme = location.split(":", 1)[0].lower() if ":" in location else ""
    if scheme not in (*S3_SCHEMES, "file"):
        raise ValidationFailedError(f"Invalid {what} {location[:200]!r}: must be an s3:// or file: URI")
    path = local_path(location, _NOWHERE)  # validates buckets and rejects '..'
    if scheme == "file" and not path.is_absolute():
        raise ValidationFailedError(f"Invalid {what} {location[:200]!r}: a file: URI needs an absolute path")
    if scheme == "file" and ".." in path.parts:
        raise ValidationFailedError(f"Invalid {what} {location[:200]!r}: '..' is not allowed")
    return location


def _normalize_columns(columns: list[DatasetColumn], what: str) -> list[DatasetColumn]:
    result = []
    for column in columns:
        _check_label(column.name, f"{what} name")
        try:
            kind = canonical_type(column.type)
        except ValueError as exc:
            raise ValidationFailedError(
                f"Invalid type {column.type[:200]!r} of {what} {column.name!r}: {exc}"
            ) from None
        result.append(DatasetColumn(name=column.name, type=kind, comment=column.comment))
    return result


def normalize_definition(definition: DatasetDefinition) -> DatasetDefinition:
    """Validate a definition and return it in canonical form (400 with the reason otherwise)."""
    fmt = definition.format.strip().lower()
    if fmt not in FORMATS:
        raise ValidationFailedError(f"Invalid format {definition.format[:64]!r}: must be one of {', '.join(FORMATS)}")
    if len(definition.columns) + len(definition.partition_keys) > MAX_COLUMNS:
        raise ValidationFailedError(f"Too many columns: at most {MAX_COLUMNS} with the partition keys")
    columns = _normalize_columns(definition.columns, "column")
    keys = _normalize_columns(definition.partition_keys, "partition key")
    seen: dict[str, str] = {}
    for column, what in [(c, "column") for c in columns] + [(k, "partition key") for k in keys]:
        folded = column.name.lower()
        if folded in seen:
            raise ValidationFailedError(
                f"Duplicate name {column.name!r}: {what} names must differ (case-insensitively) from every "
                f"other column and partition key (clashes with {seen[folded]})"
            )
        seen[folded] = f"{what} {column.name!r}"
    for key in keys:
        if _iceberg_type(key.type) is None:
            raise ValidationFailedError(
                f"Partition key {key.name!r} has type {key.type}: partition keys must be string, char, varchar, "
                "integer, floating-point, decimal, boolean, date or timestamp"
            )
    for prop in definition.properties:
        if not prop or len(prop) > MAX_PROPERTY_KEY:
            raise ValidationFailedError(f"Invalid property key {prop[:64]!r}: 1 to {MAX_PROPERTY_KEY} characters")
    return DatasetDefinition.model_validate(
        {
            "format": fmt,
            "location": check_location(definition.location),
            "columns": columns,
            "partition-keys": keys,
            "properties": dict(sorted(definition.properties.items())),
            "description": definition.description,
        }
    )


def _fingerprint(definition: DatasetDefinition) -> str:
    return json.dumps(definition.to_json(), sort_keys=True, separators=(",", ":"))


def _changed_fields(old: DatasetDefinition, new: DatasetDefinition) -> list[str]:
    before, after = old.to_json(), new.to_json()
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _key_signature(keys: list[DatasetColumn]) -> list[tuple[str, str]]:
    return [(k.name.lower(), k.type) for k in keys]


# -- predicates ----------------------------------------------------------------------------------------
def _references(expr: BooleanExpression) -> Iterator[str]:
    if isinstance(expr, And | Or):
        yield from _references(expr.left)
        yield from _references(expr.right)
    elif isinstance(expr, Not):
        yield from _references(expr.child)
    elif isinstance(expr, UnboundPredicate):
        term = expr.term
        yield term.name if isinstance(term, Reference) else str(term)


class PartitionPredicate:
    """A predicate over partition values, parsed and bound once; 400 with a clear reason when invalid."""

    def __init__(self, expression: str, keys: list[DatasetColumn], dataset: str) -> None:
        self.expression = expression
        if len(expression) > MAX_EXPRESSION_LENGTH:
            raise ValidationFailedError(f"Predicate longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            unbound = parse_expression(expression)
        except ParseBaseException as exc:
            near = expression[exc.loc : exc.loc + 30]
            where = f"near {near!r}" if near else "at the end"
            raise ValidationFailedError(
                f"Malformed predicate {expression[:200]!r}: syntax error at character {exc.loc + 1} ({where})"
            ) from None
        except RecursionError:
            raise ValidationFailedError(f"Malformed predicate {expression[:200]!r}: nested too deeply") from None
        known = {k.name.lower(): k for k in keys}
        for name in _references(unbound):
            if name.lower() not in known:
                listed = ", ".join(k.name for k in keys) or "none (the dataset is not partitioned)"
                raise ValidationFailedError(
                    f"Unknown column {name!r} in predicate {expression[:200]!r}: a partition predicate may only use "
                    f"the partition keys of {dataset}: {listed}"
                )
        schema = Schema(
            *[NestedField(i + 1, k.name, _iceberg_type(k.type), required=False) for i, k in enumerate(keys)]
        )
        try:
            self._eval: Callable[[Record], bool] = expression_evaluator(schema, unbound, case_sensitive=False)
        except (ValueError, TypeError, ArithmeticError) as exc:
            hint = " (quote the values of string keys: dt = '2024-01-02')" if isinstance(exc, TypeError) else ""
            raise ValidationFailedError(
                f"Invalid predicate {expression[:200]!r} for the partition keys of {dataset} "
                f"({', '.join(f'{k.name} {k.type}' for k in keys)}): {exc}{hint}"
            ) from None
        self.keys = keys

    def matches(self, values: list[str | None]) -> bool:
        typed = [_convert_value(k, v)[1] for k, v in zip(self.keys, values, strict=True)]
        return self._eval(Record(*typed))


# -- the service ---------------------------------------------------------------------------------------
class Datasets:
    """The raw datasets of one catalog, their versions and partitions."""

    def __init__(self, backend: Backend) -> None:
        self.b = backend

    # -- helpers ---------------------------------------------------------------------------------------
    def _where(self, table: Any, ident: DatasetIdent) -> Any:
        return and_(
            table.c.catalog_name == self.b.name,
            table.c.namespace == namespace_to_db(ident.namespace),
            table.c.name == ident.name,
        )

    def _row(self, conn: Connection, ident: DatasetIdent) -> Any:
        t = db.raw_datasets
        return conn.execute(select(t).where(self._where(t, ident))).mappings().first()

    def _require(self, conn: Connection, ident: DatasetIdent) -> Dataset:
        row = self._row(conn, ident)
        if row is None:
            raise NoSuchDatasetError(f"Dataset does not exist: {ident}")
        return self._dataset(ident.namespace, row)

    @staticmethod
    def _dataset(ns: Namespace, row: Any) -> Dataset:
        return Dataset(
            namespace=ns,
            name=row["name"],
            version=row["version"],
            created_ms=row["created_ms"],
            updated_ms=row["updated_ms"],
            definition=DatasetDefinition.model_validate(row["definition"]),
        )

    def _check_name_free(self, conn: Connection, ident: DatasetIdent) -> None:
        """404 if the namespace is missing; 409 if an Iceberg table or view has the name.

        Locks the namespace for the transaction, so a concurrent drop cannot orphan the dataset.
        """
        require_namespace(self.b, conn, ident.namespace)
        t = db.iceberg_tables
        row = conn.execute(
            select(t.c.iceberg_type).where(
                and_(
                    t.c.catalog_name == self.b.name,
                    t.c.table_namespace == namespace_to_db(ident.namespace),
                    t.c.table_name == ident.name,
                )
            )
        ).first()
        if row is not None:
            kind = "View" if row[0] == "VIEW" else "Table"
            raise AlreadyExistsError(f"{kind} with same name already exists: {ident}")

    def _retrying(self, what: str, attempt_once: Callable[[], T]) -> T:
        return retrying(self.b.settings, what, attempt_once)

    def _insert_new(
        self, conn: Connection, ident: DatasetIdent, definition: DatasetDefinition, principal: str
    ) -> Dataset:
        self._check_name_free(conn, ident)
        ts = now_ms()
        key = {"catalog_name": self.b.name, "namespace": namespace_to_db(ident.namespace), "name": ident.name}
        body = definition.to_json()
        conn.execute(insert(db.raw_datasets).values(**key, version=1, created_ms=ts, updated_ms=ts, definition=body))
        conn.execute(
            insert(db.raw_dataset_versions).values(**key, version=1, ts_ms=ts, principal=principal, definition=body)
        )
        self.b.audit(
            conn,
            "create-dataset",
            principal,
            ident.namespace,
            ident.name,
            detail={"version": 1, "format": definition.format, "location": definition.location},
        )
        return Dataset(ident.namespace, ident.name, 1, ts, ts, definition)

    # -- datasets --------------------------------------------------------------------------------------
    def create(self, ident: DatasetIdent, definition: DatasetDefinition, principal: str) -> Dataset:
        """Register a new dataset (version 1); 409 if the name is taken, 404 if the namespace is missing."""
        normalized = normalize_definition(definition)

        def attempt() -> Dataset:
            with self.b.engine.begin() as conn:
                if self._row(conn, ident) is not None:
                    raise AlreadyExistsError(f"Dataset already exists: {ident}")
                return self._insert_new(conn, ident, normalized, principal)

        return self._retrying(f"Creating dataset {ident}", attempt)

    def upsert(self, ident: DatasetIdent, definition: DatasetDefinition, principal: str) -> UpsertResult:
        """Create the dataset or update its definition; a new version only when the definition changed."""
        normalized = normalize_definition(definition)
        fingerprint = _fingerprint(normalized)

        def attempt() -> UpsertResult:
            with self.b.engine.begin() as conn:
                row = self._row(conn, ident)
                if row is None:
                    return UpsertResult(self._insert_new(conn, ident, normalized, principal), True, True)
                current = self._dataset(ident.namespace, row)
                if _fingerprint(current.definition) == fingerprint:
                    return UpsertResult(current, False, False)
                if _key_signature(current.definition.partition_keys) != _key_signature(normalized.partition_keys):
                    count = self._partition_count(conn, ident)
                    if count:
                        raise ValidationFailedError(
                            f"Cannot change the partition keys of {ident}: it has {count} partitions "
                            "(delete them first)"
                        )
                version, ts, body = current.version + 1, now_ms(), normalized.to_json()
                t = db.raw_datasets
                result = conn.execute(
                    update(t)
                    .where(and_(self._where(t, ident), t.c.version == current.version))
                    .values(version=version, updated_ms=ts, definition=body)
                )
                if result.rowcount != 1:
                    raise LostRace(str(ident))
                conn.execute(
                    insert(db.raw_dataset_versions).values(
                        catalog_name=self.b.name,
                        namespace=namespace_to_db(ident.namespace),
                        name=ident.name,
                        version=version,
                        ts_ms=ts,
                        principal=principal,
                        definition=body,
                    )
                )
                self.b.audit(
                    conn,
                    "update-dataset",
                    principal,
                    ident.namespace,
                    ident.name,
                    detail={"version": version, "changed": _changed_fields(current.definition, normalized)},
                )
                updated = Dataset(ident.namespace, ident.name, version, current.created_ms, ts, normalized)
                return UpsertResult(updated, False, True)

        return self._retrying(f"Updating dataset {ident}", attempt)

    def get(self, ident: DatasetIdent) -> Dataset:
        with self.b.engine.connect() as conn:
            return self._require(conn, ident)

    def list(self, ns: Namespace, page_token: str | None, page_size: int) -> tuple[list[Dataset], str | None]:
        """One page of the namespace's datasets by name; the token is the last name of the page."""
        t = db.raw_datasets
        with self.b.engine.connect() as conn:
            if not self.b.namespace_exists(conn, ns):
                raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")
            query = select(t).where(and_(t.c.catalog_name == self.b.name, t.c.namespace == namespace_to_db(ns)))
            if page_token:
                query = query.where(t.c.name > page_token)
            rows = conn.execute(query.order_by(t.c.name).limit(page_size + 1)).mappings().all()
        page = [self._dataset(ns, r) for r in rows[:page_size]]
        return page, (page[-1].name if len(rows) > page_size else None)

    def drop(self, ident: DatasetIdent, principal: str) -> None:
        """Drop the dataset with its partitions and versions (the files stay where they are)."""
        with self.b.engine.begin() as conn:
            dataset = self._require(conn, ident)
            partitions = conn.execute(delete(db.raw_partitions).where(self._where(db.raw_partitions, ident))).rowcount
            versions = conn.execute(
                delete(db.raw_dataset_versions).where(self._where(db.raw_dataset_versions, ident))
            ).rowcount
            conn.execute(delete(db.raw_datasets).where(self._where(db.raw_datasets, ident)))
            self.b.audit(
                conn,
                "drop-dataset",
                principal,
                ident.namespace,
                ident.name,
                detail={"version": dataset.version, "partitions": partitions, "versions": versions},
            )

    # -- versions --------------------------------------------------------------------------------------
    @staticmethod
    def _version(row: Any) -> DatasetVersion:
        return DatasetVersion(
            version=row["version"],
            ts_ms=row["ts_ms"],
            principal=row["principal"],
            definition=DatasetDefinition.model_validate(row["definition"]),
        )

    def versions(
        self, ident: DatasetIdent, page_token: str | None, page_size: int
    ) -> tuple[builtins.list[DatasetVersion], str | None]:
        """One page of the dataset's versions, oldest first (the current one is the last)."""
        after = 0
        if page_token:
            if not page_token.isdigit():
                raise ValidationFailedError(f"Invalid page token {page_token[:64]!r}")
            after = int(page_token)
        t = db.raw_dataset_versions
        with self.b.engine.connect() as conn:
            self._require(conn, ident)
            rows = (
                conn.execute(
                    select(t)
                    .where(and_(self._where(t, ident), t.c.version > after))
                    .order_by(t.c.version)
                    .limit(page_size + 1)
                )
                .mappings()
                .all()
            )
        page = [self._version(r) for r in rows[:page_size]]
        return page, (str(page[-1].version) if len(rows) > page_size else None)

    def version(self, ident: DatasetIdent, version: int) -> DatasetVersion:
        t = db.raw_dataset_versions
        with self.b.engine.connect() as conn:
            self._require(conn, ident)
            row = conn.execute(select(t).where(and_(self._where(t, ident), t.c.version == version))).mappings().first()
        if row is None:
            raise NotFoundError(f"Dataset {ident} has no version {version}")
        return self._version(row)

    # -- partitions ------------------------------------------------------------------------------------
    def _partition_count(self, conn: Connection, ident: DatasetIdent) -> int:
        t = db.raw_partitions
        return int(conn.execute(select(func.count()).where(self._where(t, ident))).scalar_one())

    @staticmethod
    def _canonical_values(dataset: Dataset, values: Sequence[PartitionValue]) -> builtins.list[str | None]:
        keys = dataset.definition.partition_keys
        ident = dotted(dataset.namespace, dataset.name)
        if not keys:
            raise ValidationFailedError(f"Dataset {ident} has no partition keys, so it has no partitions")
        if len(values) != len(keys):
            raise ValidationFailedError(
                f"Partition values {json.dumps(list(values))[:200]} do not match the partition keys of {ident}: "
                f"expected {len(keys)} values ({', '.join(f'{k.name} {k.type}' for k in keys)}), got {len(values)}"
            )
        result = []
        for key, value in zip(keys, values, strict=True):
            try:
                result.append(_convert_value(key, value)[0])
            except ValueError as exc:
                raise ValidationFailedError(
                    f"Invalid value for partition key {key.name!r} ({key.type}) of {ident}: {exc}"
                ) from None
        if len(_values_key(result)) > MAX_VALUES_KEY_LENGTH:
            raise ValidationFailedError(f"Partition values longer than {MAX_VALUES_KEY_LENGTH} characters in total")
        return result

    def _existing(self, conn: Connection, ident: DatasetIdent, keys: Sequence[str]) -> dict[str, Any]:
        t = db.raw_partitions
        found: dict[str, Any] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            rows = conn.execute(select(t).where(and_(self._where(t, ident), t.c.values_key.in_(chunk)))).mappings()
            found.update({r["values_key"]: r for r in rows})
        return found

    def add_partitions(
        self, ident: DatasetIdent, partitions: builtins.list[PartitionInput], principal: str, *, replace: bool = False
    ) -> AddPartitionsResult:
        """Add partitions, all or none. Identical existing partitions are reported as ``existing``; one
        existing with another location or parameters is a 409 unless ``replace``."""
        if len(partitions) > MAX_PARTITIONS_PER_REQUEST:
            raise ValidationFailedError(f"At most {MAX_PARTITIONS_PER_REQUEST} partitions per request")
        for p in partitions:
            check_location(p.location, "partition location")
            for prop in p.parameters:
                if not prop or len(prop) > MAX_PROPERTY_KEY:
                    raise ValidationFailedError(
                        f"Invalid partition parameter key {prop[:64]!r}: 1 to {MAX_PROPERTY_KEY} characters"
                    )

        def attempt() -> AddPartitionsResult:
            with self.b.engine.begin() as conn:
                dataset = self._require(conn, ident)
                wanted: dict[str, tuple[builtins.list[str | None], PartitionInput]] = {}
                for p in partitions:
                    values = self._canonical_values(dataset, p.values)
                    key = _values_key(values)
                    if key in wanted:
                        first = wanted[key][1]
                        if (first.location, first.parameters) != (p.location, p.parameters):
                            raise ValidationFailedError(
                                f"Partition {key} appears twice in the request with different locations or parameters"
                            )
                        continue
                    wanted[key] = (values, p)
                existing = self._existing(conn, ident, list(wanted))
                added: builtins.list[builtins.list[str | None]] = []
                same: builtins.list[builtins.list[str | None]] = []
                replaced: builtins.list[builtins.list[str | None]] = []
                rows = []
                ts = now_ms()
                t = db.raw_partitions
                for key, (values, p) in wanted.items():
                    old = existing.get(key)
                    if old is None:
                        added.append(values)
                        rows.append(
                            {
                                "catalog_name": self.b.name,
                                "namespace": namespace_to_db(ident.namespace),
                                "name": ident.name,
                                "values_key": key,
                                "values": values,
                                "location": p.location,
                                "created_ms": ts,
                                "parameters": p.parameters,
                            }
                        )
                    elif (old["location"], old["parameters"] or {}) == (p.location, p.parameters):
                        same.append(values)
                    elif not replace:
                        raise AlreadyExistsError(
                            f"Partition {key} of {ident} already exists with location {old['location']!r} "
                            f"(not {p.location!r}) or other parameters; pass replace=true to replace it"
                        )
                    else:
                        replaced.append(values)
                        conn.execute(
                            update(t)
                            .where(and_(self._where(t, ident), t.c.values_key == key))
                            .values(location=p.location, parameters=p.parameters, created_ms=ts)
                        )
                if rows:
                    conn.execute(insert(t), rows)
                if added or replaced:
                    changed = added + replaced
                    self.b.audit(
                        conn,
                        "add-partitions",
                        principal,
                        ident.namespace,
                        ident.name,
                        detail={
                            "added": len(added),
                            "replaced": len(replaced),
                            "existing": len(same),
                            "values": changed[:_AUDITED_VALUES],
                            "truncated": len(changed) > _AUDITED_VALUES,
                        },
                    )
                return AddPartitionsResult(added, same, replaced)

        return self._retrying(f"Adding partitions to {ident}", attempt)

    def list_partitions(
        self, ident: DatasetIdent, expression: str | None, page_token: str | None, page_size: int
    ) -> tuple[builtins.list[Partition], str | None]:
        """One page of the partitions matching ``expression`` (all when it is empty), pruned here in the
        catalog. Pages are in a stable order; the token is opaque."""
        after = _decode_token(page_token) if page_token else None
        t = db.raw_partitions
        with self.b.engine.connect() as conn:
            dataset = self._require(conn, ident)
            keys = dataset.definition.partition_keys
            predicate = PartitionPredicate(expression, keys, str(ident)) if expression and expression.strip() else None
            page: builtins.list[Partition] = []
            last_key = ""
            more = False
            cursor = after
            while not more:
                query = select(t).where(self._where(t, ident))
                if cursor is not None:
                    query = query.where(t.c.values_key > cursor)
                batch_size = _SCAN_BATCH if predicate else page_size + 1
                rows = conn.execute(query.order_by(t.c.values_key).limit(batch_size)).mappings().all()
                for row in rows:
                    values = list(row["values"])
                    if predicate is not None and not predicate.matches(values):
                        continue
                    if len(page) == page_size:
                        more = True
                        break
                    page.append(Partition(values, row["location"], dict(row["parameters"] or {}), row["created_ms"]))
                    last_key = row["values_key"]
                if len(rows) < batch_size:
                    break
                cursor = rows[-1]["values_key"]
        return page, (_encode_token(last_key) if more else None)

    def delete_partitions(
        self, ident: DatasetIdent, values: builtins.list[builtins.list[PartitionValue]], principal: str
    ) -> DeletePartitionsResult:
        """Delete partitions by their values (all in one transaction); missing ones are reported."""
        if len(values) > MAX_PARTITIONS_PER_REQUEST:
            raise ValidationFailedError(f"At most {MAX_PARTITIONS_PER_REQUEST} partitions per request")
        t = db.raw_partitions
        with self.b.engine.begin() as conn:
            dataset = self._require(conn, ident)
            wanted: dict[str, builtins.list[str | None]] = {}
            for v in values:
                canonical = self._canonical_values(dataset, v)
                wanted.setdefault(_values_key(canonical), canonical)
            existing = self._existing(conn, ident, list(wanted))
            deleted = [wanted[k] for k in wanted if k in existing]
            missing = [wanted[k] for k in wanted if k not in existing]
            keys = [k for k in wanted if k in existing]
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(delete(t).where(and_(self._where(t, ident), t.c.values_key.in_(chunk))))
            if deleted:
                self.b.audit(
                    conn,
                    "delete-partitions",
                    principal,
                    ident.namespace,
                    ident.name,
                    detail={
                        "deleted": len(deleted),
                        "values": deleted[:_AUDITED_VALUES],
                        "truncated": len(deleted) > _AUDITED_VALUES,
                    },
                )
        return DeletePartitionsResult(deleted, missing)
