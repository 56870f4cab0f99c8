"""The HDFS role of core nodes: an ``hdfs://`` namespace whose blocks live as files in each core node's directory.

The NameNode (this object, on the master) keeps the namespace and where each block's replicas are; a DataNode
is a core node's directory ``<root>/nodes/<node_id>/dfs/``. Rules follow EMR:

* ``dfs.replication`` defaults to 1 for 1-3 core nodes, 2 for 4-9 and 3 for 10 or more
  (:func:`default_replication`); replicas of a block go to distinct core nodes, least-used first.
* Decommissioning a core node first re-replicates its blocks onto the others; it is refused when fewer core
  nodes than ``dfs.replication`` would remain or their free space cannot hold the blocks.
* Losing a core node abruptly (Spot reclaim, instance failure) drops its replicas; a block whose only replica
  was there is lost, and so is every file it belongs to: :meth:`Hdfs.read` then raises
  :class:`~cluster.errors.DataLossError` naming the files. Under-replicated blocks that survive are copied again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from cluster.errors import DataLossError, DecommissionRefusedError, HdfsError
from cluster.events import EntityKind, EventLog, JsonValue

log = logging.getLogger(__name__)

#: HDFS default block size (dfs.blocksize).
DEFAULT_BLOCK_SIZE = 128 * 1024 * 1024


def default_replication(core_nodes: int) -> int:
    """EMR's default ``dfs.replication`` for a cluster launched with ``core_nodes`` core nodes."""
    if core_nodes >= 10:
        return 3
    if core_nodes >= 4:
        return 2
    return 1


class DataNodeState(StrEnum):
    LIVE = "LIVE"
    DECOMMISSIONED = "DECOMMISSIONED"
    DEAD = "DEAD"


@dataclass
class DataNode:
    node_id: str
    capacity_bytes: int
    directory: Path
    used_bytes: int = 0
    state: DataNodeState = DataNodeState.LIVE

    @property
    def free_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes


@dataclass
class Block:
    block_id: str
    size: int
    replicas: set[str] = field(default_factory=set)


@dataclass
class HdfsFile:
    path: str
    size: int
    blocks: list[Block]
    created_at: float
    lost: bool = False
    lost_on: list[str] = field(default_factory=list)

    @property
    def min_replicas(self) -> int:
        return min((len(b.replicas) for b in self.blocks), default=0)


@dataclass(frozen=True)
class DecommissionResult:
    """What a graceful decommission moved."""

    node_id: str
    blocks_moved: int
    bytes_moved: int


@dataclass(frozen=True)
class LossResult:
    """What losing a node cost."""

    node_id: str
    lost_paths: tuple[str, ...]
    rereplicated_blocks: int
    under_replicated_paths: tuple[str, ...]


