"""Crash safety: the catalog server process is SIGKILLed while clients commit, then restarted on the same
database. Every table must load, point at a metadata file that exists and parses, and hold exactly the
data of some committed snapshot: every acknowledged commit present, nothing half-applied."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import requests
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import TableMetadataUtil
from pyiceberg.types import LongType, NestedField, StringType

from tests.catalog.rest_helpers import ServerProcess, create_namespace, create_table, load_table, local_path, tables_url

log = logging.getLogger(__name__)

SCHEMA = Schema(
    NestedField(1, "batch", StringType(), required=False), NestedField(2, "row", LongType(), required=False)
)
ROWS_PER_BATCH = 4
NS = "crash"

#: Connection-level failures: the server died under the request, so its outcome is unknown.
CONNECTION_ERRORS = (
    httpx.TransportError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass
class Ledger:
    """What the clients know about their commits."""

    acked_batches: set[str] = field(default_factory=set)
    attempted_batches: set[str] = field(default_factory=set)
    acked_counters: dict[str, int] = field(default_factory=dict)
    attempted_counters: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _batch(batch_id: str) -> pa.Table:
    return pa.table(
        {"batch": [batch_id] * ROWS_PER_BATCH, "row": pa.array(range(ROWS_PER_BATCH), pa.int64())},
    )


def _appender(uri: str, index: int, round_: int, ledger: Ledger, stop: threading.Event) -> None:
    try:
        table = RestCatalog(f"a{index}", uri=uri).load_table(f"{NS}.events")
        n = 0
        while not stop.is_set():
            batch_id = f"r{round_}-w{index}-b{n}"
            data = _batch(batch_id)
            with ledger.lock:
                ledger.attempted_batches.add(batch_id)
            while True:
                try:
                    table.append(data)
                    break
                except CommitFailedException:
                    table.refresh()
            with ledger.lock:
                ledger.acked_batches.add(batch_id)
            n += 1
    except CONNECTION_ERRORS:
        return  # killed mid-request
    except Exception as exc:  # noqa: BLE001 - recorded and asserted on by the test
        if stop.is_set() and "Connection" in repr(exc):
            return
        with ledger.lock:
            ledger.unexpected.append(f"appender {index}: {exc!r}")


def _counter(uri: str, index: int, uid: str, ledger: Ledger, stop: threading.Event) -> None:
    key = f"counter-{index}"
    try:
        with httpx.Client(base_url=uri, timeout=30) as c:
            value = int(load_table(c, NS, "props")["metadata"]["properties"].get(key, "0"))
            while not stop.is_set():
                value += 1
                with ledger.lock:
                    ledger.attempted_counters[key] = value
                body = {
                    "requirements": [{"type": "assert-table-uuid", "uuid": uid}],
                    "updates": [{"action": "set-properties", "updates": {key: str(value)}}],
                }
                r = c.post(tables_url(NS, "props"), json=body)
                if r.status_code != 200:
                    with ledger.lock:
                        ledger.unexpected.append(f"counter {index}: {r.status_code} {r.text[:200]}")
                    return
                with ledger.lock:
                    ledger.acked_counters[key] = value
    except CONNECTION_ERRORS:
        return


def _check_consistent(uri: str, ledger: Ledger, home: Path) -> dict[str, Any]:
    with httpx.Client(base_url=uri, timeout=30) as c:
        names = sorted(i["name"] for i in c.get(tables_url(NS)).json()["identifiers"])
        assert names == ["events", "props"]
        loaded = {}
        for name in names:
            result = load_table(c, NS, name)
            path = local_path(result["metadata-location"])
            assert path.is_file(), path
            parsed = TableMetadataUtil.parse_raw(path.read_bytes())
            assert str(parsed.table_uuid) == result["metadata"]["table-uuid"]
            for entry in parsed.metadata_log:
                assert local_path(entry.metadata_file).is_file(), entry.metadata_file
            loaded[name] = result
    table = RestCatalog("check", uri=uri).load_table(f"{NS}.events")
    data = table.scan().to_arrow()
    snapshot = table.current_snapshot()
    expected_rows = int(snapshot.summary["total-records"]) if snapshot and snapshot.summary else 0  # type: ignore[index]
    assert data.num_rows == expected_rows
    present = data["batch"].to_pylist()
    batches = set(present)
    assert all(present.count(b) == ROWS_PER_BATCH for b in batches)  # no half batch
    assert ledger.acked_batches <= batches, sorted(ledger.acked_batches - batches)[:5]
    assert batches <= ledger.attempted_batches, sorted(batches - ledger.attempted_batches)[:5]
    assert len(table.metadata.snapshots) == len(batches)
    props = loaded["props"]["metadata"]["properties"]
    for key, acked in ledger.acked_counters.items():
        assert acked <= int(props[key]) <= ledger.attempted_counters[key], (key, acked, props[key])
    with sqlite3.connect(home / "catalog.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return loaded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server process (fsync on: the default) on its own lake home, killed and restarted by the tests."""
    srv = ServerProcess(tmp_path_factory.mktemp("crash") / "lake").start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.mark.slow
