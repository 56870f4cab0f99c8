"""The step queue: submission order, concurrency, ActionOnFailure, cancellation, counters."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cluster.errors import ClusterError, ClusterStateError, ConfigError
from cluster.events import EntityKind, EventLog
from cluster.provider import METRIC_LOST_EXECUTORS, METRIC_RECOMPUTED_TASKS
from cluster.states import StepState
from cluster.steps import MAX_ACTIVE_STEPS, ActionOnFailure, QueueOutcome, Step, StepQueue, StepSpec, check_concurrency
from tests.cluster.fakes import FakeStepHandle

S = StepState


class Runner:
    def __init__(self, fail_scripts: set[str] | None = None) -> None:
        self.handles: dict[str, FakeStepHandle] = {}
        self.order: list[str] = []
        self.fail_scripts = fail_scripts or set()

    def __call__(self, step: Step) -> FakeStepHandle:
        if step.spec.script in self.fail_scripts:
            raise RuntimeError("driver did not start")
        self.order.append(step.step_id)
        handle = FakeStepHandle(step.step_id, step.spec.script, list(step.spec.args), {}, step.log_dir)
        self.handles[step.step_id] = handle
        return handle


def make_queue(
    tmp_path: Path, concurrency: int = 1, runner: Runner | None = None
) -> tuple[StepQueue, Runner, EventLog]:
    ids = itertools.count(1)
    events = EventLog()
    run = runner or Runner()
    queue = StepQueue(
        "j-1",
        concurrency=concurrency,
        runner=run,
        events=events,
        log_root=tmp_path,
        id_factory=lambda: f"s-{next(ids)}",
    )
    return queue, run, events


def spec(name: str, action: ActionOnFailure = ActionOnFailure.CONTINUE, script: str = "job.py") -> StepSpec:
    return StepSpec(name, script, ("--x",), {"spark.a": "1"}, action)


def states(queue: StepQueue) -> list[StepState]:
    return [s.state for s in queue.list_steps()]


def test_steps_start_in_submission_order_one_at_a_time(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    for name in "abc":
        queue.submit(spec(name), 0.0)
    queue.tick(1.0, may_start=True)
    assert states(queue) == [S.RUNNING, S.PENDING, S.PENDING]
    assert (tmp_path / "s-1").is_dir()
    run.handles["s-1"].finish(0)
    out = queue.tick(2.0, may_start=True)
    assert [s.step_id for s in out.finished] == ["s-1"] and [s.step_id for s in out.started] == ["s-2"]
    assert states(queue) == [S.COMPLETED, S.RUNNING, S.PENDING]
    assert run.order == ["s-1", "s-2"]
    assert queue.get("s-1").started_at == 1.0 and queue.get("s-1").ended_at == 2.0


def test_nothing_starts_while_the_cluster_does_not_take_work(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a"), 0.0)
    queue.tick(1.0, may_start=False)
    assert states(queue) == [S.PENDING] and run.order == []


def test_concurrency_level_runs_that_many_in_order(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path, concurrency=2)
    for name in "abcd":
        queue.submit(spec(name), 0.0)
    queue.tick(1.0, may_start=True)
    assert states(queue) == [S.RUNNING, S.RUNNING, S.PENDING, S.PENDING]
    run.handles["s-2"].finish(0)  # the later one ends first: the next pending takes its slot
    queue.tick(2.0, may_start=True)
    assert states(queue) == [S.RUNNING, S.COMPLETED, S.RUNNING, S.PENDING]
    assert run.order == ["s-1", "s-2", "s-3"]


def test_continue_keeps_going_after_a_failure(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a", ActionOnFailure.CONTINUE), 0.0)
    queue.submit(spec("b"), 0.0)
    queue.tick(1.0, may_start=True)
    run.handles["s-1"].finish(3)
    out = queue.tick(2.0, may_start=True)
    assert out.cluster_action is None
    assert states(queue) == [S.FAILED, S.RUNNING]
    assert queue.get("s-1").failure_reason == "exit code 3" and queue.get("s-1").exit_code == 3


@pytest.mark.parametrize("action", [ActionOnFailure.CANCEL_AND_WAIT, ActionOnFailure.TERMINATE_CLUSTER])
def test_cancel_and_wait_or_terminate_cancels_pending_steps(tmp_path: Path, action: ActionOnFailure) -> None:
    queue, run, events = make_queue(tmp_path)
    queue.submit(spec("a", action), 0.0)
    queue.submit(spec("b"), 0.0)
    queue.submit(spec("c"), 0.0)
    queue.tick(1.0, may_start=True)
    run.handles["s-1"].finish(1)
    out = queue.tick(2.0, may_start=True)
    assert out == QueueOutcome((), out.finished, action, "s-1")
    assert states(queue) == [S.FAILED, S.CANCELLED, S.CANCELLED]
    assert queue.idle and run.order == ["s-1"]
    cancelled = events.query(kind=EntityKind.STEP, dst="CANCELLED")
    assert {e.entity_id for e in cancelled} == {"s-2", "s-3"}
    assert all(action.value in e.reason for e in cancelled)


def test_a_step_that_cannot_start_fails_and_applies_its_action(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path, runner=Runner(fail_scripts={"broken.py"}))
    queue.submit(spec("a", ActionOnFailure.CANCEL_AND_WAIT, script="broken.py"), 0.0)
    queue.submit(spec("b"), 0.0)
    out = queue.tick(1.0, may_start=True)
    assert states(queue) == [S.FAILED, S.CANCELLED]
    assert out.cluster_action == ActionOnFailure.CANCEL_AND_WAIT
    assert "driver did not start" in (queue.get("s-1").failure_reason or "")


def test_concurrency_above_one_accepts_only_continue(tmp_path: Path) -> None:
    queue, _, _ = make_queue(tmp_path, concurrency=3)
    with pytest.raises(ConfigError) as info:
        queue.submit(spec("a", ActionOnFailure.TERMINATE_CLUSTER), 0.0)
    assert info.value.field == "action_on_failure"
    queue.submit(spec("b", ActionOnFailure.CONTINUE), 0.0)
    with pytest.raises(ConfigError):
        check_concurrency(2, [ActionOnFailure.CONTINUE, ActionOnFailure.CANCEL_AND_WAIT])
    with pytest.raises(ConfigError, match="between 1 and 256"):
        check_concurrency(0, [])


def test_raising_concurrency_is_refused_while_a_non_continue_step_is_active(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a", ActionOnFailure.TERMINATE_CLUSTER), 0.0)
    with pytest.raises(ConfigError):
        queue.set_concurrency(2)
    queue.tick(1.0, may_start=True)
    run.handles["s-1"].finish(0)
    queue.tick(2.0, may_start=True)
    queue.set_concurrency(2)
    assert queue.concurrency == 2


def test_cancel_pending_and_running_steps(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a"), 0.0)
    queue.submit(spec("b"), 0.0)
    queue.tick(1.0, may_start=True)
    queue.cancel("s-2", 2.0)
    assert queue.get("s-2").state == S.CANCELLED
    assert [h.state for h in queue.get("s-2").machine.history] == [S.PENDING, S.CANCEL_PENDING, S.CANCELLED]
    run.handles["s-1"].exit_on_cancel = False
    queue.cancel("s-1", 3.0)
    assert queue.get("s-1").state == S.CANCEL_PENDING and run.handles["s-1"].cancels == [False]
    queue.cancel("s-1", 3.5, force=True)
    assert run.handles["s-1"].cancels == [False, True]
    run.handles["s-1"].finish(-9)
    out = queue.tick(4.0, may_start=True)
    assert queue.get("s-1").state == S.CANCELLED and out.cluster_action is None  # cancelling is not a failure
    with pytest.raises(ClusterStateError):
        queue.cancel("s-1", 5.0)


def test_step_that_finishes_before_the_cancel_lands_is_completed(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a"), 0.0)
    queue.tick(1.0, may_start=True)
    run.handles["s-1"].exit_on_cancel = False
    queue.cancel("s-1", 2.0)
    run.handles["s-1"].finish(0)
    queue.tick(3.0, may_start=True)
    assert queue.get("s-1").state == S.COMPLETED


def test_cancel_all_interrupts_running_and_cancels_pending(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a"), 0.0)
    queue.submit(spec("b"), 0.0)
    queue.tick(1.0, may_start=True)
    queue.cancel_all(2.0, "cluster terminating")
    assert states(queue) == [S.INTERRUPTED, S.CANCELLED]
    assert run.handles["s-1"].cancels == [True]


def test_at_most_256_active_steps(tmp_path: Path) -> None:
    queue, _, _ = make_queue(tmp_path)
    for i in range(MAX_ACTIVE_STEPS):
        queue.submit(spec(f"s{i}"), 0.0)
    with pytest.raises(ClusterError, match="256"):
        queue.submit(spec("one too many"), 0.0)


def test_counters_absorb_spark_metrics_without_going_down(tmp_path: Path) -> None:
    queue, run, _ = make_queue(tmp_path)
    queue.submit(spec("a"), 0.0)
    queue.tick(1.0, may_start=True)
    step = queue.get("s-1")
    step.counters.lost_executors = 3  # attributed by the control plane
    run.handles["s-1"].data = {METRIC_LOST_EXECUTORS: 2.0, METRIC_RECOMPUTED_TASKS: 7.0, "custom": 1.5}
    queue.tick(2.0, may_start=True)
    assert (step.counters.lost_executors, step.counters.recomputed_tasks) == (3, 7)
    run.handles["s-1"].data = {METRIC_LOST_EXECUTORS: 5.0, METRIC_RECOMPUTED_TASKS: 9.0}
    queue.tick(3.0, may_start=True)
    assert (step.counters.lost_executors, step.counters.recomputed_tasks) == (5, 9)
    assert step.metrics["custom"] == 1.5
    assert step.to_json()["counters"] == {
        "lost_executors": 5,
        "recomputed_tasks": 9,
        "interrupted_nodes": 0,
        "wasted_node_seconds": 0.0,
    }


def test_legacy_alias_parses() -> None:
    assert ActionOnFailure.parse("TERMINATE_JOB_FLOW") is ActionOnFailure.TERMINATE_CLUSTER
    with pytest.raises(ValueError):
        ActionOnFailure.parse("NOPE")