class Hdfs:
    """The simulated HDFS of one cluster (thread-safe).

    Args:
        cluster_id: For events and logs.
        root: The cluster directory (DataNodes live in ``<root>/nodes/<node_id>/dfs``).
        replication: ``dfs.replication``.
        clock: Current time for events.
        events: The cluster's timeline (optional).
        block_size: Block size in bytes.
    """

    def __init__(
        self,
        cluster_id: str,
        root: Path,
        *,
        replication: int,
        clock: Callable[[], float],
        events: EventLog | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        if replication < 1:
            raise ValueError("replication must be >= 1")
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.cluster_id = cluster_id
        self.root = root
        self.replication = replication
        self.clock = clock
        self.events = events
        self.block_size = block_size
        self._nodes: dict[str, DataNode] = {}
        self._files: dict[str, HdfsFile] = {}
        self._lock = threading.RLock()

    # -- paths ---------------------------------------------------------------------------------------------

    @staticmethod
    def normalize(path: str) -> str:
        """``hdfs:///a/b``, ``hdfs://namenode/a/b`` and ``/a/b`` all become ``hdfs:///a/b``.

        Raises:
            HdfsError: Relative paths, other schemes, or ``..`` components.
        """
        rest = path
        if path.startswith("hdfs://"):
            rest = path[len("hdfs://") :]
            if not rest.startswith("/"):
                slash = rest.find("/")
                rest = rest[slash:] if slash >= 0 else "/"
        elif "://" in path:
            raise HdfsError(f"not an hdfs:// path: {path}")
        if not rest.startswith("/"):
            raise HdfsError(f"HDFS paths are absolute: {path}")
        parts = PurePosixPath(rest).parts
        if ".." in parts:
            raise HdfsError(f"'..' is not allowed in HDFS paths: {path}")
        return "hdfs://" + str(PurePosixPath(*parts))

    def _dir(self, node_id: str) -> Path:
        return self.root / "nodes" / node_id / "dfs"

    # -- DataNodes -----------------------------------------------------------------------------------------

    def add_datanode(self, node_id: str, capacity_bytes: int) -> None:
        """A core node joined: its DataNode is live with ``capacity_bytes`` of storage."""
        with self._lock:
            directory = self._dir(node_id)
            directory.mkdir(parents=True, exist_ok=True)
            self._nodes[node_id] = DataNode(node_id, capacity_bytes, directory)
            log.info("cluster %s HDFS: DataNode %s live (%d bytes)", self.cluster_id, node_id, capacity_bytes)

    def live_nodes(self) -> list[str]:
        with self._lock:
            return sorted(n.node_id for n in self._nodes.values() if n.state == DataNodeState.LIVE)

    def datanode(self, node_id: str) -> DataNode:
        with self._lock:
            try:
                return self._nodes[node_id]
            except KeyError:
                raise HdfsError(f"{node_id} is not a DataNode") from None

    def holds_data(self, node_id: str) -> bool:
        """Whether any block has a replica on ``node_id``."""
        with self._lock:
            return any(node_id in b.replicas for f in self._files.values() for b in f.blocks)

    def capacity(self) -> dict[str, int]:
        """Raw and effective (raw / replication) capacity of the live DataNodes, in bytes."""
        with self._lock:
            live = [n for n in self._nodes.values() if n.state == DataNodeState.LIVE]
            raw = sum(n.capacity_bytes for n in live)
            used = sum(n.used_bytes for n in live)
            return {"raw": raw, "used": used, "remaining": raw - used, "effective": raw // self.replication}

    # -- files ---------------------------------------------------------------------------------------------

    def _targets(self, count: int, size: int, exclude: set[str]) -> list[DataNode]:
        live = [
            n
            for n in self._nodes.values()
            if n.state == DataNodeState.LIVE and n.node_id not in exclude and n.free_bytes >= size
        ]
        live.sort(key=lambda n: (n.used_bytes, n.node_id))
        return live[:count]

    def write(self, path: str, data: bytes, *, overwrite: bool = False) -> HdfsFile:
        """Store ``data`` at ``path`` with ``dfs.replication`` replicas of each block on distinct core nodes.

        With fewer live DataNodes than the replication, blocks are written under-replicated (HDFS's
        ``dfs.namenode.replication.min`` is 1).

        Raises:
            HdfsError: The file exists (without ``overwrite``), no DataNode is live, or there is no space.
        """
        key = self.normalize(path)
        with self._lock:
            if key in self._files and not overwrite:
                raise HdfsError(f"{key} exists")
            if not self.live_nodes():
                raise HdfsError(f"cannot write {key}: no live DataNode")
            if key in self._files:
                self._drop(self._files.pop(key))
            blocks: list[Block] = []
            chunks = [data[i : i + self.block_size] for i in range(0, len(data), self.block_size)] or [b""]
            try:
                for chunk in chunks:
                    block = Block(f"blk_{uuid.uuid4().hex[:16]}", len(chunk))
                    targets = self._targets(self.replication, len(chunk), set())
                    if not targets:
                        raise HdfsError(f"cannot write {key}: no DataNode has {len(chunk)} bytes free")
                    for node in targets:
                        (node.directory / block.block_id).write_bytes(chunk)
                        node.used_bytes += len(chunk)
                        block.replicas.add(node.node_id)
                    blocks.append(block)
            except HdfsError:
                self._drop(HdfsFile(key, 0, blocks, 0.0))
                raise
            file = HdfsFile(key, len(data), blocks, self.clock())
            self._files[key] = file
            if file.min_replicas < self.replication:
                self._event(key, "UNDER_REPLICATED", "written with fewer replicas than dfs.replication", file)
            self._persist()
            return file

    def read(self, path: str) -> bytes:
        """The file's bytes, read from live replicas.

        Raises:
            HdfsError: No such file.
            DataLossError: A block of the file has no live replica left.
        """
        key = self.normalize(path)
        with self._lock:
            file = self._files.get(key)
            if file is None:
                raise HdfsError(f"no such file: {key}")
            if file.lost or any(not b.replicas for b in file.blocks):
                raise DataLossError([key], file.lost_on)
            out = bytearray()
            for block in file.blocks:
                out += (self._nodes[sorted(block.replicas)[0]].directory / block.block_id).read_bytes()
            return bytes(out)

    def exists(self, path: str) -> bool:
        with self._lock:
            return self.normalize(path) in self._files

    def ls(self, prefix: str = "/") -> list[str]:
        """Files under ``prefix`` (a directory), sorted."""
        base = self.normalize(prefix).rstrip("/") + "/"
        with self._lock:
            return sorted(p for p in self._files if p.startswith(base) or p == base.rstrip("/"))

    def status(self, path: str) -> dict[str, JsonValue]:
        key = self.normalize(path)
        with self._lock:
            file = self._files.get(key)
            if file is None:
                raise HdfsError(f"no such file: {key}")
            return self._describe(file)

    def delete(self, path: str) -> None:
        key = self.normalize(path)
        with self._lock:
            file = self._files.pop(key, None)
            if file is None:
                raise HdfsError(f"no such file: {key}")
            self._drop(file)
            self._persist()

    def lost_files(self) -> list[str]:
        with self._lock:
            return sorted(p for p, f in self._files.items() if f.lost)

    # -- node departures -----------------------------------------------------------------------------------

    def check_decommission(self, node_id: str) -> None:
        """Raise :class:`DecommissionRefusedError` if ``node_id`` cannot leave gracefully now."""
        with self._lock:
            self._plan_decommission(node_id)

    def _plan_decommission(self, node_id: str) -> list[tuple[Block, str, str]]:
        node = self._nodes.get(node_id)
        if node is None or node.state != DataNodeState.LIVE:
            raise DecommissionRefusedError(node_id, "not a live DataNode")
        remaining = [n for n in self._nodes.values() if n.state == DataNodeState.LIVE and n.node_id != node_id]
        if len(remaining) < self.replication:
            raise DecommissionRefusedError(
                node_id,
                f"{len(remaining)} core node(s) would remain, below dfs.replication={self.replication}",
            )
        free = {n.node_id: n.free_bytes for n in remaining}
        moves: list[tuple[Block, str, str]] = []
        for file in self._files.values():
            for block in file.blocks:
                if node_id not in block.replicas:
                    continue
                source = node_id
                others = block.replicas - {node_id}
                if len(others) >= self.replication:
                    continue
                candidates = sorted(
                    (nid for nid in free if nid not in others and free[nid] >= block.size),
                    key=lambda nid: (-free[nid], nid),
                )
                if not candidates:
                    raise DecommissionRefusedError(
                        node_id, f"remaining HDFS capacity cannot hold its blocks ({file.path})"
                    )
                free[candidates[0]] -= block.size
                moves.append((block, source, candidates[0]))
        return moves

    def decommission(self, node_id: str) -> DecommissionResult:
        """Re-replicate the node's blocks elsewhere, then retire its DataNode.

        Raises:
            DecommissionRefusedError: Fewer than ``dfs.replication`` core nodes would remain, or the others
                lack the space for its blocks. Nothing is changed then.
        """
        with self._lock:
            moves = self._plan_decommission(node_id)
            node = self._nodes[node_id]
            moved_bytes = 0
            for block, source, target in moves:
                dest = self._nodes[target]
                shutil.copyfile(self._nodes[source].directory / block.block_id, dest.directory / block.block_id)
                dest.used_bytes += block.size
                block.replicas.add(target)
                moved_bytes += block.size
            for file in self._files.values():
                for block in file.blocks:
                    block.replicas.discard(node_id)
            node.state = DataNodeState.DECOMMISSIONED
            node.used_bytes = 0
            shutil.rmtree(node.directory, ignore_errors=True)
            result = DecommissionResult(node_id, len(moves), moved_bytes)
            if self.events is not None:
                self.events.record(
                    EntityKind.HDFS,
                    node_id,
                    "DECOMMISSIONED",
                    f"re-replicated {len(moves)} block(s) before leaving",
                    time=self.clock(),
                    details={"blocks_moved": len(moves), "bytes_moved": moved_bytes},
                )
            log.info(
                "cluster %s HDFS: DataNode %s decommissioned, %d block(s) re-replicated",
                self.cluster_id,
                node_id,
                len(moves),
            )
            self._persist()
            return result

    def lose_node(self, node_id: str) -> LossResult:
        """The node died: drop its replicas, mark files whose blocks have none left as lost, heal the rest."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None or node.state != DataNodeState.LIVE:
                return LossResult(node_id, (), 0, ())
            node.state = DataNodeState.DEAD
            node.used_bytes = 0
            lost: list[str] = []
            under: list[str] = []
            healed = 0
            touched = [f for f in self._files.values() if any(node_id in b.replicas for b in f.blocks)]
            for file in touched:
                for block in file.blocks:
                    block.replicas.discard(node_id)
                if any(not b.replicas for b in file.blocks):
                    if not file.lost:
                        file.lost = True
                        lost.append(file.path)
                    file.lost_on.append(node_id)
                    continue
                for block in file.blocks:
                    while len(block.replicas) < self.replication:
                        targets = self._targets(1, block.size, block.replicas)
                        if not targets:
                            break
                        source = self._nodes[sorted(block.replicas)[0]]
                        shutil.copyfile(source.directory / block.block_id, targets[0].directory / block.block_id)
                        targets[0].used_bytes += block.size
                        block.replicas.add(targets[0].node_id)
                        healed += 1
                if file.min_replicas < self.replication:
                    under.append(file.path)
            shutil.rmtree(node.directory, ignore_errors=True)
            for path in lost:
                self._event(path, "DATA_LOST", f"every replica of a block was on {node_id}", self._files[path], node_id)
                log.error("cluster %s HDFS: %s lost with core node %s", self.cluster_id, path, node_id)
            if self.events is not None:
                self.events.record(
                    EntityKind.HDFS,
                    node_id,
                    "DATANODE_LOST",
                    f"{len(lost)} file(s) lost, {healed} block replica(s) re-created",
                    time=self.clock(),
                    details={"lost_paths": list(lost), "under_replicated": list(under), "rereplicated": healed},
                )
            self._persist()
            return LossResult(node_id, tuple(lost), healed, tuple(under))

    # -- internals -----------------------------------------------------------------------------------------

    def _drop(self, file: HdfsFile) -> None:
        for block in file.blocks:
            for nid in block.replicas:
                node = self._nodes.get(nid)
                if node is not None:
                    (node.directory / block.block_id).unlink(missing_ok=True)
                    node.used_bytes -= block.size

    def _describe(self, file: HdfsFile) -> dict[str, JsonValue]:
        lost_on: list[JsonValue] = list(file.lost_on)
        blocks: list[JsonValue] = []
        for b in file.blocks:
            replicas: list[JsonValue] = []
            replicas.extend(sorted(b.replicas))
            blocks.append({"id": b.block_id, "size": b.size, "replicas": replicas})
        return {"path": file.path, "size": file.size, "lost": file.lost, "lost_on": lost_on, "blocks": blocks}

    def _event(self, path: str, what: str, reason: str, file: HdfsFile, node_id: str | None = None) -> None:
        if self.events is None:
            return
        details = self._describe(file)
        if node_id is not None:
            details["node_id"] = node_id
        self.events.record(EntityKind.HDFS, path, what, reason, time=self.clock(), details=details)

    def _persist(self) -> None:
        """Write the NameNode image (namespace + block map) to ``<root>/hdfs/namespace.json``."""
        image = {
            "replication": self.replication,
            "datanodes": {
                n.node_id: {"state": n.state.value, "capacity": n.capacity_bytes, "used": n.used_bytes}
                for n in self._nodes.values()
            },
            "files": {p: self._describe(f) for p, f in sorted(self._files.items())},
        }
        target = self.root / "hdfs" / "namespace.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(image, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
