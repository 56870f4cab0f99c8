"""`lakeforge catalog serve --workers N`: several processes, one database, no lost updates."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.catalog.rest_helpers import ServerProcess

pytestmark = pytest.mark.slow

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}


def test_two_workers_share_state_and_lose_no_commit(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "lake", fsync=False, extra_args=["--workers", "2"]).start(timeout=300)
    try:
        with httpx.Client(base_url=server.uri, timeout=30) as http:
            assert http.post("/v1/namespaces", json={"namespace": ["w"]}).status_code == 200
            assert http.post("/v1/namespaces/w/tables", json={"name": "t", "schema": SCHEMA}).status_code == 200
        statuses: list[int] = []

        def writer(i: int) -> None:
            with httpx.Client(base_url=server.uri, timeout=30) as http:
                for j in range(5):
                    body = {"updates": [{"action": "set-properties", "updates": {f"k{i}-{j}": "v"}}]}
                    statuses.append(http.post("/v1/namespaces/w/tables/t", json=body).status_code)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.uri, timeout=30) as http:
            props = http.get("/v1/namespaces/w/tables/t").json()["metadata"]["properties"]
        # Every acknowledged commit is in the final metadata (a 409 after retries is allowed across processes).
        acknowledged = statuses.count(200)
        assert acknowledged >= 25 and set(statuses) <= {200, 409}
        assert sum(1 for k in props if k.startswith("k")) == acknowledged
        assert (tmp_path / "lake" / "catalog.db").exists()
    finally:
        server.stop()
