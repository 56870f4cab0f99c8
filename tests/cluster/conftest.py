"""Fixtures for control-plane tests: configs as dicts, and clusters on a fake provider and clock."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster.api import Cluster, InlineExecutor
from cluster.bootstrap import BootstrapAction, NodeContext
from cluster.config import parse_config
from tests.cluster.fakes import FakeClock, FakeNodeProvider

BASE: dict[str, Any] = {
    "name": "test",
    "release": "emr-7.2.0",
    "applications": ["Hadoop", "Spark"],
    "instance_groups": {
        "master": {"instance_type": "m5.xlarge", "count": 1},
        "core": {"instance_type": "m5.xlarge", "count": 2},
        "task": [{"name": "spot-task", "instance_type": "m5.xlarge", "count": 2, "market": "SPOT"}],
    },
}


def config_dict(**overrides: Any) -> dict[str, Any]:
    """The base config with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(overrides)
    return data


class BootstrapRecorder:
    """A bootstrap runner that fails for chosen nodes (by role or id) and records every run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []
        self.fail: Callable[[NodeContext], bool] = lambda _ctx: False

    def __call__(self, action: BootstrapAction, node: NodeContext, timeout: float) -> int:
        self.runs.append((node.node_id, action.name))
        return 1 if self.fail(node) else 0


class Env:
    """One test's cluster world: clock, provider, bootstrap runner, and a factory of clusters."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.clock = FakeClock()
        self.provider = FakeNodeProvider()
        self.bootstrap = BootstrapRecorder()
        self._ids = itertools.count(1)

    def cluster(self, data: dict[str, Any] | None = None, *, start: bool = True) -> Cluster:
        cfg = parse_config(data or config_dict(), base_dir=self.tmp_path)
        nodes = itertools.count(1)
        steps = itertools.count(1)
        cluster = Cluster(
            cfg,
            self.provider,  # type: ignore[arg-type]
            workdir=self.tmp_path / "clusters",
            clock=self.clock,
            cluster_id=f"j-TEST{next(self._ids):09d}",
            executor=InlineExecutor(),
            bootstrap_runner=self.bootstrap,
            node_id_factory=lambda: f"i-{next(nodes):04d}",
            step_id_factory=lambda: f"s-{next(steps):04d}",
        )
        if start:
            cluster.start()
        return cluster

    def tick(self, cluster: Cluster, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        cluster.tick()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)
