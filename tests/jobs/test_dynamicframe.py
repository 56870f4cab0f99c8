"""DynamicFrame: Glue's semantics of choices, mappings, field transforms, map/filter errors, thresholds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as st

from jobs.glue import CHOICE_METADATA_KEY, ERROR_COLUMN, inference
from jobs.glue import gluetypes as gt
from jobs.glue.dynamicframe import NONE_RETURNED, DynamicFrame, ResolveOption, split_path
from jobs.glue.errors import ERROR_TYPE, ErrorThresholdExceededError
from jobs.glue.records import DynamicRecord, wrap_record


class Ctx:
    """A glue context as DynamicFrame needs it: a SparkSession and, for match_catalog, a schema provider."""

    def __init__(self, spark: SparkSession, catalog: dict[tuple[str, str], gt.StructType] | None = None) -> None:
        self.spark_session = spark
        self._catalog = catalog or {}

    def catalog_schema_provider(self, database: str, table: str) -> gt.StructType:
        return self._catalog[(database, table)]


MEDICARE = [
    "DRG Definition,provider id,Provider Name,Average Total Payments",
    "039 - EXTRACRANIAL PROCEDURES,10001,SOUTHEAST ALABAMA MEDICAL CENTER,$5777.24",
    "039 - EXTRACRANIAL PROCEDURES,10005,MARSHALL MEDICAL CENTER SOUTH,$5787.57",
    "039 - EXTRACRANIAL PROCEDURES,ABC,CREST HOSPITAL,$5434.95",
    "039 - EXTRACRANIAL PROCEDURES,10011,ST VINCENT'S EAST,$5417.56",
    "039 - EXTRACRANIAL PROCEDURES,XYZ,PROVIDENCE,$5658.33",
]


@pytest.fixture
def medicare(spark: SparkSession, tmp_path: Path) -> DynamicFrame:
    path = tmp_path / "medicare.csv"
    path.write_text("\n".join(MEDICARE) + "\n")
    return DynamicFrame(inference.read_csv(spark, [str(path)], {"withHeader": True}), Ctx(spark), "medicare")


def frame(spark: SparkSession, rows: list[dict[str, Any]], name: str = "f", path: Path | None = None) -> DynamicFrame:
    """A frame of JSON records typed by the JSON reader (choices where values differ)."""
    assert path is not None
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return DynamicFrame(inference.read_json(spark, [str(path)], {}), Ctx(spark), name)


def records(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict(recursive=True) for r in df.collect()]


pytestmark = pytest.mark.spark


# -- records -----------------------------------------------------------------------------------------


def test_dynamic_record_attribute_access_and_one_level_wrapping() -> None:
    rec = wrap_record({"a": 1, "b": {"c": {"d": 2}}, "l": [{"x": 1}]})
    assert rec.a == 1 and rec["a"] == 1
    assert isinstance(rec.b, DynamicRecord) and rec.b.c == {"d": 2}
    assert type(rec.b.c) is dict
    rec.z = 5
    assert rec["z"] == 5
    with pytest.raises(KeyError):
        _ = rec.missing


def test_split_path() -> None:
    assert split_path("a.b") == ["a", "b"]
    assert split_path("`a.b`.c") == ["a.b", "c"]
    assert split_path("myList[].price") == ["myList", "[]", "price"]
    assert split_path("provider id") == ["provider id"]


# -- conversion, inspection --------------------------------------------------------------------------


def test_from_df_to_df_round_trip_and_count(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id long, name string")
    dyf = DynamicFrame.fromDF(df, Ctx(spark), "people")
    assert dyf.name == "people"
    assert ERROR_COLUMN in dyf.df.columns
    assert dyf.count() == 2
    out = dyf.toDF()
    assert out.columns == ["id", "name"]
    assert records(out) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert dyf.schema() == gt.StructType([gt.Field("id", gt.LongType()), gt.Field("name", gt.StringType())])
    assert dyf.errorsCount() == 0


def test_error_records_travel_but_to_df_and_count_drop_them(spark: SparkSession) -> None:
    schema = st.StructType([st.StructField("id", st.LongType()), st.StructField(ERROR_COLUMN, ERROR_TYPE)])
    df = spark.createDataFrame([(1, None), (None, ("bad", "reader", "", '{"id": "x"}'))], schema)
    dyf = DynamicFrame(df, Ctx(spark), "f")
    assert dyf.count() == 1
    assert records(dyf.toDF()) == [{"id": 1}]
    assert dyf.errorsCount() == 1
    errors = records(dyf.errorsAsDynamicFrame().toDF())
    assert errors == [{"error": {"message": "bad", "stage": "reader", "info": "", "record": '{"id": "x"}'}}]


def test_print_schema_shows_the_medicare_choice(medicare: DynamicFrame, capsys: pytest.CaptureFixture[str]) -> None:
    medicare.printSchema()
    assert capsys.readouterr().out == (
        "root\n"
        "|-- DRG Definition: string\n"
        "|-- provider id: choice\n"
        "|    |-- long\n"
        "|    |-- string\n"
        "|-- Provider Name: string\n"
        "|-- Average Total Payments: string\n"
    )


def test_show_prints_records_as_json(medicare: DynamicFrame, capsys: pytest.CaptureFixture[str]) -> None:
    medicare.show(3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["provider id"] for line in lines] == [10001, 10005, "ABC"]


def test_partitions(medicare: DynamicFrame) -> None:
    assert medicare.repartition(3).getNumPartitions() == 3
    assert medicare.repartition(3).coalesce(1).getNumPartitions() == 1
    assert medicare.repartition(3).count() == 5


# -- resolveChoice -----------------------------------------------------------------------------------


def _ids(dyf: DynamicFrame, column: str = "provider id") -> list[Any]:
    return [r[column] for r in dyf.toDF().collect()]


def test_resolve_choice_cast_turns_failures_into_null(medicare: DynamicFrame) -> None:
    out = medicare.resolveChoice(specs=[("provider id", "cast:long")])
    assert out.schema()["provider id"].dataType == gt.LongType()
    assert _ids(out) == [10001, 10005, None, 10011, None]
    assert out.count() == 5 and out.errorsCount() == 0


def test_resolve_choice_project_keeps_only_that_type(medicare: DynamicFrame) -> None:
    longs = medicare.resolveChoice(specs=[("provider id", "project:long")])
    assert longs.schema()["provider id"].dataType == gt.LongType()
    assert _ids(longs) == [10001, 10005, None, 10011, None]
    strings = medicare.resolveChoice(specs=[("provider id", "project:string")])
    assert _ids(strings) == [None, None, "ABC", None, "XYZ"]


def test_resolve_choice_make_cols_puts_the_other_types_at_the_end(medicare: DynamicFrame) -> None:
    out = medicare.resolveChoice(specs=[("provider id", "make_cols")])
    assert out.toDF().columns == [
        "DRG Definition",
        "provider id_long",
        "Provider Name",
        "Average Total Payments",
        "provider id_string",
    ]
    assert _ids(out, "provider id_long") == [10001, 10005, None, 10011, None]
    assert _ids(out, "provider id_string") == [None, None, "ABC", None, "XYZ"]


def test_resolve_choice_make_struct_is_a_plain_struct(medicare: DynamicFrame) -> None:
    out = medicare.resolveChoice(specs=[("provider id", "make_struct")])
    assert out.schema()["provider id"].dataType == gt.StructType(
        [gt.Field("long", gt.LongType()), gt.Field("string", gt.StringType())]
    )
    assert not out.df.schema["provider id"].metadata.get(CHOICE_METADATA_KEY)
    assert _ids(out)[2].asDict() == {"long": None, "string": "ABC"}


def test_resolve_choice_needs_exactly_one_of_specs_and_choice(medicare: DynamicFrame) -> None:
    with pytest.raises(ValueError, match="both are missing"):
        medicare.resolveChoice()
    with pytest.raises(ValueError, match="not both"):
        medicare.resolveChoice(specs=[("provider id", "cast:long")], choice="make_struct")
    with pytest.raises(ValueError, match="Unknown resolveChoice action"):
        medicare.resolveChoice(specs=[("provider id", "explode")])


def test_resolve_choice_for_every_choice_including_nested_and_arrays(spark: SparkSession, tmp_path: Path) -> None:
    dyf = frame(
        spark,
        [
            {"id": 1, "nested": {"k": 1}, "tags": [1, "two"]},
            {"id": "x", "nested": {"k": "s"}, "tags": ["3"]},
        ],
        path=tmp_path / "n.json",
    )
    out = dyf.resolveChoice(choice="cast:string")
    assert out.schema() == gt.StructType(
        [
            gt.Field("id", gt.StringType()),
            gt.Field("nested", gt.StructType([gt.Field("k", gt.StringType())])),
            gt.Field("tags", gt.ArrayType(gt.StringType())),
        ]
    )
    assert records(out.toDF()) == [
        {"id": "1", "nested": {"k": "1"}, "tags": ["1", "two"]},
        {"id": "x", "nested": {"k": "s"}, "tags": ["3"]},
    ]
    by_path = dyf.resolveChoice(specs=[("nested.k", "project:int"), ("tags[]", "cast:int")])
    assert by_path.schema()["nested"].dataType == gt.StructType([gt.Field("k", gt.IntegerType())])
    assert by_path.schema()["tags"].dataType == gt.ArrayType(gt.IntegerType())
    assert isinstance(by_path.schema()["id"].dataType, gt.ChoiceType)
    rows = records(by_path.toDF())
    assert [r["nested"]["k"] for r in rows] == [1, None]
    assert [r["tags"] for r in rows] == [[1, None], [3]]


def test_resolve_choice_in_arrays_of_structs(spark: SparkSession, tmp_path: Path) -> None:
    dyf = frame(
        spark, [{"items": [{"price": 1}, {"price": "2.5"}]}, {"items": [{"price": 3}]}], path=tmp_path / "i.json"
    )
    out = dyf.resolveChoice(specs=[("items[].price", "cast:double")])
    assert out.schema()["items"].dataType == gt.ArrayType(gt.StructType([gt.Field("price", gt.DoubleType())]))
    assert [r["items"] for r in records(out.toDF())] == [[{"price": 1.0}, {"price": 2.5}], [{"price": 3.0}]]


def test_resolve_choice_match_catalog(spark: SparkSession, tmp_path: Path) -> None:
    catalog = gt.StructType([gt.Field("id", gt.LongType()), gt.Field("v", gt.StringType())])
    path = tmp_path / "c.json"
    path.write_text('{"id": 1, "v": 2}\n{"id": "7", "v": "x"}\n')
    dyf = DynamicFrame(inference.read_json(spark, [str(path)], {}), Ctx(spark, {("db", "t"): catalog}), "c")
    out = dyf.resolveChoice(choice="match_catalog", database="db", table_name="t")
    assert out.schema() == catalog
    assert records(out.toDF()) == [{"id": 1, "v": "2"}, {"id": 7, "v": "x"}]
    with pytest.raises(ValueError, match="database and table_name"):
        dyf.resolveChoice(choice="match_catalog")


def test_to_df_resolve_options(medicare: DynamicFrame) -> None:
    projected = medicare.toDF([ResolveOption("provider id", "Project", st.LongType())])
    assert [r["provider id"] for r in projected.collect()] == [10001, 10005, None, 10011, None]
    cast = medicare.toDF([ResolveOption("provider id", "Cast", "string")])
    assert [r["provider id"] for r in cast.collect()] == ["10001", "10005", "ABC", "10011", "XYZ"]
    kept = medicare.toDF([ResolveOption("provider id", "KeepAsStruct")])
    assert isinstance(kept.schema["provider id"].dataType, st.StructType)
    assert not kept.schema["provider id"].metadata.get(CHOICE_METADATA_KEY)
    with pytest.raises(ValueError, match="Missing target type"):
        medicare.toDF([ResolveOption("provider id", "Project")])


# -- apply_mapping and field transforms ---------------------------------------------------------------


def test_apply_mapping_builds_structs_casts_and_drops_unmapped(medicare: DynamicFrame) -> None:
    out = medicare.apply_mapping(
        [
            ("drg definition", "string", "drg", "string"),
            ("provider id", "string", "provider.id", "long"),
            ("provider name", "string", "provider.name", "string"),
            ("average total payments", "string", "charges.total", "string"),
        ]
    )
    assert out.schema() == gt.StructType(
        [
            gt.Field("drg", gt.StringType()),
            gt.Field("provider", gt.StructType([gt.Field("id", gt.LongType()), gt.Field("name", gt.StringType())])),
            gt.Field("charges", gt.StructType([gt.Field("total", gt.StringType())])),
        ]
    )
    rows = records(out.toDF())
    assert rows[0] == {
        "drg": "039 - EXTRACRANIAL PROCEDURES",
        "provider": {"id": 10001, "name": "SOUTHEAST ALABAMA MEDICAL CENTER"},
        "charges": {"total": "$5777.24"},
    }
    assert rows[2]["provider"]["id"] is None  # "ABC" does not cast: null, not an error
    assert out.errorsCount() == 0


def test_apply_mapping_unnests_quotes_and_short_forms(spark: SparkSession, tmp_path: Path) -> None:
    dyf = frame(
        spark,
        [{"a": {"b": "12", "c": "x"}, "dotted.name": 1.5, "Mixed": True, "gone": 1}],
        path=tmp_path / "m.json",
    )
    out = dyf.apply_mapping(
        [
            ("a.b", "string", "b_int", "int"),
            ("a.c", "c"),
            ("`dotted.name`", "d", "string"),
            ("mixed", "boolean", "flag", "boolean"),
            ("missing", "string", "nothing", "string"),
        ]
    )
    assert records(out.toDF()) == [{"b_int": 12, "c": "x", "d": "1.5", "flag": True}]
    strict = dyf.apply_mapping([("mixed", "boolean", "flag", "boolean")], case_sensitive=True)
    assert strict.toDF().columns == []
    single = dyf.applyMapping(("gone", "long", "kept", "long"))
    assert records(single.toDF()) == [{"kept": 1}]


def test_select_drop_and_rename_fields(spark: SparkSession, tmp_path: Path) -> None:
    dyf = frame(
        spark,
        [{"id": 1, "a": {"b": 1, "c": 2}, "links": [{"note": "n", "url": "u"}], "x.y": 3}],
        path=tmp_path / "s.json",
    )
    assert records(dyf.select_fields(["id", "a.c"]).toDF()) == [{"id": 1, "a": {"c": 2}}]
    assert records(dyf.select_fields("missing").toDF()) == [{}]
    dropped = dyf.drop_fields(["a.b", "links.note", "`x.y`", "missing"])
    assert records(dropped.toDF()) == [{"id": 1, "a": {"c": 2}, "links": [{"url": "u"}]}]
    renamed = dyf.rename_field("a.b", "a.bee").rename_field("`x.y`", "xy").rename_field("id", "org_id")
    assert records(renamed.toDF()) == [
        {"org_id": 1, "a": {"bee": 1, "c": 2}, "links": [{"note": "n", "url": "u"}], "xy": 3}
    ]
    moved = dyf.rename_field("a.c", "top_c")
    assert records(moved.toDF())[0]["top_c"] == 2
    assert records(moved.toDF())[0]["a"] == {"b": 1}


# -- filter and map ---------------------------------------------------------------------------------


def _people(spark: SparkSession, tmp_path: Path) -> DynamicFrame:
    rows = [
        {"name": "ann", "age": 30, "address": {"city": "Oslo"}},
        {"name": "bob", "age": 17, "address": {"city": "Rome"}},
        {"name": "cid", "age": None, "address": {"city": "Nice"}},
        {"name": "dan", "age": 45},
        {"name": "eve", "age": 52, "address": {"city": "Bern"}},
    ]
    return frame(spark, rows, "people", tmp_path / "people.json")


def test_filter_error_semantics(spark: SparkSession, tmp_path: Path) -> None:
    people = _people(spark, tmp_path)

    def predicate(rec: DynamicRecord) -> bool:
        if rec.name == "eve":
            raise RuntimeError("eve is special")
        if rec.name == "dan":
            raise ValueError("dropped like a false")
        rec["age"] = 0  # records are copies: no effect on the output
        return rec.address.city != "Rome" and rec["nope"] if rec.name == "ann" else rec.address.city != "Rome"

    out = people.filter(predicate, transformation_ctx="adults", info="age check")
    assert [r["name"] for r in records(out.toDF())] == ["cid"]
    assert [r["age"] for r in records(out.toDF())] == [None]
    (error,) = [r["error"] for r in records(out.errorsAsDynamicFrame().toDF())]
    assert error["message"] == "RuntimeError: eve is special"
    assert error["stage"] == "adults" and error["info"] == "age check"
    assert json.loads(error["record"]) == {"name": "eve", "age": 52, "address": {"city": "Bern"}}
    assert out.errorsCount() == 1 and out.stageErrorsCount() == 1


def test_filter_passes_upstream_errors_and_counts_them(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('{"a": 1}\n{broken\n{"a": 2}\n')
    dyf = DynamicFrame(inference.read_json(spark, [str(path)], {}), Ctx(spark), "e")
    out = dyf.filter(lambda r: r.a > 1)
    assert [r["a"] for r in records(out.toDF())] == [2]
    assert out.errorsCount() == 1
    assert out.stageErrorsCount() == 0
    assert dyf.stageErrorsCount() == 1


def test_map_error_semantics_and_output_schema(spark: SparkSession, tmp_path: Path) -> None:
    people = _people(spark, tmp_path)

    def fix(rec: DynamicRecord) -> DynamicRecord | None:
        if rec.name == "bob":
            return None
        if rec.name == "eve":
            raise KeyError("city")
        rec.age_next = (rec.age or 0) + 1
        rec.name = rec.name.upper()
        return rec

    out = people.map(fix, transformation_ctx="fix")
    assert out.schema() == gt.StructType(
        [
            gt.Field("name", gt.StringType()),
            gt.Field("age", gt.IntegerType()),
            gt.Field("address", gt.StructType([gt.Field("city", gt.StringType())])),
            gt.Field("age_next", gt.IntegerType()),
        ]
    )
    assert records(out.toDF()) == [
        {"name": "ANN", "age": 30, "address": {"city": "Oslo"}, "age_next": 31},
        {"name": "CID", "age": None, "address": {"city": "Nice"}, "age_next": 1},
        {"name": "DAN", "age": 45, "address": None, "age_next": 46},
    ]
    errors = {
        json.loads(e["record"])["name"]: e for e in (r["error"] for r in records(out.errorsAsDynamicFrame().toDF()))
    }
    assert errors["bob"]["message"] == NONE_RETURNED
    assert errors["eve"]["message"] == "KeyError: 'city'"
    assert errors["eve"]["stage"] == "fix"
    # the source frame is untouched by the mutations
    assert [r["name"] for r in records(people.toDF())] == ["ann", "bob", "cid", "dan", "eve"]


def test_map_keeps_long_fields_long_and_passes_errors_through(spark: SparkSession, tmp_path: Path) -> None:
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id long, v string")
    schema = st.StructType([*df.schema.fields, st.StructField(ERROR_COLUMN, ERROR_TYPE)])
    with_error = spark.createDataFrame([(1, "a", None), (None, None, ("upstream", "read", "", "{}"))], schema)
    dyf = DynamicFrame(with_error, Ctx(spark), "x")
    out = dyf.map(lambda r: {**r, "v": r.v * 2})
    assert out.schema()["id"].dataType == gt.LongType()
    assert records(out.toDF()) == [{"id": 1, "v": "aa"}]
    assert out.errorsCount() == 1 and out.stageErrorsCount() == 0


def test_map_over_choices_sees_plain_values(medicare: DynamicFrame) -> None:
    out = medicare.map(lambda r: {"provider id": r["provider id"], "kind": type(r["provider id"]).__name__})
    # Python ints of a field that was long stay long
    assert out.schema()["provider id"].dataType == gt.ChoiceType([gt.LongType(), gt.StringType()])
    assert [r["kind"] for r in records(out.toDF())] == ["int", "int", "str", "int", "str"]


def test_map_partitions(spark: SparkSession, tmp_path: Path) -> None:
    people = _people(spark, tmp_path)
    out = people.mapPartitions(lambda recs: ({"n": r.name} for r in recs if r.age))
    assert sorted(r["n"] for r in records(out.toDF())) == ["ann", "bob", "dan", "eve"]


# -- thresholds ---------------------------------------------------------------------------------------


def test_stage_threshold_raises_naming_the_stage(spark: SparkSession, tmp_path: Path) -> None:
    people = _people(spark, tmp_path)

    def boom(rec: DynamicRecord) -> bool:
        if rec.name in ("ann", "bob"):
            raise RuntimeError("no")
        return True

    with pytest.raises(ErrorThresholdExceededError, match="'people_filter'.*2 error records.*stageThreshold=1") as info:
        people.filter(boom, transformation_ctx="people_filter", stageThreshold=1)
    assert info.value.count == 2
    # at the threshold, or with thresholds off (0), nothing is raised
    assert people.filter(boom, stageThreshold=2).count() == 3
    assert people.filter(boom).stageErrorsCount() == 2


def test_total_threshold_includes_upstream_errors(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('{"a": 1}\n{broken\n{"a": 2}\n')
    dyf = DynamicFrame(inference.read_json(spark, [str(path)], {}), Ctx(spark), "e")
    ok = dyf.filter(lambda r: True, stageThreshold=1, totalThreshold=1)
    assert ok.count() == 2
    with pytest.raises(ErrorThresholdExceededError, match="totalThreshold=1"):
        dyf.map(lambda r: None if r.a == 2 else r, totalThreshold=1)
    lazy = dyf.map(lambda r: None if r.a == 2 else r)
    with pytest.raises(ErrorThresholdExceededError):
        lazy._total_threshold = 1
        lazy.assertErrorThreshold()


# -- structural transforms (jobs.glue.ops) -------------------------------------------------------------


def test_join_names_the_result_after_both_frames(spark: SparkSession) -> None:
    left = DynamicFrame.fromDF(spark.createDataFrame([(1, "a")], "id long, x string"), Ctx(spark), "left")
    right = DynamicFrame.fromDF(spark.createDataFrame([(1, "b")], "rid long, y string"), Ctx(spark), "right")
    joined = left.join(["id"], ["rid"], right)
    assert joined.name == "leftright"
    assert records(joined.toDF()) == [{"id": 1, "x": "a", "rid": 1, "y": "b"}]


def test_split_fields_returns_a_named_collection(spark: SparkSession) -> None:
    dyf = DynamicFrame.fromDF(spark.createDataFrame([(1, "a", 2.0)], "id long, x string, z double"), Ctx(spark), "f")
    parts = dyf.split_fields(["id", "x"], "ids", "rest")
    assert sorted(parts.keys()) == ["ids", "rest"]
    assert parts["ids"].toDF().columns == ["id", "x"]
    assert parts["rest"].name == "rest"
