"""Glue's type system: merging, equality, the Spark encoding both ways, printSchema text."""

from __future__ import annotations

import pytest
from pyspark.sql import types as st

from jobs.glue import CHOICE_METADATA_KEY
from jobs.glue import gluetypes as gt


def test_type_names_follow_glue() -> None:
    assert gt.IntegerType.typeName() == "int"
    assert gt.LongType().typeName() == "long"
    assert gt.StringType.typeName() == "string"
    assert gt.ChoiceType.typeName() == "choice"
    assert gt.TimestampNTZType.typeName() == "timestampntz"
    assert gt.DecimalType().precision == 10 and gt.DecimalType().scale == 2


def test_null_and_unknown_merge_away() -> None:
    assert gt.mergeDataTypes(gt.NullType(), gt.LongType()) == gt.LongType()
    assert gt.mergeDataTypes(gt.StringType(), gt.UnknownType()) == gt.StringType()
    assert gt.mergeDataTypes(gt.NullType(), gt.NullType()) == gt.NullType()


def test_different_types_make_a_choice_keyed_by_type_name() -> None:
    merged = gt.mergeDataTypes(gt.LongType(), gt.StringType())
    assert isinstance(merged, gt.ChoiceType)
    assert sorted(merged.choices) == ["long", "string"]
    again = gt.mergeDataTypes(merged, gt.DoubleType())
    assert sorted(again.choices) == ["double", "long", "string"]
    # merging a type already in the choice adds nothing
    assert gt.mergeDataTypes(again, gt.LongType()) == again


def test_structs_merge_field_by_field_keeping_both_sides_in_order() -> None:
    left = gt.StructType([gt.Field("a", gt.LongType()), gt.Field("b", gt.StringType())])
    right = gt.StructType([gt.Field("c", gt.BooleanType()), gt.Field("a", gt.StringType())])
    merged = gt.mergeDataTypes(left, right)
    assert isinstance(merged, gt.StructType)
    assert merged.names() == ["a", "b", "c"]
    assert merged["a"].dataType == gt.ChoiceType([gt.LongType(), gt.StringType()])
    # inputs are not modified
    assert left.names() == ["a", "b"] and right["a"].dataType == gt.StringType()


def test_arrays_and_maps_merge_their_element_types() -> None:
    merged = gt.mergeDataTypes(gt.ArrayType(gt.IntegerType()), gt.ArrayType(gt.StringType()))
    assert merged == gt.ArrayType(gt.ChoiceType([gt.IntegerType(), gt.StringType()]))
    assert gt.mergeDataTypes(gt.ArrayType(gt.NullType()), gt.ArrayType(gt.LongType())) == gt.ArrayType(gt.LongType())
    assert gt.mergeDataTypes(gt.MapType(gt.LongType()), gt.MapType(gt.NullType())) == gt.MapType(gt.LongType())


def test_struct_branch_of_a_choice_merges_with_another_struct() -> None:
    a = gt.mergeDataTypes(gt.StructType([gt.Field("x", gt.LongType())]), gt.StringType())
    b = gt.mergeDataTypes(a, gt.StructType([gt.Field("y", gt.LongType())]))
    assert isinstance(b, gt.ChoiceType)
    assert b.choices["struct"] == gt.StructType([gt.Field("x", gt.LongType()), gt.Field("y", gt.LongType())])


def test_equality_lets_scripts_compare_schemas() -> None:
    one = gt.StructType([gt.Field("id", gt.LongType()), gt.Field("tags", gt.ArrayType(gt.StringType()))])
    two = gt.StructType([gt.Field("id", gt.LongType()), gt.Field("tags", gt.ArrayType(gt.StringType()))])
    assert one == two
    assert one != gt.StructType([gt.Field("id", gt.IntegerType()), gt.Field("tags", gt.ArrayType(gt.StringType()))])
    assert gt.ArrayType(gt.LongType()) != gt.SetType(gt.LongType())
    assert gt.DecimalType(10, 2) != gt.DecimalType(12, 2)
    assert gt.Field("a", gt.LongType()) == gt.Field("a", gt.LongType(), {"comment": "x"})


def test_json_round_trip() -> None:
    schema = gt.StructType(
        [
            gt.Field("id", gt.ChoiceType([gt.LongType(), gt.StringType()])),
            gt.Field("amount", gt.DecimalType(12, 4)),
            gt.Field("items", gt.ArrayType(gt.StructType([gt.Field("sku", gt.StringType())]))),
            gt.Field("attrs", gt.MapType(gt.DoubleType())),
        ]
    )
    assert gt._deserialize_json_string(gt._serialize_schema(schema)) == schema


