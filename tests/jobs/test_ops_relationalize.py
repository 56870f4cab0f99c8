"""relationalize on legislators-like nested data: table names, columns, keys, reconstruction."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    NullType,
    StringType,
    StructField,
    StructType,
)

from jobs.glue import ERROR_COLUMN
from jobs.glue.ops.relationalize import relationalize
from tests.jobs.ops_helpers import encoded

pytestmark = pytest.mark.spark

CONTACT = StructType([StructField("type", StringType()), StructField("value", StringType())])
IDENT = StructType([StructField("scheme", StringType()), StructField("identifier", StringType())])
PERSONS = StructType(
    [
        StructField("id", StringType()),
        StructField("name", StructType([StructField("given", StringType()), StructField("family", StringType())])),
        StructField("contact_details", ArrayType(CONTACT)),
        StructField("identifiers", ArrayType(IDENT)),
        StructField("other_names", ArrayType(StringType())),
    ]
)
GOOD = [
    (
        "p1",
        ("Mike", "Ross"),
        [("fax", "202-225-1314"), ("phone", "202-225-3772"), ("twitter", "MikeRossUpdates")],
        [("bioguide", "R000563"), ("wikidata", "Q1")],
        ["Michael Ross"],
    ),
    ("p2", ("Shelley", "Capito"), [("twitter", "SenCapito")], [], ["S. Capito", "Shelley Moore Capito"]),
    ("p3", ("Chuck", None), None, [("bioguide", "G000386")], None),
]
ERRORS = [("p9", ("Bad", "Record"), [("fax", "000")], [("x", "y")], ["z"])]


@pytest.fixture(scope="module")
def persons(spark: SparkSession) -> DataFrame:
    return encoded(spark, PERSONS, GOOD, ERRORS)


@pytest.fixture(scope="module")
def tables(persons: DataFrame) -> dict[str, DataFrame]:
    return relationalize(persons, "hist_root", None, {})


def test_table_names_follow_glue(tables: dict[str, DataFrame]) -> None:
    assert list(tables) == [
        "hist_root",
        "hist_root_contact_details",
        "hist_root_identifiers",
        "hist_root_other_names",
    ]


def test_root_flattens_structs_and_replaces_arrays_by_long_keys(tables: dict[str, DataFrame]) -> None:
    root = tables["hist_root"]
    assert root.columns == [
        "id",
        "name.given",
        "name.family",
        "contact_details",
        "identifiers",
        "other_names",
        ERROR_COLUMN,
    ]
    types = dict(root.dtypes)
    assert types["contact_details"] == types["identifiers"] == types["other_names"] == "bigint"
    assert root.count() == 4
    rows = {r["id"]: r for r in root.collect()}
    assert rows["p1"]["name.given"] == "Mike" and rows["p3"]["name.family"] is None
    # a null array has a null key; an empty array still gets a key (and no child rows)
    assert rows["p3"]["contact_details"] is None and rows["p3"]["other_names"] is None
    assert rows["p2"]["identifiers"] is not None


def test_child_tables_have_id_index_and_flattened_elements(tables: dict[str, DataFrame]) -> None:
    contacts = tables["hist_root_contact_details"]
    assert contacts.columns == ["id", "index", "contact_details.val.type", "contact_details.val.value", ERROR_COLUMN]
    assert contacts.schema["id"].dataType == LongType()
    assert contacts.schema["index"].dataType == IntegerType()
    assert contacts.count() == 4  # 3 + 1 + 0 (null) from good records; none from the error record
    names = tables["hist_root_other_names"]
    assert names.columns == ["id", "index", "other_names.val", ERROR_COLUMN]
    assert names.count() == 3
    assert tables["hist_root_identifiers"].count() == 3
    assert contacts.where(F.col(ERROR_COLUMN).isNotNull()).count() == 0


def test_joining_children_to_root_reconstructs_the_arrays(tables: dict[str, DataFrame]) -> None:
    root, contacts = tables["hist_root"], tables["hist_root_contact_details"]
    keyed = root.select(F.col("id").alias("person"), "contact_details")
    joined = contacts.join(keyed, F.col("id") == F.col("contact_details"))
    got: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for r in joined.collect():
        got[r["person"]].append((r["index"], r["contact_details.val.type"], r["contact_details.val.value"]))
    expected = {
        "p1": [(0, "fax", "202-225-1314"), (1, "phone", "202-225-3772"), (2, "twitter", "MikeRossUpdates")],
        "p2": [(0, "twitter", "SenCapito")],
    }
    assert {k: sorted(v) for k, v in got.items()} == expected

    names = tables["hist_root_other_names"].join(
        root.select(F.col("id").alias("person"), "other_names"), F.col("id") == F.col("other_names")
    )
    by_person: dict[str, list[str]] = defaultdict(list)
    for r in names.orderBy("index").collect():
        by_person[r["person"]].append(r["other_names.val"])
    assert dict(by_person) == {"p1": ["Michael Ross"], "p2": ["S. Capito", "Shelley Moore Capito"]}


def test_error_records_stay_in_root_with_null_keys(tables: dict[str, DataFrame]) -> None:
    root = tables["hist_root"]
    bad = root.where(F.col(ERROR_COLUMN).isNotNull()).collect()
    assert len(bad) == 1
    assert bad[0]["id"] == "p9"
    assert bad[0]["contact_details"] is None and bad[0]["identifiers"] is None
    assert bad[0][ERROR_COLUMN]["message"] == "upstream failure"


def test_keys_are_stable_across_evaluations(tables: dict[str, DataFrame]) -> None:
    root = tables["hist_root"]
    first = sorted((r["id"], r["contact_details"]) for r in root.collect())
    second = sorted((r["id"], r["contact_details"]) for r in root.collect())
    assert first == second
    keys = [k for _, k in first if k is not None]
    assert len(keys) == len(set(keys))


NESTED = StructType(
    [
        StructField("id", LongType()),
        StructField(
            "memberships",
            ArrayType(
                StructType(
                    [
                        StructField("org", StringType()),
                        StructField("roles", ArrayType(StringType())),
                    ]
                )
            ),
        ),
        StructField("matrix", ArrayType(ArrayType(LongType()))),
    ]
)


def test_nested_arrays_recurse_with_dotted_table_names(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (1, [("senate", ["chair", "member"]), ("house", [])], [[1, 2], [3]]),
            (2, [("senate", ["member"])], None),
        ],
        NESTED,
    )
    tables = relationalize(df, "root", None, {})
    assert list(tables) == ["root", "root_memberships", "root_memberships.val.roles", "root_matrix", "root_matrix.val"]
    assert tables["root_memberships"].columns == ["id", "index", "memberships.val.org", "memberships.val.roles"]
    roles = tables["root_memberships.val.roles"]
    assert roles.columns == ["id", "index", "memberships.val.roles.val"]
    # walk root -> memberships -> roles and rebuild (person, org, role)
    chain = (
        tables["root"]
        .select(F.col("id").alias("person"), F.col("memberships").alias("mkey"))
        .join(tables["root_memberships"], F.col("mkey") == F.col("id"))
        .select("person", F.col("`memberships.val.org`").alias("org"), F.col("`memberships.val.roles`").alias("rkey"))
        .join(roles, F.col("rkey") == F.col("id"))
        .select("person", "org", F.col("`memberships.val.roles.val`").alias("role"))
    )
    assert sorted(tuple(r) for r in chain.collect()) == [
        (1, "senate", "chair"),
        (1, "senate", "member"),
        (2, "senate", "member"),
    ]
    inner = tables["root_matrix.val"]
    assert inner.columns == ["id", "index", "matrix.val.val"]
    assert sorted(r["matrix.val.val"] for r in inner.collect()) == [1, 2, 3]
    # no error column is invented for a frame that had none
    assert ERROR_COLUMN not in tables["root"].columns


def test_staging_path_writes_parquet_and_gives_the_same_tables(spark: SparkSession, tmp_path: Path) -> None:
    schema = StructType([*PERSONS.fields, StructField("nothing", NullType())])
    df = encoded(spark, schema, [(*g, None) for g in GOOD], [(*e, None) for e in ERRORS])
    staged = relationalize(df, "hist_root", str(tmp_path / "tmp"), {})
    memory = relationalize(df, "hist_root", None, {})
    assert list(staged) == list(memory)
    written = list((tmp_path / "tmp").rglob("*.parquet"))
    assert written, "intermediates were not written to the staging path"
    assert staged["hist_root"].schema["nothing"].dataType == NullType()
    for name in staged:
        assert staged[name].columns == memory[name].columns
        assert staged[name].count() == memory[name].count()
    contacts = staged["hist_root_contact_details"].join(
        staged["hist_root"].select(F.col("id").alias("person"), "contact_details"),
        F.col("id") == F.col("contact_details"),
    )
    assert sorted(r["contact_details.val.value"] for r in contacts.where(F.col("person") == "p1").collect()) == [
        "202-225-1314",
        "202-225-3772",
        "MikeRossUpdates",
    ]


def test_frame_without_arrays_is_only_flattened(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, ("a", ("b",)))], "id long, s struct<x: string, t: struct<y: string>>")
    tables = relationalize(df, "flat", None, {})
    assert list(tables) == ["flat"]
    assert tables["flat"].columns == ["id", "s.x", "s.t.y"]
    assert tables["flat"].first() is not None and tuple(tables["flat"].first()) == (1, "a", "b")  # type: ignore[arg-type]


def test_bad_root_name_is_rejected(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1,)], "id long")
    with pytest.raises(ValueError, match="root table name"):
        relationalize(df, "", None, {})
