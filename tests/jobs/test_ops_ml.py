"""The local stand-ins of Glue's ML transforms: fill_missing_values and find_matches."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

from jobs.glue import ERROR_COLUMN
from jobs.glue.ops.ml import fill_missing_values, find_matches
from tests.jobs.ops_helpers import encoded

pytestmark = pytest.mark.spark

STAFF = StructType(
    [
        StructField("name", StringType()),
        StructField("dept", StringType()),
        StructField("years", LongType()),
        StructField("salary", LongType()),
    ]
)


def _staff_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i in range(12):
        rows.append((f"a{i}", "eng", i, 200 + (i % 2)))
        rows.append((f"b{i}", "ops", i, 100 + (i % 2)))
    rows += [("gap-eng", "eng", 5, None), ("gap-ops", "ops", 3, None)]
    return rows


def test_fill_missing_numeric_learns_from_other_columns(spark: SparkSession) -> None:
    df = encoded(spark, STAFF, _staff_rows(), [("err", "eng", 1, None)])
    out = fill_missing_values(df, "salary")
    assert out.columns == ["name", "dept", "years", "salary", "salary_filled", ERROR_COLUMN]
    assert out.schema["salary_filled"].dataType == LongType()
    rows = {r["name"]: r for r in out.collect()}
    assert rows["gap-eng"]["salary"] is None  # the source column is left as it is
    assert 199 <= rows["gap-eng"]["salary_filled"] <= 202
    assert 99 <= rows["gap-ops"]["salary_filled"] <= 102
    assert rows["a3"]["salary_filled"] == rows["a3"]["salary"] == 201  # present values are copied
    assert rows["err"]["salary_filled"] is None and rows["err"][ERROR_COLUMN] is not None
    again = {r["name"]: r["salary_filled"] for r in fill_missing_values(df, "salary").collect()}
    assert again == {n: r["salary_filled"] for n, r in rows.items()}  # deterministic


def test_fill_missing_string_treats_empty_as_missing(spark: SparkSession) -> None:
    schema = StructType([StructField("country", StringType()), StructField("city", StringType())])
    rows = [("FR", "Paris")] * 5 + [("NO", "Oslo")] * 5 + [("FR", ""), ("NO", None)]
    df = spark.createDataFrame(rows, schema)
    out = fill_missing_values(df, "city", "city_guess")
    got = sorted((r["country"], r["city"], r["city_guess"]) for r in out.collect() if r["city"] in ("", None))
    assert got == [("FR", "", "Paris"), ("NO", None, "Oslo")]


def test_fill_missing_without_features_uses_the_median(spark: SparkSession) -> None:
    schema = StructType([StructField("v", DoubleType()), StructField("blob", ArrayType(StringType()))])
    df = spark.createDataFrame([(1.0, []), (2.0, []), (30.0, []), (None, [])], schema)
    out = fill_missing_values(df, "v")
    assert sorted(r["v_filled"] for r in out.collect()) == [1.0, 2.0, 2.0, 30.0]


def test_fill_missing_rejects_bad_columns(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, ["x"])], "v long, a array<string>")
    with pytest.raises(ValueError, match="'nope' not found"):
        fill_missing_values(df, "nope")
    with pytest.raises(ValueError, match="only numeric, string and boolean"):
        fill_missing_values(df, "a")


PEOPLE = StructType(
    [
        StructField("pk", LongType()),
        StructField("name", StringType()),
        StructField("street", StringType()),
        StructField("note", StringType()),
    ]
)
PEOPLE_ROWS = [
    (1, "John Smith", "12 Main Street", "a"),
    (2, "Jon Smith", "12 Main Street", "b"),
    (3, "JOHN SMITH.", "12, main street", "c"),
    (4, "Mary Jones", "4 Oak Avenue", "d"),
    (5, "Marie Jones", "4 Oak Avenue", "e"),
    (6, "Peter Brown", "99 Elm Road", "f"),
    (7, None, None, "g"),
]


def test_find_matches_groups_similar_records(spark: SparkSession) -> None:
    df = encoded(spark, PEOPLE, PEOPLE_ROWS, [(8, "John Smith", "12 Main Street", "err")])
    out = find_matches(df, ["name", "street"], 0.8, primary_key="pk")
    assert out.columns == ["pk", "name", "street", "note", "match_id", ERROR_COLUMN]
    ids = {r["pk"]: r["match_id"] for r in out.collect()}
    assert ids[1] == ids[2] == ids[3] == 1
    assert ids[4] == ids[5] == 4
    assert ids[6] == 6 and ids[7] == 7
    assert ids[8] is None  # error records are not matched
    again = {r["pk"]: r["match_id"] for r in find_matches(df, ["name", "street"], 0.8, primary_key="pk").collect()}
    assert again == ids


def test_find_matches_threshold_and_confidence(spark: SparkSession) -> None:
    df = spark.createDataFrame(PEOPLE_ROWS, PEOPLE)
    strict = {r["pk"]: r for r in find_matches(df, ["name"], 0.99, compute_confidence=True).collect()}
    # only the exact (normalised) duplicates remain together at 0.99
    assert strict[1]["match_id"] == strict[3]["match_id"] != strict[2]["match_id"]
    assert strict[1]["match_confidence_score"] == pytest.approx(1.0)
    assert strict[6]["match_confidence_score"] is None
    # default key columns include every string column: the differing notes keep records apart at 0.9
    loose = {r["pk"]: r["match_id"] for r in find_matches(df, None, 0.9, primary_key="pk").collect()}
    assert len(set(loose.values())) == 7


def test_find_matches_rejects_bad_arguments(spark: SparkSession) -> None:
    df = spark.createDataFrame(PEOPLE_ROWS, PEOPLE)
    with pytest.raises(ValueError, match="threshold"):
        find_matches(df, ["name"], 0.0)
    with pytest.raises(ValueError, match=r"key column\(s\) \['nope'\] not found"):
        find_matches(df, ["nope"], 0.9)
    with pytest.raises(ValueError, match="primary key column 'id' not found"):
        find_matches(df, ["name"], 0.9, primary_key="id")
