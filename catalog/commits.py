"""Applying commit requirements and updates to table metadata, with the Java client's semantics.

pyiceberg implements the metadata updates; this module adapts the few places where its rules
differ from the reference (Java) catalog the Spark client was written against:

* ``remove-snapshots`` naming an unknown snapshot is ignored (pyiceberg raises);
* ``remove-statistics``/``remove-partition-statistics`` for a snapshot without statistics is ignored
  (``expire_snapshots`` sends one right after removing the snapshot, whose statistics are gone);
* ``assert-ref-snapshot-id`` on a table without snapshots accepts any ref name;
* a failed requirement is a 409 the client retries; an invalid update is a 400 it does not.
"""

from __future__ import annotations

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    RemovePartitionStatisticsUpdate,
    RemoveSnapshotsUpdate,
    RemoveStatisticsUpdate,
    TableRequirement,
    TableUpdate,
    update_table_metadata,
)

from catalog.errors import CommitFailedError, ValidationFailedError


def _empty_metadata() -> TableMetadata:
    from pyiceberg.catalog import MetastoreCatalog

    return MetastoreCatalog._empty_table_metadata()


def validate_requirement(requirement: TableRequirement, base: TableMetadata | None) -> None:
    """Raise :class:`CommitFailedError` when ``requirement`` does not hold on ``base``."""
    if isinstance(requirement, AssertRefSnapshotId):
        if base is None:
            raise CommitFailedError("Requirement failed: current table metadata is missing")
        ref = base.refs.get(requirement.ref)
        if ref is None and requirement.snapshot_id is not None:
            raise CommitFailedError(
                f"Requirement failed: branch or tag {requirement.ref} is missing, expected {requirement.snapshot_id}"
            )
        if ref is not None and requirement.snapshot_id is None:
            raise CommitFailedError(
                f"Requirement failed: {ref.snapshot_ref_type} {requirement.ref} was created concurrently"
            )
        if ref is not None and ref.snapshot_id != requirement.snapshot_id:
            raise CommitFailedError(
                f"Requirement failed: {ref.snapshot_ref_type} {requirement.ref} has changed: "
                f"expected id {requirement.snapshot_id}, found {ref.snapshot_id}"
            )
        return
    try:
        requirement.validate(base)
    except CommitFailedException as exc:
        raise CommitFailedError(str(exc)) from exc


def _adapt(updates: list[TableUpdate], base: TableMetadata) -> list[TableUpdate]:
    existing = {s.snapshot_id for s in base.snapshots}
    with_stats = {s.snapshot_id for s in base.statistics}
    with_partition_stats = {s.snapshot_id for s in base.partition_statistics}
    adapted: list[TableUpdate] = []
    for update in updates:
        if isinstance(update, RemoveSnapshotsUpdate):
            ids = [i for i in update.snapshot_ids if i in existing]
            if not ids:
                continue
            existing.difference_update(ids)
            with_stats.difference_update(ids)
            with_partition_stats.difference_update(ids)
            update = RemoveSnapshotsUpdate(snapshot_ids=ids)
        elif isinstance(update, RemoveStatisticsUpdate):
            if update.snapshot_id not in with_stats:
                continue
            with_stats.discard(update.snapshot_id)
        elif isinstance(update, RemovePartitionStatisticsUpdate):
            if update.snapshot_id not in with_partition_stats:
                continue
            with_partition_stats.discard(update.snapshot_id)
        adapted.append(update)
    return adapted


def apply_updates(base: TableMetadata | None, updates: list[TableUpdate], base_location: str | None) -> TableMetadata:
    """New metadata from ``base`` (``None``: a table being created) and ``updates``."""
    start = base if base is not None else _empty_metadata()
    try:
        return update_table_metadata(
            base_metadata=start,
            updates=tuple(_adapt(updates, start)),
            enforce_validation=base is None,
            metadata_location=base_location,
        )
    except CommitFailedException as exc:
        raise CommitFailedError(str(exc)) from exc
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as exc:
        message = str(exc) or type(exc).__name__
        if "sequence number" in message:
            # A concurrent commit moved the table on: retryable, as the Java catalog treats it.
            raise CommitFailedError(f"Cannot apply updates: {message}") from exc
        raise ValidationFailedError(f"Invalid table update: {message}") from exc