def test_spark_encoding_round_trip_with_choices_at_every_depth() -> None:
    schema = gt.StructType(
        [
            gt.Field("id", gt.ChoiceType([gt.LongType(), gt.StringType()])),
            gt.Field("nested", gt.StructType([gt.Field("k", gt.ChoiceType([gt.IntegerType(), gt.DoubleType()]))])),
            gt.Field("tags", gt.ArrayType(gt.ChoiceType([gt.IntegerType(), gt.StringType()]))),
            gt.Field("grid", gt.ArrayType(gt.ArrayType(gt.ChoiceType([gt.BooleanType(), gt.LongType()])))),
            gt.Field("empty", gt.NullType()),
        ]
    )
    spark_schema = gt.to_spark_schema(schema)
    id_field = spark_schema["id"]
    assert id_field.metadata == {CHOICE_METADATA_KEY: True}
    assert id_field.dataType == st.StructType(
        [st.StructField("long", st.LongType(), True), st.StructField("string", st.StringType(), True)]
    )
    assert spark_schema["tags"].metadata == {gt.CHOICE_NESTED_METADATA_KEY: ["element"]}
    assert spark_schema["grid"].metadata == {gt.CHOICE_NESTED_METADATA_KEY: ["element.element"]}
    assert isinstance(spark_schema["empty"].dataType, st.NullType)
    assert gt.from_spark_schema(spark_schema) == schema


def test_a_plain_struct_with_type_named_fields_is_not_a_choice() -> None:
    spark_schema = st.StructType([st.StructField("s", st.StructType([st.StructField("long", st.LongType())]))])
    assert gt.from_spark_schema(spark_schema)["s"].dataType == gt.StructType([gt.Field("long", gt.LongType())])


def test_error_column_is_not_part_of_the_schema() -> None:
    from jobs.glue.errors import ERROR_FIELD

    spark_schema = st.StructType([st.StructField("a", st.LongType()), ERROR_FIELD])
    assert gt.from_spark_schema(spark_schema).names() == ["a"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("long", st.LongType()),
        ("bigint", st.LongType()),
        ("int", st.IntegerType()),
        ("integer", st.IntegerType()),
        ("string", st.StringType()),
        ("double", st.DoubleType()),
        ("boolean", st.BooleanType()),
        ("timestamp", st.TimestampType()),
        ("date", st.DateType()),
        ("decimal", st.DecimalType(10, 2)),
        ("decimal(12,4)", st.DecimalType(12, 4)),
    ],
)
def test_type_names_map_to_spark_types(name: str, expected: st.DataType) -> None:
    assert gt.spark_type_from_name(name) == expected


def test_unknown_type_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="Unknown type name"):
        gt.type_from_name("lng")


def test_print_schema_text_matches_glue() -> None:
    schema = gt.StructType(
        [
            gt.Field("drg definition", gt.StringType()),
            gt.Field("provider id", gt.ChoiceType([gt.StringType(), gt.LongType()])),
            gt.Field(
                "links",
                gt.ArrayType(gt.StructType([gt.Field("note", gt.StringType()), gt.Field("url", gt.StringType())])),
            ),
            gt.Field("metrics", gt.MapType(gt.DoubleType())),
            gt.Field(
                "b", gt.ChoiceType([gt.ArrayType(gt.IntegerType()), gt.StructType([gt.Field("c", gt.LongType())])])
            ),
        ]
    )
    assert gt.schema_tree_string(schema) == (
        "root\n"
        "|-- drg definition: string\n"
        "|-- provider id: choice\n"
        "|    |-- long\n"
        "|    |-- string\n"
        "|-- links: array\n"
        "|    |-- element: struct\n"
        "|    |    |-- note: string\n"
        "|    |    |-- url: string\n"
        "|-- metrics: map\n"
        "|    |-- keyType: string\n"
        "|    |-- valueType: double\n"
        "|-- b: choice\n"
        "|    |-- array\n"
        "|    |    |-- element: int\n"
        "|    |-- struct\n"
        "|    |    |-- c: long\n"
    )


def test_choice_rejects_duplicate_branches() -> None:
    choice = gt.ChoiceType([gt.LongType()])
    with pytest.raises(ValueError, match="duplicate"):
        choice.add(gt.LongType())
    choice.merge(gt.StringType())
    assert sorted(choice.choices) == ["long", "string"]


def test_entity_type_is_not_supported() -> None:
    with pytest.raises(NotImplementedError):
        gt.EntityType()
