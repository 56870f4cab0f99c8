"""Declarative scaling experiments: the YAML file, validated, and the points it expands to.

An experiment is the cross product of its workloads (each at one or more data sizes), cluster shapes, Spot
interruption rates and scaling policies, repeated ``repetitions`` times::

    name: task-scaling
    workloads:
      - {name: access-logs, job: access_logs, records: [200000, 400000]}
    shapes:
      - {name: no-task, core: 1, task: 0}
      - {name: two-spot, core: 1, task: 2, task_market: SPOT}
    spot_interruption_rates: [0.0, 30.0]   # per task node and hour, on the simulated clock
    scaling:
      - null                               # no managed scaling
      - {name: elastic, minimum: 2, maximum: 6}
    repetitions: 2
    cluster:                               # fields of the cluster config shared by every point
      resources: {cpus_per_vcpu: 0.25, memory_mib_per_gib: 64}
      spot: {time_scale: 0.05}

Every point has a stable id (a hash of what it is), which is what makes a rerun resume: points whose result
row is already in the results table are not run again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cluster.config import ClusterConfig, parse_config
from cluster.errors import ConfigError
from cluster.instances import DEFAULT_CATALOG, InstanceType
from cluster.provider import Market

_NAME = r"^[a-z][a-z0-9_-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkloadSpec(_Model):
    """One of the project's jobs at one or more data sizes."""

    name: str = Field(pattern=_NAME)
    job: str = Field(min_length=1, description="Workload kind (see cluster.experiments.workloads.WORKLOADS).")
    records: list[int] = Field(min_length=1, description="Input sizes, in records.")
    options: dict[str, str] = Field(default_factory=dict, description="Extra job arguments (--KEY value).")

    @field_validator("records")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        bad = [s for s in sizes if s <= 0]
        if bad:
            raise ValueError(f"sizes must be positive record counts, got {bad}")
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"sizes repeat: {sizes}")
        return sizes


class ShapeSpec(_Model):
    """Core and task node counts and their instance types."""

    name: str = Field(pattern=_NAME)
    core: int = Field(1, ge=1, description="Core nodes (on-demand, as on EMR).")
    task: int = Field(0, ge=0)
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.xlarge"
    task_instance_type: str = "m5.xlarge"
    task_market: Market = "SPOT"


class ScalingSpec(_Model):
    """A managed scaling policy in instances (see ``managed_scaling`` in the cluster config)."""

    name: str = Field(pattern=_NAME)
    minimum: int = Field(ge=1)
    maximum: int = Field(ge=1)
    maximum_on_demand: int | None = Field(None, ge=0)
    maximum_core: int | None = Field(None, ge=0)
    scale_out_cooldown_seconds: float = Field(5.0, ge=0)
    scale_in_cooldown_seconds: float = Field(10.0, ge=0)
    idle_seconds_before_scale_in: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSpec:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) is above maximum ({self.maximum})")
        return self

    def to_config(self) -> dict[str, Any]:
        return {
            "unit_type": "Instances",
            **self.model_dump(exclude={"name"}, exclude_none=True),
            "evaluation_interval_seconds": 1.0,
        }


def _no_scaling() -> list[ScalingSpec | None]:
    return [None]


