"""HTTP-level behaviour of the Iceberg REST catalog, run against the in-process app (TestClient) and
the real uvicorn server: the same requests, the same answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.catalog.rest_helpers import (
    PARTITION_SPEC,
    SCHEMA,
    SEP,
    WRITE_ORDER,
    assert_error,
    commit,
    create_namespace,
    create_table,
    fake_snapshot,
    java_create_updates,
    load_table,
    local_path,
    metadata_files,
    ns_path,
    set_main,
    tables_url,
)


@pytest.fixture(params=["in-process", "uvicorn"])
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """An httpx-compatible client of the catalog: the TestClient on a fresh database, or the real server."""
    fixture = "client" if request.param == "in-process" else "http"
    yield request.getfixturevalue(fixture)


@pytest.fixture
def ns(api: httpx.Client, unique_ns: str) -> str:
    create_namespace(api, unique_ns)
    return unique_ns


def _uuid() -> str:
    return str(uuid.uuid4())


# -- config -------------------------------------------------------------------------------------------


def test_config_defaults_overrides_endpoints(api: httpx.Client) -> None:
    r = api.get("/v1/config")
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["defaults"], dict) and isinstance(body["overrides"], dict)
    assert body["defaults"]["warehouse"].startswith("file:")
    assert all(isinstance(v, str) for v in {**body["defaults"], **body["overrides"]}.values())
    assert "prefix" not in body["overrides"]
    endpoints = body["endpoints"]
    for expected in (
        "GET /v1/{prefix}/namespaces",
        "HEAD /v1/{prefix}/namespaces/{namespace}",
        "DELETE /v1/{prefix}/namespaces/{namespace}",
        "POST /v1/{prefix}/namespaces/{namespace}/properties",
        "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
        "POST /v1/{prefix}/namespaces/{namespace}/register",
        "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
        "POST /v1/{prefix}/tables/rename",
        "POST /v1/{prefix}/transactions/commit",
    ):
        assert expected in endpoints
    for endpoint in endpoints:
        method, path = endpoint.split(" ")
        assert method in {"GET", "HEAD", "POST", "DELETE"} and path.startswith("/v1/{prefix}/")
    assert len(set(endpoints)) == len(endpoints)
    # The Java client sends ?warehouse= when configured.
    assert api.get("/v1/config", params={"warehouse": "lake"}).status_code == 200


# -- namespaces ---------------------------------------------------------------------------------------


def test_namespace_create_load_head_and_conflict(api: httpx.Client, unique_ns: str) -> None:
    r = api.post("/v1/namespaces", json={"namespace": [unique_ns], "properties": {"owner": "alice"}})
    assert r.status_code == 200
    assert r.json() == {"namespace": [unique_ns], "properties": {"owner": "alice"}}
    assert api.head(f"/v1/namespaces/{unique_ns}").status_code == 204
    assert api.head(f"/v1/namespaces/{unique_ns}_missing").status_code == 404
    loaded = api.get(f"/v1/namespaces/{unique_ns}").json()
    assert loaded["namespace"] == [unique_ns]
    assert loaded["properties"]["owner"] == "alice"
    err = assert_error(api.post("/v1/namespaces", json={"namespace": [unique_ns]}), 409, "AlreadyExistsException")
    assert err["message"].startswith(f"Namespace already exists: {unique_ns}")
    err = assert_error(api.get(f"/v1/namespaces/{unique_ns}_missing"), 404, "NoSuchNamespaceException")
    assert err["message"].startswith("Namespace does not exist: ")


def test_nested_namespace_needs_parent(api: httpx.Client, unique_ns: str) -> None:
    assert_error(api.post("/v1/namespaces", json={"namespace": [unique_ns, "child"]}), 404, "NoSuchNamespaceException")
    assert api.head(f"/v1/namespaces/{ns_path(unique_ns, 'child')}").status_code == 404
    create_namespace(api, unique_ns)
    create_namespace(api, unique_ns, "child", properties={"k": "v"})
    create_namespace(api, unique_ns, "child", "grandchild")
    assert api.head(f"/v1/namespaces/{ns_path(unique_ns, 'child')}").status_code == 204
    assert api.head(f"/v1/namespaces/{ns_path(unique_ns, 'child', 'grandchild')}").status_code == 204
    loaded = api.get(f"/v1/namespaces/{ns_path(unique_ns, 'child')}").json()
    assert loaded == {"namespace": [unique_ns, "child"], "properties": {"k": "v"}}


def test_list_namespaces_with_parent_and_pagination(api: httpx.Client, unique_ns: str) -> None:
    create_namespace(api, unique_ns)
    children = [f"c{i}" for i in range(5)]
    for child in children:
        create_namespace(api, unique_ns, child)
    create_namespace(api, unique_ns, "c0", "deep")  # a grandchild is not a child
    r = api.get("/v1/namespaces", params={"parent": f"{unique_ns}"})
    assert r.status_code == 200
    assert r.json()["namespaces"] == [[unique_ns, c] for c in children]
    r = api.get("/v1/namespaces", params={"parent": f"{unique_ns}{SEP}c0"})
    assert r.json()["namespaces"] == [[unique_ns, "c0", "deep"]]

    seen: list[list[str]] = []
    token: str | None = ""  # the Java client always sends an empty pageToken first
    pages = 0
    while token is not None:
        r = api.get("/v1/namespaces", params={"parent": unique_ns, "pageSize": "2", "pageToken": token})
        assert r.status_code == 200
        body = r.json()
        assert len(body["namespaces"]) <= 2
        seen.extend(body["namespaces"])
        token = body.get("next-page-token")
        pages += 1
        assert pages <= 5
    assert seen == [[unique_ns, c] for c in children]
    assert pages == 3

    top = api.get("/v1/namespaces").json()["namespaces"]
    assert [unique_ns] in top
    assert all(len(level) == 1 for level in top)
    assert_error(api.get("/v1/namespaces", params={"parent": f"{unique_ns}_missing"}), 404, "NoSuchNamespaceException")


def test_namespace_properties_update(api: httpx.Client, unique_ns: str) -> None:
    create_namespace(api, unique_ns, properties={"a": "1", "b": "2", "c": "3"})
    url = f"/v1/namespaces/{unique_ns}/properties"
    r = api.post(url, json={"removals": ["b", "zz"], "updates": {"a": "10", "d": "4"}})
    assert r.status_code == 200
    body = r.json()
    assert sorted(body["updated"]) == ["a", "d"]
    assert body["removed"] == ["b"]
    assert body["missing"] == ["zz"]
    props = api.get(f"/v1/namespaces/{unique_ns}").json()["properties"]
    assert props == {"a": "10", "c": "3", "d": "4"}

    err = assert_error(api.post(url, json={"removals": ["a"], "updates": {"a": "x"}}), 422)
    assert "a" in err["message"]
    assert api.get(f"/v1/namespaces/{unique_ns}").json()["properties"] == props
    assert_error(
        api.post(f"/v1/namespaces/{unique_ns}_missing/properties", json={"updates": {"a": "1"}}),
        404,
        "NoSuchNamespaceException",
    )


def test_drop_namespace(api: httpx.Client, unique_ns: str) -> None:
    create_namespace(api, unique_ns)
    create_namespace(api, unique_ns, "child")
    err = assert_error(api.delete(f"/v1/namespaces/{unique_ns}"), 409, "NamespaceNotEmptyException")
    assert "not empty" in err["message"]
    create_table(api, (unique_ns, "child"), "t")
    assert_error(api.delete(f"/v1/namespaces/{ns_path(unique_ns, 'child')}"), 409, "NamespaceNotEmptyException")
    assert api.delete(tables_url((unique_ns, "child"), "t")).status_code == 204
    assert api.delete(f"/v1/namespaces/{ns_path(unique_ns, 'child')}").status_code == 204
    assert api.delete(f"/v1/namespaces/{unique_ns}").status_code == 204
    assert api.head(f"/v1/namespaces/{unique_ns}").status_code == 404
    assert_error(api.delete(f"/v1/namespaces/{unique_ns}"), 404, "NoSuchNamespaceException")


def test_drop_namespace_is_not_fooled_by_like_wildcards(api: httpx.Client, unique_ns: str) -> None:
    """``_`` and ``%`` are SQL LIKE wildcards (and LIKE ignores case on SQLite): ``p.a_b`` has no children
    even if ``p.aXb.c`` exists, nor has ``p.ab`` when ``p.AB.c`` exists."""
    create_namespace(api, unique_ns)
    for levels in (("a_b",), ("aXb",), ("aXb", "c"), ("p%q",), ("pZZq",), ("pZZq", "r"), ("ab",), ("AB",), ("AB", "c")):
        create_namespace(api, unique_ns, *levels)
    for name in ("a_b", "p%q", "ab"):
        assert api.delete(f"/v1/namespaces/{ns_path(unique_ns, name)}").status_code == 204, name
    for levels in (("aXb", "c"), ("pZZq", "r"), ("AB", "c")):
        assert api.head(f"/v1/namespaces/{ns_path(unique_ns, *levels)}").status_code == 204
    # ...while a real parent is still protected.
    assert_error(api.delete(f"/v1/namespaces/{ns_path(unique_ns, 'AB')}"), 409, "NamespaceNotEmptyException")


# -- tables: create, load, list -----------------------------------------------------------------------


def test_create_table_with_spec_and_order(api: httpx.Client, ns: str) -> None:
    result = create_table(api, ns, "events", properties={"owner": "bob"})
    location = result["metadata-location"]
    meta = result["metadata"]
    assert local_path(location).is_file()
    assert location.startswith(meta["location"] + "/metadata/00000-")
    assert meta["format-version"] == 2
    assert [f["name"] for f in meta["schemas"][0]["fields"]] == ["id", "data", "ts"]
    assert meta["default-spec-id"] == 0
    spec = next(s for s in meta["partition-specs"] if s["spec-id"] == 0)
    assert spec["fields"][0]["transform"] == "day" and spec["fields"][0]["source-id"] == 3
    assert meta["last-partition-id"] == 1000
    order = next(o for o in meta["sort-orders"] if o["order-id"] == meta["default-sort-order-id"])
    assert order["fields"][0]["source-id"] == 1 and order["fields"][0]["direction"] == "asc"
    assert meta["properties"]["owner"] == "bob"
    assert meta.get("current-snapshot-id") in (None, -1)
    assert isinstance(result["config"], dict)

    loaded = load_table(api, ns, "events")
    assert loaded["metadata-location"] == location
    assert loaded["metadata"]["table-uuid"] == meta["table-uuid"]
    assert api.head(tables_url(ns, "events")).status_code == 204
    assert api.head(tables_url(ns, "missing")).status_code == 404

    err = assert_error(api.post(tables_url(ns), json={"name": "events", "schema": SCHEMA}), 409)
    assert err["type"] == "AlreadyExistsException"
    assert err["message"].startswith(f"Table already exists: {ns}.events")
    assert_error(
        api.post(tables_url(f"{ns}_missing"), json={"name": "t", "schema": SCHEMA}), 404, "NoSuchNamespaceException"
    )


def test_load_with_snapshots_all_and_refs(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    uid = created["metadata"]["table-uuid"]
    r = commit(api, ns, "t", [{"type": "assert-table-uuid", "uuid": uid}], [fake_snapshot(101, 1), set_main(101)])
    assert r.status_code == 200, r.text
    r = commit(
        api,
        ns,
        "t",
        [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 101}],
        [fake_snapshot(102, 2, parent=101), set_main(102)],
    )
    assert r.status_code == 200, r.text
    # A snapshot only a tag references stays under snapshots=refs; the unreferenced 101 goes.
    r = commit(api, ns, "t", [], [fake_snapshot(103, 3, parent=102)])
    assert r.status_code == 200, r.text
    r = commit(api, ns, "t", [], [{"action": "set-snapshot-ref", "ref-name": "v1", "type": "tag", "snapshot-id": 103}])
    assert r.status_code == 200, r.text

    full = load_table(api, ns, "t", snapshots="all")["metadata"]
    assert sorted(s["snapshot-id"] for s in full["snapshots"]) == [101, 102, 103]
    assert full["current-snapshot-id"] == 102
    default = load_table(api, ns, "t")["metadata"]
    assert sorted(s["snapshot-id"] for s in default["snapshots"]) == [101, 102, 103]
    refs = load_table(api, ns, "t", snapshots="refs")
    assert sorted(s["snapshot-id"] for s in refs["metadata"]["snapshots"]) == [102, 103]
    assert refs["metadata"]["refs"]["main"]["snapshot-id"] == 102
    assert refs["metadata"]["current-snapshot-id"] == 102
    assert refs["metadata-location"] == load_table(api, ns, "t")["metadata-location"]
    assert_error(api.get(tables_url(ns, "t"), params={"snapshots": "bogus"}), 400)


def test_list_tables_paginated(api: httpx.Client, ns: str) -> None:
    names = [f"t{i}" for i in range(5)]
    for name in names:
        create_table(api, ns, name, partitioned=False)
    r = api.get(tables_url(ns))
    assert r.status_code == 200
    assert r.json()["identifiers"] == [{"namespace": [ns], "name": n} for n in names]
    seen: list[str] = []
    token: str | None = ""
    pages = 0
    while token is not None:
        body = api.get(tables_url(ns), params={"pageSize": "2", "pageToken": token}).json()
        assert len(body["identifiers"]) <= 2
        seen.extend(i["name"] for i in body["identifiers"])
        token = body.get("next-page-token")
        pages += 1
        assert pages <= 5
    assert seen == names and pages == 3
    assert_error(api.get(tables_url(f"{ns}_missing")), 404, "NoSuchNamespaceException")


def test_load_table_in_missing_namespace_is_no_such_table(api: httpx.Client, unique_ns: str) -> None:
    """Spark resolves ``db.t.snapshots`` by first loading table ``snapshots`` in namespace ``db.t``."""
    r = api.get(tables_url((unique_ns, "t"), "snapshots"))
    err = assert_error(r, 404, "NoSuchTableException")
    assert err["message"] == f"Table does not exist: {unique_ns}.t.snapshots"
    assert api.head(tables_url((unique_ns, "t"), "snapshots")).status_code == 404


# -- staged create ------------------------------------------------------------------------------------


def test_staged_create_writes_nothing_until_commit(api: httpx.Client, ns: str) -> None:
    staged = create_table(api, ns, "ctas", stage=True, properties={"created-by": "ctas"})
    assert "metadata-location" not in staged or staged["metadata-location"] is None
    meta = staged["metadata"]
    assert metadata_files(meta["location"]) == []
    assert not (local_path(meta["location"]) / "metadata").exists()
    assert api.get(tables_url(ns)).json()["identifiers"] == []
    assert_error(api.get(tables_url(ns, "ctas")), 404, "NoSuchTableException")
    assert api.head(tables_url(ns, "ctas")).status_code == 404

    # The Java client omits the identifier on the per-table endpoint.
    r = commit(api, ns, "ctas", [{"type": "assert-create"}], java_create_updates(meta))
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["metadata"]["table-uuid"] == meta["table-uuid"]
    assert done["metadata"]["properties"]["created-by"] == "ctas"
    assert done["metadata"]["default-spec-id"] == 0
    assert done["metadata"]["partition-specs"][0]["fields"][0]["transform"] == "day"
    assert done["metadata"]["default-sort-order-id"] == meta["default-sort-order-id"]
    assert local_path(done["metadata-location"]).is_file()
    assert load_table(api, ns, "ctas")["metadata-location"] == done["metadata-location"]
    assert [i["name"] for i in api.get(tables_url(ns)).json()["identifiers"]] == ["ctas"]

    again = commit(api, ns, "ctas", [{"type": "assert-create"}], java_create_updates(meta), identifier=True)
    assert_error(again, 409)
    assert load_table(api, ns, "ctas")["metadata-location"] == done["metadata-location"]
    assert len(metadata_files(meta["location"])) == 1


def test_staged_create_checks_existing_and_namespace(api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "exists", partitioned=False)
    r = api.post(tables_url(ns), json={"name": "exists", "schema": SCHEMA, "stage-create": True})
    assert_error(r, 409, "AlreadyExistsException")
    r = api.post(tables_url(f"{ns}_missing"), json={"name": "t", "schema": SCHEMA, "stage-create": True})
    assert_error(r, 404, "NoSuchNamespaceException")
    staged = create_table(api, ns, "s", stage=True)
    # assert-create must be the only requirement.
    r = commit(
        api,
        ns,
        "s",
        [{"type": "assert-create"}, {"type": "assert-table-uuid", "uuid": staged["metadata"]["table-uuid"]}],
        java_create_updates(staged["metadata"]),
    )
    assert_error(r, 400)
    assert api.head(tables_url(ns, "s")).status_code == 404


def test_commit_identifier_must_match_path(api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "t", partitioned=False)
    body = {
        "identifier": {"namespace": [ns], "name": "other"},
        "requirements": [],
        "updates": [{"action": "set-properties", "updates": {"a": "b"}}],
    }
    assert_error(api.post(tables_url(ns, "t"), json=body), 400)
    assert "a" not in load_table(api, ns, "t")["metadata"]["properties"]
    r = commit(api, ns, "t", [], [{"action": "set-properties", "updates": {"a": "b"}}], identifier=True)
    assert r.status_code == 200
    assert load_table(api, ns, "t")["metadata"]["properties"]["a"] == "b"


# -- commit requirements ------------------------------------------------------------------------------


def _requirement_cases(meta: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(passing, failing) pairs of every requirement type on a fresh partitioned, sorted table."""
    return [
        ({"type": "assert-table-uuid", "uuid": meta["table-uuid"]}, {"type": "assert-table-uuid", "uuid": _uuid()}),
        (
            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": None},
            {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 12345},
        ),
        (
            {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 3},
            {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 2},
        ),
        (
            {"type": "assert-current-schema-id", "current-schema-id": 0},
            {"type": "assert-current-schema-id", "current-schema-id": 7},
        ),
        (
            {"type": "assert-last-assigned-partition-id", "last-assigned-partition-id": 1000},
            {"type": "assert-last-assigned-partition-id", "last-assigned-partition-id": 999},
        ),
        (
            {"type": "assert-default-spec-id", "default-spec-id": 0},
            {"type": "assert-default-spec-id", "default-spec-id": 1},
        ),
        (
            {"type": "assert-default-sort-order-id", "default-sort-order-id": meta["default-sort-order-id"]},
            {"type": "assert-default-sort-order-id", "default-sort-order-id": 0},
        ),
    ]


