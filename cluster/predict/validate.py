"""Prediction error of Ernest and of the cluster simulation on held-out real runs.

Given measured runs (runtime at ``machines`` and ``size``) and the event log of one of them:

* **Ernest** is fitted on the training runs and predicts each held-out run.
* The **simulation** replays the traced run's stages and tasks (:class:`~cluster.predict.model.WorkloadModel`)
  on ``machines`` one-slot nodes (:meth:`ClusterShape.local`, a ``local[k]`` run) with
  ``data_scale = size / traced size``; a prediction is the mean of a Monte-Carlo over seeds. It is reported
  twice:

  - **replay**: the traced task times as they are (``speed = 1``). This assumes a slot runs a task as fast as
    the traced slot did, which fails when the target differs from where the trace was taken (another instance
    type, or on this shared machine another moment's load);
  - **calibrated**: the replayed runtime ``R`` splits into driver-side time ``D = R - T`` (driver time between
    jobs, scheduling delays) and task time ``T`` (the replay with every driver-side time set to zero). A
    driver scale ``a`` (shared) and a slot speed ``1/b_m`` per machine count are fitted by non-negative least
    squares on relative error, ``measured ≈ a·D + b_m·T``, to the *training* runs, the same runs Ernest sees; a
    machine count
    without a training run gets the speed of the nearest one. The prediction is then a simulation with that
    speed and driver scale. The stage structure, task counts and task-time distributions still come from the
    one trace; only two speeds are calibrated. This is how the simulation is meant to be used beyond one
    machine: trace once, time a few small runs on the target nodes, simulate the large cluster.

By default the held-out runs are those at the largest data size (every machine count): "fit on small runs,
predict larger ones"; the traced run is the one at the largest training size with the most machines.
Errors are relative, ``|predicted - measured| / measured``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import nnls

from cluster.predict import ernest
from cluster.predict.calibrate import MeasuredRun
from cluster.predict.model import WorkloadModel
from cluster.predict.simulate import ClusterShape, MonteCarloResult, SimOptions, monte_carlo
from cluster.predict.traces import JobTrace, parse_event_log

#: Bounds of a calibrated slot speed (relative to the traced slot).
SPEED_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class PointPrediction:
    """One measured run and its predictions (``replay``/``calibrated`` are Monte-Carlo means)."""

    machines: int
    size: float
    measured: float
    ernest: float
    replay: float
    calibrated: float
    calibrated_p90: float
    speed: float
    held_out: bool
    traced: bool

    @property
    def ernest_error(self) -> float:
        return ernest.relative_error(self.ernest, self.measured)

    @property
    def replay_error(self) -> float:
        return ernest.relative_error(self.replay, self.measured)

    @property
    def calibrated_error(self) -> float:
        return ernest.relative_error(self.calibrated, self.measured)

    @property
    def role(self) -> str:
        return "held-out" if self.held_out else ("traced" if self.traced else "train")


@dataclass(frozen=True)
class ValidationReport:
    points: tuple[PointPrediction, ...]
    model: ernest.ErnestModel
    traced: tuple[int, float]
    driver_seconds: float
    calibration: Calibration

    @property
    def held_out(self) -> tuple[PointPrediction, ...]:
        return tuple(p for p in self.points if p.held_out)

    @property
    def ernest_error(self) -> float:
        """Mean relative error of Ernest on the held-out runs."""
        return _mean([p.ernest_error for p in self.held_out])

    @property
    def simulation_error(self) -> float:
        """Mean relative error of the speed-calibrated simulation on the held-out runs."""
        return _mean([p.calibrated_error for p in self.held_out])

    @property
    def replay_error(self) -> float:
        """Mean relative error of the pure replay (traced task times as they are) on the held-out runs."""
        return _mean([p.replay_error for p in self.held_out])

    @property
    def replay_error_all(self) -> float:
        """Mean relative error of the pure replay on every run but the traced one."""
        return _mean([p.replay_error for p in self.points if not p.traced])

    @property
    def ernest_training_error(self) -> float:
        return _mean([p.ernest_error for p in self.points if not p.held_out])

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "machines": p.machines,
                "size": p.size,
                "role": p.role,
                "measured_s": round(p.measured, 3),
                "ernest_s": round(p.ernest, 3),
                "ernest_error": round(p.ernest_error, 4),
                "replay_s": round(p.replay, 3),
                "replay_error": round(p.replay_error, 4),
                "simulated_s": round(p.calibrated, 3),
                "simulated_p90_s": round(p.calibrated_p90, 3),
                "simulated_error": round(p.calibrated_error, 4),
                "speed": round(p.speed, 4),
            }
            for p in self.points
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "points": self.rows(),
            "ernest_theta": list(self.model.theta),
            "ernest_model": self.model.describe(),
            "traced": {"machines": self.traced[0], "size": self.traced[1]},
            "driver_seconds": self.driver_seconds,
            "speeds": {str(k): v for k, v in self.calibration.speeds.items()},
            "driver_scale": self.calibration.driver_scale,
            "held_out_mean_error": {
                "ernest": self.ernest_error,
                "simulation": self.simulation_error,
                "replay": self.replay_error,
            },
            "replay_mean_error_all_untraced": self.replay_error_all,
            "ernest_training_error": self.ernest_training_error,
        }

    def to_text(self) -> str:
        header = ("machines", "size", "role", "measured s", "ernest s", "err", "replay s", "err", "simulated s", "err")
        lines = [header]
        for p in self.points:
            lines.append(
                (
                    str(p.machines),
                    f"{p.size:g}",
                    p.role,
                    f"{p.measured:.2f}",
                    f"{p.ernest:.2f}",
                    f"{100 * p.ernest_error:.1f}%",
                    f"{p.replay:.2f}",
                    f"{100 * p.replay_error:.1f}%",
                    f"{p.calibrated:.2f}",
                    f"{100 * p.calibrated_error:.1f}%",
                )
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        out = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        out.insert(1, "  ".join("-" * w for w in widths))
        speeds = ", ".join(f"{k} machine(s) {v:.3f}" for k, v in sorted(self.calibration.speeds.items()))
        out.append(
            f"held-out mean error: ernest {100 * self.ernest_error:.1f}%, simulation {100 * self.simulation_error:.1f}%"
            f" (pure replay {100 * self.replay_error:.1f}%)"
        )
        out.append(f"ernest: time = {self.model.describe()}")
        out.append(f"calibrated slot speeds: {speeds}; driver time x{self.calibration.driver_scale:.3f}")
        return "\n".join(out)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def largest_size(runs: Sequence[MeasuredRun]) -> Callable[[MeasuredRun], bool]:
    """Held-out rule: the runs at the largest data size."""
    top = max(r.size for r in runs)
    return lambda r: r.size == top


def workload_of(run: MeasuredRun, trace: JobTrace | None = None) -> WorkloadModel:
    """The replayable workload of a measured run (its job group and window in its event log)."""
    if trace is None:
        if run.event_log is None:
            raise ValueError("the traced run has no event log")
        trace = parse_event_log(run.event_log)
    if run.group is not None:
        trace = trace.for_group(run.group)
    return WorkloadModel.from_trace(trace, start=run.start, end=run.end, slots=run.machines)


def simulate_local(
    workload: WorkloadModel,
    machines: int,
    data_scale: float,
    *,
    speed: float = 1.0,
    driver_scale: float = 1.0,
    options: SimOptions = SimOptions(),
    repetitions: int = 20,
    seed: int = 0,
) -> MonteCarloResult:
    """Monte-Carlo of the workload on ``machines`` one-slot nodes at ``data_scale``, slot ``speed``."""
    opts = replace(options, data_scale=data_scale, speed=speed, driver_scale=driver_scale)
    return monte_carlo(workload, ClusterShape.local(machines), opts, repetitions=repetitions, seed=seed)


@dataclass(frozen=True)
class Calibration:
    """Slot speed per machine count and the driver-time scale (see the module docstring)."""

    speeds: Mapping[int, float]
    driver_scale: float = 1.0

    def speed(self, machines: int) -> float:
        """The speed of ``machines``, else of the nearest calibrated machine count (1.0 if none)."""
        return speed_for(self.speeds, machines)


def calibrate(
    workload: WorkloadModel,
    runs: Sequence[MeasuredRun],
    traced_size: float,
    *,
    options: SimOptions = SimOptions(),
    repetitions: int = 10,
    seed: int = 0,
) -> Calibration:
    """Fit ``measured ≈ a·D + b_m·T`` (NNLS, relative error) over ``runs``: slot speed ``1/b_m``, driver scale ``a``.

    ``T`` is a run's simulated runtime with every driver-side time set to zero (``driver_scale=0``) and ``D`` the
    rest of its simulated runtime at speed 1. With every task time scaled alike the schedule keeps its order, so
    a simulation at speed ``s`` and driver scale ``a`` takes about ``a·D + T/s``.
    """
    machines = sorted({r.machines for r in runs})
    if not runs:
        return Calibration({})
    column = {m: 1 + i for i, m in enumerate(machines)}
    a = np.zeros((len(runs), 1 + len(machines)))
    for i, r in enumerate(runs):
        scale = r.size / traced_size
        kw: dict[str, Any] = {"options": options, "repetitions": repetitions, "seed": seed}
        full = simulate_local(workload, r.machines, scale, **kw).runtime.mean
        tasks = simulate_local(workload, r.machines, scale, driver_scale=0.0, **kw).runtime.mean
        a[i, 0] = max(0.0, full - tasks) / r.runtime
        a[i, column[r.machines]] = tasks / r.runtime
    coef, _ = nnls(a, np.ones(len(runs)))
    lo, hi = SPEED_BOUNDS
    speeds = {m: min(hi, max(lo, 1.0 / coef[column[m]] if coef[column[m]] > 0 else hi)) for m in machines}
    return Calibration(speeds, float(coef[0]))


def speed_for(speeds: Mapping[int, float], machines: int) -> float:
    """The calibrated speed of ``machines``, else of the nearest calibrated machine count (1.0 if none)."""
    if not speeds:
        return 1.0
    if machines in speeds:
        return speeds[machines]
    nearest = min(speeds, key=lambda m: (abs(math.log(m) - math.log(machines)), -m))
    return speeds[nearest]


def validate(
    runs: Sequence[MeasuredRun],
    *,
    traced: MeasuredRun | None = None,
    held_out: Callable[[MeasuredRun], bool] | None = None,
    repetitions: int = 20,
    seed: int = 0,
    weighting: ernest.Weighting = "absolute",
    options: SimOptions = SimOptions(),
    traces: Mapping[str, JobTrace] | None = None,
    workload: WorkloadModel | None = None,
) -> ValidationReport:
    """Fit Ernest and calibrate slot speeds on the training runs, simulate from ``traced``, compare with every run.

    Args:
        runs: One measured run per (machines, size) point (see :func:`cluster.predict.calibrate.summarize`).
        traced: The run whose event log the simulation replays (default: largest training size, most machines).
        held_out: Which runs neither Ernest nor the speed calibration sees (default: the largest size).
        repetitions: Monte-Carlo repetitions of each simulated point.
        seed: Seed of the simulation.
        weighting: Ernest's least-squares weighting.
        options: Simulation options (``data_scale`` and ``speed`` are set per point).
        traces: Already parsed event logs by path (saves parsing one log twice).
        workload: The traced run's workload, if already built (then its event log is not read).
    """
    if not runs:
        raise ValueError("no runs")
    is_held = held_out or largest_size(runs)
    train = [r for r in runs if not is_held(r)]
    if len(train) < 2:
        raise ValueError("Ernest needs at least two training runs")
    if traced is None:
        candidates = [r for r in train if r.event_log is not None or workload is not None]
        if not candidates:
            raise ValueError("no training run has an event log")
        traced = max(candidates, key=lambda r: (r.size, r.machines, -r.runtime))
    fitted = ernest.fit([r.observation for r in train], weighting=weighting)
    if workload is None:
        trace = None
        if traces is not None and traced.event_log is not None:
            trace = traces.get(str(traced.event_log))
        workload = workload_of(traced, trace)
    calibration = calibrate(workload, train, traced.size, options=options, seed=seed)
    points = []
    for r in runs:
        scale = r.size / traced.size
        replay = simulate_local(workload, r.machines, scale, options=options, repetitions=repetitions, seed=seed)
        speed = calibration.speed(r.machines)
        calibrated = simulate_local(
            workload,
            r.machines,
            scale,
            speed=speed,
            driver_scale=calibration.driver_scale,
            options=options,
            repetitions=repetitions,
            seed=seed,
        )
        points.append(
            PointPrediction(
                machines=r.machines,
                size=r.size,
                measured=r.runtime,
                ernest=fitted.predict(r.size, r.machines),
                replay=replay.runtime.mean,
                calibrated=calibrated.runtime.mean,
                calibrated_p90=calibrated.runtime.p90,
                speed=speed,
                held_out=is_held(r),
                traced=r is traced,
            )
        )
    return ValidationReport(tuple(points), fitted, (traced.machines, traced.size), workload.driver_seconds, calibration)
