"""Glue's ``Job`` (served to scripts as ``awsglue.job``): the run's identity and the bookmark lifecycle.

::

    job = Job(glueContext)
    job.init(args["JOB_NAME"], args)   # loads the job's bookmark state (when bookmarks are enabled)
    ...                                # sources and sinks record state under their transformation_ctx
    job.commit()                       # saves the state atomically; without it the next run reprocesses

Bookmark *state* is the next issue's. This module keeps the seam: :class:`BookmarkStore` is the protocol
a persistent store implements (load at ``init``, save at ``commit``), and :class:`InMemoryBookmarkStore`,
the default here, keeps state in this process only, so nothing survives the run. Readers and writers
reach the running job through ``glue_context.current_job`` (set by :meth:`Job.init`) and record
per-``transformation_ctx`` state with :meth:`Job.update_state`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Protocol, runtime_checkable

from jobs.glue.utils import BOOKMARK_OPTIONS, DEFAULT_BOOKMARK_OPTION

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A Job used out of order (commit before init, init twice)."""


@runtime_checkable
class BookmarkStore(Protocol):
    """Where bookmark state lives between runs: one opaque JSON-able dict per job, versioned.

    ``load`` returns the job's latest committed state (``{}`` for a new job); ``save`` stores the state
    a run committed and must be atomic. The implementation that persists (in the catalog) comes with the
    bookmarks issue.
    """

    def load(self, job_name: str) -> dict[str, Any]: ...

    def save(self, job_name: str, run_id: str, state: dict[str, Any]) -> None: ...


class InMemoryBookmarkStore:
    """A :class:`BookmarkStore` that keeps state in this process only: NOT persistent.

    Every new process starts with no bookmarks, so each run processes all its input, exactly as with
    ``job-bookmark-disable``. It exists so the Job lifecycle is complete until the persistent store lands.
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


_default_store: BookmarkStore = InMemoryBookmarkStore()


def default_bookmark_store() -> BookmarkStore:
    """The process's bookmark store (in-memory until the persistent store lands)."""
    return _default_store


def set_default_bookmark_store(store: BookmarkStore) -> None:
    """Replace the process's bookmark store (what the bookmarks implementation will call)."""
    global _default_store
    _default_store = store


def _new_run_id() -> str:
    # Glue run ids: "jr_" and 64 hex digits.
    return "jr_" + uuid.uuid4().hex + uuid.uuid4().hex


class Job:
    """One run of a Glue job. ``Job(glue_context)`` (a GlueContext or a SparkSession), then ``init`` and
    ``commit``."""

    def __init__(self, glue_context: Any, bookmark_store: BookmarkStore | None = None) -> None:
        self._glue_context = glue_context
        self._store = bookmark_store or default_bookmark_store()
        self._job_name: str | None = None
        self._args: dict[str, Any] = {}
        self._run_id: str | None = None
        self._bookmark_option = DEFAULT_BOOKMARK_OPTION
        self._state: dict[str, Any] = {}
        self._committed = False

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
        """Start the run: remember the name and arguments, load the bookmark state when enabled."""
        if self._job_name is not None:
            raise JobError(f"Job {self._job_name!r} is already initialized; create a new Job for another run")
        if not job_name:
            raise JobError("Job.init needs a job name (usually args['JOB_NAME'])")
        args = dict(args or {})
        option = args.get("job_bookmark_option") or DEFAULT_BOOKMARK_OPTION
        if option not in BOOKMARK_OPTIONS:
            raise JobError(f"Unknown job_bookmark_option {option!r}: one of {', '.join(BOOKMARK_OPTIONS)}")
        self._job_name = str(job_name)
        self._args = args
        self._bookmark_option = option
        self._run_id = args.get("JOB_RUN_ID") or _new_run_id()
        self._state = self._store.load(self._job_name) if option != "job-bookmark-disable" else {}
        self._committed = False
        if self._glue_context is not None and hasattr(self._glue_context, "_attach_job"):
            self._glue_context._attach_job(self)
        log.info("job %s run %s started (%s)", self._job_name, self._run_id, option)
        return self

    def isInitialized(self) -> bool:  # noqa: N802 - Glue's public name
        return self._job_name is not None

    def commit(self) -> None:
        """End the run: save the bookmark state (only with ``job-bookmark-enable``)."""
        if self._job_name is None or self._run_id is None:
            raise JobError("Job.commit() before Job.init(): call job.init(args['JOB_NAME'], args) first")
        if self._bookmark_option == "job-bookmark-enable":
            self._store.save(self._job_name, self._run_id, self._state)
        self._committed = True
        log.info("job %s run %s committed", self._job_name, self._run_id)

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

    def state(self, transformation_ctx: str) -> Any:
        """The state loaded at ``init`` for one ``transformation_ctx`` (None when there is none)."""
        return self._state.get(transformation_ctx)

    def update_state(self, transformation_ctx: str, value: Any) -> None:
        """Record new state for one ``transformation_ctx``; saved at ``commit`` when bookmarks are enabled."""
        if not transformation_ctx:
            return
        self._state[transformation_ctx] = value
