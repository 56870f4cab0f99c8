"""A Python client of the lake's data catalog API beyond Iceberg: raw datasets, partitions, versions, job
bookmarks and the audit log (``/lakeforge/v1``).

The crawler registers what it finds with it; Glue-style jobs list the partitions matching a
``push_down_predicate``; notebooks read the audit log. Error responses come back as the catalog's own
domain errors (:mod:`catalog.errors`), chosen by the error ``type``: a missing dataset raises
:class:`~catalog.errors.NoSuchDatasetError`, a name already taken :class:`~catalog.errors.AlreadyExistsError`,
a malformed predicate :class:`~catalog.errors.ValidationFailedError`, and so on.

Example::

    from catalog.client import LakeClient
    from catalog.datasets import DatasetColumn, DatasetDefinition

    with LakeClient("http://127.0.0.1:8181") as lake:
        lake.create_namespace("raw", exist_ok=True)
        lake.put_dataset(
            "raw",
            "events",
            DatasetDefinition(
                format="json",
                location="s3://landing/events",
                columns=[DatasetColumn(name="id", type="bigint")],
                partition_keys=[DatasetColumn(name="dt", type="string"), DatasetColumn(name="hour", type="int")],
                properties={"classification": "json"},
            ),
        )
        lake.add_partitions("raw", "events", [(["2024-01-02", 3], "s3://landing/events/dt=2024-01-02/hour=3")])
        for p in lake.iter_partitions("raw", "events", "dt >= '2024-01-02' and hour = 3"):
            print(p.values, p.location)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from catalog import errors
from catalog.audit import AuditEntry
from catalog.bookmarks import Bookmark, BookmarkRun, RunStart, sink_ref, validate_job_name, validate_run_id
from catalog.datasets import (
    AddPartitionsResult,
    Dataset,
    DatasetDefinition,
    DatasetVersion,
    DeletePartitionsResult,
    Partition,
    PartitionInput,
    UpsertResult,
)
from catalog.identifiers import NAMESPACE_SEPARATOR, validate_name

log = logging.getLogger(__name__)

#: A namespace as ``"db"``, ``"a.b"`` (levels joined by dots) or a sequence of levels.
NamespaceLike = str | Sequence[str]
#: A partition to add: a :class:`PartitionInput`, or ``(values, location)``, or ``(values, location, parameters)``.
PartitionLike = PartitionInput | tuple[Sequence[Any], str] | tuple[Sequence[Any], str, dict[str, str]]

#: Partitions sent per request by :meth:`LakeClient.add_partitions` (the server takes up to 10,000).
ADD_BATCH = 1000


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log; pass ``next_after_id`` as ``after_id`` to read on (None: no more)."""

    entries: list[AuditEntry]
    next_after_id: int | None


def _levels(namespace: NamespaceLike) -> tuple[str, ...]:
    if isinstance(namespace, str):
        return tuple(namespace.split("."))
    return tuple(namespace)


def _entry(data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=data["id"],
        ts_ms=data["ts-ms"],
        action=data["action"],
        namespace=data.get("namespace"),
        name=data.get("name"),
        principal=data["principal"],
        metadata_location=data.get("metadata-location"),
        snapshot_id=data.get("snapshot-id"),
        detail=data.get("detail"),
    )


