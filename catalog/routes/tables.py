"""Tables: list, create (and staged create), load, exists, commit, drop, rename, register, metrics,
and multi-table transactions."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from catalog.commits import JAVA_LONG_MAX, JAVA_LONG_MIN
from catalog.deps import NamespaceDep, PrincipalDep, ServiceDep, TableDep
from catalog.errors import ValidationFailedError
from catalog.identifiers import validate_namespace, validate_table_name
from catalog.models import (
    CommitTableRequest,
    CommitTransactionRequest,
    CreateTableRequest,
    RegisterTableRequest,
    RenameTableRequest,
    ReportMetricsRequest,
)
from catalog.routes.namespaces import page_size_of
from catalog.tables import TableChange, TableIdent, metadata_json

router = APIRouter(prefix="/v1", tags=["tables"])

JSON = "application/json"


def _json(body: bytes) -> Response:
    return Response(content=body, media_type=JSON)


@router.get("/namespaces/{namespace}/tables")
def list_tables(
    ns: NamespaceDep,
    service: ServiceDep,
    principal: PrincipalDep,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
) -> dict[str, Any]:
    names, token = service.tables.list(ns, page_token or None, page_size_of(service, page_size))
    return {"identifiers": [{"namespace": list(ns), "name": n} for n in names], "next-page-token": token}


@router.post("/namespaces/{namespace}/tables")
def create_table(ns: NamespaceDep, body: CreateTableRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    ident = TableIdent(ns, validate_table_name(body.name))
    metadata = service.tables.build_metadata(
        ident, body.table_schema, body.location, body.partition_spec, body.write_order, body.properties
    )
    if body.stage_create:
        loaded = service.tables.stage_create(ident, metadata)
    else:
        loaded = service.tables.create(ident, metadata, principal)
    return _json(metadata_json(loaded.metadata_location, loaded.metadata.model_dump_json().encode()))


@router.get("/namespaces/{namespace}/tables/{table}")
def load_table(
    ident: TableDep,
    service: ServiceDep,
    principal: PrincipalDep,
    snapshots: Annotated[Literal["all", "refs"], Query()] = "all",
) -> Response:
    location, raw = service.tables.load_raw(ident)
    if snapshots == "refs":
        metadata = service.backend.files.read_table(location)
        referenced = {ref.snapshot_id for ref in metadata.refs.values()}
        trimmed = metadata.model_copy(
            update={"snapshots": [s for s in metadata.snapshots if s.snapshot_id in referenced]}
        )
        raw = trimmed.model_dump_json().encode()
    return _json(metadata_json(location, raw))


@router.head("/namespaces/{namespace}/tables/{table}", status_code=204)
def table_exists(ident: TableDep, service: ServiceDep, principal: PrincipalDep) -> Response:
    return Response(status_code=204 if service.tables.exists(ident) else 404)


@router.post("/namespaces/{namespace}/tables/{table}")
def commit_table(ident: TableDep, body: CommitTableRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    if body.identifier is not None:
        named = TableIdent(validate_namespace(body.identifier.namespace), body.identifier.name)
        if named != ident:
            raise ValidationFailedError(f"Identifier in the body ({named}) does not match the path ({ident})")
    if any(r.type == "assert-create" for r in body.requirements):
        validate_table_name(ident.name)
    loaded = service.tables.commit(TableChange(ident, body.requirements, body.updates), principal)
    assert loaded.metadata_location is not None
    raw = service.backend.files.read_bytes(loaded.metadata_location)
    return _json(
        b'{"metadata-location":' + json.dumps(loaded.metadata_location).encode() + b',"metadata":' + raw + b"}"
    )


@router.delete("/namespaces/{namespace}/tables/{table}", status_code=204)
def drop_table(
    ident: TableDep,
    service: ServiceDep,
    principal: PrincipalDep,
    purge_requested: Annotated[str, Query(alias="purgeRequested")] = "false",
) -> Response:
    service.tables.drop(ident, purge_requested.strip().lower() == "true", principal)
    return Response(status_code=204)


@router.post("/tables/rename", status_code=204)
def rename_table(body: RenameTableRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    source = TableIdent(validate_namespace(body.source.namespace), body.source.name)
    dest = TableIdent(validate_namespace(body.destination.namespace), validate_table_name(body.destination.name))
    service.tables.rename(source, dest, principal)
    return Response(status_code=204)


@router.post("/namespaces/{namespace}/register")
def register_table(
    ns: NamespaceDep, body: RegisterTableRequest, service: ServiceDep, principal: PrincipalDep
) -> Response:
    ident = TableIdent(ns, validate_table_name(body.name))
    loaded = service.tables.register(ident, body.metadata_location, body.overwrite, principal)
    raw = service.backend.files.read_bytes(body.metadata_location)
    return _json(metadata_json(loaded.metadata_location, raw))


@router.post("/namespaces/{namespace}/tables/{table}/metrics", status_code=204)
def report_metrics(
    ident: TableDep, body: ReportMetricsRequest, service: ServiceDep, principal: PrincipalDep
) -> Response:
    if body.snapshot_id is not None and not JAVA_LONG_MIN <= body.snapshot_id <= JAVA_LONG_MAX:
        raise ValidationFailedError(f"Invalid snapshot-id {body.snapshot_id}: does not fit in a 64-bit integer")
    service.audit.record_report(ident, body.report_type, body.snapshot_id, body.model_dump(by_alias=True), principal)
    return Response(status_code=204)


@router.post("/transactions/commit", status_code=204)
def commit_transaction(body: CommitTransactionRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    changes = []
    for change in body.table_changes:
        if change.identifier is None:
            raise ValidationFailedError("Every table change of a transaction needs an identifier")
        ident = TableIdent(validate_namespace(change.identifier.namespace), change.identifier.name)
        changes.append(TableChange(ident, change.requirements, change.updates))
    service.tables.commit_many(changes, principal)
    return Response(status_code=204)
