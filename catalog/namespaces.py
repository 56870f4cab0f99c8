"""Namespaces: nested, with properties; dropped only when empty."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
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


def lock_namespace(backend: Backend, conn: Connection, ns: Namespace) -> bool:
    """Lock namespace ``ns`` for the rest of the transaction on ``conn``; False if it does not exist.

    Every change that depends on a namespace existing (creating a table or child in it, renaming or
    registering into it, updating its properties) and dropping it call this first. It is a no-op
    ``UPDATE`` of the namespace's rows: on SQLite that write starts the transaction and takes the
    database write lock, so the checks that follow cannot be overtaken (a plain ``SELECT`` runs outside
    the transaction there); on PostgreSQL it row-locks the namespace, so a drop and a create in it
    serialize instead of both passing their checks (a dropped namespace with a table in it).
    """
    t = db.namespace_properties
    result = conn.execute(
        update(t)
        .where(and_(t.c.catalog_name == backend.name, t.c.namespace == namespace_to_db(ns)))
        .values(property_value=t.c.property_value)
    )
    return bool(result.rowcount)


def require_namespace(backend: Backend, conn: Connection, ns: Namespace) -> None:
    """:func:`lock_namespace`, raising NoSuchNamespace when it does not exist."""
    if not lock_namespace(backend, conn, ns):
        raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")


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
                if len(ns) > 1 and not lock_namespace(self.b, conn, ns[:-1]):
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
            require_namespace(self.b, conn, ns)  # from here no table or child can appear in it
            t = db.iceberg_tables
            objects = conn.execute(
                select(func.count()).where(and_(t.c.catalog_name == self.b.name, t.c.table_namespace == key))
            ).scalar_one()
            p = db.namespace_properties
            # An exact, case-sensitive prefix test: LIKE would treat '_' and '%' in names as wildcards
            # and is case-insensitive on SQLite, so 'a_b' or 'ab' would seem to have the children of 'aXb.c'/'AB.c'.
            prefix = key + "."
            children = conn.execute(
                select(func.count(p.c.namespace.distinct())).where(
                    and_(p.c.catalog_name == self.b.name, func.substr(p.c.namespace, 1, len(prefix)) == prefix)
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
        self, ns: Namespace, removals: builtins.list[str], updates: dict[str, str], principal: str
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
            # Locked first: a concurrent drop must not be undone by re-inserting some properties.
            require_namespace(self.b, conn, ns)
            current = dict(conn.execute(select(t.c.property_key, t.c.property_value).where(where_ns)).all())
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
