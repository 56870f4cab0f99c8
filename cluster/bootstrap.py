"""Bootstrap actions: scripts run on each node after it launches and before it takes work.

Every node runs the cluster's actions in order in its own directory; the first non-zero exit (or timeout)
fails the node, which is then terminated. A script learns about its node from environment variables
(``LAKEFORGE_NODE_ID``, ``LAKEFORGE_NODE_ROLE``, ...) and from ``instance.json`` in its directory, the
counterpart of EMR's ``/mnt/var/lib/info/instance.json`` (``isMaster``, ``instanceRole``, ...).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cluster.errors import BootstrapError

log = logging.getLogger(__name__)

#: Exit code reported for a script that ran past its timeout (as coreutils ``timeout`` does).
TIMEOUT_EXIT_CODE = 124


@dataclass(frozen=True)
class BootstrapAction:
    """One script and its arguments."""

    name: str
    path: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeContext:
    """The node a bootstrap action runs on."""

    cluster_id: str
    node_id: str
    role: str
    instance_type: str
    market: str
    node_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LAKEFORGE_CLUSTER_ID": self.cluster_id,
            "LAKEFORGE_NODE_ID": self.node_id,
            "LAKEFORGE_NODE_ROLE": self.role,
            "LAKEFORGE_INSTANCE_TYPE": self.instance_type,
            "LAKEFORGE_MARKET": self.market,
            "LAKEFORGE_NODE_DIR": str(self.node_dir),
            "LAKEFORGE_INSTANCE_INFO": str(self.node_dir / "instance.json"),
            **self.extra_env,
        }


#: Runs one action on one node and returns its exit code (a fake in tests, :func:`run_script` for real).
BootstrapRunner = Callable[[BootstrapAction, NodeContext, float], int]


def _command(path: Path, args: Sequence[str]) -> list[str]:
    if os.access(path, os.X_OK):
        return [str(path), *args]
    if path.suffix == ".py":
        return [sys.executable, str(path), *args]
    return ["bash", str(path), *args]


def run_script(action: BootstrapAction, node: NodeContext, timeout: float) -> int:
    """Run the action as a subprocess in the node's directory; output goes to ``bootstrap/<name>.log`` there."""
    log_dir = node.node_dir / "bootstrap"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{action.name}.log"
    with log_path.open("w") as out:
        try:
            proc = subprocess.run(
                _command(Path(action.path), action.args),
                cwd=node.node_dir,
                env=node.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return TIMEOUT_EXIT_CODE
    return proc.returncode


def write_instance_info(node: NodeContext) -> Path:
    """Write ``instance.json`` (EMR's instance info) into the node's directory."""
    node.node_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "isMaster": node.role == "MASTER",
        "isRunningNameNode": node.role == "MASTER",
        "isRunningDataNode": node.role == "CORE",
        "isRunningResourceManager": node.role == "MASTER",
        "instanceRole": node.role.lower(),
        "instanceType": node.instance_type,
        "market": node.market,
        "nodeId": node.node_id,
        "jobFlowId": node.cluster_id,
    }
    path = node.node_dir / "instance.json"
    path.write_text(json.dumps(info, indent=1), encoding="utf-8")
    return path


def run_bootstrap_actions(
    actions: Sequence[BootstrapAction], node: NodeContext, *, runner: BootstrapRunner, timeout: float
) -> None:
    """Run every action in order on ``node``.

    Raises:
        BootstrapError: The first action that exits non-zero, times out or cannot start.
    """
    write_instance_info(node)
    for action in actions:
        try:
            code = runner(action, node, timeout)
        except OSError as exc:
            raise BootstrapError(node.node_id, action.name, f"could not run {action.path}: {exc}") from exc
        if code == TIMEOUT_EXIT_CODE:
            raise BootstrapError(node.node_id, action.name, f"timed out after {timeout:g}s (exit {code})")
        if code != 0:
            raise BootstrapError(node.node_id, action.name, f"exit code {code}")
        log.info("cluster %s node %s: bootstrap action %s done", node.cluster_id, node.node_id, action.name)
