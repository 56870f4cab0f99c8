"""The JSON reader's JVM helpers (``jobs/java/GlueJsonShape.java``, ``GlueJsonKinds.java``): the schema
pass and the data pass in the JVM give exactly what the Python passes give, on input chosen to hit every
rule (integer ranges, choices with and without a string branch, nested choices, duplicate keys, escapes,
malformed lines), and the access-log shape reads without any Python worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from jobs.glue import ERROR_COLUMN, inference
from jobs.glue import gluetypes as gt

C = gt.ChoiceType


def test_parse_shape_reads_every_construct() -> None:
    shape = '{"a":i,"b":l,"c":d,"d":s,"e":b,"f":n,"g":{},"h":[],"i":[i|s|n],"j":{"k\\"q\\u0001é":[{"x":i}|{"y":s}]}}'
    assert inference.parse_shape(shape) == gt.StructType(
        [
            gt.Field("a", gt.IntegerType()),
            gt.Field("b", gt.LongType()),
            gt.Field("c", gt.DoubleType()),
            gt.Field("d", gt.StringType()),
            gt.Field("e", gt.BooleanType()),
            gt.Field("f", gt.NullType()),
            gt.Field("g", gt.StructType()),
            gt.Field("h", gt.ArrayType(gt.NullType())),
            gt.Field("i", gt.ArrayType(C([gt.IntegerType(), gt.StringType()]))),
            gt.Field(
                "j",
                gt.StructType(
                    [
                        gt.Field(
                            'k"q\u0001é',
                            gt.ArrayType(
                                gt.StructType([gt.Field("x", gt.IntegerType()), gt.Field("y", gt.StringType())])
                            ),
                        )
                    ]
                ),
            ),
        ]
    )
    for bad in ("{", '{"a"i}', "[i", "x", '{"a":i}}'):
        with pytest.raises((ValueError, IndexError)):
            inference.parse_shape(bad)


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _plan(df: DataFrame) -> str:
    return str(df._jdf.queryExecution().optimizedPlan().toString())


def _rows(df: DataFrame) -> list[dict[str, Any]]:
    good = df.where(f"{ERROR_COLUMN} IS NULL").drop(ERROR_COLUMN).collect()
    return sorted((r.asDict(recursive=True) for r in good), key=lambda r: r["id"])


def _error_records(df: DataFrame) -> list[tuple[str, str]]:
    rows = df.where(f"{ERROR_COLUMN} IS NOT NULL").select(ERROR_COLUMN).collect()
    return sorted((r[0]["record"], r[0]["message"]) for r in rows)


# Every line a rule: see the comments. No top-level arrays and no string choice inside arrays, so the JVM
# data pass (Spark's parser + kinds) handles it all.
KINDS_CORPUS = [
    '{"id": 1, "n": 1, "s": "x", "c": 5, "st": {"a": 1, "b": "u"}, "arr": [1, 2], "b": true, "sc": {"k": 1},'
    ' "ac": [1], "dup": 1, "dup": "two", "empty": [], "nul": null, "uni\\"q\\u00e9": "v", "f": 1.5}',
    '{"id": 2, "n": 3000000000, "s": null, "c": "5", "st": {"a": "one"}, "arr": [], "b": "yes", "sc": "text",'
    ' "ac": "text2", "f": 2.0}',
    '{"id": 3, "n": 2.5, "c": 7.25, "st": null, "b": false, "sc": {"k": 2, "j": [1.5]}, "ac": [2, 3], "f": 3}',
    '{"id": 4, "n": ',  # truncated
    "",  # blank: skipped
    "   ",
    "42",  # not an object
    '{"id": 5} trailing',  # what follows the object is ignored, as Spark's JSON reader does
    '{"id": 6, "big": 123456789012345678901234567890, "neg": -2147483648, "negl": -2147483649}',
    '{"id": 7, "esc": "line\\nbreak \\"q\\" \\u00e9", "c": null, "f": -0.5}',
    '{"id": 8, "c": true, "sc": null}',
    '{"id": 9, "st": {"a": 2, "b": "first", "a": "dupnested"}}',  # nested duplicate: the last value wins
    "{'id': 10}",  # single quotes are not JSON
    '{"id": 11, "n": NaN}',  # nor is NaN
]

# String choices inside arrays and a top-level array of records: the Python data pass reads these.
PYTHON_PASS_CORPUS = [
    '{"id": 1, "mix": [1, "a", null], "st": [{"v": 1}, {"v": "x"}]}',
    '[{"id": 2, "mix": ["b"]}, {"id": 3}]',
    '{"id": 4, "mix": 7}',
    "{bad",
]


@pytest.mark.spark
@pytest.mark.parametrize("corpus", [KINDS_CORPUS, PYTHON_PASS_CORPUS], ids=["kinds", "python-pass"])
def test_jvm_and_python_typing_agree(spark: SparkSession, tmp_path: Path, corpus: list[str]) -> None:
    path = _write(tmp_path / "corpus.json", corpus)
    assert inference.jvm_json_helpers(spark)
    jvm = inference.read_json(spark, [path], {})
    jvm_schema, jvm_rows, jvm_errors = gt.from_spark_schema(jvm.schema), _rows(jvm), _error_records(jvm)
    saved = inference._jvm_missing
    inference._jvm_missing = "switched off by the test"
    try:
        python = inference.read_json(spark, [path], {})
        py_schema, py_rows, py_errors = gt.from_spark_schema(python.schema), _rows(python), _error_records(python)
    finally:
        inference._jvm_missing = saved
    assert jvm_schema == py_schema
    assert jvm_rows == py_rows
    assert [r for r, _ in jvm_errors] == [r for r, _ in py_errors]
    assert all(m.startswith(inference.MALFORMED_JSON) for _, m in jvm_errors + py_errors)
    if corpus is KINDS_CORPUS:
        assert "lakeforge_json_kinds" in _plan(jvm) and "MapInArrow" not in _plan(jvm)
        assert "MapInArrow" in _plan(python)
        assert [r for r, _ in jvm_errors] == sorted(['{"id": 4, "n": ', "42", "{'id': 10}", '{"id": 11, "n": NaN}'])
        assert dict(jvm_errors)["42"] == f"{inference.MALFORMED_JSON}: not a JSON object (got int)"
        fields = {f.name: f.dataType for f in jvm_schema.fields}
        assert fields["n"] == C([gt.IntegerType(), gt.LongType(), gt.DoubleType()])
        assert fields["c"] == C([gt.IntegerType(), gt.StringType(), gt.DoubleType(), gt.BooleanType()])
        assert fields["sc"] == C(
            [
                gt.StructType([gt.Field("k", gt.IntegerType()), gt.Field("j", gt.ArrayType(gt.DoubleType()))]),
                gt.StringType(),
            ]
        )
        assert fields["st"] == gt.StructType(
            [gt.Field("a", C([gt.IntegerType(), gt.StringType()])), gt.Field("b", gt.StringType())]
        )
        assert fields["dup"] == gt.StringType() and fields["big"] == gt.DoubleType() and fields["negl"] == gt.LongType()
        by_id = {r["id"]: r for r in jvm_rows}
        assert sorted(by_id) == [1, 2, 3, 5, 6, 7, 8, 9]
        assert by_id[2]["c"] == {"double": None, "boolean": None, "int": None, "string": "5"}
        assert by_id[1]["c"]["int"] == 5 and by_id[3]["c"]["double"] == 7.25 and by_id[8]["c"]["boolean"] is True
        assert by_id[9]["st"] == {"a": {"int": None, "string": "dupnested"}, "b": "first"}
        assert by_id[3]["sc"]["struct"] == {"k": 2, "j": [1.5]} and by_id[2]["ac"]["string"] == "text2"
        assert by_id[7]["esc"] == 'line\nbreak "q" é' and by_id[1]['uni"qé'] == "v"
    else:
        assert "MapInArrow" in _plan(jvm)
        assert sorted(r["id"] for r in jvm_rows) == [1, 2, 3, 4]


@pytest.mark.spark
def test_access_log_shaped_input_reads_without_python_workers(spark: SparkSession, tmp_path: Path) -> None:
    from jobs.datagen import generate_access_logs

    summary = generate_access_logs(tmp_path / "logs", 3000, 1, 2, seed=3, bad_fraction=0.02)
    files = [str(p) for p in sorted((tmp_path / "logs").rglob("*.json"))]
    df = inference.read_json(spark, files, {})
    assert "lakeforge_json_kinds" in _plan(df) and "MapInArrow" not in _plan(df)
    schema = gt.from_spark_schema(df.schema)
    assert schema["status"].dataType == C([gt.IntegerType(), gt.StringType()])
    assert schema["latency_ms"].dataType == C([gt.DoubleType(), gt.StringType()])
    counts = df.selectExpr(
        f"count_if({ERROR_COLUMN} IS NULL) AS good",
        f"count_if({ERROR_COLUMN} IS NOT NULL) AS bad",
        "count(status.string) AS status_strings",
        "count(latency_ms.string) AS latency_strings",
    ).first()
    assert counts is not None
    assert counts.asDict() == {
        "good": summary.good,
        "bad": summary.bad,
        "status_strings": summary.status_strings,
        "latency_strings": summary.latency_strings,
    }
    expected: dict[str, Any] = {}
    for path in files:
        for line in Path(path).read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            expected[record["request_id"]] = (record["status"], record["latency_ms"])
    got = {
        r["request_id"]: (
            r["status"]["int"] if r["status"]["int"] is not None else r["status"]["string"],
            r["latency_ms"]["double"] if r["latency_ms"]["double"] is not None else r["latency_ms"]["string"],
        )
        for r in df.where(f"{ERROR_COLUMN} IS NULL").select("request_id", "status", "latency_ms").collect()
    }
    assert got == expected
