"""The cluster configuration (YAML) as validated models.

:func:`load_config` rejects a bad file before anything starts, naming the field (dotted path, list indexes in
brackets) and the reason, e.g. ``instance_groups.master.count: must be 1 (or 3 for high availability), got 2``.
Shape and ranges are checked by pydantic; the cross-field rules of EMR by :func:`config_problems`.

A file using most sections (only ``name`` and the instance groups or fleets are required)::

    name: demo
    release: emr-7.2.0
    applications: [Hadoop, Spark]
    backend: local                         # or ray (attach), with address: 10.0.0.5:6379
    instance_groups:
      master: {instance_type: m5.xlarge, count: 1}
      core: {instance_type: m5.xlarge, count: 2}
      task:
        - {name: spot-task, instance_type: m5.xlarge, count: 2, market: SPOT, bid_price: 0.10}
    bootstrap_actions: []                  # e.g. [{path: scripts/setup.sh, args: [--fast]}]
    managed_scaling:
      unit_type: Instances                 # Instances | VCPU | InstanceFleetUnits
      minimum: 4
      maximum: 10
      maximum_on_demand: 4
      maximum_core: 2
      scale_out_cooldown_seconds: 60
      scale_in_cooldown_seconds: 300
    auto_termination: {idle_timeout_seconds: 3600}
    step_concurrency: 1
    steps:
      - {name: events, script: jobs/events_job.py, args: [--rows, "1000"], action_on_failure: CONTINUE}
    spot:
      time_scale: 0.1                      # spot durations run 10x faster on the clock
      notice_seconds: 120
      interruption_band: advisor           # or a band ("<5%") or interruption_rate_per_hour
      scheduled: [{at_seconds: 600, group: spot-task}]
      price_drift: true

Instance fleets replace ``instance_groups`` with targets in units::

    instance_fleets:
      master: {target_on_demand_units: 1, instance_types: [{instance_type: m5.xlarge}]}
      core: {target_on_demand_units: 8, instance_types: [{instance_type: m5.xlarge, weighted_capacity: 4}]}
      task:
        target_spot_units: 16
        instance_types: [{instance_type: m5.2xlarge}, {instance_type: r5.xlarge}]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cluster.errors import ConfigError
from cluster.hdfs import default_replication
from cluster.instances import DEFAULT_CATALOG, AdvisorBand, InstanceType
from cluster.provider import Market, Role
from cluster.scaling import UnitType
from cluster.steps import MAX_CONCURRENCY, ActionOnFailure, StepSpec

log = logging.getLogger(__name__)

#: Applications EMR can install (the simulator runs Spark; the others are accepted and ignored).
KNOWN_APPLICATIONS = frozenset(
    {
        "Spark", "Hadoop", "Hive", "Livy", "JupyterEnterpriseGateway", "JupyterHub", "Zeppelin", "Presto",
        "Trino", "HBase", "Flink", "Tez", "Pig", "Hue", "Ganglia", "Oozie", "Sqoop", "ZooKeeper", "Phoenix",
        "HCatalog", "Iceberg", "Delta", "Hudi",
    }
)  # fmt: skip
MAX_TASK_GROUPS = 48
MAX_FLEET_INSTANCE_TYPES = 30
MAX_BOOTSTRAP_ACTIONS = 16
_RELEASE = re.compile(r"^emr-(\d+)\.(\d+)\.(\d+)$")
#: Built-in backends (see :mod:`cluster.backends`).
BACKEND_NAMES = ("local", "ray")
_PLUGIN_BACKEND = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ADDRESS = re.compile(r"^(ray://)?[^\s:/]+:\d{1,5}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceGroupConfig(_Model):
    """A uniform instance group: one type, one market, a count."""

    name: str | None = Field(None, min_length=1, description="Group name (default: 'master', 'core', 'task-<n>').")
    instance_type: str
    count: int = Field(ge=0)
    market: Market = "ON_DEMAND"
    bid_price: float | None = Field(None, gt=0, description="Maximum Spot price, USD/h (you pay the Spot price).")


class InstanceGroupsConfig(_Model):
    master: InstanceGroupConfig
    core: InstanceGroupConfig | None = None
    task: list[InstanceGroupConfig] = Field(default_factory=list)


class FleetInstanceTypeConfig(_Model):
    instance_type: str
    weighted_capacity: float | None = Field(None, gt=0, description="Units per instance (default: its vCPUs).")
    bid_price: float | None = Field(None, gt=0)
    bid_price_as_percentage_of_on_demand: float | None = Field(None, gt=0, le=1000)


class InstanceFleetConfig(_Model):
    """An instance fleet: capacity targets in units, filled from a list of weighted instance types."""

    target_on_demand_units: float = Field(0, ge=0)
    target_spot_units: float = Field(0, ge=0)
    instance_types: list[FleetInstanceTypeConfig]


class InstanceFleetsConfig(_Model):
    master: InstanceFleetConfig
    core: InstanceFleetConfig | None = None
    task: InstanceFleetConfig | None = None


class BootstrapActionConfig(_Model):
    """A script run on every node before it takes work (relative paths: relative to the config file)."""

    name: str | None = None
    path: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)


class ManagedScalingConfig(_Model):
    """EMR managed scaling ``ComputeLimits`` plus the simulator's timing knobs."""

    unit_type: UnitType = UnitType.INSTANCES
    minimum: float = Field(ge=1)
    maximum: float = Field(ge=1)
    maximum_on_demand: float | None = Field(None, ge=0)
    maximum_core: float | None = Field(None, ge=0)
    scale_out_cooldown_seconds: float = Field(60.0, ge=0)
    scale_in_cooldown_seconds: float = Field(300.0, ge=0)
    evaluation_interval_seconds: float = Field(5.0, gt=0, description="EMR evaluates every 5-10 s.")
    idle_seconds_before_scale_in: float = Field(60.0, ge=0, description="A node must be idle this long to go.")


