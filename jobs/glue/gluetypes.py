"""Glue's type system (served to scripts as ``awsglue.gluetypes``), and its mapping to Spark types.

Glue types describe self-describing records: every value has its own type, a field whose values
have several types is a :class:`ChoiceType`, and :func:`mergeDataTypes` combines the types seen
across records with Glue's rules (null or unknown merged with X is X; different types give a choice
keyed by type name; structs merge field by field; arrays and maps merge their element and value
types).

The second half maps these types to the Spark encoding every module of the runtime shares (see
``jobs.glue``): a choice is a struct column with one sub-field per branch, named by the branch's
Glue type name, and ``{"glue.choice": true}`` in its ``StructField`` metadata. A choice nested in an
array element or a map value (which have no ``StructField`` of their own) is recorded on the
enclosing field, under ``glue.choice.nested``, as the list of positions below that field that are
choice structs (``"element"``, ``"value"``, ``"element.element"``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pyspark.sql import types as st

from jobs.glue import CHOICE_METADATA_KEY

CHOICE_NESTED_METADATA_KEY = "glue.choice.nested"
"""Field metadata key: positions below the field (``element``/``value`` steps) that are choice structs."""

__all__ = [
    "DataType",
    "AtomicType",
    "BinaryType",
    "BooleanType",
    "ByteType",
    "DateType",
    "DecimalType",
    "DoubleType",
    "EnumType",
    "FloatType",
    "IntegerType",
    "LongType",
    "NullType",
    "ShortType",
    "StringType",
    "TimestampType",
    "TimestampNTZType",
    "UnknownType",
    "ArrayType",
    "SetType",
    "ChoiceType",
    "MapType",
    "Field",
    "StructType",
    "EntityType",
    "mergeDataTypes",
    "from_spark_type",
    "from_spark_schema",
    "to_spark_type",
    "to_spark_field",
    "to_spark_schema",
    "type_from_name",
    "spark_type_from_name",
    "schema_tree_string",
    "is_choice_field",
]


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


class DataType:
    """Base of every Glue type. Types compare equal when their class and attributes are equal."""

    def __init__(self, properties: Mapping[str, Any] | None = None) -> None:
        self.properties: dict[str, Any] = dict(properties or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.__class__) and type(other) is type(self) and self.__dict__ == other.__dict__

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.__class__.__name__)

    @classmethod
    def typeName(cls) -> str:  # noqa: N802 - Glue's API name
        return cls.__name__[: -len("Type")].lower()

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {"dataType": self.typeName(), "properties": dict(self.properties)}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.properties})"

    def simpleString(self) -> str:  # noqa: N802
        return self.typeName()


class AtomicType(DataType):
    """A type without sub-types."""

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> AtomicType:  # noqa: N802
        return cls(properties=json_value.get("properties", {}))


class BinaryType(AtomicType):
    pass


class BooleanType(AtomicType):
    pass


class ByteType(AtomicType):
    pass


class DateType(AtomicType):
    pass


class DecimalType(AtomicType):
    def __init__(self, precision: int = 10, scale: int = 2, properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(properties)
        self.precision = precision
        self.scale = scale

    def __repr__(self) -> str:
        return f"DecimalType({self.precision}, {self.scale}, {self.properties})"

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "precision": self.precision, "scale": self.scale}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> DecimalType:  # noqa: N802
        return cls(json_value.get("precision", 10), json_value.get("scale", 2), json_value.get("properties", {}))

    def simpleString(self) -> str:  # noqa: N802
        return f"decimal({self.precision},{self.scale})"


class DoubleType(AtomicType):
    pass


class EnumType(AtomicType):
    def __init__(self, options: Iterable[str] = (), properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(properties)
        self.options = list(options)

    def __repr__(self) -> str:
        shown = ",".join(self.options[:3]) + (",..." if len(self.options) > 3 else "")
        return f"EnumType([{shown}], {self.properties})"

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "options": list(self.options)}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> EnumType:  # noqa: N802
        return cls(json_value.get("options", []), json_value.get("properties", {}))


class FloatType(AtomicType):
    pass


class IntegerType(AtomicType):
    @classmethod
    def typeName(cls) -> str:  # noqa: N802
        return "int"


class LongType(AtomicType):
    pass


class NullType(AtomicType):
    pass


class ShortType(AtomicType):
    pass


class StringType(AtomicType):
    pass


class TimestampType(AtomicType):
    pass


class TimestampNTZType(AtomicType):
    @classmethod
    def typeName(cls) -> str:  # noqa: N802
        return "timestampntz"


class UnknownType(AtomicType):
    pass


class ArrayType(DataType):
    def __init__(self, elementType: DataType | None = None, properties: Mapping[str, Any] | None = None) -> None:  # noqa: N803
        super().__init__(properties)
        element = UnknownType() if elementType is None else elementType
        if not isinstance(element, DataType):
            raise TypeError(f"elementType should be a DataType, got {type(element).__name__}")
        self.elementType = element

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.elementType}, {self.properties})"

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "elementType": self.elementType.jsonValue()}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> ArrayType:  # noqa: N802
        return cls(_deserialize_json_value(json_value["elementType"]), json_value.get("properties", {}))


class SetType(ArrayType):
    """A set of values (Glue's DynamoDB string/number sets); a Spark array."""


class ChoiceType(DataType):
    """Several types for one field, keyed by type name (at most one branch per name)."""

    def __init__(self, choices: Iterable[DataType] = (), properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(properties)
        self.choices: dict[str, DataType] = {}
        for choice in choices:
            self.add(choice)

    def __repr__(self) -> str:
        shown = ",".join(str(c) for c in self.sorted_choices())
        return f"ChoiceType([{shown}], {self.properties})"

    def add(self, new_choice: DataType) -> None:
        name = new_choice.typeName()
        if name in self.choices:
            raise ValueError(f"Attempting to insert duplicate choice {name!r}")
        self.choices[name] = new_choice

    def merge(self, new_choices: DataType | Iterable[DataType]) -> None:
        items = [new_choices] if isinstance(new_choices, DataType) else list(new_choices)
        for choice in items:
            if isinstance(choice, ChoiceType):
                self.merge(list(choice.choices.values()))
                continue
            name = choice.typeName()
            self.choices[name] = mergeDataTypes(self.choices.get(name, UnknownType()), choice)

    def sorted_choices(self) -> list[DataType]:
        """The branches ordered by type name (the order of the Spark sub-fields and of printSchema)."""
        return [self.choices[name] for name in sorted(self.choices)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChoiceType) and self.choices == other.choices and self.properties == other.properties

    __hash__ = DataType.__hash__

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "choices": [c.jsonValue() for c in self.sorted_choices()]}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> ChoiceType:  # noqa: N802
        return cls([_deserialize_json_value(c) for c in json_value["choices"]], json_value.get("properties", {}))


class MapType(DataType):
    """A map with string keys (Glue's maps are always keyed by strings)."""

    def __init__(self, valueType: DataType | None = None, properties: Mapping[str, Any] | None = None) -> None:  # noqa: N803
        super().__init__(properties)
        value = UnknownType() if valueType is None else valueType
        if not isinstance(value, DataType):
            raise TypeError(f"valueType should be a DataType, got {type(value).__name__}")
        self.valueType = value

    def __repr__(self) -> str:
        return f"MapType({self.valueType}, {self.properties})"

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "valueType": self.valueType.jsonValue()}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> MapType:  # noqa: N802
        return cls(_deserialize_json_value(json_value["valueType"]), json_value.get("properties", {}))


