"""Job bookmarks of Glue jobs, kept by the lake catalog (``/lakeforge/v1/bookmarks``, :mod:`catalog.bookmarks`).

What is tracked, per job name and ``transformation_ctx`` (a source without one is not tracked, as in Glue):

* **File sources** (``from_options`` over ``s3://``/``file`` paths, ``from_catalog`` over a crawled
  dataset; json, csv, parquet, orc): files are picked by **modification time** with Glue's **band**. A run
  notes the time just before it lists (its cutoff) and reads the files modified up to it; files modified
  later wait for the next run. The state keeps the cutoff (``high``) and, by name and modification time,
  the files whose time falls in the band before it (``maxBand`` ms, default 900000). Next run a file is
  new when its modification time is after ``high - maxBand`` and it is not in the band with that time: so
  a file that lands during a run with an older time (a copy, a rename, a slow writer) is read once by the
  next run, a file read before is not read again, and a modified file is read again. ``boundedFiles`` /
  ``boundedSize`` read at most that many files / bytes per run, oldest first; the rest wait.
* **JDBC sources**: ``jobBookmarkKeys`` (a list or JSON list of columns, default the table's primary key)
  and ``jobBookmarkKeysSortOrder`` (``asc``, the default, or ``desc``). A run reads the rows after the last
  key value it committed and up to the largest (smallest) key it saw when it started, so rows inserted
  while it runs wait for the next run. Keys must be strictly monotonic; rows with a NULL key are skipped.
* **Iceberg sinks** (``write_dynamic_frame.from_catalog`` and catalog sinks): an enabled run records its
  state in the catalog before each write to a table and puts that write's bookmark token
  (``<version>:<run id>:<write number>:<job>``) into the snapshot summary (``lakeforge.bookmark.token``). The catalog
  refuses table commits of a run that may not commit (another run committed first, or already wrote that
  table for the same version), and a run that starts after a crash between a table commit and the
  bookmark commit gets the crashed run's state committed first: no row is lost or written twice.

The Python API: :func:`get_bookmark`, :func:`bookmark_history`, :func:`reset_bookmark`,
:func:`rewind_bookmark`, :func:`list_bookmarks`, :func:`delete_bookmark`; the CLI is
``lakeforge bookmarks show|history|reset|rewind`` (:mod:`jobs.glue.bookmarks_cli`).

Fault injection for tests: ``LAKEFORGE_BOOKMARK_FAULT`` set to ``after-prepare`` (state recorded, table
not yet committed), ``after-table-commit`` or ``after-bookmark-commit`` ends the process at that point
with exit code 86, as a crash would.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from catalog import errors as catalog_errors
from catalog.bookmarks import TOKEN_PROPERTY, Bookmark, BookmarkRun, RunStart
from catalog.client import LakeClient
from jobs.glue.job import ENABLE, BookmarkVersionMismatchError, JobError
from jobs.glue.storage import StoredFile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

log = logging.getLogger(__name__)

DEFAULT_MAX_BAND_MS = 900_000
FAULT_ENV = "LAKEFORGE_BOOKMARK_FAULT"
FAULT_POINTS = ("after-prepare", "after-table-commit", "after-bookmark-commit")
FAULT_EXIT_CODE = 86
FILES, JDBC = "files", "jdbc"

__all__ = [
    "BookmarkVersionMismatchError",
    "CatalogBookmarkStore",
    "bookmark_history",
    "delete_bookmark",
    "get_bookmark",
    "list_bookmarks",
    "reset_bookmark",
    "rewind_bookmark",
]


# -- the store ------------------------------------------------------------------------------------------
class CatalogBookmarkStore:
    """The :class:`~jobs.glue.job.RunTrackingBookmarkStore` of the lake catalog (what ``Job`` uses on a
    GlueContext): runs, versions, compare-and-swap commits and run history, over HTTP."""

    def __init__(self, client: LakeClient) -> None:
        self.client = client

    @classmethod
    def for_context(cls, glue_context: Any) -> CatalogBookmarkStore:
        """The store at the catalog a GlueContext (or SparkSession / SparkContext) is configured with."""
        if hasattr(glue_context, "lake_client"):
            return cls(glue_context.lake_client())
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        from catalog.settings import get_settings

        session = glue_context
        if isinstance(glue_context, SparkContext):
            session = SparkSession.builder.getOrCreate()
        if not isinstance(session, SparkSession):
            raise JobError(f"Job takes a GlueContext, a SparkSession or None, got {type(glue_context).__name__}")
        settings = get_settings()
        uri = session.conf.get(f"spark.sql.catalog.{settings.catalog.name}.uri", None)
        token = session.conf.get(f"spark.sql.catalog.{settings.catalog.name}.token", None)
        return cls(LakeClient(str(uri or settings.resolved_catalog_uri), token=token or None))

    def _call(self, what: str, job_name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except httpx.TransportError as exc:
            raise JobError(
                f"Cannot reach the lake catalog at {self.client.uri} to {what} the bookmark of job {job_name!r} "
                f"({exc}): start it with `lakeforge catalog serve`, or run with --job-bookmark-option "
                "job-bookmark-disable"
            ) from exc

    # BookmarkStore
    def load(self, job_name: str) -> dict[str, Any]:
        try:
            bookmark: Bookmark = self._call("load", job_name, lambda: self.client.get_bookmark(job_name))
        except catalog_errors.NoSuchBookmarkError:
            return {}
        return dict(bookmark.state)

    def save(self, job_name: str, run_id: str, state: dict[str, Any]) -> None:
        started = self.start_run(job_name, run_id, ENABLE, None, None)
        self.commit_run(job_name, run_id, started.version, state)

    # RunTrackingBookmarkStore
    def start_run(
        self, job_name: str, run_id: str, option: str, from_run_id: str | None, to_run_id: str | None
    ) -> RunStart:
        start: RunStart = self._call(
            "start a run on",
            job_name,
            lambda: self.client.start_bookmark_run(
                job_name, option=option, run_id=run_id, from_run_id=from_run_id, to_run_id=to_run_id
            ),
        )
        return start

    def prepare_run(self, job_name: str, run_id: str, state: dict[str, Any], namespace: list[str], table: str) -> str:
        token: str = self._call(
            "prepare a write with",
            job_name,
            lambda: self.client.prepare_bookmark_run(job_name, run_id, state, namespace, table),
        )
        return token

    def commit_run(self, job_name: str, run_id: str, expected_version: int, state: dict[str, Any] | None) -> int:
        bookmark: Bookmark = self._call(
            "commit",
            job_name,
            lambda: self.client.commit_bookmark_run(job_name, run_id, expected_version, state),
        )
        return bookmark.version

    def fail_run(self, job_name: str, run_id: str, error: str) -> None:
        self._call("fail a run of", job_name, lambda: self.client.fail_bookmark_run(job_name, run_id, error))


def fault_point(name: str) -> None:
    """End the process here, as a crash would, when ``LAKEFORGE_BOOKMARK_FAULT`` names this point."""
    if os.environ.get(FAULT_ENV) == name:
        log.error("fault injection: exiting at %s (%s=%s)", name, FAULT_ENV, name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(FAULT_EXIT_CODE)


def _tracking_job(glue_context: Any, transformation_ctx: str) -> Any:
    """The running job when the source ``transformation_ctx`` is tracked in this run, else None."""
    if not transformation_ctx:
        return None
    job = getattr(glue_context, "current_job", None)
    if job is None or not getattr(job, "tracks_state", False):
        return None
    return job


def _int_option(options: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = options.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise JobError(f"{key} must be a whole number, got {value!r}") from None
    if number <= 0:
        raise JobError(f"{key} must be positive, got {value!r}")
    return number


# -- file sources ---------------------------------------------------------------------------------------
def _covered(state: Mapping[str, Any], uri: str, mtime: float) -> bool:
    """Whether a file with this name and modification time was processed by the run that left ``state``:
    it is in the band with that time, or older than the band (``low``)."""
    band: Mapping[str, Any] = state.get("band") or {}
    if uri in band and band[uri] == mtime:
        return True
    return mtime <= float(state.get("low", float("-inf")))


def _file_state(value: Any, ctx: str, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("kind") != FILES:
        log.warning("bookmark %s of %r is not a file-source state: ignoring it (the source changed?)", what, ctx)
        return None
    return value


@dataclass
class FileBookmark:
    """The bookmark of one file source in one run: :meth:`select` keeps the files to read and records them.

    Create it with :func:`track_files` *before* listing (its cutoff is the time the listing starts)."""

    job: Any
    ctx: str
    cutoff: float
    band_ms: int
    previous: dict[str, Any] | None
    bound: dict[str, Any] | None
    bounded_files: int | None
    bounded_size: int | None
    read: dict[str, float] = field(default_factory=dict)
    read_bytes: int = 0
    #: Modification times of the files bounded execution left for later runs.
    held_back: list[float] = field(default_factory=list)

    def select(self, files: Sequence[StoredFile]) -> list[StoredFile]:
        """The files of this listing to read now; the state the job will commit is updated."""
        if self.job is None:
            return list(files)
        chosen: list[StoredFile] = []
        for stored in files:
            if stored.uri in self.read:
                continue  # listed twice (overlapping paths)
            if self.previous is not None and _covered(self.previous, stored.uri, stored.mtime):
                continue
            if self.bound is not None:
                if not _covered(self.bound, stored.uri, stored.mtime):
                    continue  # after the range's end
            elif stored.mtime > self.cutoff:
                continue  # modified after this run listed: the next run reads it
            chosen.append(stored)
        if self.bound is None and (self.bounded_files or self.bounded_size):
            chosen = self._bounded(chosen)
        for stored in chosen:
            self.read[stored.uri] = stored.mtime
            self.read_bytes += stored.size
        self.job.update_state(self.ctx, self.state())
        log.info(
            "bookmark %s: %d of %d listed file(s) to read (%d in this run so far)",
            self.ctx,
            len(chosen),
            len(files),
            len(self.read),
        )
        return chosen

    def _bounded(self, chosen: list[StoredFile]) -> list[StoredFile]:
        """Glue's bounded execution: the oldest files within ``boundedFiles`` / ``boundedSize``."""
        ordered = sorted(chosen, key=lambda f: (f.mtime, f.uri))
        taken: list[StoredFile] = []
        size = self.read_bytes
        for stored in ordered:
            if self.bounded_files is not None and len(self.read) + len(taken) >= self.bounded_files:
                break
            if self.bounded_size is not None and (self.read or taken) and size + stored.size > self.bounded_size:
                break
            taken.append(stored)
            size += stored.size
        self.held_back.extend(f.mtime for f in ordered[len(taken) :])
        if len(taken) < len(ordered):
            log.info("bookmark %s: bounded execution leaves %d file(s) for later", self.ctx, len(ordered) - len(taken))
        keep = {f.uri for f in taken}
        return [f for f in chosen if f.uri in keep]

    def state(self) -> dict[str, Any]:
        """The state this source leaves: the range end for a ranged run, else its marks and band.

        ``high`` is the cutoff (lowered to the oldest file bounded execution held back); files modified at
        or before ``low`` (``high - maxBand``, and below every held-back file) are covered; ``band`` holds
        the files read above ``low``. Neither mark goes below the previous one, so what was covered stays
        covered."""
        if self.bound is not None:
            return dict(self.bound)
        high = min([self.cutoff, *self.held_back])
        low = high - self.band_ms / 1000.0
        if self.held_back:
            low = min(low, min(self.held_back) - 0.001)  # a held-back file must stay new
        if self.previous is not None:
            # Never lower: what the previous state covered stays covered.
            high = max(high, float(self.previous.get("high", high)))
            low = max(low, float(self.previous.get("low", low)))
        band: dict[str, float] = {}
        if self.previous is not None:
            band.update({u: float(m) for u, m in (self.previous.get("band") or {}).items() if float(m) > low})
        band.update({u: m for u, m in self.read.items() if m > low})
        return {
            "kind": FILES,
            "high": high,
            "low": low,
            "band-ms": self.band_ms,
            "band": band,
            "files-read": len(self.read),
        }


