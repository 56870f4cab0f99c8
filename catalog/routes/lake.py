"""The lake's extension API beyond Iceberg, under ``/lakeforge/v1``: raw datasets registered by crawlers,
their versions and partitions (listed with a predicate, pruned here), and the audit log.

Namespaces in paths are the Iceberg REST ones (levels joined by 0x1F). Errors use the Iceberg error
model; a missing dataset is ``NoSuchDatasetException`` (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from catalog.datasets import (
    AddPartitionsRequest,
    CreateDatasetRequest,
    DatasetDefinition,
    DatasetIdent,
    DeletePartitionsRequest,
)
from catalog.deps import NamespaceDep, PrincipalDep, ServiceDep
from catalog.identifiers import NAMESPACE_SEPARATOR, parse_namespace, validate_name
from catalog.routes.namespaces import page_size_of

router = APIRouter(prefix="/lakeforge/v1", tags=["lake"])

MAX_AUDIT_LIMIT = 1000


def get_dataset_ident(namespace: Annotated[str, Path()], name: Annotated[str, Path()]) -> DatasetIdent:
    return DatasetIdent(parse_namespace(namespace), validate_name(name, "dataset"))


DatasetDep = Annotated[DatasetIdent, Depends(get_dataset_ident)]
PageToken = Annotated[str | None, Query(alias="pageToken")]
PageSize = Annotated[int | None, Query(alias="pageSize")]


# -- datasets ------------------------------------------------------------------------------------------
@router.get("/namespaces/{namespace}/datasets")
def list_datasets(
    ns: NamespaceDep,
    service: ServiceDep,
    principal: PrincipalDep,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    page, token = service.datasets.list(ns, page_token or None, page_size_of(service, page_size))
    return {"datasets": [d.to_json() for d in page], "next-page-token": token}


@router.post("/namespaces/{namespace}/datasets")
def create_dataset(
    ns: NamespaceDep, body: CreateDatasetRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    ident = DatasetIdent(ns, validate_name(body.name, "dataset"))
    return service.datasets.create(ident, body, principal).to_json()


@router.get("/namespaces/{namespace}/datasets/{name}")
def load_dataset(ident: DatasetDep, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.datasets.get(ident).to_json()


@router.put("/namespaces/{namespace}/datasets/{name}")
def upsert_dataset(
    ident: DatasetDep, body: DatasetDefinition, service: ServiceDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    result = service.datasets.upsert(ident, body, principal)
    response.status_code = 201 if result.created else 200
    return result.to_json()


@router.delete("/namespaces/{namespace}/datasets/{name}", status_code=204)
def drop_dataset(ident: DatasetDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    service.datasets.drop(ident, principal)
    return Response(status_code=204)


# -- versions ------------------------------------------------------------------------------------------
@router.get("/namespaces/{namespace}/datasets/{name}/versions")
def list_versions(
    ident: DatasetDep,
    service: ServiceDep,
    principal: PrincipalDep,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    page, token = service.datasets.versions(ident, page_token or None, page_size_of(service, page_size))
    return {"versions": [v.to_json() for v in page], "next-page-token": token}


@router.get("/namespaces/{namespace}/datasets/{name}/versions/{version}")
def load_version(
    ident: DatasetDep, version: Annotated[int, Path(ge=1)], service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return service.datasets.version(ident, version).to_json()


# -- partitions ----------------------------------------------------------------------------------------
@router.get("/namespaces/{namespace}/datasets/{name}/partitions")
def list_partitions(
    ident: DatasetDep,
    service: ServiceDep,
    principal: PrincipalDep,
    expression: Annotated[str | None, Query()] = None,
    page_token: PageToken = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    page, token = service.datasets.list_partitions(
        ident, expression, page_token or None, page_size_of(service, page_size)
    )
    return {"partitions": [p.to_json() for p in page], "next-page-token": token}


@router.post("/namespaces/{namespace}/datasets/{name}/partitions")
def add_partitions(
    ident: DatasetDep, body: AddPartitionsRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return service.datasets.add_partitions(ident, body.partitions, principal, replace=body.replace).to_json()


@router.delete("/namespaces/{namespace}/datasets/{name}/partitions")
def delete_partitions(
    ident: DatasetDep, body: DeletePartitionsRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    return service.datasets.delete_partitions(ident, body.values, principal).to_json()


# -- audit log -----------------------------------------------------------------------------------------
@router.get("/audit")
def query_audit(
    service: ServiceDep,
    principal: PrincipalDep,
    action: Annotated[str | None, Query()] = None,
    namespace: Annotated[str | None, Query(description="Levels joined by '.' or 0x1F")] = None,
    name: Annotated[str | None, Query()] = None,
    since_ms: Annotated[int | None, Query(ge=0)] = None,
    after_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 100,
) -> dict[str, Any]:
    """Audit records oldest first; page on with ``after_id`` = ``next-after-id``."""
    ns = parse_namespace(namespace.replace(".", NAMESPACE_SEPARATOR)) if namespace else None
    entries = service.audit.query(
        action=action or None,
        namespace=ns,
        name=name or None,
        since_ms=since_ms,
        after_id=after_id,
        limit=limit + 1,
    )
    page = entries[:limit]
    return {
        "entries": [e.to_json() for e in page],
        "next-after-id": page[-1].id if len(entries) > limit else None,
    }
