"""Job bookmarks of the lake's Glue-style jobs: versioned state per job, run history, and the tie between a
run's Iceberg table commits and its bookmark advance (exactly-once into Iceberg).

Rules (after Glue's, ``../shared/reference/glue-api.md`` section 3):

* A bookmark belongs to a **job name**. Its state is a JSON object keyed by ``transformation_ctx`` (the
  job runtime decides what each value holds: files seen, JDBC key values); this module never looks inside.
  Every change makes a new **version** (commit, reset, rewind, recovery); versions only grow, so a run that
  started before a reset cannot commit over it. Every version's state is kept (rewinds and ranges read it).
* A **run** starts (``POST .../runs``) with ``job-bookmark-enable`` or ``job-bookmark-pause`` and gets the
  state to process from: the current state, or for a paused run with ``from-run-id``/``to-run-id`` the
  states as of after those two runs (the run processes what lies between them). ``job-bookmark-disable``
  runs never reach the catalog.
* An enable run **commits** with the version it started from: a compare-and-swap. When another run
  committed first (or the bookmark was reset), the commit is refused with
  :class:`~catalog.errors.BookmarkVersionMismatchError` (409, Glue's ``GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR``),
  the run is marked failed and the bookmark keeps the winner's state. A paused run's commit only ends it.
  A run that dies or fails before its commit changes nothing: the next run gets the same state.
* Run numbers and attempts as Glue's: ``run`` counts the commits that advanced the bookmark; a run's
  ``attempt`` is 1 plus the enable runs that started from the same version and did not commit.
* **Exactly-once into Iceberg.** Before each write of an enable run to an Iceberg table, the run
  **prepares** it: it records the state it will commit and the table (``POST .../prepare``), and gets the
  bookmark token of that write, ``<base version>:<run id>:<write number>:<job name>``, which it puts into
  the snapshot summary (:data:`TOKEN_PROPERTY`). Every table commit that carries a token is checked in
  the commit's own database transaction (:meth:`Bookmarks.check_table_commit`): the run must be started
  and have prepared that write, the bookmark must still be at the token's version, and the table must
  hold no other run's output for that version; otherwise the commit is refused with 409.
  When a run starts, prepared runs that never committed from the current version are resolved first:
  if every write they prepared is in its table (a snapshot with its token), their table commits happened
  but their bookmark commit did not, so their prepared state is committed now (the new run does not redo
  their work) and the others are marked superseded; runs none of whose writes landed are left alone (dead
  or still running, they wrote nothing; the new run processes the same input, and if one is still
  running the table check refuses whichever of the two writes second). A run that made some of its writes
  but not all stops the next start with a 409 saying which snapshots to roll back (committing its state
  would lose the rest, redoing its input would duplicate the rest). A snapshot counts while a branch
  reaches it (a rolled-back snapshot holds no output). Both checks lock the bookmark row first, so a
  table commit and a recovery decision cannot interleave.
"""

from __future__ import annotations

import builtins
import logging
import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import Field
from pyiceberg.table.metadata import TableMetadata
from sqlalchemy import Connection, and_, delete, func, insert, select, update

from catalog import db
from catalog.backend import Backend, LostRace, now_ms, retrying
from catalog.errors import (
    BookmarkVersionMismatchError,
    CatalogError,
    JobRunConflictError,
    NoSuchBookmarkError,
    NoSuchJobRunError,
    ValidationFailedError,
)
from catalog.identifiers import MAX_NAME_LENGTH, validate_name, validate_namespace
from catalog.metadata_files import MetadataFileError
from catalog.models import StrictWireModel
from catalog.tables import TABLE_TYPE, TableIdent, Tables

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The snapshot-summary key of a bookmarked run's token (Spark write option ``snapshot-property.<key>``).
TOKEN_PROPERTY = "lakeforge.bookmark.token"
ENABLE = "job-bookmark-enable"
PAUSE = "job-bookmark-pause"
STARTED, COMMITTED, FAILED = "started", "committed", "failed"
MAX_CTX_LENGTH = 1024
MAX_ERROR_LENGTH = 4000
MAX_WRITES = 1000
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")
_FORBIDDEN_IN_JOB = re.compile(r"[/\\\x00-\x1f\x7f]")
_MISMATCH = "GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR"


