"""Iceberg tables: create (direct and staged), load, commit with optimistic concurrency, drop, rename,
register, and atomic multi-table transactions.

A commit is: read the current pointer, validate requirements, apply updates, write a new metadata
file, then compare-and-swap the pointer in the database. When the swap loses to a concurrent writer
the commit is retried on the new base (requirements re-validated) a few times before a 409.
"""

from __future__ import annotations

import builtins
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from pyiceberg.io import load_file_io
from pyiceberg.manifest import ManifestFile
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import AssertCreate, TableRequirement, TableUpdate
from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from catalog import db
from catalog.backend import Backend
from catalog.commits import apply_updates, check_partition_spec, check_sort_order, validate_requirement
from catalog.errors import (
    AlreadyExistsError,
    CatalogError,
    CommitFailedError,
    NoSuchNamespaceError,
    NoSuchTableError,
    ValidationFailedError,
)
from catalog.identifiers import Namespace, dotted, namespace_from_db, namespace_to_db
from catalog.metadata_files import MetadataFileError, parse_metadata_version
from catalog.namespaces import require_namespace

log = logging.getLogger(__name__)

TABLE_TYPE = "TABLE"
VIEW_TYPE = "VIEW"


@dataclass(frozen=True)
class TableIdent:
    namespace: Namespace
    name: str

    def __str__(self) -> str:
        return dotted(self.namespace, self.name)


@dataclass
class TableChange:
    ident: TableIdent
    requirements: list[TableRequirement]
    updates: list[TableUpdate]


@dataclass
class LoadedTable:
    metadata_location: str | None
    metadata: TableMetadata
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class _Staged:
    change: TableChange
    old_location: str | None
    new_location: str | None
    metadata: TableMetadata
    base: TableMetadata | None


def _type_is_table() -> ColumnElement[bool]:
    t = db.iceberg_tables
    return (t.c.iceberg_type == TABLE_TYPE) | (t.c.iceberg_type.is_(None))


class _StripedLocks:
    """A fixed set of locks; a table maps to one by hash.

    Commits to one table in this process take turns, so they never lose the pointer swap to each other:
    without this, N concurrent writers make each commit lose the swap about N times, and the server-side
    retries run out. The compare-and-swap in the database still guards against other processes.
    """

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, idents: Iterable[TableIdent]) -> Iterator[None]:
        indexes = sorted({hash(ident) % len(self._locks) for ident in idents})  # one global order: no deadlock
        with ExitStack() as stack:
            for index in indexes:
                stack.enter_context(self._locks[index])
            yield


#: A check of a table commit inside its transaction, before the pointer moves: ``(conn, ident, base metadata
#: or None, new metadata)``; it raises a CatalogError to refuse the commit (the bookmark token check).
CommitGuard = Callable[[Connection, "TableIdent", TableMetadata | None, TableMetadata], None]


