"""Spot interruption schedules: Poisson (seeded), scheduled, on command; notice window and time scale."""

from __future__ import annotations

import math
import statistics

import pytest

from cluster.spot import (
    Interruption,
    PoissonInterruptions,
    ScheduledInterruption,
    ScheduledInterruptions,
    SpotInterrupter,
    SpotNode,
    Window,
)


def nodes(n: int, launched: float = 0.0, itype: str = "m5.xlarge", prefix: str = "i-") -> list[SpotNode]:
    return [SpotNode(f"{prefix}{k}", itype, "TASK", "task", launched + k) for k in range(n)]


def test_window_scales_the_notice() -> None:
    window = Window(notice_seconds=120.0, time_scale=0.1)
    assert window.notice_clock_seconds == pytest.approx(12.0)
    assert window.interruption("i-1", 50.0, "command") == Interruption("i-1", 50.0, 62.0, "command")


def test_poisson_draws_are_seeded_per_node_and_scaled() -> None:
    a = PoissonInterruptions(2.0, seed=1, window=Window(120.0, 1.0))
    b = PoissonInterruptions(2.0, seed=1, window=Window(120.0, 1.0))
    fast = PoissonInterruptions(2.0, seed=1, window=Window(120.0, 0.1))
    other = PoissonInterruptions(2.0, seed=2, window=Window(120.0, 1.0))
    node = nodes(1, launched=100.0)[0]
    t = a.notice_time(node)
    assert t == b.notice_time(node) != other.notice_time(node)
    assert fast.notice_time(node) - 100.0 == pytest.approx((t - 100.0) * 0.1)
    assert a.due(t - 0.001, [node]) == []
    assert a.due(t, [node]) == [Interruption(node.node_id, t, t + 120.0, "poisson")]


def test_poisson_draws_repeat_across_runs_whatever_the_node_ids() -> None:
    """Node ids are random per run; the n-th node of a group gets the same draw with the same seed."""
    first = PoissonInterruptions(2.0, seed=3)
    second = PoissonInterruptions(2.0, seed=3)
    run1, run2 = nodes(3, prefix="i-aaa"), nodes(3, prefix="i-bbb")
    times1 = [first.notice_time(n) for n in run1]
    assert [second.notice_time(n) for n in run2] == times1
    assert len(set(times1)) == 3  # but every node of the group has its own draw
    assert [first.notice_time(n) for n in run1] == times1  # asked again: the same, not a new ordinal


def test_poisson_mean_matches_the_rate() -> None:
    source = PoissonInterruptions(0.5, seed=0)  # one every 2 simulated hours on average
    times = [source.notice_time(n) - n.launched_at for n in nodes(4000)]
    assert statistics.mean(times) == pytest.approx(2 * 3600, rel=0.06)


def test_rates_per_type_and_zero_rate_never_interrupts() -> None:
    source = PoissonInterruptions({"r5.xlarge": 10.0}, seed=0)
    never = nodes(3, itype="m5.xlarge")
    assert all(math.isinf(source.notice_time(n)) for n in never)
    assert source.due(1e12, never) == []
    assert len(source.due(1e9, nodes(3, itype="r5.xlarge", prefix="r-"))) == 3


def test_scheduled_interruptions_fire_once_oldest_first_and_report_misses() -> None:
    sched = ScheduledInterruptions(
        [
            ScheduledInterruption(100.0, role="TASK", count=2),
            ScheduledInterruption(200.0, group="core"),
            ScheduledInterruption(300.0, node_id="i-2"),
        ],
        origin=1000.0,
        window=Window(120.0, 0.5),
    )
    pool = nodes(3, launched=0.0)
    assert sched.due(1049.0, pool) == []
    fired = sched.due(1050.0, pool)  # 100 simulated s x 0.5 after origin
    assert [(i.node_id, i.notice_at, i.terminate_at) for i in fired] == [
        ("i-0", 1050.0, 1110.0),
        ("i-1", 1050.0, 1110.0),
    ]
    assert sched.due(1060.0, pool) == []  # fired once
    assert sched.due(1100.0, pool) == [] and sched.misses == [ScheduledInterruption(200.0, group="core")]
    assert [i.node_id for i in sched.due(1150.0, pool)] == ["i-2"]


def test_interrupter_merges_sources_and_interrupts_a_node_once() -> None:
    window = Window(120.0, 1.0)
    interrupter = SpotInterrupter(
        window,
        poisson=PoissonInterruptions(1e6, seed=0, window=window),  # everything is due at once
        scheduled=ScheduledInterruptions([ScheduledInterruption(0.0)], origin=0.0, window=window),
    )
    pool = nodes(2, launched=10.0)
    interrupter.request("i-1", 5.0)
    first = interrupter.collect(20.0, pool)
    assert sorted(i.node_id for i in first) == ["i-0", "i-1"]
    assert next(i for i in first if i.node_id == "i-1").cause == "command"
    assert interrupter.collect(30.0, pool) == []


def test_command_for_a_node_that_is_gone_is_dropped() -> None:
    interrupter = SpotInterrupter()
    interrupter.request("i-9", 0.0)
    assert interrupter.collect(1.0, nodes(1)) == []
