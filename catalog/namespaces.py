"""Namespaces: nested, with properties; dropped only when empty."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from catalog import db
from catalog.backend import Backend
from catalog.errors import (
    AlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    UnprocessableEntityError,
    ValidationFailedError,
)
from catalog.identifiers import Namespace, dotted, namespace_from_db, namespace_to_db

EXISTS_KEY = "exists"
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_VALUE = 1000


@dataclass(frozen=True)
class PropertiesUpdate:
    updated: list[str]
    removed: list[str]
    missing: list[str]


def _check_properties(props: dict[str, str]) -> None:
    for key, value in props.items():
        if not isinstance(key, str) or not key or len(key) > MAX_PROPERTY_KEY:
            raise ValidationFailedError(f"Invalid property key {str(key)[:64]!r}: 1 to {MAX_PROPERTY_KEY} characters")
        if key == EXISTS_KEY:
            raise ValidationFailedError(f"Property {EXISTS_KEY!r} is reserved")
        if not isinstance(value, str) or len(value) > MAX_PROPERTY_VALUE:
            raise ValidationFailedError(f"Invalid value of property {key!r}: a string of at most 1000 characters")


class Namespaces:
    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def _all(self) -> list[Namespace]:
        t = db.namespace_properties
        with self.b.engine.connect() as conn:
            rows = conn.execute(select(t.c.namespace).where(t.c.catalog_name == self.b.name).distinct()).all()
        return sorted(namespace_from_db(r[0]) for r in rows)

    def list(
        self, parent: Namespace | None, page_token: str | None, page_size: int
    ) -> tuple[list[Namespace], str | None]:
        if parent and not self.exists(parent):
            raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(parent)}")
        depth = len(parent) + 1 if parent else 1
        children = [ns for ns in self._all() if len(ns) == depth and (not parent or ns[: len(parent)] == parent)]
        if page_token:
            children = [ns for ns in children if namespace_to_db(ns) > page_token]
        page = children[:page_size]
        next_token = namespace_to_db(page[-1]) if len(children) > page_size else None
        return page, next_token

    def exists(self, ns: Namespace) -> bool:
        with self.b.engine.connect() as conn:
            return self.b.namespace_exists(conn, ns)

    def create(self, ns: Namespace, properties: dict[str, str], principal: str) -> dict[str, str]:
        _check_properties(properties)
        t = db.namespace_properties
        rows = [{EXISTS_KEY: "true"}, properties]
        values = [
            {"catalog_name": self.b.name, "namespace": namespace_to_db(ns), "property_key": k, "property_value": v}
            for r in rows
            for k, v in r.items()
        ]
        try:
            with self.b.engine.begin() as conn:
                if len(ns) > 1 and not self.b.namespace_exists(conn, ns[:-1]):
                    raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns[:-1])} (parent of {dotted(ns)})")
                if self.b.namespace_exists(conn, ns):
                    raise AlreadyExistsError(f"Namespace already exists: {dotted(ns)}")
                conn.execute(insert(t), values)
                self.b.audit(conn, "create-namespace", principal, ns, detail={"properties": properties})
        except IntegrityError as exc:
            raise AlreadyExistsError(f"Namespace already exists: {dotted(ns)}") from exc
        return dict(properties)

    def load(self, ns: Namespace) -> dict[str, str]:
        t = db.namespace_properties
        with self.b.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.property_key, t.c.property_value).where(
                    and_(t.c.catalog_name == self.b.name, t.c.namespace == namespace_to_db(ns))
                )
            ).all()
        if not rows:
            raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")
        return {k: v for k, v in rows if k != EXISTS_KEY}

    def drop(self, ns: Namespace, principal: str) -> None:
        key = namespace_to_db(ns)
        with self.b.engine.begin() as conn:
            if not self.b.namespace_exists(conn, ns):
                raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")
            t = db.iceberg_tables
            objects = conn.execute(
                select(func.count()).where(and_(t.c.catalog_name == self.b.name, t.c.table_namespace == key))
            ).scalar_one()
            p = db.namespace_properties
            children = conn.execute(
                select(func.count(p.c.namespace.distinct())).where(
                    and_(p.c.catalog_name == self.b.name, p.c.namespace.like(key.replace("%", r"\%") + ".%", "\\"))
                )
            ).scalar_one()
            r = db.raw_datasets
            datasets = conn.execute(
                select(func.count()).where(and_(r.c.catalog_name == self.b.name, r.c.namespace == key))
            ).scalar_one()
            if objects or children or datasets:
                raise NamespaceNotEmptyError(
                    f"Namespace {dotted(ns)} is not empty: {objects} tables/views, {children} child namespaces, "
                    f"{datasets} raw datasets"
                )
            conn.execute(delete(p).where(and_(p.c.catalog_name == self.b.name, p.c.namespace == key)))
            self.b.audit(conn, "drop-namespace", principal, ns)

    def update_properties(
        self, ns: Namespace, removals: list[str], updates: dict[str, str], principal: str
    ) -> PropertiesUpdate:
        overlap = set(removals) & set(updates)
        if overlap:
            raise UnprocessableEntityError(f"Properties both updated and removed: {sorted(overlap)}")
        _check_properties(updates)
        if EXISTS_KEY in removals:
            raise ValidationFailedError(f"Property {EXISTS_KEY!r} is reserved")
        key = namespace_to_db(ns)
        t = db.namespace_properties
        where_ns = and_(t.c.catalog_name == self.b.name, t.c.namespace == key)
        with self.b.engine.begin() as conn:
            current = dict(conn.execute(select(t.c.property_key, t.c.property_value).where(where_ns)).all())
            if not current:
                raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")
            removed = [k for k in removals if k in current]
            missing = [k for k in removals if k not in current]
            touched = list(updates) + removed
            if touched:
                conn.execute(delete(t).where(and_(where_ns, or_(*[t.c.property_key == k for k in touched]))))
            if updates:
                conn.execute(
                    insert(t),
                    [
                        {"catalog_name": self.b.name, "namespace": key, "property_key": k, "property_value": v}
                        for k, v in updates.items()
                    ],
                )
            self.b.audit(
                conn, "update-namespace-properties", principal, ns, detail={"updated": updates, "removed": removed}
            )
        return PropertiesUpdate(updated=list(updates), removed=removed, missing=missing)
