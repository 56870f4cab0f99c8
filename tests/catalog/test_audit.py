"""The audit log through ``GET /lakeforge/v1/audit``: catalog changes made over HTTP with their principal,
the filters, paging, and scan/commit reports posted to ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from tests.conftest import make_settings

AUDIT = "/lakeforge/v1/audit"
SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
SCAN_REPORT = {
    "report-type": "scan-report",
    "table-name": "lake.db.t",
    "snapshot-id": 1,
    "filter": {"type": "true"},
    "schema-id": 0,
    "projected-field-ids": [1],
    "projected-field-names": ["id"],
    "metrics": {},
    "metadata": {},
}


@pytest.fixture
def authed(tmp_path: Path) -> Iterator[TestClient]:
    """A catalog with auth on; the client sends a token of principal ``etl-bot``."""
    settings = make_settings(tmp_path / "lake", client_id="etl-bot", client_secret="s3cret")
    with TestClient(create_app(settings)) as c:
        token = c.post(
            "/v1/oauth/tokens",
            data={"grant_type": "client_credentials", "client_id": "etl-bot", "client_secret": "s3cret"},
        )
        assert token.status_code == 200, token.text
        c.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield c


def entries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(AUDIT, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def create_table(client: TestClient, ns: str, name: str) -> dict[str, Any]:
    response = client.post(f"/v1/namespaces/{ns}/tables", json={"name": name, "schema": SCHEMA})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_changes_over_http_are_audited_with_their_principal(authed: TestClient) -> None:
    start = int(time.time() * 1000)
    assert authed.post("/v1/namespaces", json={"namespace": ["db"], "properties": {"owner": "x"}}).status_code == 200
    table = create_table(authed, "db", "t")
    assert authed.delete("/v1/namespaces/db/tables/t").status_code == 204

    log = entries(authed)
    assert [(e["action"], e["namespace"], e["name"]) for e in log] == [
        ("create-namespace", ["db"], None),
        ("create-table", ["db"], "t"),
        ("drop-table", ["db"], "t"),
    ]
    assert {e["principal"] for e in log} == {"etl-bot"}
    assert log[0]["detail"] == {"properties": {"owner": "x"}}
    assert log[1]["metadata-location"] == table["metadata-location"]
    assert all(e["ts-ms"] >= start for e in log)
    assert [e["id"] for e in log] == sorted(e["id"] for e in log)

    # A failed change leaves no record.
    assert authed.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 409
    assert len(entries(authed)) == 3


def test_the_audit_log_needs_a_token_when_auth_is_on(authed: TestClient) -> None:
    response = authed.get(AUDIT, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "NotAuthorizedException"
    bad = authed.get(AUDIT, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_filters(client: TestClient) -> None:
    for ns in (["a"], ["a", "b"], ["c"]):
        assert client.post("/v1/namespaces", json={"namespace": ns}).status_code == 200
    create_table(client, "a", "t1")
    create_table(client, "a%1Fb", "t1")
    create_table(client, "c", "t2")

    assert [e["namespace"] for e in entries(client, action="create-table")] == [["a"], ["a", "b"], ["c"]]
    assert [e["action"] for e in entries(client, namespace="a")] == ["create-namespace", "create-table"]
    # Nested namespaces: dotted or 0x1F-joined, matched exactly (not as a prefix).
    nested = entries(client, namespace="a.b")
    assert nested == entries(client, namespace="a\x1fb")
    assert [(e["action"], e["namespace"]) for e in nested] == [
        ("create-namespace", ["a", "b"]),
        ("create-table", ["a", "b"]),
    ]
    assert [e["namespace"] for e in entries(client, name="t1")] == [["a"], ["a", "b"]]
    assert [e["namespace"] for e in entries(client, namespace="a", name="t1", action="create-table")] == [["a"]]
    assert entries(client, action="drop-table") == []
    assert entries(client, namespace="zzz") == []

    everything = entries(client)
    assert len(everything) == 6
    assert entries(client, since_ms=everything[-1]["ts-ms"] + 60_000) == []
    assert entries(client, since_ms=everything[0]["ts-ms"]) == everything
    assert entries(client, after_id=everything[2]["id"]) == everything[3:]

    bad_ns = client.get(AUDIT, params={"namespace": "a..b"})
    assert bad_ns.status_code == 400


def test_paging_with_limit_and_after_id(client: TestClient) -> None:
    for i in range(5):
        assert client.post("/v1/namespaces", json={"namespace": [f"n{i}"]}).status_code == 200
    seen: list[int] = []
    after: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after_id": after} if after is not None else {})}
        body = client.get(AUDIT, params=params).json()
        pages += 1
        assert len(body["entries"]) <= 2
        seen.extend(e["id"] for e in body["entries"])
        after = body["next-after-id"]
        if after is None:
            break
        assert after == seen[-1]
    assert pages == 3 and len(seen) == 5 and seen == sorted(set(seen))
    # Exactly a page's worth left: no token pointing at an empty page.
    assert client.get(AUDIT, params={"limit": 5}).json()["next-after-id"] is None
    assert client.get(AUDIT, params={"limit": 4}).json()["next-after-id"] == seen[3]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"since_ms": -1}, {"after_id": "y"}])
def test_bad_audit_queries_are_400(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get(AUDIT, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "BadRequestException"


def test_the_largest_page_is_1000(client: TestClient) -> None:
    assert client.get(AUDIT, params={"limit": 1000}).status_code == 200


def test_scan_reports_are_stored_and_queryable(authed: TestClient) -> None:
    assert authed.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 200
    create_table(authed, "db", "t")
    response = authed.post("/v1/namespaces/db/tables/t/metrics", json=SCAN_REPORT)
    assert response.status_code == 204, response.text

    (report,) = entries(authed, action="scan-report")
    assert (report["namespace"], report["name"], report["principal"]) == (["db"], "t", "etl-bot")
    assert report["snapshot-id"] == 1
    detail = report["detail"]
    assert detail["table-name"] == "lake.db.t"
    assert detail["filter"] == {"type": "true"}
    assert detail["projected-field-names"] == ["id"]
    assert detail["schema-id"] == 0
    assert entries(authed, namespace="db", name="t", action="scan-report") == [report]


def test_commit_reports_are_stored(client: TestClient) -> None:
    assert client.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 200
    create_table(client, "db", "t")
    body = {
        "report-type": "commit-report",
        "table-name": "lake.db.t",
        "snapshot-id": 42,
        "sequence-number": 1,
        "operation": "append",
        "metrics": {"added-records": {"unit": "count", "value": 10}},
        "metadata": {"engine-name": "spark"},
    }
    assert client.post("/v1/namespaces/db/tables/t/metrics", json=body).status_code == 204
    (report,) = entries(client, action="commit-report")
    assert report["snapshot-id"] == 42
    assert report["detail"]["operation"] == "append"
    assert report["detail"]["metrics"] == {"added-records": {"unit": "count", "value": 10}}


def test_a_report_for_a_missing_table_is_404_and_not_stored(client: TestClient) -> None:
    assert client.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 200
    before = entries(client)
    for path in ("/v1/namespaces/db/tables/missing/metrics", "/v1/namespaces/nope/tables/t/metrics"):
        response = client.post(path, json=SCAN_REPORT)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["type"] == "NoSuchTableException"
    assert entries(client) == before
    assert entries(client, action="scan-report") == []


def test_a_malformed_report_is_400(client: TestClient) -> None:
    assert client.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 200
    create_table(client, "db", "t")
    response = client.post("/v1/namespaces/db/tables/t/metrics", json={**SCAN_REPORT, "report-type": "bogus"})
    assert response.status_code == 400
    assert entries(client, action="scan-report") == []
