"""EMR's state machines as data: cluster, node and step states and every legal edge with its cause.

Each ``*_TRANSITIONS`` table maps ``src -> {dst: cause}``; a state missing from the outer dict has no
outgoing edge (it is terminal). :class:`StateMachine` refuses edges not in its table with
:class:`~cluster.errors.InvalidTransitionError` and keeps ``(state, time, reason)`` history, after Ray's
autoscaler ``InstanceUtil`` (one transitions dict, a history per instance).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from cluster.errors import InvalidTransitionError


class ClusterState(StrEnum):
    """EMR ``ClusterStatus.State``."""

    STARTING = "STARTING"
    BOOTSTRAPPING = "BOOTSTRAPPING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    TERMINATED_WITH_ERRORS = "TERMINATED_WITH_ERRORS"


class NodeState(StrEnum):
    """State of one instance (EMR's instance states, plus DECOMMISSIONING and SPOT_INTERRUPTED)."""

    REQUESTED = "REQUESTED"
    PROVISIONING = "PROVISIONING"
    BOOTSTRAPPING = "BOOTSTRAPPING"
    RUNNING = "RUNNING"
    DECOMMISSIONING = "DECOMMISSIONING"
    TERMINATED = "TERMINATED"
    SPOT_INTERRUPTED = "SPOT_INTERRUPTED"


class StepState(StrEnum):
    """EMR ``StepStatus.State``."""

    PENDING = "PENDING"
    CANCEL_PENDING = "CANCEL_PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


class ClusterStateChangeReason(StrEnum):
    """EMR ``ClusterStateChangeReason.Code`` values the simulator uses (``IDLE_TIMEOUT`` is its own)."""

    USER_REQUEST = "USER_REQUEST"
    ALL_STEPS_COMPLETED = "ALL_STEPS_COMPLETED"
    STEP_FAILURE = "STEP_FAILURE"
    BOOTSTRAP_FAILURE = "BOOTSTRAP_FAILURE"
    INSTANCE_FAILURE = "INSTANCE_FAILURE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"


#: Reasons that end a cluster in TERMINATED_WITH_ERRORS rather than TERMINATED.
ERROR_REASONS = frozenset(
    {
        ClusterStateChangeReason.STEP_FAILURE,
        ClusterStateChangeReason.BOOTSTRAP_FAILURE,
        ClusterStateChangeReason.INSTANCE_FAILURE,
        ClusterStateChangeReason.INTERNAL_ERROR,
        ClusterStateChangeReason.VALIDATION_ERROR,
    }
)

_C = ClusterState
CLUSTER_TRANSITIONS: Mapping[ClusterState, Mapping[ClusterState, str]] = {
    _C.STARTING: {
        # The master (and the first core/task requests) are provisioned; bootstrap actions begin.
        _C.BOOTSTRAPPING: "instances provisioned",
        # Terminate requested, or the master could not be provisioned.
        _C.TERMINATING: "terminate requested or provisioning failed",
    },
    _C.BOOTSTRAPPING: {
        # Every launch node bootstrapped (or few enough failed) and steps are queued.
        _C.RUNNING: "bootstrap complete, steps pending",
        # Every launch node bootstrapped and no step is queued (keep-alive cluster).
        _C.WAITING: "bootstrap complete, no steps",
        # Master bootstrap failed, too many nodes failed (BOOTSTRAP_FAILURE), or terminate requested.
        _C.TERMINATING: "bootstrap failed or terminate requested",
    },
    _C.RUNNING: {
        # The last running step ended and none is pending (keep-alive), or CANCEL_AND_WAIT fired.
        _C.WAITING: "no step running or pending",
        # TERMINATE_CLUSTER step failure, last step done without keep-alive, user request, master lost.
        _C.TERMINATING: "step failure, steps done, user request or instance failure",
    },
    _C.WAITING: {
        # A step was submitted.
        _C.RUNNING: "step submitted",
        # User request, auto-termination idle timeout, or the master was lost.
        _C.TERMINATING: "user request, idle timeout or instance failure",
    },
    _C.TERMINATING: {
        # Every node stopped after a normal end (user request, all steps completed, idle timeout).
        _C.TERMINATED: "all instances terminated",
        # Every node stopped after a failure (step, bootstrap, instance, internal error).
        _C.TERMINATED_WITH_ERRORS: "all instances terminated after a failure",
    },
}

_N = NodeState
NODE_TRANSITIONS: Mapping[NodeState, Mapping[NodeState, str]] = {
    _N.REQUESTED: {
        # A provisioning worker picked the request up (instance launched; billing starts).
        _N.PROVISIONING: "instance launching",
        # The request was withdrawn before launch (cluster terminating, group shrunk).
        _N.TERMINATED: "request cancelled",
    },
    _N.PROVISIONING: {
        # The instance is up; bootstrap actions start.
        _N.BOOTSTRAPPING: "instance up, running bootstrap actions",
        # Launch failed or the cluster is terminating.
        _N.TERMINATED: "provisioning failed or cancelled",
        # EC2 reclaimed the Spot capacity before the node came up.
        _N.SPOT_INTERRUPTED: "spot capacity reclaimed while provisioning",
    },
    _N.BOOTSTRAPPING: {
        # Every bootstrap action exited 0 and the node joined the cluster.
        _N.RUNNING: "bootstrap complete, node joined",
        # A bootstrap action failed (the node is terminated), or the cluster is terminating.
        _N.TERMINATED: "bootstrap failed or cancelled",
        # EC2 reclaimed the Spot instance during bootstrap.
        _N.SPOT_INTERRUPTED: "spot capacity reclaimed while bootstrapping",
    },
    _N.RUNNING: {
        # Scale-in / resize, or a Spot interruption notice: executors are asked to leave, HDFS re-replicates.
        _N.DECOMMISSIONING: "scale-in or spot interruption notice",
        # Removed without draining: EC2InstanceIdsToTerminate, instance failure, cluster termination.
        _N.TERMINATED: "terminated without draining (forced, failed or cluster shutdown)",
        # Spot instance reclaimed with no notice window.
        _N.SPOT_INTERRUPTED: "spot capacity reclaimed without notice",
    },
    _N.DECOMMISSIONING: {
        # Drained and removed (scale-in, resize), or the cluster terminated meanwhile.
        _N.TERMINATED: "decommissioned and removed",
        # The Spot notice window elapsed and EC2 reclaimed the instance.
        _N.SPOT_INTERRUPTED: "spot notice window elapsed",
    },
}

_S = StepState
STEP_TRANSITIONS: Mapping[StepState, Mapping[StepState, str]] = {
    _S.PENDING: {
        # A concurrency slot is free and every earlier step has started.
        _S.RUNNING: "started in submission order",
        # Cancel requested for a pending step.
        _S.CANCEL_PENDING: "cancel requested",
        # ActionOnFailure CANCEL_AND_WAIT / TERMINATE_CLUSTER of an earlier step, or cluster termination.
        _S.CANCELLED: "cancelled by an earlier step's failure or cluster termination",
    },
    _S.CANCEL_PENDING: {
        # The step (pending, or its process) stopped.
        _S.CANCELLED: "cancellation done",
        # The running process finished successfully before the signal landed.
        _S.COMPLETED: "finished before cancellation took effect",
    },
    _S.RUNNING: {
        # Exit code 0.
        _S.COMPLETED: "exit code 0",
        # Non-zero exit, the runner could not start it, or the master was lost.
        _S.FAILED: "non-zero exit or driver lost",
        # Cancel requested for a running step (SEND_INTERRUPT or TERMINATE_PROCESS sent).
        _S.CANCEL_PENDING: "cancel requested",
        # The cluster terminated while the step ran.
        _S.INTERRUPTED: "cluster terminated while running",
    },
}

S = TypeVar("S", bound=StrEnum)


def is_terminal(table: Mapping[S, Mapping[S, str]], state: S) -> bool:
    """Whether ``state`` has no outgoing edge in ``table``."""
    return not table.get(state)


def reachable(table: Mapping[S, Mapping[S, str]], src: S) -> set[S]:
    """Every state reachable from ``src`` (``src`` included), breadth first."""
    seen = {src}
    queue = deque([src])
    while queue:
        for nxt in table.get(queue.popleft(), {}):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def exists_path(table: Mapping[S, Mapping[S, str]], src: S, dst: S) -> bool:
    """Whether some sequence of legal edges leads from ``src`` to ``dst``."""
    return dst in reachable(table, src)


def check_transition(table: Mapping[S, Mapping[S, str]], entity_id: str, src: S, dst: S) -> str:
    """Return the cause of edge ``src -> dst``; raise :class:`InvalidTransitionError` if there is none."""
    cause = table.get(src, {}).get(dst)
    if cause is None:
        raise InvalidTransitionError(entity_id, src.value, dst.value)
    return cause


@dataclass(frozen=True)
class HistoryEntry(Generic[S]):
    """One state an entity entered: when and why."""

    state: S
    time: float
    reason: str


@dataclass
class StateMachine(Generic[S]):
    """The state of one entity, moved only along its table's edges, with history.

    Attributes:
        entity_id: The cluster, node or step id (used in errors).
        table: The transitions table.
        state: The current state.
        history: Every state entered, oldest first (the initial state included).
    """

    entity_id: str
    table: Mapping[S, Mapping[S, str]]
    state: S
    history: list[HistoryEntry[S]] = field(default_factory=list)

    @classmethod
    def new(cls, entity_id: str, table: Mapping[S, Mapping[S, str]], initial: S, time: float) -> StateMachine[S]:
        """A machine in ``initial`` since ``time``."""
        return cls(entity_id, table, initial, [HistoryEntry(initial, time, "created")])

    def can(self, dst: S) -> bool:
        return dst in self.table.get(self.state, {})

    @property
    def terminal(self) -> bool:
        return is_terminal(self.table, self.state)

    @property
    def since(self) -> float:
        """Time the current state was entered."""
        return self.history[-1].time

    def entered(self, state: S) -> float | None:
        """Time ``state`` was (last) entered, or ``None``."""
        for entry in reversed(self.history):
            if entry.state == state:
                return entry.time
        return None

    def transition(self, dst: S, *, time: float, reason: str | None = None) -> HistoryEntry[S]:
        """Move to ``dst``; ``reason`` defaults to the edge's cause from the table.

        Raises:
            InvalidTransitionError: ``dst`` is not a legal successor of the current state.
        """
        cause = check_transition(self.table, self.entity_id, self.state, dst)
        entry = HistoryEntry(dst, time, reason or cause)
        self.state = dst
        self.history.append(entry)
        return entry


def transition(machine: StateMachine[S], dst: S, *, time: float, reason: str | None = None) -> HistoryEntry[S]:
    """Functional spelling of :meth:`StateMachine.transition`."""
    return machine.transition(dst, time=time, reason=reason)
