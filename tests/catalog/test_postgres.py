"""The catalog on a real PostgreSQL server (installed from Debian's packages and started here)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.server import CatalogServer
from catalog.settings import CatalogSettings, Settings
from tests.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="lakeforge-pg-"))
    server = PostgresServer(base).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_settings(postgres: PostgresServer, tmp_path: Path) -> Settings:
    url = postgres.create_database(f"lake_{uuid.uuid4().hex[:8]}")
    return Settings(home=tmp_path / "lake", catalog=CatalogSettings(port=0, database_url=url, fsync=False))  # type: ignore[call-arg]


SCHEMA = {
    "type": "struct",
    "schema-id": 0,
    "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
}


def test_namespaces_tables_and_commits_on_postgres(pg_settings: Settings) -> None:
    with TestClient(create_app(pg_settings)) as c:
        assert c.post("/v1/namespaces", json={"namespace": ["a"], "properties": {"k": "v"}}).status_code == 200
        assert c.post("/v1/namespaces", json={"namespace": ["a", "b"]}).status_code == 200
        assert c.get("/v1/namespaces", params={"parent": "a"}).json()["namespaces"] == [["a", "b"]]
        created = c.post("/v1/namespaces/a/tables", json={"name": "t", "schema": SCHEMA})
        assert created.status_code == 200, created.text
        uuid_ = created.json()["metadata"]["table-uuid"]
        commit = {
            "requirements": [{"type": "assert-table-uuid", "uuid": uuid_}],
            "updates": [{"action": "set-properties", "updates": {"owner": "pg"}}],
        }
        resp = c.post("/v1/namespaces/a/tables/t", json=commit)
        assert resp.status_code == 200 and resp.json()["metadata"]["properties"]["owner"] == "pg"
        stale = {"requirements": [{"type": "assert-table-uuid", "uuid": str(uuid.uuid4())}], "updates": []}
        assert c.post("/v1/namespaces/a/tables/t", json=stale).status_code == 409
        assert c.delete("/v1/namespaces/a").status_code == 409
        assert c.delete("/v1/namespaces/a/tables/t").status_code == 204
        assert c.delete("/v1/namespaces/a%1Fb").status_code == 204
        assert c.delete("/v1/namespaces/a").status_code == 204


def test_racing_commits_on_postgres_lose_no_update(pg_settings: Settings) -> None:
    """Eight writers race on one table; the server re-applies lost pointer swaps, so none is lost."""
    with TestClient(create_app(pg_settings)) as c:
        c.post("/v1/namespaces", json={"namespace": ["r"]})
        c.post("/v1/namespaces/r/tables", json={"name": "t", "schema": SCHEMA})
        statuses: list[int] = []
        barrier = threading.Barrier(8)

        def writer(i: int) -> None:
            barrier.wait()
            payload = {
                "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": None}],
                "updates": [{"action": "set-properties", "updates": {f"writer-{i}": "done"}}],
            }
            statuses.append(c.post("/v1/namespaces/r/tables/t", json=payload).status_code)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 8
        metadata = c.get("/v1/namespaces/r/tables/t").json()["metadata"]
        assert {k for k in metadata["properties"] if k.startswith("writer-")} == {f"writer-{i}" for i in range(8)}
        assert len(metadata["metadata-log"]) == 8


def test_pyiceberg_appends_through_uvicorn_on_postgres(pg_settings: Settings) -> None:
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import CommitFailedException

    with CatalogServer(pg_settings) as server:
        catalog = RestCatalog("lake", uri=server.uri)
        catalog.create_namespace("ap")
        catalog.create_table("ap.t", schema=pa.schema([("id", pa.int64())]))
        appended: list[int] = []

        def append(i: int) -> None:
            cat = RestCatalog("lake", uri=server.uri)
            for _ in range(20):
                table = cat.load_table("ap.t")
                try:
                    table.append(pa.table({"id": [i] * 10}))
                except CommitFailedException:
                    continue
                appended.append(i)
                return

        threads = [threading.Thread(target=append, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        table = catalog.load_table("ap.t")
        assert table.scan().to_arrow().num_rows == 10 * len(appended)
        assert len(table.metadata.snapshots) == len(appended) == 6
