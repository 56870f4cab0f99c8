"""Test doubles for the cluster control plane: a settable clock and an in-memory node provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cluster.errors import ProviderError
from cluster.provider import NodeSpec


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class FakeStepHandle:
    """A step whose exit and metrics the test controls."""

    step_id: str
    script: str
    args: list[str]
    spark_conf: dict[str, str]
    log_dir: Path
    exit_code: int | None = None
    cancels: list[bool] = field(default_factory=list)
    data: dict[str, float] = field(default_factory=dict)
    exit_on_cancel: bool = True

    def poll(self) -> int | None:
        return self.exit_code

    def cancel(self, force: bool) -> None:
        self.cancels.append(force)
        if self.exit_on_cancel and self.exit_code is None:
            self.exit_code = -9 if force else -15

    def metrics(self) -> dict[str, float]:
        return dict(self.data)

    def finish(self, code: int = 0) -> None:
        self.exit_code = code


class FakeNodeProvider:
    """An in-memory :class:`~cluster.provider.NodeProvider`: records every call, runs nothing.

    Args:
        executors_per_node: What :meth:`decommission` reports for a live node.
        fail_add: Node ids (or a predicate on the spec) whose ``add_node`` raises :class:`ProviderError`.
        script_exit: Scripts that exit at once with the given code when started.
    """

    def __init__(
        self,
        *,
        executors_per_node: int = 2,
        fail_add: Callable[[NodeSpec], bool] | None = None,
        script_exit: dict[str, int] | None = None,
    ) -> None:
        self.executors_per_node = executors_per_node
        self.fail_add = fail_add
        self.script_exit = dict(script_exit or {})
        self.master: NodeSpec | None = None
        self.nodes: dict[str, NodeSpec] = {}
        self.added: list[NodeSpec] = []
        self.removed: list[tuple[str, bool]] = []
        self.decommissioned: list[str] = []
        self.steps: dict[str, FakeStepHandle] = {}
        self.shut_down = False
        self.calls: list[str] = []

    def start(self, master: NodeSpec) -> None:
        self.calls.append(f"start {master.node_id}")
        self.master = master
        self.nodes[master.node_id] = master

    def add_node(self, spec: NodeSpec) -> None:
        self.calls.append(f"add {spec.node_id}")
        if self.master is None:
            raise ProviderError("add_node before start")
        if self.fail_add is not None and self.fail_add(spec):
            raise ProviderError(f"cannot start {spec.node_id}")
        self.added.append(spec)
        self.nodes[spec.node_id] = spec

    def remove_node(self, node_id: str, *, graceful: bool) -> None:
        self.calls.append(f"remove {node_id} graceful={graceful}")
        self.removed.append((node_id, graceful))
        self.nodes.pop(node_id, None)

    def decommission(self, node_id: str) -> int:
        self.calls.append(f"decommission {node_id}")
        self.decommissioned.append(node_id)
        return self.executors_per_node if node_id in self.nodes else 0

    def alive_nodes(self) -> set[str]:
        return set(self.nodes)

    def run_step(
        self, step_id: str, script: str, args: list[str], spark_conf: dict[str, str], log_dir: Path
    ) -> FakeStepHandle:
        self.calls.append(f"run {step_id}")
        handle = FakeStepHandle(step_id, script, list(args), dict(spark_conf), log_dir)
        if script in self.script_exit:
            handle.exit_code = self.script_exit[script]
        self.steps[step_id] = handle
        return handle

    def shutdown(self) -> None:
        self.calls.append("shutdown")
        self.shut_down = True
        for handle in self.steps.values():
            if handle.exit_code is None:
                handle.exit_code = -9
        self.nodes.clear()

    # -- test controls -------------------------------------------------------------------------------------

    def vanish(self, node_id: str) -> None:
        """The node dies on its own (no remove_node call)."""
        self.nodes.pop(node_id, None)
