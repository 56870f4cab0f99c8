"""Iceberg views: list, create, load, exists, replace (commit with optimistic concurrency), drop, rename.

Views are rows of ``iceberg_tables`` with ``iceberg_type = 'VIEW'`` (the layout of Iceberg's JdbcCatalog)
whose pointer names a view metadata file (format version 1). A replace is a commit like a table's:
read the pointer, check the requirements, apply the updates with the reference (Java) builder's rules,
write a new metadata file, then compare-and-swap the pointer; a lost swap is retried on the new base.
"""

from __future__ import annotations

import builtins
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field
from pyiceberg.schema import Schema
from pyiceberg.view.metadata import ViewHistoryEntry, ViewMetadata, ViewVersion
from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from catalog import db
from catalog.backend import Backend, now_ms
from catalog.errors import (
    AlreadyExistsError,
    CatalogError,
    CommitFailedError,
    NoSuchNamespaceError,
    NoSuchViewError,
    ValidationFailedError,
)
from catalog.identifiers import Namespace, dotted, namespace_to_db
from catalog.metadata_files import MetadataFileError, new_view_metadata_location, parse_metadata_version
from catalog.models import TableIdentifierModel, WireModel
from catalog.namespaces import require_namespace
from catalog.tables import TABLE_TYPE, VIEW_TYPE, TableIdent, Tables

log = logging.getLogger(__name__)

#: -1 in ``schema-id`` / ``view-version-id``: the schema / version added last in the same commit.
LAST_ADDED = -1
SUPPORTED_VIEW_FORMAT_VERSION = 1
#: View properties with a meaning to the catalog (names as in Java's ``ViewProperties``).
VERSION_HISTORY_SIZE = "version.history.num-entries"
VERSION_HISTORY_SIZE_DEFAULT = 10
REPLACE_DROP_DIALECT_ALLOWED = "replace.drop-dialect.allowed"
WRITE_METADATA_PATH = "write.metadata.path"


# -- wire models -----------------------------------------------------------------------------------
class AssertViewUUID(WireModel):
    type: Literal["assert-view-uuid"]
    uuid: str


#: The only view requirement; any other ``type`` fails request validation (400).
ViewRequirement = AssertViewUUID


class AssignUUIDUpdate(WireModel):
    action: Literal["assign-uuid"]
    uuid: str


class UpgradeFormatVersionUpdate(WireModel):
    action: Literal["upgrade-format-version"]
    format_version: int = Field(alias="format-version")


class AddSchemaUpdate(WireModel):
    action: Literal["add-schema"]
    view_schema: Schema = Field(alias="schema")


class SetLocationUpdate(WireModel):
    action: Literal["set-location"]
    location: str


class SetPropertiesUpdate(WireModel):
    action: Literal["set-properties"]
    updates: dict[str, str]


class RemovePropertiesUpdate(WireModel):
    action: Literal["remove-properties"]
    removals: list[str]


class AddViewVersionUpdate(WireModel):
    action: Literal["add-view-version"]
    view_version: ViewVersion = Field(alias="view-version")


class SetCurrentViewVersionUpdate(WireModel):
    action: Literal["set-current-view-version"]
    view_version_id: int = Field(alias="view-version-id")


#: A view update; an unknown ``action`` fails request validation (400), as the spec requires.
ViewUpdate = Annotated[
    AssignUUIDUpdate
    | UpgradeFormatVersionUpdate
    | AddSchemaUpdate
    | SetLocationUpdate
    | SetPropertiesUpdate
    | RemovePropertiesUpdate
    | AddViewVersionUpdate
    | SetCurrentViewVersionUpdate,
    Field(discriminator="action"),
]


class CreateViewRequest(WireModel):
    name: str
    location: str | None = None
    view_schema: Schema = Field(alias="schema")
    view_version: ViewVersion = Field(alias="view-version")
    properties: dict[str, str] = Field(default_factory=dict)


class CommitViewRequest(WireModel):
    """The replace-view body. ``identifier`` is optional: the Java client omits it."""

    identifier: TableIdentifierModel | None = None
    requirements: list[ViewRequirement] = Field(default_factory=list)
    updates: list[ViewUpdate]


@dataclass
class LoadedView:
    metadata_location: str
    metadata: ViewMetadata


# -- applying updates ------------------------------------------------------------------------------
def _same_schema(one: Schema, two: Schema) -> bool:
    return one.as_struct() == two.as_struct() and set(one.identifier_field_ids) == set(two.identifier_field_ids)