def track_files(glue_context: Any, transformation_ctx: str, options: Mapping[str, Any]) -> FileBookmark:
    """Start tracking one file source of the running job (call before listing). Untracked sources (no
    ``transformation_ctx``, no job, bookmarks disabled) get a tracker whose ``select`` keeps every file."""
    job = _tracking_job(glue_context, transformation_ctx)
    band_ms = _int_option(options, "maxBand", DEFAULT_MAX_BAND_MS) or DEFAULT_MAX_BAND_MS
    bounded_files = _int_option(options, "boundedFiles", None)
    bounded_size = _int_option(options, "boundedSize", None)
    if job is None:
        return FileBookmark(None, transformation_ctx, time.time(), band_ms, None, None, None, None)
    previous = _file_state(job.state(transformation_ctx), transformation_ctx, "state")
    bound = _file_state(job.bound(transformation_ctx), transformation_ctx, "range end")
    return FileBookmark(job, transformation_ctx, time.time(), band_ms, previous, bound, bounded_files, bounded_size)


# -- JDBC sources ---------------------------------------------------------------------------------------
def _key_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise JobError(f"jobBookmarkKeys {value!r} is not a JSON list of column names: {exc}") from None
        else:
            parsed = [part.strip() for part in text.split(",")]
    else:
        parsed = list(value)
    if not parsed or not all(isinstance(k, str) and k for k in parsed):
        raise JobError(f"jobBookmarkKeys must be a list of column names, got {value!r}")
    return list(parsed)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _after(df: DataFrame, keys: Sequence[str], values: Sequence[Any], descending: bool) -> Column:
    """Rows strictly after ``values`` in key order (a compound key compares column by column)."""
    from pyspark.sql import functions as F

    literals = [F.lit(v).cast(df.schema[k].dataType) for k, v in zip(keys, values, strict=True)]
    condition: Column | None = None
    for i, key in enumerate(keys):
        column = F.col(f"`{key}`")
        step = column < literals[i] if descending else column > literals[i]
        for j in range(i):
            step = step & (F.col(f"`{keys[j]}`") == literals[j])
        condition = step if condition is None else condition | step
    assert condition is not None
    return condition


