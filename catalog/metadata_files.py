"""Reading and writing Iceberg table and view metadata files.

Metadata files are immutable once written, so parsed metadata is cached by location. New files are
written exclusively (never overwriting) and flushed before the catalog pointer moves to them, so a
crash at any point leaves the pointer on a complete file.
"""

from __future__ import annotations

import gzip
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil
from pyiceberg.view.metadata import ViewMetadata

from catalog.errors import CatalogError, ValidationFailedError
from catalog.objectstore import local_path

T = TypeVar("T")

GZIP_MAGIC = b"\x1f\x8b"


class MetadataFileError(CatalogError):
    """A metadata file the catalog points at cannot be read (deleted or corrupt)."""

    iceberg_type = "NotFoundException"
    status = 404


class _LRU(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self._data: OrderedDict[str, T] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)


class MetadataFiles:
    """File access for metadata, rooted at the lake's object store for ``s3://`` locations."""

    def __init__(self, object_store_root: Path, *, fsync: bool = True, cache_size: int = 1024) -> None:
        self.object_store_root = object_store_root
        self.fsync = fsync
        self._tables: _LRU[TableMetadata] = _LRU(cache_size)
        self._raw: _LRU[bytes] = _LRU(cache_size)
        self._views: _LRU[ViewMetadata] = _LRU(cache_size)

    def path(self, location: str) -> Path:
        return local_path(location, self.object_store_root)

    # -- reading -----------------------------------------------------------------------------------
    def read_bytes(self, location: str) -> bytes:
        """The JSON text of a metadata file (decompressed)."""
        cached = self._raw.get(location)
        if cached is not None:
            return cached
        try:
            data = self.path(location).read_bytes()
        except FileNotFoundError as exc:
            raise MetadataFileError(f"Metadata file is missing: {location}") from exc
        except OSError as exc:
            raise MetadataFileError(f"Cannot read metadata file {location}: {exc}") from exc
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
        self._raw.put(location, data)
        return data

    def read_table(self, location: str) -> TableMetadata:
        cached = self._tables.get(location)
        if cached is not None:
            return cached
        try:
            metadata = TableMetadataUtil.parse_raw(self.read_bytes(location))  # type: ignore[arg-type]  # bytes work
        except (ValueError, TypeError, PyIcebergValidationError) as exc:
            # parse_raw wraps pydantic's errors in pyiceberg's ValidationError, which is not a ValueError.
            raise MetadataFileError(f"Corrupt table metadata file {location}: {exc}") from exc
        self._tables.put(location, metadata)
        return metadata

    def read_view(self, location: str) -> ViewMetadata:
        cached = self._views.get(location)
        if cached is not None:
            return cached
        try:
            metadata = ViewMetadata.model_validate_json(self.read_bytes(location))
        except (ValueError, TypeError) as exc:
            raise MetadataFileError(f"Corrupt view metadata file {location}: {exc}") from exc
        self._views.put(location, metadata)
        return metadata

    # -- writing -----------------------------------------------------------------------------------
    def _write(self, location: str, payload: bytes) -> None:
        target = self.path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = gzip.compress(payload) if location.endswith(".gz.metadata.json") else payload
        # O_EXCL: a metadata file is written once; a clash means a bug or a hostile location.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._raw.put(location, payload)

    def write_table(self, location: str, metadata: TableMetadata) -> None:
        try:
            payload = metadata.model_dump_json().encode()
        except NotImplementedError as exc:  # pyiceberg cannot serialise format v3
            raise ValidationFailedError(f"Cannot write table metadata: {exc}") from exc
        self._write(location, payload)
        self._tables.put(location, metadata)

    def write_view(self, location: str, metadata: ViewMetadata) -> None:
        self._write(location, metadata.model_dump_json(exclude_none=True).encode())
        self._views.put(location, metadata)

    def delete(self, location: str) -> None:
        try:
            self.path(location).unlink()
        except FileNotFoundError:
            pass
        except (OSError, CatalogError):  # never fail a request over cleanup
            pass


def new_view_metadata_location(view_location: str, version: int) -> str:
    return f"{view_location.rstrip('/')}/metadata/{version:05d}-{uuid.uuid4()}.gz.metadata.json"


def parse_metadata_version(location: str) -> int:
    """``00012-<uuid>.metadata.json`` -> 12; -1 when the name has no version."""
    name = location.rsplit("/", 1)[-1]
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else -1
