"""Steps: what a step is, and the queue that runs them under EMR's concurrency and ActionOnFailure rules.

Rules (EMR ``AddJobFlowSteps`` / ``StepConcurrencyLevel``):

* Pending steps start in submission order, at most ``concurrency`` at a time, only while the cluster takes work.
* With ``concurrency > 1`` only ``CONTINUE`` is accepted as ActionOnFailure.
* When a step fails: ``CONTINUE`` does nothing more; ``CANCEL_AND_WAIT`` cancels every pending step (the
  cluster then goes WAITING); ``TERMINATE_CLUSTER`` cancels every pending step and asks for termination.
* Pending and running steps can be cancelled; cancelling a running step does not trigger its ActionOnFailure.
* At most 256 steps may be PENDING or RUNNING.

Steps run through a :data:`StepRunner` supplied by the orchestrator (``provider.run_step`` in production).
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cluster.errors import ClusterError, ClusterStateError, ConfigError, NotFoundError
from cluster.events import EntityKind, EventLog, JsonValue
from cluster.provider import METRIC_LOST_EXECUTORS, METRIC_RECOMPUTED_TASKS, StepHandle
from cluster.states import STEP_TRANSITIONS, StateMachine, StepState

log = logging.getLogger(__name__)

#: Most steps that may be PENDING or RUNNING at once (EMR's limit).
MAX_ACTIVE_STEPS = 256
#: Highest StepConcurrencyLevel EMR accepts.
MAX_CONCURRENCY = 256

_ACTIVE = frozenset({StepState.PENDING, StepState.RUNNING, StepState.CANCEL_PENDING})


class ActionOnFailure(StrEnum):
    """What the cluster does when a step fails."""

    TERMINATE_CLUSTER = "TERMINATE_CLUSTER"
    CANCEL_AND_WAIT = "CANCEL_AND_WAIT"
    CONTINUE = "CONTINUE"

    @classmethod
    def parse(cls, value: str) -> ActionOnFailure:
        """Accept EMR's legacy alias ``TERMINATE_JOB_FLOW`` for ``TERMINATE_CLUSTER``."""
        return cls.TERMINATE_CLUSTER if value == "TERMINATE_JOB_FLOW" else cls(value)


@dataclass(frozen=True)
class StepSpec:
    """What to run.

    Attributes:
        name: Human name.
        script: The PySpark script (path or URI) run by the driver.
        args: Arguments after the script.
        spark_conf: ``--conf`` pairs for this step only.
        action_on_failure: What the cluster does if the step fails.
    """

    name: str
    script: str
    args: tuple[str, ...] = ()
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    action_on_failure: ActionOnFailure = ActionOnFailure.CONTINUE


@dataclass
class StepCounters:
    """What node losses cost a step.

    Attributes:
        lost_executors: Executors lost (the larger of what the control plane attributed and Spark reported).
        recomputed_tasks: Tasks rerun because output or executors were lost (reported by Spark).
        interrupted_nodes: Nodes that were interrupted or failed while the step ran.
        wasted_node_seconds: Node-seconds of lost nodes overlapping the step (upper bound of lost work).
    """

    lost_executors: int = 0
    recomputed_tasks: int = 0
    interrupted_nodes: int = 0
    wasted_node_seconds: float = 0.0

    def absorb(self, metrics: Mapping[str, float]) -> None:
        """Take Spark's cumulative counters where they are higher than ours."""
        if METRIC_LOST_EXECUTORS in metrics:
            self.lost_executors = max(self.lost_executors, int(metrics[METRIC_LOST_EXECUTORS]))
        if METRIC_RECOMPUTED_TASKS in metrics:
            self.recomputed_tasks = max(self.recomputed_tasks, int(metrics[METRIC_RECOMPUTED_TASKS]))

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "lost_executors": self.lost_executors,
            "recomputed_tasks": self.recomputed_tasks,
            "interrupted_nodes": self.interrupted_nodes,
            "wasted_node_seconds": round(self.wasted_node_seconds, 3),
        }


