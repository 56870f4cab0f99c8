"""The cluster simulation on hand-built workloads, where the right answer can be worked out by hand."""

from __future__ import annotations

import random
import time
from dataclasses import replace

import pytest

from cluster.instances import DEFAULT_CATALOG
from cluster.predict.model import JobModel, PhaseModel, StageModel, WorkloadModel
from cluster.predict.simulate import (
    ClusterShape,
    NodeGroup,
    ScalingPolicy,
    SimOptions,
    monte_carlo,
    simulate,
)
from cluster.scaling import ComputeLimits, UnitType
from cluster.spot import ScheduledInterruption

EXACT = SimOptions(resample=False)


def stage(sid: int, parents: tuple[int, ...], work: list[float], fixed: float = 0.0, **kw: float) -> StageModel:
    return StageModel(
        stage_id=sid,
        job_id=0,
        name=f"s{sid}",
        parents=parents,
        fixed=tuple(fixed for _ in work),
        work=tuple(work),
        num_tasks=len(work),
        source=not parents,
        launch_delay=kw.get("launch_delay", 0.0),
        finish_delay=kw.get("finish_delay", 0.0),
    )


def workload(
    stages: list[StageModel], phases: list[tuple[float, list[tuple[int, tuple[int, ...]]]]], tail: float = 0.0
) -> WorkloadModel:
    """``phases``: (driver gap before, [(job id, stage ids)])."""
    return WorkloadModel(
        name="hand-built",
        stages={s.stage_id: s for s in stages},
        phases=tuple(
            PhaseModel(gap, tuple(JobModel(job_id, 0.0, sids) for job_id, sids in jobs)) for gap, jobs in phases
        ),
        tail=tail,
        traced_slots=1,
        traced_runtime=0.0,
    )


def one_stage(n: int, seconds: float) -> WorkloadModel:
    return workload([stage(0, (), [seconds] * n)], [(0.0, [(0, (0,))])])


def test_waves_of_tasks_on_slots() -> None:
    model = one_stage(10, 3.0)
    assert simulate(model, ClusterShape.local(1), EXACT).runtime == pytest.approx(30.0)
    assert simulate(model, ClusterShape.local(4), EXACT).runtime == pytest.approx(9.0)  # ceil(10/4) waves
    assert simulate(model, ClusterShape.local(10), EXACT).runtime == pytest.approx(3.0)
    # m5.xlarge has 4 vCPUs: 4 slots per node.
    assert simulate(model, ClusterShape.emr(core=1), EXACT).runtime == pytest.approx(9.0)
    assert simulate(model, replace(ClusterShape.emr(core=1), task_cpus=2), EXACT).runtime == pytest.approx(15.0)


def test_stage_dag_driver_time_and_delays() -> None:
    model = workload(
        [
            stage(0, (), [4.0, 4.0], launch_delay=0.5),
            stage(1, (), [1.0, 1.0, 1.0]),
            stage(2, (0, 1), [2.0, 2.0], finish_delay=0.25),
        ],
        [(1.0, [(0, (0, 1, 2))]), (3.0, [(1, ())])],
        tail=0.5,
    )
    # Many slots: 1 driver + max(0.5 + 4, 1) + 2 + 0.25, then a job without stages, 3 s gap, 0.5 tail.
    assert simulate(model, ClusterShape.local(8), EXACT).runtime == pytest.approx(1 + 4.5 + 2.25 + 3 + 0.5)
    # One slot: every task in sequence; stage 1 runs while stage 0 waits out its launch delay.
    serial = 1 + (3 * 1.0 + max(0.0, 0.5 - 3.0) + 2 * 4.0) + 2 * 2.0 + 0.25 + 3 + 0.5
    assert simulate(model, ClusterShape.local(1), EXACT).runtime == pytest.approx(serial)
    assert model.driver_seconds == pytest.approx(4.5)


def test_fifo_order_follows_stage_ids() -> None:
    # Two independent stages and one slot: stage 0's tasks all run before stage 1's (Spark's FIFO pool).
    model = workload([stage(0, (), [1.0] * 3), stage(1, (), [10.0]), stage(2, (0,), [1.0])], [(0, [(0, (0, 1, 2))])])
    # Stage 2 becomes ready at 3 but the single slot is taken by stage 1 until 13.
    assert simulate(model, ClusterShape.local(1), EXACT).runtime == pytest.approx(14.0)


