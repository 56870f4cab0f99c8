"""Raw datasets of the lake's data catalog through ``/lakeforge/v1``: definitions, versions, partitions
and partition predicates, on a fresh in-process catalog per test."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import make_settings

LAKE = "/lakeforge/v1"
DS = f"{LAKE}/namespaces/raw/datasets"


def definition(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "format": "json",
        "location": "s3://landing/events",
        "columns": [{"name": "id", "type": "bigint"}, {"name": "payload", "type": "struct<a:int,b:array<string>>"}],
        "partition-keys": [{"name": "dt", "type": "string"}, {"name": "hour", "type": "int"}],
        "properties": {"classification": "json"},
    }
    body.update(overrides)
    return body


def error_of(response: Any, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == kind, error
    assert error["code"] == status
    return str(error["message"])


def audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{LAKE}/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def partition_values(client: TestClient, name: str, expression: str | None = None) -> set[tuple[Any, ...]]:
    """Every matching partition (all pages), as tuples of values; fails on duplicates across pages."""
    found: list[tuple[Any, ...]] = []
    token = None
    while True:
        params: dict[str, Any] = {"pageSize": 3}
        if expression:
            params["expression"] = expression
        if token:
            params["pageToken"] = token
        response = client.get(f"{DS}/{name}/partitions", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["partitions"]) <= 3
        found.extend(tuple(p["values"]) for p in body["partitions"])
        token = body["next-page-token"]
        if not token:
            break
    assert len(found) == len(set(found)), f"duplicates across pages: {found}"
    return set(found)


def add(client: TestClient, name: str, *values: list[Any], location: str | None = None) -> dict[str, Any]:
    """Add partitions (at ``location``, or a path made of the values) and return the response body."""
    partitions = [
        {"values": v, "location": location or f"s3://landing/{name}/" + "/".join(f"k{i}={x}" for i, x in enumerate(v))}
        for v in values
    ]
    response = client.post(f"{DS}/{name}/partitions", json={"partitions": partitions})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def lake(client: TestClient) -> TestClient:
    """The in-process catalog with an empty namespace ``raw``."""
    assert client.post("/v1/namespaces", json={"namespace": ["raw"]}).status_code == 200
    return client


@pytest.fixture
def events(lake: TestClient) -> TestClient:
    """Dataset ``raw.events`` partitioned by ``dt string, hour int``, with 3 days x hours {1, 2, 9, 10, 11}."""
    assert lake.post(DS, json={"name": "events", **definition()}).status_code == 200
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    add(lake, "events", *[[d, h] for d, h in itertools.product(days, [1, 2, 9, 10, 11])])
    return lake


ALL_EVENTS = {(d, str(h)) for d in ["2024-01-01", "2024-01-02", "2024-01-03"] for h in [1, 2, 9, 10, 11]}


# -- datasets ------------------------------------------------------------------------------------------
def test_create_and_load_keep_a_canonical_definition(lake: TestClient) -> None:
    body = definition(
        format="JSON",
        columns=[
            {"name": "id", "type": "BIGINT", "comment": "event id"},
            {"name": "n", "type": "long"},
            {"name": "amount", "type": "Decimal( 10, 2 )"},
            {"name": "payload", "type": "struct< a : int, `b c` : array< string > >"},
            {"name": "tags", "type": "map<string,array<struct<x:double>>>"},
        ],
    )
    created = lake.post(DS, json={"name": "events", **body})
    assert created.status_code == 200, created.text
    got = lake.get(f"{DS}/events").json()
    assert got == created.json()
    assert got["namespace"] == ["raw"] and got["name"] == "events" and got["version"] == 1
    assert got["created-ms"] == got["updated-ms"] > 0
    d = got["definition"]
    assert d["format"] == "json"
    assert [c["type"] for c in d["columns"]] == [
        "bigint",
        "bigint",
        "decimal(10,2)",
        "struct<a:int,`b c`:array<string>>",
        "map<string,array<struct<x:double>>>",
    ]
    assert d["columns"][0]["comment"] == "event id"
    assert d["partition-keys"] == [{"name": "dt", "type": "string"}, {"name": "hour", "type": "int"}]
    assert d["properties"] == {"classification": "json"}
    (entry,) = audit(lake, action="create-dataset")
    assert (entry["namespace"], entry["name"], entry["principal"]) == (["raw"], "events", "anonymous")
    assert entry["detail"]["version"] == 1


def test_create_conflicts_and_missing_namespace(lake: TestClient) -> None:
    assert lake.post(DS, json={"name": "events", **definition()}).status_code == 200
    again = lake.post(DS, json={"name": "events", **definition()})
    assert "already exists" in error_of(again, 409, "AlreadyExistsException")
    missing = lake.post(f"{LAKE}/namespaces/nope/datasets", json={"name": "x", **definition()})
    error_of(missing, 404, "NoSuchNamespaceException")
    put_missing = lake.put(f"{LAKE}/namespaces/nope/datasets/x", json=definition())
    error_of(put_missing, 404, "NoSuchNamespaceException")
    error_of(lake.get(f"{LAKE}/namespaces/nope/datasets"), 404, "NoSuchNamespaceException")


def test_a_dataset_cannot_take_the_name_of_a_table_or_view(lake: TestClient) -> None:
    schema = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    assert lake.post("/v1/namespaces/raw/tables", json={"name": "t", "schema": schema}).status_code == 200
    view = {
        "name": "v",
        "schema": schema,
        "view-version": {
            "version-id": 1,
            "schema-id": 0,
            "timestamp-ms": 1700000000000,
            "summary": {"engine-name": "spark"},
            "representations": [{"type": "sql", "sql": "select 1 as id", "dialect": "spark"}],
            "default-namespace": ["raw"],
        },
    }
    assert lake.post("/v1/namespaces/raw/views", json=view).status_code == 200
    for name, kind in (("t", "Table"), ("v", "View")):
        created = lake.post(DS, json={"name": name, **definition()})
        assert error_of(created, 409, "AlreadyExistsException").startswith(kind)
        put = lake.put(f"{DS}/{name}", json=definition())
        error_of(put, 409, "AlreadyExistsException")
    assert lake.get(DS).json()["datasets"] == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"format": "xml"}, "Invalid format"),
        ({"columns": [{"name": "id", "type": "bigintt"}]}, "unknown type 'bigintt'"),
        ({"columns": [{"name": "id", "type": "array<int"}]}, "Invalid type"),
        ({"columns": [{"name": "id", "type": "struct<a int>"}]}, "Invalid type"),
        ({"columns": [{"name": "id", "type": "decimal(40,2)"}]}, "precision"),
        ({"columns": [{"name": "id", "type": "int"}, {"name": "ID", "type": "int"}]}, "Duplicate name"),
        ({"columns": [{"name": "dt", "type": "int"}]}, "Duplicate name"),
        ({"columns": [{"name": "", "type": "int"}]}, "column name"),
        ({"columns": [{"name": "a\nb", "type": "int"}]}, "control characters"),
        ({"partition-keys": [{"name": "p", "type": "array<int>"}]}, "partition keys must be"),
        ({"partition-keys": [{"name": "p", "type": "binary"}]}, "partition keys must be"),
        ({"location": "http://example.com/x"}, "s3:// or file:"),
        ({"location": "relative/path"}, "s3:// or file:"),
        ({"location": "s3:///no-bucket"}, "bucket"),
        ({"location": "s3://b/a/../../etc"}, "'..'"),
        ({"location": "file:relative"}, "absolute"),
        ({"properties": {"": "x"}}, "property key"),
        ({"unknown-field": 1}, "unknown-field"),
    ],
)
def test_invalid_definitions_are_400_and_create_nothing(
    lake: TestClient, overrides: dict[str, Any], fragment: str
) -> None:
    response = lake.post(DS, json={"name": "events", **definition(**overrides)})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]
    assert lake.get(DS).json()["datasets"] == []
    assert audit(lake, action="create-dataset") == []


@pytest.mark.parametrize("name", ["a.b", "a/b", "a\\b", "x\x00", "\x1fx", " lead", "trail ", "", "n" * 256, "e\u0301"])
def test_hostile_names_are_400(lake: TestClient, name: str) -> None:
    response = lake.post(DS, json={"name": name, **definition()})
    error_of(response, 400, "IllegalArgumentException")
    assert lake.get(DS).json()["datasets"] == []


def test_hostile_names_in_paths_are_400(lake: TestClient) -> None:
    error_of(lake.get(f"{DS}/a.b"), 400, "IllegalArgumentException")
    error_of(lake.put(f"{DS}/a.b", json=definition()), 400, "IllegalArgumentException")
    error_of(lake.get(f"{DS}/x%01y/partitions"), 400, "IllegalArgumentException")
    error_of(lake.get(f"{LAKE}/namespaces/ra.w/datasets"), 400, "IllegalArgumentException")
    error_of(lake.get(f"{LAKE}/namespaces/raw%1F/datasets"), 400, "IllegalArgumentException")
    assert lake.get(DS).json()["datasets"] == []


def test_missing_dataset_is_404_everywhere(lake: TestClient) -> None:
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{DS}/nope", None),
        ("DELETE", f"{DS}/nope", None),
        ("GET", f"{DS}/nope/versions", None),
        ("GET", f"{DS}/nope/versions/1", None),
        ("GET", f"{DS}/nope/partitions", None),
        ("POST", f"{DS}/nope/partitions", {"partitions": []}),
        ("DELETE", f"{DS}/nope/partitions", {"values": [["a", 1]]}),
    ]
    for method, path, body in requests:
        response = lake.request(method, path, json=body)
        assert "nope" in error_of(response, 404, "NoSuchDatasetException")


def test_list_is_paginated_by_name(lake: TestClient) -> None:
    names = ["e", "a", "d", "b", "c"]
    for name in names:
        assert lake.post(DS, json={"name": name, **definition()}).status_code == 200
    pages: list[list[str]] = []
    token = None
    while True:
        params: dict[str, Any] = {"pageSize": 2, **({"pageToken": token} if token else {})}
        body = lake.get(DS, params=params).json()
        pages.append([d["name"] for d in body["datasets"]])
        assert all(d["definition"]["format"] == "json" for d in body["datasets"])
        token = body["next-page-token"]
        if not token:
            break
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert [d["name"] for d in lake.get(DS).json()["datasets"]] == sorted(names)


# -- versions ------------------------------------------------------------------------------------------
def test_put_versions_only_on_change(lake: TestClient) -> None:
    first = lake.put(f"{DS}/events", json=definition())
    assert first.status_code == 201, first.text
    assert (first.json()["created"], first.json()["changed"], first.json()["dataset"]["version"]) == (True, True, 1)

    # The same definition, spelled differently: no new version, no audit record.
    respelled = definition(
        format="Json",
        columns=[{"name": "id", "type": "BIGINT"}, {"name": "payload", "type": "struct<a: int, b: array<string>>"}],
        properties={"classification": "json"},
    )
    same = lake.put(f"{DS}/events", json=respelled)
    assert same.status_code == 200, same.text
    assert (same.json()["created"], same.json()["changed"], same.json()["dataset"]["version"]) == (False, False, 1)
    assert audit(lake, action="update-dataset") == []

    changed = definition(columns=[{"name": "id", "type": "bigint"}, {"name": "extra", "type": "string"}])
    second = lake.put(f"{DS}/events", json=changed)
    assert second.status_code == 200
    assert (second.json()["created"], second.json()["changed"], second.json()["dataset"]["version"]) == (
        False,
        True,
        2,
    )
    props = lake.put(f"{DS}/events", json={**changed, "properties": {"classification": "json", "compression": "gzip"}})
    assert props.json()["dataset"]["version"] == 3
    current = lake.get(f"{DS}/events").json()
    assert current["version"] == 3
    assert current["updated-ms"] >= current["created-ms"]
    assert current["definition"]["properties"]["compression"] == "gzip"

    versions = lake.get(f"{DS}/events/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["definition"]["columns"][1]["name"] == "payload"
    assert versions[1]["definition"]["columns"][1]["name"] == "extra"
    assert versions[2]["definition"] == current["definition"]
    assert all(v["principal"] == "anonymous" for v in versions)
    v1 = lake.get(f"{DS}/events/versions/1").json()
    assert v1 == versions[0]

    updates = audit(lake, action="update-dataset")
    assert [(e["detail"]["version"], e["detail"]["changed"]) for e in updates] == [
        (2, ["columns"]),
        (3, ["properties"]),
    ]

    error_of(lake.get(f"{DS}/events/versions/4"), 404, "NotFoundException")
    error_of(lake.get(f"{DS}/events/versions/0"), 400, "BadRequestException")
    error_of(lake.get(f"{DS}/events/versions/x"), 400, "BadRequestException")


def test_versions_are_paginated(lake: TestClient) -> None:
    for i in range(5):
        body = definition(properties={"run": str(i)})
        assert lake.put(f"{DS}/events", json=body).json()["dataset"]["version"] == i + 1
    seen: list[int] = []
    token = None
    while True:
        params: dict[str, Any] = {"pageSize": 2, **({"pageToken": token} if token else {})}
        body = lake.get(f"{DS}/events/versions", params=params).json()
        assert len(body["versions"]) <= 2
        seen.extend(v["version"] for v in body["versions"])
        token = body["next-page-token"]
        if not token:
            break
    assert seen == [1, 2, 3, 4, 5]
    error_of(lake.get(f"{DS}/events/versions", params={"pageToken": "zz"}), 400, "IllegalArgumentException")


def test_partition_keys_cannot_change_while_partitions_exist(events: TestClient) -> None:
    moved = definition(**{"partition-keys": [{"name": "dt", "type": "string"}]})
    response = events.put(f"{DS}/events", json=moved)
    assert "partition keys" in error_of(response, 400, "IllegalArgumentException")
    assert events.get(f"{DS}/events").json()["version"] == 1
    # A comment on a key is not a key change.
    commented = definition(
        **{"partition-keys": [{"name": "dt", "type": "string", "comment": "day"}, {"name": "hour", "type": "int"}]}
    )
    assert events.put(f"{DS}/events", json=commented).json()["dataset"]["version"] == 2
    everything = [list(v) for v in ALL_EVENTS]
    deleted = events.request("DELETE", f"{DS}/events/partitions", json={"values": everything})
    assert len(deleted.json()["deleted"]) == len(ALL_EVENTS)
    assert events.put(f"{DS}/events", json=moved).json()["dataset"]["version"] == 3


# -- partitions ----------------------------------------------------------------------------------------
def test_adding_partitions_is_idempotent(events: TestClient) -> None:
    assert partition_values(events, "events") == ALL_EVENTS
    before = len(audit(events, action="add-partitions"))
    again = add(events, "events", ["2024-01-01", 1], ["2024-01-01", 2], ["2024-01-04", 5])
    assert again["added"] == [["2024-01-04", "5"]]
    assert sorted(again["existing"]) == [["2024-01-01", "1"], ["2024-01-01", "2"]]
    assert again["replaced"] == []
    assert partition_values(events, "events") == ALL_EVENTS | {("2024-01-04", "5")}
    records = audit(events, action="add-partitions")
    assert len(records) == before + 1
    assert records[-1]["detail"]["added"] == 1 and records[-1]["detail"]["existing"] == 2

    # Nothing new at all: no audit record.
    add(events, "events", ["2024-01-04", 5])
    assert len(audit(events, action="add-partitions")) == before + 1


def test_typed_and_string_values_are_the_same_partition(lake: TestClient) -> None:
    keys = [{"name": "hour", "type": "int"}, {"name": "ok", "type": "boolean"}, {"name": "d", "type": "date"}]
    assert lake.post(DS, json={"name": "t", **definition(**{"partition-keys": keys})}).status_code == 200
    first = add(lake, "t", ["03", "TRUE", "2024-01-02"], location="s3://landing/t/p")
    assert first["added"] == [["3", "true", "2024-01-02"]]
    same = add(lake, "t", [3, True, "2024-01-02"], location="s3://landing/t/p")
    assert same["existing"] == [["3", "true", "2024-01-02"]] and same["added"] == []
    assert partition_values(lake, "t") == {("3", "true", "2024-01-02")}


def test_a_partition_with_another_location_is_409_unless_replaced(events: TestClient) -> None:
    other = {"values": ["2024-01-01", 1], "location": "s3://elsewhere/x"}
    new = {"values": ["2024-02-01", 1], "location": "s3://landing/events/new"}
    response = events.post(f"{DS}/events/partitions", json={"partitions": [new, other]})
    assert "already exists" in error_of(response, 409, "AlreadyExistsException")
    assert partition_values(events, "events") == ALL_EVENTS  # all or nothing: `new` was not added

    replaced = events.post(f"{DS}/events/partitions", json={"partitions": [other], "replace": True}).json()
    assert replaced == {"added": [], "existing": [], "replaced": [["2024-01-01", "1"]]}
    listed = events.get(f"{DS}/events/partitions", params={"expression": "dt = '2024-01-01' and hour = 1"}).json()
    assert [p["location"] for p in listed["partitions"]] == ["s3://elsewhere/x"]


def test_partition_parameters_are_kept(events: TestClient) -> None:
    body = {"values": ["2024-05-01", 0], "location": "s3://landing/p", "parameters": {"numRows": "10"}}
    assert events.post(f"{DS}/events/partitions", json={"partitions": [body]}).status_code == 200
    (found,) = events.get(f"{DS}/events/partitions", params={"expression": "dt = '2024-05-01'"}).json()["partitions"]
    assert found["parameters"] == {"numRows": "10"} and found["values"] == ["2024-05-01", "0"]
    assert found["created-ms"] > 0


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["2024-01-01"], "expected 2 values"),
        (["2024-01-01", 1, 2], "expected 2 values"),
        (["2024-01-01", "abc"], "not an integer"),
        (["2024-01-01", True], "not an integer"),
        (["2024-01-01", 1.5], "not an integer"),
        (["2024-01-01", 2**31], "out of the range"),
        ([20240101, 1], "must be a JSON string"),
    ],
)
def test_partition_values_must_match_the_keys(events: TestClient, values: list[Any], fragment: str) -> None:
    good = {"values": ["2024-09-09", 9], "location": "s3://landing/good"}
    bad = {"values": values, "location": "s3://landing/bad"}
    response = events.post(f"{DS}/events/partitions", json={"partitions": [good, bad]})
    assert fragment in error_of(response, 400, "IllegalArgumentException")
    assert partition_values(events, "events") == ALL_EVENTS


def test_partition_values_of_other_types_are_checked(lake: TestClient) -> None:
    keys = [
        {"name": "d", "type": "date"},
        {"name": "small", "type": "tinyint"},
        {"name": "price", "type": "decimal(5,2)"},
        {"name": "code", "type": "varchar(3)"},
    ]
    assert lake.post(DS, json={"name": "t", **definition(**{"partition-keys": keys})}).status_code == 200
    assert add(lake, "t", ["2024-02-29", "-128", "1.5", "abc"])["added"] == [["2024-02-29", "-128", "1.50", "abc"]]
    for values in (
        ["2023-02-29", 1, "1", "a"],
        ["02/01/2024", 1, "1", "a"],
        ["2024-01-01", 128, "1", "a"],
        ["2024-01-01", 1, "1.234", "a"],
        ["2024-01-01", 1, "1000", "a"],
        ["2024-01-01", 1, "x", "a"],
        ["2024-01-01", 1, "1", "abcd"],
    ):
        response = lake.post(f"{DS}/t/partitions", json={"partitions": [{"values": values, "location": "s3://b/x"}]})
        error_of(response, 400, "IllegalArgumentException")
    assert len(partition_values(lake, "t")) == 1


def test_unpartitioned_datasets_have_no_partitions(lake: TestClient) -> None:
    assert lake.post(DS, json={"name": "flat", **definition(**{"partition-keys": []})}).status_code == 200
    response = lake.post(f"{DS}/flat/partitions", json={"partitions": [{"values": [], "location": "s3://b/x"}]})
    assert "no partition keys" in error_of(response, 400, "IllegalArgumentException")
    assert lake.get(f"{DS}/flat/partitions").json() == {"partitions": [], "next-page-token": None}


def test_partition_locations_are_validated(events: TestClient) -> None:
    for location in ("http://x/y", "s3:///nobucket", "file:relative", ""):
        body = {"partitions": [{"values": ["2024-09-09", 9], "location": location}]}
        error_of(events.post(f"{DS}/events/partitions", json=body), 400, "IllegalArgumentException")
    assert partition_values(events, "events") == ALL_EVENTS


@pytest.mark.parametrize(
    ("expression", "keep"),
    [
        ("dt >= '2024-01-02' and hour = 3", lambda d, h: False),
        ("dt >= '2024-01-02' and hour = 9", lambda d, h: d >= "2024-01-02" and h == 9),
        ("dt = '2024-01-01' or hour > 9", lambda d, h: d == "2024-01-01" or h > 9),
        # Integer keys compare as numbers: "10" > "9" is false as strings.
        ("hour > 9", lambda d, h: h > 9),
        ("hour >= 2 and hour < 10", lambda d, h: 2 <= h < 10),
        ("hour <= 2", lambda d, h: h <= 2),
        ("hour != 9", lambda d, h: h != 9),
        ("not hour = 9", lambda d, h: h != 9),
        ("hour in (1, 10)", lambda d, h: h in (1, 10)),
        ("hour not in (1, 10)", lambda d, h: h not in (1, 10)),
        ("dt in ('2024-01-01', '2024-01-03')", lambda d, h: d in ("2024-01-01", "2024-01-03")),
        ("hour between 2 and 10", lambda d, h: 2 <= h <= 10),
        (
            "(dt = '2024-01-03' or dt = '2024-01-01') and hour in (2, 11)",
            lambda d, h: d != "2024-01-02" and h in (2, 11),
        ),
        ("dt like '2024-01-0%'", lambda d, h: True),
        ("dt < '2024-01-02'", lambda d, h: d < "2024-01-02"),
        ("HOUR = 10 and Dt = '2024-01-02'", lambda d, h: h == 10 and d == "2024-01-02"),
        ("hour = '10'", lambda d, h: h == 10),
        # Spark-style spelling, as Glue scripts write push_down_predicate.
        ("dt == '2024-01-02' AND hour IN (1, 2)", lambda d, h: d == "2024-01-02" and h in (1, 2)),
        ("NOT (hour <> 9) OR dt = '2024-01-03'", lambda d, h: h == 9 or d == "2024-01-03"),
        ("hour is null", lambda d, h: False),
        ("true", lambda d, h: True),
        ("false", lambda d, h: False),
    ],
)
def test_predicates_prune_partitions(events: TestClient, expression: str, keep: Any) -> None:
    expected = {(d, h) for d, h in ALL_EVENTS if keep(d, int(h))}
    assert partition_values(events, "events", expression) == expected


def test_predicates_on_bigint_and_date_keys(lake: TestClient) -> None:
    keys = [{"name": "d", "type": "date"}, {"name": "n", "type": "bigint"}]
    assert lake.post(DS, json={"name": "t", **definition(**{"partition-keys": keys})}).status_code == 200
    rows = [["2024-01-30", 1], ["2024-01-31", 5_000_000_000], ["2024-02-01", 7_000_000_000], ["2023-12-31", 2]]
    add(lake, "t", *rows)
    assert partition_values(lake, "t", "d >= '2024-01-31'") == {
        ("2024-01-31", "5000000000"),
        ("2024-02-01", "7000000000"),
    }
    assert partition_values(lake, "t", "n > 4000000000 and n < 6000000000") == {("2024-01-31", "5000000000")}
    assert partition_values(lake, "t", "d < '2024-01-01' or n = 1") == {("2023-12-31", "2"), ("2024-01-30", "1")}
    error_of(lake.get(f"{DS}/t/partitions", params={"expression": "d = 'yesterday'"}), 400, "IllegalArgumentException")


def test_null_partitions(lake: TestClient) -> None:
    keys = [{"name": "region", "type": "string"}, {"name": "hour", "type": "int"}]
    assert lake.post(DS, json={"name": "t", **definition(**{"partition-keys": keys})}).status_code == 200
    null_dir = "s3://landing/t/region=__HIVE_DEFAULT_PARTITION__/hour=1"
    assert add(lake, "t", [None, 1], location=null_dir)["added"] == [[None, "1"]]
    assert add(lake, "t", ["eu", None], ["eu", 2])["added"] == [["eu", None], ["eu", "2"]]
    # Spark's directory name for null is the same partition.
    assert add(lake, "t", ["__HIVE_DEFAULT_PARTITION__", "1"], location=null_dir)["existing"] == [[None, "1"]]
    assert partition_values(lake, "t", "region is null") == {(None, "1")}
    assert partition_values(lake, "t", "hour is not null and region = 'eu'") == {("eu", "2")}
    assert partition_values(lake, "t", "hour < 5") == {(None, "1"), ("eu", "2")}


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("hour = 3 and", "Malformed predicate"),
        ("hour = = 3", "Malformed predicate"),
        ('dt = "2024-01-01"', "Malformed predicate"),
        ("(hour = 3", "Malformed predicate"),
        ("hour = 3; drop table x", "Malformed predicate"),
        ("minute = 3", "Unknown column 'minute'"),
        ("id = 3", "Unknown column 'id'"),
        ("dt = 3", "quote the values of string keys"),
        ("hour = 'abc'", "Invalid predicate"),
    ],
)
def test_bad_predicates_are_400_and_change_nothing(events: TestClient, expression: str, fragment: str) -> None:
    audit_before = audit(events)
    response = events.get(f"{DS}/events/partitions", params={"expression": expression})
    message = error_of(response, 400, "IllegalArgumentException")
    assert fragment in message
    assert len(message) < 600
    assert partition_values(events, "events") == ALL_EVENTS
    assert audit(events) == audit_before


def test_partition_pages_with_a_predicate(events: TestClient) -> None:
    pages: list[list[list[Any]]] = []
    token = None
    while True:
        params: dict[str, Any] = {"expression": "hour >= 2", "pageSize": 4, **({"pageToken": token} if token else {})}
        body = events.get(f"{DS}/events/partitions", params=params).json()
        pages.append([p["values"] for p in body["partitions"]])
        token = body["next-page-token"]
        if not token:
            break
    assert [len(p) for p in pages] == [4, 4, 4]
    flat = [tuple(v) for page in pages for v in page]
    assert set(flat) == {(d, h) for d, h in ALL_EVENTS if int(h) >= 2} and len(flat) == 12
    bad = events.get(f"{DS}/events/partitions", params={"pageToken": "%%%not-a-token"})
    error_of(bad, 400, "IllegalArgumentException")


def test_delete_partitions_by_values(events: TestClient) -> None:
    response = events.request(
        "DELETE",
        f"{DS}/events/partitions",
        json={"values": [["2024-01-01", "01"], ["2024-01-02", 9], ["2024-07-07", 1]]},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "deleted": [["2024-01-01", "1"], ["2024-01-02", "9"]],
        "missing": [["2024-07-07", "1"]],
    }
    assert partition_values(events, "events") == ALL_EVENTS - {("2024-01-01", "1"), ("2024-01-02", "9")}
    (entry,) = audit(events, action="delete-partitions")
    assert entry["detail"]["deleted"] == 2 and entry["name"] == "events"

    bad = events.request("DELETE", f"{DS}/events/partitions", json={"values": [["2024-01-03", 1], ["x"]]})
    error_of(bad, 400, "IllegalArgumentException")
    assert ("2024-01-03", "1") in partition_values(events, "events")
    assert len(audit(events, action="delete-partitions")) == 1


def test_drop_removes_partitions_and_versions(events: TestClient) -> None:
    assert events.put(f"{DS}/events", json=definition(properties={"v": "2"})).json()["dataset"]["version"] == 2
    error_of(events.delete("/v1/namespaces/raw"), 409, "NamespaceNotEmptyException")

    assert events.delete(f"{DS}/events").status_code == 204
    error_of(events.get(f"{DS}/events"), 404, "NoSuchDatasetException")
    error_of(events.get(f"{DS}/events/versions"), 404, "NoSuchDatasetException")
    error_of(events.get(f"{DS}/events/partitions"), 404, "NoSuchDatasetException")
    (entry,) = audit(events, action="drop-dataset")
    assert entry["detail"] == {"version": 2, "partitions": len(ALL_EVENTS), "versions": 2}

    # A new dataset of the same name starts from scratch.
    assert events.post(DS, json={"name": "events", **definition()}).json()["version"] == 1
    assert [v["version"] for v in events.get(f"{DS}/events/versions").json()["versions"]] == [1]
    assert events.get(f"{DS}/events/partitions").json()["partitions"] == []
    assert events.delete(f"{DS}/events").status_code == 204
    error_of(events.delete(f"{DS}/events"), 404, "NoSuchDatasetException")
    assert events.delete("/v1/namespaces/raw").status_code == 204


def test_malformed_bodies_are_400(events: TestClient) -> None:
    error_of(
        events.post(DS, content=b"{not json", headers={"content-type": "application/json"}), 400, "BadRequestException"
    )
    error_of(events.post(DS, json={"format": "json"}), 400, "BadRequestException")
    error_of(
        events.post(f"{DS}/events/partitions", json={"partitions": [{"values": [[1]], "location": "s3://b"}]}),
        400,
        "BadRequestException",
    )
    error_of(events.request("DELETE", f"{DS}/events/partitions", json={"values": "x"}), 400, "BadRequestException")
    assert partition_values(events, "events") == ALL_EVENTS


def test_every_lake_route_requires_a_token_when_auth_is_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "lake", client_id="crawler", client_secret="s3cret")
    with TestClient(create_app(settings)) as c:
        for method, path in [
            ("GET", f"{DS}"),
            ("POST", f"{DS}"),
            ("GET", f"{DS}/e"),
            ("PUT", f"{DS}/e"),
            ("DELETE", f"{DS}/e"),
            ("GET", f"{DS}/e/versions"),
            ("GET", f"{DS}/e/versions/1"),
            ("GET", f"{DS}/e/partitions"),
            ("POST", f"{DS}/e/partitions"),
            ("DELETE", f"{DS}/e/partitions"),
            ("GET", f"{LAKE}/audit"),
        ]:
            response = c.request(method, path, json={"partitions": [], "values": []} if method != "GET" else None)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["type"] == "NotAuthorizedException"
