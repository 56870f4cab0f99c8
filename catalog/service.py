"""The catalog service: every store of the lake's catalog over one database."""

from __future__ import annotations

from pathlib import Path

from catalog import db
from catalog.audit import AuditLog
from catalog.backend import Backend
from catalog.bookmarks import Bookmarks
from catalog.datasets import Datasets
from catalog.metadata_files import MetadataFiles
from catalog.namespaces import Namespaces
from catalog.settings import Settings
from catalog.tables import Tables
from catalog.views import Views


class CatalogService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        engine = db.make_engine(settings.database_url, fsync=settings.catalog.fsync)
        db.create_schema(engine)
        root: Path = settings.object_store_root
        self.backend = Backend(settings, engine, MetadataFiles(root, fsync=settings.catalog.fsync))
        self.namespaces = Namespaces(self.backend)
        self.tables = Tables(self.backend)
        self.views = Views(self.backend, self.tables)
        self.audit = AuditLog(self.backend, self.tables)
        self.datasets = Datasets(self.backend)
        self.bookmarks = Bookmarks(self.backend, self.tables)
        self.tables.commit_guards.append(self.bookmarks.check_table_commit)

    def close(self) -> None:
        self.backend.engine.dispose()