def test_data_scale_grows_source_task_counts_and_other_task_times() -> None:
    model = workload([stage(0, (), [2.0] * 4, fixed=1.0), stage(1, (0,), [3.0] * 2, fixed=1.0)], [(0, [(0, (0, 1))])])
    base = simulate(model, ClusterShape.local(4), EXACT)
    assert base.tasks == 6
    assert base.runtime == pytest.approx(3.0 + 4.0)
    doubled = simulate(model, ClusterShape.local(4), replace(EXACT, data_scale=2.0))
    assert doubled.tasks == 10  # 8 source tasks, 2 reduce tasks
    assert doubled.runtime == pytest.approx(2 * 3.0 + (1.0 + 2 * 3.0))
    fixed_count = simulate(model, ClusterShape.local(4), replace(EXACT, data_scale=2.0, scale_source_tasks=False))
    assert fixed_count.tasks == 6
    assert fixed_count.runtime == pytest.approx((1.0 + 4.0) + (1.0 + 6.0))
    # 8 reduce partitions instead of 2: each gets a quarter of the (doubled) work, plus its own fixed part.
    spread = simulate(model, ClusterShape.local(8), replace(EXACT, data_scale=2.0, shuffle_partitions=8))
    assert spread.tasks == 16
    assert spread.runtime == pytest.approx(3.0 + (1.0 + 2 * 3.0 * 2 / 8))
    faster = simulate(model, ClusterShape.local(4), replace(EXACT, speed=2.0))
    assert faster.runtime == pytest.approx(base.runtime / 2)


def test_monte_carlo_is_deterministic_by_seed() -> None:
    rng = random.Random(3)
    model = workload(
        [
            stage(0, (), [rng.uniform(0.5, 5) for _ in range(200)]),
            stage(1, (0,), [rng.uniform(1, 3) for _ in range(50)]),
        ],
        [(0.5, [(0, (0, 1))])],
    )
    shape = ClusterShape.emr(core=2, task=3)
    opts = SimOptions(spot_rate_per_hour=30.0, notice_seconds=5, provisioning_seconds=10)
    a = monte_carlo(model, shape, opts, repetitions=12, seed=7)
    b = monte_carlo(model, shape, opts, repetitions=12, seed=7)
    c = monte_carlo(model, shape, opts, repetitions=12, seed=8)
    assert [r.runtime for r in a.runs] == [r.runtime for r in b.runs]
    assert [r.runtime for r in a.runs] != [r.runtime for r in c.runs]
    assert len({r.runtime for r in a.runs}) > 1  # resampling varies the runs
    assert a.runtime.p50 <= a.runtime.p90 <= a.runtime.maximum
    assert a.cost.mean > 0
    assert sum(r.interruptions for r in a.runs) > 0


def _spot_pair() -> ClusterShape:
    """One on-demand core node and one Spot task node, one slot each, nothing else billed."""
    return ClusterShape(
        (
            NodeGroup("CORE", "m5.xlarge", 1, "ON_DEMAND", "core"),
            NodeGroup("TASK", "m5.xlarge", 1, "SPOT", "task"),
        ),
        master_type=None,
        slots_per_node=1,
    )


def _interrupt_task_node(at: float, **kw: object) -> SimOptions:
    return SimOptions(
        resample=False,
        notice_seconds=5.0,
        replace_interrupted=False,
        scheduled_interruptions=(ScheduledInterruption(at, group="task"),),
        **kw,  # type: ignore[arg-type]
    )


def test_lost_node_reruns_its_tasks_and_the_shuffle_output_still_needed() -> None:
    # A: 2 map tasks of 10 s (one per node); B: 2 reduce tasks of 50 s. Task node noticed at 15, gone at 20.
    model = workload([stage(0, (), [10.0, 10.0]), stage(1, (0,), [50.0, 50.0])], [(0, [(0, (0, 1))])])
    clean = simulate(model, _spot_pair(), EXACT)
    assert clean.runtime == pytest.approx(60.0)
    hit = simulate(model, _spot_pair(), _interrupt_task_node(15.0))
    # At 20 the B task on the lost node is killed and A's map output there is lost (B still reads it). The core
    # node's running B task goes on until 60; then A's lost partition runs (60-70), then the killed B task (70-120).
    assert hit.interruptions == 1
    assert hit.killed_tasks == 1
    assert hit.recomputed_tasks == 1
    assert hit.runtime == pytest.approx(120.0)
    assert hit.tasks_launched == 6
    # With shuffle migration the map output survives: only the killed B task runs again (60-110).
    migrated = simulate(model, _spot_pair(), _interrupt_task_node(15.0, shuffle_migration=True))
    assert (migrated.killed_tasks, migrated.recomputed_tasks) == (1, 0)
    assert migrated.runtime == pytest.approx(110.0)


