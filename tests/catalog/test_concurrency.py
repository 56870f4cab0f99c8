"""Concurrent writers against a real catalog server process (SQLite in WAL mode, the default database):
no lost updates, exactly one winner per optimistic race, no spurious conflicts between tables, and
server-side retry of pointer swaps that lost only to unrelated commits."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from tests.catalog.rest_helpers import (
    ServerProcess,
    commit,
    create_namespace,
    create_table,
    fake_snapshot,
    load_table,
    metadata_files,
    set_main,
)

T = TypeVar("T")

SCHEMA = Schema(
    NestedField(1, "writer", LongType(), required=False), NestedField(2, "payload", StringType(), required=False)
)


@pytest.fixture(scope="module")
def catalog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("concurrency") / "lake"
    with ServerProcess(home, fsync=False) as srv:
        yield srv


@pytest.fixture
def api(catalog_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=catalog_server.uri, timeout=60) as c:
        yield c


@pytest.fixture
def ns(api: httpx.Client, unique_ns: str) -> str:
    create_namespace(api, unique_ns)
    return unique_ns


def run_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` on ``count`` threads started together; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(work, range(count)))


@pytest.mark.slow
def test_parallel_pyiceberg_appends_lose_nothing(catalog_server: ServerProcess, ns: str) -> None:
    threads, appends_each, rows_each = 8, 3, 5
    RestCatalog("setup", uri=catalog_server.uri).create_table(f"{ns}.shared", schema=SCHEMA)
    start = threading.Barrier(threads)

    def writer(index: int) -> dict[str, int]:
        catalog = RestCatalog(f"w{index}", uri=catalog_server.uri)
        table = catalog.load_table(f"{ns}.shared")
        done = conflicts = 0
        start.wait()
        for batch in range(appends_each):
            data = pa.table(
                {
                    "writer": pa.array([index] * rows_each, pa.int64()),
                    "payload": [f"{index}-{batch}-{row}" for row in range(rows_each)],
                }
            )
            for _attempt in range(60):
                try:
                    table.append(data)
                except CommitFailedException:
                    conflicts += 1
                    table.refresh()
                    time.sleep(0.01 * (index % 4))
                    continue
                done += 1
                break
            else:
                raise AssertionError(f"writer {index} never got batch {batch} in")
        return {"done": done, "conflicts": conflicts}

    results = run_threads(threads, writer)
    committed = sum(r["done"] for r in results)
    assert committed == threads * appends_each
    table = RestCatalog("check", uri=catalog_server.uri).load_table(f"{ns}.shared")
    data = table.scan().to_arrow()
    assert data.num_rows == committed * rows_each
    payloads = data["payload"].to_pylist()
    assert len(set(payloads)) == len(payloads)  # no batch committed twice
    per_writer = {w: data["writer"].to_pylist().count(w) for w in range(threads)}
    assert per_writer == dict.fromkeys(range(threads), appends_each * rows_each)
    snapshots = table.metadata.snapshots
    assert len(snapshots) == committed
    # One linear history: every snapshot's parent is the one before it.
    by_id = {s.snapshot_id: s for s in snapshots}
    chain, current = [], table.current_snapshot()
    while current is not None:
        chain.append(current.snapshot_id)
        current = by_id.get(current.parent_snapshot_id) if current.parent_snapshot_id else None
    assert len(chain) == committed
    assert table.current_snapshot().summary["total-records"] == str(committed * rows_each)  # type: ignore[union-attr,index]


def _race_once(api: httpx.Client, uri: str, ns: str, name: str, racers: int) -> None:
    base = load_table(api, ns, name)["metadata"]
    base_id = base["current-snapshot-id"]
    seq = base["last-sequence-number"]
    barrier = threading.Barrier(racers)

    def racer(index: int) -> tuple[int, int]:
        snapshot_id = 10_000 * (seq + 1) + index
        body = {
            "requirements": [
                {"type": "assert-table-uuid", "uuid": base["table-uuid"]},
                {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": base_id},
            ],
            "updates": [fake_snapshot(snapshot_id, seq + 1, parent=base_id), set_main(snapshot_id)],
        }
        with httpx.Client(base_url=uri, timeout=60) as c:
            barrier.wait()
            r = c.post(f"/v1/namespaces/{ns}/tables/{name}", json=body)
        if r.status_code == 409:
            assert r.json()["error"]["type"] == "CommitFailedException"
        return r.status_code, snapshot_id

    results = run_threads(racers, racer)
    codes = sorted(code for code, _ in results)
    assert codes == [200] + [409] * (racers - 1), codes
    winner = next(sid for code, sid in results if code == 200)
    after = load_table(api, ns, name)["metadata"]
    assert after["current-snapshot-id"] == winner
    assert len(after["snapshots"]) == len(base["snapshots"]) + 1
    assert after["last-sequence-number"] == seq + 1


@pytest.mark.slow
def test_same_base_race_has_exactly_one_winner(catalog_server: ServerProcess, api: httpx.Client, ns: str) -> None:
    create_table(api, ns, "race", partitioned=False)
    assert commit(api, ns, "race", [], [fake_snapshot(1, 1), set_main(1)]).status_code == 200
    for _round in range(3):
        _race_once(api, catalog_server.uri, ns, "race", racers=12)


@pytest.mark.slow
def test_writers_on_distinct_tables_never_conflict(catalog_server: ServerProcess, api: httpx.Client, ns: str) -> None:
    writers, commits_each = 12, 6
    for index in range(writers):
        create_table(api, ns, f"t{index}", partitioned=False)
    barrier = threading.Barrier(writers)

    def writer(index: int) -> list[int]:
        name = f"t{index}"
        codes = []
        with httpx.Client(base_url=catalog_server.uri, timeout=60) as c:
            meta = load_table(c, ns, name)["metadata"]
            barrier.wait()
            previous: int | None = None
            for n in range(1, commits_each + 1):
                snapshot_id = index * 1000 + n
                r = commit(
                    c,
                    ns,
                    name,
                    [
                        {"type": "assert-table-uuid", "uuid": meta["table-uuid"]},
                        {"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": previous},
                    ],
                    [fake_snapshot(snapshot_id, n, parent=previous), set_main(snapshot_id)],
                )
                codes.append(r.status_code)
                previous = snapshot_id
        return codes

    results = run_threads(writers, writer)
    assert all(code == 200 for codes in results for code in codes), results
    for index in range(writers):
        meta = load_table(api, ns, f"t{index}")["metadata"]
        assert meta["current-snapshot-id"] == index * 1000 + commits_each
        assert len(meta["snapshots"]) == commits_each


@pytest.mark.slow
def test_server_retries_swaps_lost_to_unrelated_commits(
    catalog_server: ServerProcess, api: httpx.Client, ns: str
) -> None:
    """Commits whose only requirement is the table uuid cannot conflict: the server re-applies them on the
    new base when another commit won the pointer swap, so every one succeeds and none is lost."""
    created = create_table(api, ns, "props", partitioned=False)
    uid = created["metadata"]["table-uuid"]
    threads, commits_each = 12, 5
    barrier = threading.Barrier(threads)

    def writer(index: int) -> list[tuple[int, str]]:
        out = []
        with httpx.Client(base_url=catalog_server.uri, timeout=60) as c:
            barrier.wait()
            for n in range(commits_each):
                r = commit(
                    c,
                    ns,
                    "props",
                    [{"type": "assert-table-uuid", "uuid": uid}],
                    [{"action": "set-properties", "updates": {f"w{index}-{n}": "x", f"last-{index}": str(n)}}],
                )
                out.append((r.status_code, r.text[:300]))
        return out

    results = run_threads(threads, writer)
    failures = [text for result in results for code, text in result if code != 200]
    assert failures == []
    meta = load_table(api, ns, "props")["metadata"]
    props = meta["properties"]
    for index in range(threads):
        for n in range(commits_each):
            assert props[f"w{index}-{n}"] == "x"
        assert props[f"last-{index}"] == str(commits_each - 1)
    assert len(meta["metadata-log"]) == threads * commits_each


@pytest.mark.slow
def test_concurrent_creates_of_one_name(catalog_server: ServerProcess, api: httpx.Client, ns: str) -> None:
    """Many clients create the same table (plain and staged): one wins, the rest get 409, none a 5xx."""
    racers = 10
    barrier = threading.Barrier(racers)
    schema: dict[str, Any] = {
        "type": "struct",
        "schema-id": 0,
        "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
    }

    def racer(index: int) -> int:
        with httpx.Client(base_url=catalog_server.uri, timeout=60) as c:
            barrier.wait()
            r = c.post(
                f"/v1/namespaces/{ns}/tables",
                json={"name": "once", "schema": schema, "properties": {"by": str(index)}},
            )
        return r.status_code

    codes = run_threads(racers, racer)
    assert sorted(codes) == [200] + [409] * (racers - 1), codes
    by = load_table(api, ns, "once")["metadata"]["properties"]["by"]
    assert codes[int(by)] == 200
    listed = api.get(f"/v1/namespaces/{ns}/tables").json()["identifiers"]
    assert [i["name"] for i in listed] == ["once"]
    # Every loser's metadata file was cleaned up: only the winner's remains.
    location = load_table(api, ns, "once")["metadata"]["location"]
    assert len(metadata_files(location)) == 1
    # The same with namespaces.
    barrier2 = threading.Barrier(racers)
    name = f"n{uuid.uuid4().hex[:6]}"

    def ns_racer(index: int) -> int:
        with httpx.Client(base_url=catalog_server.uri, timeout=60) as c:
            barrier2.wait()
            return c.post("/v1/namespaces", json={"namespace": [ns, name]}).status_code

    ns_codes = run_threads(racers, ns_racer)
    assert sorted(ns_codes) == [200] + [409] * (racers - 1), ns_codes


@pytest.mark.slow
def test_two_server_processes_on_one_database_lose_no_update(
    catalog_server: ServerProcess, api: httpx.Client, ns: str
) -> None:
    """Two catalog processes share the database: the compare-and-swap, not an in-process lock, decides.
    Every commit that got a 200 is in the final metadata, every 409 left no trace, and the server-side
    retry absorbs most lost swaps."""
    created = create_table(api, ns, "shared", partitioned=False)
    uid = created["metadata"]["table-uuid"]
    threads, commits_each = 8, 6
    barrier = threading.Barrier(threads)
    with ServerProcess(catalog_server.home, fsync=False, name="second") as second:
        uris = [catalog_server.uri, second.uri]

        def writer(index: int) -> list[tuple[str, int]]:
            out = []
            with httpx.Client(base_url=uris[index % 2], timeout=60) as c:
                barrier.wait()
                for n in range(commits_each):
                    key = f"w{index}-{n}"
                    r = commit(c, ns, "shared", [{"type": "assert-table-uuid", "uuid": uid}],
                               [{"action": "set-properties", "updates": {key: "x"}}])  # fmt: skip
                    if r.status_code == 409:
                        assert r.json()["error"]["type"] == "CommitFailedException"
                    out.append((key, r.status_code))
            return out

        results = [item for result in run_threads(threads, writer) for item in result]
    codes = {code for _, code in results}
    assert codes <= {200, 409}, results
    meta = load_table(api, ns, "shared")["metadata"]
    succeeded = {key for key, code in results if code == 200}
    assert {k for k in meta["properties"] if k.startswith("w")} == succeeded
    assert len(meta["metadata-log"]) == len(succeeded)
    assert len(metadata_files(meta["location"])) == len(succeeded) + 1  # losers' files were deleted
    assert len(succeeded) >= len(results) * 0.85, f"{len(results) - len(succeeded)} of {len(results)} commits got 409"


def _drop_race_round(uri: str, ns: str, target: str, source_location: str, writers: int) -> tuple[int, list[int]]:
    """Drop ``ns.target`` while ``writers`` threads create, register, add children and set properties in it."""
    barrier = threading.Barrier(writers + 1)
    levels = [ns, target]
    path = f"/v1/namespaces/{ns}%1F{target}"
    empty_schema: dict[str, Any] = {"type": "struct", "fields": []}

    def write(index: int) -> int:
        with httpx.Client(base_url=uri, timeout=60) as c:
            barrier.wait()
            time.sleep(0.002 * index)
            kind = index % 5
            if kind == 0:
                r = c.post(f"{path}/tables", json={"name": f"t{index}", "schema": empty_schema})
            elif kind == 1:
                r = c.post("/v1/namespaces", json={"namespace": [*levels, f"c{index}"]})
            elif kind == 2:
                r = c.post(f"{path}/register", json={"name": f"r{index}", "metadata-location": source_location})
            elif kind == 3:
                r = c.post(f"{path}/properties", json={"updates": {f"p{index}": "v"}})
            else:
                r = c.post(f"{path}/tables", json={"name": f"s{index}", "schema": empty_schema, "stage-create": True})
            return r.status_code

    def drop() -> int:
        with httpx.Client(base_url=uri, timeout=60) as c:
            barrier.wait()
            return c.delete(path).status_code

    with ThreadPoolExecutor(max_workers=writers + 1) as pool:
        dropped = pool.submit(drop)
        codes = list(pool.map(write, range(writers)))
        return dropped.result(), codes


@pytest.mark.slow
def test_drop_namespace_races_with_writers_into_it(catalog_server: ServerProcess, api: httpx.Client, ns: str) -> None:
    """A namespace drop racing creates, registrations, child namespaces and property updates into it:
    either the drop wins (they all fail and nothing is left behind) or it fails with 409 because one of
    them got in first. Never both: no table, child or property may survive in a dropped namespace."""
    create_table(api, ns, "source", partitioned=False)
    source_location = load_table(api, ns, "source")["metadata-location"]
    writers = 6
    outcomes = set()
    for round_ in range(12):
        target = f"target{round_}"
        create_namespace(api, ns, target)
        drop_code, codes = _drop_race_round(catalog_server.uri, ns, target, source_location, writers)
        outcomes.add(drop_code)
        assert drop_code in (204, 409), drop_code
        assert all(code in (200, 404, 409) for code in codes), codes
        path = f"/v1/namespaces/{ns}%1F{target}"
        if drop_code == 204:
            assert api.head(path).status_code == 404, (round_, codes)
            # Nothing survived under the dropped name: recreate it and look.
            create_namespace(api, ns, target)
            assert api.get(f"{path}/tables").json()["identifiers"] == [], (round_, codes)
            assert api.get("/v1/namespaces", params={"parent": f"{ns}\x1f{target}"}).json()["namespaces"] == []
            assert api.get(path).json()["properties"] == {}, (round_, codes)
        else:
            creating = [code for index, code in enumerate(codes) if index % 5 in (0, 1, 2)]
            assert 200 in creating, (round_, drop_code, codes)
    assert outcomes == {204, 409}, "the race never went both ways: it tests nothing"
