"""unnest, unbox, join, union, split_fields, split_rows, merge_frames, drop_null_fields, spigot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    LongType,
    MapType,
    NullType,
    StringType,
    StructField,
    StructType,
)

from jobs.glue import CHOICE_METADATA_KEY, ERROR_COLUMN
from jobs.glue.ops.spigot import spigot
from jobs.glue.ops.structure import (
    drop_null_fields,
    join,
    merge_frames,
    split_fields,
    split_rows,
    unbox,
    union,
    unnest,
)
from tests.jobs.ops_helpers import encoded, errors_of, good_of

pytestmark = pytest.mark.spark

# --------------------------------------------------------------------------------------------
# unnest
# --------------------------------------------------------------------------------------------


def test_unnest_flattens_structs_but_not_arrays_or_choices(spark: SparkSession) -> None:
    choice = StructType([StructField("long", LongType()), StructField("string", StringType())])
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField(
                "addr",
                StructType(
                    [
                        StructField("city", StringType()),
                        StructField("geo", StructType([StructField("lat", DoubleType())])),
                    ]
                ),
            ),
            StructField("tags", ArrayType(StructType([StructField("k", StringType())]))),
            StructField("pid", choice, metadata={CHOICE_METADATA_KEY: True}),
        ]
    )
    df = encoded(
        spark,
        schema,
        [(1, ("Paris", (48.8,)), [("a",)], (7, None)), (2, None, None, (None, "x"))],
        [(3, ("Oslo", (59.9,)), [], None)],
    )
    out = unnest(df)
    assert out.columns == ["id", "addr.city", "addr.geo.lat", "tags", "pid", ERROR_COLUMN]
    assert out.schema["pid"].metadata.get(CHOICE_METADATA_KEY) is True
    assert isinstance(out.schema["tags"].dataType, ArrayType)
    rows = {r["id"]: r for r in out.collect()}
    assert rows[1]["addr.geo.lat"] == 48.8 and rows[2]["addr.city"] is None
    assert rows[3][ERROR_COLUMN]["message"] == "upstream failure"


# --------------------------------------------------------------------------------------------
# unbox
# --------------------------------------------------------------------------------------------

RAW = StructType([StructField("id", LongType()), StructField("payload", StringType())])


def test_unbox_json_parses_into_a_struct_and_marks_unparsable_values(spark: SparkSession) -> None:
    df = encoded(
        spark,
        RAW,
        [(1, '{"a": 1, "b": {"c": "x"}}'), (2, '{"a": 2}'), (3, "not json"), (4, None), (5, "[1, 2]")],
        [(6, '{"a": 9}')],
    )
    out = unbox(df, "payload", "json", {}, info="parse payload")
    payload_type = out.schema["payload"].dataType
    assert isinstance(payload_type, StructType)
    assert payload_type.fieldNames() == ["a", "b"]
    rows = {r["id"]: r for r in out.collect()}
    assert rows[1]["payload"]["a"] == 1 and rows[1]["payload"]["b"]["c"] == "x"
    assert rows[2]["payload"]["b"] is None and rows[2][ERROR_COLUMN] is None
    assert rows[4]["payload"] is None and rows[4][ERROR_COLUMN] is None
    for bad in (3, 5):
        err = rows[bad][ERROR_COLUMN]
        assert err is not None and err["stage"] == "unbox" and err["info"] == "parse payload"
        assert "not a JSON object" in err["message"]
        assert rows[bad]["payload"] is None
    assert json.loads(rows[3][ERROR_COLUMN]["record"]) == {"id": 3, "payload": "not json"}
    # an upstream error record passes through with its own error
    assert rows[6][ERROR_COLUMN]["message"] == "upstream failure"


def test_unbox_json_nested_path_and_with_schema(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, ('{"n": 5, "extra": 1}',)), (2, ('{"n": 7}',)), (3, ('{"n": "seven"}',))],
        "id long, meta struct<raw: string>",
    )
    schema = StructType([StructField("n", LongType())]).json()
    out = unbox(df, "meta.raw", "json", {"withSchema": schema})
    assert out.schema["meta"].dataType == StructType([StructField("raw", StructType([StructField("n", LongType())]))])
    rows = {r["id"]: r for r in out.collect()}
    assert rows[1]["meta"]["raw"]["n"] == 5 and rows[2]["meta"]["raw"]["n"] == 7
    # a value that does not fit the given schema is an error record; its struct path stays, nulled
    assert rows[3][ERROR_COLUMN]["stage"] == "unbox" and rows[3]["meta"]["raw"] is None
    assert rows[1][ERROR_COLUMN] is None


def test_unbox_csv_types_columns_and_handles_quotes_and_widths(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, "a,1,2.5"), (2, 'b,"x,y",3'), (3, "c"), (4, 'e,"unterminated'), (5, "f,2,true")], RAW
    )
    out = unbox(df, "payload", "csv", {})
    fields = out.schema["payload"].dataType
    assert isinstance(fields, StructType)
    assert [(f.name, f.dataType.simpleString()) for f in fields.fields] == [
        ("col0", "string"),
        ("col1", "string"),
        ("col2", "string"),
    ]
    rows = {r["id"]: r for r in out.collect()}
    assert rows[2]["payload"]["col1"] == "x,y"
    assert rows[3]["payload"]["col0"] == "c" and rows[3]["payload"]["col2"] is None
    assert rows[4][ERROR_COLUMN]["stage"] == "unbox" and rows[4]["payload"] is None

    typed = unbox(
        spark.createDataFrame([(1, "a|1|2.5"), (2, "b|22|3")], RAW),
        "payload",
        "csv",
        {"separator": "|"},
    )
    assert [f.dataType for f in typed.schema["payload"].dataType.fields] == [StringType(), LongType(), DoubleType()]
    assert sorted(r["payload"]["col1"] for r in typed.collect()) == [1, 22]


def test_unbox_csv_header_skip_first_and_schema_mismatch(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, "junk\nname,age\nann,31"), (2, "junk\nname,age\nbob,x")], RAW)
    out = unbox(df, "payload", "csv", {"skipFirst": True, "withHeader": True})
    assert out.schema["payload"].dataType.fieldNames() == ["name", "age"]
    rows = {r["id"]: r["payload"] for r in out.collect()}
    assert rows[1]["name"] == "ann" and rows[2]["age"] == "x"

    schema = StructType([StructField("name", StringType()), StructField("age", LongType())]).json()
    strict = unbox(df, "payload", "csv", {"skipFirst": True, "withHeader": True, "withSchema": schema})
    got = {r["id"]: r for r in strict.collect()}
    assert got[1]["payload"]["age"] == 31 and got[1][ERROR_COLUMN] is None
    assert got[2]["payload"] is None and "does not fit" in got[2][ERROR_COLUMN]["message"]


def test_unbox_rejects_bad_arguments(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, "{}")], RAW)
    with pytest.raises(ValueError, match="unsupported unbox format 'avro'"):
        unbox(df, "payload", "avro", {})
    with pytest.raises(ValueError, match="not found"):
        unbox(df, "nope", "json", {})
    with pytest.raises(ValueError, match="not a string"):
        unbox(df, "id", "json", {})


# --------------------------------------------------------------------------------------------
# join
# --------------------------------------------------------------------------------------------

PEOPLE = StructType([StructField("id", StringType()), StructField("name", StringType())])
MEMBERS = StructType(
    [StructField("person_id", StringType()), StructField("name", StringType()), StructField("org", StringType())]
)


def test_join_keeps_both_keys_and_renames_clashes(spark: SparkSession) -> None:
    people = encoded(spark, PEOPLE, [("p1", "Ann"), ("p2", "Bob"), ("p3", "Cy")], [("p4", "Err")])
    members = encoded(spark, MEMBERS, [("p1", "m-a", "senate"), ("p1", "m-b", "house"), ("p2", "m-c", "house")])
    out = join(people, members, ["id"], ["person_id"])
    assert out.columns == ["id", "name", "person_id", ".name", "org", ERROR_COLUMN]
    good = sorted(tuple(r) for r in good_of(out).collect())
    assert good == [
        ("p1", "Ann", "p1", "m-a", "senate"),
        ("p1", "Ann", "p1", "m-b", "house"),
        ("p2", "Bob", "p2", "m-c", "house"),
    ]
    bad = errors_of(out).collect()
    assert len(bad) == 1 and bad[0]["id"] == "p4" and bad[0]["person_id"] is None


def test_join_on_nested_and_multiple_keys(spark: SparkSession) -> None:
    left = spark.createDataFrame([(("a", 1), "x"), (("b", 2), "y")], "k struct<s: string, n: long>, v string")
    right = spark.createDataFrame([("a", 1, "X"), ("b", 3, "Y")], "s string, n long, w string")
    out = join(left, right, ["k.s", "k.n"], ["s", "n"])
    assert [tuple(r) for r in out.collect()] == [(("a", 1), "x", "a", 1, "X")]
    assert ERROR_COLUMN not in out.columns


def test_join_rejects_bad_keys(spark: SparkSession) -> None:
    a = spark.createDataFrame([(1,)], "id long")
    with pytest.raises(ValueError, match="join key .frame2. 'missing' not found"):
        join(a, a, ["id"], ["missing"])
    with pytest.raises(ValueError, match="as many keys"):
        join(a, a, ["id"], ["id", "id"])


# --------------------------------------------------------------------------------------------
# union
# --------------------------------------------------------------------------------------------


def test_union_merges_schemas_by_name_and_makes_choices(spark: SparkSession) -> None:
    a = encoded(
        spark,
        StructType([StructField("id", LongType()), StructField("v", LongType()), StructField("only_a", StringType())]),
        [(1, 10, "x")],
        [(2, 20, "bad")],
    )
    b = spark.createDataFrame([("s", 3), ("t", 4)], "v string, id long")
    out = union(a, b)
    assert out.columns == ["id", "v", "only_a", ERROR_COLUMN]
    v_field = out.schema["v"]
    assert v_field.metadata.get(CHOICE_METADATA_KEY) is True
    assert v_field.dataType.fieldNames() == ["long", "string"]
    rows = {r["id"]: r for r in out.collect()}
    assert len(rows) == 4
    assert rows[1]["v"]["long"] == 10 and rows[1]["v"]["string"] is None
    assert rows[3]["v"]["string"] == "s" and rows[3]["only_a"] is None
    assert rows[2][ERROR_COLUMN]["message"] == "upstream failure"


def test_union_same_schema_keeps_types(spark: SparkSession) -> None:
    a = spark.createDataFrame([(1, ("x",))], "id long, s struct<a: string>")
    b = spark.createDataFrame([(2, ("y",))], "id long, s struct<a: string>")
    out = union(a, b)
    assert out.schema == a.schema
    assert sorted(r["id"] for r in out.collect()) == [1, 2]


# --------------------------------------------------------------------------------------------
# split_fields, split_rows
# --------------------------------------------------------------------------------------------


def test_split_fields_selects_paths_and_keeps_the_rest(spark: SparkSession) -> None:
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("name", StructType([StructField("first", StringType()), StructField("last", StringType())])),
            StructField("age", LongType()),
        ]
    )
    df = encoded(spark, schema, [(1, ("Ann", "Lee"), 30)], [(2, ("X", "Y"), 1)])
    selected, rest = split_fields(df, ["id", "name.first", "does.not.exist"])
    assert selected.columns == ["id", "name", ERROR_COLUMN]
    assert selected.schema["name"].dataType.fieldNames() == ["first"]
    assert rest.columns == ["name", "age", ERROR_COLUMN]
    assert rest.schema["name"].dataType.fieldNames() == ["last"]
    assert good_of(rest).first()["name"]["last"] == "Lee"  # type: ignore[index]
    assert errors_of(selected).count() == 1 and errors_of(rest).count() == 1


def test_split_rows_ands_comparisons(spark: SparkSession) -> None:
    schema = StructType([StructField("name", StringType()), StructField("age", LongType())])
    df = encoded(spark, schema, [("a", 5), ("b", 15), ("c", 19), ("d", 20), ("e", None)], [("f", 12)])
    matching, rest = split_rows(df, {"age": {">": 10, "<": 20}})
    assert sorted(r["name"] for r in matching.collect()) == ["b", "c"]
    assert sorted(r["name"] for r in rest.collect()) == ["a", "d", "e", "f"]
    assert errors_of(rest).count() == 1
    eq, _ = split_rows(df, {"age": {"=": 20}, "name": {"!=": "zz"}})
    assert [r["name"] for r in eq.collect()] == ["d"]
    ge, _ = split_rows(df, {"age": {">=": 19, "<=": 20}})
    assert sorted(r["name"] for r in ge.collect()) == ["c", "d"]


def test_split_rows_rejects_unknown_operator_and_column(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1,)], "age long")
    with pytest.raises(ValueError, match="unknown comparison operator '<>'"):
        split_rows(df, {"age": {"<>": 1}})
    with pytest.raises(ValueError, match="not found"):
        split_rows(df, {"height": {">": 1}})


# --------------------------------------------------------------------------------------------
# merge_frames
# --------------------------------------------------------------------------------------------


def test_merge_replaces_matching_records_and_keeps_the_rest(spark: SparkSession) -> None:
    source = encoded(
        spark,
        StructType([StructField("id", LongType()), StructField("v", StringType())]),
        [(1, "a"), (1, "a-dup"), (2, "b"), (3, "c"), (None, "nokey")],
        [(9, "err")],
    )
    staging = spark.createDataFrame([(2, "B", True), (2, "B2", False), (4, "D", True)], "id long, v string, f boolean")
    out = merge_frames(source, staging, ["id"])
    assert out.columns == ["id", "v", "f", ERROR_COLUMN]
    good = sorted((r["id"] or 0, r["v"], r["f"]) for r in good_of(out).collect())
    assert good == [
        (0, "nokey", None),
        (1, "a", None),
        (1, "a-dup", None),
        (2, "B", True),
        (2, "B2", False),
        (3, "c", None),
        (4, "D", True),
    ]
    assert [r["id"] for r in errors_of(out).collect()] == [9]


def test_merge_rejects_missing_primary_key(spark: SparkSession) -> None:
    a = spark.createDataFrame([(1,)], "id long")
    b = spark.createDataFrame([(1,)], "key long")
    with pytest.raises(ValueError, match="primary key .staging frame. 'id' not found"):
        merge_frames(a, b, ["id"])
    with pytest.raises(ValueError, match="non-empty list"):
        merge_frames(a, a, [])


# --------------------------------------------------------------------------------------------
# drop_null_fields
# --------------------------------------------------------------------------------------------


def test_drop_null_fields_recurses_into_structs_and_arrays_not_maps(spark: SparkSession) -> None:
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("empty", StringType()),
            StructField("void", NullType()),
            StructField("s", StructType([StructField("keep", StringType()), StructField("gone", LongType())])),
            StructField("all_null", StructType([StructField("x", StringType())])),
            StructField("items", ArrayType(StructType([StructField("a", LongType()), StructField("b", StringType())]))),
            StructField("m", MapType(StringType(), StringType())),
            StructField("a.b", StringType()),
        ]
    )
    df = encoded(
        spark,
        schema,
        [
            (1, None, None, ("k", None), None, [(1, None)], {"x": None}, None),
            (2, None, None, None, None, None, None, None),
        ],
        # an error record's values do not count
        [(3, "set", None, ("k", 5), ("v",), [(1, "b")], None, "v")],
    )
    out, dropped = drop_null_fields(df)
    assert dropped == ["empty", "void", "s.gone", "all_null", "items.b", "`a.b`"]
    assert out.columns == ["id", "s", "items", "m", ERROR_COLUMN]
    assert out.schema["s"].dataType.fieldNames() == ["keep"]
    assert out.schema["items"].dataType.elementType.fieldNames() == ["a"]
    assert out.count() == 3
    kept, none = drop_null_fields(out.where(F.col("id") > 0))
    assert none == [] and kept.columns == out.columns


# --------------------------------------------------------------------------------------------
# spigot
# --------------------------------------------------------------------------------------------


def _read_sample(path: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for part in sorted(path.glob("part-*")):
        lines.extend(json.loads(line) for line in part.read_text().splitlines() if line)
    return lines


def test_spigot_writes_topk_good_records_as_json(spark: SparkSession, tmp_path: Path) -> None:
    schema = StructType([StructField("id", LongType())])
    df = encoded(spark, schema, [(i,) for i in range(10)], [(99,)])
    spigot(df, str(tmp_path / "s1"), {"topk": 3})
    sample = _read_sample(tmp_path / "s1")
    assert len(sample) == 3 and all(set(r) == {"id"} for r in sample)
    spigot(df, str(tmp_path / "s2"), {})
    assert sorted(r["id"] for r in _read_sample(tmp_path / "s2")) == list(range(10))  # type: ignore[type-var]
    spigot(df, str(tmp_path / "s3"), {"prob": 0.0})
    assert _read_sample(tmp_path / "s3") == []
    with pytest.raises(ValueError, match="prob"):
        spigot(df, str(tmp_path / "s4"), {"prob": 2})