@dataclass
class Step:
    """One submitted step and everything known about its run."""

    step_id: str
    spec: StepSpec
    machine: StateMachine[StepState]
    seq: int
    log_dir: Path
    handle: StepHandle | None = None
    exit_code: int | None = None
    failure_reason: str | None = None
    counters: StepCounters = field(default_factory=StepCounters)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> StepState:
        return self.machine.state

    @property
    def submitted_at(self) -> float:
        return self.machine.history[0].time

    @property
    def started_at(self) -> float | None:
        return self.machine.entered(StepState.RUNNING)

    @property
    def ended_at(self) -> float | None:
        return self.machine.since if self.machine.terminal else None

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "step_id": self.step_id,
            "name": self.spec.name,
            "script": self.spec.script,
            "args": list(self.spec.args),
            "spark_conf": dict(self.spec.spark_conf),
            "action_on_failure": self.spec.action_on_failure.value,
            "state": self.state.value,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "exit_code": self.exit_code,
            "failure_reason": self.failure_reason,
            "log_dir": str(self.log_dir),
            "counters": self.counters.to_json(),
            "metrics": dict(self.metrics),
            "history": [{"state": h.state.value, "time": h.time, "reason": h.reason} for h in self.machine.history],
        }


#: Starts a step and returns its handle (``provider.run_step`` bound to the step's fields, in production).
StepRunner = Callable[[Step], StepHandle]


def new_step_id() -> str:
    """An EMR-style step id: ``s-`` and 13 upper-case letters/digits."""
    return "s-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


