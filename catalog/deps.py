"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from catalog.auth import Authenticator
from catalog.identifiers import Namespace, parse_namespace, validate_name
from catalog.service import CatalogService
from catalog.tables import TableIdent


def get_service(request: Request) -> CatalogService:
    service: CatalogService = request.app.state.service
    return service


def get_principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.principal(authorization)


def get_namespace(namespace: Annotated[str, Path()]) -> Namespace:
    return parse_namespace(namespace)


def get_table_ident(namespace: Annotated[str, Path()], table: Annotated[str, Path()]) -> TableIdent:
    return TableIdent(parse_namespace(namespace), validate_name(table, "table"))


def get_view_ident(namespace: Annotated[str, Path()], view: Annotated[str, Path()]) -> TableIdent:
    return TableIdent(parse_namespace(namespace), validate_name(view, "view"))


ServiceDep = Annotated[CatalogService, Depends(get_service)]
PrincipalDep = Annotated[str, Depends(get_principal)]
NamespaceDep = Annotated[Namespace, Depends(get_namespace)]
TableDep = Annotated[TableIdent, Depends(get_table_ident)]
ViewDep = Annotated[TableIdent, Depends(get_view_ident)]