def track_jdbc(
    glue_context: Any,
    transformation_ctx: str,
    connection_type: str,
    options: Mapping[str, Any],
    df: DataFrame,
) -> DataFrame:
    """The rows of a JDBC source this run processes (all of them when the source is not tracked)."""
    job = _tracking_job(glue_context, transformation_ctx)
    if job is None:
        return df
    from pyspark.sql import functions as F

    from jobs.glue import jdbc

    keys = _key_list(options.get("jobBookmarkKeys"))
    if not keys:
        keys = jdbc.primary_key(df.sparkSession, connection_type, options)
        if not keys:
            raise JobError(
                f"JDBC source {transformation_ctx!r} ({options.get('dbtable')}) has no primary key to bookmark by: "
                "pass connection_options['jobBookmarkKeys'] (strictly increasing columns)"
            )
    by_lower = {c.lower(): c for c in df.columns}
    missing = [k for k in keys if k.lower() not in by_lower]
    if missing:
        raise JobError(
            f"jobBookmarkKeys {missing} are not columns of {options.get('dbtable')} ({', '.join(df.columns)})"
        )
    keys = [by_lower[k.lower()] for k in keys]
    order = str(options.get("jobBookmarkKeysSortOrder") or "asc").strip().lower()
    if order not in ("asc", "desc"):
        raise JobError(f"jobBookmarkKeysSortOrder must be 'asc' or 'desc', got {order!r}")
    descending = order == "desc"
    signature = {"kind": JDBC, "table": str(options.get("dbtable")), "keys": keys, "order": order}

    def usable(value: Any, what: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or any(value.get(k) != v for k, v in signature.items()):
            log.warning("bookmark %s of %r is for other keys or another table: ignored", what, transformation_ctx)
            return None
        return value

    previous = usable(job.state(transformation_ctx), "state")
    bound = usable(job.bound(transformation_ctx), "range end")
    selected = df
    for key in keys:
        selected = selected.where(F.col(f"`{key}`").isNotNull())
    if previous is not None:
        selected = selected.where(_after(df, keys, previous["last"], descending))
    last: list[Any] | None
    if bound is not None:
        last = list(bound["last"])
    else:
        # The upper end is fixed now, so rows inserted while the job runs wait for the next run.
        edge = F.min if descending else F.max
        row = selected.agg(edge(F.struct(*[F.col(f"`{k}`") for k in keys])).alias("edge")).first()
        found = row["edge"] if row is not None else None
        if found is not None:
            last = [_to_json(found[i]) for i in range(len(keys))]
        else:
            last = list(previous["last"]) if previous is not None else None
    if last is None:
        log.info("bookmark %s: %s has no rows yet", transformation_ctx, options.get("dbtable"))
        return selected.where(F.lit(False))
    selected = selected.where(~_after(df, keys, last, descending))
    job.update_state(transformation_ctx, {**signature, "last": last})
    log.info(
        "bookmark %s: reading %s after %s up to %s",
        transformation_ctx,
        options.get("dbtable"),
        previous["last"] if previous is not None else "the start",
        last,
    )
    return selected


# -- Iceberg sinks --------------------------------------------------------------------------------------
def write_iceberg(glue_context: Any, database: str, table: str, write: Callable[[dict[str, str]], None]) -> None:
    """Write an Iceberg table of the lake catalog for the running job: with bookmarks enabled, record the
    run's state first and pass ``write`` the option that puts its token into the snapshot summary."""
    job = getattr(glue_context, "current_job", None)
    options: dict[str, str] = {}
    if job is not None:
        token = job.prepare_write(database.split("."), table)
        if token:
            options[f"snapshot-property.{TOKEN_PROPERTY}"] = token
            log.info("%s.%s: writing with bookmark token %s", database, table, token)
    fault_point("after-prepare")
    write(options)
    fault_point("after-table-commit")


# -- the Python API -------------------------------------------------------------------------------------
def _client(catalog_uri: str | None, token: str | None) -> LakeClient:
    from catalog.settings import get_settings

    return LakeClient(catalog_uri or get_settings().resolved_catalog_uri, token=token)


def get_bookmark(job_name: str, *, catalog_uri: str | None = None, token: str | None = None) -> Bookmark:
    """The job's current bookmark (state per transformation_ctx, version, run number, last run ids).

    :raises catalog.errors.NoSuchBookmarkError: the job has none."""
    with _client(catalog_uri, token) as client:
        return client.get_bookmark(job_name)


def list_bookmarks(*, catalog_uri: str | None = None, token: str | None = None) -> list[Bookmark]:
    """Every job bookmark of the catalog, by job name."""
    with _client(catalog_uri, token) as client:
        return client.list_bookmarks()


def bookmark_history(
    job_name: str, limit: int | None = None, *, catalog_uri: str | None = None, token: str | None = None
) -> list[BookmarkRun]:
    """The job's runs, newest first: run id, attempt, status, times, and the state each committed."""
    with _client(catalog_uri, token) as client:
        return client.bookmark_history(job_name, limit)


def reset_bookmark(
    job_name: str, run_id: str | None = None, *, catalog_uri: str | None = None, token: str | None = None
) -> Bookmark:
    """Glue's ``ResetJobBookmark``: clear the state, or with ``run_id`` rewind to right after that run."""
    with _client(catalog_uri, token) as client:
        return client.rewind_bookmark(job_name, run_id) if run_id else client.reset_bookmark(job_name)


def rewind_bookmark(
    job_name: str, run_id: str, *, catalog_uri: str | None = None, token: str | None = None
) -> Bookmark:
    """Set the state to what it was right after the committed run ``run_id``: the next run reprocesses
    what came after it."""
    with _client(catalog_uri, token) as client:
        return client.rewind_bookmark(job_name, run_id)


def delete_bookmark(job_name: str, *, catalog_uri: str | None = None, token: str | None = None) -> None:
    """Delete the job's bookmark with its history (what deleting a Glue job does)."""
    with _client(catalog_uri, token) as client:
        client.delete_bookmark(job_name)