def test_sigkill_during_commits_leaves_every_table_consistent(server: ServerProcess) -> None:
    home = server.home
    ledger = Ledger()
    try:
        with httpx.Client(base_url=server.uri, timeout=30) as c:
            create_namespace(c, NS)
            uid = create_table(c, NS, "props", partitioned=False)["metadata"]["table-uuid"]
        RestCatalog("setup", uri=server.uri).create_table(f"{NS}.events", schema=SCHEMA)
        rng = random.Random(7)
        for round_ in range(3):
            stop = threading.Event()
            workers = [
                threading.Thread(target=_appender, args=(server.uri, i, round_, ledger, stop)) for i in range(3)
            ] + [threading.Thread(target=_counter, args=(server.uri, i, uid, ledger, stop)) for i in range(3)]
            for w in workers:
                w.start()
            acked_before = len(ledger.acked_batches)
            deadline = time.monotonic() + 20
            # Kill once commits are flowing, at a random moment.
            while len(ledger.acked_batches) < acked_before + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.1, 0.8))
            server.kill()
            stop.set()
            for w in workers:
                w.join(timeout=60)
            assert not ledger.unexpected, ledger.unexpected
            assert len(ledger.acked_batches) > acked_before, "no commit succeeded before the kill"
            server.start()
            _check_consistent(server.uri, ledger, home)
            log.info(
                "round %d: %d batches acked, %d attempted; counters acked %s attempted %s",
                round_, len(ledger.acked_batches), len(ledger.attempted_batches),
                ledger.acked_counters, ledger.attempted_counters,
            )  # fmt: skip
    finally:
        if ledger.unexpected:
            log.error("server log:\n%s", server.log_tail())


@pytest.mark.slow
def test_state_survives_a_clean_restart(server: ServerProcess) -> None:
    if server.process is None:
        server.start()
    ns = "clean"
    with httpx.Client(base_url=server.uri, timeout=30) as c:
        create_namespace(c, ns, properties={"owner": "x"})
        create_namespace(c, ns, "child")
        create_table(c, ns, "t", properties={"a": "1"})
        r = c.post(
            tables_url(ns, "t"),
            json={"requirements": [], "updates": [{"action": "set-properties", "updates": {"b": "2"}}]},
        )
        assert r.status_code == 200
        catalog = RestCatalog("c", uri=server.uri)
        catalog.create_table(f"{ns}.data", schema=SCHEMA).append(_batch("only"))
        before = {name: load_table(c, ns, name) for name in ("t", "data")}
        top_before = c.get("/v1/namespaces").json()["namespaces"]
        server.stop()
        server.start()
        assert c.get("/v1/namespaces").json()["namespaces"] == top_before
        assert c.get(f"/v1/namespaces/{ns}").json()["properties"] == {"owner": "x"}
        assert c.get("/v1/namespaces", params={"parent": ns}).json()["namespaces"] == [[ns, "child"]]
        assert sorted(i["name"] for i in c.get(tables_url(ns)).json()["identifiers"]) == ["data", "t"]
        for name, result in before.items():
            assert load_table(c, ns, name) == result
        assert load_table(c, ns, "t")["metadata"]["properties"]["b"] == "2"
        assert RestCatalog("c2", uri=server.uri).load_table(f"{ns}.data").scan().to_arrow().num_rows == ROWS_PER_BATCH
