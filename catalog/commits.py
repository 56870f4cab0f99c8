"""Applying commit requirements and updates to table metadata, with the Java client's semantics.

pyiceberg implements the metadata updates; this module adapts the few places where its rules
differ from the reference (Java) catalog the Spark client was written against:

* ``remove-snapshots`` naming an unknown snapshot is ignored (pyiceberg raises);
* ``remove-properties`` naming a property that is not set is ignored (pyiceberg raises KeyError);
* ``remove-statistics``/``remove-partition-statistics`` for a snapshot without statistics is ignored
  (``expire_snapshots`` sends one right after removing the snapshot, whose statistics are gone);
* ``assert-ref-snapshot-id`` on a table without snapshots accepts any ref name;
* a failed requirement is a 409 the client retries; an invalid update is a 400 it does not.
"""

from __future__ import annotations

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import SUPPORTED_TABLE_FORMAT_VERSION, TableMetadata
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSortOrderUpdate,
    AssertRefSnapshotId,
    RemovePartitionStatisticsUpdate,
    RemovePropertiesUpdate,
    RemoveSnapshotsUpdate,
    RemoveStatisticsUpdate,
    SetPropertiesUpdate,
    TableRequirement,
    TableUpdate,
    UpgradeFormatVersionUpdate,
    update_table_metadata,
)

from catalog.errors import CommitFailedError, ValidationFailedError

JAVA_LONG_MIN = -(2**63)
JAVA_LONG_MAX = 2**63 - 1


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
    properties = set(base.properties)
    adapted: list[TableUpdate] = []
    for update in updates:
        if isinstance(update, SetPropertiesUpdate):
            properties.update(update.updates)
        elif isinstance(update, RemovePropertiesUpdate):
            # Java removes properties with ``keySet().removeAll``: a key that is not set is no error.
            removals = [key for key in update.removals if key in properties]
            if not removals:
                continue
            properties.difference_update(removals)
            update = update.model_copy(update={"removals": removals})
        elif isinstance(update, RemoveSnapshotsUpdate):
            ids = [i for i in update.snapshot_ids if i in existing]
            if not ids:
                continue
            existing.difference_update(ids)
            with_stats.difference_update(ids)
            with_partition_stats.difference_update(ids)
            update = update.model_copy(update={"snapshot_ids": ids})
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


def _check_long_range(value: object, path: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not JAVA_LONG_MIN <= value <= JAVA_LONG_MAX:
            raise ValidationFailedError(f"Invalid value at {path}: {value} does not fit in a 64-bit integer")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_long_range(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_long_range(item, f"{path}[{index}]")


def check_format_version(updates: list[TableUpdate]) -> None:
    """pyiceberg 0.12 can neither upgrade to nor write format v3: say so instead of a bare ValueError."""
    for update in updates:
        if isinstance(update, UpgradeFormatVersionUpdate) and update.format_version > SUPPORTED_TABLE_FORMAT_VERSION:
            raise ValidationFailedError(
                f"Cannot upgrade to format version {update.format_version}: this catalog supports table format "
                f"versions 1 to {SUPPORTED_TABLE_FORMAT_VERSION} (create the table with 'format-version'="
                f"'{SUPPORTED_TABLE_FORMAT_VERSION}')"
            )


def check_ranges(updates: list[TableUpdate]) -> None:
    """Every number must fit the Java client's types: an id beyond a long cannot be read back by Java and
    cannot be stored in the catalog database."""
    for index, update in enumerate(updates):
        _check_long_range(update.model_dump(by_alias=True), f"updates[{index}]")


def _check_transform(transform: object, where: str) -> None:
    for attribute in ("num_buckets", "width"):
        value = getattr(transform, attribute, None)
        if isinstance(value, int) and value <= 0:
            raise ValidationFailedError(f"Invalid {where}: transform {transform} needs a positive parameter")


def check_partition_spec(spec: PartitionSpec, schema: Schema) -> None:
    """Raise a 400 unless every field of ``spec`` can be computed from ``schema`` (Java's checkCompatibility)."""
    for spec_field in spec.fields:
        _check_transform(spec_field.transform, f"partition field {spec_field.name!r}")
    try:
        spec.check_compatible(schema)
    except (PyIcebergValidationError, ValueError) as exc:
        raise ValidationFailedError(f"Invalid partition spec: {exc}") from exc


def check_sort_order(order: SortOrder, schema: Schema) -> None:
    for sort_field in order.fields:
        _check_transform(sort_field.transform, "sort field")
    try:
        order.check_compatible(schema)
    except (PyIcebergValidationError, ValueError) as exc:
        raise ValidationFailedError(f"Invalid sort order: {exc}") from exc


def _check_added(updates: list[TableUpdate], metadata: TableMetadata) -> None:
    """Java validates a spec or sort order when it is added; pyiceberg's update handlers do not."""
    schema = metadata.schema()
    for update in updates:
        if isinstance(update, AddPartitionSpecUpdate):
            check_partition_spec(update.spec, schema)
        elif isinstance(update, AddSortOrderUpdate):
            check_sort_order(update.sort_order, schema)


def apply_updates(base: TableMetadata | None, updates: list[TableUpdate], base_location: str | None) -> TableMetadata:
    """New metadata from ``base`` (``None``: a table being created) and ``updates``."""
    start = base if base is not None else _empty_metadata()
    check_ranges(updates)
    check_format_version(updates)
    try:
        metadata = update_table_metadata(
            base_metadata=start,
            updates=tuple(_adapt(updates, start)),
            enforce_validation=base is None,
            metadata_location=base_location,
        )
        _check_added(updates, metadata)
        return metadata
    except CommitFailedException as exc:
        raise CommitFailedError(str(exc)) from exc
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError, PyIcebergValidationError) as exc:
        message = str(exc) or type(exc).__name__
        if "sequence number" in message:
            # A concurrent commit moved the table on: retryable, as the Java catalog treats it.
            raise CommitFailedError(f"Cannot apply updates: {message}") from exc
        raise ValidationFailedError(f"Invalid table update: {message}") from exc
