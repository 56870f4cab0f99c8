"""Glue's ``Job`` (served to scripts as ``awsglue.job``): the run's identity and the bookmark lifecycle.

::

    job = Job(glueContext)
    job.init(args["JOB_NAME"], args)   # starts the run and loads the job's bookmark state (unless disabled)
    ...                                # sources record state under their transformation_ctx
    job.commit()                       # saves the state atomically; without it the next run reprocesses

Where bookmarks live: a :class:`BookmarkStore`. A ``Job`` built on a GlueContext or a SparkSession uses the
lake catalog's bookmark API (:class:`jobs.glue.bookmarks.CatalogBookmarkStore`, at the catalog URI the Spark
session is configured with), so any later run on any machine sees the state; ``Job(None)`` keeps state in
this process only (:class:`InMemoryBookmarkStore`). :func:`set_default_bookmark_store` replaces the store
of every later ``Job`` of the process, and ``Job(ctx, bookmark_store=...)`` of one.

The options (``--job-bookmark-option``):

* ``job-bookmark-enable``: the run starts from the last committed state and ``commit()`` saves the new
  state with a compare-and-swap on the version it started from; when another run committed first,
  ``commit()`` raises :class:`BookmarkVersionMismatchError` and saves nothing.
* ``job-bookmark-pause``: the run reads from the last committed state, or processes the range between the
  runs given by ``--job-bookmark-from`` and ``--job-bookmark-to``, and never saves state.
* ``job-bookmark-disable`` (the default): no state, no catalog calls; everything is processed.

A run of a store that tracks runs (the catalog's) that ends without ``commit()`` (an exception, a script
that never calls it) is marked failed when the interpreter exits; a killed one stays "started". Either
way its state is not saved, so the next run processes the same input.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jobs.glue.utils import BOOKMARK_OPTIONS, DEFAULT_BOOKMARK_OPTION

if TYPE_CHECKING:
    from catalog.bookmarks import RunStart

log = logging.getLogger(__name__)

ENABLE, PAUSE, DISABLE = "job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable"


class JobError(RuntimeError):
    """A Job used out of order (commit before init, init twice) or a bookmark that cannot be used."""


class BookmarkVersionMismatchError(JobError):
    """``GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR``: another run of the job committed (or the bookmark was
    reset) after this run started; this run's state was not saved."""


@runtime_checkable
class BookmarkStore(Protocol):
    """Where bookmark state lives between runs: one JSON-able dict per job.

    ``load`` returns the job's latest committed state (``{}`` for a new job); ``save`` stores the state
    a run committed and must be atomic.
    """

    def load(self, job_name: str) -> dict[str, Any]: ...

    def save(self, job_name: str, run_id: str, state: dict[str, Any]) -> None: ...


@runtime_checkable
class RunTrackingBookmarkStore(BookmarkStore, Protocol):
    """A store that knows runs: versions, compare-and-swap commits, history, exactly-once sinks."""

    def start_run(
        self, job_name: str, run_id: str, option: str, from_run_id: str | None, to_run_id: str | None
    ) -> RunStart: ...

    def prepare_run(
        self, job_name: str, run_id: str, state: dict[str, Any], namespace: list[str], table: str
    ) -> str: ...

    def commit_run(self, job_name: str, run_id: str, expected_version: int, state: dict[str, Any] | None) -> int: ...

    def fail_run(self, job_name: str, run_id: str, error: str) -> None: ...