class Field:
    """A named field of a :class:`StructType`. Fields compare by name and type."""

    def __init__(self, name: str, dataType: DataType, properties: Mapping[str, Any] | None = None) -> None:  # noqa: N803
        if not isinstance(dataType, DataType):
            raise TypeError(f"dataType should be a DataType, got {type(dataType).__name__}")
        self.name = name if isinstance(name, str) else str(name)
        self.dataType = dataType
        self.properties: dict[str, Any] = dict(properties or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self.name == other.name and self.dataType == other.dataType

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Field({self.name}, {self.dataType}, {self.properties})"

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {"name": self.name, "container": self.dataType.jsonValue(), "properties": dict(self.properties)}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> Field:  # noqa: N802
        return cls(
            json_value["name"], _deserialize_json_value(json_value["container"]), json_value.get("properties", {})
        )


class StructType(DataType):
    """An ordered list of named fields."""

    def __init__(self, fields: Iterable[Field] = (), properties: Mapping[str, Any] | None = None) -> None:
        super().__init__(properties)
        self.fields: list[Field] = []
        self.field_map: dict[str, Field] = {}
        for f in fields:
            self.add(f)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __getitem__(self, name: str) -> Field:
        return self.field_map[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructType) and self.fields == other.fields and self.properties == other.properties

    __hash__ = DataType.__hash__

    def __repr__(self) -> str:
        return "StructType([{}], {})".format(",".join(str(f) for f in self.fields), self.properties)

    def add(self, field: Field) -> None:
        if not isinstance(field, Field):
            raise TypeError("field must be a Field")
        self.fields.append(field)
        self.field_map[field.name] = field

    def hasField(self, field: Field | str) -> bool:  # noqa: N802
        return (field.name if isinstance(field, Field) else field) in self.field_map

    def getField(self, field: Field | str) -> Field:  # noqa: N802
        return self.field_map[field.name if isinstance(field, Field) else field]

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def jsonValue(self) -> dict[str, Any]:  # noqa: N802
        return {**super().jsonValue(), "fields": [f.jsonValue() for f in self.fields]}

    @classmethod
    def fromJsonValue(cls, json_value: Mapping[str, Any]) -> StructType:  # noqa: N802
        return cls([Field.fromJsonValue(f) for f in json_value["fields"]], json_value.get("properties", {}))

    def treeString(self) -> str:  # noqa: N802
        return schema_tree_string(self)


class EntityType(DataType):
    def __init__(self, entity: Any = None, base_type: Any = None, properties: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError("EntityType is not supported")


_ATOMIC_TYPES: list[type[AtomicType]] = [
    BinaryType,
    BooleanType,
    ByteType,
    DateType,
    DecimalType,
    DoubleType,
    EnumType,
    FloatType,
    IntegerType,
    LongType,
    NullType,
    ShortType,
    StringType,
    TimestampType,
    TimestampNTZType,
    UnknownType,
]
_COMPLEX_TYPES: list[type[DataType]] = [ArrayType, ChoiceType, MapType, StructType, SetType]
_ALL_TYPE_MAP: dict[str, type[DataType]] = {t.typeName(): t for t in [*_ATOMIC_TYPES, *_COMPLEX_TYPES]}


def _deserialize_json_value(json_value: Mapping[str, Any]) -> DataType:
    cls = _ALL_TYPE_MAP[json_value["dataType"]]
    return cls.fromJsonValue(json_value)  # type: ignore[attr-defined, no-any-return]


def _deserialize_json_string(json_str: str) -> DataType:
    return _deserialize_json_value(json.loads(json_str))


def _serialize_schema(schema: DataType) -> str:
    return json.dumps(schema.jsonValue())


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------


def _branches(t: DataType) -> list[DataType]:
    return list(t.choices.values()) if isinstance(t, ChoiceType) else [t]


def mergeDataTypes(s1: DataType, s2: DataType) -> DataType:  # noqa: N802 - Glue's API name
    """Merge the types of two values (or two schemas) with Glue's rules; neither input is modified.

    * null or unknown merged with X gives X;
    * two types of different names give a :class:`ChoiceType` keyed by type name (choices merge
      branch by branch);
    * structs merge field by field, keeping the fields of both sides (``s1``'s order first);
    * arrays and maps merge their element and value types.
    """
    if isinstance(s1, UnknownType | NullType):
        return s2
    if isinstance(s2, UnknownType | NullType):
        return s1
    if isinstance(s1, ChoiceType) or isinstance(s2, ChoiceType) or s1.typeName() != s2.typeName():
        merged: dict[str, DataType] = {}
        for branch in [*_branches(s1), *_branches(s2)]:
            name = branch.typeName()
            merged[name] = mergeDataTypes(merged[name], branch) if name in merged else branch
        return ChoiceType(merged.values(), s1.properties)
    if isinstance(s1, StructType) and isinstance(s2, StructType):
        fields: list[Field] = []
        for f in s1.fields:
            if s2.hasField(f.name):
                fields.append(Field(f.name, mergeDataTypes(f.dataType, s2.getField(f.name).dataType), f.properties))
            else:
                fields.append(Field(f.name, f.dataType, f.properties))
        fields.extend(Field(f.name, f.dataType, f.properties) for f in s2.fields if not s1.hasField(f.name))
        return StructType(fields, s1.properties)
    if isinstance(s1, SetType) and isinstance(s2, ArrayType):
        return SetType(mergeDataTypes(s1.elementType, s2.elementType), s1.properties)
    if isinstance(s1, ArrayType) and isinstance(s2, ArrayType):
        return ArrayType(mergeDataTypes(s1.elementType, s2.elementType), s1.properties)
    if isinstance(s1, MapType) and isinstance(s2, MapType):
        return MapType(mergeDataTypes(s1.valueType, s2.valueType), s1.properties)
    if isinstance(s1, EnumType) and isinstance(s2, EnumType):
        return EnumType([*s1.options, *(o for o in s2.options if o not in s1.options)], s1.properties)
    if isinstance(s1, DecimalType) and isinstance(s2, DecimalType) and s1 != s2:
        scale = max(s1.scale, s2.scale)
        digits = max(s1.precision - s1.scale, s2.precision - s2.scale)
        return DecimalType(min(38, digits + scale), scale, s1.properties)
    return s1


# ---------------------------------------------------------------------------------------------
# Spark mapping
# ---------------------------------------------------------------------------------------------

_SPARK_ATOMIC: dict[type[st.DataType], type[AtomicType]] = {
    st.BinaryType: BinaryType,
    st.BooleanType: BooleanType,
    st.ByteType: ByteType,
    st.DateType: DateType,
    st.DoubleType: DoubleType,
    st.FloatType: FloatType,
    st.IntegerType: IntegerType,
    st.LongType: LongType,
    st.NullType: NullType,
    st.ShortType: ShortType,
    st.StringType: StringType,
    st.CharType: StringType,
    st.VarcharType: StringType,
    st.TimestampType: TimestampType,
    st.TimestampNTZType: TimestampNTZType,
}

_GLUE_ATOMIC_TO_SPARK: dict[type[AtomicType], st.DataType] = {
    BinaryType: st.BinaryType(),
    BooleanType: st.BooleanType(),
    ByteType: st.ByteType(),
    DateType: st.DateType(),
    DoubleType: st.DoubleType(),
    EnumType: st.StringType(),
    FloatType: st.FloatType(),
    IntegerType: st.IntegerType(),
    LongType: st.LongType(),
    NullType: st.NullType(),
    ShortType: st.ShortType(),
    StringType: st.StringType(),
    TimestampType: st.TimestampType(),
    TimestampNTZType: st.TimestampNTZType(),
}


def is_choice_field(field: st.StructField) -> bool:
    """Whether a Spark field is a choice struct of the encoding."""
    return bool(field.metadata.get(CHOICE_METADATA_KEY)) and isinstance(field.dataType, st.StructType)


def _step(position: str, step: str) -> str:
    return f"{position}.{step}" if position else step


def from_spark_type(dt: st.DataType, metadata: Mapping[str, Any] | None = None, _position: str = "") -> DataType:
    """The Glue type of a Spark type; ``metadata`` is the enclosing field's (choice markers)."""
    meta = metadata or {}
    nested = set(meta.get(CHOICE_NESTED_METADATA_KEY) or [])
    is_choice = (bool(meta.get(CHOICE_METADATA_KEY)) and _position == "") or (_position != "" and _position in nested)
    if is_choice and isinstance(dt, st.StructType):
        return ChoiceType(from_spark_type(f.dataType, f.metadata) for f in dt.fields)
    if isinstance(dt, st.StructType):
        return StructType(Field(f.name, from_spark_type(f.dataType, f.metadata)) for f in dt.fields)
    if isinstance(dt, st.ArrayType):
        return ArrayType(from_spark_type(dt.elementType, meta, _step(_position, "element")))
    if isinstance(dt, st.MapType):
        return MapType(from_spark_type(dt.valueType, meta, _step(_position, "value")))
    if isinstance(dt, st.DecimalType):
        return DecimalType(dt.precision, dt.scale)
    atomic = _SPARK_ATOMIC.get(type(dt))
    if atomic is not None:
        return atomic()
    return UnknownType({"sparkType": dt.json()})


def from_spark_schema(schema: st.StructType) -> StructType:
    """The Glue schema of a DataFrame schema in the runtime's encoding (the error column excluded)."""
    from jobs.glue import ERROR_COLUMN

    return StructType(
        Field(f.name, from_spark_type(f.dataType, f.metadata)) for f in schema.fields if f.name != ERROR_COLUMN
    )


def _to_spark(dt: DataType, position: str, nested: list[str]) -> st.DataType:
    if isinstance(dt, ChoiceType):
        if position:
            nested.append(position)
        return st.StructType([to_spark_field(c.typeName(), c) for c in dt.sorted_choices()])
    if isinstance(dt, StructType):
        return st.StructType([to_spark_field(f.name, f.dataType) for f in dt.fields])
    if isinstance(dt, ArrayType):
        return st.ArrayType(_to_spark(dt.elementType, _step(position, "element"), nested), True)
    if isinstance(dt, MapType):
        return st.MapType(st.StringType(), _to_spark(dt.valueType, _step(position, "value"), nested), True)
    if isinstance(dt, DecimalType):
        return st.DecimalType(dt.precision, dt.scale)
    if isinstance(dt, UnknownType):
        spark_json = dt.properties.get("sparkType")
        if spark_json:
            return st._parse_datatype_json_string(spark_json)
        return st.NullType()
    spark = _GLUE_ATOMIC_TO_SPARK.get(type(dt))  # type: ignore[arg-type]
    if spark is None:
        raise TypeError(f"No Spark type for Glue type {dt!r}")
    return spark


def to_spark_type(dt: DataType) -> st.DataType:
    """The Spark type of a Glue type (choices become structs; their markers need :func:`to_spark_field`)."""
    return _to_spark(dt, "", [])


def to_spark_field(name: str, dt: DataType) -> st.StructField:
    """The Spark field for a Glue field, with the choice metadata of the encoding."""
    nested: list[str] = []
    spark = _to_spark(dt, "", nested)
    metadata: dict[str, Any] = {}
    if isinstance(dt, ChoiceType):
        metadata[CHOICE_METADATA_KEY] = True
    if nested:
        metadata[CHOICE_NESTED_METADATA_KEY] = nested
    return st.StructField(name, spark, True, metadata)


def to_spark_schema(schema: StructType) -> st.StructType:
    """The Spark schema for a Glue schema (without the error column)."""
    return st.StructType([to_spark_field(f.name, f.dataType) for f in schema.fields])


_NAME_ALIASES: dict[str, str] = {
    "integer": "int",
    "bigint": "long",
    "smallint": "short",
    "tinyint": "byte",
    "bool": "boolean",
    "real": "float",
    "str": "string",
    "varchar": "string",
    "char": "string",
    "text": "string",
    "timestamp_ntz": "timestampntz",
    "void": "null",
}


def type_from_name(name: str) -> DataType:
    """A Glue type from a type name as scripts write it (``long``, ``bigint``, ``decimal(12,4)``, ``array``...)."""
    text = name.strip().lower()
    if text.startswith(("decimal", "numeric")):
        inner = text[text.find("(") + 1 : text.rfind(")")] if "(" in text else ""
        if inner:
            parts = [int(p) for p in inner.split(",")]
            return DecimalType(parts[0], parts[1] if len(parts) > 1 else 0)
        return DecimalType()
    if text.startswith(("varchar(", "char(")):
        return StringType()
    text = _NAME_ALIASES.get(text, text)
    cls = _ALL_TYPE_MAP.get(text)
    if cls is None or cls in (ChoiceType,):
        raise ValueError(f"Unknown type name {name!r}")
    return cls()


def spark_type_from_name(name: str) -> st.DataType:
    """The Spark type for an atomic Glue type name (``long`` -> LongType, ``decimal(12,4)``...)."""
    return to_spark_type(type_from_name(name))


# ---------------------------------------------------------------------------------------------
# printSchema
# ---------------------------------------------------------------------------------------------


def _tree_lines(dt: DataType, depth: int, out: list[str]) -> None:
    prefix = "|    " * depth + "|-- "
    if isinstance(dt, StructType):
        for f in dt.fields:
            out.append(f"{prefix}{f.name}: {f.dataType.typeName()}")
            _tree_lines(f.dataType, depth + 1, out)
    elif isinstance(dt, ChoiceType):
        for c in dt.sorted_choices():
            out.append(f"{prefix}{c.typeName()}")
            _tree_lines(c, depth + 1, out)
    elif isinstance(dt, ArrayType):
        out.append(f"{prefix}element: {dt.elementType.typeName()}")
        _tree_lines(dt.elementType, depth + 1, out)
    elif isinstance(dt, MapType):
        out.append(f"{prefix}keyType: string")
        out.append(f"{prefix}valueType: {dt.valueType.typeName()}")
        _tree_lines(dt.valueType, depth + 1, out)


def schema_tree_string(schema: StructType) -> str:
    """Glue's printSchema text: ``root``, then ``|-- name: type`` lines, nested levels indented by ``|    ``."""
    lines = ["root"]
    _tree_lines(schema, 0, lines)
    return "\n".join(lines) + "\n"