class ExperimentSpec(_Model):
    """A whole experiment file."""

    name: str = Field(pattern=_NAME)
    description: str = ""
    workloads: list[WorkloadSpec] = Field(min_length=1)
    shapes: list[ShapeSpec] = Field(min_length=1)
    spot_interruption_rates: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    scaling: list[ScalingSpec | None] = Field(default_factory=_no_scaling, min_length=1)
    repetitions: int = Field(1, ge=1, le=100)
    seed: int = 0
    cluster: dict[str, Any] = Field(default_factory=dict, description="Shared cluster config fields.")
    results_table: str = Field("experiments.runs", pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")

    @field_validator("spot_interruption_rates")
    @classmethod
    def _rates(cls, rates: list[float]) -> list[float]:
        bad = [r for r in rates if r < 0]
        if bad:
            raise ValueError(f"interruption rates are per hour and cannot be negative, got {bad}")
        return rates

    @model_validator(mode="after")
    def _unique_names(self) -> ExperimentSpec:
        for label, names in (
            ("workloads", [w.name for w in self.workloads]),
            ("shapes", [s.name for s in self.shapes]),
            ("scaling", [s.name for s in self.scaling if s is not None]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: names must be unique, repeated: {', '.join(dupes)}")
        reserved = {"name", "instance_groups", "instance_fleets", "managed_scaling", "steps"}
        clash = sorted(reserved & set(self.cluster))
        if clash:
            raise ValueError(f"cluster: {', '.join(clash)} are set by each point, not by the shared config")
        return self


@dataclass(frozen=True)
class Point:
    """One run of one workload size on one cluster setting."""

    experiment: str
    workload: WorkloadSpec
    records: int
    shape: ShapeSpec
    spot_rate: float
    scaling: ScalingSpec | None
    repetition: int

    @property
    def scaling_name(self) -> str:
        return self.scaling.name if self.scaling else "none"

    @property
    def cluster_key(self) -> tuple[str, float, str]:
        """Points with the same key can share one cluster."""
        return (self.shape.name, self.spot_rate, self.scaling_name)

    @property
    def id(self) -> str:
        what = {
            "experiment": self.experiment,
            "workload": self.workload.model_dump(),
            "records": self.records,
            "shape": self.shape.model_dump(),
            "spot_rate": self.spot_rate,
            "scaling": self.scaling.model_dump() if self.scaling else None,
            "repetition": self.repetition,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return (
            f"{self.workload.name}@{self.records:,} on {self.shape.name} "
            f"spot={self.spot_rate:g}/h scaling={self.scaling_name} rep {self.repetition}"
        )


def has_spot(shape: ShapeSpec, scaling: ScalingSpec | None) -> bool:
    """Whether a cluster of this shape can hold Spot nodes (task nodes now, or added by managed scaling)."""
    return shape.task_market == "SPOT" and (shape.task > 0 or scaling is not None)


def expand(spec: ExperimentSpec) -> list[Point]:
    """Every point, grouped so that points sharing a cluster are adjacent, repetitions last.

    A Spot interruption rate above 0 on a shape that can hold no Spot node would repeat the rate-0 point, so
    that combination is left out.
    """
    points = [
        Point(spec.name, workload, records, shape, rate, scaling, rep)
        for shape, rate, scaling in itertools.product(spec.shapes, spec.spot_interruption_rates, spec.scaling)
        if rate == 0 or has_spot(shape, scaling)
        for rep in range(1, spec.repetitions + 1)
        for workload in spec.workloads
        for records in workload.records
    ]
    return sorted(points, key=lambda p: (p.repetition, _index(spec, p)))


def _index(spec: ExperimentSpec, p: Point) -> tuple[int, int, int]:
    return (
        spec.shapes.index(p.shape),
        spec.spot_interruption_rates.index(p.spot_rate),
        spec.scaling.index(p.scaling),
    )


def cluster_config(
    spec: ExperimentSpec, point: Point, catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG
) -> ClusterConfig:
    """The validated cluster config for a point (its shape, Spot rate and scaling over the shared fields).

    Raises:
        ConfigError: The combination is not a valid cluster (field and reason).
    """
    shape = point.shape
    data: dict[str, Any] = json.loads(json.dumps(spec.cluster))
    data["name"] = f"{spec.name}-{shape.name}"
    groups: dict[str, Any] = {
        "master": {"instance_type": shape.master_instance_type, "count": 1},
        "core": {"instance_type": shape.core_instance_type, "count": shape.core},
        "task": [],
    }
    if shape.task or point.scaling is not None:
        groups["task"] = [
            {
                "name": "task",
                "instance_type": shape.task_instance_type,
                "count": shape.task,
                "market": shape.task_market,
            }
        ]
    data["instance_groups"] = groups
    if point.scaling is not None:
        data["managed_scaling"] = point.scaling.to_config()
    spot = dict(data.get("spot") or {})
    spot["interruption_rate_per_hour"] = point.spot_rate if point.spot_rate > 0 else None
    spot.setdefault("seed", spec.seed + point.repetition)
    data["spot"] = spot
    return parse_config(data, catalog=catalog)


def parse_experiment(data: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a parsed experiment mapping.

    Raises:
        ConfigError: The first problem's field and reason (all of them in ``problems``).
    """
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in err["loc"]) or "<root>", err["msg"]) for err in exc.errors()]
        raise ConfigError(problems[0][0], problems[0][1], problems=problems) from None
    from cluster.experiments.workloads import workload

    for w in spec.workloads:
        workload(w.job)
    # Build every distinct cluster now so that a bad shape fails before the first run, not hours in.
    seen: set[tuple[str, float, str]] = set()
    for point in expand(spec):
        if point.cluster_key not in seen:
            seen.add(point.cluster_key)
            try:
                cluster_config(spec, point)
            except ConfigError as exc:
                raise ConfigError(
                    f"shapes[{point.shape.name}] with scaling {point.scaling_name}: {exc.field}", exc.reason
                ) from None
    return spec


def load_experiment(path: Path | str) -> ExperimentSpec:
    """Read and validate an experiment YAML file.

    Raises:
        ConfigError: Unreadable file, bad YAML or an invalid experiment.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("<root>", f"expected a mapping at the top of {path}, got {type(data).__name__}")
    return parse_experiment(data)


def describe_points(points: Sequence[Point]) -> str:
    """A one-line summary: how many points, clusters and runs."""
    clusters = {(p.repetition, p.cluster_key) for p in points}
    return f"{len(points)} runs on {len(clusters)} cluster launches"