# -- names and tokens -----------------------------------------------------------------------------------
def validate_job_name(name: str) -> str:
    """``name`` if it is a legal job name (Glue's names, minus what cannot travel in a URL path)."""
    if not isinstance(name, str) or not name:
        raise ValidationFailedError("Invalid job name: must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailedError(f"Invalid job name: longer than {MAX_NAME_LENGTH} characters")
    bad = _FORBIDDEN_IN_JOB.search(name)
    if bad:
        char = bad.group(0)
        shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
        raise ValidationFailedError(
            f"Invalid job name {name[:64]!r}: character {shown} is not allowed (no '/', '\\' or control characters)"
        )
    if name in (".", ".."):
        raise ValidationFailedError(f"Invalid job name {name!r}")
    if name.strip() != name:
        raise ValidationFailedError(f"Invalid job name {name!r}: leading or trailing white space")
    if unicodedata.normalize("NFC", name) != name:
        raise ValidationFailedError(f"Invalid job name {name!r}: not in Unicode NFC form")
    return name


def validate_run_id(run_id: str, what: str = "run id") -> str:
    """``run_id`` if it is a legal run id: letters, digits, ``_``, ``.``, ``-`` (at most 255)."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValidationFailedError(
            f"Invalid {what} {str(run_id)[:64]!r}: 1 to 255 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit (Glue's run ids look like jr_<64 hex digits>)"
        )
    return run_id


def new_run_id() -> str:
    """A run id as Glue makes them: ``jr_`` and 64 hex digits."""
    return "jr_" + uuid.uuid4().hex + uuid.uuid4().hex


def make_token(job_name: str, run_id: str, base_version: int, write: int) -> str:
    """The bookmark token of a run's ``write``-th table write (from 1), put into that commit's snapshot summary."""
    return f"{base_version}:{run_id}:{write}:{job_name}"


def parse_token(value: str) -> tuple[str, str, int, int]:
    """``(job name, run id, base version, write number)`` of a token; ValidationFailedError if it is not one."""
    parts = value.split(":", 3)
    if (
        len(parts) != 4
        or not parts[0].isdigit()
        or not _RUN_ID.fullmatch(parts[1])
        or not parts[2].isdigit()
        or not parts[3]
    ):
        raise ValidationFailedError(
            f"Invalid {TOKEN_PROPERTY} {value[:300]!r}: expected '<bookmark version>:<run id>:<write>:<job name>'"
        )
    return parts[3], parts[1], int(parts[0]), int(parts[2])


def _check_state(state: dict[str, Any], what: str) -> dict[str, Any]:
    for key in state:
        if not key or len(key) > MAX_CTX_LENGTH:
            raise ValidationFailedError(
                f"Invalid {what}: every key is a transformation_ctx of 1 to {MAX_CTX_LENGTH} characters"
            )
    return state


# -- wire models ------------------------------------------------------------------------------------------
class SinkRef(StrictWireModel):
    """An Iceberg table of this catalog a run writes."""

    namespace: list[str]
    name: str


class StartRunRequest(StrictWireModel):
    """``POST /lakeforge/v1/bookmarks/{job}/runs``."""

    run_id: str | None = Field(None, alias="run-id")
    option: Literal["job-bookmark-enable", "job-bookmark-pause"] = "job-bookmark-enable"
    from_run_id: str | None = Field(None, alias="from-run-id")
    to_run_id: str | None = Field(None, alias="to-run-id")


class PrepareRunRequest(StrictWireModel):
    """``POST .../runs/{run_id}/prepare``: the state the run will commit and a table it is about to write."""

    state: dict[str, Any]
    sink: SinkRef


class CommitRunRequest(StrictWireModel):
    """``POST .../runs/{run_id}/commit``: the version the run started from and its new state."""

    expected_version: int = Field(alias="expected-version", ge=0)
    state: dict[str, Any] | None = None


class FailRunRequest(StrictWireModel):
    error: str | None = None


class RewindRequest(StrictWireModel):
    run_id: str = Field(alias="run-id")


# -- results ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bookmark:
    """A job's bookmark: its current state and version (Glue's ``JobBookmarkEntry``)."""

    job_name: str
    version: int
    #: Runs that advanced the bookmark so far.
    run: int
    #: The last run that advanced it, and the one before.
    run_id: str | None
    previous_run_id: str | None
    state: dict[str, Any]
    created_ms: int
    updated_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "job-name": self.job_name,
            "version": self.version,
            "run": self.run,
            "run-id": self.run_id,
            "previous-run-id": self.previous_run_id,
            "state": self.state,
            "created-ms": self.created_ms,
            "updated-ms": self.updated_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bookmark:
        return cls(
            job_name=data["job-name"],
            version=data["version"],
            run=data["run"],
            run_id=data.get("run-id"),
            previous_run_id=data.get("previous-run-id"),
            state=dict(data.get("state") or {}),
            created_ms=data["created-ms"],
            updated_ms=data["updated-ms"],
        )


@dataclass(frozen=True)
class BookmarkRun:
    """One run of a bookmarked job."""

    job_name: str
    run_id: str
    attempt: int
    option: str
    status: str
    started_ms: int
    ended_ms: int | None
    #: The version the run started from, and the version its commit made (enable runs that committed).
    base_version: int
    committed_version: int | None
    from_run_id: str | None
    to_run_id: str | None
    #: Tables the run prepared to write (``namespace.name``, each once).
    sinks: list[str]
    #: Whether the run recorded a state before writing a table.
    prepared: bool
    #: The run that resolved this one at its start (committed its prepared state, or marked it failed).
    resolved_by: str | None
    error: str | None
    #: The state the run committed (None unless it advanced the bookmark).
    state: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "job-name": self.job_name,
            "run-id": self.run_id,
            "attempt": self.attempt,
            "option": self.option,
            "status": self.status,
            "started-ms": self.started_ms,
            "ended-ms": self.ended_ms,
            "base-version": self.base_version,
            "committed-version": self.committed_version,
            "from-run-id": self.from_run_id,
            "to-run-id": self.to_run_id,
            "sinks": self.sinks,
            "prepared": self.prepared,
            "resolved-by": self.resolved_by,
            "error": self.error,
            "state": self.state,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BookmarkRun:
        return cls(
            job_name=data["job-name"],
            run_id=data["run-id"],
            attempt=data["attempt"],
            option=data["option"],
            status=data["status"],
            started_ms=data["started-ms"],
            ended_ms=data.get("ended-ms"),
            base_version=data["base-version"],
            committed_version=data.get("committed-version"),
            from_run_id=data.get("from-run-id"),
            to_run_id=data.get("to-run-id"),
            sinks=list(data.get("sinks") or []),
            prepared=bool(data.get("prepared")),
            resolved_by=data.get("resolved-by"),
            error=data.get("error"),
            state=data.get("state"),
        )


@dataclass(frozen=True)
class RunStart:
    """What a starting run gets: its run record, the version it starts from, the state to process from and,
    for a paused run with a range, the state to process up to; and the earlier runs resolved on the way."""

    run: BookmarkRun
    version: int
    state: dict[str, Any]
    to_state: dict[str, Any] | None
    recovered: list[BookmarkRun]

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run.to_json(),
            "version": self.version,
            "state": self.state,
            "to-state": self.to_state,
            "recovered": [r.to_json() for r in self.recovered],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStart:
        return cls(
            run=BookmarkRun.from_json(data["run"]),
            version=data["version"],
            state=dict(data.get("state") or {}),
            to_state=data.get("to-state"),
            recovered=[BookmarkRun.from_json(r) for r in data.get("recovered") or []],
        )


@dataclass(frozen=True)
class _Refused:
    """A commit refused after the run was marked failed (raised once that transaction committed)."""

    error: CatalogError


def _live_tokens(metadata: TableMetadata) -> list[str]:
    """The bookmark tokens of the snapshots the table's branches reach (a rolled-back snapshot holds no
    output any more)."""
    by_id = {s.snapshot_id: s for s in metadata.snapshots}
    heads = [ref.snapshot_id for ref in metadata.refs.values() if ref.snapshot_ref_type == "branch"]
    seen: set[int] = set()
    tokens: list[str] = []
    for head in heads:
        current: int | None = head
        while current is not None and current not in seen and current in by_id:
            seen.add(current)
            snapshot = by_id[current]
            token = snapshot.summary.get(TOKEN_PROPERTY) if snapshot.summary is not None else None
            if token:
                tokens.append(token)
            current = snapshot.parent_snapshot_id
    return tokens


def _sink_name(sink: dict[str, Any]) -> str:
    return ".".join([*sink["namespace"], sink["name"]])


def _sink_names(writes: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(_sink_name(w) for w in writes))


# -- the service ------------------------------------------------------------------------------------------
class Bookmarks:
    """The job bookmarks of one catalog."""

    def __init__(self, backend: Backend, tables: Tables) -> None:
        self.b = backend
        self.tables = tables

    # -- helpers ---------------------------------------------------------------------------------------
    def _job_where(self, table: Any, job: str) -> Any:
        return and_(table.c.catalog_name == self.b.name, table.c.job_name == job)

    def _lock(self, conn: Connection, job: str) -> Any:
        """Lock the job's bookmark row for the transaction and read it (None: no bookmark).

        A no-op ``UPDATE`` first: on SQLite it starts the transaction and takes the write lock (a plain
        ``SELECT`` runs outside the transaction there); on PostgreSQL it row-locks the bookmark. Every
        change of a bookmark, and every table commit carrying its token, locks it first, so they serialize.
        """
        t = db.bookmarks
        conn.execute(update(t).where(self._job_where(t, job)).values(version=t.c.version))
        return conn.execute(select(t).where(self._job_where(t, job))).mappings().first()

    def _require(self, conn: Connection, job: str) -> Any:
        row = self._lock(conn, job)
        if row is None:
            raise NoSuchBookmarkError(f"Job {job!r} has no bookmark")
        return row

    def _run_row(self, conn: Connection, job: str, run_id: str) -> Any:
        r = db.bookmark_runs
        return conn.execute(select(r).where(and_(self._job_where(r, job), r.c.run_id == run_id))).mappings().first()

    def _require_run(self, conn: Connection, job: str, run_id: str) -> Any:
        row = self._run_row(conn, job, run_id)
        if row is None:
            raise NoSuchJobRunError(f"Job {job!r} has no run {run_id!r}")
        return row

    def _version_state(self, conn: Connection, job: str, version: int) -> dict[str, Any]:
        v = db.bookmark_versions
        row = conn.execute(select(v.c.state).where(and_(self._job_where(v, job), v.c.version == version))).first()
        if row is None:
            raise NoSuchBookmarkError(f"Job {job!r} has no bookmark version {version}")
        return dict(row[0] or {})

    def _update_run(self, conn: Connection, job: str, run_id: str, **values: Any) -> None:
        r = db.bookmark_runs
        conn.execute(update(r).where(and_(self._job_where(r, job), r.c.run_id == run_id)).values(**values))

    @staticmethod
    def _bookmark(row: Any) -> Bookmark:
        return Bookmark(
            job_name=row["job_name"],
            version=row["version"],
            run=row["run_number"],
            run_id=row["last_run_id"],
            previous_run_id=row["previous_run_id"],
            state=dict(row["state"] or {}),
            created_ms=row["created_ms"],
            updated_ms=row["updated_ms"],
        )

    def _run(self, conn: Connection, row: Any) -> BookmarkRun:
        state = None
        if row["status"] == COMMITTED and row["committed_version"] is not None:
            state = self._version_state(conn, row["job_name"], row["committed_version"])
        return BookmarkRun(
            job_name=row["job_name"],
            run_id=row["run_id"],
            attempt=row["attempt"],
            option=row["option"],
            status=row["status"],
            started_ms=row["started_ms"],
            ended_ms=row["ended_ms"],
            base_version=row["base_version"],
            committed_version=row["committed_version"],
            from_run_id=row["from_run_id"],
            to_run_id=row["to_run_id"],
            sinks=_sink_names(row["sinks"] or []),
            prepared=row["pending_state"] is not None,
            resolved_by=row["resolved_by"],
            error=row["error"],
            state=state,
        )

    def _advance(
        self,
        conn: Connection,
        current: Any,
        state: dict[str, Any],
        action: str,
        principal: str,
        run_id: str | None = None,
    ) -> Bookmark:
        """Make a new version of the (locked) bookmark ``current`` with ``state``."""
        job, version, ts = current["job_name"], current["version"] + 1, now_ms()
        values: dict[str, Any] = {"version": version, "state": state, "updated_ms": ts}
        if action in ("commit", "recover"):
            values.update(
                run_number=current["run_number"] + 1, last_run_id=run_id, previous_run_id=current["last_run_id"]
            )
        t = db.bookmarks
        result = conn.execute(
            update(t).where(and_(self._job_where(t, job), t.c.version == current["version"])).values(**values)
        )
        if result.rowcount != 1:
            raise LostRace(job)
        conn.execute(
            insert(db.bookmark_versions).values(
                catalog_name=self.b.name,
                job_name=job,
                version=version,
                ts_ms=ts,
                action=action,
                run_id=run_id,
                principal=principal,
                state=state,
            )
        )
        self.b.audit(conn, f"bookmark-{action}", principal, None, job, detail={"version": version, "run-id": run_id})
        row = dict(current)
        row.update(values)
        return self._bookmark(row)

    def _retrying(self, what: str, attempt_once: Callable[[], T]) -> T:
        return retrying(self.b.settings, what, attempt_once)

    # -- bookmarks ---------------------------------------------------------------------------------------
    def get(self, job: str) -> Bookmark:
        job = validate_job_name(job)
        t = db.bookmarks
        with self.b.engine.connect() as conn:
            row = conn.execute(select(t).where(self._job_where(t, job))).mappings().first()
        if row is None:
            raise NoSuchBookmarkError(f"Job {job!r} has no bookmark")
        return self._bookmark(row)

    def list(self, page_token: str | None, page_size: int) -> tuple[list[Bookmark], str | None]:
        """One page of bookmarks by job name; the token is the last name of the page."""
        t = db.bookmarks
        query = select(t).where(t.c.catalog_name == self.b.name)
        if page_token:
            query = query.where(t.c.job_name > page_token)
        with self.b.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.job_name).limit(page_size + 1)).mappings().all()
        page = [self._bookmark(r) for r in rows[:page_size]]
        return page, (page[-1].job_name if len(rows) > page_size else None)

    def delete(self, job: str, principal: str) -> None:
        """Delete the bookmark with its versions and runs (Glue deletes it with the job)."""
        job = validate_job_name(job)
        with self.b.engine.begin() as conn:
            self._require(conn, job)
            for table in (db.bookmark_runs, db.bookmark_versions, db.bookmarks):
                conn.execute(delete(table).where(self._job_where(table, job)))
            self.b.audit(conn, "bookmark-delete", principal, None, job)

    def reset(self, job: str, principal: str) -> Bookmark:
        """Clear the state (every ``transformation_ctx``): the next run processes everything."""
        job = validate_job_name(job)

        def attempt() -> Bookmark:
            with self.b.engine.begin() as conn:
                return self._advance(conn, self._require(conn, job), {}, "reset", principal)

        return self._retrying(f"Resetting the bookmark of {job!r}", attempt)

    def rewind(self, job: str, run_id: str, principal: str) -> Bookmark:
        """Set the state to what it was right after run ``run_id``: the next run reprocesses what came after."""
        job, run_id = validate_job_name(job), validate_run_id(run_id)

        def attempt() -> Bookmark:
            with self.b.engine.begin() as conn:
                current = self._require(conn, job)
                _version, state = self._state_after(conn, job, run_id, "rewind to")
                return self._advance(conn, current, state, "rewind", principal, run_id)

        return self._retrying(f"Rewinding the bookmark of {job!r}", attempt)

    def _state_after(self, conn: Connection, job: str, run_id: str, purpose: str) -> tuple[int, dict[str, Any]]:
        """The version and state as of right after a committed run."""
        run = self._require_run(conn, job, run_id)
        if run["status"] != COMMITTED:
            raise ValidationFailedError(
                f"Cannot {purpose} run {run_id!r} of job {job!r}: it is {run['status']}, not committed "
                "(only a committed run marks a point of the bookmark)"
            )
        version = run["committed_version"] if run["committed_version"] is not None else run["base_version"]
        return version, self._version_state(conn, job, version)

    # -- runs --------------------------------------------------------------------------------------------
    def start_run(self, job: str, request: StartRunRequest, principal: str) -> RunStart:
        """Start a run: resolve earlier prepared runs, then record this one and return its state."""
        job = validate_job_name(job)
        run_id = validate_run_id(request.run_id) if request.run_id else new_run_id()
        ranged = [r for r in (request.from_run_id, request.to_run_id) if r is not None]
        if ranged:
            if request.option != PAUSE:
                raise ValidationFailedError(
                    "from-run-id/to-run-id (--job-bookmark-from/--job-bookmark-to) are only allowed with "
                    f"job-bookmark-pause, not {request.option}"
                )
            if len(ranged) != 2:
                raise ValidationFailedError("from-run-id and to-run-id go together")
            validate_run_id(ranged[0], "from-run-id")
            validate_run_id(ranged[1], "to-run-id")

        def attempt() -> RunStart:
            with self.b.engine.begin() as conn:
                current = self._lock(conn, job)
                if current is None:
                    current = self._create(conn, job, principal)
                existing = self._run_row(conn, job, run_id)
                if existing is not None:
                    raise JobRunConflictError(
                        f"Run id {run_id!r} of job {job!r} was already used (it is {existing['status']}); "
                        "every run needs a new JOB_RUN_ID"
                    )
                recovered = self._recover(conn, current, run_id, principal)
                current = self._require(conn, job)
                state, to_state = dict(current["state"] or {}), None
                if ranged:
                    from_version, state = self._state_after(conn, job, ranged[0], "process from")
                    to_version, to_state = self._state_after(conn, job, ranged[1], "process up to")
                    if from_version > to_version:
                        raise ValidationFailedError(
                            f"--job-bookmark-from {ranged[0]!r} (version {from_version}) comes after "
                            f"--job-bookmark-to {ranged[1]!r} (version {to_version})"
                        )
                r = db.bookmark_runs
                earlier = conn.execute(
                    select(func.count())
                    .select_from(r)
                    .where(
                        and_(
                            self._job_where(r, job),
                            r.c.base_version == current["version"],
                            r.c.option == ENABLE,
                            r.c.status != COMMITTED,
                        )
                    )
                ).scalar_one()
                values = {
                    "catalog_name": self.b.name,
                    "job_name": job,
                    "run_id": run_id,
                    "attempt": int(earlier) + 1 if request.option == ENABLE else 1,
                    "option": request.option,
                    "status": STARTED,
                    "started_ms": now_ms(),
                    "ended_ms": None,
                    "base_version": current["version"],
                    "committed_version": None,
                    "from_run_id": request.from_run_id,
                    "to_run_id": request.to_run_id,
                    "pending_state": None,
                    "sinks": None,
                    "resolved_by": None,
                    "error": None,
                    "principal": principal,
                }
                conn.execute(insert(r).values(**values))
                run = self._run(conn, values)
                log.info("job %s: run %s started from version %d (%s)", job, run_id, run.base_version, run.option)
                return RunStart(run, current["version"], state, to_state, recovered)

        return self._retrying(f"Starting a run of {job!r}", attempt)

    def _create(self, conn: Connection, job: str, principal: str) -> Any:
        ts = now_ms()
        values = {
            "catalog_name": self.b.name,
            "job_name": job,
            "version": 0,
            "run_number": 0,
            "last_run_id": None,
            "previous_run_id": None,
            "state": {},
            "created_ms": ts,
            "updated_ms": ts,
        }
        conn.execute(insert(db.bookmarks).values(**values))
        conn.execute(
            insert(db.bookmark_versions).values(
                catalog_name=self.b.name,
                job_name=job,
                version=0,
                ts_ms=ts,
                action="create",
                run_id=None,
                principal=principal,
                state={},
            )
        )
        self.b.audit(conn, "bookmark-create", principal, None, job)
        return values

    def _recover(self, conn: Connection, current: Any, by_run: str, principal: str) -> builtins.list[BookmarkRun]:
        """Resolve the prepared runs that never committed from the current version (see the module doc)."""
        job = current["job_name"]
        r = db.bookmark_runs
        pending = (
            conn.execute(
                select(r)
                .where(
                    and_(
                        self._job_where(r, job),
                        r.c.base_version == current["version"],
                        r.c.option == ENABLE,
                        r.c.status != COMMITTED,
                        r.c.pending_state.is_not(None),
                        r.c.resolved_by.is_(None),
                    )
                )
                .order_by(r.c.id.desc())
            )
            .mappings()
            .all()
        )
        # A prepared run without its token in any table may be dead, or alive and about to write: it is left
        # alone (if it is alive, the table check refuses whichever of it and the new run writes second).
        winner = None
        for row in pending:
            writes = list(row["sinks"] or [])
            landed = [
                w
                for w in writes
                if self._table_has_token(conn, w, make_token(job, row["run_id"], row["base_version"], w["write"]))
            ]
            if writes and len(landed) == len(writes):
                winner = row
                break
            if landed:
                missing = [w for w in writes if w not in landed]
                shown = ", ".join(f"write {w['write']} to {_sink_name(w)}" for w in missing)
                raise JobRunConflictError(
                    f"Run {row['run_id']!r} of job {job!r} made {len(landed)} of its {len(writes)} table writes but "
                    f"not {shown} (it died, or is still writing): its bookmark cannot be recovered automatically. "
                    f"If it is dead, roll back its snapshots in {', '.join(_sink_names(landed))} (snapshot summary "
                    f"{TOKEN_PROPERTY} = {row['base_version']}:{row['run_id']}:<write>:{job}): the next run then "
                    "processes its input again"
                )
        if winner is None:
            return []
        written = ", ".join(_sink_names(winner["sinks"]))
        bookmark = self._advance(conn, current, dict(winner["pending_state"]), "recover", principal, winner["run_id"])
        self._update_run(
            conn,
            job,
            winner["run_id"],
            status=COMMITTED,
            ended_ms=winner["ended_ms"] or now_ms(),
            committed_version=bookmark.version,
            resolved_by=by_run,
            error=_note(
                winner["error"],
                f"recovered by run {by_run!r}: its table commits ({written}) landed but its bookmark commit did not; "
                "its prepared state was committed",
            ),
        )
        log.warning(
            "job %s: run %s wrote %s but never committed its bookmark; committed its state now",
            job,
            winner["run_id"],
            written,
        )
        for row in pending:
            if row["run_id"] != winner["run_id"]:
                self._update_run(
                    conn,
                    job,
                    row["run_id"],
                    status=FAILED,
                    ended_ms=row["ended_ms"] or now_ms(),
                    resolved_by=by_run,
                    error=_note(row["error"], f"superseded: run {winner['run_id']!r}'s output was committed instead"),
                )
        return [self._run(conn, self._run_row(conn, job, row["run_id"])) for row in pending]

    def _table_has_token(self, conn: Connection, sink: dict[str, Any], token: str) -> bool:
        """Whether a snapshot a branch of the table reaches carries ``token``."""
        ident = TableIdent(tuple(sink["namespace"]), sink["name"])
        row = self.tables._row(conn, ident)
        if row is None or (row[1] or TABLE_TYPE) != TABLE_TYPE or row[0] is None:
            return False
        try:
            metadata = self.b.files.read_table(row[0])
        except MetadataFileError:
            return False
        return token in _live_tokens(metadata)

    def prepare(self, job: str, run_id: str, request: PrepareRunRequest, principal: str) -> str:
        """Record the state a run will commit and a table it is about to write; return its bookmark token."""
        job, run_id = validate_job_name(job), validate_run_id(run_id)
        state = _check_state(request.state, "state")
        ns = validate_namespace(request.sink.namespace)
        sink = {"namespace": list(ns), "name": validate_name(request.sink.name, "table")}

        def attempt() -> str:
            with self.b.engine.begin() as conn:
                current = self._require(conn, job)
                run = self._require_run(conn, job, run_id)
                if run["option"] != ENABLE:
                    raise JobRunConflictError(
                        f"Run {run_id!r} of job {job!r} is a {run['option']} run: it does not advance the bookmark, "
                        "so it has no token to prepare"
                    )
                if run["status"] != STARTED:
                    raise JobRunConflictError(
                        f"Run {run_id!r} of job {job!r} is {run['status']}: it cannot write ({run['error'] or ''})"
                    )
                if current["version"] != run["base_version"]:
                    raise BookmarkVersionMismatchError(_mismatch(job, run_id, run["base_version"], current))
                writes = list(run["sinks"] or [])
                if len(writes) >= MAX_WRITES:
                    raise ValidationFailedError(f"A run may make at most {MAX_WRITES} table writes")
                write = len(writes) + 1
                writes.append({**sink, "write": write})
                self._update_run(conn, job, run_id, pending_state=state, sinks=writes)
                return make_token(job, run_id, run["base_version"], write)

        return self._retrying(f"Preparing run {run_id!r} of {job!r}", attempt)

    def commit(self, job: str, run_id: str, request: CommitRunRequest, principal: str) -> Bookmark:
        """End a run successfully: an enable run's state becomes the new version (compare-and-swap on the
        version it started from); a paused run changes nothing."""
        job, run_id = validate_job_name(job), validate_run_id(run_id)
        state = _check_state(request.state, "state") if request.state is not None else None

        def attempt() -> Bookmark | _Refused:
            with self.b.engine.begin() as conn:
                current = self._require(conn, job)
                run = self._require_run(conn, job, run_id)
                if request.expected_version != run["base_version"]:
                    raise ValidationFailedError(
                        f"expected-version {request.expected_version} is not the version run {run_id!r} started "
                        f"from ({run['base_version']})"
                    )
                if run["status"] == COMMITTED:
                    if run["option"] == ENABLE and run["committed_version"] is not None:
                        # A retried commit, or one a recovery made from the state prepared before its last
                        # table write: the bookmark already has it. Sources read after that write are read again.
                        committed = self._version_state(conn, job, run["committed_version"])
                        level = logging.INFO if state is None or state == committed else logging.WARNING
                        log.log(
                            level,
                            "job %s: run %s was committed before (version %s)%s",
                            job,
                            run_id,
                            run["committed_version"],
                            ""
                            if level == logging.INFO
                            else "; the state of sources read after its last write is not saved",
                        )
                    return self._bookmark(current)
                if run["status"] == FAILED:
                    raise JobRunConflictError(
                        f"Run {run_id!r} of job {job!r} was marked failed ({run['error'] or 'no reason given'}); "
                        "its state is not saved"
                    )
                if run["option"] != ENABLE:
                    self._update_run(conn, job, run_id, status=COMMITTED, ended_ms=now_ms())
                    return self._bookmark(current)
                if state is None:
                    raise ValidationFailedError(f"Committing enable run {run_id!r} needs its state")
                if current["version"] != run["base_version"]:
                    error = BookmarkVersionMismatchError(_mismatch(job, run_id, run["base_version"], current))
                    self._update_run(conn, job, run_id, status=FAILED, ended_ms=now_ms(), error=error.message)
                    return _Refused(error)
                bookmark = self._advance(conn, current, state, "commit", principal, run_id)
                self._update_run(
                    conn, job, run_id, status=COMMITTED, ended_ms=now_ms(), committed_version=bookmark.version
                )
                return bookmark

        result = self._retrying(f"Committing run {run_id!r} of {job!r}", attempt)
        if isinstance(result, _Refused):
            raise result.error
        return result

    def fail(self, job: str, run_id: str, error: str | None, principal: str) -> BookmarkRun:
        """Mark a started run failed (its state is not saved). Failing a failed run again is a no-op."""
        job, run_id = validate_job_name(job), validate_run_id(run_id)
        message = (error or "failed")[:MAX_ERROR_LENGTH]

        def attempt() -> BookmarkRun:
            with self.b.engine.begin() as conn:
                self._require(conn, job)
                run = self._require_run(conn, job, run_id)
                if run["status"] == COMMITTED:
                    raise JobRunConflictError(f"Run {run_id!r} of job {job!r} is committed: it cannot fail now")
                if run["status"] == STARTED:
                    self._update_run(conn, job, run_id, status=FAILED, ended_ms=now_ms(), error=message)
                return self._run(conn, self._run_row(conn, job, run_id))

        return self._retrying(f"Failing run {run_id!r} of {job!r}", attempt)

    def run(self, job: str, run_id: str) -> BookmarkRun:
        job, run_id = validate_job_name(job), validate_run_id(run_id)
        with self.b.engine.connect() as conn:
            return self._run(conn, self._require_run(conn, job, run_id))

    def history(
        self, job: str, page_token: str | None, page_size: int
    ) -> tuple[builtins.list[BookmarkRun], str | None]:
        """The job's runs, newest first; the token is the position after the page."""
        job = validate_job_name(job)
        if page_token is not None and not page_token.isdigit():
            raise ValidationFailedError(f"Invalid page token {page_token[:64]!r}")
        r = db.bookmark_runs
        t = db.bookmarks
        with self.b.engine.connect() as conn:
            if conn.execute(select(t.c.job_name).where(self._job_where(t, job))).first() is None:
                raise NoSuchBookmarkError(f"Job {job!r} has no bookmark")
            query = select(r).where(self._job_where(r, job))
            if page_token:
                query = query.where(r.c.id < int(page_token))
            rows = conn.execute(query.order_by(r.c.id.desc()).limit(page_size + 1)).mappings().all()
            page = [self._run(conn, row) for row in rows[:page_size]]
        token = str(rows[page_size - 1]["id"]) if len(rows) > page_size else None
        return page, token

    # -- the table-commit check --------------------------------------------------------------------------
    def check_table_commit(
        self, conn: Connection, ident: TableIdent, base: TableMetadata | None, new: TableMetadata
    ) -> None:
        """Refuse (409) a table commit whose new snapshots carry a bookmark token that may not commit now.

        Runs inside the commit's transaction, before the pointer moves (see the module docstring).
        """
        known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
        tokens = {
            s.summary.get(TOKEN_PROPERTY)
            for s in new.snapshots
            if s.snapshot_id not in known and s.summary is not None and s.summary.get(TOKEN_PROPERTY)
        }
        for token in sorted(t for t in tokens if t):
            job, run_id, version, write = parse_token(token)
            current = self._lock(conn, job)
            if current is None:
                raise BookmarkVersionMismatchError(
                    f"{_MISMATCH}: commit to {ident} carries run {run_id!r} of job {job!r}, which has no bookmark "
                    "(deleted?): refused"
                )
            run = self._run_row(conn, job, run_id)
            sink = {"namespace": list(ident.namespace), "name": ident.name, "write": write}
            if run is None or run["option"] != ENABLE or sink not in (run["sinks"] or []):
                raise JobRunConflictError(
                    f"Commit to {ident} carries the bookmark token of run {run_id!r} of job {job!r}, which did not "
                    f"prepare this write (number {write}) to this table: refused"
                )
            if run["status"] != STARTED:
                raise JobRunConflictError(
                    f"Commit to {ident} by run {run_id!r} of job {job!r} refused: the run is {run['status']} "
                    f"({run['error'] or 'no reason given'})"
                )
            if current["version"] != version:
                raise BookmarkVersionMismatchError(
                    f"Commit to {ident} refused: " + _mismatch(job, run_id, version, current)
                )
            for other in _live_tokens(base) if base is not None else []:
                try:
                    other_job, other_run, other_version, _write = parse_token(other)
                except ValidationFailedError:
                    continue  # not one of ours
                if other_job == job and other_version == version and other_run != run_id:
                    raise BookmarkVersionMismatchError(
                        f"{_MISMATCH}: commit to {ident} by run {run_id!r} of job {job!r} refused: the table already "
                        f"holds the output of run {other_run!r} for bookmark version {version} (concurrent runs)"
                    )


def _note(previous: str | None, note: str) -> str:
    return (f"{previous}; {note}" if previous else note)[:MAX_ERROR_LENGTH]


def _mismatch(job: str, run_id: str, base_version: int, current: Any) -> str:
    by = f"run {current['last_run_id']!r} committed" if current["last_run_id"] else "it changed"
    return (
        f"{_MISMATCH}: run {run_id!r} of job {job!r} started from bookmark version {base_version}, but the bookmark "
        f"is at version {current['version']} ({by} first, or it was reset/rewound); this run's state is not saved"
    )


def sink_ref(namespace: Sequence[str], name: str) -> dict[str, Any]:
    """The JSON form of a sink, as :class:`PrepareRunRequest` takes it."""
    return {"namespace": list(namespace), "name": name}
