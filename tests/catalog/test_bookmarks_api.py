"""The job-bookmark API (``/lakeforge/v1/bookmarks``): runs, versions, compare-and-swap commits, reset and
rewind, ranges, run history, hostile input; the bookmark-token check on Iceberg table commits and the
recovery of runs that died between their table commit and their bookmark commit (pyiceberg against the
real server); ``LakeClient``; PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog import errors
from catalog.app import create_app
from catalog.bookmarks import TOKEN_PROPERTY
from catalog.client import LakeClient
from catalog.server import CatalogServer
from catalog.settings import CatalogSettings, Settings
from tests.catalog.rest_helpers import assert_error
from tests.postgres import PostgresServer

BASE = "/lakeforge/v1/bookmarks"
MISMATCH = "BookmarkVersionMismatchException"


def _job() -> str:
    return f"job_{uuid.uuid4().hex[:10]}"


def start(api: Any, job: str, **body: Any) -> dict[str, Any]:
    r = api.post(f"{BASE}/{job}/runs", json={k.replace("_", "-"): v for k, v in body.items()})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def commit(api: Any, job: str, run: str, version: int, state: dict[str, Any] | None) -> httpx.Response:
    response: httpx.Response = api.post(
        f"{BASE}/{job}/runs/{run}/commit", json={"expected-version": version, "state": state}
    )
    return response


def bookmark(api: Any, job: str) -> dict[str, Any]:
    r = api.get(f"{BASE}/{job}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_run_lifecycle_versions_and_history(client: TestClient) -> None:
    job = _job()
    assert_error(client.get(f"{BASE}/{job}"), 404, "NoSuchBookmarkException")
    first = start(client, job, run_id="r1")
    assert (first["version"], first["state"], first["to-state"]) == (0, {}, None)
    assert first["run"]["attempt"] == 1 and first["run"]["status"] == "started"
    assert bookmark(client, job)["version"] == 0

    r = commit(client, job, "r1", 0, {"src": {"n": 1}})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["run"], r.json()["run-id"]) == (1, 1, "r1")
    second = start(client, job, run_id="r2")
    assert second["state"] == {"src": {"n": 1}}
    assert commit(client, job, "r2", 1, {"src": {"n": 2}, "other": [1, 2]}).status_code == 200
    paused = start(client, job, run_id="p1", option="job-bookmark-pause")
    assert paused["state"] == {"src": {"n": 2}, "other": [1, 2]} and paused["version"] == 2
    done = commit(client, job, "p1", 2, None)
    assert done.status_code == 200 and done.json()["version"] == 2  # a paused run saves nothing

    current = bookmark(client, job)
    assert (current["version"], current["run"], current["run-id"], current["previous-run-id"]) == (2, 2, "r2", "r1")
    again = commit(client, job, "r2", 1, {"src": {"n": 2}, "other": [1, 2]})  # a retried commit
    assert again.status_code == 200 and again.json() == current

    page = client.get(f"{BASE}/{job}/runs", params={"pageSize": 2}).json()
    assert [run["run-id"] for run in page["runs"]] == ["p1", "r2"]
    rest = client.get(f"{BASE}/{job}/runs", params={"pageToken": page["next-page-token"]}).json()
    assert [run["run-id"] for run in rest["runs"]] == ["r1"] and rest["next-page-token"] is None
    r1 = rest["runs"][0]
    assert (r1["status"], r1["base-version"], r1["committed-version"]) == ("committed", 0, 1)
    assert r1["state"] == {"src": {"n": 1}} and r1["ended-ms"] >= r1["started-ms"]
    p1 = client.get(f"{BASE}/{job}/runs/p1").json()
    assert (p1["status"], p1["committed-version"], p1["state"]) == ("committed", None, None)
    assert job in [b["job-name"] for b in client.get(BASE).json()["bookmarks"]]
    actions = [e["action"] for e in client.get("/lakeforge/v1/audit", params={"name": job}).json()["entries"]]
    assert actions == ["bookmark-create", "bookmark-commit", "bookmark-commit"]

    assert client.delete(f"{BASE}/{job}").status_code == 204
    assert_error(client.get(f"{BASE}/{job}"), 404, "NoSuchBookmarkException")
    assert_error(client.get(f"{BASE}/{job}/runs"), 404, "NoSuchBookmarkException")


def test_second_commit_from_one_version_gets_a_version_mismatch(client: TestClient) -> None:
    job = _job()
    start(client, job, run_id="a")
    assert start(client, job, run_id="b")["run"]["attempt"] == 2
    assert commit(client, job, "a", 0, {"src": "a"}).status_code == 200
    error = assert_error(commit(client, job, "b", 0, {"src": "b"}), 409, MISMATCH)
    assert error["message"].startswith("GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR: run 'b' of job")
    assert (
        "started from bookmark version 0, but the bookmark is at version 1 (run 'a' committed first" in error["message"]
    )
    assert bookmark(client, job)["state"] == {"src": "a"}
    loser = client.get(f"{BASE}/{job}/runs/b").json()
    assert loser["status"] == "failed" and "VERSION_MISMATCH" in loser["error"]
    assert "was marked failed" in assert_error(commit(client, job, "b", 0, {"src": "b"}), 409)["message"]

    start(client, job, run_id="c")  # a reset while a run is in flight also wins over it
    assert client.post(f"{BASE}/{job}/reset").json()["version"] == 2
    assert_error(commit(client, job, "c", 1, {"src": "c"}), 409, MISMATCH)
    assert bookmark(client, job)["state"] == {}


def test_racing_commits_through_the_server_let_exactly_one_win(server: CatalogServer) -> None:
    job = _job()
    with httpx.Client(base_url=server.uri, timeout=30) as api:
        runs = [start(api, job, run_id=f"r{i}")["run"]["run-id"] for i in range(8)]
        statuses: list[int] = []
        barrier = threading.Barrier(len(runs))

        def racer(run: str) -> None:
            with httpx.Client(base_url=server.uri, timeout=30) as own:
                barrier.wait()
                statuses.append(commit(own, job, run, 0, {"src": run}).status_code)

        threads = [threading.Thread(target=racer, args=(run,)) for run in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 7
        current = bookmark(api, job)
        assert current["version"] == 1 and current["state"] == {"src": current["run-id"]}
        history = api.get(f"{BASE}/{job}/runs").json()["runs"]
        assert sorted(r["status"] for r in history) == ["committed"] + ["failed"] * 7


def test_reset_and_rewind(client: TestClient) -> None:
    job = _job()
    for run, state in (("r1", {"s": 1}), ("r2", {"s": 2})):
        version = start(client, job, run_id=run)["version"]
        assert commit(client, job, run, version, state).status_code == 200
    start(client, job, run_id="p", option="job-bookmark-pause")
    commit(client, job, "p", 2, None)
    start(client, job, run_id="dead")
    client.post(f"{BASE}/{job}/runs/dead/fail", json={"error": "boom"})

    rewound = client.post(f"{BASE}/{job}/rewind", json={"run-id": "r1"}).json()
    assert (rewound["version"], rewound["state"], rewound["run"]) == (3, {"s": 1}, 2)
    assert start(client, job, run_id="r3")["state"] == {"s": 1}
    after_pause = client.post(f"{BASE}/{job}/rewind", json={"run-id": "p"}).json()
    assert (after_pause["version"], after_pause["state"]) == (4, {"s": 2})  # a paused run left the state as it was
    assert_error(commit(client, job, "r3", 3, {"s": 3}), 409, MISMATCH)
    failed = assert_error(client.post(f"{BASE}/{job}/rewind", json={"run-id": "dead"}), 400)
    assert "it is failed, not committed" in failed["message"]
    assert_error(client.post(f"{BASE}/{job}/rewind", json={"run-id": "nope"}), 404, "NoSuchJobRunException")
    reset = client.post(f"{BASE}/{job}/reset").json()
    assert (reset["version"], reset["state"]) == (5, {})
    assert_error(client.post(f"{BASE}/{_job()}/reset"), 404, "NoSuchBookmarkException")
    assert len(client.get(f"{BASE}/{job}/runs").json()["runs"]) == 5  # history is kept


def test_paused_ranges_between_runs(client: TestClient) -> None:
    job = _job()
    for i in range(1, 4):
        version = start(client, job, run_id=f"r{i}")["version"]
        commit(client, job, f"r{i}", version, {"s": i})
    ranged = start(client, job, option="job-bookmark-pause", from_run_id="r1", to_run_id="r3")
    assert (ranged["state"], ranged["to-state"]) == ({"s": 1}, {"s": 3})
    assert ranged["run"]["from-run-id"] == "r1" and ranged["run"]["to-run-id"] == "r3"
    cases = [
        ({"option": "job-bookmark-enable", "from-run-id": "r1", "to-run-id": "r2"}, 400, "only allowed with"),
        ({"option": "job-bookmark-pause", "from-run-id": "r1"}, 400, "go together"),
        ({"option": "job-bookmark-pause", "from-run-id": "r3", "to-run-id": "r1"}, 400, "comes after"),
        ({"option": "job-bookmark-pause", "from-run-id": "r1", "to-run-id": "zz"}, 404, "has no run 'zz'"),
    ]
    for body, status, message in cases:
        assert message in assert_error(client.post(f"{BASE}/{job}/runs", json=body), status)["message"]
    assert bookmark(client, job)["version"] == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("get", f"{BASE}/a%2Fb", None, 400, "'/' (%2F) is not allowed"),
        ("get", f"{BASE}/a%01b", None, 400, "character U+0001 is not allowed"),
        ("get", f"{BASE}/" + "j" * 256, None, 400, "longer than 255 characters"),
        ("get", f"{BASE}/%20lead", None, 400, "leading or trailing white space"),
        ("get", f"{BASE}/%2E%2E", None, 400, "Invalid job name '..'"),
        ("post", f"{BASE}/{{job}}/runs", {"run-id": "bad id"}, 400, "Invalid run id 'bad id'"),
        ("post", f"{BASE}/{{job}}/runs", {"run-id": "x" * 300}, 400, "Invalid run id"),
        ("post", f"{BASE}/{{job}}/runs", {"run-id": "r1"}, 409, "was already used"),
        ("post", f"{BASE}/{{job}}/runs", {"option": "job-bookmark-disable"}, 400, "option: Input should be"),
        ("post", f"{BASE}/{{job}}/runs", {"surprise": 1}, 400, "Extra inputs are not permitted"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"expected-version": 1, "state": [1]}, 400, "state"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"expected-version": -1, "state": {}}, 400, "expected-version"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"state": {}}, 400, "expected-version: Field required"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"expected-version": 0, "state": {}}, 400, "is not the version"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"expected-version": 1, "state": {"": 1}}, 400, "transformation"),
        ("post", f"{BASE}/{{job}}/runs/r2/commit", {"expected-version": 1}, 400, "needs its state"),
        ("post", f"{BASE}/{{job}}/runs/nope/commit", {"expected-version": 1, "state": {}}, 404, "has no run 'nope'"),
        ("post", f"{BASE}/{{job}}/runs/r1/fail", {"error": "late"}, 409, "is committed: it cannot fail"),
        ("post", f"{BASE}/{{job}}/runs/r2/prepare", {"state": {}, "sink": {"namespace": ["a.b"], "name": "t"}}, 400,
         "character '.' is not allowed"),
        ("post", f"{BASE}/{{job}}/runs/r2/prepare", {"state": {}}, 400, "sink: Field required"),
        ("post", f"{BASE}/{{job}}/rewind", {}, 400, "run-id: Field required"),
        ("get", f"{BASE}/{{job}}/runs", None, 200, ""),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    client: TestClient, method: str, path: str, body: Any, status: int, message: str
) -> None:
    job = _job()
    start(client, job, run_id="r1")
    commit(client, job, "r1", 0, {"src": {"n": 1}})
    start(client, job, run_id="r2")
    before = (bookmark(client, job), client.get(f"{BASE}/{job}/runs").json())
    response = getattr(client, method)(path.format(job=job), **({"json": body} if body is not None else {}))
    if status == 200:
        assert response.status_code == 200
    else:
        assert message in assert_error(response, status)["message"]
    assert (bookmark(client, job), client.get(f"{BASE}/{job}/runs").json()) == before
    assert_error(
        client.post(f"{BASE}/{job}/runs", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert commit(client, job, "r2", 1, {"src": {"n": 2}}).status_code == 200  # still usable


def test_lake_client_round_trip_and_errors(server: CatalogServer) -> None:
    job = _job()
    with LakeClient(server.uri) as lake:
        with pytest.raises(errors.NoSuchBookmarkError):
            lake.get_bookmark(job)
        run = lake.start_bookmark_run(job, run_id="jr_1")
        assert (run.version, run.run.run_id, run.recovered) == (0, "jr_1", [])
        other = lake.start_bookmark_run(job)
        assert other.run.run_id.startswith("jr_") and len(other.run.run_id) == 67 and other.run.attempt == 2
        assert lake.commit_bookmark_run(job, "jr_1", 0, {"src": {"high": 1.5}}).version == 1
        with pytest.raises(errors.BookmarkVersionMismatchError) as mismatch:
            lake.commit_bookmark_run(job, other.run.run_id, 0, {"src": {"high": 9}})
        assert mismatch.value.status == 409
        with pytest.raises(errors.JobRunConflictError):
            lake.start_bookmark_run(job, run_id="jr_1")
        assert lake.get_bookmark(job).state == {"src": {"high": 1.5}}
        assert [r.status for r in lake.bookmark_history(job)] == ["failed", "committed"]
        assert lake.get_bookmark_run(job, "jr_1").state == {"src": {"high": 1.5}}
        assert lake.rewind_bookmark(job, "jr_1").version == 2
        assert lake.reset_bookmark(job).state == {}
        assert job in [b.job_name for b in lake.list_bookmarks()]
        with pytest.raises(errors.ValidationFailedError, match="not allowed"):
            lake.get_bookmark("a/b")  # refused before it reaches the server as another path
        dotted = lake.start_bookmark_run("dotted.job.name")
        assert lake.commit_bookmark_run("dotted.job.name", dotted.run.run_id, 0, {}).job_name == "dotted.job.name"
        lake.delete_bookmark(job)
        with pytest.raises(errors.NoSuchBookmarkError):
            lake.bookmark_history(job)


# -- the bookmark token on table commits ----------------------------------------------------------------
def _append(catalog: Any, ident: str, ids: list[int], token: str | None) -> None:
    table = catalog.load_table(ident)
    table.append(
        pa.table({"id": pa.array(ids, pa.int64())}), snapshot_properties={TOKEN_PROPERTY: token} if token else {}
    )


def _ids(catalog: Any, ident: str) -> list[int]:
    return sorted(catalog.load_table(ident).scan().to_arrow().column("id").to_pylist())


def _token_checks_and_recovery(uri: str) -> None:
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import BadRequestError, CommitFailedException

    catalog = RestCatalog("lake", uri=uri)
    ns = f"bm_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(ns)
    for name in ("t", "t2"):  # no client-side retries of refused commits (they would be refused again)
        catalog.create_table(
            f"{ns}.{name}", schema=pa.schema([("id", pa.int64())]), properties={"commit.retry.num-retries": "0"}
        )
    job, ident = _job(), f"{ns}.t"
    with LakeClient(uri) as lake:
        lake.start_bookmark_run(job, run_id="r1")
        token = lake.prepare_bookmark_run(job, "r1", {"src": 1}, ns, "t")
        assert token == f"0:r1:1:{job}"
        _append(catalog, ident, [1], token)
        assert lake.commit_bookmark_run(job, "r1", 0, {"src": 1}).version == 1

        lake.start_bookmark_run(job, run_id="r2")
        with pytest.raises(CommitFailedException, match="did not prepare this write"):
            _append(catalog, ident, [99], f"1:r2:1:{job}")
        with pytest.raises(BadRequestError, match="Invalid lakeforge.bookmark.token"):
            _append(catalog, ident, [99], "not a token")
        with pytest.raises(CommitFailedException, match="has no bookmark"):
            _append(catalog, ident, [99], "0:r1:1:no_such_job")

        # Two runs from version 1 write before either commits: the second table commit is refused.
        token2 = lake.prepare_bookmark_run(job, "r2", {"src": 2}, ns, "t")
        lake.start_bookmark_run(job, run_id="r3")
        token3 = lake.prepare_bookmark_run(job, "r3", {"src": 3}, ns, "t")
        _append(catalog, ident, [2], token2)
        with pytest.raises(CommitFailedException, match="already holds the output of run 'r2' for bookmark version 1"):
            _append(catalog, ident, [3], token3)
        assert _ids(catalog, ident) == [1, 2]

        # r2 dies between its table commit and its bookmark commit: the next run commits r2's state.
        rerun = lake.start_bookmark_run(job, run_id="r4")
        assert (rerun.version, rerun.state) == (2, {"src": 2})
        assert [(r.run_id, r.status) for r in rerun.recovered] == [("r3", "failed"), ("r2", "committed")]
        assert lake.get_bookmark(job).run_id == "r2"
        assert "superseded" in (lake.get_bookmark_run(job, "r3").error or "")
        with pytest.raises(errors.JobRunConflictError, match="was marked failed"):
            lake.commit_bookmark_run(job, "r3", 1, {"src": 3})

        # r4 records its state, then dies (or stalls) before its table commit: the next run redoes its input,
        # and if r4 was only slow, its late table commit is refused.
        lake.prepare_bookmark_run(job, "r4", {"src": 4}, ns, "t")
        fresh = lake.start_bookmark_run(job, run_id="r5")
        assert (fresh.version, fresh.state, fresh.recovered) == (2, {"src": 2}, [])
        token5 = lake.prepare_bookmark_run(job, "r5", {"src": 5}, ns, "t")
        _append(catalog, ident, [5], token5)
        assert lake.commit_bookmark_run(job, "r5", 2, {"src": 5}).version == 3
        with pytest.raises(CommitFailedException, match="but the bookmark is at version 3"):
            _append(catalog, ident, [4], f"2:r4:1:{job}")

        # A run that wrote one of its two tables and died: no automatic recovery, and nothing changes.
        lake.start_bookmark_run(job, run_id="r6")
        token6 = lake.prepare_bookmark_run(job, "r6", {"src": 6}, ns, "t")
        with pytest.raises(CommitFailedException, match=r"did not prepare this write \(number 1\) to this table"):
            _append(catalog, f"{ns}.t2", [6], token6)  # a token is for one write to one table
        lake.prepare_bookmark_run(job, "r6", {"src": 6}, ns, "t2")
        _append(catalog, ident, [6], token6)
        with pytest.raises(
            errors.JobRunConflictError, match=f"made 1 of its 2 table writes but not write 2 to {ns}.t2"
        ):
            lake.start_bookmark_run(job, run_id="r7")
        assert lake.get_bookmark(job).version == 3
        with pytest.raises(errors.NoSuchJobRunError):
            lake.get_bookmark_run(job, "r7")
        assert _ids(catalog, ident) == [1, 2, 5, 6]
        # The way out the error names: roll back r6's snapshot; the next run then redoes r6's input.
        table = catalog.load_table(ident)
        before_r6 = [s for s in table.snapshots() if s.summary and s.summary.get(TOKEN_PROPERTY) == token5][0]
        table.manage_snapshots().rollback_to_snapshot(before_r6.snapshot_id).commit()
        retry = lake.start_bookmark_run(job, run_id="r7")
        assert (retry.version, retry.state, retry.recovered) == (3, {"src": 5}, [])
        summaries = [s.summary.get(TOKEN_PROPERTY) for s in catalog.load_table(ident).snapshots() if s.summary]
        assert summaries == [token, token2, token5, token6]
        assert _ids(catalog, ident) == [1, 2, 5]


def test_table_commits_carrying_a_token_are_checked_and_crashed_runs_recovered(server: CatalogServer) -> None:
    _token_checks_and_recovery(server.uri)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="lakeforge-pg-"))
    server = PostgresServer(base).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_bookmarks_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"lake_{uuid.uuid4().hex[:8]}")
    settings = Settings(home=tmp_path / "lake", catalog=CatalogSettings(port=0, database_url=url, fsync=False))  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        job = _job()
        start(c, job, run_id="a")
        start(c, job, run_id="b")
        assert commit(c, job, "a", 0, {"src": {"nested": [1, 2.5, None, "x"]}}).status_code == 200
        assert_error(commit(c, job, "b", 0, {}), 409, MISMATCH)
        assert c.post(f"{BASE}/{job}/rewind", json={"run-id": "a"}).json()["state"] == {
            "src": {"nested": [1, 2.5, None, "x"]}
        }
    with CatalogServer(settings) as server:
        _token_checks_and_recovery(server.uri)
