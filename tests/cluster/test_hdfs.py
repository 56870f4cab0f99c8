"""Simulated HDFS: EMR replication defaults, placement, decommission rules, data loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import DataLossError, DecommissionRefusedError, HdfsError
from cluster.events import EntityKind, EventLog
from cluster.hdfs import Hdfs, default_replication
from tests.cluster.fakes import FakeClock

GB = 1000**3


def make_hdfs(
    tmp_path: Path, nodes: int, replication: int, capacity: int = GB, block_size: int = 1024
) -> tuple[Hdfs, EventLog]:
    events = EventLog()
    hdfs = Hdfs("j-1", tmp_path, replication=replication, clock=FakeClock(), events=events, block_size=block_size)
    for i in range(nodes):
        hdfs.add_datanode(f"i-{i}", capacity)
    return hdfs, events


@pytest.mark.parametrize(
    ("core", "replication"), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (9, 2), (10, 3), (11, 3), (50, 3)]
)
def test_default_replication_per_core_count(core: int, replication: int) -> None:
    assert default_replication(core) == replication


def test_replicas_go_to_distinct_core_nodes_as_files_in_their_directories(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=4, replication=2)
    data = bytes(range(256)) * 10  # 2560 bytes: 3 blocks of <= 1024
    hdfs.write("hdfs:///data/part-0", data)
    status = hdfs.status("/data/part-0")
    blocks = status["blocks"]
    assert isinstance(blocks, list) and len(blocks) == 3
    for block in blocks:
        assert isinstance(block, dict)
        replicas = block["replicas"]
        assert isinstance(replicas, list) and len(set(replicas)) == 2
        for node in replicas:
            assert (tmp_path / "nodes" / str(node) / "dfs" / str(block["id"])).is_file()
    assert hdfs.read("hdfs://namenode/data/part-0") == data
    assert hdfs.capacity()["used"] == 2 * len(data)
    assert (tmp_path / "hdfs" / "namespace.json").is_file()


def test_placement_balances_usage(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=3, replication=1)
    for i in range(6):
        hdfs.write(f"/f{i}", b"x" * 100)
    used = [hdfs.datanode(f"i-{i}").used_bytes for i in range(3)]
    assert used == [200, 200, 200]


def test_losing_the_only_replica_loses_the_file_and_read_names_it(tmp_path: Path) -> None:
    hdfs, events = make_hdfs(tmp_path, nodes=2, replication=1)
    hdfs.write("/a", b"a" * 10)
    hdfs.write("/b", b"b" * 10)
    victim = hdfs.status("/a")["blocks"][0]["replicas"][0]  # type: ignore[index]
    survivor = hdfs.status("/b")["blocks"][0]["replicas"][0]  # type: ignore[index]
    assert victim != survivor
    result = hdfs.lose_node(str(victim))
    assert result.lost_paths == ("hdfs:///a",)
    assert hdfs.lost_files() == ["hdfs:///a"]
    with pytest.raises(DataLossError) as info:
        hdfs.read("/a")
    assert info.value.paths == ["hdfs:///a"] and info.value.nodes == [victim]
    assert "hdfs:///a" in str(info.value)
    assert hdfs.read("/b") == b"b" * 10
    lost = events.query(kind=EntityKind.HDFS, dst="DATA_LOST")
    assert [e.entity_id for e in lost] == ["hdfs:///a"] and lost[0].details["node_id"] == victim
    assert not (tmp_path / "nodes" / str(victim) / "dfs").exists()


def test_with_two_replicas_a_loss_is_healed_from_the_survivor(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=4, replication=2)
    hdfs.write("/a", b"a" * 3000)
    holder = hdfs.status("/a")["blocks"][0]["replicas"][0]  # type: ignore[index]
    result = hdfs.lose_node(str(holder))
    assert result.lost_paths == () and result.rereplicated_blocks >= 1 and result.under_replicated_paths == ()
    for block in hdfs.status("/a")["blocks"]:  # type: ignore[union-attr]
        assert len(block["replicas"]) == 2 and holder not in block["replicas"]  # type: ignore[index, operator]
    assert hdfs.read("/a") == b"a" * 3000


def test_losing_both_replica_holders_loses_data(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=2, replication=2)
    hdfs.write("/a", b"a")
    hdfs.lose_node("i-0")
    assert hdfs.read("/a") == b"a"
    hdfs.lose_node("i-1")
    with pytest.raises(DataLossError):
        hdfs.read("/a")


def test_decommission_re_replicates_first(tmp_path: Path) -> None:
    hdfs, events = make_hdfs(tmp_path, nodes=3, replication=1)
    for i in range(6):
        hdfs.write(f"/f{i}", bytes([i]) * 50)
    result = hdfs.decommission("i-0")
    assert result.blocks_moved == 2 and result.bytes_moved == 100
    assert hdfs.live_nodes() == ["i-1", "i-2"]
    assert not hdfs.holds_data("i-0")
    for i in range(6):
        assert hdfs.read(f"/f{i}") == bytes([i]) * 50
    # Once decommissioned, a later loss of that node costs nothing.
    assert hdfs.lose_node("i-0").lost_paths == ()
    assert events.query(kind=EntityKind.HDFS, dst="DECOMMISSIONED")[0].details["blocks_moved"] == 2


def test_decommission_is_refused_below_replication(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=2, replication=2)
    hdfs.write("/a", b"a" * 10)
    with pytest.raises(DecommissionRefusedError) as info:
        hdfs.decommission("i-0")
    assert info.value.node_id == "i-0" and "below dfs.replication=2" in info.value.reason
    assert hdfs.live_nodes() == ["i-0", "i-1"] and hdfs.read("/a") == b"a" * 10


def test_decommission_is_refused_when_the_rest_cannot_hold_the_blocks(tmp_path: Path) -> None:
    hdfs, _ = make_hdfs(tmp_path, nodes=2, replication=1, capacity=1000)
    hdfs.write("/big-0", b"x" * 900)
    hdfs.write("/big-1", b"y" * 900)
    before = hdfs.status("/big-0")
    with pytest.raises(DecommissionRefusedError, match="capacity"):
        hdfs.decommission("i-0")
    assert hdfs.status("/big-0") == before and hdfs.live_nodes() == ["i-0", "i-1"]
    with pytest.raises(DecommissionRefusedError):
        hdfs.check_decommission("i-1")


def test_write_rules(tmp_path: Path) -> None:
    hdfs, events = make_hdfs(tmp_path, nodes=1, replication=2, capacity=100)
    hdfs.write("/a", b"a")
    assert events.query(dst="UNDER_REPLICATED")[0].entity_id == "hdfs:///a"
    with pytest.raises(HdfsError, match="exists"):
        hdfs.write("/a", b"b")
    hdfs.write("/a", b"b", overwrite=True)
    assert hdfs.read("/a") == b"b"
    with pytest.raises(HdfsError, match="bytes free"):
        hdfs.write("/huge", b"z" * 101)
    assert not hdfs.exists("/huge") and hdfs.capacity()["used"] == 1
    assert hdfs.ls("/") == ["hdfs:///a"]
    hdfs.delete("/a")
    assert hdfs.ls("/") == [] and hdfs.capacity()["used"] == 0
    hdfs.lose_node("i-0")
    with pytest.raises(HdfsError, match="no live DataNode"):
        hdfs.write("/b", b"b")


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/a/b", "hdfs:///a/b"),
        ("hdfs:///a//b/", "hdfs:///a/b"),
        ("hdfs://nn:8020/x", "hdfs:///x"),
        ("hdfs://nn", "hdfs:///"),
    ],
)
def test_paths_are_normalised(path: str, normal: str) -> None:
    assert Hdfs.normalize(path) == normal


@pytest.mark.parametrize("path", ["relative/x", "s3://bucket/x", "/a/../b"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(HdfsError):
        Hdfs.normalize(path)
