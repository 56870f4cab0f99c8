"""The audit log: every catalog change and every scan/commit report clients post to ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from catalog import db
from catalog.backend import Backend
from catalog.errors import NoSuchTableError
from catalog.identifiers import Namespace, namespace_to_db
from catalog.tables import TableIdent, Tables

#: Keys of a report kept in the audit detail (the rest, like the projected schema, is bulky).
_REPORT_KEYS = (
    "report-type",
    "table-name",
    "snapshot-id",
    "filter",
    "schema-id",
    "projected-field-names",
    "sequence-number",
    "operation",
    "metrics",
    "metadata",
)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts_ms: int
    action: str
    namespace: list[str] | None
    name: str | None
    principal: str
    metadata_location: str | None
    snapshot_id: int | None
    detail: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts-ms": self.ts_ms,
            "action": self.action,
            "namespace": self.namespace,
            "name": self.name,
            "principal": self.principal,
            "metadata-location": self.metadata_location,
            "snapshot-id": self.snapshot_id,
            "detail": self.detail,
        }


class AuditLog:
    def __init__(self, backend: Backend, tables: Tables) -> None:
        self.b = backend
        self.tables = tables

    def record_report(
        self, ident: TableIdent, report_type: str, snapshot_id: int | None, report: dict[str, Any], principal: str
    ) -> None:
        if not self.tables.exists(ident):
            raise NoSuchTableError(f"Table does not exist: {ident}")
        detail = {k: report[k] for k in _REPORT_KEYS if k in report}
        with self.b.engine.begin() as conn:
            self.b.audit(
                conn, report_type, principal, ident.namespace, ident.name, snapshot_id=snapshot_id, detail=detail
            )

    def query(
        self,
        *,
        action: str | None = None,
        namespace: Namespace | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        t = db.audit_log
        conditions = [t.c.catalog_name == self.b.name]
        if action:
            conditions.append(t.c.action == action)
        if namespace:
            conditions.append(t.c.namespace == namespace_to_db(namespace))
        if name:
            conditions.append(t.c.name == name)
        if since_ms is not None:
            conditions.append(t.c.ts_ms >= since_ms)
        if after_id is not None:
            conditions.append(t.c.id > after_id)
        query = select(t).where(and_(*conditions)).order_by(t.c.id).limit(limit)
        with self.b.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                id=r["id"],
                ts_ms=r["ts_ms"],
                action=r["action"],
                namespace=r["namespace"].split(".") if r["namespace"] else None,
                name=r["name"],
                principal=r["principal"],
                metadata_location=r["metadata_location"],
                snapshot_id=r["snapshot_id"],
                detail=r["detail"],
            )
            for r in rows
        ]