def _error_classes() -> list[type[errors.CatalogError]]:
    found: list[type[errors.CatalogError]] = []
    pending: list[type[errors.CatalogError]] = [errors.CatalogError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    # OAuthError speaks RFC 6749, not the Iceberg error model; classes outside catalog.errors are
    # server internals.
    return [c for c in found if c.__module__ == errors.__name__ and c is not errors.OAuthError]


def error_from_response(response: httpx.Response) -> errors.CatalogError:
    """The domain error an error response stands for (by its Iceberg ``type``, then its status)."""
    status = response.status_code
    try:
        body = response.json()
        error = body["error"]
        kind, message = str(error["type"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "", f"HTTP {status}: {response.text[:500]}"
    candidates = [c for c in _error_classes() if c.iceberg_type == kind]
    exact = [c for c in candidates if c.status == status]
    cls = (exact or candidates or [errors.CatalogError])[0]
    exc = cls(message)
    if exc.status != status:
        exc.status = status
    return exc


class LakeClient:
    """Client of a lakeforge catalog's dataset, partition, version and audit API.

    :param uri: the catalog's base URL, e.g. ``http://127.0.0.1:8181``.
    :param token: a bearer token (from ``POST /v1/oauth/tokens``) when the catalog has auth on.
    :param timeout: seconds per request.

    Namespaces may be given as ``"db"``, ``"a.b"`` or ``["a", "b"]``. Every method raises the domain
    errors of :mod:`catalog.errors` on error responses. Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, uri: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.uri = uri.rstrip("/")
        self._http = httpx.Client(base_url=self.uri, headers=headers, timeout=timeout)

    # -- plumbing --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> LakeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(method, path, params=query, json=json)
        if response.status_code >= 400:
            error = error_from_response(response)
            log.debug("%s %s -> %d %s", method, path, response.status_code, error.message)
            raise error
        return response

    @staticmethod
    def _ns_path(namespace: NamespaceLike) -> str:
        return quote(NAMESPACE_SEPARATOR.join(_levels(namespace)), safe="")

    def _dataset_path(self, namespace: NamespaceLike, name: str) -> str:
        # Checked here too: a name with '/' would otherwise reach the server as another path.
        validate_name(name, "dataset")
        return f"/lakeforge/v1/namespaces/{self._ns_path(namespace)}/datasets/{quote(name, safe='')}"

    # -- namespaces (Iceberg REST) ---------------------------------------------------------------------
    def create_namespace(
        self, namespace: NamespaceLike, properties: dict[str, str] | None = None, *, exist_ok: bool = False
    ) -> None:
        """Create a namespace (a Glue database). With ``exist_ok``, an existing one is not an error."""
        try:
            self._request(
                "POST", "/v1/namespaces", json={"namespace": list(_levels(namespace)), "properties": properties or {}}
            )
        except errors.AlreadyExistsError:
            if not exist_ok:
                raise

    # -- datasets --------------------------------------------------------------------------------------
    def create_dataset(self, namespace: NamespaceLike, name: str, definition: DatasetDefinition) -> Dataset:
        """Register a new dataset (version 1).

        :raises AlreadyExistsError: a dataset, Iceberg table or view of that name exists.
        :raises NoSuchNamespaceError: the namespace is missing.
        :raises ValidationFailedError: the name or definition is invalid (bad type string, location, ...).
        """
        body = {"name": name, **definition.to_json()}
        response = self._request("POST", f"/lakeforge/v1/namespaces/{self._ns_path(namespace)}/datasets", json=body)
        return Dataset.from_json(response.json())

    def put_dataset(self, namespace: NamespaceLike, name: str, definition: DatasetDefinition) -> UpsertResult:
        """Create the dataset or update its definition (what a crawler does on every run).

        A new version is made only when the definition changed; ``result.changed`` says whether one was,
        ``result.created`` whether the dataset is new. Changing the partition keys of a dataset that has
        partitions is refused (delete them first).
        """
        response = self._request("PUT", self._dataset_path(namespace, name), json=definition.to_json())
        data = response.json()
        return UpsertResult(Dataset.from_json(data["dataset"]), bool(data["created"]), bool(data["changed"]))

    def get_dataset(self, namespace: NamespaceLike, name: str) -> Dataset:
        """The dataset's current definition and version. :raises NoSuchDatasetError: it does not exist."""
        return Dataset.from_json(self._request("GET", self._dataset_path(namespace, name)).json())

    def dataset_exists(self, namespace: NamespaceLike, name: str) -> bool:
        """Whether the dataset exists."""
        try:
            self.get_dataset(namespace, name)
        except errors.NoSuchDatasetError:
            return False
        return True

    def iter_datasets(self, namespace: NamespaceLike, *, page_size: int | None = None) -> Iterator[Dataset]:
        """Every dataset of the namespace, by name, fetched page by page."""
        path = f"/lakeforge/v1/namespaces/{self._ns_path(namespace)}/datasets"
        token: str | None = None
        while True:
            data = self._request("GET", path, params={"pageToken": token, "pageSize": page_size}).json()
            yield from (Dataset.from_json(d) for d in data["datasets"])
            token = data.get("next-page-token")
            if not token:
                return

    def list_datasets(self, namespace: NamespaceLike) -> list[Dataset]:
        """All datasets of the namespace, by name. :raises NoSuchNamespaceError: the namespace is missing."""
        return list(self.iter_datasets(namespace))

    def drop_dataset(self, namespace: NamespaceLike, name: str) -> None:
        """Drop the dataset with its partitions and versions (its files are not touched)."""
        self._request("DELETE", self._dataset_path(namespace, name))

    # -- versions --------------------------------------------------------------------------------------
    def list_versions(self, namespace: NamespaceLike, name: str) -> list[DatasetVersion]:
        """Every version of the dataset, oldest first; the last one is the current definition."""
        path = self._dataset_path(namespace, name) + "/versions"
        versions: list[DatasetVersion] = []
        token: str | None = None
        while True:
            data = self._request("GET", path, params={"pageToken": token}).json()
            versions.extend(DatasetVersion.from_json(v) for v in data["versions"])
            token = data.get("next-page-token")
            if not token:
                return versions

    def get_version(self, namespace: NamespaceLike, name: str, version: int) -> DatasetVersion:
        """One version of the dataset. :raises NotFoundError: the dataset has no such version."""
        return DatasetVersion.from_json(
            self._request("GET", f"{self._dataset_path(namespace, name)}/versions/{int(version)}").json()
        )

    # -- partitions ------------------------------------------------------------------------------------
    def add_partitions(
        self, namespace: NamespaceLike, name: str, partitions: Sequence[PartitionLike], *, replace: bool = False
    ) -> AddPartitionsResult:
        """Add partitions: values in partition-key order (strings as in ``key=value`` paths, or typed
        values) and a location. Idempotent: identical partitions that exist come back in ``existing``.

        Each batch of :data:`ADD_BATCH` partitions is added atomically. A partition that exists with
        another location raises :class:`~catalog.errors.AlreadyExistsError` unless ``replace``.
        """
        inputs = [_partition_input(p) for p in partitions]
        added: list[list[str | None]] = []
        existing: list[list[str | None]] = []
        replaced: list[list[str | None]] = []
        path = self._dataset_path(namespace, name) + "/partitions"
        for start in range(0, len(inputs), ADD_BATCH) if inputs else [0]:
            batch = inputs[start : start + ADD_BATCH]
            body = {"partitions": [p.model_dump(mode="json") for p in batch], "replace": replace}
            data = self._request("POST", path, json=body).json()
            added.extend(data["added"])
            existing.extend(data["existing"])
            replaced.extend(data["replaced"])
        return AddPartitionsResult(added, existing, replaced)

    def iter_partitions(
        self, namespace: NamespaceLike, name: str, expression: str | None = None, *, page_size: int | None = None
    ) -> Iterator[Partition]:
        """The partitions matching ``expression`` (all without one), pruned by the catalog, page by page.

        ``expression`` uses Iceberg's syntax over the partition keys, e.g.
        ``"dt >= '2024-01-02' and hour in (1, 2)"``; :class:`~catalog.errors.ValidationFailedError` if it
        is malformed or names a column that is not a partition key.
        """
        path = self._dataset_path(namespace, name) + "/partitions"
        token: str | None = None
        while True:
            params = {"expression": expression, "pageToken": token, "pageSize": page_size}
            data = self._request("GET", path, params=params).json()
            yield from (Partition.from_json(p) for p in data["partitions"])
            token = data.get("next-page-token")
            if not token:
                return

    def list_partitions(self, namespace: NamespaceLike, name: str, expression: str | None = None) -> list[Partition]:
        """All partitions matching ``expression`` (see :meth:`iter_partitions`)."""
        return list(self.iter_partitions(namespace, name, expression))

    def delete_partitions(
        self, namespace: NamespaceLike, name: str, values: Sequence[Sequence[Any]]
    ) -> DeletePartitionsResult:
        """Delete partitions by their values (atomically); those that did not exist come back in ``missing``."""
        body = {"values": [list(v) for v in values]}
        data = self._request("DELETE", self._dataset_path(namespace, name) + "/partitions", json=body).json()
        return DeletePartitionsResult(data["deleted"], data["missing"])

    # -- job bookmarks ---------------------------------------------------------------------------------
    @staticmethod
    def _job_path(job_name: str, *rest: str) -> str:
        # Checked here too: a name with '/' would otherwise reach the server as another path.
        validate_job_name(job_name)
        parts = [quote(job_name, safe=""), *(quote(p, safe="") for p in rest)]
        return "/lakeforge/v1/bookmarks/" + "/".join(parts)

    def iter_bookmarks(self, *, page_size: int | None = None) -> Iterator[Bookmark]:
        """Every job bookmark of the catalog, by job name, fetched page by page."""
        token: str | None = None
        while True:
            params = {"pageToken": token, "pageSize": page_size}
            data = self._request("GET", "/lakeforge/v1/bookmarks", params=params).json()
            yield from (Bookmark.from_json(b) for b in data["bookmarks"])
            token = data.get("next-page-token")
            if not token:
                return

    def list_bookmarks(self) -> list[Bookmark]:
        """All job bookmarks of the catalog, by job name."""
        return list(self.iter_bookmarks())

    def get_bookmark(self, job_name: str) -> Bookmark:
        """The job's current bookmark. :raises NoSuchBookmarkError: the job has none."""
        return Bookmark.from_json(self._request("GET", self._job_path(job_name)).json())

    def delete_bookmark(self, job_name: str) -> None:
        """Delete the job's bookmark with its versions and run history."""
        self._request("DELETE", self._job_path(job_name))

    def reset_bookmark(self, job_name: str) -> Bookmark:
        """Clear the job's state (every transformation_ctx): its next run processes everything."""
        return Bookmark.from_json(self._request("POST", self._job_path(job_name, "reset")).json())

    def rewind_bookmark(self, job_name: str, run_id: str) -> Bookmark:
        """Set the job's state to what it was right after the committed run ``run_id``.

        :raises ValidationFailedError: the run did not commit. :raises NoSuchJobRunError: no such run.
        """
        body = {"run-id": validate_run_id(run_id)}
        return Bookmark.from_json(self._request("POST", self._job_path(job_name, "rewind"), json=body).json())

    def start_bookmark_run(
        self,
        job_name: str,
        *,
        option: str = "job-bookmark-enable",
        run_id: str | None = None,
        from_run_id: str | None = None,
        to_run_id: str | None = None,
    ) -> RunStart:
        """Start a run (``job-bookmark-enable`` or ``job-bookmark-pause``): the state to process from, and
        for a paused run with ``from_run_id``/``to_run_id`` the state to process up to.

        :raises JobRunConflictError: the run id was used before, or an earlier run cannot be recovered.
        """
        body = {"run-id": run_id, "option": option, "from-run-id": from_run_id, "to-run-id": to_run_id}
        body = {k: v for k, v in body.items() if v is not None}
        return RunStart.from_json(self._request("POST", self._job_path(job_name, "runs"), json=body).json())

    def prepare_bookmark_run(
        self, job_name: str, run_id: str, state: dict[str, Any], namespace: NamespaceLike, table: str
    ) -> str:
        """Record the state the run will commit before it writes Iceberg table ``namespace.table``; returns
        the bookmark token to put into the snapshot summary.

        :raises BookmarkVersionMismatchError: another run committed since this one started.
        """
        body = {"state": state, "sink": sink_ref(_levels(namespace), table)}
        data = self._request("POST", self._job_path(job_name, "runs", run_id, "prepare"), json=body).json()
        return str(data["token"])

    def commit_bookmark_run(
        self, job_name: str, run_id: str, expected_version: int, state: dict[str, Any] | None
    ) -> Bookmark:
        """Commit the run: its state becomes the job's next version if the bookmark is still at
        ``expected_version`` (a paused run only ends).

        :raises BookmarkVersionMismatchError: another run committed first (the run is marked failed).
        """
        body: dict[str, Any] = {"expected-version": expected_version, "state": state}
        response = self._request("POST", self._job_path(job_name, "runs", run_id, "commit"), json=body)
        return Bookmark.from_json(response.json())

    def fail_bookmark_run(self, job_name: str, run_id: str, error: str | None = None) -> BookmarkRun:
        """Mark a started run failed (its state is not saved)."""
        response = self._request("POST", self._job_path(job_name, "runs", run_id, "fail"), json={"error": error})
        return BookmarkRun.from_json(response.json())

    def get_bookmark_run(self, job_name: str, run_id: str) -> BookmarkRun:
        """One run of the job. :raises NoSuchJobRunError: no such run."""
        return BookmarkRun.from_json(self._request("GET", self._job_path(job_name, "runs", run_id)).json())

    def iter_bookmark_runs(self, job_name: str, *, page_size: int | None = None) -> Iterator[BookmarkRun]:
        """The job's runs, newest first, fetched page by page."""
        path = self._job_path(job_name, "runs")
        token: str | None = None
        while True:
            data = self._request("GET", path, params={"pageToken": token, "pageSize": page_size}).json()
            yield from (BookmarkRun.from_json(r) for r in data["runs"])
            token = data.get("next-page-token")
            if not token:
                return

    def bookmark_history(self, job_name: str, limit: int | None = None) -> list[BookmarkRun]:
        """The job's runs, newest first (at most ``limit``)."""
        runs: list[BookmarkRun] = []
        for run in self.iter_bookmark_runs(job_name, page_size=min(limit, 1000) if limit else None):
            if limit is not None and len(runs) >= limit:
                break
            runs.append(run)
        return runs

    # -- audit log -------------------------------------------------------------------------------------
    def audit_page(
        self,
        *,
        action: str | None = None,
        namespace: NamespaceLike | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """One page (``limit`` up to 1000) of the audit log, oldest first, filtered by action
        (``create-table``, ``commit``, ``scan-report``, ``create-dataset``, ...), object and time."""
        params = {
            "action": action,
            "namespace": ".".join(_levels(namespace)) if namespace is not None else None,
            "name": name,
            "since_ms": since_ms,
            "after_id": after_id,
            "limit": limit,
        }
        data = self._request("GET", "/lakeforge/v1/audit", params=params).json()
        return AuditPage([_entry(e) for e in data["entries"]], data.get("next-after-id"))

    def audit(
        self,
        *,
        action: str | None = None,
        namespace: NamespaceLike | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        after_id: int | None = None,
        page_size: int = 1000,
    ) -> Iterator[AuditEntry]:
        """Every audit record matching the filters, oldest first, fetched page by page."""
        while True:
            page = self.audit_page(
                action=action, namespace=namespace, name=name, since_ms=since_ms, after_id=after_id, limit=page_size
            )
            yield from page.entries
            if page.next_after_id is None:
                return
            after_id = page.next_after_id


def _partition_input(partition: PartitionLike) -> PartitionInput:
    if isinstance(partition, PartitionInput):
        return partition
    values, location, *rest = partition
    parameters: dict[str, str] = rest[0] if rest else {}
    return PartitionInput.model_validate({"values": list(values), "location": location, "parameters": parameters})