def _same_version(one: ViewVersion, two: ViewVersion) -> bool:
    """Equal apart from the version id and the timestamp (Java's ``sameViewVersion``)."""
    return (
        one.summary == two.summary
        and one.representations == two.representations
        and one.default_catalog == two.default_catalog
        and tuple(one.default_namespace) == tuple(two.default_namespace)
        and one.schema_id == two.schema_id
    )


def _dialects(version: ViewVersion) -> set[str]:
    return {r.root.dialect.lower() for r in version.representations}


@dataclass
class _ViewBuilder:
    """Builds view metadata from a base and updates with the rules of Java's ``ViewMetadata.Builder``.

    Every invalid update raises :class:`ValidationFailedError` (400: the client must not retry it).
    """

    base: ViewMetadata | None
    view_uuid: str | None = None
    location: str | None = None
    schemas: list[Schema] = field(default_factory=list)
    versions: list[ViewVersion] = field(default_factory=list)
    version_log: list[ViewHistoryEntry] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    current_version_id: int | None = None
    last_added_schema_id: int | None = None
    last_added_version_id: int | None = None
    added_version_ids: set[int] = field(default_factory=set)
    history_entry: ViewHistoryEntry | None = None

    @classmethod
    def from_base(cls, base: ViewMetadata | None) -> _ViewBuilder:
        if base is None:
            return cls(None)
        return cls(
            base,
            view_uuid=base.view_uuid,
            location=base.location,
            schemas=list(base.schemas),
            versions=list(base.versions),
            version_log=list(base.version_log),
            properties=dict(base.properties),
            current_version_id=base.current_version_id,
        )

    def apply(self, change: ViewUpdate) -> None:
        if isinstance(change, AssignUUIDUpdate):
            self.assign_uuid(change.uuid)
        elif isinstance(change, UpgradeFormatVersionUpdate):
            self.upgrade_format_version(change.format_version)
        elif isinstance(change, AddSchemaUpdate):
            self.add_schema(change.view_schema)
        elif isinstance(change, SetLocationUpdate):
            self.set_location(change.location)
        elif isinstance(change, SetPropertiesUpdate):
            self.properties.update(change.updates)
        elif isinstance(change, RemovePropertiesUpdate):
            for key in change.removals:
                self.properties.pop(key, None)
        elif isinstance(change, AddViewVersionUpdate):
            self.add_version(change.view_version)
        elif isinstance(change, SetCurrentViewVersionUpdate):
            self.set_current_version(change.view_version_id)
        else:  # pragma: no cover - the discriminated union admits nothing else
            raise ValidationFailedError(f"Unknown view update: {change!r}")

    def assign_uuid(self, value: str) -> None:
        try:
            uuid.UUID(value)
        except ValueError as exc:
            raise ValidationFailedError(f"Invalid view UUID: {value!r}") from exc
        if self.view_uuid is not None and self.view_uuid != value:
            raise ValidationFailedError("Cannot reassign uuid")
        self.view_uuid = value

    def upgrade_format_version(self, version: int) -> None:
        if version > SUPPORTED_VIEW_FORMAT_VERSION:
            raise ValidationFailedError(f"Cannot upgrade view to version {version}: unsupported")
        if version < SUPPORTED_VIEW_FORMAT_VERSION:
            raise ValidationFailedError(f"Cannot downgrade v{SUPPORTED_VIEW_FORMAT_VERSION} view to v{version}")

    def set_location(self, location: str) -> None:
        if not location:
            raise ValidationFailedError("Invalid location: null")
        self.location = location.rstrip("/")

    def add_schema(self, schema: Schema) -> int:
        new_id = 0
        for existing in self.schemas:
            if _same_schema(existing, schema):
                self.last_added_schema_id = existing.schema_id
                return existing.schema_id
            new_id = max(new_id, existing.schema_id + 1)
        self.schemas.append(
            Schema(*schema.fields, schema_id=new_id, identifier_field_ids=list(schema.identifier_field_ids))
        )
        self.last_added_schema_id = new_id
        return new_id

    def add_version(self, version: ViewVersion) -> int:
        if version.schema_id == LAST_ADDED:
            if self.last_added_schema_id is None:
                raise ValidationFailedError("Cannot set last added schema: no schema has been added")
            version = version.model_copy(update={"schema_id": self.last_added_schema_id})
        if not any(s.schema_id == version.schema_id for s in self.schemas):
            raise ValidationFailedError(f"Cannot add version with unknown schema: {version.schema_id}")
        if not version.representations:
            raise ValidationFailedError("Invalid view version: at least one representation is required")
        seen: set[str] = set()
        for representation in version.representations:
            dialect = representation.root.dialect.lower()
            if dialect in seen:
                raise ValidationFailedError(f"Invalid view version: Cannot add multiple queries for dialect {dialect}")
            seen.add(dialect)
        new_id = version.version_id
        for existing in self.versions:
            if _same_version(existing, version):
                self.last_added_version_id = existing.version_id
                return existing.version_id
            if existing.version_id >= new_id:
                new_id = existing.version_id + 1
        if new_id != version.version_id:
            version = version.model_copy(update={"version_id": new_id})
        self.versions.append(version)
        self.added_version_ids.add(new_id)
        self.last_added_version_id = new_id
        return new_id

    def set_current_version(self, version_id: int) -> None:
        if version_id == LAST_ADDED:
            if self.last_added_version_id is None:
                raise ValidationFailedError("Cannot set last version id: no current version id has been set")
            version_id = self.last_added_version_id
        if version_id == self.current_version_id:
            return
        version = next((v for v in self.versions if v.version_id == version_id), None)
        if version is None:
            raise ValidationFailedError(f"Cannot set current version to unknown version: {version_id}")
        self.current_version_id = version_id
        # A version added in this commit keeps its own timestamp; re-activating an old one is "now".
        stamp = version.timestamp_ms if version_id in self.added_version_ids else now_ms()
        self.history_entry = ViewHistoryEntry.model_validate({"timestamp-ms": stamp, "version-id": version_id})

    def _history_size(self) -> int:
        raw = self.properties.get(VERSION_HISTORY_SIZE, str(VERSION_HISTORY_SIZE_DEFAULT))
        try:
            size = int(raw)
        except ValueError as exc:
            raise ValidationFailedError(f"{VERSION_HISTORY_SIZE} must be an integer but was {raw!r}") from exc
        if size <= 0:
            raise ValidationFailedError(f"{VERSION_HISTORY_SIZE} must be positive but was {size}")
        return size

    def build(self) -> ViewMetadata:
        if self.location is None:
            raise ValidationFailedError("Invalid location: null")
        if not self.versions:
            raise ValidationFailedError("Invalid view: no versions were added")
        if self.current_version_id is None:
            raise ValidationFailedError("Cannot build view metadata: current version is not set")
        current = next((v for v in self.versions if v.version_id == self.current_version_id), None)
        if current is None:
            raise ValidationFailedError(f"Cannot find current version {self.current_version_id} in view versions")
        if not any(s.schema_id == current.schema_id for s in self.schemas):
            raise ValidationFailedError(f"Cannot find schema with schema id {current.schema_id}")
        previous = (
            next((v for v in self.base.versions if v.version_id == self.base.current_version_id), None)
            if self.base is not None
            else None
        )
        if (
            previous is not None
            and previous.version_id != current.version_id
            and self.properties.get(REPLACE_DROP_DIALECT_ALLOWED, "false").lower() != "true"
            and not _dialects(previous) <= _dialects(current)
        ):
            raise ValidationFailedError(
                f"Cannot replace view due to loss of view dialects ({REPLACE_DROP_DIALECT_ALLOWED}=false):\n"
                f"Previous dialects: {sorted(_dialects(previous))}\nNew dialects: {sorted(_dialects(current))}"
            )
        history = list(self.version_log)
        if self.history_entry is not None:
            history.append(self.history_entry)
        versions = list(self.versions)
        # Expire old versions, keeping the ones added now, the current one and the newest N.
        keep = max(len(self.added_version_ids | {current.version_id}), self._history_size())
        if len(versions) > keep:
            newest = sorted((v.version_id for v in versions), reverse=True)[:keep]
            retained = {current.version_id, *newest}
            versions = [v for v in versions if v.version_id in retained]
            trimmed: list[ViewHistoryEntry] = []
            for entry in history:
                if entry.version_id in retained:
                    trimmed.append(entry)
                else:
                    trimmed.clear()  # history before an expired version is dropped
            history = trimmed
        try:
            return ViewMetadata.model_validate(
                {
                    "view-uuid": self.view_uuid or str(uuid.uuid4()),
                    "format-version": SUPPORTED_VIEW_FORMAT_VERSION,
                    "location": self.location,
                    "schemas": self.schemas,
                    "current-version-id": current.version_id,
                    "versions": versions,
                    "version-log": history,
                    "properties": self.properties,
                }
            )
        except (ValueError, TypeError) as exc:
            raise ValidationFailedError(f"Invalid view metadata: {exc}") from exc