class InMemoryBookmarkStore:
    """A :class:`BookmarkStore` that keeps state in this process only: NOT persistent.

    Every new process starts with no bookmarks, so each run processes all its input, exactly as with
    ``job-bookmark-disable``. ``Job(None)`` uses it; jobs on a GlueContext use the catalog's store.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}
        self.saved: list[tuple[str, str]] = []

    def load(self, job_name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._states.get(job_name, {}))

    def save(self, job_name: str, run_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._states[job_name] = dict(state)
            self.saved.append((job_name, run_id))


_in_memory: BookmarkStore = InMemoryBookmarkStore()
_override: BookmarkStore | None = None


def default_bookmark_store() -> BookmarkStore:
    """The store set with :func:`set_default_bookmark_store`, else the process's in-memory store (what
    ``Job(None)`` uses; jobs on a GlueContext use the catalog unless a default was set)."""
    return _override or _in_memory


def set_default_bookmark_store(store: BookmarkStore | None) -> None:
    """Make ``store`` the bookmark store of every later ``Job`` of this process (None: back to the catalog
    for jobs on a GlueContext, in-memory for ``Job(None)``)."""
    global _override
    _override = store


def _new_run_id() -> str:
    # Glue run ids: "jr_" and 64 hex digits.
    return "jr_" + uuid.uuid4().hex + uuid.uuid4().hex


def _store_for(glue_context: Any) -> BookmarkStore:
    if _override is not None:
        return _override
    if glue_context is None:
        return _in_memory
    from jobs.glue.bookmarks import CatalogBookmarkStore

    return CatalogBookmarkStore.for_context(glue_context)


class Job:
    """One run of a Glue job. ``Job(glue_context)`` (a GlueContext or a SparkSession), then ``init`` and
    ``commit``."""

    def __init__(self, glue_context: Any, bookmark_store: BookmarkStore | None = None) -> None:
        self._glue_context = glue_context
        self._explicit_store = bookmark_store
        self._store: BookmarkStore | None = bookmark_store
        self._job_name: str | None = None
        self._args: dict[str, Any] = {}
        self._run_id: str | None = None
        self._bookmark_option = DEFAULT_BOOKMARK_OPTION
        self._state: dict[str, Any] = {}
        self._to_state: dict[str, Any] | None = None
        self._version: int | None = None
        self._attempt = 1
        self._tracked = False
        self._committed = False
        self._ended = False

    # -- Glue's API -----------------------------------------------------------------------------------
    @staticmethod
    def job_bookmark_options() -> list[str]:
        return list(BOOKMARK_OPTIONS)

    @staticmethod
    def job_bookmark_range_options() -> list[str]:
        return ["job-bookmark-from", "job-bookmark-to"]

    @staticmethod
    def id_params() -> list[str]:
        return ["--JOB_NAME", "--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION"]

    @staticmethod
    def encryption_type_options() -> list[str]:
        return ["--encryption-type"]

    def init(self, job_name: str, args: dict[str, Any] | None = None) -> Job:
        """Start the run: remember the name and arguments, start the bookmarked run and load its state."""
        if self._job_name is not None:
            raise JobError(f"Job {self._job_name!r} is already initialized; create a new Job for another run")
        if not job_name:
            raise JobError("Job.init needs a job name (usually args['JOB_NAME'])")
        args = dict(args or {})
        option = args.get("job_bookmark_option") or DEFAULT_BOOKMARK_OPTION
        if option not in BOOKMARK_OPTIONS:
            raise JobError(f"Unknown job_bookmark_option {option!r}: one of {', '.join(BOOKMARK_OPTIONS)}")
        from_run, to_run = args.get("job_bookmark_from"), args.get("job_bookmark_to")
        if (from_run or to_run) and option != PAUSE:
            raise JobError(
                "--job-bookmark-from/--job-bookmark-to are only allowed with --job-bookmark-option job-bookmark-pause"
            )
        if bool(from_run) != bool(to_run):
            raise JobError("--job-bookmark-from and --job-bookmark-to go together")
        run_id = str(args.get("JOB_RUN_ID") or _new_run_id())
        name = str(job_name)
        if option != DISABLE:
            store = self._store or _store_for(self._glue_context)
            self._store = store
            if isinstance(store, RunTrackingBookmarkStore):
                started = store.start_run(name, run_id, option, from_run, to_run)
                self._state = dict(started.state)
                self._to_state = dict(started.to_state) if started.to_state is not None else None
                self._version = started.version
                self._attempt = started.run.attempt
                self._tracked = True
                for earlier in started.recovered:
                    log.warning(
                        "job %s: earlier run %s resolved as %s: %s", name, earlier.run_id, earlier.status, earlier.error
                    )
                atexit.register(self._at_exit)
            elif from_run:
                raise JobError(
                    "--job-bookmark-from/--job-bookmark-to need a bookmark store that keeps run history (the "
                    f"catalog's); {type(store).__name__} keeps only the latest state"
                )
            else:
                self._state = dict(store.load(name))
        self._job_name = name
        self._args = args
        self._bookmark_option = option
        self._run_id = run_id
        self._committed = False
        if self._glue_context is not None and hasattr(self._glue_context, "_attach_job"):
            self._glue_context._attach_job(self)
        version = f", bookmark version {self._version}, attempt {self._attempt}" if self._tracked else ""
        log.info("job %s run %s started (%s%s)", name, run_id, option, version)
        return self

    def isInitialized(self) -> bool:  # noqa: N802 - Glue's public name
        return self._job_name is not None

    def commit(self) -> None:
        """End the run: save the bookmark state (``job-bookmark-enable``), or only end it (pause).

        :raises BookmarkVersionMismatchError: another run committed first; nothing was saved.
        """
        if self._job_name is None or self._run_id is None:
            raise JobError("Job.commit() before Job.init(): call job.init(args['JOB_NAME'], args) first")
        if self._committed:
            log.warning("job %s run %s: commit() called again; it was already committed", self._job_name, self._run_id)
            return
        store = self._store
        if self._tracked and isinstance(store, RunTrackingBookmarkStore):
            assert self._version is not None
            state = dict(self._state) if self._bookmark_option == ENABLE else None
            try:
                version = store.commit_run(self._job_name, self._run_id, self._version, state)
            except Exception as exc:
                self._ended = True  # the catalog marked it failed (or it cannot be reached): nothing to add
                atexit.unregister(self._at_exit)
                from catalog.errors import BookmarkVersionMismatchError as Mismatch

                if isinstance(exc, Mismatch):
                    raise BookmarkVersionMismatchError(exc.message) from exc
                raise
            self._ended = True
            atexit.unregister(self._at_exit)
            if self._bookmark_option == ENABLE:
                log.info("job %s run %s committed bookmark version %d", self._job_name, self._run_id, version)
        elif self._bookmark_option == ENABLE and store is not None:
            store.save(self._job_name, self._run_id, self._state)
        self._committed = True
        from jobs.glue import bookmarks

        bookmarks.fault_point("after-bookmark-commit")
        log.info("job %s run %s committed", self._job_name, self._run_id)

    def fail(self, error: str = "failed") -> None:
        """Mark the run failed in the bookmark store now (it is done at exit for a run never committed)."""
        if self._job_name is None or self._run_id is None:
            raise JobError("Job.fail() before Job.init()")
        if self._tracked and not self._ended and isinstance(self._store, RunTrackingBookmarkStore):
            self._store.fail_run(self._job_name, self._run_id, error)
        self._ended = True
        if self._tracked:
            atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        if self._ended or self._job_name is None or self._run_id is None:
            return
        self._ended = True
        try:
            if isinstance(self._store, RunTrackingBookmarkStore):
                self._store.fail_run(self._job_name, self._run_id, "the run ended without job.commit()")
                log.warning("job %s run %s ended without job.commit(): marked failed", self._job_name, self._run_id)
        except Exception as exc:  # the catalog may be gone at exit: the run then stays "started"
            log.debug("could not mark run %s failed at exit: %s", self._run_id, exc)

    # -- the run --------------------------------------------------------------------------------------
    @property
    def runId(self) -> str | None:  # noqa: N802 - Glue's public name
        return self._run_id

    @property
    def job_name(self) -> str | None:
        return self._job_name

    @property
    def args(self) -> dict[str, Any]:
        return dict(self._args)

    @property
    def bookmark_option(self) -> str:
        return self._bookmark_option

    @property
    def committed(self) -> bool:
        return self._committed

    @property
    def bookmark_version(self) -> int | None:
        """The bookmark version the run started from (None unless the store tracks runs)."""
        return self._version

    @property
    def attempt(self) -> int:
        """Glue's attempt number: 1 plus the runs that failed to advance the bookmark from this version."""
        return self._attempt

    @property
    def tracks_state(self) -> bool:
        """Whether sources read under a ``transformation_ctx`` filter by bookmark state in this run."""
        return self._job_name is not None and self._bookmark_option != DISABLE and not self._ended

    def state(self, transformation_ctx: str) -> Any:
        """The state loaded at ``init`` for one ``transformation_ctx`` (None when there is none)."""
        return self._state.get(transformation_ctx)

    def bound(self, transformation_ctx: str) -> Any:
        """For a paused run with ``--job-bookmark-from/--job-bookmark-to``: the state as of the ``to`` run,
        the upper end of what to process (None: no upper end)."""
        if self._to_state is None:
            return None
        return self._to_state.get(transformation_ctx)

    def update_state(self, transformation_ctx: str, value: Any) -> None:
        """Record new state for one ``transformation_ctx``; saved at ``commit`` when bookmarks are enabled."""
        if not transformation_ctx:
            return
        self._state[transformation_ctx] = value

    def prepare_write(self, namespace: list[str], table: str) -> str | None:
        """Before this run writes Iceberg table ``namespace.table``: record the state it will commit and
        return its bookmark token (None when the run does not advance a tracked bookmark)."""
        if not (self._tracked and self._bookmark_option == ENABLE and not self._ended):
            return None
        if self._job_name is None or self._run_id is None or not isinstance(self._store, RunTrackingBookmarkStore):
            return None
        from catalog.errors import BookmarkVersionMismatchError as Mismatch

        try:
            return self._store.prepare_run(self._job_name, self._run_id, dict(self._state), namespace, table)
        except Mismatch as exc:
            raise BookmarkVersionMismatchError(exc.message) from exc