def test_every_requirement_type_passes_and_fails(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t")
    meta = created["metadata"]
    assert meta["default-sort-order-id"] == 1
    location = created["metadata-location"]
    files_before = len(metadata_files(meta["location"]))
    for passing, failing in _requirement_cases(meta):
        r = commit(api, ns, "t", [passing, failing], [{"action": "set-properties", "updates": {"x": "y"}}])
        err = assert_error(r, 409, "CommitFailedException")
        assert err["message"], failing
        assert load_table(api, ns, "t")["metadata-location"] == location, failing
        assert len(metadata_files(meta["location"])) == files_before, failing

    passing_all = [p for p, _ in _requirement_cases(meta)]
    r = commit(api, ns, "t", passing_all, [{"action": "set-properties", "updates": {"x": "y"}}])
    assert r.status_code == 200, r.text
    after = load_table(api, ns, "t")
    assert after["metadata-location"] != location
    assert after["metadata"]["properties"]["x"] == "y"
    assert r.json()["metadata-location"] == after["metadata-location"]


def test_assert_ref_snapshot_id_on_existing_ref(api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "t", partitioned=False)
    assert commit(api, ns, "t", [], [fake_snapshot(7, 1), set_main(7)]).status_code == 200
    for failing in (None, 8):
        r = commit(
            api,
            ns,
            "t",
            [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": failing}],
            [fake_snapshot(9, 2, parent=7), set_main(9)],
        )
        assert_error(r, 409, "CommitFailedException")
    assert load_table(api, ns, "t")["metadata"]["current-snapshot-id"] == 7
    # A branch that must not exist yet (snapshot-id null) on a table with snapshots.
    r = commit(
        api,
        ns,
        "t",
        [{"type": "assert-ref-snapshot-id", "ref": "dev", "snapshot-id": None}],
        [{"action": "set-snapshot-ref", "ref-name": "dev", "type": "branch", "snapshot-id": 7}],
    )
    assert r.status_code == 200, r.text
    r = commit(
        api,
        ns,
        "t",
        [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": 7}],
        [fake_snapshot(9, 2, parent=7), set_main(9)],
    )
    assert r.status_code == 200, r.text
    meta = load_table(api, ns, "t")["metadata"]
    assert meta["current-snapshot-id"] == 9
    assert meta["refs"]["dev"]["snapshot-id"] == 7


def test_invalid_updates_and_requirements_are_400(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    location = created["metadata-location"]
    cases: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = [
        ([], [{"action": "frobnicate-table"}]),
        ([{"type": "assert-the-moon"}], [{"action": "set-properties", "updates": {"a": "b"}}]),
        ([], [{"action": "set-current-schema", "schema-id": 42}]),
        ([], [{"action": "upgrade-format-version", "format-version": 1}]),  # downgrade
        ([], [set_main(999)]),  # unknown snapshot
        ([], [{"action": "add-encryption-key", "encryption-key": {"key-id": "k", "encrypted-key-metadata": "AA=="}}]),
    ]
    for requirements, updates in cases:
        err = assert_error(commit(api, ns, "t", requirements, updates), 400)
        assert err["type"] in ("BadRequestException", "IllegalArgumentException"), err
    assert load_table(api, ns, "t")["metadata-location"] == location
    assert len(metadata_files(created["metadata"]["location"])) == 1


def test_upgrade_to_format_v3_is_a_clear_400(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    r = commit(api, ns, "t", [], [{"action": "upgrade-format-version", "format-version": 3}])
    err = assert_error(r, 400, "IllegalArgumentException")
    assert "format version 3" in err["message"] and "versions 1 to 2" in err["message"]
    # The first update of a Java v3 staged create is the same upgrade.
    staged = create_table(api, ns, "ctas3", stage=True)
    updates = java_create_updates(staged["metadata"])
    updates[1] = {"action": "upgrade-format-version", "format-version": 3}
    err = assert_error(commit(api, ns, "ctas3", [{"type": "assert-create"}], updates), 400)
    assert "format version 3" in err["message"]
    assert api.head(tables_url(ns, "ctas3")).status_code == 404
    assert load_table(api, ns, "t")["metadata-location"] == created["metadata-location"]
    r = api.post(tables_url(ns), json={"name": "v3", "schema": SCHEMA, "properties": {"format-version": "3"}})
    err = assert_error(r, 400)
    assert "format" in err["message"].lower() and "3" in err["message"]
    assert api.head(tables_url(ns, "v3")).status_code == 404


def test_upgrade_to_v2_from_v1(api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "t", partitioned=False, properties={"format-version": "1"})
    assert load_table(api, ns, "t")["metadata"]["format-version"] == 1
    r = commit(api, ns, "t", [], [{"action": "upgrade-format-version", "format-version": 2}])
    assert r.status_code == 200, r.text
    assert load_table(api, ns, "t")["metadata"]["format-version"] == 2


def test_noop_commit_returns_current_metadata_without_a_new_file(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    uid = created["metadata"]["table-uuid"]
    r = commit(api, ns, "t", [{"type": "assert-table-uuid", "uuid": uid}], [])
    assert r.status_code == 200, r.text
    assert r.json()["metadata-location"] == created["metadata-location"]
    assert r.json()["metadata"]["table-uuid"] == uid
    assert len(metadata_files(created["metadata"]["location"])) == 1
    # Requirements are still checked on a no-op commit.
    assert_error(commit(api, ns, "t", [{"type": "assert-table-uuid", "uuid": _uuid()}], []), 409)


def test_commit_schema_spec_and_order_evolution(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t")
    meta = created["metadata"]
    new_schema = {
        **SCHEMA,
        "schema-id": 1,
        "fields": [*SCHEMA["fields"], {"id": 4, "name": "n", "type": "int", "required": False}],
    }
    r = commit(
        api,
        ns,
        "t",
        [
            {"type": "assert-current-schema-id", "current-schema-id": 0},
            {"type": "assert-last-assigned-field-id", "last-assigned-field-id": 3},
        ],
        [
            {"action": "add-schema", "schema": new_schema, "last-column-id": 4},
            {"action": "set-current-schema", "schema-id": -1},
        ],
    )
    assert r.status_code == 200, r.text
    new_spec = {
        "spec-id": 1,
        "fields": [
            *PARTITION_SPEC["fields"],
            {"source-id": 1, "field-id": 1001, "transform": "bucket[4]", "name": "id_bucket"},
        ],
    }
    r = commit(
        api,
        ns,
        "t",
        [
            {"type": "assert-last-assigned-partition-id", "last-assigned-partition-id": 1000},
            {"type": "assert-default-spec-id", "default-spec-id": 0},
        ],
        [{"action": "add-spec", "spec": new_spec}, {"action": "set-default-spec", "spec-id": -1}],
    )
    assert r.status_code == 200, r.text
    new_order = {"order-id": 2, "fields": [{**WRITE_ORDER["fields"][0], "direction": "desc"}]}
    r = commit(
        api,
        ns,
        "t",
        [{"type": "assert-default-sort-order-id", "default-sort-order-id": meta["default-sort-order-id"]}],
        [
            {"action": "add-sort-order", "sort-order": new_order},
            {"action": "set-default-sort-order", "sort-order-id": -1},
        ],
    )
    assert r.status_code == 200, r.text
    final = load_table(api, ns, "t")["metadata"]
    assert final["current-schema-id"] == 1 and final["last-column-id"] == 4
    assert final["default-spec-id"] == 1 and final["last-partition-id"] == 1001
    assert final["default-sort-order-id"] == 2
    assert len(final["metadata-log"]) == 3


def test_remove_properties_and_set_location(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False, properties={"a": "1", "b": "2"})
    # Java's UNSET TBLPROPERTIES sends keys that may not be set; the reference catalog ignores them.
    r = commit(api, ns, "t", [], [{"action": "remove-properties", "removals": ["a", "zz"]}])
    assert r.status_code == 200, r.text
    props = load_table(api, ns, "t")["metadata"]["properties"]
    assert "a" not in props and props["b"] == "2"
    r = commit(
        api,
        ns,
        "t",
        [],
        [
            {"action": "set-properties", "updates": {"c": "3"}},
            {"action": "remove-properties", "removals": ["c", "zz"]},
        ],
    )
    assert r.status_code == 200, r.text
    assert "c" not in load_table(api, ns, "t")["metadata"]["properties"]
    new_location = created["metadata"]["location"] + "_moved"
    r = commit(api, ns, "t", [], [{"action": "set-location", "location": new_location}])
    assert r.status_code == 200, r.text
    assert load_table(api, ns, "t")["metadata"]["location"] == new_location


# -- drop, rename, register ---------------------------------------------------------------------------


@pytest.mark.parametrize("purge", ["true", "True", "false"])
def test_drop_table_with_purge_flag(api: httpx.Client, ns: str, purge: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    commit(api, ns, "t", [], [{"action": "set-properties", "updates": {"v": "2"}}])
    files = metadata_files(created["metadata"]["location"])
    assert len(files) == 2
    r = api.delete(tables_url(ns, "t"), params={"purgeRequested": purge})
    assert r.status_code == 204
    assert_error(api.get(tables_url(ns, "t")), 404, "NoSuchTableException")
    assert api.head(tables_url(ns, "t")).status_code == 404
    assert api.get(tables_url(ns)).json()["identifiers"] == []
    remaining = metadata_files(created["metadata"]["location"])
    if purge.lower() == "true":
        assert remaining == []
    else:
        assert remaining == files
    assert_error(api.delete(tables_url(ns, "t")), 404, "NoSuchTableException")
    # The name is free again.
    create_table(api, ns, "t", partitioned=False)


def test_rename_table(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "src", partitioned=False)
    create_table(api, ns, "taken", partitioned=False)
    create_namespace(api, ns, "other")

    def rename(dest_ns: list[str], dest: str, src: str = "src") -> httpx.Response:
        return api.post(
            "/v1/tables/rename",
            json={"source": {"namespace": [ns], "name": src}, "destination": {"namespace": dest_ns, "name": dest}},
        )

    assert_error(rename([f"{ns}_missing"], "x"), 404, "NoSuchNamespaceException")
    err = assert_error(rename([ns], "taken"), 409, "AlreadyExistsException")
    assert err["message"].startswith(f"Table already exists: {ns}.taken")
    assert_error(rename([ns], "x", src="nope"), 404, "NoSuchTableException")
    assert load_table(api, ns, "src")["metadata-location"] == created["metadata-location"]

    assert rename([ns, "other"], "dst").status_code == 204
    assert_error(api.get(tables_url(ns, "src")), 404, "NoSuchTableException")
    moved = load_table(api, (ns, "other"), "dst")
    assert moved["metadata"]["table-uuid"] == created["metadata"]["table-uuid"]
    assert moved["metadata-location"] == created["metadata-location"]
    assert [i["name"] for i in api.get(tables_url(ns)).json()["identifiers"]] == ["taken"]
    # Commits work on the new name.
    assert (
        commit(api, (ns, "other"), "dst", [], [{"action": "set-properties", "updates": {"a": "b"}}]).status_code == 200
    )


def test_register_table(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "orig", partitioned=False)
    commit(api, ns, "orig", [], [{"action": "set-properties", "updates": {"v": "2"}}])
    latest = load_table(api, ns, "orig")["metadata-location"]
    url = f"/v1/namespaces/{ns}/register"

    bad = [
        created["metadata"]["location"] + "/metadata/99999-missing.metadata.json",
        created["metadata"]["location"],  # a directory
        "ftp://host/x.metadata.json",
    ]
    for location in bad:
        assert_error(api.post(url, json={"name": "reg", "metadata-location": location}), 400)
    assert api.head(tables_url(ns, "reg")).status_code == 404

    r = api.post(url, json={"name": "reg", "metadata-location": created["metadata-location"]})
    assert r.status_code == 200, r.text
    assert r.json()["metadata-location"] == created["metadata-location"]
    assert r.json()["metadata"]["table-uuid"] == created["metadata"]["table-uuid"]
    assert load_table(api, ns, "reg")["metadata-location"] == created["metadata-location"]

    err = assert_error(api.post(url, json={"name": "reg", "metadata-location": latest}), 409, "AlreadyExistsException")
    assert err["message"].startswith(f"Table already exists: {ns}.reg")
    assert load_table(api, ns, "reg")["metadata-location"] == created["metadata-location"]

    r = api.post(url, json={"name": "reg", "metadata-location": latest, "overwrite": True})
    assert r.status_code == 200, r.text
    assert load_table(api, ns, "reg")["metadata"]["properties"]["v"] == "2"
    assert_error(
        api.post(f"/v1/namespaces/{ns}_missing/register", json={"name": "x", "metadata-location": latest}),
        404,
        "NoSuchNamespaceException",
    )


# -- transactions, metrics ----------------------------------------------------------------------------


def test_transaction_commit_is_all_or_none(api: httpx.Client, ns: str) -> None:
    a = create_table(api, ns, "a", partitioned=False)
    b = create_table(api, ns, "b", partitioned=False)

    def change(name: str, uid: str, value: str) -> dict[str, Any]:
        return {
            "identifier": {"namespace": [ns], "name": name},
            "requirements": [{"type": "assert-table-uuid", "uuid": uid}],
            "updates": [{"action": "set-properties", "updates": {"tx": value}}],
        }

    bad = {"table-changes": [change("a", a["metadata"]["table-uuid"], "1"), change("b", _uuid(), "1")]}
    assert_error(api.post("/v1/transactions/commit", json=bad), 409, "CommitFailedException")
    assert load_table(api, ns, "a")["metadata-location"] == a["metadata-location"]
    assert load_table(api, ns, "b")["metadata-location"] == b["metadata-location"]
    assert len(metadata_files(a["metadata"]["location"])) == 1

    invalid = {
        "table-changes": [
            change("a", a["metadata"]["table-uuid"], "1"),
            {
                **change("b", b["metadata"]["table-uuid"], "1"),
                "updates": [{"action": "set-current-schema", "schema-id": 99}],
            },
        ]
    }
    assert_error(api.post("/v1/transactions/commit", json=invalid), 400)
    assert load_table(api, ns, "a")["metadata-location"] == a["metadata-location"]

    good = {
        "table-changes": [change("a", a["metadata"]["table-uuid"], "2"), change("b", b["metadata"]["table-uuid"], "2")]
    }
    assert api.post("/v1/transactions/commit", json=good).status_code == 204
    assert load_table(api, ns, "a")["metadata"]["properties"]["tx"] == "2"
    assert load_table(api, ns, "b")["metadata"]["properties"]["tx"] == "2"

    missing = {"table-changes": [change("a", a["metadata"]["table-uuid"], "3"), change("nope", _uuid(), "3")]}
    assert_error(api.post("/v1/transactions/commit", json=missing), 404, "NoSuchTableException")
    assert load_table(api, ns, "a")["metadata"]["properties"]["tx"] == "2"
    twice = {
        "table-changes": [change("a", a["metadata"]["table-uuid"], "4"), change("a", a["metadata"]["table-uuid"], "5")]
    }
    assert_error(api.post("/v1/transactions/commit", json=twice), 400)
    no_ident = {"table-changes": [{"requirements": [], "updates": []}]}
    assert_error(api.post("/v1/transactions/commit", json=no_ident), 400)


def test_metrics_endpoint(api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "t", partitioned=False)
    url = tables_url(ns, "t") + "/metrics"
    scan = {
        "report-type": "scan-report",
        "table-name": f"lake.{ns}.t",
        "snapshot-id": -1,
        "filter": True,
        "schema-id": 0,
        "projected-field-ids": [1],
        "projected-field-names": ["id"],
        "metrics": {"total-planning-duration": {"count": 1, "time-unit": "nanoseconds", "total-duration": 10}},
    }
    r = api.post(url, json=scan)
    assert r.status_code == 204 and r.content == b""
    commit_report = {
        "report-type": "commit-report",
        "table-name": f"lake.{ns}.t",
        "snapshot-id": 1,
        "sequence-number": 1,
        "operation": "append",
        "metrics": {},
    }
    assert api.post(url, json=commit_report).status_code == 204
    assert_error(api.post(url, json={**scan, "report-type": "bogus-report"}), 400)
    assert_error(api.post(url, json={"metrics": {}}), 400)
    assert_error(api.post(tables_url(ns, "missing") + "/metrics", json=scan), 404, "NoSuchTableException")


def test_purge_is_best_effort_when_files_are_already_gone(api: httpx.Client, ns: str) -> None:
    """The drop has committed before the purge runs: a missing manifest list must not turn it into a 5xx."""
    created = create_table(api, ns, "t", partitioned=False)
    assert commit(api, ns, "t", [], [fake_snapshot(5, 1), set_main(5)]).status_code == 200
    r = api.delete(tables_url(ns, "t"), params={"purgeRequested": "true"})
    assert r.status_code == 204, r.text
    assert_error(api.get(tables_url(ns, "t")), 404, "NoSuchTableException")
    assert metadata_files(created["metadata"]["location"]) == []


def test_added_specs_and_orders_must_fit_the_schema(api: httpx.Client, ns: str) -> None:
    created = create_table(api, ns, "t", partitioned=False)
    bad_specs = [
        {"source-id": 2, "field-id": 1000, "transform": "day", "name": "p"},  # day(string)
        {"source-id": 99, "field-id": 1000, "transform": "identity", "name": "p"},  # no such column
        {"source-id": 1, "field-id": 1000, "transform": "bucket[0]", "name": "p"},
        {"source-id": 2, "field-id": 1000, "transform": "truncate[0]", "name": "p"},
    ]
    for field in bad_specs:
        spec = {"spec-id": 1, "fields": [field]}
        r = commit(
            api, ns, "t", [], [{"action": "add-spec", "spec": spec}, {"action": "set-default-spec", "spec-id": -1}]
        )
        assert_error(r, 400)
        r = api.post(tables_url(ns), json={"name": "x", "schema": SCHEMA, "partition-spec": {**spec, "spec-id": 0}})
        assert_error(r, 400)
    order = {
        "order-id": 2,
        "fields": [{"source-id": 2, "transform": "year", "direction": "asc", "null-order": "nulls-first"}],
    }
    r = commit(api, ns, "t", [], [{"action": "add-sort-order", "sort-order": order}])
    assert_error(r, 400)
    r = api.post(tables_url(ns), json={"name": "x", "schema": SCHEMA, "write-order": {**order, "order-id": 1}})
    assert_error(r, 400)
    assert load_table(api, ns, "t")["metadata-location"] == created["metadata-location"]
    assert api.head(tables_url(ns, "x")).status_code == 404
    good = {"spec-id": 1, "fields": [{"source-id": 1, "field-id": 1000, "transform": "bucket[8]", "name": "b"}]}
    r = commit(api, ns, "t", [], [{"action": "add-spec", "spec": good}, {"action": "set-default-spec", "spec-id": -1}])
    assert r.status_code == 200, r.text


def test_gzip_metadata_and_old_file_cleanup(api: httpx.Client, ns: str) -> None:
    props = {
        "write.metadata.compression-codec": "gzip",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "1",
    }
    created = create_table(api, ns, "t", partitioned=False, properties=props)
    assert created["metadata-location"].endswith(".gz.metadata.json")
    assert local_path(created["metadata-location"]).read_bytes()[:2] == b"\x1f\x8b"
    for n in range(3):
        r = commit(api, ns, "t", [], [{"action": "set-properties", "updates": {"n": str(n)}}])
        assert r.status_code == 200, r.text
    loaded = load_table(api, ns, "t")
    assert loaded["metadata"]["properties"]["n"] == "2"
    assert loaded["metadata-location"].endswith(".gz.metadata.json")
    # Only the current file and the one the log keeps remain; the server deleted the rest.
    kept = {local_path(e["metadata-file"]) for e in loaded["metadata"]["metadata-log"]}
    assert len(kept) == 1
    assert set(metadata_files(created["metadata"]["location"])) == {*kept, local_path(loaded["metadata-location"])}
    assert not local_path(created["metadata-location"]).exists()
