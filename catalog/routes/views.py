"""Views: list, create, load, exists, replace, drop and rename."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from catalog.deps import NamespaceDep, PrincipalDep, ServiceDep, ViewDep
from catalog.errors import ValidationFailedError
from catalog.identifiers import validate_namespace, validate_table_name
from catalog.models import RenameTableRequest
from catalog.routes.namespaces import page_size_of
from catalog.tables import TableIdent
from catalog.views import CommitViewRequest, CreateViewRequest, LoadedView

router = APIRouter(prefix="/v1", tags=["views"])


def _view_result(service: ServiceDep, loaded: LoadedView) -> Response:
    """A LoadViewResult embedding the metadata file's own JSON text (no re-serialisation)."""
    raw = service.backend.files.read_bytes(loaded.metadata_location)
    body = b'{"metadata-location":' + json.dumps(loaded.metadata_location).encode() + b',"metadata":' + raw
    return Response(content=body + b',"config":{}}', media_type="application/json")


@router.get("/namespaces/{namespace}/views")
def list_views(
    ns: NamespaceDep,
    service: ServiceDep,
    principal: PrincipalDep,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> dict[str, Any]:
    names, token = service.views.list(ns, page_token or None, page_size_of(service, page_size))
    return {"identifiers": [{"namespace": list(ns), "name": n} for n in names], "next-page-token": token}


@router.post("/namespaces/{namespace}/views")
def create_view(ns: NamespaceDep, body: CreateViewRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    ident = TableIdent(ns, validate_table_name(body.name, "view"))
    return _view_result(service, service.views.create(ident, body, principal))


@router.get("/namespaces/{namespace}/views/{view}")
def load_view(ident: ViewDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    return _view_result(service, service.views.load(ident))


@router.head("/namespaces/{namespace}/views/{view}", status_code=204)
def view_exists(ident: ViewDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    return Response(status_code=204 if service.views.exists(ident) else 404)


@router.post("/namespaces/{namespace}/views/{view}")
def replace_view(ident: ViewDep, body: CommitViewRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    if body.identifier is not None:
        named = TableIdent(validate_namespace(body.identifier.namespace), body.identifier.name)
        if named != ident:
            raise ValidationFailedError(f"Identifier in the body ({named}) does not match the path ({ident})")
    return _view_result(service, service.views.replace(ident, body.requirements, body.updates, principal))


@router.delete("/namespaces/{namespace}/views/{view}", status_code=204)
def drop_view(ident: ViewDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    service.views.drop(ident, principal)
    return Response(status_code=204)


@router.post("/views/rename", status_code=204)
def rename_view(body: RenameTableRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    source = TableIdent(validate_namespace(body.source.namespace), body.source.name)
    dest = TableIdent(
        validate_namespace(body.destination.namespace), validate_table_name(body.destination.name, "view")
    )
    service.views.rename(source, dest, principal)
    return Response(status_code=204)
