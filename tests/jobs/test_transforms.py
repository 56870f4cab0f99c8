"""The transform classes and DynamicFrameCollection through real DynamicFrames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from jobs.glue import ERROR_COLUMN
from jobs.glue.collection import DynamicFrameCollection
from jobs.glue.errors import ErrorThresholdExceededError
from jobs.glue.transforms import (
    ApplyMapping,
    Coalesce,
    DropFields,
    DropNullFields,
    ErrorsAsDynamicFrame,
    FillMissingValues,
    Filter,
    FindIncrementalMatches,
    FindMatches,
    FlatMap,
    Join,
    Map,
    MapToCollection,
    Relationalize,
    RenameField,
    Repartition,
    SelectFields,
    SelectFromCollection,
    Spigot,
    SplitFields,
    SplitRows,
    Unbox,
    Union,
    UnnestFrame,
)
from tests.jobs.glue_io_fixtures import glue_context, lake_root  # noqa: F401

dynamicframe = pytest.importorskip("jobs.glue.dynamicframe")
DynamicFrame = dynamicframe.DynamicFrame

pytestmark = pytest.mark.spark


def _frame(spark: SparkSession, glue_context: Any, rows: list[tuple[Any, ...]], ddl: str, name: str) -> Any:  # noqa: F811
    return DynamicFrame.fromDF(spark.createDataFrame(rows, ddl), glue_context, name)


@pytest.fixture
def people(spark: SparkSession, glue_context: Any) -> Any:  # noqa: F811
    rows = [
        ("p1", "Ann", 31, [("fax", "1"), ("phone", "2")], None),
        ("p2", "Bob", 15, [], None),
        ("p3", "Cy", 19, None, None),
    ]
    ddl = "id string, name string, age long, contact_details array<struct<type: string, value: string>>, junk string"
    return _frame(spark, glue_context, rows, ddl, "people")


@pytest.fixture
def memberships(spark: SparkSession, glue_context: Any) -> Any:  # noqa: F811
    rows = [("p1", "senate"), ("p1", "house"), ("p2", "house"), ("p9", "none")]
    return _frame(spark, glue_context, rows, "person_id string, org string", "memberships")


def _sorted(frame: Any, *cols: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in frame.toDF().select(*cols).collect())


def test_field_transforms(people: Any) -> None:
    mapped = ApplyMapping.apply(
        frame=people, mappings=[("id", "string", "pid", "string"), ("age", "long", "years", "int")]
    )
    assert mapped.toDF().columns == ["pid", "years"]
    assert DropFields.apply(people, ["junk", "contact_details"]).toDF().columns == ["id", "name", "age"]
    assert SelectFields.apply(frame=people, paths=["name"]).toDF().columns == ["name"]
    renamed = RenameField.apply(people, "name", "full_name")
    assert "full_name" in renamed.toDF().columns and "name" not in renamed.toDF().columns


def test_split_fields_and_rows_name_their_frames(people: Any) -> None:
    fields = SplitFields.apply(people, ["id", "name"])
    assert sorted(fields.keys()) == ["people1", "people2"]
    assert fields.select("people1").toDF().columns == ["id", "name"]
    assert "age" in fields.select("people2").toDF().columns
    named = SplitFields.apply(people, ["id"], "ids", "rest")
    assert sorted(named.keys()) == ["ids", "rest"]
    rows = SplitRows.apply(people, {"age": {">": 18}})
    assert sorted(rows.keys()) == ["frame1", "frame2"]
    assert _sorted(rows.select("frame1"), "id") == [("p1",), ("p3",)]
    assert _sorted(rows.select("frame2"), "id") == [("p2",)]


def test_join_keeps_both_keys(people: Any, memberships: Any) -> None:
    joined = Join.apply(people, memberships, "id", "person_id")
    assert _sorted(joined, "id", "person_id", "org") == [
        ("p1", "p1", "house"),
        ("p1", "p1", "senate"),
        ("p2", "p2", "house"),
    ]


def test_union_works_unlike_glue(people: Any, memberships: Any) -> None:
    both = Union.apply(people, memberships)
    assert both.count() == 7
    assert {"id", "person_id", "org"} <= set(both.toDF().columns)


def test_relationalize_falls_back_to_tempdir(people: Any, tmp_path: Path) -> None:
    from jobs.glue.runtime_args import last_args, set_last_args

    saved = last_args()
    set_last_args({"JOB_NAME": "t", "TempDir": str(tmp_path / "temp")})
    try:
        dfc = Relationalize.apply(frame=people, name="hist_root")
    finally:
        set_last_args(saved)
    assert isinstance(dfc, DynamicFrameCollection)
    assert list(dfc.keys()) == ["hist_root", "hist_root_contact_details"]
    assert list((tmp_path / "temp").rglob("*.parquet")), "Relationalize did not stage under --TempDir"
    child = dfc.select("hist_root_contact_details").toDF()
    assert child.columns[:2] == ["id", "index"] and child.count() == 2
    missing = SelectFromCollection.apply(dfc, "no_such_table")
    assert isinstance(missing, DynamicFrame) and missing.count() == 0


def test_unnest_and_unbox(spark: SparkSession, glue_context: Any) -> None:  # noqa: F811
    nested = _frame(spark, glue_context, [(1, ("x", 2))], "id long, s struct<a: string, b: long>", "n")
    assert UnnestFrame.apply(nested).toDF().columns == ["id", "s.a", "s.b"]
    raw = _frame(spark, glue_context, [(1, '{"k": 1}'), (2, "oops")], "id long, payload string", "raw")
    unboxed = Unbox.apply(raw, "payload", "json")
    assert unboxed.errorsCount() == 1
    good = unboxed.toDF().collect()
    assert [(r["id"], r["payload"]["k"]) for r in good] == [(1, 1)]
    errors = ErrorsAsDynamicFrame.apply(unboxed)
    assert errors.count() == 1


def test_unbox_errors_carry_the_stage_and_info_and_thresholds_apply(spark: SparkSession, glue_context: Any) -> None:  # noqa: F811
    rows = [(1, '{"k": 1}'), (2, "oops"), (3, "[1, 2]"), (4, '{"k": 4}')]
    raw = _frame(spark, glue_context, rows, "id long, payload string", "raw")
    unboxed = Unbox.apply(raw, "payload", "json", transformation_ctx="parse_payload", info="payload as json")
    assert unboxed.stageErrorsCount() == 2
    errors = sorted(
        (json.loads(r["error"]["record"])["id"], r["error"]["stage"], r["error"]["info"])
        for r in unboxed.errorsAsDynamicFrame().toDF().collect()
    )
    assert errors == [(2, "parse_payload", "payload as json"), (3, "parse_payload", "payload as json")]
    assert [(r["id"], r["payload"]["k"]) for r in unboxed.toDF().orderBy("id").collect()] == [(1, 1), (4, 4)]
    default_stage = raw.unbox("payload", "json")
    assert {r["error"]["stage"] for r in default_stage.errorsAsDynamicFrame().toDF().collect()} == {"unbox"}
    assert Unbox.apply(raw, "payload", "json", stageThreshold=2).count() == 2  # at the threshold: fine
    with pytest.raises(ErrorThresholdExceededError, match="'parse'.*2 error records in this stage"):
        Unbox.apply(raw, "payload", "json", transformation_ctx="parse", stageThreshold=1)
    with pytest.raises(ErrorThresholdExceededError, match="totalThreshold=1"):
        raw.unbox("payload", "json", totalThreshold=1)


def test_drop_null_fields_spigot_filter_map(people: Any, tmp_path: Path) -> None:
    cleaned = DropNullFields.apply(people)
    assert "junk" not in cleaned.toDF().columns and "id" in cleaned.toDF().columns
    out = Spigot.apply(people, str(tmp_path / "sample"), {"topk": 2})
    assert out.count() == 3
    lines = [json.loads(x) for p in (tmp_path / "sample").glob("part-*") for x in p.read_text().splitlines() if x]
    assert len(lines) == 2
    adults = Filter.apply(frame=people, f=lambda r: r["age"] >= 18)
    assert _sorted(adults, "id") == [("p1",), ("p3",)]

    def shout(r: Any) -> Any:
        r["name"] = r["name"].upper()
        return r

    assert _sorted(Map.apply(frame=people, f=shout), "name") == [("ANN",), ("BOB",), ("CY",)]


def test_repartition_and_coalesce(people: Any) -> None:
    assert Repartition.apply(people, 3).getNumPartitions() == 3
    assert Coalesce.apply(Repartition.apply(people, 3), 1).getNumPartitions() == 1


def test_collection_map_and_flatmap(people: Any, memberships: Any, glue_context: Any) -> None:  # noqa: F811
    dfc = DynamicFrameCollection([people, memberships], glue_context)
    assert list(dfc) == ["people", "memberships"] and len(dfc) == 2
    assert dfc["people"] is people
    seen: list[str] = []

    def count_ctx(frame: Any, ctx: str) -> Any:
        seen.append(ctx)
        return frame

    mapped = MapToCollection.apply(dfc, count_ctx, "stage")
    assert seen == ["stage:people", "stage:memberships"] and list(mapped.keys()) == ["people", "memberships"]
    with pytest.raises(TypeError, match="must return a DynamicFrame"):
        dfc.map(lambda frame, ctx: 1)
    flat = FlatMap.apply(
        DynamicFrameCollection({"people": people}, glue_context),
        SplitRows,
        "frame",
        comparison_dict={"age": {">": 18}},
        name1="adults",
        name2="minors",
    )
    assert sorted(flat.keys()) == ["adults", "minors"]
    assert flat.select("minors").count() == 1
    with pytest.raises(TypeError):
        DynamicFrameCollection("nope", glue_context)  # type: ignore[arg-type]


def test_ml_transforms(spark: SparkSession, glue_context: Any) -> None:  # noqa: F811
    rows = [(f"e{i}", "eng", 200) for i in range(6)] + [(f"o{i}", "ops", 100) for i in range(6)]
    rows.append(("gap", "ops", None))
    staff = _frame(spark, glue_context, rows, "name string, dept string, salary long", "staff")
    filled = FillMissingValues.apply(staff, "salary")
    assert isinstance(filled, DynamicFrame)
    got = {r["name"]: r["salary_filled"] for r in filled.toDF().collect()}
    assert got["gap"] == 100 and got["e1"] == 200
    dupes = _frame(
        spark,
        glue_context,
        [(1, "John Smith"), (2, "Jon Smith"), (3, "Mary Jones")],
        "pk long, name string",
        "dupes",
    )
    matched = FindMatches.apply(dupes, "tfm-123", key_columns=["name"], threshold=0.8, primary_key="pk")
    ids = {r["pk"]: r["match_id"] for r in matched.toDF().collect()}
    assert ids[1] == ids[2] != ids[3]
    assert ERROR_COLUMN not in matched.toDF().columns
    new = _frame(spark, glue_context, [(4, "Mary Jone")], "pk long, name string", "new")
    incremental = FindIncrementalMatches.apply(dupes, new, key_columns=["name"], threshold=0.8, primary_key="pk")
    inc = {r["pk"]: r["match_id"] for r in incremental.toDF().collect()}
    assert len(inc) == 4 and inc[4] == inc[3] != inc[1]
