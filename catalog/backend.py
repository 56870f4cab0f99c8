"""What every catalog service shares: the database engine, metadata files, settings and the audit log."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, and_, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from catalog import db
from catalog.errors import CommitFailedError
from catalog.identifiers import Namespace, namespace_to_db
from catalog.metadata_files import MetadataFiles
from catalog.settings import Settings

ANONYMOUS = "anonymous"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Backend:
    settings: Settings
    engine: Engine
    files: MetadataFiles

    @property
    def name(self) -> str:
        return self.settings.catalog.name

    def namespace_exists(self, conn: Connection, ns: Namespace) -> bool:
        t = db.namespace_properties
        row = conn.execute(
            select(t.c.namespace)
            .where(and_(t.c.catalog_name == self.name, t.c.namespace == namespace_to_db(ns)))
            .limit(1)
        ).first()
        return row is not None

    def dataset_named(self, conn: Connection, ns: Namespace, name: str) -> bool:
        """Whether a raw dataset holds ``name`` in ``ns`` (tables, views and datasets share names)."""
        r = db.raw_datasets
        row = conn.execute(
            select(r.c.name)
            .where(and_(r.c.catalog_name == self.name, r.c.namespace == namespace_to_db(ns), r.c.name == name))
            .limit(1)
        ).first()
        return row is not None

    def audit(
        self,
        conn: Connection,
        action: str,
        principal: str,
        ns: Namespace | None = None,
        name: str | None = None,
        *,
        metadata_location: str | None = None,
        snapshot_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append an audit record inside the caller's transaction (so it commits with the change)."""
        conn.execute(
            insert(db.audit_log).values(
                ts_ms=now_ms(),
                catalog_name=self.name,
                action=action,
                namespace=namespace_to_db(ns) if ns else None,
                name=name,
                principal=principal,
                metadata_location=metadata_location,
                snapshot_id=snapshot_id,
                detail=detail,
            )
        )


T = TypeVar("T")
_log = logging.getLogger(__name__)


class LostRace(Exception):
    """A write transaction found that a concurrent writer changed what it read (it is retried)."""


def retrying(settings: Settings, what: str, attempt_once: Callable[[], T]) -> T:
    """Run a write transaction, retrying it (with jittered backoff) when a concurrent writer got there first;
    CommitFailedError after ``commit_retries`` retries."""
    attempts = settings.catalog.commit_retries + 1
    for attempt in range(attempts):
        try:
            return attempt_once()
        except (LostRace, IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1:
                raise CommitFailedError(f"{what} failed: changed concurrently ({attempts} attempts); retry") from exc
            _log.info("%s lost a race (attempt %d): %s", what, attempt + 1, exc)
            time.sleep(random.uniform(0.002, 0.01) * (2**attempt))
    raise AssertionError("unreachable")