def test_notice_lets_running_tasks_finish() -> None:
    model = workload([stage(0, (), [10.0, 10.0]), stage(1, (0,), [50.0, 50.0])], [(0, [(0, (0, 1))])])
    # Notice at 12 with a 120-s window: the B task on the Spot node (10-60) finishes before the node goes (132);
    # the node takes no new task after the notice; B is complete at 60 and nothing is rerun.
    opts = replace(_interrupt_task_node(12.0), notice_seconds=120.0)
    result = simulate(model, _spot_pair(), opts)
    assert (result.killed_tasks, result.recomputed_tasks) == (0, 0)
    assert result.runtime == pytest.approx(60.0)


def test_output_nobody_reads_any_more_is_not_recomputed_but_a_later_reader_counts() -> None:
    # Phase 1: A (map) -> B. Phase 2 (after 100 s of driver time): C. Task node lost at 40 (notice 35).
    stages = [stage(0, (), [10.0, 10.0]), stage(1, (0,), [5.0, 5.0]), stage(2, (), [1.0])]
    independent = workload(stages, [(0, [(0, (0, 1))]), (100.0, [(1, (2,))])])
    result = simulate(independent, _spot_pair(), _interrupt_task_node(35.0))
    assert result.recomputed_tasks == 0
    assert result.runtime == pytest.approx(15 + 100 + 1)
    # Same, but C reads A's shuffle output (A was skipped in C's job): the lost partition must be recomputed.
    stages[2] = stage(2, (0,), [1.0])
    reader = workload(stages, [(0, [(0, (0, 1))]), (100.0, [(1, (2,))])])
    result = simulate(reader, _spot_pair(), _interrupt_task_node(35.0))
    assert result.recomputed_tasks == 1
    assert result.runtime == pytest.approx(15 + 100 + 1)  # recomputed during the driver gap, on the core node
    # Noticed before anything ran: the node takes no task at all, so nothing is killed or recomputed and
    # everything runs on the core node (A 0-20, B 20-30, driver 100, C 1).
    early = simulate(reader, _spot_pair(), _interrupt_task_node(0.0))
    assert (early.killed_tasks, early.recomputed_tasks) == (0, 0)
    assert early.runtime == pytest.approx(20 + 10 + 100 + 1)


def test_a_stage_run_again_first_recomputes_its_own_lost_inputs() -> None:
    # A -> B -> C, 2 tasks each (10, 10, 50 s). The Spot node goes at 30 while C runs: it held one partition of
    # A (nobody reads A any more: B is done) and one of B (C still reads it). B must run that partition again,
    # which reads A's lost partition: A runs again first (the cascade), then B, then the killed C task.
    model = workload(
        [stage(0, (), [10.0, 10.0]), stage(1, (0,), [10.0, 10.0]), stage(2, (1,), [50.0, 50.0])],
        [(0, [(0, (0, 1, 2))])],
    )
    hit = simulate(model, _spot_pair(), _interrupt_task_node(25.0))
    assert (hit.killed_tasks, hit.recomputed_tasks) == (1, 2)
    assert hit.runtime == pytest.approx(70 + 10 + 10 + 50)  # the core node is free at 70


def test_replacement_node_arrives_after_provisioning() -> None:
    model = one_stage(4, 100.0)
    opts = SimOptions(
        resample=False,
        notice_seconds=10.0,
        provisioning_seconds=30.0,
        scheduled_interruptions=(ScheduledInterruption(0.0, group="task"),),
    )
    result = simulate(model, _spot_pair(), opts)
    # t=0: both nodes take a task; the Spot node is gone at 10 (task killed), a replacement is up at 40.
    # Core: tasks 0-100, 100-200. Replacement: 40-140 (the killed task), 140-240.
    assert result.nodes_added == 1
    assert result.runtime == pytest.approx(240.0)


def test_cost_bills_every_node_per_second_with_the_minimum() -> None:
    model = one_stage(8, 30.0)
    shape = ClusterShape.emr(core=2)  # + an m5.xlarge master
    result = simulate(model, shape, EXACT)
    assert result.runtime == pytest.approx(30.0)
    hourly = DEFAULT_CATALOG["m5.xlarge"].on_demand_hourly + DEFAULT_CATALOG["m5.xlarge"].emr_hourly
    assert result.cost_usd == pytest.approx(3 * hourly * 60 / 3600)  # 30 s billed as 60 s
    long = simulate(one_stage(8, 600.0), shape, EXACT)
    assert long.cost_usd == pytest.approx(3 * hourly * 600 / 3600)
    assert long.node_seconds["ON_DEMAND"] == pytest.approx(1800.0)
    spot = simulate(one_stage(8, 600.0), ClusterShape.emr(core=1, task=1), EXACT)
    assert spot.node_seconds["SPOT"] == pytest.approx(600.0)
    assert spot.cost_usd < long.cost_usd  # the Spot node is cheaper than the on-demand one


