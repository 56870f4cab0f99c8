"""pyiceberg's RestCatalog against the real catalog server: the Python client's whole table life cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from tests.catalog.rest_helpers import local_path

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "ts", TimestamptzType(), required=False),
)
ARROW_SCHEMA = pa.schema(
    [pa.field("id", pa.int64()), pa.field("name", pa.string()), pa.field("ts", pa.timestamp("us", tz="UTC"))]
)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def rows(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table(
        {"id": ids, "name": [f"n{i}" for i in ids], "ts": [T0 + dt.timedelta(days=i % 3) for i in ids]},
        schema=ARROW_SCHEMA,
    )


@pytest.fixture
def ns(rest_catalog: RestCatalog, unique_ns: str) -> str:
    rest_catalog.create_namespace(unique_ns, {"owner": "tests"})
    return unique_ns


def data_files(table: Table) -> list[str]:
    return [task.file.file_path for task in table.scan().plan_files()]


def files_under(location: str) -> list[Path]:
    root = local_path(location)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_namespaces(rest_catalog: RestCatalog, ns: str) -> None:
    assert (ns,) in rest_catalog.list_namespaces()
    assert rest_catalog.load_namespace_properties(ns)["owner"] == "tests"
    assert rest_catalog.namespace_exists(ns)
    rest_catalog.create_namespace((ns, "child"))
    assert rest_catalog.list_namespaces(ns) == [(ns, "child")]
    summary = rest_catalog.update_namespace_properties(ns, removals={"owner", "nope"}, updates={"team": "data"})
    assert summary.removed == ["owner"] and summary.updated == ["team"] and summary.missing == ["nope"]
    assert rest_catalog.load_namespace_properties(ns) == {"team": "data"}
    with pytest.raises(NamespaceNotEmptyError):
        rest_catalog.drop_namespace(ns)
    rest_catalog.drop_namespace((ns, "child"))
    with pytest.raises(NoSuchNamespaceError):
        rest_catalog.load_namespace_properties((ns, "child"))


def test_create_append_and_read_back(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.events", schema=SCHEMA, properties={"owner": "py"})
    assert rest_catalog.table_exists(f"{ns}.events")
    assert rest_catalog.list_tables(ns) == [(ns, "events")]
    with pytest.raises(TableAlreadyExistsError):
        rest_catalog.create_table(f"{ns}.events", schema=SCHEMA)
    table.append(rows(0, 10))
    table.append(rows(10, 5))
    loaded = rest_catalog.load_table(f"{ns}.events")
    result = loaded.scan().to_arrow().sort_by("id")
    assert result.num_rows == 15
    assert result["id"].to_pylist() == list(range(15))
    assert result["name"].to_pylist()[:3] == ["n0", "n1", "n2"]
    assert len(loaded.metadata.snapshots) == 2
    assert loaded.current_snapshot().summary["total-records"] == "15"  # type: ignore[union-attr,index]
    assert loaded.properties["owner"] == "py"
    filtered = loaded.scan(row_filter=EqualTo("id", 12)).to_arrow()
    assert filtered["name"].to_pylist() == ["n12"]

    # An overwrite with a filter and a delete are commits too.
    loaded.delete(EqualTo("id", 3))
    assert rest_catalog.load_table(f"{ns}.events").scan().to_arrow().num_rows == 14
    loaded.overwrite(rows(100, 2))
    after = rest_catalog.load_table(f"{ns}.events").scan().to_arrow()
    assert sorted(after["id"].to_pylist()) == [100, 101]


def test_schema_evolution(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.t", schema=SCHEMA)
    table.append(rows(0, 3))
    with table.update_schema() as update:
        update.add_column("score", LongType(), doc="points")
        update.rename_column("name", "label")
    table = rest_catalog.load_table(f"{ns}.t")
    assert [f.name for f in table.schema().fields] == ["id", "label", "ts", "score"]
    assert table.schema().schema_id == 1
    assert table.metadata.last_column_id == 4
    new_rows = pa.table(
        {"id": [10], "label": ["x"], "ts": [T0], "score": [7]},
        schema=pa.schema(
            [*ARROW_SCHEMA.remove(1).insert(1, pa.field("label", pa.string())), pa.field("score", pa.int64())]
        ),
    )
    table.append(new_rows)
    result = rest_catalog.load_table(f"{ns}.t").scan().to_arrow().sort_by("id")
    assert result["score"].to_pylist() == [None, None, None, 7]
    assert result["label"].to_pylist() == ["n0", "n1", "n2", "x"]

    # A stale client's schema change conflicts: it was based on the schema before the other change.
    stale = rest_catalog.load_table(f"{ns}.t")
    with table.update_schema() as update:
        update.add_column("extra", StringType())
    with pytest.raises(CommitFailedException):
        with stale.update_schema() as update:
            update.add_column("other", StringType())
    assert "other" not in [f.name for f in rest_catalog.load_table(f"{ns}.t").schema().fields]


def test_partition_evolution(rest_catalog: RestCatalog, ns: str) -> None:
    # Identity transforms only: pyarrow writes of day/bucket partitions need pyiceberg-core.
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="name"))
    table = rest_catalog.create_table(f"{ns}.p", schema=SCHEMA, partition_spec=spec)
    table.append(rows(0, 3))
    assert len(data_files(table)) == 3
    with table.update_spec() as update:
        update.add_field("id", IdentityTransform(), "id_identity")
    table = rest_catalog.load_table(f"{ns}.p")
    assert table.spec().spec_id == 1
    assert [f.name for f in table.spec().fields] == ["name", "id_identity"]
    assert table.metadata.last_partition_id == 1001
    table.append(rows(100, 2))
    reloaded = rest_catalog.load_table(f"{ns}.p")
    assert reloaded.scan().to_arrow().num_rows == 5
    specs = sorted(task.file.spec_id for task in reloaded.scan().plan_files())
    assert specs == [0, 0, 0, 1, 1]
    with reloaded.update_spec() as update:
        update.remove_field("name")
    assert [f.name for f in rest_catalog.load_table(f"{ns}.p").spec().fields] == ["id_identity"]


def test_table_properties(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.props", schema=SCHEMA, properties={"a": "1"})
    with table.transaction() as tx:
        tx.set_properties(b="2", c="3")
    with table.transaction() as tx:
        tx.remove_properties("a")
    props = rest_catalog.load_table(f"{ns}.props").properties
    assert props["b"] == "2" and props["c"] == "3" and "a" not in props


def test_create_table_transaction_is_staged(rest_catalog: RestCatalog, ns: str) -> None:
    tx = rest_catalog.create_table_transaction(f"{ns}.staged", schema=SCHEMA, properties={"via": "tx"})
    location = tx.table_metadata.location
    tx.append(rows(0, 4))
    # Nothing is registered until the transaction commits.
    assert not rest_catalog.table_exists(f"{ns}.staged")
    assert rest_catalog.list_tables(ns) == []
    assert not (local_path(location) / "metadata").exists() or not list(
        (local_path(location) / "metadata").glob("*.metadata.json")
    )
    table = tx.commit_transaction()
    assert rest_catalog.table_exists(f"{ns}.staged")
    loaded = rest_catalog.load_table(f"{ns}.staged")
    assert loaded.properties["via"] == "tx"
    assert loaded.scan().to_arrow().num_rows == 4
    assert table.metadata.table_uuid == loaded.metadata.table_uuid
    # A second staged create of the same name fails at commit.
    tx2 = rest_catalog.create_table_transaction(f"{ns}.other", schema=SCHEMA)
    rest_catalog.create_table(f"{ns}.other", schema=SCHEMA)
    with pytest.raises((CommitFailedException, TableAlreadyExistsError)):
        tx2.commit_transaction()
    assert rest_catalog.load_table(f"{ns}.other").metadata.table_uuid != tx2.table_metadata.table_uuid


def test_rename_and_drop(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.a", schema=SCHEMA)
    table.append(rows(0, 2))
    rest_catalog.create_namespace((ns, "sub"))
    renamed = rest_catalog.rename_table(f"{ns}.a", (ns, "sub", "b"))
    assert renamed.metadata.table_uuid == table.metadata.table_uuid
    assert not rest_catalog.table_exists(f"{ns}.a")
    assert rest_catalog.load_table((ns, "sub", "b")).scan().to_arrow().num_rows == 2
    with pytest.raises(NoSuchTableError):
        rest_catalog.load_table(f"{ns}.a")
    files = data_files(renamed)
    rest_catalog.drop_table((ns, "sub", "b"))
    assert not rest_catalog.table_exists((ns, "sub", "b"))
    # A plain drop keeps the files.
    assert all(local_path(f).exists() for f in files)
    with pytest.raises(NoSuchTableError):
        rest_catalog.drop_table((ns, "sub", "b"))


def test_purge_table_deletes_files(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.gone", schema=SCHEMA)
    table.append(rows(0, 3))
    table.append(rows(3, 3))
    table = rest_catalog.load_table(f"{ns}.gone")
    files = data_files(table)
    manifest_lists = [s.manifest_list for s in table.metadata.snapshots]
    manifests = [m.manifest_path for s in table.metadata.snapshots for m in s.manifests(table.io)]
    metadata_location = table.metadata_location
    assert files and manifests and manifest_lists
    rest_catalog.purge_table(f"{ns}.gone")
    assert not rest_catalog.table_exists(f"{ns}.gone")
    for path in (*files, *manifests, *manifest_lists, metadata_location):
        assert not local_path(path).exists(), path
    assert not [p for p in files_under(table.location()) if p.suffix in (".parquet", ".avro", ".json")]


def test_register_existing_metadata(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.src", schema=SCHEMA)
    table.append(rows(0, 5))
    table = rest_catalog.load_table(f"{ns}.src")
    metadata_location = table.metadata_location
    rest_catalog.drop_table(f"{ns}.src")
    registered = rest_catalog.register_table(f"{ns}.back", metadata_location)
    assert registered.metadata_location == metadata_location
    assert registered.scan().to_arrow().num_rows == 5
    with pytest.raises(TableAlreadyExistsError):
        rest_catalog.register_table(f"{ns}.back", metadata_location)
    # The registered table accepts commits.
    registered.append(rows(5, 1))
    assert rest_catalog.load_table(f"{ns}.back").scan().to_arrow().num_rows == 6


def test_snapshot_management_and_expiry(rest_catalog: RestCatalog, ns: str) -> None:
    table = rest_catalog.create_table(f"{ns}.snaps", schema=SCHEMA)
    for start in range(0, 9, 3):
        table.append(rows(start, 3))
    table = rest_catalog.load_table(f"{ns}.snaps")
    snapshots = [s.snapshot_id for s in table.metadata.snapshots]
    assert len(snapshots) == 3
    table.manage_snapshots().create_tag(snapshots[1], "v2").create_branch(snapshots[0], "dev").commit()
    table = rest_catalog.load_table(f"{ns}.snaps")
    assert table.metadata.refs["v2"].snapshot_id == snapshots[1]
    assert table.scan(snapshot_id=snapshots[0]).to_arrow().num_rows == 3
    table.manage_snapshots().remove_tag("v2").remove_branch("dev").commit()

    maintenance: Any = table.maintenance
    maintenance.expire_snapshots().by_id(snapshots[0]).commit()
    table = rest_catalog.load_table(f"{ns}.snaps")
    assert [s.snapshot_id for s in table.metadata.snapshots] == snapshots[1:]
    assert table.scan().to_arrow().num_rows == 9
    assert set(table.metadata.refs) == {"main"}
