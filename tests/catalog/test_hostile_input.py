"""Hostile and malformed input: every request gets a clear 4xx in the Iceberg error model (never a 5xx)
and nothing is created or changed. Run against the in-process app and a real uvicorn server, both with
a small body limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.server import CatalogServer
from tests.catalog.rest_helpers import (
    SCHEMA,
    assert_client_error,
    assert_error,
    commit,
    create_namespace,
    create_table,
    fake_snapshot,
    load_table,
    metadata_files,
    ns_path,
    tables_url,
)
from tests.conftest import make_settings

BODY_LIMIT = 64 * 1024

#: Names no level, table or view may have.
BAD_NAMES = [
    "a/b",
    "a\\b",
    "..",
    ".",
    "a.b",
    "a\x00b",
    "a\x01b",
    "a\x1fb",
    "a\nb",
    "a\x7fb",
    "x" * 256,
    "",
    " padded",
    "padded ",
    "\t",
]
METADATA_TABLE_NAMES = ["snapshots", "files", "entries", "history", "manifests", "partitions", "refs", "Snapshots"]


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogServer]:
    home = tmp_path_factory.mktemp("hostile-lake")
    with CatalogServer(make_settings(home, max_body_bytes=BODY_LIMIT)) as srv:
        yield srv


@pytest.fixture(params=["in-process", "uvicorn"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    if request.param == "in-process":
        settings = make_settings(tmp_path / "lake", max_body_bytes=BODY_LIMIT)
        with TestClient(create_app(settings)) as c:
            yield c
    else:
        server: CatalogServer = request.getfixturevalue("limited_server")
        with httpx.Client(base_url=server.uri, timeout=30) as c:
            yield c


@pytest.fixture
def root(api: httpx.Client, unique_ns: str) -> str:
    """A namespace with one table ``t`` (property ``v=1``) and one child namespace ``child``."""
    create_namespace(api, unique_ns, properties={"p": "1"})
    create_namespace(api, unique_ns, "child")
    create_table(api, unique_ns, "t", partitioned=False, properties={"v": "1"})
    return unique_ns


def _state(api: httpx.Client, root: str) -> dict[str, Any]:
    """Everything a hostile request could have changed under ``root``."""
    top = api.get("/v1/namespaces").json()["namespaces"]
    children = api.get("/v1/namespaces", params={"parent": root}).json()["namespaces"]
    tables = api.get(tables_url(root)).json()["identifiers"]
    child_tables = api.get(tables_url((root, "child"))).json()["identifiers"]
    table = load_table(api, root, "t")
    return {
        "top": sorted(map(tuple, top)),
        "children": children,
        "tables": tables,
        "child_tables": child_tables,
        "ns_props": api.get(f"/v1/namespaces/{root}").json()["properties"],
        "table": table["metadata-location"],
        "files": len(metadata_files(table["metadata"]["location"])),
    }


# -- identifiers --------------------------------------------------------------------------------------


def test_bad_names_in_bodies_are_rejected(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    for name in BAD_NAMES:
        for namespace in ([name], [root, name]):
            assert_error(api.post("/v1/namespaces", json={"namespace": namespace}), 400)
        assert_error(api.post(tables_url(root), json={"name": name, "schema": SCHEMA}), 400)
        assert_error(api.post(tables_url(root), json={"name": name, "schema": SCHEMA, "stage-create": True}), 400)
        r = api.post(
            "/v1/tables/rename",
            json={"source": {"namespace": [root], "name": "t"}, "destination": {"namespace": [root], "name": name}},
        )
        assert_error(r, 400)
        r = api.post(
            "/v1/tables/rename",
            json={"source": {"namespace": [root], "name": "t"}, "destination": {"namespace": [name], "name": "t2"}},
        )
        assert_client_error(r)
        table = load_table(api, root, "t")
        r = api.post(
            f"/v1/namespaces/{root}/register", json={"name": name, "metadata-location": table["metadata-location"]}
        )
        assert_error(r, 400)
    assert _state(api, root) == before


def test_bad_names_in_urls_are_rejected(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    for name in BAD_NAMES:
        if name in ("", "a/b"):
            continue  # no path segment / a different path: covered below
        table_url = tables_url(root, name)
        for method in ("GET", "DELETE"):
            assert_error(api.request(method, table_url), 400)
        assert api.head(table_url).status_code == 400
        assert_error(commit(api, root, name, [{"type": "assert-create"}], []), 400)
        assert_error(api.post(table_url + "/metrics", json={"report-type": "scan-report", "table-name": "x"}), 400)
        if "\x1f" in name:
            continue  # in a namespace path 0x1F is the level separator
        ns_url = f"/v1/namespaces/{ns_path(root, name)}"
        for method in ("GET", "DELETE"):
            assert_error(api.request(method, ns_url), 400)
        assert_error(api.post(ns_url + "/properties", json={"updates": {"a": "b"}}), 400)
        assert_error(api.get(tables_url((root, name))), 400)
        assert_error(api.get("/v1/namespaces", params={"parent": f"{root}\x1f{name}"}), 400)
    # An empty level between separators.
    assert_error(api.get(f"/v1/namespaces/{ns_path(root, '', 'x')}"), 400)
    assert _state(api, root) == before


def test_encoded_slash_cannot_address_another_resource(api: httpx.Client, root: str) -> None:
    """``DROP NAMESPACE `root/tables/t``` must not drop table ``root.t``: a ``%2F`` in a name is not a path
    separator."""
    before = _state(api, root)
    for method, url in (
        ("DELETE", f"/v1/namespaces/{root}%2Ftables%2Ft"),
        ("GET", f"/v1/namespaces/{root}%2Ftables%2Ft"),
        ("DELETE", f"/v1/namespaces/{root}/tables/t%2Fx"),
        ("GET", f"/v1/namespaces/{root}/tables/t%2fx"),
        ("POST", f"/v1/namespaces/{root}%2Fproperties"),
    ):
        r = api.request(method, url, json={"updates": {"p": "2"}} if method == "POST" else None)
        assert_client_error(r)
    assert _state(api, root) == before


def test_dot_segments_in_urls(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    for url in (
        f"/v1/namespaces/{root}/tables/%2E%2E",
        f"/v1/namespaces/{root}/tables/%2e",
        "/v1/namespaces/%2E%2E/tables/t",
    ):
        for method in ("GET", "DELETE"):
            assert_client_error(api.request(method, url))
    assert _state(api, root) == before


def test_metadata_table_names_cannot_be_table_names(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    table = load_table(api, root, "t")
    for name in METADATA_TABLE_NAMES:
        err = assert_error(api.post(tables_url(root), json={"name": name, "schema": SCHEMA}), 400)
        assert "metadata table" in err["message"]
        assert_error(api.post(tables_url(root), json={"name": name, "schema": SCHEMA, "stage-create": True}), 400)
        assert_error(commit(api, root, name, [{"type": "assert-create"}], []), 400)
        r = api.post(
            "/v1/tables/rename",
            json={"source": {"namespace": [root], "name": "t"}, "destination": {"namespace": [root], "name": name}},
        )
        assert_error(r, 400)
        r = api.post(
            f"/v1/namespaces/{root}/register", json={"name": name, "metadata-location": table["metadata-location"]}
        )
        assert_error(r, 400)
        # Looking one up is fine (Spark probes db.t.snapshots that way) and is a plain 404.
        assert_error(api.get(tables_url(root, name)), 404, "NoSuchTableException")
    # A namespace may be called like a metadata table.
    create_namespace(api, root, "snapshots")
    after = _state(api, root)
    assert after["children"] == [*before["children"], [root, "snapshots"]]
    assert {**after, "children": before["children"]} == before


# -- malformed bodies ---------------------------------------------------------------------------------


def _post_endpoints(root: str) -> list[str]:
    return [
        "/v1/namespaces",
        f"/v1/namespaces/{root}/properties",
        tables_url(root),
        tables_url(root, "t"),
        f"/v1/namespaces/{root}/register",
        "/v1/tables/rename",
        "/v1/transactions/commit",
        tables_url(root, "t") + "/metrics",
    ]


def test_invalid_json_and_non_json_bodies(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    bodies: list[tuple[bytes, str]] = [
        (b"{not json", "application/json"),
        (b'{"namespace": ["x"]', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'"a string"', "application/json"),
        (b"namespace=x", "application/x-www-form-urlencoded"),
        (b'{"namespace": ["x"]}', "text/plain"),
    ]
    for url in _post_endpoints(root):
        for content, content_type in bodies:
            r = api.post(url, content=content, headers={"content-type": content_type})
            if url.endswith("/tables/t") and content == b"":
                continue  # an empty commit body is ... an empty commit? checked below
            assert_client_error(r)
    assert _state(api, root) == before


def test_wrong_types_and_missing_fields(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    uid = load_table(api, root, "t")["metadata"]["table-uuid"]
    cases: list[tuple[str, Any]] = [
        ("/v1/namespaces", {"namespace": "flat-string"}),
        ("/v1/namespaces", {"namespace": [1, 2]}),
        ("/v1/namespaces", {"namespace": [["nested"]]}),
        ("/v1/namespaces", {"namespace": []}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"a": 1}}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"a": None}}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"a": True}}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": ["a", "b"]}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"exists": "false"}}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"k" * 300: "v"}}),
        ("/v1/namespaces", {"namespace": ["x"], "properties": {"k": "v" * 1001}}),
        ("/v1/namespaces", {"namespace": [f"l{i}" for i in range(17)]}),
        ("/v1/namespaces", {"namespace": ["x"], "unexpected": 1}),
        ("/v1/namespaces", {}),
        (f"/v1/namespaces/{root}/properties", {"updates": {"p": 2}}),
        (f"/v1/namespaces/{root}/properties", {"updates": {"p": None}}),
        (f"/v1/namespaces/{root}/properties", {"removals": "p"}),
        (f"/v1/namespaces/{root}/properties", {"removals": ["exists"]}),
        (f"/v1/namespaces/{root}/properties", {"updates": {"exists": "x"}}),
        (tables_url(root), {"name": "x"}),
        (tables_url(root), {"schema": SCHEMA}),
        (tables_url(root), {"name": ["x"], "schema": SCHEMA}),
        (tables_url(root), {"name": "x", "schema": "struct<a:int>"}),
        (tables_url(root), {"name": "x", "schema": {"type": "struct", "fields": [{"id": 1}]}}),
        (tables_url(root), {"name": "x", "schema": {**SCHEMA, "fields": [{**SCHEMA["fields"][0], "type": "lng"}]}}),
        (tables_url(root), {"name": "x", "schema": SCHEMA, "properties": {"a": 1}}),
        (tables_url(root), {"name": "x", "schema": SCHEMA, "location": "ftp://elsewhere/x"}),
        (tables_url(root), {"name": "x", "schema": SCHEMA, "location": "s3:///no-bucket"}),
        (tables_url(root), {"name": "x", "schema": SCHEMA, "location": "s3://b/../../escape"}),
        (
            tables_url(root),
            {
                "name": "x",
                "schema": SCHEMA,
                "partition-spec": {
                    "spec-id": 0,
                    "fields": [{"source-id": 99, "field-id": 1000, "transform": "day", "name": "p"}],
                },
            },
        ),
        (
            tables_url(root),
            {
                "name": "x",
                "schema": SCHEMA,
                "partition-spec": {
                    "spec-id": 0,
                    "fields": [{"source-id": 2, "field-id": 1000, "transform": "nope", "name": "p"}],
                },
            },
        ),
        (tables_url(root, "t"), {"requirements": {"type": "assert-create"}, "updates": []}),
        (tables_url(root, "t"), {"requirements": [], "updates": {"action": "set-properties"}}),
        (tables_url(root, "t"), {"requirements": [{"uuid": uid}], "updates": []}),
        (tables_url(root, "t"), {"requirements": [], "updates": [{"updates": {"a": "b"}}]}),
        (
            tables_url(root, "t"),
            {"requirements": [], "updates": [{"action": "set-properties", "updates": {"a": None}}]},
        ),
        (tables_url(root, "t"), {"requirements": [], "updates": [{"action": "set-properties"}]}),
        (tables_url(root, "t"), {"requirements": [{"type": "assert-table-uuid", "uuid": "not-a-uuid"}], "updates": []}),
        (tables_url(root, "t"), {"requirements": [], "updates": [{"action": "set-location", "location": "ftp://x/y"}]}),
        (tables_url(root, "t"), {"identifier": {"namespace": root, "name": "t"}, "updates": []}),
        (f"/v1/namespaces/{root}/register", {"name": "r"}),
        (f"/v1/namespaces/{root}/register", {"metadata-location": "file:///x.metadata.json"}),
        (f"/v1/namespaces/{root}/register", {"name": "r", "metadata-location": "/etc/hostname"}),
        (f"/v1/namespaces/{root}/register", {"name": "r", "metadata-location": "relative/path.json"}),
        ("/v1/tables/rename", {"source": {"namespace": [root], "name": "t"}}),
        (
            "/v1/tables/rename",
            {"source": {"namespace": root, "name": "t"}, "destination": {"namespace": [root], "name": "u"}},
        ),
        ("/v1/transactions/commit", {}),
        ("/v1/transactions/commit", {"table-changes": []}),
        ("/v1/transactions/commit", {"table-changes": {"a": 1}}),
        (tables_url(root, "t") + "/metrics", {"report-type": "scan-report"}),
        (tables_url(root, "t") + "/metrics", {"report-type": "scan-report", "table-name": "t", "snapshot-id": "x"}),
    ]
    for url, body in cases:
        err = assert_client_error(api.post(url, json=body))
        assert err["code"] in (400, 404, 422), (url, body, err)
    assert _state(api, root) == before


def test_out_of_range_numbers_are_rejected(api: httpx.Client, root: str) -> None:
    """Snapshot ids are Java longs: one that does not fit must not reach the metadata file or the database."""
    before = _state(api, root)
    for snapshot_id in (2**63, -(2**63) - 1, 10**30):
        r = commit(api, root, "t", [], [fake_snapshot(snapshot_id, 1)])
        assert_error(r, 400)
        r = api.post(
            tables_url(root, "t") + "/metrics",
            json={"report-type": "commit-report", "table-name": "t", "snapshot-id": snapshot_id},
        )
        assert_client_error(r)
    r = commit(api, root, "t", [], [{"action": "upgrade-format-version", "format-version": 10**30}])
    assert_error(r, 400)
    r = commit(api, root, "t", [{"type": "assert-current-schema-id", "current-schema-id": 10**30}], [])
    assert_client_error(r)
    assert _state(api, root) == before


def test_bad_query_parameters(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    assert_error(api.get("/v1/namespaces", params={"pageSize": "many"}), 400)
    assert_error(api.get(tables_url(root), params={"pageSize": "1.5"}), 400)
    # An absurd page size is capped at the server's page size.
    r = api.get(tables_url(root), params={"pageSize": str(10**30)})
    assert r.status_code == 200 and [i["name"] for i in r.json()["identifiers"]] == ["t"]
    r = api.get(tables_url(root), params={"pageSize": "-5"})
    assert r.status_code == 200 and [i["name"] for i in r.json()["identifiers"]] == ["t"]
    # A token that was never issued just yields what sorts after it.
    r = api.get(tables_url(root), params={"pageToken": "\U0010ffff"})
    assert r.status_code == 200 and r.json()["identifiers"] == []
    assert_error(api.get(tables_url(root, "t"), params={"snapshots": "some"}), 400)
    # Any spelling other than true means "do not purge", and drops nothing on a bad identifier.
    assert_error(api.delete(tables_url(root, "t\x00"), params={"purgeRequested": "maybe"}), 400)
    assert _state(api, root) == before


# -- oversized bodies ---------------------------------------------------------------------------------


def test_oversized_body_is_413(api: httpx.Client, root: str) -> None:
    before = _state(api, root)
    big = {"namespace": [root, "big"], "properties": {f"k{i}": "v" * 900 for i in range(BODY_LIMIT // 900 + 10)}}
    payload = json.dumps(big).encode()
    assert len(payload) > BODY_LIMIT
    err = assert_error(api.post("/v1/namespaces", content=payload, headers={"content-type": "application/json"}), 413)
    assert str(BODY_LIMIT) in err["message"]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    # Without Content-Length (chunked transfer): the limit still holds while the body streams in.
    r = api.post("/v1/namespaces", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413)
    huge_commit = {
        "requirements": [],
        "updates": [{"action": "set-properties", "updates": {f"k{i}": "v" * 900 for i in range(100)}}],
    }
    r = api.post(tables_url(root, "t"), json=huge_commit)
    assert_error(r, 413)
    assert _state(api, root) == before
    # A body just under the limit is fine.
    ok = {"namespace": [root, "ok"], "properties": {f"k{i}": "v" * 900 for i in range(BODY_LIMIT // 1000 - 4)}}
    assert len(json.dumps(ok)) < BODY_LIMIT
    assert api.post("/v1/namespaces", json=ok).status_code == 200
