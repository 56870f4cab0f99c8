"""Namespaces: list (with parent and pagination), create, load, exists, drop, properties."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from catalog.deps import NamespaceDep, PrincipalDep, ServiceDep
from catalog.identifiers import parse_namespace, validate_namespace
from catalog.models import CreateNamespaceRequest, UpdateNamespacePropertiesRequest

router = APIRouter(prefix="/v1/namespaces", tags=["namespaces"])


def page_size_of(service: ServiceDep, requested: int | None) -> int:
    limit = service.settings.catalog.page_size
    return min(requested, limit) if requested and requested > 0 else limit


@router.get("")
def list_namespaces(
    service: ServiceDep,
    principal: PrincipalDep,
    parent: Annotated[str | None, Query()] = None,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> dict[str, Any]:
    parent_ns = parse_namespace(parent) if parent else None
    page, token = service.namespaces.list(parent_ns, page_token or None, page_size_of(service, page_size))
    return {"namespaces": [list(ns) for ns in page], "next-page-token": token}


@router.post("")
def create_namespace(body: CreateNamespaceRequest, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    ns = validate_namespace(body.namespace)
    props = service.namespaces.create(ns, body.properties, principal)
    return {"namespace": list(ns), "properties": props}


@router.get("/{namespace}")
def load_namespace(ns: NamespaceDep, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return {"namespace": list(ns), "properties": service.namespaces.load(ns)}


@router.head("/{namespace}", status_code=204)
def namespace_exists(ns: NamespaceDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    return Response(status_code=204 if service.namespaces.exists(ns) else 404)


@router.delete("/{namespace}", status_code=204)
def drop_namespace(ns: NamespaceDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    service.namespaces.drop(ns, principal)
    return Response(status_code=204)


@router.post("/{namespace}/properties")
def update_properties(
    ns: NamespaceDep, body: UpdateNamespacePropertiesRequest, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    result = service.namespaces.update_properties(ns, body.removals, body.updates, principal)
    return {"updated": result.updated, "removed": result.removed, "missing": result.missing or None}