class Tables:
    def __init__(self, backend: Backend) -> None:
        self.b = backend
        self._commit_locks = _StripedLocks()
        self.commit_guards: list[CommitGuard] = []

    # -- lookups -----------------------------------------------------------------------------------
    def _where(self, ident: TableIdent) -> ColumnElement[bool]:
        t = db.iceberg_tables
        return and_(
            t.c.catalog_name == self.b.name,
            t.c.table_namespace == namespace_to_db(ident.namespace),
            t.c.table_name == ident.name,
        )

    def _row(self, conn: Connection, ident: TableIdent) -> tuple[str | None, str | None] | None:
        """``(metadata_location, iceberg_type)`` of the object named ``ident``, or None."""
        t = db.iceberg_tables
        row = conn.execute(select(t.c.metadata_location, t.c.iceberg_type).where(self._where(ident))).first()
        return (row[0], row[1]) if row else None

    def pointer(self, ident: TableIdent) -> str:
        """The current metadata location of a table; NoSuchTable (never NoSuchNamespace) when absent."""
        with self.b.engine.connect() as conn:
            row = self._row(conn, ident)
        if row is None or (row[1] or TABLE_TYPE) != TABLE_TYPE or row[0] is None:
            raise NoSuchTableError(f"Table does not exist: {ident}")
        return row[0]

    def exists(self, ident: TableIdent) -> bool:
        try:
            self.pointer(ident)
        except NoSuchTableError:
            return False
        return True

    def load(self, ident: TableIdent) -> LoadedTable:
        location = self.pointer(ident)
        return LoadedTable(location, self.b.files.read_table(location))

    def load_raw(self, ident: TableIdent) -> tuple[str, bytes]:
        """Pointer and the metadata file's JSON text, for the fast path of loadTable."""
        location = self.pointer(ident)
        return location, self.b.files.read_bytes(location)

    def list(
        self, ns: Namespace, page_token: str | None, page_size: int, kind: str = TABLE_TYPE
    ) -> tuple[list[str], str | None]:
        t = db.iceberg_tables
        with self.b.engine.connect() as conn:
            if not self.b.namespace_exists(conn, ns):
                raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ns)}")
            type_filter = _type_is_table() if kind == TABLE_TYPE else (t.c.iceberg_type == kind)
            query = select(t.c.table_name).where(
                and_(t.c.catalog_name == self.b.name, t.c.table_namespace == namespace_to_db(ns), type_filter)
            )
            if page_token:
                query = query.where(t.c.table_name > page_token)
            names = [r[0] for r in conn.execute(query.order_by(t.c.table_name).limit(page_size + 1)).all()]
        next_token = names[page_size - 1] if len(names) > page_size else None
        return names[:page_size], next_token

    # -- create ------------------------------------------------------------------------------------
    def default_location(self, ident: TableIdent) -> str:
        from catalog.namespaces import Namespaces

        ns_location = Namespaces(self.b).load(ident.namespace).get("location")
        if ns_location:
            return f"{ns_location.rstrip('/')}/{ident.name}"
        return f"{self.b.settings.warehouse.rstrip('/')}/{'/'.join(ident.namespace)}/{ident.name}"

    def build_metadata(
        self,
        ident: TableIdent,
        schema: Schema,
        location: str | None,
        spec: PartitionSpec | None,
        order: SortOrder | None,
        properties: dict[str, str],
    ) -> TableMetadata:
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
        from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

        if location:
            self.b.files.path(location)  # validates the scheme and the key
        props = dict(properties)
        version = props.get("format-version", "2")
        if version not in ("1", "2"):
            raise ValidationFailedError(
                f"Unsupported format-version {version!r}: this catalog writes format versions 1 and 2"
            )
        try:
            metadata = new_table_metadata(
                schema=schema,
                partition_spec=spec or UNPARTITIONED_PARTITION_SPEC,
                sort_order=order or UNSORTED_SORT_ORDER,
                location=(location or self.default_location(ident)).rstrip("/"),
                properties=props,
            )
        except (ValueError, TypeError, PyIcebergValidationError) as exc:
            raise ValidationFailedError(f"Invalid table definition: {exc}") from exc
        check_partition_spec(metadata.spec(), metadata.schema())
        check_sort_order(
            metadata.sort_order_by_id(metadata.default_sort_order_id) or UNSORTED_SORT_ORDER, metadata.schema()
        )
        return metadata

    def _check_creatable(self, conn: Connection, ident: TableIdent) -> None:
        if not self.b.namespace_exists(conn, ident.namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(ident.namespace)}")
        row = self._row(conn, ident)
        if row is not None:
            if (row[1] or TABLE_TYPE) == VIEW_TYPE:
                raise AlreadyExistsError(f"View with same name already exists: {ident}")
            raise AlreadyExistsError(f"Table already exists: {ident}")
        if self.b.dataset_named(conn, ident.namespace, ident.name):
            raise AlreadyExistsError(f"Raw dataset with same name already exists: {ident}")

    def stage_create(self, ident: TableIdent, metadata: TableMetadata) -> LoadedTable:
        """Staged create (CTAS/RTAS): check, build metadata, write and register nothing."""
        with self.b.engine.connect() as conn:
            self._check_creatable(conn, ident)
        return LoadedTable(None, metadata)

    def create(self, ident: TableIdent, metadata: TableMetadata, principal: str) -> LoadedTable:
        with self.b.engine.connect() as conn:
            self._check_creatable(conn, ident)
        location = self._new_metadata_location(metadata, None)
        self.b.files.write_table(location, metadata)
        try:
            with self.b.engine.begin() as conn:
                require_namespace(self.b, conn, ident.namespace)
                self._check_creatable(conn, ident)
                self._insert(conn, ident, location)
                self.b.audit(conn, "create-table", principal, ident.namespace, ident.name, metadata_location=location)
        except (IntegrityError, CatalogError) as exc:
            self.b.files.delete(location)
            if isinstance(exc, CatalogError):
                raise
            raise AlreadyExistsError(f"Table already exists: {ident}") from exc
        return LoadedTable(location, metadata)

    def _insert(self, conn: Connection, ident: TableIdent, location: str) -> None:
        conn.execute(
            insert(db.iceberg_tables).values(
                catalog_name=self.b.name,
                table_namespace=namespace_to_db(ident.namespace),
                table_name=ident.name,
                metadata_location=location,
                previous_metadata_location=None,
                iceberg_type=TABLE_TYPE,
            )
        )

    def _new_metadata_location(self, metadata: TableMetadata, old_location: str | None) -> str:
        version = parse_metadata_version(old_location) + 1 if old_location else 0
        provider = load_location_provider(metadata.location, metadata.properties)
        location = provider.new_table_metadata_file_location(version)
        codec = metadata.properties.get("write.metadata.compression-codec", "none").lower()
        if codec == "gzip" and not location.endswith(".gz.metadata.json"):
            location = location.replace(".metadata.json", ".gz.metadata.json")
        return location

    # -- commit ------------------------------------------------------------------------------------
    def commit(self, change: TableChange, principal: str) -> LoadedTable:
        (result,) = self.commit_many([change], principal)
        return result

    def _stage(self, conn: Connection, change: TableChange) -> _Staged:
        row = self._row(conn, change.ident)
        creating = any(isinstance(r, AssertCreate) for r in change.requirements)
        if row is not None and (row[1] or TABLE_TYPE) == VIEW_TYPE:
            if creating:
                raise AlreadyExistsError(f"View with same name already exists: {change.ident}")
            raise NoSuchTableError(f"Table does not exist: {change.ident}")
        if creating and len(change.requirements) != 1:
            raise ValidationFailedError("Invalid create requirements: assert-create must be the only requirement")
        if row is None:
            if not creating:
                raise NoSuchTableError(f"Table does not exist: {change.ident}")
            if not self.b.namespace_exists(conn, change.ident.namespace):
                raise NoSuchNamespaceError(f"Namespace does not exist: {dotted(change.ident.namespace)}")
            if self.b.dataset_named(conn, change.ident.namespace, change.ident.name):
                raise CommitFailedError(f"Raw dataset with same name already exists: {change.ident}")
            base, old_location = None, None
        else:
            old_location = row[0]
            try:
                base = self.b.files.read_table(old_location) if old_location else None
            except MetadataFileError as exc:
                raise CommitFailedError(f"Cannot commit to {change.ident}: {exc.message}") from exc
        for requirement in change.requirements:
            if isinstance(requirement, AssertCreate) and row is not None:
                raise CommitFailedError(f"Requirement failed: table already exists: {change.ident}")
            validate_requirement(requirement, base)
        if base is not None and not change.updates:
            return _Staged(change, old_location, None, base, base)
        metadata = apply_updates(base, change.updates, old_location)
        return _Staged(change, old_location, self._new_metadata_location(metadata, old_location), metadata, base)

    def commit_many(self, changes: builtins.list[TableChange], principal: str) -> builtins.list[LoadedTable]:
        """Commit every change or none; retried on lost compare-and-swap races."""
        idents = [c.ident for c in changes]
        if len(set(idents)) != len(idents):
            raise ValidationFailedError("A transaction may change each table only once")
        # Lock order: sorted identifiers, so concurrent transactions cannot deadlock (PostgreSQL).
        ordered = sorted(changes, key=lambda c: (c.ident.namespace, c.ident.name))
        with self._commit_locks.hold(idents):
            return self._commit_ordered(changes, ordered, principal)

    def _commit_ordered(
        self, changes: builtins.list[TableChange], ordered: builtins.list[TableChange], principal: str
    ) -> builtins.list[LoadedTable]:
        retries = self.b.settings.catalog.commit_retries
        for attempt in range(retries + 1):
            with self.b.engine.connect() as conn:
                staged = [self._stage(conn, c) for c in ordered]
            written = [s for s in staged if s.new_location]
            try:
                for s in written:
                    self.b.files.write_table(s.new_location, s.metadata)  # type: ignore[arg-type]
                if written:
                    self._swap(written, principal)
            except _LostRace as race:
                for s in written:
                    self.b.files.delete(s.new_location)  # type: ignore[arg-type]
                if attempt == retries:
                    raise CommitFailedError(
                        f"Commit failed: {race.ident} was changed concurrently ({retries + 1} attempts)"
                    ) from None
                time.sleep(random.uniform(0.002, 0.01) * (2**attempt))
                continue
            except BaseException:
                for s in written:
                    self.b.files.delete(s.new_location)  # type: ignore[arg-type]
                raise
            for s in written:
                if s.base is not None:
                    self._delete_old_metadata(s.base, s.metadata)
            by_ident = {s.change.ident: s for s in staged}
            return [
                LoadedTable(
                    by_ident[c.ident].new_location or by_ident[c.ident].old_location, by_ident[c.ident].metadata
                )
                for c in changes
            ]
        raise AssertionError("unreachable")

    def _swap(self, staged: builtins.list[_Staged], principal: str) -> None:
        t = db.iceberg_tables
        try:
            with self.b.engine.begin() as conn:
                for s in staged:
                    ident = s.change.ident
                    for guard in self.commit_guards:
                        guard(conn, ident, s.base, s.metadata)
                    if s.old_location is None:
                        require_namespace(self.b, conn, ident.namespace)
                        self._insert(conn, ident, s.new_location)  # type: ignore[arg-type]
                    else:
                        result = conn.execute(
                            update(t)
                            .where(and_(self._where(ident), t.c.metadata_location == s.old_location))
                            .values(metadata_location=s.new_location, previous_metadata_location=s.old_location)
                        )
                        if result.rowcount != 1:
                            raise _LostRace(ident)
                    snapshot = s.metadata.current_snapshot()
                    self.b.audit(
                        conn,
                        "create-table" if s.old_location is None else "commit",
                        principal,
                        ident.namespace,
                        ident.name,
                        metadata_location=s.new_location,
                        snapshot_id=snapshot.snapshot_id if snapshot else None,
                        detail={
                            "updates": [u.action for u in s.change.updates],
                            "operation": snapshot.summary.operation.value if snapshot and snapshot.summary else None,
                            "transaction": len(staged) > 1,
                        },
                    )
        except IntegrityError as exc:
            # The row appeared between staging and swap: a concurrent create won.
            raise CommitFailedError(f"Table already exists: {staged[0].change.ident}") from exc
        except OperationalError as exc:
            # "database is locked" and serialization failures: the swap did not happen.
            log.warning("commit swap failed, treating as a lost race: %s", exc.orig)
            raise _LostRace(staged[0].change.ident) from exc

    def _delete_old_metadata(self, base: TableMetadata, new: TableMetadata) -> None:
        if new.properties.get("write.metadata.delete-after-commit.enabled", "false").lower() != "true":
            return
        kept = {entry.metadata_file for entry in new.metadata_log}
        for entry in base.metadata_log:
            if entry.metadata_file not in kept:
                self.b.files.delete(entry.metadata_file)

    # -- drop, rename, register --------------------------------------------------------------------
    def drop(self, ident: TableIdent, purge: bool, principal: str) -> None:
        t = db.iceberg_tables
        with self.b.engine.begin() as conn:
            row = self._row(conn, ident)
            if row is None or (row[1] or TABLE_TYPE) != TABLE_TYPE:
                raise NoSuchTableError(f"Table does not exist: {ident}")
            conn.execute(delete(t).where(and_(self._where(ident), _type_is_table())))
            self.b.audit(conn, "drop-table", principal, ident.namespace, ident.name, detail={"purge": purge})
        if purge and row[0]:
            self._purge(row[0])

    def _purge(self, metadata_location: str) -> None:
        """Delete the files of a dropped table, best effort: the drop has committed, so a file that is
        already gone or unreadable is logged and skipped, never reported as a failure of the drop."""
        try:
            self._purge_files(metadata_location)
        except Exception:  # noqa: BLE001 - cleanup after a committed drop must not fail the request
            log.exception("purge of the table at %s stopped early; some files may remain", metadata_location)

    def _purge_files(self, metadata_location: str) -> None:
        from pyiceberg.catalog import delete_data_files, delete_files

        try:
            metadata = self.b.files.read_table(metadata_location)
        except MetadataFileError as exc:
            log.warning("purge: cannot read %s, deleting nothing: %s", metadata_location, exc.message)
            return
        io = load_file_io({**metadata.properties}, metadata_location)
        manifest_lists: set[str] = set()
        manifests: dict[str, ManifestFile] = {}
        for snapshot in metadata.snapshots:
            manifest_lists.add(snapshot.manifest_list)
            try:
                manifests.update((m.manifest_path, m) for m in snapshot.manifests(io))
            except (OSError, ValueError) as exc:
                log.warning("purge: cannot read manifest list %s: %s", snapshot.manifest_list, exc)
        for manifest in manifests.values():
            try:
                delete_data_files(io, [manifest])
            except (OSError, ValueError) as exc:
                log.warning("purge: cannot read manifest %s: %s", manifest.manifest_path, exc)
        delete_files(io, set(manifests), "manifest")
        delete_files(io, manifest_lists, "manifest list")
        statistics = {f.statistics_path for f in (*metadata.statistics, *metadata.partition_statistics)}
        delete_files(io, statistics, "statistics")
        for entry in metadata.metadata_log:
            self.b.files.delete(entry.metadata_file)
        self.b.files.delete(metadata_location)
        log.info("purged table files under %s", metadata.location)

    def rename(self, source: TableIdent, dest: TableIdent, principal: str, kind: str = TABLE_TYPE) -> None:
        noun = "Table" if kind == TABLE_TYPE else "View"
        t = db.iceberg_tables
        try:
            with self.b.engine.begin() as conn:
                row = self._row(conn, source)
                if row is None or (row[1] or TABLE_TYPE) != kind:
                    if kind == TABLE_TYPE:
                        raise NoSuchTableError(f"Table does not exist: {source}")
                    from catalog.errors import NoSuchViewError

                    raise NoSuchViewError(f"View does not exist: {source}")
                require_namespace(self.b, conn, dest.namespace)
                existing = self._row(conn, dest)
                if existing is not None:
                    other = "View" if (existing[1] or TABLE_TYPE) == VIEW_TYPE else "Table"
                    if other != noun or kind == VIEW_TYPE:
                        raise AlreadyExistsError(f"Cannot rename {source} to {dest}. {other} already exists")
                    raise AlreadyExistsError(f"{noun} already exists: {dest}")
                if self.b.dataset_named(conn, dest.namespace, dest.name):
                    raise AlreadyExistsError(f"Cannot rename {source} to {dest}. Raw dataset already exists")
                conn.execute(
                    update(t)
                    .where(self._where(source))
                    .values(table_namespace=namespace_to_db(dest.namespace), table_name=dest.name)
                )
                self.b.audit(
                    conn, f"rename-{noun.lower()}", principal, source.namespace, source.name, detail={"to": str(dest)}
                )
        except IntegrityError as exc:
            raise AlreadyExistsError(f"{noun} already exists: {dest}") from exc

    def register(self, ident: TableIdent, metadata_location: str, overwrite: bool, principal: str) -> LoadedTable:
        try:
            metadata = self.b.files.read_table(metadata_location)
        except MetadataFileError as exc:
            raise ValidationFailedError(f"Cannot register {ident}: {exc.message}") from exc
        t = db.iceberg_tables
        with self.b.engine.begin() as conn:
            require_namespace(self.b, conn, ident.namespace)
            row = self._row(conn, ident)
            if row is not None and (not overwrite or (row[1] or TABLE_TYPE) != TABLE_TYPE):
                raise AlreadyExistsError(f"Table already exists: {ident}")
            if self.b.dataset_named(conn, ident.namespace, ident.name):
                raise AlreadyExistsError(f"Raw dataset with same name already exists: {ident}")
            if row is None:
                self._insert(conn, ident, metadata_location)
            else:
                conn.execute(
                    update(t)
                    .where(self._where(ident))
                    .values(metadata_location=metadata_location, previous_metadata_location=row[0])
                )
            self.b.audit(
                conn, "register-table", principal, ident.namespace, ident.name, metadata_location=metadata_location
            )
        return LoadedTable(metadata_location, metadata)

    def all_tables(self) -> builtins.list[TableIdent]:
        t = db.iceberg_tables
        with self.b.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.table_namespace, t.c.table_name).where(
                    and_(t.c.catalog_name == self.b.name, _type_is_table())
                )
            ).all()
        return [TableIdent(namespace_from_db(ns), name) for ns, name in rows]


class _LostRace(Exception):
    def __init__(self, ident: TableIdent) -> None:
        super().__init__(str(ident))
        self.ident = ident


def new_table_uuid() -> uuid.UUID:
    return uuid.uuid4()


def metadata_json(location: str | None, raw: bytes, config: dict[str, str] | None = None) -> bytes:
    """A LoadTableResult body embedding the metadata file's own JSON text (no re-serialisation)."""
    head = b'{"metadata-location":' + json.dumps(location).encode() if location else b"{"
    sep = b"," if location else b""
    return head + sep + b'"metadata":' + raw + b',"config":' + json.dumps(config or {}).encode() + b"}"
