"""Iceberg REST views: the HTTP contract (in-process) and Spark SQL's view DDL against the real server."""

from __future__ import annotations

import copy
import gzip
import json
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.objectstore import local_path
from catalog.server import CatalogServer
from catalog.service import CatalogService

SEP = "\x1f"

SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 5,
    "fields": [
        {"id": 3, "name": "id", "type": "int", "required": True},
        {"id": 4, "name": "data", "type": "string", "required": False},
    ],
}
OTHER_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 7,
    "fields": [{"id": 1, "name": "some_id", "type": "int", "required": True}],
}


def ns_path(ns: str) -> str:
    return quote(ns, safe="")


def views_url(ns: str, view: str | None = None) -> str:
    base = f"/v1/namespaces/{ns_path(ns)}/views"
    return base if view is None else f"{base}/{quote(view, safe='')}"


def tables_url(ns: str, table: str | None = None) -> str:
    base = f"/v1/namespaces/{ns_path(ns)}/tables"
    return base if table is None else f"{base}/{quote(table, safe='')}"


def view_version(
    sql: str, ns: str, *, dialect: str = "spark", schema_id: int = 5, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A view version as the Java client sends it (schema-id as the client's schema, summary with engine)."""
    version: dict[str, Any] = {
        "version-id": 1,
        "timestamp-ms": 1_700_000_000_000,
        "schema-id": schema_id,
        "summary": {"engine-name": "spark", "engine-version": "3.5.7"},
        "representations": [{"type": "sql", "sql": sql, "dialect": dialect}],
        "default-namespace": [ns],
    }
    version.update(extra or {})
    return version


def create_body(name: str, ns: str, sql: str = "select * from t", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "schema": copy.deepcopy(SCHEMA),
        "view-version": view_version(sql, ns),
        "properties": {"prop1": "val1"},
    }
    body.update(extra)
    return body


def assert_error(response: httpx.Response, status: int, error_type: str, message: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["type"] == error_type, error
    if message is not None:
        assert error["message"] == message, error
    return str(error["message"])


def make_ns(http: TestClient | httpx.Client, ns: str) -> None:
    assert http.post("/v1/namespaces", json={"namespace": [ns]}).status_code == 200


def make_view(http: TestClient | httpx.Client, ns: str, name: str, sql: str = "select * from t") -> dict[str, Any]:
    response = http.post(views_url(ns), json=create_body(name, ns, sql))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def make_table(http: TestClient | httpx.Client, ns: str, name: str) -> None:
    response = http.post(tables_url(ns), json={"name": name, "schema": SCHEMA})
    assert response.status_code == 200, response.text


def service_of(client: TestClient) -> CatalogService:
    service: CatalogService = client.app.state.service  # type: ignore[attr-defined]
    return service


def replace(
    http: TestClient | httpx.Client, ns: str, name: str, updates: list[dict[str, Any]], view_uuid: str | None = None
) -> httpx.Response:
    requirements = [{"type": "assert-view-uuid", "uuid": view_uuid}] if view_uuid else []
    return http.post(views_url(ns, name), json={"requirements": requirements, "updates": updates})


@pytest.fixture
def ns(client: TestClient) -> str:
    make_ns(client, "db")
    return "db"


# -- create and load ----------------------------------------------------------------------------------
def test_create_view_assigns_ids_writes_the_file_and_loads_back(client: TestClient, ns: str) -> None:
    created = make_view(client, ns, "v")
    meta = created["metadata"]
    assert created["config"] == {}
    warehouse = service_of(client).settings.warehouse
    assert meta["location"] == f"{warehouse}/db/v"
    assert created["metadata-location"].startswith(f"{warehouse}/db/v/metadata/00000-")
    assert meta["format-version"] == 1
    uuid.UUID(meta["view-uuid"])
    # The schema gets the first id (0), the version is 1 and points at it, whatever the client sent.
    assert [s["schema-id"] for s in meta["schemas"]] == [0]
    assert [f["name"] for f in meta["schemas"][0]["fields"]] == ["id", "data"]
    assert meta["current-version-id"] == 1
    (version,) = meta["versions"]
    assert version["version-id"] == 1 and version["schema-id"] == 0
    assert version["representations"] == [{"type": "sql", "sql": "select * from t", "dialect": "spark"}]
    assert version["summary"] == {"engine-name": "spark", "engine-version": "3.5.7"}
    assert version["default-namespace"] == ["db"]
    assert meta["version-log"] == [{"timestamp-ms": 1_700_000_000_000, "version-id": 1}]
    assert meta["properties"] == {"prop1": "val1"}

    loaded = client.get(views_url(ns, "v"))
    assert loaded.status_code == 200
    assert loaded.json() == created
    assert client.head(views_url(ns, "v")).status_code == 204

    # The pointer names a gzip metadata file holding the same metadata.
    path = local_path(created["metadata-location"], service_of(client).settings.object_store_root)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(path.read_bytes())) == meta
    [entry] = service_of(client).audit.query(action="create-view", name="v")
    assert entry.metadata_location == created["metadata-location"]


def test_create_view_with_location_and_custom_metadata_path(client: TestClient, ns: str, tmp_path: Path) -> None:
    location = (tmp_path / "views" / "mine").as_uri()
    metadata_dir = (tmp_path / "meta-here").as_uri()
    body = create_body("v", ns, location=location, properties={"write.metadata.path": metadata_dir})
    created = client.post(views_url(ns), json=body).json()
    assert created["metadata"]["location"] == location
    assert created["metadata-location"].startswith(metadata_dir + "/00000-")
    assert Path(created["metadata-location"].removeprefix("file://")).is_file()


def test_create_view_errors(client: TestClient, ns: str) -> None:
    make_view(client, ns, "v")
    assert_error(
        client.post(views_url(ns), json=create_body("v", ns)),
        409,
        "AlreadyExistsException",
        "View already exists: db.v",
    )
    make_table(client, ns, "t")
    assert_error(
        client.post(views_url(ns), json=create_body("t", ns)),
        409,
        "AlreadyExistsException",
        "Table with same name already exists: db.t",
    )
    assert_error(
        client.post(views_url("missing"), json=create_body("v", "missing")),
        404,
        "NoSuchNamespaceException",
        "Namespace does not exist: missing",
    )
    # Names: metadata-table names and separators are refused.
    assert_error(client.post(views_url(ns), json=create_body("snapshots", ns)), 400, "IllegalArgumentException")
    assert_error(client.post(views_url(ns), json=create_body("a.b", ns)), 400, "IllegalArgumentException")
    # Two queries for one dialect.
    body = create_body("w", ns)
    body["view-version"]["representations"].append({"type": "sql", "sql": "select 1", "dialect": "SPARK"})
    message = assert_error(client.post(views_url(ns), json=body), 400, "IllegalArgumentException")
    assert message == "Invalid view version: Cannot add multiple queries for dialect spark"
    # Missing schema: a malformed request.
    body = create_body("w", ns)
    del body["schema"]
    assert_error(client.post(views_url(ns), json=body), 400, "BadRequestException")
    assert client.head(views_url(ns, "w")).status_code == 404


def test_load_missing_views(client: TestClient, ns: str) -> None:
    assert_error(client.get(views_url(ns, "nope")), 404, "NoSuchViewException", "View does not exist: db.nope")
    # A missing namespace is still NoSuchView: Spark loads `db.t.snapshots` as a view first.
    assert_error(
        client.get(views_url("db" + SEP + "t", "snapshots")),
        404,
        "NoSuchViewException",
        "View does not exist: db.t.snapshots",
    )
    assert client.head(views_url("missing", "v")).status_code == 404


def test_views_and_tables_do_not_see_each_other(client: TestClient, ns: str) -> None:
    make_table(client, ns, "t")
    make_view(client, ns, "v")
    assert_error(client.get(views_url(ns, "t")), 404, "NoSuchViewException", "View does not exist: db.t")
    assert client.head(views_url(ns, "t")).status_code == 404
    assert_error(client.get(tables_url(ns, "v")), 404, "NoSuchTableException", "Table does not exist: db.v")
    assert_error(
        client.post(tables_url(ns), json={"name": "v", "schema": SCHEMA}),
        409,
        "AlreadyExistsException",
        "View with same name already exists: db.v",
    )
    assert_error(client.delete(views_url(ns, "t")), 404, "NoSuchViewException", "View does not exist: db.t")
    assert_error(client.delete(tables_url(ns, "v")), 404, "NoSuchTableException")
    assert_error(replace(client, ns, "t", []), 404, "NoSuchViewException", "View does not exist: db.t")
    assert client.get(tables_url(ns, "t")).status_code == 200
    assert client.get(views_url(ns, "v")).status_code == 200


# -- list -----------------------------------------------------------------------------------------------
def test_list_views_paginates_and_excludes_tables(client: TestClient, ns: str) -> None:
    make_ns(client, "other")
    for name in ("v3", "v1", "v2"):
        make_view(client, ns, name)
    make_view(client, "other", "elsewhere")
    make_table(client, ns, "t")

    first = client.get(views_url(ns), params={"pageSize": 2}).json()
    assert first["identifiers"] == [{"namespace": ["db"], "name": "v1"}, {"namespace": ["db"], "name": "v2"}]
    assert first["next-page-token"]
    second = client.get(views_url(ns), params={"pageSize": 2, "pageToken": first["next-page-token"]}).json()
    assert second == {"identifiers": [{"namespace": ["db"], "name": "v3"}], "next-page-token": None}
    everything = client.get(views_url(ns), params={"pageToken": ""}).json()
    assert [i["name"] for i in everything["identifiers"]] == ["v1", "v2", "v3"]

    tables = client.get(tables_url(ns)).json()
    assert [i["name"] for i in tables["identifiers"]] == ["t"]
    assert_error(client.get(views_url("missing")), 404, "NoSuchNamespaceException")


# -- replace ----------------------------------------------------------------------------------------------
def test_replace_view_adds_schema_and_version(client: TestClient, ns: str) -> None:
    created = make_view(client, ns, "v")
    view_uuid = created["metadata"]["view-uuid"]
    new_version = view_version("select count(*) from t", ns, schema_id=-1, extra={"timestamp-ms": 1_700_000_001_000})
    new_version["summary"] = {"engine-name": "spark", "operation": "replace"}
    response = replace(
        client,
        ns,
        "v",
        [
            {"action": "set-properties", "updates": {"replaced": "yes", "prop2": "val2"}},
            {"action": "remove-properties", "removals": ["prop1", "never-there"]},
            {"action": "add-schema", "schema": OTHER_SCHEMA, "last-column-id": 1},
            {"action": "add-view-version", "view-version": new_version},
            {"action": "set-current-view-version", "view-version-id": -1},
        ],
        view_uuid,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    meta = result["metadata"]
    assert result["metadata-location"] != created["metadata-location"]
    assert "/metadata/00001-" in result["metadata-location"]
    assert meta["view-uuid"] == view_uuid
    assert [s["schema-id"] for s in meta["schemas"]] == [0, 1]
    assert [f["name"] for f in meta["schemas"][1]["fields"]] == ["some_id"]
    assert meta["current-version-id"] == 2
    assert [(v["version-id"], v["schema-id"]) for v in meta["versions"]] == [(1, 0), (2, 1)]
    assert meta["versions"][0] == created["metadata"]["versions"][0]
    assert meta["version-log"] == [
        {"timestamp-ms": 1_700_000_000_000, "version-id": 1},
        {"timestamp-ms": 1_700_000_001_000, "version-id": 2},
    ]
    assert meta["properties"] == {"replaced": "yes", "prop2": "val2"}
    assert client.get(views_url(ns, "v")).json() == {**result, "config": {}}
    [entry] = service_of(client).audit.query(action="replace-view", name="v")
    assert entry.metadata_location == result["metadata-location"]
    assert entry.detail == {
        "updates": [
            "set-properties",
            "remove-properties",
            "add-schema",
            "add-view-version",
            "set-current-view-version",
        ]
    }

    # Going back to version 1 reuses it (no new version) and logs the switch.
    back = replace(client, ns, "v", [{"action": "set-current-view-version", "view-version-id": 1}], view_uuid).json()
    assert back["metadata"]["current-version-id"] == 1
    assert len(back["metadata"]["versions"]) == 2
    assert [e["version-id"] for e in back["metadata"]["version-log"]] == [1, 2, 1]
    # Adding a version equal to an existing one (apart from id and time) reuses that version's id.
    again = view_version("select count(*) from t", ns, schema_id=1, extra={"version-id": 7})
    again["summary"] = {"engine-name": "spark", "operation": "replace"}
    reused = replace(
        client,
        ns,
        "v",
        [
            {"action": "add-view-version", "view-version": again},
            {"action": "set-current-view-version", "view-version-id": -1},
        ],
    ).json()
    assert reused["metadata"]["current-version-id"] == 2
    assert len(reused["metadata"]["versions"]) == 2


def test_property_only_commit_keeps_versions_and_history(client: TestClient, ns: str) -> None:
    created = make_view(client, ns, "v")["metadata"]
    updated = replace(client, ns, "v", [{"action": "set-properties", "updates": {"comment": "hi"}}]).json()
    meta = updated["metadata"]
    assert meta["properties"] == {"prop1": "val1", "comment": "hi"}
    assert meta["versions"] == created["versions"]
    assert meta["version-log"] == created["version-log"]
    # No updates: nothing is written, the pointer stays.
    same = replace(client, ns, "v", []).json()
    assert same["metadata-location"] == updated["metadata-location"]


def test_version_history_is_trimmed_to_the_configured_size(client: TestClient, ns: str) -> None:
    make_view(client, ns, "v")
    replace(client, ns, "v", [{"action": "set-properties", "updates": {"version.history.num-entries": "2"}}])
    for i in range(3):
        response = replace(
            client,
            ns,
            "v",
            [
                {"action": "add-view-version", "view-version": view_version(f"select {i}", ns, schema_id=0)},
                {"action": "set-current-view-version", "view-version-id": -1},
            ],
        )
        assert response.status_code == 200, response.text
    meta = client.get(views_url(ns, "v")).json()["metadata"]
    assert meta["current-version-id"] == 4
    assert [v["version-id"] for v in meta["versions"]] == [3, 4]
    assert [e["version-id"] for e in meta["version-log"]] == [3, 4]


def test_stale_assert_view_uuid_is_a_409_and_changes_nothing(client: TestClient, ns: str) -> None:
    created = make_view(client, ns, "v")
    stale = str(uuid.uuid4())
    message = assert_error(
        replace(client, ns, "v", [{"action": "set-properties", "updates": {"k": "v"}}], stale),
        409,
        "CommitFailedException",
    )
    assert stale in message and created["metadata"]["view-uuid"] in message
    assert client.get(views_url(ns, "v")).json()["metadata-location"] == created["metadata-location"]


@pytest.mark.parametrize(
    "body",
    [
        {"updates": [{"action": "add-snapshot", "snapshot": {}}]},
        {"updates": [{"action": "frobnicate"}]},
        {"updates": [{"updates": {"k": "v"}}]},
        {"requirements": [{"type": "assert-table-uuid", "uuid": "x"}], "updates": []},
        {"requirements": [], "updates": [{"action": "set-properties", "updates": {"k": 1}}]},
    ],
    ids=["table-update", "unknown-action", "no-action", "table-requirement", "non-string-property"],
)
def test_unknown_or_malformed_updates_are_400(client: TestClient, ns: str, body: dict[str, Any]) -> None:
    created = make_view(client, ns, "v")
    assert_error(client.post(views_url(ns, "v"), json=body), 400, "BadRequestException")
    assert client.get(views_url(ns, "v")).json()["metadata-location"] == created["metadata-location"]


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ([{"action": "set-current-view-version", "view-version-id": 9}], "unknown version: 9"),
        ([{"action": "set-current-view-version", "view-version-id": -1}], "no current version id has been set"),
        ([{"action": "upgrade-format-version", "format-version": 2}], "Cannot upgrade view to version 2"),
        ([{"action": "assign-uuid", "uuid": str(uuid.UUID(int=1))}], "Cannot reassign uuid"),
        (
            [{"action": "add-view-version", "view-version": view_version("select 1", "db", schema_id=-1)}],
            "no schema has been added",
        ),
        (
            [{"action": "add-view-version", "view-version": view_version("select 1", "db", schema_id=42)}],
            "unknown schema: 42",
        ),
        (
            [
                {"action": "add-view-version", "view-version": view_version("x", "db", dialect="trino", schema_id=0)},
                {"action": "set-current-view-version", "view-version-id": -1},
            ],
            "loss of view dialects",
        ),
    ],
)
def test_invalid_updates_are_400(client: TestClient, ns: str, updates: list[dict[str, Any]], message: str) -> None:
    created = make_view(client, ns, "v")
    error = assert_error(replace(client, ns, "v", updates), 400, "IllegalArgumentException")
    assert message in error
    assert client.get(views_url(ns, "v")).json()["metadata-location"] == created["metadata-location"]


def test_dialect_may_be_dropped_when_allowed(client: TestClient, ns: str) -> None:
    make_view(client, ns, "v")
    response = replace(
        client,
        ns,
        "v",
        [
            {"action": "set-properties", "updates": {"replace.drop-dialect.allowed": "true"}},
            {"action": "add-view-version", "view-version": view_version("x", "db", dialect="trino", schema_id=0)},
            {"action": "set-current-view-version", "view-version-id": -1},
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["current-version-id"] == 2


def test_body_identifier_must_match_the_path(client: TestClient, ns: str) -> None:
    make_view(client, ns, "v")
    body = {"identifier": {"namespace": ["db"], "name": "other"}, "updates": []}
    assert_error(client.post(views_url(ns, "v"), json=body), 400, "IllegalArgumentException")
    body["identifier"] = {"namespace": ["db"], "name": "v"}
    assert client.post(views_url(ns, "v"), json=body).status_code == 200


def test_concurrent_replaces_lose_no_update(server: CatalogServer, unique_ns: str) -> None:
    """Many writers on one view: every commit that answers 200 is in the final metadata."""
    with httpx.Client(base_url=server.uri, timeout=60) as http:
        make_ns(http, unique_ns)
        make_view(http, unique_ns, "v")
    results: dict[int, int] = {}
    writers = 12
    start = threading.Barrier(writers)

    def writer(i: int) -> None:
        with httpx.Client(base_url=server.uri, timeout=60) as http:
            http.get("/healthz")  # connect before the barrier, so the commits start together
            update = [{"action": "set-properties", "updates": {f"k{i}": str(i)}}]
            start.wait()
            results[i] = replace(http, unique_ns, "v", update).status_code

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results.values()) <= {200, 409}
    assert list(results.values()).count(200) >= 2
    with httpx.Client(base_url=server.uri, timeout=60) as http:
        props = http.get(views_url(unique_ns, "v")).json()["metadata"]["properties"]
    committed = {f"k{i}" for i, status in results.items() if status == 200}
    assert committed <= set(props)
    assert {k for k in props if k.startswith("k")} == committed


# -- drop and rename ----------------------------------------------------------------------------------------
def test_drop_view(client: TestClient, ns: str) -> None:
    created = make_view(client, ns, "v")
    assert client.delete(views_url(ns, "v")).status_code == 204
    assert client.head(views_url(ns, "v")).status_code == 404
    assert_error(client.get(views_url(ns, "v")), 404, "NoSuchViewException", "View does not exist: db.v")
    assert_error(client.delete(views_url(ns, "v")), 404, "NoSuchViewException", "View does not exist: db.v")
    assert_error(client.delete(views_url("missing", "v")), 404, "NoSuchViewException")
    [entry] = service_of(client).audit.query(action="drop-view", name="v")
    assert entry.metadata_location == created["metadata-location"]
    # The name is free again, for a view or a table.
    make_table(client, ns, "v")


def test_rename_view(client: TestClient, ns: str) -> None:
    make_ns(client, "other")
    created = make_view(client, ns, "a")
    body = {"source": {"namespace": ["db"], "name": "a"}, "destination": {"namespace": ["db"], "name": "b"}}
    assert client.post("/v1/views/rename", json=body).status_code == 204
    assert client.head(views_url(ns, "a")).status_code == 404
    assert client.get(views_url(ns, "b")).json() == created
    [entry] = service_of(client).audit.query(action="rename-view", name="a")
    assert entry.detail == {"to": "db.b"}

    body = {"source": {"namespace": ["db"], "name": "b"}, "destination": {"namespace": ["other"], "name": "c"}}
    assert client.post("/v1/views/rename", json=body).status_code == 204
    assert client.get(views_url("other", "c")).json()["metadata-location"] == created["metadata-location"]
    assert client.get(views_url(ns)).json()["identifiers"] == []


def test_rename_view_errors(client: TestClient, ns: str) -> None:
    make_view(client, ns, "a")
    make_view(client, ns, "b")
    make_table(client, ns, "t")

    def rename(src: str, dest: str, dest_ns: str = "db") -> httpx.Response:
        body = {"source": {"namespace": ["db"], "name": src}, "destination": {"namespace": [dest_ns], "name": dest}}
        response: httpx.Response = client.post("/v1/views/rename", json=body)
        return response

    assert_error(rename("nope", "c"), 404, "NoSuchViewException", "View does not exist: db.nope")
    # A table is not a view to rename.
    assert_error(rename("t", "c"), 404, "NoSuchViewException", "View does not exist: db.t")
    assert_error(rename("a", "c", "missing"), 404, "NoSuchNamespaceException", "Namespace does not exist: missing")
    assert_error(rename("a", "t"), 409, "AlreadyExistsException", "Cannot rename db.a to db.t. Table already exists")
    assert_error(rename("a", "b"), 409, "AlreadyExistsException", "Cannot rename db.a to db.b. View already exists")
    assert_error(rename("a", "snapshots"), 400, "IllegalArgumentException")
    # Nothing moved.
    assert client.head(views_url(ns, "a")).status_code == 204
    assert client.get(tables_url(ns, "t")).status_code == 200
    # And a table cannot be renamed over a view.
    body = {"source": {"namespace": ["db"], "name": "t"}, "destination": {"namespace": ["db"], "name": "a"}}
    assert_error(
        client.post("/v1/tables/rename", json=body),
        409,
        "AlreadyExistsException",
        "Cannot rename db.t to db.a. View already exists",
    )


def test_pyiceberg_rest_catalog_views(rest_catalog: Any, unique_ns: str) -> None:
    """pyiceberg's RestCatalog: create, load, exists, list and drop views."""
    from pyiceberg.exceptions import NoSuchViewError, ViewAlreadyExistsError
    from pyiceberg.schema import Schema
    from pyiceberg.types import IntegerType, NestedField
    from pyiceberg.view.metadata import SQLViewRepresentation, ViewVersion

    rest_catalog.create_namespace(unique_ns)
    version = ViewVersion.model_validate(view_version("select 1 as id", unique_ns, schema_id=0))
    schema = Schema(NestedField(1, "id", IntegerType(), required=True))
    created = rest_catalog.create_view((unique_ns, "pv"), schema, version, properties={"a": "b"})
    assert created.current_version().representations[0].root == SQLViewRepresentation(
        type="sql", sql="select 1 as id", dialect="spark"
    )
    loaded = rest_catalog.load_view((unique_ns, "pv"))
    assert loaded.metadata == created.metadata
    assert loaded.properties == {"a": "b"}
    assert rest_catalog.view_exists((unique_ns, "pv"))
    assert rest_catalog.list_views(unique_ns) == [(unique_ns, "pv")]
    with pytest.raises(ViewAlreadyExistsError):
        rest_catalog.create_view((unique_ns, "pv"), schema, version)
    rest_catalog.drop_view((unique_ns, "pv"))
    assert not rest_catalog.view_exists((unique_ns, "pv"))
    with pytest.raises(NoSuchViewError):
        rest_catalog.load_view((unique_ns, "pv"))
    with pytest.raises(NoSuchViewError):
        rest_catalog.drop_view((unique_ns, "pv"))


# -- Spark ----------------------------------------------------------------------------------------------------
@pytest.mark.spark
class TestSparkViews:
    def test_view_ddl_round_trip(self, spark: Any, server: CatalogServer, unique_ns: str) -> None:
        ns = unique_ns
        spark.sql(f"CREATE NAMESPACE lake.{ns}")
        spark.sql(f"CREATE TABLE lake.{ns}.t (id INT, name STRING) USING iceberg")
        spark.sql(f"INSERT INTO lake.{ns}.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")

        spark.sql(f"CREATE VIEW lake.{ns}.v AS SELECT id, name FROM lake.{ns}.t WHERE id > 1")
        rows = spark.sql(f"SELECT id, name FROM lake.{ns}.v ORDER BY id").collect()
        assert [(r.id, r.name) for r in rows] == [(2, "b"), (3, "c")]

        with httpx.Client(base_url=server.uri, timeout=30) as http:
            first = http.get(views_url(ns, "v")).json()["metadata"]
            (representation,) = first["versions"][0]["representations"]
            assert representation["dialect"] == "spark" and "id > 1" in representation["sql"]

        spark.sql(f"CREATE OR REPLACE VIEW lake.{ns}.v AS SELECT id FROM lake.{ns}.t WHERE id = 1")
        replaced = spark.sql(f"SELECT * FROM lake.{ns}.v")
        assert replaced.columns == ["id"]
        assert [r.id for r in replaced.collect()] == [1]

        views = {r.viewName for r in spark.sql(f"SHOW VIEWS IN lake.{ns}").collect()}
        assert views == {"v"}

        spark.sql(f"ALTER VIEW lake.{ns}.v SET TBLPROPERTIES ('owner_team' = 'data')")
        props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES lake.{ns}.v").collect()}
        assert props.get("owner_team") == "data"

        with httpx.Client(base_url=server.uri, timeout=30) as http:
            meta = http.get(views_url(ns, "v")).json()["metadata"]
            assert meta["view-uuid"] == first["view-uuid"]
            assert meta["properties"]["owner_team"] == "data"
            assert len(meta["versions"]) == 2 and meta["current-version-id"] == 2
            assert [e["version-id"] for e in meta["version-log"]] == [1, 2]

        spark.sql(f"ALTER VIEW lake.{ns}.v RENAME TO lake.{ns}.v2")
        assert [r.id for r in spark.sql(f"SELECT id FROM lake.{ns}.v2").collect()] == [1]
        with pytest.raises(Exception, match="(?i)cannot be found|not found"):
            spark.sql(f"SELECT * FROM lake.{ns}.v").collect()

        spark.sql(f"DROP VIEW lake.{ns}.v2")
        assert spark.sql(f"SHOW VIEWS IN lake.{ns}").collect() == []
        with httpx.Client(base_url=server.uri, timeout=30) as http:
            assert http.head(views_url(ns, "v2")).status_code == 404

    def test_tables_still_resolve_through_the_view_lookup(
        self, spark: Any, server: CatalogServer, unique_ns: str
    ) -> None:
        """Spark asks for a view before every relation: a 404 NoSuchView must let it fall back to the table."""
        ns = unique_ns
        spark.sql(f"CREATE NAMESPACE lake.{ns}")
        spark.sql(f"CREATE TABLE lake.{ns}.t (id INT) USING iceberg")
        spark.sql(f"INSERT INTO lake.{ns}.t VALUES (1), (2)")
        with httpx.Client(base_url=server.uri, timeout=30) as http:
            assert_error(http.get(views_url(ns, "t")), 404, "NoSuchViewException")
        assert spark.sql(f"SELECT count(*) AS n FROM lake.{ns}.t").collect()[0].n == 2
        # Metadata tables: Spark first loads the view `t.snapshots` in the (missing) namespace `ns.t`.
        assert spark.sql(f"SELECT count(*) AS n FROM lake.{ns}.t.snapshots").collect()[0].n == 1
        with pytest.raises(Exception, match="(?i)cannot be found|not found"):
            spark.sql(f"SELECT * FROM lake.{ns}.nothing_here").collect()
