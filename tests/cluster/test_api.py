"""The Cluster facade end to end on a fake provider and a fake clock (no Ray, no Spark)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog.settings import ClusterSettings, Settings
from cluster.api import Cluster
from cluster.errors import ClusterStateError, ConfigError, DataLossError, NotFoundError
from cluster.events import EntityKind, EventLog
from cluster.instances import GIB, AdvisorBand
from cluster.provider import NodeSpec
from cluster.states import ClusterState, ClusterStateChangeReason, NodeState, StepState
from tests.cluster.conftest import Env, config_dict
from tests.cluster.fakes import FakeNodeProvider

C, N, S = ClusterState, NodeState, StepState
R = ClusterStateChangeReason


def states_of(cluster: Cluster, role: str | None = None) -> list[NodeState]:
    return [n.state for n in cluster.list_nodes(role=role)]


def test_launch_brings_every_node_up_and_waits(env: Env) -> None:
    cluster = env.cluster()
    assert cluster.state == C.WAITING
    assert [h.state for h in cluster.machine.history] == [C.STARTING, C.BOOTSTRAPPING, C.WAITING]
    assert env.provider.master is not None and env.provider.master.node_id == "i-0001"
    assert env.provider.master == NodeSpec("i-0001", "MASTER", "m5.xlarge", "ON_DEMAND", 1.0, GIB)
    assert [(s.node_id, s.role, s.market) for s in env.provider.added] == [
        ("i-0002", "CORE", "ON_DEMAND"),
        ("i-0003", "CORE", "ON_DEMAND"),
        ("i-0004", "TASK", "SPOT"),
        ("i-0005", "TASK", "SPOT"),
    ]
    assert states_of(cluster) == [N.RUNNING] * 5
    node = cluster.node("i-0004")
    assert [h.state for h in node.machine.history] == [N.REQUESTED, N.PROVISIONING, N.BOOTSTRAPPING, N.RUNNING]
    assert cluster.hdfs is not None and cluster.hdfs.live_nodes() == ["i-0002", "i-0003"]
    assert cluster.hdfs.replication == 1
    assert (cluster.dir / "nodes" / "i-0004" / "instance.json").is_file()
    state = (cluster.dir / "state.json").read_text()
    assert '"state": "WAITING"' in state
    assert EventLog.load(cluster.dir / "events.jsonl") == cluster.timeline()
    with pytest.raises(NotFoundError):
        cluster.node("i-9999")
    with pytest.raises(ClusterStateError):
        cluster.start()


def test_ha_cluster_runs_one_master_through_the_provider(env: Env) -> None:
    data = config_dict()
    data["instance_groups"]["master"]["count"] = 3
    cluster = env.cluster(data)
    masters = cluster.list_nodes(role="MASTER")
    assert [n.state for n in masters] == [N.RUNNING] * 3
    assert [n.virtual for n in masters] == [False, True, True]
    assert sum(c.startswith("start ") for c in env.provider.calls) == 1


def test_steps_from_config_run_in_order_and_the_cluster_waits_after(env: Env) -> None:
    cluster = env.cluster(
        config_dict(
            steps=[
                {"name": "a", "script": "jobs/a.py", "args": ["--x", "1"], "spark_conf": {"spark.k": "v"}},
                {"name": "b", "script": "jobs/b.py"},
            ]
        )
    )
    assert cluster.state == C.RUNNING  # launch done, steps pending
    env.tick(cluster, 1)
    handle = env.provider.steps["s-0001"]
    assert (handle.script, handle.args, handle.spark_conf) == ("jobs/a.py", ["--x", "1"], {"spark.k": "v"})
    assert handle.log_dir == cluster.dir / "steps" / "s-0001"
    assert "s-0002" not in env.provider.steps
    handle.finish(0)
    env.tick(cluster, 1)
    env.provider.steps["s-0002"].finish(0)
    env.tick(cluster, 1)
    assert [s.state for s in cluster.list_steps()] == [S.COMPLETED, S.COMPLETED]
    assert cluster.state == C.WAITING
    assert [h.state for h in cluster.machine.history][-2:] == [C.RUNNING, C.WAITING]


def test_add_step_starts_at_once_on_a_waiting_cluster(env: Env) -> None:
    cluster = env.cluster()
    step_id = cluster.add_step("adhoc", "jobs/x.py", ["1"], action_on_failure="CONTINUE")
    assert cluster.state == C.RUNNING and cluster.step(step_id).state == S.RUNNING
    assert cluster.describe_step(step_id)["state"] == "RUNNING"


def test_terminate_cluster_step_failure_ends_with_errors(env: Env) -> None:
    cluster = env.cluster(
        config_dict(
            steps=[
                {"name": "a", "script": "a.py", "action_on_failure": "TERMINATE_CLUSTER"},
                {"name": "b", "script": "b.py"},
            ]
        )
    )
    env.tick(cluster, 1)
    env.provider.steps["s-0001"].finish(1)
    env.tick(cluster, 1)
    assert cluster.state == C.TERMINATED_WITH_ERRORS
    assert cluster.state_reason == R.STEP_FAILURE
    assert [s.state for s in cluster.list_steps()] == [S.FAILED, S.CANCELLED]
    assert env.provider.shut_down and env.provider.alive_nodes() == set()
    assert set(states_of(cluster)) == {N.TERMINATED}
    assert (cluster.dir / "cost.txt").is_file()
    with pytest.raises(ClusterStateError):
        cluster.add_step("late", "x.py")


def test_cancel_and_wait_cancels_pending_and_waits(env: Env) -> None:
    cluster = env.cluster(
        config_dict(
            steps=[
                {"name": "a", "script": "a.py", "action_on_failure": "CANCEL_AND_WAIT"},
                {"name": "b", "script": "b.py"},
            ]
        )
    )
    env.tick(cluster, 1)
    env.provider.steps["s-0001"].finish(2)
    env.tick(cluster, 1)
    assert cluster.state == C.WAITING
    assert "CANCEL_AND_WAIT" in cluster.machine.history[-1].reason
    assert [s.state for s in cluster.list_steps()] == [S.FAILED, S.CANCELLED]
    cluster.add_step("again", "c.py")
    assert cluster.state == C.RUNNING


def test_without_keep_alive_the_cluster_ends_after_its_steps(env: Env) -> None:
    cluster = env.cluster(config_dict(keep_alive=False, steps=[{"name": "a", "script": "a.py"}]))
    env.tick(cluster, 1)
    env.provider.steps["s-0001"].finish(7)  # a CONTINUE failure still ends a transient cluster normally
    env.tick(cluster, 1)
    assert cluster.state == C.TERMINATED and cluster.state_reason == R.ALL_STEPS_COMPLETED


def test_concurrent_steps(env: Env) -> None:
    cluster = env.cluster(config_dict(step_concurrency=2))
    ids = [cluster.add_step(n, f"{n}.py") for n in "abc"]
    assert [cluster.step(i).state for i in ids] == [S.RUNNING, S.RUNNING, S.PENDING]
    with pytest.raises(ConfigError):
        cluster.add_step("d", "d.py", action_on_failure="TERMINATE_CLUSTER")
    assert cluster.cancel_step(ids[0]) == S.CANCEL_PENDING
    env.tick(cluster, 1)
    assert [cluster.step(i).state for i in ids] == [S.CANCELLED, S.RUNNING, S.RUNNING]
    assert env.provider.steps[ids[0]].cancels == [False]


def bootstrap_config(env: Env, **extra: Any) -> dict[str, Any]:
    (env.tmp_path / "setup.sh").write_text("true\n")
    return config_dict(bootstrap_actions=[{"name": "setup", "path": "setup.sh"}], **extra)


def test_a_failing_bootstrap_terminates_that_node_and_it_is_replaced_later(env: Env) -> None:
    env.bootstrap.fail = lambda ctx: ctx.node_id == "i-0005"
    cluster = env.cluster(bootstrap_config(env))
    assert cluster.state == C.WAITING
    failed = cluster.node("i-0005")
    assert failed.state == N.TERMINATED and failed.failure is not None and "setup" in failed.failure
    assert "i-0005" not in env.provider.alive_nodes()
    assert ("i-0005", "setup") in env.bootstrap.runs
    # Bootstrap runs on every node before it joins: the provider never saw the failed one.
    assert all(s.node_id != "i-0005" for s in env.provider.added)
    env.tick(cluster, 1)
    replacement = cluster.node("i-0006")
    assert replacement.state == N.RUNNING and replacement.pool == "spot-task"
    assert ("i-0006", "setup") in env.bootstrap.runs


def test_too_many_bootstrap_failures_end_the_cluster(env: Env) -> None:
    env.bootstrap.fail = lambda ctx: ctx.role in ("TASK", "CORE") and ctx.node_id != "i-0002"
    cluster = env.cluster(bootstrap_config(env))
    assert cluster.state == C.TERMINATED_WITH_ERRORS
    assert cluster.state_reason == R.BOOTSTRAP_FAILURE
    assert "3 of 4" in cluster.state_detail
    assert env.provider.shut_down and env.provider.alive_nodes() == set()
    assert set(states_of(cluster)) == {N.TERMINATED}


def test_master_bootstrap_failure_ends_the_cluster_before_workers_join(env: Env) -> None:
    env.bootstrap.fail = lambda ctx: ctx.role == "MASTER"
    cluster = env.cluster(bootstrap_config(env))
    assert cluster.state == C.TERMINATED_WITH_ERRORS and cluster.state_reason == R.BOOTSTRAP_FAILURE
    assert env.provider.master is None and env.provider.added == []
    assert [e.dst for e in cluster.timeline(kind=EntityKind.CLUSTER)][-2:] == ["TERMINATING", "TERMINATED_WITH_ERRORS"]


def test_provider_failures_count_like_bootstrap_failures_and_suspend_the_group(env: Env) -> None:
    env.provider.fail_add = lambda spec: spec.role == "TASK"
    cluster = env.cluster()
    assert cluster.state == C.WAITING  # 2 of 4 failed: within the 50% tolerance
    env.tick(cluster, 1)  # replacements are tried: the third failure in a row suspends the group
    pool = cluster.pools["spot-task"]
    assert pool.suspended
    assert [e.entity_id for e in cluster.timeline(kind=EntityKind.GROUP, dst="SUSPENDED")] == ["spot-task"]
    tried = len(cluster.list_nodes(role="TASK"))
    env.tick(cluster, 1)
    assert len(cluster.list_nodes(role="TASK")) == tried  # no more attempts
    env.provider.fail_add = None
    cluster.resize("spot-task", 2)
    assert not pool.suspended
    assert states_of(cluster, "TASK").count(N.RUNNING) == 2


def test_auto_termination_after_the_idle_timeout_only(env: Env) -> None:
    cluster = env.cluster(config_dict(auto_termination={"idle_timeout_seconds": 600}))
    env.tick(cluster, 599)
    assert cluster.state == C.WAITING
    step_id = cluster.add_step("long", "long.py")
    env.tick(cluster, 5_000)
    assert cluster.state == C.RUNNING  # busy clusters are not idle
    env.provider.steps[step_id].finish(0)
    env.tick(cluster, 1)
    assert cluster.state == C.WAITING
    env.tick(cluster, 599)
    assert cluster.state == C.WAITING
    env.tick(cluster, 1)
    assert cluster.state == C.TERMINATED and cluster.state_reason == R.IDLE_TIMEOUT
    assert env.provider.shut_down


def test_spot_interruption_notice_decommission_reclaim_and_replacement(env: Env) -> None:
    cluster = env.cluster(config_dict(spot={"time_scale": 0.1}))
    step_id = cluster.add_step("etl", "etl.py")
    env.tick(cluster, 30)
    interruption = cluster.interrupt("i-0004")
    assert interruption.terminate_at - interruption.notice_at == pytest.approx(12.0)  # 120 s x 0.1
    node = cluster.node("i-0004")
    assert node.state == N.DECOMMISSIONING and env.provider.decommissioned == ["i-0004"]
    assert cluster.step(step_id).counters.lost_executors == 2
    env.tick(cluster, 0)
    assert cluster.node("i-0006").state == N.RUNNING  # replacement requested at the notice
    env.tick(cluster, 11.9)
    assert node.state == N.DECOMMISSIONING and "i-0004" in env.provider.alive_nodes()
    env.tick(cluster, 0.1)
    assert node.state == N.SPOT_INTERRUPTED
    assert ("i-0004", False) in env.provider.removed
    counters = cluster.step(step_id).counters
    assert counters.interrupted_nodes == 1 and counters.wasted_node_seconds == pytest.approx(42.0)
    notice = cluster.timeline(kind=EntityKind.SPOT, dst="NOTICE")
    assert [e.entity_id for e in notice] == ["i-0004"] and notice[0].details["cause"] == "command"
    assert len(cluster.list_nodes(role="TASK", states=frozenset({N.RUNNING}))) == 2
    with pytest.raises(ClusterStateError):
        cluster.interrupt("i-0002")  # on-demand core
    with pytest.raises(ClusterStateError):
        cluster.interrupt("i-0004")  # already gone


def test_a_step_ending_within_the_notice_window_still_counts_the_interruption(env: Env) -> None:
    cluster = env.cluster(config_dict(spot={"time_scale": 0.1}))
    step_id = cluster.add_step("short", "short.py")
    env.tick(cluster, 20)
    cluster.interrupt("i-0004")
    env.tick(cluster, 5)
    env.provider.steps[step_id].finish(0)
    env.tick(cluster, 1)
    assert cluster.step(step_id).state == StepState.COMPLETED
    later = cluster.add_step("later", "later.py")
    env.tick(cluster, 10)
    assert cluster.node("i-0004").state == N.SPOT_INTERRUPTED
    short = cluster.step(step_id).counters
    assert short.interrupted_nodes == 1 and short.wasted_node_seconds == pytest.approx(20.0)  # charged at the notice
    assert short.lost_executors == 2
    late = cluster.step(later).counters  # started after the notice, on a draining node: charged at the loss
    assert late.interrupted_nodes == 1 and late.lost_executors == 0


def test_scheduled_interruptions_from_the_config(env: Env) -> None:
    cluster = env.cluster(
        config_dict(
            spot={"time_scale": 0.5, "notice_seconds": 20, "scheduled": [{"at_seconds": 100, "group": "spot-task"}]}
        )
    )
    env.tick(cluster, 49)
    assert states_of(cluster, "TASK") == [N.RUNNING, N.RUNNING]
    env.tick(cluster, 1)  # 100 simulated s x 0.5
    assert cluster.node("i-0004").state == N.DECOMMISSIONING
    env.tick(cluster, 10)  # 20 s notice x 0.5
    assert cluster.node("i-0004").state == N.SPOT_INTERRUPTED


def test_spot_core_node_re_replicates_on_notice_when_it_can(env: Env) -> None:
    data = config_dict(spot={"time_scale": 0.1})
    data["instance_groups"]["core"]["market"] = "SPOT"
    cluster = env.cluster(data)
    assert cluster.hdfs is not None
    cluster.hdfs.write("/data/a", b"payload")
    holder = cluster.hdfs.status("/data/a")["blocks"][0]["replicas"][0]  # type: ignore[index]
    cluster.interrupt(str(holder))
    env.tick(cluster, 12)
    assert cluster.node(str(holder)).state == N.SPOT_INTERRUPTED
    assert cluster.hdfs.read("/data/a") == b"payload"
    assert cluster.timeline(kind=EntityKind.HDFS, dst="DECOMMISSIONED")


def test_losing_the_only_spot_core_node_loses_its_data(env: Env) -> None:
    data = config_dict(spot={"time_scale": 0.1})
    data["instance_groups"]["core"].update(market="SPOT", count=1)
    cluster = env.cluster(data)
    assert cluster.hdfs is not None
    cluster.hdfs.write("/data/only", b"x")
    cluster.interrupt("i-0002")
    refused = cluster.timeline(kind=EntityKind.HDFS, dst="DECOMMISSION_REFUSED")
    assert refused and "below dfs.replication" in refused[0].reason
    env.tick(cluster, 12)
    with pytest.raises(DataLossError) as info:
        cluster.hdfs.read("/data/only")
    assert info.value.paths == ["hdfs:///data/only"] and info.value.nodes == ["i-0002"]
    lost = cluster.timeline(kind=EntityKind.HDFS, dst="DATA_LOST")
    assert [e.entity_id for e in lost] == ["hdfs:///data/only"]
    assert cluster.describe()["hdfs"]["lost_files"] == ["hdfs:///data/only"]  # type: ignore[index, call-overload]


def test_terminate_instances_kills_without_replacement_and_loses_single_replicas(env: Env) -> None:
    cluster = env.cluster()
    assert cluster.hdfs is not None
    cluster.hdfs.write("/a", b"a")
    holder = str(cluster.hdfs.status("/a")["blocks"][0]["replicas"][0])  # type: ignore[index]
    cluster.terminate_instances([holder])
    assert cluster.node(holder).state == N.TERMINATED and (holder, False) in env.provider.removed
    with pytest.raises(DataLossError):
        cluster.hdfs.read("/a")
    env.tick(cluster, 1)
    assert len(cluster.list_nodes(role="CORE", states=frozenset({N.RUNNING}))) == 1  # not replaced
    assert cluster.pools["core"].target == 1
    with pytest.raises(ClusterStateError):
        cluster.terminate_instances(["i-0001"])


def test_a_vanished_node_is_an_instance_failure_and_is_replaced(env: Env) -> None:
    cluster = env.cluster()
    step_id = cluster.add_step("etl", "etl.py")
    env.provider.vanish("i-0005")
    env.tick(cluster, 10)
    assert cluster.node("i-0005").state == N.TERMINATED
    assert "instance failure" in cluster.node("i-0005").machine.history[-1].reason
    assert cluster.node("i-0006").state == N.RUNNING and cluster.node("i-0006").pool == "spot-task"
    assert cluster.step(step_id).counters.interrupted_nodes == 1


def test_losing_the_master_fails_running_steps_and_the_cluster(env: Env) -> None:
    cluster = env.cluster()
    step_id = cluster.add_step("etl", "etl.py")
    env.provider.vanish("i-0001")
    env.tick(cluster, 1)
    assert cluster.step(step_id).state == S.FAILED
    assert cluster.state == C.TERMINATED_WITH_ERRORS and cluster.state_reason == R.INSTANCE_FAILURE


def test_resize_grows_and_shrinks_a_task_group(env: Env) -> None:
    cluster = env.cluster()
    grown = cluster.resize("spot-task", 4)
    assert grown.targets == {"spot-task": 4.0}
    assert states_of(cluster, "TASK") == [N.RUNNING] * 4
    env.tick(cluster, 100)
    shrunk = cluster.resize("spot-task", 1)
    assert len(shrunk.decommissioning) == 3 and shrunk.refused == ()
    assert [cluster.node(n).state for n in shrunk.decommissioning] == [N.DECOMMISSIONING] * 3
    assert sorted(env.provider.decommissioned) == sorted(shrunk.decommissioning)
    env.tick(cluster, 19)
    assert [cluster.node(n).state for n in shrunk.decommissioning] == [N.DECOMMISSIONING] * 3
    env.tick(cluster, 1)  # decommission_timeout_seconds = 20
    assert [cluster.node(n).state for n in shrunk.decommissioning] == [N.TERMINATED] * 3
    assert all((n, True) in env.provider.removed for n in shrunk.decommissioning)
    env.tick(cluster, 1)
    assert states_of(cluster, "TASK").count(N.RUNNING) == 1  # no replacement for a shrink
    with pytest.raises(ClusterStateError):
        cluster.resize("master", 2)
    with pytest.raises(NotFoundError):
        cluster.resize("nope", 2)
    with pytest.raises(ValueError):
        cluster.resize("spot-task", -1)


def test_core_shrink_stops_at_hdfs_replication(env: Env) -> None:
    data = config_dict()
    data["instance_groups"]["core"]["count"] = 4  # dfs.replication = 2
    cluster = env.cluster(data)
    assert cluster.hdfs is not None and cluster.hdfs.replication == 2
    cluster.hdfs.write("/a", b"a" * 100)
    result = cluster.resize("core", 1)
    assert len(result.decommissioning) == 2 and result.refused
    assert all("below dfs.replication=2" in reason for _, reason in result.refused)
    assert result.targets == {"core": 2.0}
    env.tick(cluster, 30)
    assert len(cluster.list_nodes(role="CORE", states=frozenset({N.RUNNING}))) == 2  # no "replacement" of refused
    assert cluster.hdfs.read("/a") == b"a" * 100
    assert len(cluster.hdfs.live_nodes()) == 2


def test_managed_scaling_scales_out_for_demand_then_in_when_idle(env: Env) -> None:
    cluster = env.cluster(
        config_dict(
            managed_scaling={
                "unit_type": "Instances",
                "minimum": 4,
                "maximum": 8,
                "maximum_core": 2,
                "scale_out_cooldown_seconds": 60,
                "scale_in_cooldown_seconds": 300,
                "idle_seconds_before_scale_in": 60,
            }
        )
    )
    step_id = cluster.add_step("big", "big.py")
    env.provider.steps[step_id].data = {"pending_tasks": 16, "running_tasks": 8}
    env.tick(cluster, 5)
    out = cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_OUT")
    assert len(out) == 1
    details: Any = out[0].details
    assert details["inputs"]["pending_tasks"] == 16
    assert details["additions"] == [{"pool": "spot-task", "role": "TASK", "market": "SPOT", "count": 4, "units": 4.0}]
    assert cluster.pools["spot-task"].target == 6
    assert states_of(cluster, "TASK").count(N.RUNNING) == 6
    env.tick(cluster, 5)  # still demand, but the maximum is reached
    assert len(cluster.timeline(kind=EntityKind.SCALING)) == 1
    env.provider.steps[step_id].finish(0)
    env.tick(cluster, 5)
    env.tick(cluster, 100)  # idle long enough, but within the scale-in cooldown after the scale-out
    assert not cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_IN")
    env.tick(cluster, 300)
    scale_in = cluster.timeline(kind=EntityKind.SCALING, dst="SCALE_IN")
    assert len(scale_in) == 1
    removed: Any = scale_in[0].details["removals"]
    assert len(removed) == 4 and all(cluster.node(n).role == "TASK" for n in removed)
    assert cluster.pools["spot-task"].target == 2 and cluster.pools["core"].target == 2
    env.tick(cluster, 20)
    assert states_of(cluster).count(N.RUNNING) == 5  # master + minimum of 4


def test_managed_scaling_restores_the_minimum_after_losses(env: Env) -> None:
    cluster = env.cluster(config_dict(managed_scaling={"minimum": 4, "maximum": 6}))
    cluster.terminate_instances(["i-0004", "i-0005"])  # not replaced by the group...
    env.tick(cluster, 5)
    decision = cluster.last_scaling_decision
    assert decision is not None and "below minimum" in decision.reason  # ...but by the policy's minimum
    assert len(cluster.list_nodes(states=frozenset({N.RUNNING}))) == 5


def test_terminate_stops_everything_and_writes_the_final_report(env: Env) -> None:
    cluster = env.cluster()
    running = cluster.add_step("a", "a.py")
    pending = cluster.add_step("b", "b.py")
    env.tick(cluster, 3600)
    cluster.terminate()
    assert cluster.state == C.TERMINATED and cluster.state_reason == R.USER_REQUEST
    assert cluster.step(running).state == S.INTERRUPTED and cluster.step(pending).state == S.CANCELLED
    assert env.provider.shut_down and env.provider.alive_nodes() == set()
    assert set(states_of(cluster)) == {N.TERMINATED}
    report = cluster.cost_report()
    spot_hourly = cluster.prices.spot.price("m5.xlarge", 0.0)
    # One hour of 3 on-demand and 2 Spot m5.xlarge: EC2 ($0.192 or the Spot price) + EMR ($0.048 either way).
    assert report.total_usd == pytest.approx(3 * 0.24 + 2 * (spot_hourly + 0.048))
    assert report.step(running).node_seconds == pytest.approx(5 * 3600)
    assert (cluster.dir / "cost.json").is_file() and "total" in (cluster.dir / "cost.txt").read_text()
    cluster.terminate()  # idempotent
    assert cluster.timeline(dst="TERMINATED", kind=EntityKind.CLUSTER)[0].time == env.clock.now


def test_cost_report_bills_spot_and_shares_between_concurrent_steps(env: Env) -> None:
    cluster = env.cluster(config_dict(step_concurrency=2))
    a = cluster.add_step("a", "a.py")
    b = cluster.add_step("b", "b.py")
    env.tick(cluster, 100)
    env.provider.steps[a].finish(0)
    env.provider.steps[b].finish(0)
    env.tick(cluster, 0)
    report = cluster.cost_report()
    assert report.step(a).node_seconds == pytest.approx(5 * 100 / 2)
    assert report.step(a).total_usd == pytest.approx(report.step(b).total_usd)
    spot, od = report.node("i-0004"), report.node("i-0002")
    assert spot.emr_usd == pytest.approx(od.emr_usd) and spot.ec2_usd < od.ec2_usd
    assert cluster.describe()["cost_usd"] == pytest.approx(round(report.total_usd, 6))


def test_fleets_launch_by_weight_and_replace_with_any_type(env: Env) -> None:
    data = config_dict(spot={"time_scale": 0.1})
    del data["instance_groups"]
    data["instance_fleets"] = {
        "master": {"target_on_demand_units": 1, "instance_types": [{"instance_type": "m5.xlarge"}]},
        "core": {"target_on_demand_units": 8, "instance_types": [{"instance_type": "m5.xlarge"}]},
        "task": {
            "target_spot_units": 16,
            "instance_types": [{"instance_type": "r5.xlarge"}, {"instance_type": "m5.2xlarge"}],
        },
    }
    cluster = env.cluster(data)
    assert cluster.state == C.WAITING
    assert [n.instance_type for n in cluster.list_nodes(role="CORE")] == ["m5.xlarge", "m5.xlarge"]  # 4 units each
    tasks = cluster.list_nodes(role="TASK")
    assert sum(n.weight for n in tasks) >= 16 and all(n.market == "SPOT" for n in tasks)
    victim = tasks[0]
    cluster.interrupt(victim.node_id)
    env.tick(cluster, 0)
    live = [n for n in cluster.list_nodes(role="TASK") if n.state == N.RUNNING]
    assert sum(n.weight for n in live) >= 16
    result = cluster.resize("task", spot_units=0)
    assert result.targets == {"task:SPOT": 0.0}


def test_scale_maps_instance_sizes_onto_this_machine(env: Env) -> None:
    data = config_dict(resources={"cpus_per_vcpu": 0.125, "memory_mib_per_gib": 32})
    data["instance_groups"]["task"] = [{"name": "big", "instance_type": "m5.4xlarge", "count": 1}]
    env.cluster(data)
    big = next(s for s in env.provider.added if s.role == "TASK")
    core = next(s for s in env.provider.added if s.role == "CORE")
    assert (big.num_cpus, core.num_cpus) == (2.0, 0.5)
    assert big.memory_bytes == 4 * core.memory_bytes == 2 * GIB


def test_create_validates_before_anything_starts(tmp_path: Path) -> None:
    provider = FakeNodeProvider()
    path = tmp_path / "bad.yaml"
    data = config_dict()
    data["instance_groups"]["master"]["count"] = 2
    path.write_text(yaml.safe_dump(data))
    settings = Settings(home=tmp_path / "lake", cluster=ClusterSettings(reconcile_interval_seconds=0.02))  # type: ignore[call-arg]
    with pytest.raises(ConfigError) as info:
        Cluster.create(path, provider, settings=settings)  # type: ignore[arg-type]
    assert info.value.field == "instance_groups.master.count"
    assert provider.calls == [] and not (tmp_path / "lake" / "clusters").exists()


@pytest.mark.timeout(60)
def test_background_reconciler_with_threads_and_real_clock(tmp_path: Path) -> None:
    provider = FakeNodeProvider()
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config_dict()))
    settings = Settings(home=tmp_path / "lake", cluster=ClusterSettings(reconcile_interval_seconds=0.02))  # type: ignore[call-arg]
    cluster = Cluster.create(path, provider, settings=settings, timeout=30)  # type: ignore[arg-type]
    try:
        assert cluster.state == C.WAITING
        assert cluster.dir.parent == tmp_path / "lake" / "clusters"
        assert cluster._thread is not None and cluster._thread.is_alive()
        step_id = cluster.add_step("a", "a.py")
        provider.steps[step_id].finish(0)
        assert cluster.wait_for_step(step_id, timeout=10).state == S.COMPLETED
        cluster.wait_until(lambda: cluster.state == C.WAITING, timeout=10)
    finally:
        cluster.terminate()
    assert cluster.state == C.TERMINATED and provider.shut_down
    assert not cluster._thread.is_alive()


def test_poisson_interruptions_from_the_config_are_reproducible(env: Env) -> None:
    data = config_dict(spot={"interruption_rate_per_hour": {"m5.xlarge": 360}, "time_scale": 0.1, "seed": 4})
    first = env.cluster(data)
    env.provider = FakeNodeProvider()  # each cluster needs its own nodes
    second = env.cluster(data)
    for c in (first, second):
        env.tick(c, 0)
    env.clock.advance(30)  # mean time to interruption: 10 simulated s = 1 clock s
    for c in (first, second):
        c.tick()
    times = [[e.details["notice_at"] for e in c.timeline(kind=EntityKind.SPOT, dst="NOTICE")] for c in (first, second)]
    assert len(times[0]) >= 2 and times[0] == times[1]
    assert all(n.market == "SPOT" for c in (first,) for n in c.list_nodes() if n.interruption is not None)


@pytest.mark.parametrize(
    ("spot", "expected"),
    [
        ({"interruption_band": "<5%"}, 0.025),
        ({"interruption_band": "advisor"}, 0.125),  # c5.xlarge is in the 10-15% band
        ({"interruption_band": ">20%", "rate_multiplier": 2.0}, None),
        ({}, None),
    ],
)
def test_interruption_rates_from_bands(env: Env, spot: dict[str, Any], expected: float | None) -> None:
    data = config_dict(spot=spot)
    data["instance_groups"]["task"][0]["instance_type"] = "c5.xlarge"
    cluster = env.cluster(data, start=False)
    poisson = cluster.spot.poisson
    if not spot:
        assert poisson is None
        return
    assert poisson is not None
    rate = poisson.rate("c5.xlarge")
    if expected is not None:
        assert 1 - math.exp(-rate * 730) == pytest.approx(expected)
    else:
        assert rate == pytest.approx(2 * AdvisorBand.OVER_20.rate_per_hour)
