"""Job bookmarks in the lake's extension API, under ``/lakeforge/v1/bookmarks`` (see :mod:`catalog.bookmarks`).

* ``GET /bookmarks``: the jobs that have one (paged by name).
* ``GET|DELETE /bookmarks/{job}``: a job's current bookmark (state per ``transformation_ctx``, version, run
  number, last run ids), or delete it with its history.
* ``POST /bookmarks/{job}/reset`` (state cleared) and ``POST /bookmarks/{job}/rewind`` ``{"run-id"}``
  (state as of right after that run): each makes a new version.
* ``POST /bookmarks/{job}/runs`` starts a run; ``GET /bookmarks/{job}/runs`` is the run history, newest
  first; ``GET /bookmarks/{job}/runs/{run_id}`` one run; ``POST .../runs/{run_id}/prepare``,
  ``.../commit`` (compare-and-swap on ``expected-version``: 409 ``BookmarkVersionMismatchException`` when
  another run committed first) and ``.../fail``.

Errors use the Iceberg error model: a job without a bookmark is ``NoSuchBookmarkException`` (404), an
unknown run ``NoSuchJobRunException`` (404), a run in the wrong status ``JobRunConflictException`` (409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from catalog.bookmarks import (
    CommitRunRequest,
    FailRunRequest,
    PrepareRunRequest,
    RewindRequest,
    StartRunRequest,
)
from catalog.deps import PrincipalDep, ServiceDep
from catalog.routes.namespaces import page_size_of

router = APIRouter(prefix="/lakeforge/v1/bookmarks", tags=["bookmarks"])

Job = Annotated[str, Path(description="The job name")]
RunId = Annotated[str, Path(description="The run id")]
PageToken = Annotated[str | None, Query(alias="pageToken")]
PageSize = Annotated[int | None, Query(alias="pageSize")]


@router.get("")
def list_bookmarks(
    service: ServiceDep, principal: PrincipalDep, page_token: PageToken = None, page_size: PageSize = None
) -> dict[str, Any]:
    page, token = service.bookmarks.list(page_token or None, page_size_of(service, page_size))
    return {"bookmarks": [b.to_json() for b in page], "next-page-token": token}


@router.get("/{job}")
def get_bookmark(job: Job, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.bookmarks.get(job).to_json()


@router.delete("/{job}", status_code=204)
def delete_bookmark(job: Job, service: ServiceDep, principal: PrincipalDep) -> Response:
    service.bookmarks.delete(job, principal)
    return Response(status_code=204)


@router.post("/{job}/reset")
def reset_bookmark(job: Job, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.bookmarks.reset(job, principal).to_json()


@router.post("/{job}/rewind")
def rewind_bookmark(job: Job, body: RewindRequest, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.bookmarks.rewind(job, body.run_id, principal).to_json()


@router.post("/{job}/runs")
def start_run(job: Job, body: StartRunRequest, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.bookmarks.start_run(job, body, principal).to_json()


@router.get("/{job}/runs")
def run_history(
    job: Job, service: ServiceDep, principal: PrincipalDep, page_token: PageToken = None, page_size: PageSize = None
) -> dict[str, Any]:
    page, token = service.bookmarks.history(job, page_token or None, page_size_of(service, page_size))
    return {"runs": [r.to_json() for r in page], "next-page-token": token}


@router.get("/{job}/runs/{run_id}")
def get_run(job: Job, run_id: RunId, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.bookmarks.run(job, run_id).to_json()


@router.post("/{job}/runs/{run_id}/prepare")
def prepare_run(
    job: Job, run_id: RunId, body: PrepareRunRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return {"token": service.bookmarks.prepare(job, run_id, body, principal)}


@router.post("/{job}/runs/{run_id}/commit")
def commit_run(
    job: Job, run_id: RunId, body: CommitRunRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return service.bookmarks.commit(job, run_id, body, principal).to_json()


@router.post("/{job}/runs/{run_id}/fail")
def fail_run(
    job: Job, run_id: RunId, body: FailRunRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return service.bookmarks.fail(job, run_id, body.error, principal).to_json()
