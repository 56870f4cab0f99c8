"""``catalog.client.LakeClient`` against a real catalog server (the session's uvicorn server)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from catalog import errors
from catalog.client import LakeClient
from catalog.datasets import DatasetColumn, DatasetDefinition, PartitionInput
from catalog.server import CatalogServer
from tests.conftest import make_settings


def events_definition(**overrides: object) -> DatasetDefinition:
    fields: dict[str, object] = {
        "format": "csv",
        "location": "s3://landing/events",
        "columns": [DatasetColumn(name="id", type="bigint"), DatasetColumn(name="v", type="string", comment="value")],
        "partition-keys": [DatasetColumn(name="dt", type="string"), DatasetColumn(name="hour", type="int")],
        "properties": {"classification": "csv", "delimiter": ",", "withHeader": "true"},
    }
    fields.update(overrides)
    return DatasetDefinition.model_validate(fields)


@pytest.fixture
def lake(server: CatalogServer, unique_ns: str) -> Iterator[LakeClient]:
    with LakeClient(server.uri) as client:
        client.create_namespace(unique_ns)
        yield client


def test_dataset_lifecycle(lake: LakeClient, unique_ns: str) -> None:
    created = lake.put_dataset(unique_ns, "events", events_definition())
    assert (created.created, created.changed, created.dataset.version) == (True, True, 1)
    assert created.dataset.namespace == (unique_ns,)
    assert created.dataset.definition.partition_keys[1].type == "int"

    again = lake.put_dataset(
        unique_ns,
        "events",
        events_definition(
            columns=[{"name": "id", "type": "LONG"}, {"name": "v", "type": "string", "comment": "value"}]
        ),
    )
    assert (again.created, again.changed, again.dataset.version) == (False, False, 1)

    changed = lake.put_dataset(unique_ns, "events", events_definition(properties={"classification": "csv"}))
    assert (changed.created, changed.changed, changed.dataset.version) == (False, True, 2)

    got = lake.get_dataset(unique_ns, "events")
    assert got == changed.dataset
    assert got.definition.properties == {"classification": "csv"}
    assert lake.dataset_exists(unique_ns, "events") and not lake.dataset_exists(unique_ns, "nope")

    versions = lake.list_versions(unique_ns, "events")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].definition.properties["delimiter"] == ","
    assert lake.get_version(unique_ns, "events", 1) == versions[0]

    lake.create_dataset(unique_ns, "clicks", events_definition(format="parquet"))
    assert [d.name for d in lake.list_datasets(unique_ns)] == ["clicks", "events"]
    assert [d.name for d in lake.iter_datasets(unique_ns, page_size=1)] == ["clicks", "events"]

    lake.drop_dataset(unique_ns, "clicks")
    assert [d.name for d in lake.list_datasets(unique_ns)] == ["events"]


def test_errors_come_back_as_domain_errors(lake: LakeClient, unique_ns: str) -> None:
    lake.create_dataset(unique_ns, "events", events_definition())
    with pytest.raises(errors.AlreadyExistsError) as exists:
        lake.create_dataset(unique_ns, "events", events_definition())
    assert exists.value.status == 409 and "already exists" in exists.value.message
    with pytest.raises(errors.NoSuchDatasetError):
        lake.get_dataset(unique_ns, "missing")
    with pytest.raises(errors.NoSuchDatasetError):
        lake.drop_dataset(unique_ns, "missing")
    with pytest.raises(errors.NoSuchNamespaceError):
        lake.list_datasets(unique_ns + "_missing")
    with pytest.raises(errors.NotFoundError):
        lake.get_version(unique_ns, "events", 99)
    with pytest.raises(errors.ValidationFailedError) as bad_type:
        lake.put_dataset(unique_ns, "x", events_definition(columns=[{"name": "id", "type": "bigint<"}]))
    assert bad_type.value.status == 400
    with pytest.raises(errors.ValidationFailedError):
        lake.create_dataset(unique_ns, "a.b", events_definition())
    with pytest.raises(errors.ValidationFailedError):
        lake.get_dataset(unique_ns, "a/b")
    with pytest.raises(errors.ValidationFailedError) as predicate:
        lake.list_partitions(unique_ns, "events", "hour >")
    assert "Malformed predicate" in predicate.value.message
    with pytest.raises(errors.ValidationFailedError) as unknown:
        lake.list_partitions(unique_ns, "events", "id = 1")
    assert "Unknown column 'id'" in unknown.value.message
    with pytest.raises(errors.AlreadyExistsError):
        lake.create_namespace(unique_ns)
    lake.create_namespace(unique_ns, exist_ok=True)
    assert [d.name for d in lake.list_datasets(unique_ns)] == ["events"]


def test_partitions_with_a_predicate(lake: LakeClient, unique_ns: str) -> None:
    lake.put_dataset(unique_ns, "events", events_definition())
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    partitions = [([d, h], f"s3://landing/events/dt={d}/hour={h:02d}") for d, h in itertools.product(days, range(12))]
    first = lake.add_partitions(unique_ns, "events", partitions)
    assert len(first.added) == 36 and first.existing == [] and first.replaced == []

    again = lake.add_partitions(
        unique_ns,
        "events",
        [
            (["2024-01-01", "00"], "s3://landing/events/dt=2024-01-01/hour=00"),
            PartitionInput(values=["2024-01-04", 0], location="s3://landing/x", parameters={"numRows": "3"}),
        ],
    )
    assert again.added == [["2024-01-04", "0"]] and again.existing == [["2024-01-01", "0"]]

    matched = lake.list_partitions(unique_ns, "events", "dt >= '2024-01-02' and hour = 3")
    assert sorted(p.values for p in matched) == [["2024-01-02", "3"], ["2024-01-03", "3"]]
    assert {p.location for p in matched} == {
        "s3://landing/events/dt=2024-01-02/hour=03",
        "s3://landing/events/dt=2024-01-03/hour=03",
    }
    paged = list(lake.iter_partitions(unique_ns, "events", "hour >= 10 or dt = '2024-01-04'", page_size=2))
    assert len(paged) == 7 and len({tuple(p.values) for p in paged}) == 7
    (extra,) = lake.list_partitions(unique_ns, "events", "dt = '2024-01-04'")
    assert extra.parameters == {"numRows": "3"}
    assert len(lake.list_partitions(unique_ns, "events")) == 37

    with pytest.raises(errors.AlreadyExistsError):
        lake.add_partitions(unique_ns, "events", [(["2024-01-04", 0], "s3://landing/elsewhere")])
    moved = lake.add_partitions(unique_ns, "events", [(["2024-01-04", 0], "s3://landing/elsewhere")], replace=True)
    assert moved.replaced == [["2024-01-04", "0"]]

    result = lake.delete_partitions(unique_ns, "events", [["2024-01-04", 0], ["2024-01-09", 1]])
    assert result.deleted == [["2024-01-04", "0"]] and result.missing == [["2024-01-09", "1"]]
    assert lake.list_partitions(unique_ns, "events", "dt = '2024-01-04'") == []

    with pytest.raises(errors.ValidationFailedError):
        lake.add_partitions(unique_ns, "events", [(["2024-01-05"], "s3://landing/x")])


def test_many_partitions_are_sent_in_batches(lake: LakeClient, unique_ns: str) -> None:
    lake.put_dataset(unique_ns, "big", events_definition())
    partitions = [([f"2024-{m:02d}-01", h], f"s3://landing/big/{m}/{h}") for m in range(1, 13) for h in range(200)]
    result = lake.add_partitions(unique_ns, "big", partitions)
    assert len(result.added) == 2400
    assert len(lake.add_partitions(unique_ns, "big", partitions).existing) == 2400
    assert len(list(lake.iter_partitions(unique_ns, "big", page_size=1000))) == 2400
    pruned = lake.list_partitions(unique_ns, "big", "dt = '2024-06-01' and hour between 10 and 19")
    assert sorted(int(str(p.values[1])) for p in pruned) == list(range(10, 20))


def test_audit_through_the_client(lake: LakeClient, unique_ns: str) -> None:
    lake.put_dataset(unique_ns, "events", events_definition())
    lake.put_dataset(unique_ns, "events", events_definition(description="raw events"))
    lake.add_partitions(unique_ns, "events", [(["2024-01-01", 1], "s3://landing/e/1")])
    lake.delete_partitions(unique_ns, "events", [["2024-01-01", 1]])
    lake.drop_dataset(unique_ns, "events")

    log = list(lake.audit(namespace=unique_ns, page_size=2))
    assert [e.action for e in log] == [
        "create-namespace",
        "create-dataset",
        "update-dataset",
        "add-partitions",
        "delete-partitions",
        "drop-dataset",
    ]
    assert all(e.namespace == [unique_ns] and e.principal == "anonymous" for e in log)
    assert log[2].detail is not None and log[2].detail["changed"] == ["description"]
    page = lake.audit_page(namespace=[unique_ns], name="events", limit=3)
    assert [e.action for e in page.entries] == ["create-dataset", "update-dataset", "add-partitions"]
    assert page.next_after_id == page.entries[-1].id
    rest = lake.audit_page(namespace=unique_ns, name="events", after_id=page.next_after_id)
    assert [e.action for e in rest.entries] == ["delete-partitions", "drop-dataset"] and rest.next_after_id is None
    assert [e.id for e in lake.audit(action="drop-dataset", namespace=unique_ns)] == [log[-1].id]
    with pytest.raises(errors.BadRequestError):
        lake.audit_page(limit=5000)


@pytest.fixture(scope="module")
def authed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogServer]:
    home: Path = tmp_path_factory.mktemp("authed-lake")
    with CatalogServer(make_settings(home, client_id="crawler", client_secret="s3cret")) as srv:
        yield srv


def test_token_and_principal(authed_server: CatalogServer, unique_ns: str) -> None:
    with LakeClient(authed_server.uri) as anonymous, pytest.raises(errors.NotAuthorizedError):
        anonymous.list_datasets(unique_ns)
    token = httpx.post(
        f"{authed_server.uri}/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": "crawler", "client_secret": "s3cret"},
    ).json()["access_token"]
    with LakeClient(authed_server.uri, token=token) as lake:
        lake.create_namespace(unique_ns)
        lake.create_dataset(unique_ns, "events", events_definition())
        (entry,) = lake.audit(action="create-dataset", namespace=unique_ns)
        assert entry.principal == "crawler" and entry.name == "events"
        assert lake.list_versions(unique_ns, "events")[0].principal == "crawler"


def test_concurrent_writers_keep_versions_and_partitions_consistent(server: CatalogServer, unique_ns: str) -> None:
    with LakeClient(server.uri) as setup:
        setup.create_namespace(unique_ns)
        setup.put_dataset(unique_ns, "events", events_definition())

    def writer(n: int) -> tuple[int, int]:
        changed = added = 0
        with LakeClient(server.uri) as lake:
            for i in range(5):
                result = lake.put_dataset(unique_ns, "events", events_definition(description=f"writer {n} run {i}"))
                changed += result.changed
                # Overlapping partitions: every writer adds hours 0..9 of the same day, plus its own.
                batch = [(["2024-01-01", h], f"s3://landing/e/{h}") for h in range(10)]
                batch.append(([f"2024-02-0{n + 1}", i], f"s3://landing/e/{n}/{i}"))
                added += len(lake.add_partitions(unique_ns, "events", batch).added)
        return changed, added

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(writer, range(4)))

    with LakeClient(server.uri) as lake:
        versions = [v.version for v in lake.list_versions(unique_ns, "events")]
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) == 1 + sum(changed for changed, _ in results)
        assert lake.get_dataset(unique_ns, "events").version == versions[-1]
        partitions = lake.list_partitions(unique_ns, "events")
        assert len(partitions) == 10 + 4 * 5 == sum(added for _, added in results)