def check_concurrency(concurrency: int, actions: Sequence[ActionOnFailure], field_prefix: str = "steps") -> None:
    """Raise :class:`ConfigError` if ``concurrency`` is out of range or > 1 with a non-CONTINUE action."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError("step_concurrency", f"must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
    if concurrency > 1:
        for i, action in enumerate(actions):
            if action != ActionOnFailure.CONTINUE:
                raise ConfigError(
                    f"{field_prefix}[{i}].action_on_failure",
                    f"{action.value} is not allowed with step_concurrency {concurrency} > 1 (only CONTINUE)",
                )


@dataclass(frozen=True)
class QueueOutcome:
    """What one :meth:`StepQueue.tick` did.

    Attributes:
        started: Steps that started running.
        finished: Steps that reached a terminal state.
        cluster_action: ``CANCEL_AND_WAIT`` or ``TERMINATE_CLUSTER`` when a failed step asks the cluster to act.
        failed_step: The step whose failure asked for ``cluster_action``.
    """

    started: tuple[Step, ...] = ()
    finished: tuple[Step, ...] = ()
    cluster_action: ActionOnFailure | None = None
    failed_step: str | None = None


class StepQueue:
    """The steps of one cluster, run in submission order under a concurrency level.

    Not thread-safe by itself: the cluster facade serialises calls with its lock.

    Args:
        cluster_id: For events and logs.
        concurrency: StepConcurrencyLevel (1..256).
        runner: Starts a step.
        events: The cluster's timeline.
        log_root: Each step logs under ``<log_root>/<step_id>``.
        id_factory: Makes step ids (EMR-style random ids by default).
    """

    def __init__(
        self,
        cluster_id: str,
        *,
        concurrency: int,
        runner: StepRunner,
        events: EventLog,
        log_root: Path,
        id_factory: Callable[[], str] = new_step_id,
    ) -> None:
        check_concurrency(concurrency, [])
        self.cluster_id = cluster_id
        self.concurrency = concurrency
        self.runner = runner
        self.events = events
        self.log_root = log_root
        self.id_factory = id_factory
        self._steps: dict[str, Step] = {}

    # -- queries -------------------------------------------------------------------------------------------

    def get(self, step_id: str) -> Step:
        try:
            return self._steps[step_id]
        except KeyError:
            raise NotFoundError("step", step_id) from None

    def list_steps(self, states: frozenset[StepState] | None = None) -> list[Step]:
        """Steps in submission order, optionally only those in ``states``."""
        return [s for s in self._steps.values() if states is None or s.state in states]

    @property
    def running(self) -> list[Step]:
        """Steps whose process is running (RUNNING, or CANCEL_PENDING with a handle)."""
        return [s for s in self._steps.values() if s.handle is not None and s.state in _ACTIVE]

    @property
    def pending(self) -> list[Step]:
        return [s for s in self._steps.values() if s.state == StepState.PENDING]

    @property
    def idle(self) -> bool:
        """No step pending, running or being cancelled."""
        return not any(s.state in _ACTIVE for s in self._steps.values())

    # -- changes -------------------------------------------------------------------------------------------

    def set_concurrency(self, concurrency: int) -> None:
        """Change the level (``ModifyCluster``); > 1 needs every active step to be CONTINUE."""
        check_concurrency(concurrency, [s.spec.action_on_failure for s in self._steps.values() if s.state in _ACTIVE])
        self.concurrency = concurrency

    def submit(self, spec: StepSpec, now: float) -> Step:
        """Queue a step (PENDING).

        Raises:
            ConfigError: ``concurrency > 1`` and the step's action is not CONTINUE.
            ClusterError: 256 steps are already pending or running.
        """
        if self.concurrency > 1 and spec.action_on_failure != ActionOnFailure.CONTINUE:
            raise ConfigError(
                "action_on_failure",
                f"{spec.action_on_failure.value} is not allowed with step concurrency {self.concurrency} "
                "(only CONTINUE)",
            )
        if sum(1 for s in self._steps.values() if s.state in _ACTIVE) >= MAX_ACTIVE_STEPS:
            raise ClusterError(f"cluster {self.cluster_id}: {MAX_ACTIVE_STEPS} steps already pending or running")
        step_id = self.id_factory()
        step = Step(
            step_id=step_id,
            spec=spec,
            machine=StateMachine.new(step_id, STEP_TRANSITIONS, StepState.PENDING, now),
            seq=len(self._steps),
            log_dir=self.log_root / step_id,
        )
        self._steps[step_id] = step
        self.events.record(
            EntityKind.STEP,
            step_id,
            StepState.PENDING.value,
            "submitted",
            time=now,
            details={"name": spec.name, "script": spec.script, "action_on_failure": spec.action_on_failure.value},
        )
        log.info("cluster %s step %s (%s) submitted", self.cluster_id, step_id, spec.name)
        return step

    def cancel(self, step_id: str, now: float, *, force: bool = False) -> Step:
        """Cancel a pending or running step (running: SIGTERM, or SIGKILL with ``force``).

        Raises:
            NotFoundError: No such step.
            ClusterStateError: The step already ended.
        """
        step = self.get(step_id)
        if step.state == StepState.PENDING:
            self._move(step, StepState.CANCEL_PENDING, now, "cancel requested")
            self._move(step, StepState.CANCELLED, now, "cancelled while pending")
        elif step.state == StepState.RUNNING:
            assert step.handle is not None
            self._move(step, StepState.CANCEL_PENDING, now, "cancel requested", {"force": force})
            step.handle.cancel(force)
        elif step.state == StepState.CANCEL_PENDING:
            if force and step.handle is not None:
                step.handle.cancel(True)
        else:
            raise ClusterStateError(f"step {step_id} is {step.state.value}; only pending or running steps cancel")
        return step

    def cancel_all(self, now: float, reason: str) -> None:
        """Cluster termination: pending steps CANCELLED, running ones killed and INTERRUPTED."""
        for step in list(self._steps.values()):
            if step.state == StepState.PENDING:
                self._move(step, StepState.CANCELLED, now, reason)
            elif step.state in (StepState.RUNNING, StepState.CANCEL_PENDING) and step.handle is not None:
                step.handle.cancel(True)
                step.exit_code = step.handle.poll()
                if step.state == StepState.RUNNING:
                    step.failure_reason = reason
                    self._move(step, StepState.INTERRUPTED, now, reason)
                else:
                    self._move(step, StepState.CANCELLED, now, reason)

    def fail_running(self, now: float, reason: str) -> list[Step]:
        """The master (driver host) was lost: every running step FAILED (EMR marks them so)."""
        failed: list[Step] = []
        for step in self.running:
            assert step.handle is not None
            step.handle.cancel(True)
            step.failure_reason = reason
            if step.state == StepState.RUNNING:
                self._move(step, StepState.FAILED, now, reason)
            else:
                self._move(step, StepState.CANCELLED, now, reason)
            failed.append(step)
        return failed

    def tick(self, now: float, *, may_start: bool) -> QueueOutcome:
        """Poll running steps, apply ActionOnFailure, then start pending steps if ``may_start``."""
        finished: list[Step] = []
        started: list[Step] = []
        action: ActionOnFailure | None = None
        failed_step: str | None = None

        def on_failure(step: Step) -> None:
            nonlocal action, failed_step
            act = step.spec.action_on_failure
            if act == ActionOnFailure.CONTINUE or action == ActionOnFailure.TERMINATE_CLUSTER:
                return
            action, failed_step = act, step.step_id
            for other in self.pending:
                self._move(other, StepState.CANCELLED, now, f"step {step.step_id} failed ({act.value})")
                finished.append(other)

        for step in self.running:
            assert step.handle is not None
            try:
                metrics = step.handle.metrics()
            except Exception:  # a metrics hiccup must not stop the queue
                log.warning("cluster %s step %s: metrics unavailable", self.cluster_id, step.step_id, exc_info=True)
                metrics = {}
            step.metrics.update(metrics)
            step.counters.absorb(metrics)
            code = step.handle.poll()
            if code is None:
                continue
            step.exit_code = code
            if step.state == StepState.CANCEL_PENDING:
                self._move(step, StepState.COMPLETED if code == 0 else StepState.CANCELLED, now, f"exit code {code}")
            elif code == 0:
                self._move(step, StepState.COMPLETED, now, "exit code 0")
            else:
                step.failure_reason = f"exit code {code}"
                self._move(step, StepState.FAILED, now, step.failure_reason)
                on_failure(step)
            finished.append(step)

        while may_start and action != ActionOnFailure.TERMINATE_CLUSTER:
            running = sum(1 for s in self._steps.values() if s.handle is not None and s.state in _ACTIVE)
            queue = self.pending
            if running >= self.concurrency or not queue:
                break
            step = queue[0]
            self._move(step, StepState.RUNNING, now, "started")
            step.log_dir.mkdir(parents=True, exist_ok=True)
            try:
                step.handle = self.runner(step)
            except Exception as exc:
                log.exception("cluster %s step %s could not start", self.cluster_id, step.step_id)
                step.failure_reason = f"could not start: {exc}"
                self._move(step, StepState.FAILED, now, step.failure_reason)
                finished.append(step)
                on_failure(step)
                continue
            started.append(step)
        return QueueOutcome(tuple(started), tuple(finished), action, failed_step)

    def _move(
        self, step: Step, dst: StepState, now: float, reason: str, details: Mapping[str, JsonValue] | None = None
    ) -> None:
        src = step.state
        step.machine.transition(dst, time=now, reason=reason)
        payload: dict[str, JsonValue] = {"name": step.spec.name, **(details or {})}
        if step.exit_code is not None:
            payload["exit_code"] = step.exit_code
        if step.machine.terminal:
            payload["counters"] = step.counters.to_json()
        self.events.record(EntityKind.STEP, step.step_id, dst.value, reason, time=now, src=src.value, details=payload)
        log.info("cluster %s step %s: %s -> %s (%s)", self.cluster_id, step.step_id, src.value, dst.value, reason)