class AutoTerminationConfig(_Model):
    idle_timeout_seconds: float = Field(3600.0, ge=60, le=7 * 24 * 3600)


class ScheduledInterruptionConfig(_Model):
    """Interrupt ``count`` Spot nodes at ``at_seconds`` (simulated seconds after the cluster started)."""

    at_seconds: float = Field(ge=0)
    node_id: str | None = None
    group: str | None = None
    role: Literal["CORE", "TASK"] | None = None
    count: int = Field(1, ge=1)


class SpotConfig(_Model):
    """Spot interruptions and prices. Durations here are *simulated* seconds; clock = simulated x time_scale."""

    notice_seconds: float = Field(120.0, ge=0)
    time_scale: float = Field(1.0, gt=0, description="Clock seconds per simulated second (0.1: ten times faster).")
    seed: int = 0
    interruption_rate_per_hour: float | dict[str, float] | None = None
    interruption_band: AdvisorBand | Literal["advisor"] | None = None
    rate_multiplier: float = Field(1.0, ge=0)
    scheduled: list[ScheduledInterruptionConfig] = Field(default_factory=list)
    price_drift: bool = False
    price_step_seconds: float = Field(300.0, gt=0)
    price_volatility: float = Field(0.2, ge=0)


class ResourcesConfig(_Model):
    """How instance sizes shrink onto this machine (see ``instances.ResourceScale``)."""

    cpus_per_vcpu: float = Field(0.25, gt=0)
    memory_mib_per_gib: float = Field(64.0, gt=0)