def _check_requirement(requirement: ViewRequirement, base: ViewMetadata) -> None:
    if requirement.uuid != base.view_uuid:
        raise CommitFailedError(
            f"Requirement failed: view UUID does not match: expected {base.view_uuid} != {requirement.uuid}"
        )


class _LostRace(Exception):
    pass


# -- the service -----------------------------------------------------------------------------------
class Views:
    def __init__(self, backend: Backend, tables: Tables) -> None:
        self.b = backend
        self.tables = tables

    def _where(self, ident: TableIdent) -> ColumnElement[bool]:
        t = db.iceberg_tables
        return and_(
            t.c.catalog_name == self.b.name,
            t.c.table_namespace == namespace_to_db(ident.namespace),
            t.c.table_name == ident.name,
        )

    def _row(self, conn: Connection, ident: TableIdent) -> tuple[str | None, str] | None:
        """``(metadata_location, iceberg_type)`` of the object named ``ident``, or None."""
        t = db.iceberg_tables
        row = conn.execute(select(t.c.metadata_location, t.c.iceberg_type).where(self._where(ident))).first()
        return (row[0], row[1] or TABLE_TYPE) if row else None

    def _view_pointer(self, conn: Connection, ident: TableIdent) -> str:
        row = self._row(conn, ident)
        if row is None or row[1] != VIEW_TYPE or row[0] is None:
            raise NoSuchViewError(f"View does not exist: {ident}")
        return row[0]

    # -- reads -------------------------------------------------------------------------------------
    def load(self, ident: TableIdent) -> LoadedView:
        """The view's pointer and metadata; NoSuchView (never NoSuchNamespace) when absent."""
        with self.b.engine.connect() as conn:
            location = self._view_pointer(conn, ident)
        return LoadedView(location, self.b.files.read_view(location))

    def exists(self, ident: TableIdent) -> bool:
        try:
            with self.b.engine.connect() as conn:
                self._view_pointer(conn, ident)
        except NoSuchViewError:
            return False
        return True

    # -- create ------------------------------------------------------------------------------------
    def default_location(self, ident: TableIdent) -> str:
        return f"{self.b.settings.warehouse.rstrip('/')}/{'/'.join(ident.namespace)}/{ident.name}"

    def _metadata_file(self, metadata: ViewMetadata, old_location: str | None) -> str:
        version = max(parse_metadata_version(old_location) + 1, 0) if old_location else 0
        custom = metadata.properties.get(WRITE_METADATA_PATH)
        if custom:
            location = f"{custom.rstrip('/')}/{version:05d}-{uuid.uuid4()}.gz.metadata.json"
        else:
            location = new_view_metadata_location(metadata.location, version)
        self.b.files.path(location)  # validates the scheme and the key
        return location

    def _check_creatable(self, conn: Connection, ident: TableIdent) -> None:
        if not self.b.namespace_exists(conn, ident.namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ident.namespace)}")
        row = self._row(conn, ident)
        if row is not None:
            if row[1] == VIEW_TYPE:
                raise AlreadyExistsError(f"View already exists: {ident}")
            raise AlreadyExistsError(f"Table with same name already exists: {ident}")
        if self.b.dataset_named(conn, ident.namespace, ident.name):
            raise AlreadyExistsError(f"Raw dataset with same name already exists: {ident}")

    def build_metadata(self, ident: TableIdent, request: CreateViewRequest) -> ViewMetadata:
        """Metadata of a new view: the request's schema, and its version as version 1 on that schema."""
        location = (request.location or self.default_location(ident)).rstrip("/")
        self.b.files.path(location)  # validates the scheme and the key
        builder = _ViewBuilder.from_base(None)
        builder.assign_uuid(str(uuid.uuid4()))
        builder.set_location(location)
        builder.properties.update(request.properties)
        schema_id = builder.add_schema(request.view_schema)
        builder.add_version(request.view_version.model_copy(update={"version_id": 1, "schema_id": schema_id}))
        builder.set_current_version(LAST_ADDED)
        return builder.build()

    def create(self, ident: TableIdent, request: CreateViewRequest, principal: str) -> LoadedView:
        with self.b.engine.connect() as conn:
            self._check_creatable(conn, ident)
        metadata = self.build_metadata(ident, request)
        location = self._metadata_file(metadata, None)
        self.b.files.write_view(location, metadata)
        try:
            with self.b.engine.begin() as conn:
                require_namespace(self.b, conn, ident.namespace)
                self._check_creatable(conn, ident)
                conn.execute(
                    insert(db.iceberg_tables).values(
                        catalog_name=self.b.name,
                        table_namespace=namespace_to_db(ident.namespace),
                        table_name=ident.name,
                        metadata_location=location,
                        previous_metadata_location=None,
                        iceberg_type=VIEW_TYPE,
                    )
                )
                self.b.audit(conn, "create-view", principal, ident.namespace, ident.name, metadata_location=location)
        except (IntegrityError, CatalogError) as exc:
            self.b.files.delete(location)
            if isinstance(exc, CatalogError):
                raise
            raise AlreadyExistsError(f"View already exists: {ident}") from exc
        log.info("created view %s at %s", ident, location)
        return LoadedView(location, metadata)

    # -- replace -----------------------------------------------------------------------------------
    def _stage(
        self, ident: TableIdent, requirements: list[ViewRequirement], updates: list[ViewUpdate]
    ) -> tuple[str, ViewMetadata, ViewMetadata]:
        """``(old pointer, base, new metadata)``; requirement failures are 409, bad updates 400."""
        with self.b.engine.connect() as conn:
            old_location = self._view_pointer(conn, ident)
        try:
            base = self.b.files.read_view(old_location)
        except MetadataFileError as exc:
            raise CommitFailedError(f"Cannot commit to {ident}: {exc.message}") from exc
        for requirement in requirements:
            _check_requirement(requirement, base)
        builder = _ViewBuilder.from_base(base)
        for change in updates:
            builder.apply(change)
        if builder.location != base.location:
            self.b.files.path(builder.location or "")  # validates the scheme and the key
        return old_location, base, builder.build()

    def replace(
        self, ident: TableIdent, requirements: list[ViewRequirement], updates: list[ViewUpdate], principal: str
    ) -> LoadedView:
        retries = self.b.settings.catalog.commit_retries
        for attempt in range(retries + 1):
            old_location, base, metadata = self._stage(ident, requirements, updates)
            if not updates:
                return LoadedView(old_location, base)
            new_location = self._metadata_file(metadata, old_location)
            self.b.files.write_view(new_location, metadata)
            try:
                self._swap(ident, old_location, new_location, principal, updates)
            except _LostRace:
                self.b.files.delete(new_location)
                if attempt == retries:
                    raise CommitFailedError(
                        f"Commit failed: {ident} was changed concurrently ({retries + 1} attempts)"
                    ) from None
                time.sleep(random.uniform(0.002, 0.01) * (2**attempt))
                continue
            except BaseException:
                self.b.files.delete(new_location)
                raise
            return LoadedView(new_location, metadata)
        raise AssertionError("unreachable")

    def _swap(
        self, ident: TableIdent, old_location: str, new_location: str, principal: str, updates: list[ViewUpdate]
    ) -> None:
        t = db.iceberg_tables
        try:
            with self.b.engine.begin() as conn:
                result = conn.execute(
                    update(t)
                    .where(
                        and_(self._where(ident), t.c.iceberg_type == VIEW_TYPE, t.c.metadata_location == old_location)
                    )
                    .values(metadata_location=new_location, previous_metadata_location=old_location)
                )
                if result.rowcount != 1:
                    raise _LostRace(str(ident))
                self.b.audit(
                    conn,
                    "replace-view",
                    principal,
                    ident.namespace,
                    ident.name,
                    metadata_location=new_location,
                    detail={"updates": [u.action for u in updates]},
                )
        except OperationalError as exc:
            # "database is locked" and serialization failures: the swap did not happen.
            log.warning("view commit swap failed, treating as a lost race: %s", exc.orig)
            raise _LostRace(str(ident)) from exc

    # -- drop, rename ------------------------------------------------------------------------------
    def drop(self, ident: TableIdent, principal: str) -> None:
        t = db.iceberg_tables
        with self.b.engine.begin() as conn:
            location = self._view_pointer(conn, ident)
            conn.execute(delete(t).where(and_(self._where(ident), t.c.iceberg_type == VIEW_TYPE)))
            self.b.audit(conn, "drop-view", principal, ident.namespace, ident.name, metadata_location=location)

    def rename(self, source: TableIdent, dest: TableIdent, principal: str) -> None:
        with self.b.engine.connect() as conn:
            self._view_pointer(conn, source)
            existing = self._row(conn, dest)
        if existing is not None and existing[1] == VIEW_TYPE:
            # The reference catalogs word a view-over-view rename like the cross-type ones.
            raise AlreadyExistsError(f"Cannot rename {source} to {dest}. View already exists")
        self.tables.rename(source, dest, principal, kind=VIEW_TYPE)

    # Last, so that ``list`` in the annotations above is the builtin.
    def list(self, ns: Namespace, page_token: str | None, page_size: int) -> tuple[builtins.list[str], str | None]:
        return self.tables.list(ns, page_token, page_size, kind=VIEW_TYPE)
