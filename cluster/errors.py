"""Domain errors of the cluster control plane.

Every error the control plane raises derives from :class:`ClusterError`, so callers (the CLI, notebooks) can
catch one type. Each error keeps its facts as attributes (ids, paths, fields) as well as in its message.
"""

from __future__ import annotations

from collections.abc import Sequence


class ClusterError(Exception):
    """Base of every error of the cluster control plane."""


class ConfigError(ClusterError):
    """A cluster configuration was rejected before anything started.

    Attributes:
        field: Dotted path of the first offending field (``instance_groups.task[0].count``).
        reason: Why that field was rejected.
        problems: Every ``(field, reason)`` found, the first one being ``(field, reason)``.
    """

    def __init__(self, field: str, reason: str, *, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.reason = reason
        self.problems: list[tuple[str, str]] = list(problems) or [(field, reason)]
        lines = [f"{f}: {r}" for f, r in self.problems]
        super().__init__(lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines))


class InvalidTransitionError(ClusterError):
    """A state machine was asked to take an edge its transition table does not have.

    Attributes:
        entity_id: The cluster, node or step whose state was to change.
        src: The current state.
        dst: The refused target state.
    """

    def __init__(self, entity_id: str, src: str, dst: str) -> None:
        self.entity_id = entity_id
        self.src = src
        self.dst = dst
        super().__init__(f"{entity_id}: illegal transition {src} -> {dst}")


class NotFoundError(ClusterError):
    """An id that names no cluster, node, step or group."""

    def __init__(self, kind: str, entity_id: str) -> None:
        self.kind = kind
        self.entity_id = entity_id
        super().__init__(f"no such {kind}: {entity_id}")


class ClusterStateError(ClusterError):
    """The operation is not allowed in the cluster's (or node's, or step's) current state."""


class StepFailedError(ClusterError):
    """A step ended FAILED (raised by callers that wait for a step and want an exception).

    Attributes:
        step_id: The failed step.
        reason: Exit code or the error that stopped it.
        log_dir: Where the step's logs are.
    """

    def __init__(self, step_id: str, reason: str, log_dir: str | None = None) -> None:
        self.step_id = step_id
        self.reason = reason
        self.log_dir = log_dir
        where = f" (logs in {log_dir})" if log_dir else ""
        super().__init__(f"step {step_id} failed: {reason}{where}")


class BootstrapError(ClusterError):
    """A bootstrap action exited non-zero (or could not run) on a node; that node is terminated."""

    def __init__(self, node_id: str, action: str, reason: str) -> None:
        self.node_id = node_id
        self.action = action
        self.reason = reason
        super().__init__(f"bootstrap action {action!r} failed on {node_id}: {reason}")


class DataLossError(ClusterError):
    """HDFS data is gone: every replica of at least one of its blocks was on nodes that were lost.

    Attributes:
        paths: The lost ``hdfs://`` files.
        nodes: The core nodes whose loss caused it (when known).
    """

    def __init__(self, paths: Sequence[str], nodes: Sequence[str] = ()) -> None:
        self.paths = list(paths)
        self.nodes = list(nodes)
        cause = f" (lost with node(s) {', '.join(self.nodes)})" if self.nodes else ""
        super().__init__(f"HDFS data lost: {', '.join(self.paths)}{cause}")


class HdfsError(ClusterError):
    """An HDFS operation that cannot be done (no such file, no live DataNode, out of space)."""


class DecommissionRefusedError(ClusterError):
    """A core node cannot leave gracefully: its blocks would drop below replication or not fit elsewhere.

    Attributes:
        node_id: The node that was to be decommissioned.
        reason: Which rule refused it.
    """

    def __init__(self, node_id: str, reason: str) -> None:
        self.node_id = node_id
        self.reason = reason
        super().__init__(f"cannot decommission {node_id}: {reason}")


class ProviderError(ClusterError):
    """The node provider failed to do what was asked (start, add or remove a node, run a step)."""