class StepConfig(_Model):
    name: str = Field(min_length=1)
    script: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    spark_conf: dict[str, str] = Field(default_factory=dict)
    action_on_failure: ActionOnFailure = ActionOnFailure.CONTINUE

    @field_validator("action_on_failure", mode="before")
    @classmethod
    def _alias(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return ActionOnFailure.parse(value)
        except ValueError:
            choices = ", ".join(a.value for a in ActionOnFailure)
            raise ValueError(f"must be one of {choices} (or TERMINATE_JOB_FLOW), got {value!r}") from None

    def to_spec(self) -> StepSpec:
        return StepSpec(self.name, self.script, tuple(self.args), dict(self.spark_conf), self.action_on_failure)


class ClusterConfig(_Model):
    """One cluster, as written in its YAML file."""

    name: str = Field(min_length=1, max_length=256)
    release: str = "emr-7.2.0"
    applications: list[str] = Field(default_factory=lambda: ["Hadoop", "Spark"])
    hdfs: bool = Field(True, description="Run HDFS on the core nodes (needs at least one core node).")
    hdfs_replication: int | None = Field(None, ge=1, description="dfs.replication (default: EMR's for the core count).")
    instance_groups: InstanceGroupsConfig | None = None
    instance_fleets: InstanceFleetsConfig | None = None
    bootstrap_actions: list[BootstrapActionConfig] = Field(default_factory=list)
    bootstrap_failure_tolerance: float = Field(
        0.5, ge=0, le=1, description="Share of launch core/task nodes that may fail bootstrap before the cluster does."
    )
    bootstrap_timeout_seconds: float = Field(600.0, gt=0)
    managed_scaling: ManagedScalingConfig | None = None
    auto_termination: AutoTerminationConfig | None = None
    keep_alive: bool = Field(True, description="Stay up (WAITING) when no steps are left (KeepJobFlowAlive...).")
    step_concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    steps: list[StepConfig] = Field(default_factory=list)
    spot: SpotConfig = Field(default_factory=SpotConfig)  # type: ignore[arg-type]
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)  # type: ignore[arg-type]
    decommission_timeout_seconds: float = Field(
        20.0, ge=0, description="Clock seconds a scale-in node drains before removal."
    )
    backend: str = Field(
        "local",
        description="Where nodes run: 'local' (a multi-node Ray cluster on this machine), 'ray' (attach to the "
        "running Ray cluster at `address`), or a plug-in '<module>:<factory>' (see cluster.backends).",
    )
    address: str | None = Field(
        None, description="backend 'ray': the Ray head's address, host:port (default: $RAY_ADDRESS)."
    )

    @property
    def uses_fleets(self) -> bool:
        return self.instance_fleets is not None

    @property
    def release_version(self) -> tuple[int, int, int]:
        match = _RELEASE.match(self.release)
        if match is None:
            raise ConfigError("release", f"expected emr-X.Y.Z, got {self.release!r}")
        major, minor, patch = (int(g) for g in match.groups())
        return major, minor, patch

    def launch_core_count(self) -> int:
        """Core instances at launch (fleets: instances needed to fill the targets with the first type)."""
        if self.instance_groups is not None:
            return self.instance_groups.core.count if self.instance_groups.core else 0
        fleets = self.instance_fleets
        if fleets is None or fleets.core is None or not fleets.core.instance_types:
            return 0
        weight = fleet_weight(fleets.core.instance_types[0])
        total = fleets.core.target_on_demand_units + fleets.core.target_spot_units
        return int(-(-total // weight))

    def replication(self) -> int:
        """dfs.replication: the configured one, else EMR's default for the launch core count."""
        return self.hdfs_replication or default_replication(max(1, self.launch_core_count()))

    def warnings(self) -> list[str]:
        """Legal but risky choices (logged by :func:`load_config`)."""
        out: list[str] = []
        groups, fleets = self.instance_groups, self.instance_fleets
        if groups is not None:
            if groups.master.market == "SPOT":
                out.append("instance_groups.master.market: a Spot master ends the cluster when reclaimed")
            if groups.core is not None and groups.core.market == "SPOT":
                out.append("instance_groups.core.market: Spot core nodes lose HDFS data when reclaimed")
        if fleets is not None:
            if fleets.master.target_spot_units > 0:
                out.append("instance_fleets.master: a Spot master ends the cluster when reclaimed")
            if fleets.core is not None and fleets.core.target_spot_units > 0:
                out.append("instance_fleets.core.target_spot_units: Spot core nodes lose HDFS data when reclaimed")
        spot_settings = self.spot.interruption_rate_per_hour is not None or self.spot.interruption_band is not None
        if (spot_settings or self.spot.scheduled) and not self.has_spot_capacity():
            out.append("spot: interruptions are configured but no group or fleet uses Spot")
        return out

    def has_spot_capacity(self) -> bool:
        if self.instance_groups is not None:
            groups = [self.instance_groups.master, *([self.instance_groups.core] if self.instance_groups.core else [])]
            return any(g.market == "SPOT" for g in [*groups, *self.instance_groups.task])
        if self.instance_fleets is not None:
            fleets = [self.instance_fleets.master, self.instance_fleets.core, self.instance_fleets.task]
            return any(f is not None and f.target_spot_units > 0 for f in fleets)
        return False

    def group_names(self) -> list[str]:
        """Names of the capacity groups: instance groups by name, fleets as ``<fleet>`` (``core``, ``task``)."""
        if self.instance_groups is not None:
            names = [self.instance_groups.master.name or "master"]
            if self.instance_groups.core is not None:
                names.append(self.instance_groups.core.name or "core")
            names += [g.name or f"task-{i + 1}" for i, g in enumerate(self.instance_groups.task)]
            return names
        fleets = self.instance_fleets
        assert fleets is not None
        return ["master", *(["core"] if fleets.core else []), *(["task"] if fleets.task else [])]


def fleet_weight(option: FleetInstanceTypeConfig, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG) -> float:
    """The option's units per instance (console default: the type's vCPUs)."""
    if option.weighted_capacity is not None:
        return option.weighted_capacity
    itype = catalog.get(option.instance_type)
    return float(itype.vcpu) if itype is not None else 1.0


def _version_at_least(version: tuple[int, int, int], *minimum: tuple[int, int, int]) -> bool:
    """``version >= minimum`` where several minimums are per major line (e.g. 5.30.0 and 6.1.0)."""
    same_major = [m for m in minimum if m[0] == version[0]]
    if same_major:
        return version >= same_major[0]
    return version >= min(minimum)


def config_problems(
    cfg: ClusterConfig, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG, base_dir: Path | None = None
) -> list[tuple[str, str]]:
    """Every cross-field rule ``cfg`` breaks, as ``(field, reason)``; empty when the config is good."""
    problems: list[tuple[str, str]] = []

    def bad(field: str, reason: str) -> None:
        problems.append((field, reason))

    def check_type(field: str, name: str) -> None:
        if name not in catalog:
            bad(field, f"unknown instance type {name!r} (known: {', '.join(sorted(catalog))})")

    version: tuple[int, int, int] | None = None
    try:
        version = cfg.release_version
    except ConfigError as exc:
        bad(exc.field, exc.reason)

    unknown_apps = [a for a in cfg.applications if a not in KNOWN_APPLICATIONS]
    if unknown_apps:
        bad("applications", f"unknown application(s) {unknown_apps} (known: {', '.join(sorted(KNOWN_APPLICATIONS))})")
    elif "Spark" not in cfg.applications:
        bad("applications", "Spark is required: lakeforge steps are Spark applications")

    groups, fleets = cfg.instance_groups, cfg.instance_fleets
    core_units = 0.0
    if (groups is None) == (fleets is None):
        bad("instance_groups", "give exactly one of instance_groups or instance_fleets")
    elif groups is not None:
        check_type("instance_groups.master.instance_type", groups.master.instance_type)
        if groups.master.count not in (1, 3):
            bad("instance_groups.master.count", f"must be 1 (or 3 for high availability), got {groups.master.count}")
        elif groups.master.count == 3 and version is not None and version < (5, 23, 0):
            bad("instance_groups.master.count", f"3 masters need emr-5.23.0 or later, release is {cfg.release}")
        listed: list[tuple[str, InstanceGroupConfig]] = [("instance_groups.master", groups.master)]
        if groups.core is not None:
            listed.append(("instance_groups.core", groups.core))
            core_units = groups.core.count
        listed += [(f"instance_groups.task[{i}]", g) for i, g in enumerate(groups.task)]
        for field, group in listed[1:]:
            check_type(f"{field}.instance_type", group.instance_type)
        for field, group in listed:
            if group.bid_price is not None and group.market != "SPOT":
                bad(f"{field}.bid_price", "bid_price only applies to market SPOT")
        if len(groups.task) > MAX_TASK_GROUPS:
            bad("instance_groups.task", f"at most {MAX_TASK_GROUPS} task groups, got {len(groups.task)}")
        names = cfg.group_names()
        for i, name in enumerate(names):
            if name in names[:i]:
                bad("instance_groups", f"group name {name!r} is used twice")
        if cfg.hdfs and core_units == 0:
            bad(
                "instance_groups.core.count",
                "HDFS is on (hdfs: true) but there are no core nodes; add some or set hdfs: false",
            )
    elif fleets is not None:
        if version is not None and (version < (4, 8, 0) or version[:2] == (5, 0)):
            bad("instance_fleets", f"instance fleets need emr-4.8.0 or later (not 5.0.x), release is {cfg.release}")
        named: list[tuple[str, InstanceFleetConfig]] = [("instance_fleets.master", fleets.master)]
        if fleets.core is not None:
            named.append(("instance_fleets.core", fleets.core))
            core_units = fleets.core.target_on_demand_units + fleets.core.target_spot_units
        if fleets.task is not None:
            named.append(("instance_fleets.task", fleets.task))
        for field, fleet in named:
            if not fleet.instance_types:
                bad(f"{field}.instance_types", "list at least one instance type")
            if len(fleet.instance_types) > MAX_FLEET_INSTANCE_TYPES:
                bad(f"{field}.instance_types", f"at most {MAX_FLEET_INSTANCE_TYPES} instance types per fleet")
            seen: set[str] = set()
            for i, option in enumerate(fleet.instance_types):
                check_type(f"{field}.instance_types[{i}].instance_type", option.instance_type)
                if option.instance_type in seen:
                    bad(f"{field}.instance_types[{i}].instance_type", f"{option.instance_type} is listed twice")
                seen.add(option.instance_type)
                if option.bid_price is not None and option.bid_price_as_percentage_of_on_demand is not None:
                    bad(
                        f"{field}.instance_types[{i}]",
                        "give bid_price or bid_price_as_percentage_of_on_demand, not both",
                    )
        if fleets.master.target_on_demand_units + fleets.master.target_spot_units != 1:
            bad("instance_fleets.master", "target_on_demand_units + target_spot_units must be 1 (one master)")
        if cfg.hdfs and core_units == 0:
            bad(
                "instance_fleets.core",
                "HDFS is on (hdfs: true) but the core fleet has no capacity; add some or set hdfs: false",
            )

    if cfg.hdfs and cfg.hdfs_replication is not None and core_units and cfg.hdfs_replication > cfg.launch_core_count():
        bad("hdfs_replication", f"{cfg.hdfs_replication} is above the {cfg.launch_core_count()} core node(s) at launch")

    if len(cfg.bootstrap_actions) > MAX_BOOTSTRAP_ACTIONS:
        bad("bootstrap_actions", f"at most {MAX_BOOTSTRAP_ACTIONS} bootstrap actions, got {len(cfg.bootstrap_actions)}")
    for i, action in enumerate(cfg.bootstrap_actions):
        path = Path(action.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            bad(f"bootstrap_actions[{i}].path", f"no such file: {path}")

    ms = cfg.managed_scaling
    if ms is not None:
        if version is not None and (version < (5, 30, 0) or version == (6, 0, 0)):
            bad("managed_scaling", f"managed scaling needs emr-5.30.0 or later (not 6.0.0), release is {cfg.release}")
        if ms.minimum > ms.maximum:
            bad("managed_scaling.minimum", f"{ms.minimum:g} is above maximum {ms.maximum:g}")
        if ms.maximum_on_demand is not None and ms.maximum_on_demand > ms.maximum:
            bad("managed_scaling.maximum_on_demand", f"{ms.maximum_on_demand:g} is above maximum {ms.maximum:g}")
        if ms.maximum_core is not None and ms.maximum_core > ms.maximum:
            bad("managed_scaling.maximum_core", f"{ms.maximum_core:g} is above maximum {ms.maximum:g}")
        if ms.unit_type == UnitType.INSTANCE_FLEET_UNITS and groups is not None:
            bad("managed_scaling.unit_type", "InstanceFleetUnits needs instance_fleets; use Instances or VCPU")
        if ms.unit_type == UnitType.INSTANCES:
            for key in ("minimum", "maximum", "maximum_on_demand", "maximum_core"):
                value = getattr(ms, key)
                if value is not None and value != int(value):
                    bad(f"managed_scaling.{key}", f"Instances are whole numbers, got {value:g}")

    if cfg.auto_termination is not None and version is not None:
        if not _version_at_least(version, (5, 30, 0), (6, 1, 0)):
            bad("auto_termination", f"auto-termination needs emr-5.30.0/6.1.0 or later, release is {cfg.release}")

    if cfg.step_concurrency > 1:
        if version is not None and version < (5, 28, 0):
            bad("step_concurrency", f"concurrent steps need emr-5.28.0 or later, release is {cfg.release}")
        for i, step in enumerate(cfg.steps):
            if step.action_on_failure != ActionOnFailure.CONTINUE:
                bad(
                    f"steps[{i}].action_on_failure",
                    f"{step.action_on_failure.value} is not allowed with step_concurrency "
                    f"{cfg.step_concurrency} > 1 (only CONTINUE)",
                )

    if cfg.backend not in BACKEND_NAMES and not _PLUGIN_BACKEND.match(cfg.backend):
        bad(
            "backend",
            f"must be one of {', '.join(BACKEND_NAMES)} or a plug-in '<module>:<factory>', got {cfg.backend!r}",
        )
    if cfg.address is not None:
        if cfg.backend == "local":
            bad("address", "only applies to backend 'ray' (the local backend starts its own Ray cluster)")
        elif not _ADDRESS.match(cfg.address):
            bad("address", f"expected host:port of the Ray head (e.g. 10.0.0.5:6379), got {cfg.address!r}")

    spot = cfg.spot
    if spot.interruption_rate_per_hour is not None and spot.interruption_band is not None:
        bad("spot", "give interruption_rate_per_hour or interruption_band, not both")
    if isinstance(spot.interruption_rate_per_hour, dict):
        for name, rate in spot.interruption_rate_per_hour.items():
            check_type(f"spot.interruption_rate_per_hour.{name}", name)
            if rate < 0:
                bad(f"spot.interruption_rate_per_hour.{name}", f"must be >= 0, got {rate:g}")
    elif spot.interruption_rate_per_hour is not None and spot.interruption_rate_per_hour < 0:
        bad("spot.interruption_rate_per_hour", f"must be >= 0, got {spot.interruption_rate_per_hour:g}")
    known_groups = set(cfg.group_names()) if (groups is None) != (fleets is None) else set()
    for i, sched in enumerate(spot.scheduled):
        chosen = [k for k in ("node_id", "group", "role") if getattr(sched, k) is not None]
        if len(chosen) > 1:
            bad(f"spot.scheduled[{i}]", f"choose nodes by one of node_id, group or role, not {chosen}")
        if sched.group is not None and known_groups and sched.group not in known_groups:
            bad(f"spot.scheduled[{i}].group", f"no group {sched.group!r} (groups: {', '.join(sorted(known_groups))})")
    return problems


_TYPE_TAGS = frozenset({"float", "int", "str", "bool", "list", "dict", "none"})


def _loc(loc: Sequence[int | str]) -> str:
    """Dotted field path of a pydantic error location, without the union-member tags pydantic adds."""
    out = ""
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in _TYPE_TAGS):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<root>"


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG,
) -> ClusterConfig:
    """Validate an already-parsed config mapping.

    Args:
        data: The YAML document as a mapping.
        base_dir: Directory relative bootstrap paths are resolved against (the config file's).
        catalog: Known instance types.

    Returns:
        The config, bootstrap paths made absolute.

    Raises:
        ConfigError: With the first problem's field and reason, and every problem in ``problems``.
    """
    try:
        cfg = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        merged: dict[str, list[str]] = {}
        for err in exc.errors():
            merged.setdefault(_loc(err["loc"]), []).append(err["msg"])
        problems = [(loc, "; or ".join(msgs)) for loc, msgs in merged.items()]
        raise ConfigError(problems[0][0], problems[0][1], problems=problems) from None
    problems = config_problems(cfg, catalog, base_dir)
    if problems:
        raise ConfigError(problems[0][0], problems[0][1], problems=problems)
    if base_dir is not None and cfg.bootstrap_actions:
        resolved = [
            a.model_copy(update={"path": str(p if (p := Path(a.path)).is_absolute() else (base_dir / p).resolve())})
            for a in cfg.bootstrap_actions
        ]
        cfg = cfg.model_copy(update={"bootstrap_actions": resolved})
    for warning in cfg.warnings():
        log.warning("cluster config %s: %s", cfg.name, warning)
    return cfg


def load_config(path: Path | str, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG) -> ClusterConfig:
    """Read and validate a cluster YAML file.

    Raises:
        ConfigError: Unreadable file, bad YAML, or any rule broken (field path and reason).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("<root>", f"expected a mapping at the top of {path}, got {type(data).__name__}")
    return parse_config(data, base_dir=path.parent.resolve(), catalog=catalog)


# Re-exported for callers building configs in code.
__all__ = [
    "AutoTerminationConfig",
    "BootstrapActionConfig",
    "ClusterConfig",
    "FleetInstanceTypeConfig",
    "InstanceFleetConfig",
    "InstanceFleetsConfig",
    "InstanceGroupConfig",
    "InstanceGroupsConfig",
    "ManagedScalingConfig",
    "ResourcesConfig",
    "Role",
    "ScheduledInterruptionConfig",
    "SpotConfig",
    "StepConfig",
    "config_problems",
    "fleet_weight",
    "load_config",
    "parse_config",
]