def test_managed_scaling_grows_for_pending_tasks_and_shrinks_when_idle() -> None:
    model = workload([stage(0, (), [60.0] * 40), stage(1, (), [10.0])], [(0, [(0, (0,))]), (1800.0, [(1, (1,))])])
    fixed = simulate(model, ClusterShape.emr(core=1), EXACT)
    policy = ScalingPolicy(ComputeLimits(UnitType.INSTANCES, 1, 6), evaluation_seconds=10, idle_seconds_to_scale_in=60)
    scaled = simulate(model, ClusterShape.emr(core=1), replace(EXACT, scaling=policy, provisioning_seconds=60))
    assert scaled.peak_nodes == 6
    assert scaled.nodes_added == 5
    assert scaled.nodes_removed == 5  # idle through the 30-min driver gap
    assert scaled.runtime < fixed.runtime
    # Without scale-in the same peak costs more (idle nodes billed through the gap).
    no_shrink = replace(policy, idle_seconds_to_scale_in=1e9)
    kept = simulate(model, ClusterShape.emr(core=1), replace(EXACT, scaling=no_shrink, provisioning_seconds=60))
    assert kept.nodes_removed == 0
    assert kept.runtime == pytest.approx(scaled.runtime)
    assert kept.cost_usd > scaled.cost_usd


def test_scale_in_keeps_nodes_holding_needed_shuffle_output() -> None:
    # A's output is read by C after a 30-min driver gap: shuffle-aware scale-in keeps the nodes holding it.
    model = workload([stage(0, (), [60.0] * 24), stage(2, (0,), [1.0])], [(0, [(0, (0,))]), (1800.0, [(1, (2,))])])
    policy = ScalingPolicy(ComputeLimits(UnitType.INSTANCES, 1, 6), evaluation_seconds=10, idle_seconds_to_scale_in=60)
    opts = replace(EXACT, scaling=policy, provisioning_seconds=60)
    aware = simulate(model, ClusterShape.emr(core=1), opts)
    assert aware.nodes_added == 5
    assert aware.recomputed_tasks == 0  # only nodes without output were removed (one ran no task)
    blind = simulate(model, ClusterShape.emr(core=1), replace(opts, scaling=replace(policy, shuffle_aware=False)))
    assert blind.nodes_removed > aware.nodes_removed
    assert blind.recomputed_tasks > 0
    assert blind.runtime > aware.runtime


def test_unfinishable_runs_are_reported_not_hung() -> None:
    # Every Spot node is reclaimed within seconds and never replaced in time: the job cannot finish.
    model = one_stage(4, 3600.0)
    shape = ClusterShape((NodeGroup("TASK", "m5.xlarge", 2, "SPOT", "task"),), master_type=None)
    opts = SimOptions(spot_rate_per_hour=3600.0, provisioning_seconds=5, notice_seconds=1, max_simulated_seconds=600)
    result = simulate(model, shape, opts)
    assert not result.finished
    assert result.runtime == float("inf")
    assert monte_carlo(model, shape, opts, repetitions=2).unfinished == 2


def test_a_thousand_nodes_and_a_hundred_thousand_tasks_in_seconds() -> None:
    rng = random.Random(1)
    model = workload(
        [
            stage(0, (), [rng.expovariate(1 / 20) for _ in range(50_000)], fixed=0.05),
            stage(1, (), [rng.expovariate(1 / 10) for _ in range(20_000)], fixed=0.05),
            stage(2, (0, 1), [rng.expovariate(1 / 15) for _ in range(20_000)], fixed=0.05),
            stage(3, (2,), [rng.expovariate(1 / 5) for _ in range(10_000)], fixed=0.05),
        ],
        [(2.0, [(0, (0, 1, 2, 3))])],
    )
    shape = ClusterShape.emr(core=100, task=900)
    start = time.process_time()  # CPU time: other processes on the machine do not count
    result = simulate(model, shape, SimOptions(spot_rate_per_hour=0.02), seed=1)
    elapsed = time.process_time() - start
    assert result.finished and result.tasks == 100_000
    assert result.tasks_launched >= 100_000
    assert result.peak_nodes >= 1000
    # About 2-3 CPU seconds here; the bound catches a quadratic slip, not a slow machine.
    assert elapsed < 15.0, f"{elapsed:.1f} s"
