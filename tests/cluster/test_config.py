"""Cluster config: good files load; each bad one is refused before start with its field and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.config import load_config, parse_config
from cluster.errors import ConfigError
from cluster.scaling import UnitType
from cluster.steps import ActionOnFailure
from tests.cluster.conftest import config_dict

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _fleets(data: dict[str, Any]) -> None:
    del data["instance_groups"]
    data["instance_fleets"] = {
        "master": {"target_on_demand_units": 1, "instance_types": [{"instance_type": "m5.xlarge"}]},
        "core": {
            "target_on_demand_units": 8,
            "instance_types": [{"instance_type": "m5.xlarge", "weighted_capacity": 4}],
        },
        "task": {
            "target_spot_units": 8,
            "instance_types": [{"instance_type": "m5.xlarge"}, {"instance_type": "r5.xlarge"}],
        },
    }


def _both(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for m in mutations:
            m(data)

    return mutate


SCALING = {"unit_type": "Instances", "minimum": 2, "maximum": 10}
STEP_FAIL_TERMINATE = {"name": "s", "script": "job.py", "action_on_failure": "TERMINATE_CLUSTER"}

BAD: list[tuple[str, Mutation, str, str]] = [
    (
        "unknown type",
        _set("instance_groups.core.instance_type", "m9.huge"),
        "instance_groups.core.instance_type",
        "unknown instance type 'm9.huge'",
    ),
    (
        "unknown task type",
        _set("instance_groups.task.0.instance_type", "x1"),
        "instance_groups.task[0].instance_type",
        "unknown instance type",
    ),
    ("two masters", _set("instance_groups.master.count", 2), "instance_groups.master.count", "must be 1 (or 3"),
    ("zero masters", _set("instance_groups.master.count", 0), "instance_groups.master.count", "must be 1"),
    (
        "HA on old release",
        _both(_set("instance_groups.master.count", 3), _set("release", "emr-5.20.0")),
        "instance_groups.master.count",
        "5.23.0",
    ),
    (
        "negative core",
        _set("instance_groups.core.count", -1),
        "instance_groups.core.count",
        "greater than or equal to 0",
    ),
    (
        "negative task",
        _set("instance_groups.task.0.count", -3),
        "instance_groups.task[0].count",
        "greater than or equal to 0",
    ),
    ("no core with HDFS", _set("instance_groups.core.count", 0), "instance_groups.core.count", "HDFS"),
    (
        "bid on on-demand",
        _set("instance_groups.core.bid_price", 0.1),
        "instance_groups.core.bid_price",
        "only applies to market SPOT",
    ),
    (
        "bad market",
        _set("instance_groups.task.0.market", "RESERVED"),
        "instance_groups.task[0].market",
        "'ON_DEMAND' or 'SPOT'",
    ),
    ("unknown key", _set("instance_groups.core.cuont", 3), "instance_groups.core.cuont", "Extra inputs"),
    (
        "groups and fleets",
        _both(_fleets, _set("instance_groups", config_dict()["instance_groups"])),
        "instance_groups",
        "exactly one",
    ),
    ("neither groups nor fleets", lambda d: d.pop("instance_groups"), "instance_groups", "exactly one"),
    (
        "duplicate group names",
        _set("instance_groups.task", [{"name": "a", "instance_type": "m5.xlarge", "count": 1}] * 2),
        "instance_groups",
        "used twice",
    ),
    ("bad release", _set("release", "7.2"), "release", "emr-X.Y.Z"),
    ("unknown application", _set("applications", ["Spark", "Sparkle"]), "applications", "Sparkle"),
    ("no Spark", _set("applications", ["Hadoop"]), "applications", "Spark is required"),
    (
        "min above max",
        _set("managed_scaling", {**SCALING, "minimum": 12}),
        "managed_scaling.minimum",
        "above maximum 10",
    ),
    (
        "on-demand above max",
        _set("managed_scaling", {**SCALING, "maximum_on_demand": 11}),
        "managed_scaling.maximum_on_demand",
        "above maximum",
    ),
    (
        "core above max",
        _set("managed_scaling", {**SCALING, "maximum_core": 11}),
        "managed_scaling.maximum_core",
        "above maximum",
    ),
    (
        "fleet units with groups",
        _set("managed_scaling", {**SCALING, "unit_type": "InstanceFleetUnits"}),
        "managed_scaling.unit_type",
        "needs instance_fleets",
    ),
    (
        "fractional instances",
        _set("managed_scaling", {**SCALING, "maximum": 4.5}),
        "managed_scaling.maximum",
        "whole numbers",
    ),
    (
        "scaling on old release",
        _both(_set("managed_scaling", SCALING), _set("release", "emr-5.29.0")),
        "managed_scaling",
        "5.30.0",
    ),
    (
        "scaling on 6.0.0",
        _both(_set("managed_scaling", SCALING), _set("release", "emr-6.0.0")),
        "managed_scaling",
        "not 6.0.0",
    ),
    (
        "zero minimum",
        _set("managed_scaling", {**SCALING, "minimum": 0}),
        "managed_scaling.minimum",
        "greater than or equal to 1",
    ),
    (
        "idle timeout too short",
        _set("auto_termination", {"idle_timeout_seconds": 30}),
        "auto_termination.idle_timeout_seconds",
        "greater than or equal to 60",
    ),
    (
        "idle timeout too long",
        _set("auto_termination", {"idle_timeout_seconds": 8 * 24 * 3600}),
        "auto_termination.idle_timeout_seconds",
        "less than or equal",
    ),
    (
        "auto-termination on 6.0",
        _both(_set("auto_termination", {}), _set("release", "emr-6.0.1")),
        "auto_termination",
        "6.1.0",
    ),
    (
        "concurrency with TERMINATE_CLUSTER",
        _both(_set("step_concurrency", 4), _set("steps", [STEP_FAIL_TERMINATE])),
        "steps[0].action_on_failure",
        "only CONTINUE",
    ),
    (
        "concurrency with CANCEL_AND_WAIT",
        _both(
            _set("step_concurrency", 2),
            _set("steps", [{**STEP_FAIL_TERMINATE, "action_on_failure": "CANCEL_AND_WAIT"}]),
        ),
        "steps[0].action_on_failure",
        "only CONTINUE",
    ),
    ("concurrency too high", _set("step_concurrency", 257), "step_concurrency", "less than or equal to 256"),
    (
        "concurrency on old release",
        _both(_set("step_concurrency", 2), _set("release", "emr-5.27.0")),
        "step_concurrency",
        "5.28.0",
    ),
    (
        "bad action",
        _set("steps", [{**STEP_FAIL_TERMINATE, "action_on_failure": "EXPLODE"}]),
        "steps[0].action_on_failure",
        "TERMINATE_CLUSTER",
    ),
    (
        "missing bootstrap script",
        _set("bootstrap_actions", [{"path": "nope.sh"}]),
        "bootstrap_actions[0].path",
        "no such file",
    ),
    (
        "too many bootstrap actions",
        _set("bootstrap_actions", [{"path": "ok.sh"}] * 17),
        "bootstrap_actions",
        "at most 16",
    ),
    (
        "rate and band",
        _set("spot", {"interruption_rate_per_hour": 1.0, "interruption_band": "<5%"}),
        "spot",
        "not both",
    ),
    (
        "rate for unknown type",
        _set("spot", {"interruption_rate_per_hour": {"m9.huge": 1.0}}),
        "spot.interruption_rate_per_hour.m9.huge",
        "unknown instance type",
    ),
    ("negative rate", _set("spot", {"interruption_rate_per_hour": -1.0}), "spot.interruption_rate_per_hour", ">= 0"),
    ("bad band", _set("spot", {"interruption_band": "sometimes"}), "spot.interruption_band", "<5%"),
    ("zero time scale", _set("spot", {"time_scale": 0}), "spot.time_scale", "greater than 0"),
    (
        "schedule for unknown group",
        _set("spot", {"scheduled": [{"at_seconds": 10, "group": "nope"}]}),
        "spot.scheduled[0].group",
        "no group 'nope'",
    ),
    (
        "schedule with two selectors",
        _set("spot", {"scheduled": [{"at_seconds": 10, "group": "spot-task", "role": "TASK"}]}),
        "spot.scheduled[0]",
        "one of",
    ),
    ("replication above core count", _set("hdfs_replication", 3), "hdfs_replication", "above the 2 core node(s)"),
    (
        "fleet master target 2",
        _both(_fleets, _set("instance_fleets.master.target_on_demand_units", 2)),
        "instance_fleets.master",
        "must be 1",
    ),
    (
        "fleet unknown type",
        _both(_fleets, _set("instance_fleets.task.instance_types", [{"instance_type": "zz.big"}])),
        "instance_fleets.task.instance_types[0].instance_type",
        "unknown instance type",
    ),
    (
        "fleet duplicate type",
        _both(_fleets, _set("instance_fleets.task.instance_types", [{"instance_type": "m5.xlarge"}] * 2)),
        "instance_fleets.task.instance_types[1].instance_type",
        "listed twice",
    ),
    (
        "fleet zero weight",
        _both(
            _fleets,
            _set("instance_fleets.core.instance_types", [{"instance_type": "m5.xlarge", "weighted_capacity": 0}]),
        ),
        "instance_fleets.core.instance_types[0].weighted_capacity",
        "greater than 0",
    ),
    (
        "fleet core empty with HDFS",
        _both(_fleets, _set("instance_fleets.core.target_on_demand_units", 0)),
        "instance_fleets.core",
        "HDFS",
    ),
    (
        "fleet both bids",
        _both(
            _fleets,
            _set(
                "instance_fleets.task.instance_types",
                [{"instance_type": "m5.xlarge", "bid_price": 0.1, "bid_price_as_percentage_of_on_demand": 50}],
            ),
        ),
        "instance_fleets.task.instance_types[0]",
        "not both",
    ),
    ("fleet on old release", _both(_fleets, _set("release", "emr-5.0.3")), "instance_fleets", "4.8.0"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), [pytest.param(m, f, r, id=i) for i, m, f, r in BAD])
def test_bad_config_is_refused_with_field_and_reason(tmp_path: Path, mutate: Mutation, field: str, reason: str) -> None:
    (tmp_path / "ok.sh").write_text("true\n")
    data = config_dict()
    mutate(data)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    fields = dict(info.value.problems)
    assert field in fields, info.value.problems
    assert reason in fields[field]
    assert info.value.field == info.value.problems[0][0]


def test_good_groups_config_loads_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_text("true\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            config_dict(
                bootstrap_actions=[{"path": "scripts/setup.sh", "args": ["--x"]}],
                managed_scaling=SCALING,
                steps=[{"name": "a", "script": "jobs/a.py", "action_on_failure": "TERMINATE_JOB_FLOW"}],
            )
        )
    )
    cfg = load_config(path)
    assert cfg.bootstrap_actions[0].path == str((tmp_path / "scripts" / "setup.sh").resolve())
    assert cfg.steps[0].action_on_failure == ActionOnFailure.TERMINATE_CLUSTER  # legacy alias
    assert cfg.managed_scaling is not None and cfg.managed_scaling.unit_type == UnitType.INSTANCES
    assert cfg.spot.notice_seconds == 120 and cfg.spot.time_scale == 1.0
    assert cfg.release_version == (7, 2, 0)
    assert cfg.replication() == 1  # 2 core nodes
    assert cfg.group_names() == ["master", "core", "spot-task"]
    assert cfg.keep_alive and cfg.step_concurrency == 1


def test_good_fleet_config_loads() -> None:
    data = config_dict(managed_scaling={"unit_type": "InstanceFleetUnits", "minimum": 4, "maximum": 40})
    _fleets(data)
    cfg = parse_config(data)
    assert cfg.uses_fleets
    assert cfg.launch_core_count() == 2  # 8 units of weight-4 instances
    assert cfg.group_names() == ["master", "core", "task"]


@pytest.mark.parametrize(("core", "expected"), [(1, 1), (3, 1), (4, 2), (9, 2), (10, 3), (20, 3)])
def test_replication_default_follows_launch_core_count(core: int, expected: int) -> None:
    data = config_dict()
    data["instance_groups"]["core"]["count"] = core
    assert parse_config(data).replication() == expected


def test_spot_core_is_allowed_but_warned(caplog: pytest.LogCaptureFixture) -> None:
    data = config_dict()
    data["instance_groups"]["core"]["market"] = "SPOT"
    with caplog.at_level("WARNING", logger="cluster.config"):
        cfg = parse_config(data)
    assert any("Spot core nodes lose HDFS data" in w for w in cfg.warnings())
    assert "Spot core nodes lose HDFS data" in caplog.text


def test_interruptions_without_spot_capacity_are_warned() -> None:
    data = config_dict(spot={"interruption_rate_per_hour": 1.0})
    data["instance_groups"]["task"] = []
    assert any("no group or fleet uses Spot" in w for w in parse_config(data).warnings())


def test_hdfs_off_allows_no_core_nodes() -> None:
    data = config_dict(hdfs=False)
    data["instance_groups"]["core"]["count"] = 0
    assert parse_config(data).launch_core_count() == 0


def test_every_problem_is_reported_at_once() -> None:
    data = config_dict(step_concurrency=2, steps=[STEP_FAIL_TERMINATE])
    data["instance_groups"]["master"]["count"] = 2
    data["instance_groups"]["core"]["instance_type"] = "m9.huge"
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    fields = [f for f, _ in info.value.problems]
    assert fields == [
        "instance_groups.master.count",
        "instance_groups.core.instance_type",
        "steps[0].action_on_failure",
    ]
    assert "3 problems" in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError) as info:
        load_config(scalar)
    assert info.value.field == "<root>"


def test_the_examples_in_the_module_docstring_are_valid() -> None:
    import cluster.config as module

    doc = module.__doc__ or ""
    groups_yaml = doc.split("::\n", 1)[1].split("\nInstance fleets", 1)[0]
    cfg = parse_config(yaml.safe_load(groups_yaml))
    assert cfg.managed_scaling is not None and cfg.spot.interruption_band == "advisor"
    fleets_yaml = doc.rsplit("::\n", 1)[1]
    data = yaml.safe_load(groups_yaml)
    del data["instance_groups"], data["spot"]["scheduled"]
    data.update(yaml.safe_load(fleets_yaml))
    assert parse_config(data).uses_fleets
