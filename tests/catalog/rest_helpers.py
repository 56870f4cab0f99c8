"""Helpers shared by the catalog test modules: request bodies the Java and Python clients send, and
checks of the Iceberg REST error model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

import httpx

SEP = "\x1f"

SCHEMA: dict[str, Any] = {
    "type": "struct",
    "schema-id": 0,
    "fields": [
        {"id": 1, "name": "id", "type": "long", "required": True},
        {"id": 2, "name": "data", "type": "string", "required": False},
        {"id": 3, "name": "ts", "type": "timestamptz", "required": False},
    ],
}
PARTITION_SPEC: dict[str, Any] = {
    "spec-id": 0,
    "fields": [{"source-id": 3, "field-id": 1000, "transform": "day", "name": "ts_day"}],
}
WRITE_ORDER: dict[str, Any] = {
    "order-id": 1,
    "fields": [{"source-id": 1, "transform": "identity", "direction": "asc", "null-order": "nulls-first"}],
}


def quote_segment(value: str) -> str:
    """Percent-encode one path segment, dots included (httpx would resolve a bare ``..`` segment)."""
    return quote(value, safe="").replace(".", "%2E")


def ns_path(*levels: str) -> str:
    """The ``{namespace}`` path segment: levels joined by 0x1F, percent-encoded."""
    return quote_segment(SEP.join(levels))


def tables_url(ns: tuple[str, ...] | str, table: str | None = None) -> str:
    levels = (ns,) if isinstance(ns, str) else ns
    base = f"/v1/namespaces/{ns_path(*levels)}/tables"
    return base if table is None else f"{base}/{quote_segment(table)}"


def assert_error(response: httpx.Response, status: int, error_type: str | None = None) -> dict[str, Any]:
    """Assert the status and the Iceberg error model; return the ``error`` object."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["code"] == status, error
    if error_type is not None:
        assert error["type"] == error_type, error
    return error


def assert_client_error(response: httpx.Response) -> dict[str, Any]:
    """A clear 4xx with the Iceberg error model (never a 5xx, never a 2xx)."""
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {response.text[:500]}"
    return assert_error(response, response.status_code)


def create_namespace(api: httpx.Client, *levels: str, properties: dict[str, str] | None = None) -> None:
    r = api.post("/v1/namespaces", json={"namespace": list(levels), "properties": properties or {}})
    assert r.status_code == 200, r.text


def create_table(
    api: httpx.Client,
    ns: tuple[str, ...] | str,
    name: str,
    *,
    partitioned: bool = True,
    properties: dict[str, str] | None = None,
    stage: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "schema": SCHEMA, "properties": properties or {}}
    if partitioned:
        body["partition-spec"] = PARTITION_SPEC
        body["write-order"] = WRITE_ORDER
    if stage:
        body["stage-create"] = True
    r = api.post(tables_url(ns), json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def load_table(api: httpx.Client, ns: tuple[str, ...] | str, name: str, **params: str) -> dict[str, Any]:
    r = api.get(tables_url(ns, name), params=params)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def commit(
    api: httpx.Client,
    ns: tuple[str, ...] | str,
    name: str,
    requirements: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    *,
    identifier: bool = False,
) -> httpx.Response:
    body: dict[str, Any] = {"requirements": requirements, "updates": updates}
    if identifier:
        levels = [ns] if isinstance(ns, str) else list(ns)
        body["identifier"] = {"namespace": levels, "name": name}
    return api.post(tables_url(ns, name), json=body)


def local_path(location: str) -> Path:
    parsed = urlparse(location)
    assert parsed.scheme in ("", "file"), location
    return Path(unquote(parsed.path) if parsed.scheme else location)


def metadata_files(table_location: str) -> list[Path]:
    directory = local_path(table_location) / "metadata"
    return sorted(directory.glob("*.metadata.json")) if directory.exists() else []


def fake_snapshot(snapshot_id: int, sequence_number: int, parent: int | None = None) -> dict[str, Any]:
    """An ``add-snapshot`` update; the catalog never reads the manifest list, so it may not exist."""
    snapshot: dict[str, Any] = {
        "snapshot-id": snapshot_id,
        "sequence-number": sequence_number,
        "timestamp-ms": int(time.time() * 1000),
        "manifest-list": f"file:///nonexistent/snap-{snapshot_id}-{uuid.uuid4()}.avro",
        "summary": {"operation": "append"},
        "schema-id": 0,
    }
    if parent is not None:
        snapshot["parent-snapshot-id"] = parent
    return {"action": "add-snapshot", "snapshot": snapshot}


def set_main(snapshot_id: int) -> dict[str, Any]:
    return {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id}


def java_create_updates(metadata: dict[str, Any], properties: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The update list the Java client sends to complete a staged create (CTAS), built from the metadata
    the stage-create response returned."""
    schema = next(s for s in metadata["schemas"] if s["schema-id"] == metadata["current-schema-id"])
    spec = next(s for s in metadata["partition-specs"] if s["spec-id"] == metadata["default-spec-id"])
    order = next(o for o in metadata["sort-orders"] if o["order-id"] == metadata["default-sort-order-id"])
    return [
        {"action": "assign-uuid", "uuid": metadata["table-uuid"]},
        {"action": "upgrade-format-version", "format-version": metadata["format-version"]},
        {"action": "add-schema", "schema": schema, "last-column-id": metadata["last-column-id"]},
        {"action": "set-current-schema", "schema-id": -1},
        {"action": "add-spec", "spec": spec},
        {"action": "set-default-spec", "spec-id": -1},
        {"action": "add-sort-order", "sort-order": order},
        {"action": "set-default-sort-order", "sort-order-id": -1},
        {"action": "set-location", "location": metadata["location"]},
        {"action": "set-properties", "updates": {**metadata.get("properties", {}), **(properties or {})}},
    ]


class ServerProcess:
    """``lakeforge catalog serve`` as a child process on a free port, with its own lake home.

    ``kill()`` sends SIGKILL (a crash); ``stop()`` SIGTERM (a clean shutdown); ``start()`` again reuses the
    same home, port and database.
    """

    def __init__(
        self,
        home: Path,
        *,
        fsync: bool = True,
        env: dict[str, str] | None = None,
        name: str = "server",
        extra_args: list[str] | None = None,
    ) -> None:
        from catalog.server import free_port

        self.home = home
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = home.parent / f"{home.name}-{name}.log"
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LAKEFORGE_")},
            "LAKEFORGE_CATALOG__FSYNC": "true" if fsync else "false",
            "LAKEFORGE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> ServerProcess:
        from catalog.server import wait_until_up

        script = Path(sys.executable).parent / "lakeforge"  # the installed console script
        entry = [str(script)] if script.exists() else [sys.executable, "-c", "from cluster.cli import app; app()"]
        command = [*entry, "catalog", "serve", "--port", str(self.port), "--home", str(self.home), *self.extra_args]
        with open(self.log_path, "ab") as log:
            # Own session: a SIGKILL of the group also reaches worker processes (--workers N).
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True
            )
        try:
            wait_until_up(self.uri, timeout=timeout)
        except TimeoutError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
