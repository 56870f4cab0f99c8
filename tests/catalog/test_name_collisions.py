"""Tables, views and raw datasets share one name space per namespace, as in a Glue Data Catalog."""

from __future__ import annotations

from fastapi.testclient import TestClient

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
VIEW = {
    "name": "raw",
    "schema": SCHEMA,
    "view-version": {
        "version-id": 1,
        "timestamp-ms": 0,
        "schema-id": 0,
        "summary": {},
        "representations": [{"type": "sql", "sql": "SELECT 1 AS id", "dialect": "spark"}],
        "default-namespace": ["db"],
    },
}
DATASET = {
    "name": "raw",
    "format": "json",
    "location": "s3://landing/raw",
    "columns": [{"name": "id", "type": "bigint"}],
}


def test_tables_views_and_renames_cannot_take_a_dataset_name(client: TestClient) -> None:
    assert client.post("/v1/namespaces", json={"namespace": ["db"]}).status_code == 200
    assert client.post("/lakeforge/v1/namespaces/db/datasets", json=DATASET).status_code == 200

    created = client.post("/v1/namespaces/db/tables", json={"name": "raw", "schema": SCHEMA})
    assert created.status_code == 409 and "Raw dataset" in created.json()["error"]["message"]
    staged = client.post("/v1/namespaces/db/tables", json={"name": "raw", "schema": SCHEMA, "stage-create": True})
    assert staged.status_code == 409
    view = client.post("/v1/namespaces/db/views", json=VIEW)
    assert view.status_code == 409 and "Raw dataset" in view.json()["error"]["message"]

    assert client.post("/v1/namespaces/db/tables", json={"name": "other", "schema": SCHEMA}).status_code == 200
    renamed = client.post(
        "/v1/tables/rename",
        json={"source": {"namespace": ["db"], "name": "other"}, "destination": {"namespace": ["db"], "name": "raw"}},
    )
    assert renamed.status_code == 409
    names = [i["name"] for i in client.get("/v1/namespaces/db/tables").json()["identifiers"]]
    assert names == ["other"]
    assert client.get("/v1/namespaces/db/views").json()["identifiers"] == []
    assert client.get("/lakeforge/v1/namespaces/db/datasets/raw").status_code == 200


def test_datasets_cannot_take_a_table_or_view_name(client: TestClient) -> None:
    client.post("/v1/namespaces", json={"namespace": ["db"]})
    client.post("/v1/namespaces/db/tables", json={"name": "raw", "schema": SCHEMA})
    resp = client.post("/lakeforge/v1/namespaces/db/datasets", json=DATASET)
    assert resp.status_code == 409 and "Table with same name" in resp.json()["error"]["message"]
    assert client.get("/lakeforge/v1/namespaces/db/datasets").json()["datasets"] == []


def test_view_rename_onto_a_view_uses_the_reference_message(client: TestClient) -> None:
    client.post("/v1/namespaces", json={"namespace": ["db"]})
    for name in ("a", "b"):
        assert client.post("/v1/namespaces/db/views", json={**VIEW, "name": name}).status_code == 200
    resp = client.post(
        "/v1/views/rename",
        json={"source": {"namespace": ["db"], "name": "a"}, "destination": {"namespace": ["db"], "name": "b"}},
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["message"] == "Cannot rename db.a to db.b. View already exists"
