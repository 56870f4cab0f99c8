"""Glue's self-describing readers: per-value typing, choices, error records for malformed input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from jobs.glue import ERROR_COLUMN, inference
from jobs.glue import gluetypes as gt

pytestmark = pytest.mark.spark


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _schema(df: DataFrame) -> gt.StructType:
    return gt.from_spark_schema(df.schema)


def _good(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict(recursive=True) for r in df.where(f"{ERROR_COLUMN} IS NULL").drop(ERROR_COLUMN).collect()]


def _errors(df: DataFrame) -> list[dict[str, Any]]:
    return [r[ERROR_COLUMN].asDict() for r in df.where(f"{ERROR_COLUMN} IS NOT NULL").collect()]


def choice(*types: gt.DataType) -> gt.ChoiceType:
    return gt.ChoiceType(types)


# -- JSON --------------------------------------------------------------------------------------------


def test_json_types_are_inferred_per_value_and_merged(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.json",
        [
            json.dumps({"id": 1, "name": "a", "score": 1.5, "tags": ["x"], "nested": {"k": 1}, "none": None}),
            json.dumps({"id": 3000000000, "name": "b", "score": 2, "tags": [1, "y"], "nested": {"k": "s", "z": None}}),
            json.dumps({"id": 2, "name": None, "score": None, "extra": True}),
        ],
    )
    df = inference.read_json(spark, [path], {})
    assert _schema(df) == gt.StructType(
        [
            gt.Field("id", choice(gt.IntegerType(), gt.LongType())),
            gt.Field("name", gt.StringType()),
            gt.Field("score", choice(gt.DoubleType(), gt.IntegerType())),
            gt.Field("tags", gt.ArrayType(choice(gt.IntegerType(), gt.StringType()))),
            gt.Field(
                "nested",
                gt.StructType([gt.Field("k", choice(gt.IntegerType(), gt.StringType())), gt.Field("z", gt.NullType())]),
            ),
            gt.Field("none", gt.NullType()),
            gt.Field("extra", gt.BooleanType()),
        ]
    )
    rows = _good(df)
    assert [r["id"] for r in rows] == [
        {"int": 1, "long": None},
        {"int": None, "long": 3000000000},
        {"int": 2, "long": None},
    ]
    assert rows[1]["score"] == {"double": None, "int": 2}
    assert rows[1]["tags"] == [{"int": 1, "string": None}, {"int": None, "string": "y"}]
    assert rows[0]["nested"] == {"k": {"int": 1, "string": None}, "z": None}
    assert rows[2]["extra"] is True and rows[0]["extra"] is None


def test_json_without_string_choices_reads_on_spark_parser(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "nums.json",
        [
            '{"a": 1, "b": {"c": 1.5}, "d": [1, 2.5]}',
            '{"a": 2.5, "b": {"c": 3}, "d": []}',
            '{"a": true, "b": [1]}',
        ],
    )
    df = inference.read_json(spark, [path], {})
    schema = _schema(df)
    assert schema["a"].dataType == choice(gt.BooleanType(), gt.DoubleType(), gt.IntegerType())
    assert schema["b"].dataType == choice(
        gt.ArrayType(gt.IntegerType()),
        gt.StructType([gt.Field("c", choice(gt.DoubleType(), gt.IntegerType()))]),
    )
    rows = _good(df)
    assert [r["a"] for r in rows] == [
        {"boolean": None, "double": None, "int": 1},
        {"boolean": None, "double": 2.5, "int": None},
        {"boolean": True, "double": None, "int": None},
    ]
    assert rows[0]["b"] == {"array": None, "struct": {"c": {"double": 1.5, "int": None}}}
    assert rows[2]["b"] == {"array": [1], "struct": None}
    assert rows[0]["d"] == [{"double": None, "int": 1}, {"double": 2.5, "int": None}]


def test_a_long_that_is_sometimes_a_string_is_a_choice(spark: SparkSession, tmp_path: Path) -> None:
    lines = [json.dumps({"provider id": 10000 + i, "n": i}) for i in range(50)]
    lines[7] = json.dumps({"provider id": "ABC", "n": 7})
    df = inference.read_json(spark, [_write(tmp_path / "p.json", lines)], {})
    assert _schema(df)["provider id"].dataType == choice(gt.IntegerType(), gt.StringType())
    values = [r["provider id"] for r in _good(df)]
    assert values[7] == {"int": None, "string": "ABC"}
    assert values[8] == {"int": 10008, "string": None}
    assert len(values) == 50


def test_malformed_json_lines_become_error_records_and_good_records_survive(
    spark: SparkSession, tmp_path: Path
) -> None:
    lines = [json.dumps({"i": i, "s": f"v{i}"}) for i in range(20)]
    lines.insert(5, '{"i": 99, "s": ')
    lines.insert(11, "not json at all")
    lines.insert(15, "")
    lines.insert(16, "42")
    df = inference.read_json(spark, [_write(tmp_path / "bad.json", lines)], {})
    good = _good(df)
    assert sorted(r["i"] for r in good) == list(range(20))
    errors = _errors(df)
    assert sorted(e["record"] for e in errors) == sorted(['{"i": 99, "s": ', "not json at all", "42"])
    assert all(e["message"].startswith(inference.MALFORMED_JSON) for e in errors)
    assert {e["stage"] for e in errors} == {inference.JSON_STAGE}
    assert df.where(f"{ERROR_COLUMN} IS NOT NULL").count() == 3


def test_malformed_lines_with_string_choices_keep_a_detailed_message(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", ['{"a": 1}', '{"a": "x"}', "{bad"])
    df = inference.read_json(spark, [path], {})
    (error,) = _errors(df)
    assert error["record"] == "{bad"
    assert error["message"].startswith(f"{inference.MALFORMED_JSON}: ")
    assert len(_good(df)) == 2


def test_integers_by_range(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ints.json",
        [
            json.dumps({"small": 2**31 - 1, "big": 2**40, "huge": 2**70, "neg": -(2**31)}),
            json.dumps({"small": -5, "big": -(2**40), "huge": 1.5, "neg": 0}),
        ],
    )
    schema = _schema(inference.read_json(spark, [path], {}))
    assert schema["small"].dataType == gt.IntegerType()
    assert schema["big"].dataType == gt.LongType()
    assert schema["huge"].dataType == gt.DoubleType()
    assert schema["neg"].dataType == gt.IntegerType()


def test_whole_doubles_stay_doubles_and_an_integer_token_makes_a_choice(spark: SparkSession, tmp_path: Path) -> None:
    floats = [json.dumps({"v": float(i) if i % 3 == 0 else i + 0.25}) for i in range(300)]
    assert '"v": 3.0' in floats[3]
    schema = _schema(inference.read_json(spark, [_write(tmp_path / "f.json", floats)], {}))
    assert schema["v"].dataType == gt.DoubleType()
    mixed = [*floats, '{"v": 7}']
    df = inference.read_json(spark, [_write(tmp_path / "m.json", mixed)], {})
    assert _schema(df)["v"].dataType == choice(gt.DoubleType(), gt.IntegerType())
    assert _good(df)[-1]["v"] == {"double": None, "int": 7}
    assert _good(df)[3]["v"] == {"double": 3.0, "int": None}


def test_top_level_arrays_hold_several_records(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "arr.json", ['[{"a": 1}, {"a": 2}]', '{"a": 3}', '[{"a": 4}, 5]'])
    df = inference.read_json(spark, [path], {})
    assert sorted(r["a"] for r in _good(df)) == [1, 2, 3, 4]
    (error,) = _errors(df)
    assert "not a JSON object" in error["message"]


def test_multiline_documents(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text(
        '{\n  "a": 1,\n  "b": {"c": "x"}\n}\n{"a": 2,\n "b": {"c": "y"}}\n[\n {"a": 3}\n]\n{"a": 4, oops\n'
    )
    df = inference.read_json(spark, [str(tmp_path / "doc.json")], {"multiline": True})
    assert sorted(r["a"] for r in _good(df)) == [1, 2, 3]
    (error,) = _errors(df)
    assert error["record"].startswith('{"a": 4, oops')


def test_json_path_selects_records(spark: SparkSession, tmp_path: Path) -> None:
    doc = {"meta": {"n": 2}, "data": {"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2.5}]}}
    path = _write(tmp_path / "doc.json", [json.dumps(doc), json.dumps({"data": {"items": [{"sku": "c"}]}})])
    df = inference.read_json(spark, [path], {"jsonPath": "$.data.items[*]"})
    assert [r["sku"] for r in _good(df)] == ["a", "b", "c"]
    assert _schema(df)["qty"].dataType == choice(gt.DoubleType(), gt.IntegerType())


@pytest.mark.parametrize(
    ("path", "steps"),
    [("$.a.b[*]", ["a", "b", None]), ("$['a'][0]", ["a", 0]), ("$[*]", [None]), ("$", [])],
)
def test_json_path_syntax(path: str, steps: list[Any]) -> None:
    assert inference.parse_json_path(path) == steps


def test_compressed_and_uri_paths(spark: SparkSession, tmp_path: Path) -> None:
    plain = _write(tmp_path / "a.json", ['{"a": 1}', '{"a": 2}'])
    packed = tmp_path / "b.json.gz"
    with gzip.open(packed, "wt") as f:
        f.write('{"a": 3}\n{"a": "x"}\n')
    df = inference.read_json(spark, [f"file://{plain}", str(packed)], {})
    assert _schema(df)["a"].dataType == choice(gt.IntegerType(), gt.StringType())
    assert sorted(str(r["a"]) for r in _good(df)) == sorted(
        str(v)
        for v in [
            {"int": 1, "string": None},
            {"int": 2, "string": None},
            {"int": 3, "string": None},
            {"int": None, "string": "x"},
        ]
    )


def test_file_splits_cover_every_line_once(tmp_path: Path) -> None:
    lines = [json.dumps({"i": i, "pad": "x" * (i % 17)}) for i in range(5000)]
    path = _write(tmp_path / "big.json", lines)
    size = Path(path).stat().st_size
    seen: list[int] = []
    step = size // 7 + 3
    for start in range(0, size, step):
        for chunk in inference._split_chunks(path, start, min(step, size - start)):
            seen.extend(json.loads(line)["i"] for line in chunk.splitlines() if line.strip())
    assert seen == list(range(5000))


def test_empty_input(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.json", [""])
    df = inference.read_json(spark, [path], {})
    assert df.columns == [ERROR_COLUMN]
    assert df.count() == 0


# -- CSV ---------------------------------------------------------------------------------------------


MEDICARE = [
    "DRG Definition,Provider Id,Provider Name,Total Discharges,Average Covered Charges",
    "039 - EXTRACRANIAL PROCEDURES,10001,SOUTHEAST ALABAMA MEDICAL CENTER,91,32963.07",
    "039 - EXTRACRANIAL PROCEDURES,10005,MARSHALL MEDICAL CENTER SOUTH,14,15131.85",
    "039 - EXTRACRANIAL PROCEDURES,ABC-1,CREST HOSPITAL,24,37560.37",
    '039 - EXTRACRANIAL PROCEDURES,10011,"ST VINCENT\'S, EAST",25,13998.28',
    "039 - EXTRACRANIAL PROCEDURES,XYZ,PROVIDENCE,18,",
]


def test_csv_per_value_types_make_the_medicare_choice(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "medicare.csv", MEDICARE)
    df = inference.read_csv(spark, [path], {"withHeader": True})
    schema = _schema(df)
    assert schema.names() == [
        "DRG Definition",
        "Provider Id",
        "Provider Name",
        "Total Discharges",
        "Average Covered Charges",
    ]
    assert schema["Provider Id"].dataType == choice(gt.LongType(), gt.StringType())
    assert schema["Total Discharges"].dataType == gt.LongType()
    assert schema["Average Covered Charges"].dataType == gt.DoubleType()
    assert schema["DRG Definition"].dataType == gt.StringType()
    rows = _good(df)
    assert [r["Provider Id"] for r in rows] == [
        {"long": 10001, "string": None},
        {"long": 10005, "string": None},
        {"long": None, "string": "ABC-1"},
        {"long": 10011, "string": None},
        {"long": None, "string": "XYZ"},
    ]
    assert rows[3]["Provider Name"] == "ST VINCENT'S, EAST"
    assert rows[4]["Average Covered Charges"] is None


def test_csv_rows_with_the_wrong_number_of_columns_are_errors(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "short.csv", ["a,b,c", "1,2,3", "4,5", "6,7,8,9", "10,,12", ",,"])
    df = inference.read_csv(spark, [path], {})
    assert _schema(df).names() == ["col0", "col1", "col2"]
    good = _good(df)
    assert [r["col0"] for r in good] == [
        {"long": None, "string": "a"},
        {"long": 1, "string": None},
        {"long": 10, "string": None},
        None,
    ]
    assert good[2]["col1"] is None and good[2]["col2"] == {"long": 12, "string": None}
    errors = _errors(df)
    assert sorted(e["record"] for e in errors) == ["4,5", "6,7,8,9"]
    assert all(e["message"] == "Malformed CSV record: expected 3 columns" for e in errors)
    assert df.where(f"{ERROR_COLUMN} IS NOT NULL").count() == 2


def test_csv_numbers_without_header(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", ["1,2.5,x,", "+3,-4e2,7,", "9223372036854775808,.5,y,"])
    df = inference.read_csv(spark, [path], {})
    schema = _schema(df)
    assert schema["col0"].dataType == choice(gt.DoubleType(), gt.LongType())
    assert schema["col1"].dataType == gt.DoubleType()
    assert schema["col2"].dataType == choice(gt.LongType(), gt.StringType())
    assert schema["col3"].dataType == gt.NullType()
    assert [r["col0"] for r in _good(df)] == [
        {"double": None, "long": 1},
        {"double": None, "long": 3},
        {"double": 9.223372036854776e18, "long": None},
    ]


def test_csv_separator_quote_and_skip_first(spark: SparkSession, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ["# exported", "id|name", '1|"a|b"', "2|c"])
    df = inference.read_csv(spark, [path], {"separator": "|", "skipFirst": True})
    assert [r["col1"] for r in _good(df)] == ["name", "a|b", "c"]
    unquoted = inference.read_csv(spark, [path], {"separator": "|", "skipFirst": True, "quoteChar": -1})
    assert [r["col1"] for r in _good(unquoted)] == ["name", "c"]
    assert [e["record"] for e in _errors(unquoted)] == ['1|"a|b"']


def test_csv_with_header_and_skip_first_drops_a_data_line_of_each_file(spark: SparkSession, tmp_path: Path) -> None:
    _write(tmp_path / "one.csv", ["id,v", "skip,me", "1,a", "2,b"])
    _write(tmp_path / "two.csv", ["id,v", "skip,me", "3,c"])
    paths = [str(tmp_path / "one.csv"), str(tmp_path / "two.csv")]
    df = inference.read_csv(spark, paths, {"withHeader": True, "skipFirst": True})
    assert sorted(r["id"] for r in _good(df)) == [1, 2, 3]
