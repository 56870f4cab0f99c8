"""Prediction benchmark: Ernest and the cluster simulation against real Spark runs, and the simulation's speed.

Run::

    .venv/bin/python bench/prediction_bench.py            # full run, 5-10 minutes on a quiet machine
    .venv/bin/python bench/prediction_bench.py --quick    # smoke run, about 2 minutes

What it does:

1. **Real runs.** The calibration job (``cluster/predict/calibration_job.py``) under ``spark-submit --master
   local[k]``, one launch per core count (``--cores``, default 1,2), at every data size (``--sizes``), each
   point ``--repeat`` times, with Spark event logs on. A point's runtime is the median of its repetitions.
2. **Validation.** Ernest is fitted on the points below the largest size and predicts the largest size at every
   core count; the simulation replays the event log of the largest training run (most cores) at every point.
   Each held-out point is printed with both predictions and their relative errors; the goal is a mean error
   under 15% on the held-out points.
3. **Simulation speed.** The traced workload is scaled to about ``--tasks`` tasks (more input, and
   ``--shuffle-partitions`` reduce tasks per shuffle stage) and simulated on clusters of ``--nodes`` m5.xlarge
   nodes (a tenth on-demand core nodes, the rest Spot task nodes with ``--spot-rate`` interruptions per hour);
   CPU seconds per simulation are timed (goal: 1000 nodes and 100k tasks in a few seconds), and a Monte-Carlo
   gives the predicted runtime and cost distributions.

Results go to ``bench/results/prediction.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.predict import ernest  # noqa: E402
from cluster.predict.calibrate import MeasuredRun, read_campaign, run_local_campaign, summarize  # noqa: E402
from cluster.predict.model import JobModel, PhaseModel, StageModel, WorkloadModel  # noqa: E402
from cluster.predict.simulate import ClusterShape, SimOptions, monte_carlo, simulate  # noqa: E402
from cluster.predict.traces import JobTrace, parse_event_log  # noqa: E402
from cluster.predict.validate import ValidationReport, validate, workload_of  # noqa: E402

log = logging.getLogger("lakeforge.bench.prediction")

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "prediction.json"
GOAL_MEAN_ERROR = 0.15
GOAL_SIM_SECONDS = 5.0  # CPU seconds for 1000 nodes x ~100k tasks


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 1,2,3, small rows, 1 repeat, nodes 10,100")
    p.add_argument("--cores", default="1,2", help="local[k] core counts, one spark-submit launch each")
    p.add_argument("--sizes", default="1,2,3,4", help="data sizes (units of --rows-per-unit rows)")
    p.add_argument("--rows-per-unit", type=int, default=1_000_000)
    p.add_argument("--partitions-per-unit", type=int, default=4)
    p.add_argument("--repeat", type=int, default=2, help="measured runs per point (median kept)")
    p.add_argument("--statistic", choices=("median", "min"), default="median")
    p.add_argument("--weighting", choices=("absolute", "relative"), default="absolute", help="Ernest's NNLS")
    p.add_argument("--repetitions", type=int, default=20, help="Monte-Carlo repetitions per simulated point")
    p.add_argument("--nodes", default="10,100,1000", help="cluster sizes for the simulation timing")
    p.add_argument("--tasks", type=int, default=100_000, help="tasks of the scaled-up workload")
    p.add_argument("--shuffle-partitions", type=int, default=20_000)
    p.add_argument("--spot-rate", type=float, default=0.05, help="Spot interruptions per instance-hour")
    p.add_argument("--reuse", type=Path, help="read the real runs of a previous --keep'd work directory")
    p.add_argument("--skip-real", action="store_true", help="no real runs: time the simulation on a synthetic trace")
    p.add_argument("--workdir", type=Path, help="work directory (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (event logs, launch logs)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "1,2,3"
        args.rows_per_unit = 400_000
        args.repeat = 1
        args.nodes = "10,100"
        args.repetitions = 10
    return args


def real_runs(args: argparse.Namespace, workdir: Path) -> list[MeasuredRun]:
    cores = [int(c) for c in args.cores.split(",")]
    if args.reuse:
        runs: list[MeasuredRun] = []
        for k in cores:
            runs += read_campaign(args.reuse / f"runs-local{k}.json", machines=k)
        return runs
    return run_local_campaign(
        workdir,
        cores=cores,
        sizes=[float(s) for s in args.sizes.split(",")],
        rows_per_unit=args.rows_per_unit,
        partitions_per_unit=args.partitions_per_unit,
        repeat=args.repeat,
    )


def print_validation(
    console: Console,
    report: ValidationReport,
    spread: dict[tuple[int, float], list[float]],
    cpu: dict[tuple[int, float], float],
    statistic: str,
) -> None:
    table = RichTable(title=f"Prediction error on real runs (relative to the {statistic} of each point's runs)")
    cols = ["cores", "size", "role", "measured s", "runs s", "task CPU s", "Ernest s", "err", "replay s", "err"]
    cols += ["simulated s", "err"]
    for col in cols:
        table.add_column(col, justify="right")
    for p in report.points:
        runs = ", ".join(f"{x:.2f}" for x in spread.get((p.machines, p.size), []))
        table.add_row(
            str(p.machines),
            f"{p.size:g}",
            p.role,
            f"{p.measured:.2f}",
            runs,
            f"{cpu.get((p.machines, p.size), math.nan):.2f}",
            f"{p.ernest:.2f}",
            f"{100 * p.ernest_error:.1f}%",
            f"{p.replay:.2f}",
            f"{100 * p.replay_error:.1f}%",
            f"{p.calibrated:.2f}",
            f"{100 * p.calibrated_error:.1f}%",
        )
    console.print(table)
    console.print(f"Ernest: time = {report.model.describe()}")
    speeds = ", ".join(f"local[{k}] {v:.3f}" for k, v in sorted(report.calibration.speeds.items()))
    console.print(
        f"simulation: traced local[{report.traced[0]}] size {report.traced[1]:g}; driver time"
        f" {report.driver_seconds:.2f} s x{report.calibration.driver_scale:.3f}; calibrated slot speeds {speeds}"
    )


def task_cpu_seconds(run: MeasuredRun, traces: dict[str, JobTrace]) -> float:
    """Executor CPU seconds of a run's tasks: the work done, whatever the machine's load did to wall time."""
    if run.event_log is None or run.group is None:
        return math.nan
    return sum(t.cpu_time for t in traces[str(run.event_log)].for_group(run.group).tasks)


def synthetic_workload() -> WorkloadModel:
    """Two source stages (12 and 6 tasks) joined by an 8-task stage, 1 s of driver time (``--skip-real``)."""

    def stage(sid: int, parents: tuple[int, ...], n: int, seconds: float) -> StageModel:
        return StageModel(sid, 0, f"s{sid}", parents, (0.05,) * n, (seconds,) * n, n, not parents)

    stages = {0: stage(0, (), 12, 1.0), 1: stage(1, (), 6, 0.5), 2: stage(2, (0, 1), 8, 2.0)}
    return WorkloadModel("synthetic", stages, (PhaseModel(1.0, (JobModel(0, 0.0, (0, 1, 2)),)),), 0.0, 2, 0.0)


def status(value: float, goal: float) -> str:
    return "PASS" if value < goal else "MISS"


def simulation_timing(
    args: argparse.Namespace, console: Console, runs: list[MeasuredRun] | None
) -> list[dict[str, Any]]:
    if runs:
        traced = max((r for r in runs if r.event_log is not None), key=lambda r: (r.size, r.machines))
        model = workload_of(traced)
        label = f"calibration job, size {traced.size:g} traced on local[{traced.machines}]"
    else:
        model = synthetic_workload()
        label = "synthetic 3-stage workload"
    sources = sum(len(s.work) for s in model.stages.values() if s.source)
    shuffles = sum(1 for s in model.stages.values() if not s.source)
    source_tasks = max(1, args.tasks - shuffles * args.shuffle_partitions)
    scale = source_tasks / max(1, sources)
    base = SimOptions(data_scale=scale, shuffle_partitions=args.shuffle_partitions, spot_rate_per_hour=args.spot_rate)
    console.print(
        f"Simulation: {label}, input x{scale:,.0f} ({source_tasks:,} source tasks + {shuffles} shuffle stages x "
        f"{args.shuffle_partitions:,} tasks), Spot rate {args.spot_rate}/instance-hour"
    )
    table = RichTable(title="Simulated clusters (m5.xlarge, 10% on-demand core, 90% Spot task)")
    for col in (
        "nodes",
        "tasks",
        "CPU s / sim",
        "goal",
        "runtime p50",
        "p90",
        "mean",
        "cost p50 $",
        "p90 $",
        "reruns",
        "interrupts",
    ):
        table.add_column(col, justify="right")
    rows = []
    for n in [int(x) for x in args.nodes.split(",")]:
        core = max(1, n // 10)
        shape = ClusterShape.emr(core=core, task=n - core)
        start = time.process_time()
        one = simulate(model, shape, base, seed=0)
        cpu = time.process_time() - start
        mc = monte_carlo(model, shape, base, repetitions=max(1, args.repetitions // 4), seed=1)
        goal = f"< {GOAL_SIM_SECONDS:g} s {status(cpu, GOAL_SIM_SECONDS)}" if n >= 1000 else "info"
        reruns = sum(r.rerun_tasks for r in mc.runs) / len(mc.runs)
        interrupts = sum(r.interruptions for r in mc.runs) / len(mc.runs)
        table.add_row(
            f"{n:,}",
            f"{one.tasks:,}",
            f"{cpu:.2f}",
            goal,
            f"{mc.runtime.p50:,.0f} s",
            f"{mc.runtime.p90:,.0f} s",
            f"{mc.runtime.mean:,.0f} s",
            f"{mc.cost.p50:,.2f}",
            f"{mc.cost.p90:,.2f}",
            f"{reruns:,.0f}",
            f"{interrupts:,.1f}",
        )
        rows.append(
            {
                "nodes": n,
                "tasks": one.tasks,
                "events": one.events,
                "cpu_seconds": cpu,
                "runtime": asdict(mc.runtime),
                "cost_usd": asdict(mc.cost),
                "mean_rerun_tasks": reruns,
                "mean_interruptions": interrupts,
                "unfinished": mc.unfinished,
            }
        )
    console.print(table)
    return rows


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    meta: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "loadavg_start": loadavg(),
    }
    console.print(f"load average at start: {meta['loadavg_start']} ({meta['cpus']} CPUs)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lakeforge-prediction-"))
    result: dict[str, Any] = {
        "meta": meta,
        "goals": {"mean_error": GOAL_MEAN_ERROR, "sim_cpu_seconds": GOAL_SIM_SECONDS},
    }
    runs: list[MeasuredRun] | None = None
    try:
        if not args.skip_real:
            t0 = time.monotonic()
            all_runs = real_runs(args, workdir)
            meta["real_runs_seconds"] = round(time.monotonic() - t0, 1)
            meta["loadavg_after_real_runs"] = loadavg()
            runs = summarize(all_runs, statistic=args.statistic)
            spread: dict[tuple[int, float], list[float]] = {}
            for r in all_runs:
                spread.setdefault(r.point, []).append(r.runtime)
            traces = {str(p): parse_event_log(p) for p in {r.event_log for r in runs if r.event_log is not None}}
            report = validate(runs, repetitions=args.repetitions, seed=1, weighting=args.weighting, traces=traces)
            cpu = {r.point: task_cpu_seconds(r, traces) for r in runs}
            print_validation(console, report, spread, cpu, args.statistic)
            held = {(p.machines, p.size) for p in report.held_out}
            relative = ernest.evaluate(
                [r.observation for r in runs if r.point not in held],
                [r.observation for r in runs if r.point in held],
                weighting="relative",
            )
            summary = RichTable(title="Held-out mean error")
            for col in ("predictor", "mean error", "max error", "goal"):
                summary.add_column(col, justify="right")
            held_pts = report.held_out
            checks = [
                (f"Ernest (NNLS, {args.weighting})", report.ernest_error, max(p.ernest_error for p in held_pts)),
                ("simulation (speed-calibrated)", report.simulation_error, max(p.calibrated_error for p in held_pts)),
            ]
            for name, mean, worst in checks:
                summary.add_row(
                    name, f"{100 * mean:.1f}%", f"{100 * worst:.1f}%", f"< 15% {status(mean, GOAL_MEAN_ERROR)}"
                )
            summary.add_row(
                "simulation (pure replay)",
                f"{100 * report.replay_error:.1f}%",
                f"{100 * max(p.replay_error for p in held_pts):.1f}%",
                "info",
            )
            summary.add_row(
                "Ernest (NNLS, relative)",
                f"{100 * relative.mean_error:.1f}%",
                f"{100 * relative.max_error:.1f}%",
                "info",
            )
            console.print(summary)
            result["validation"] = report.to_json()
            result["validation"]["ernest_relative_weighting_mean_error"] = relative.mean_error
            result["runs"] = [
                {
                    **{k: v for k, v in asdict(r).items() if k != "event_log"},
                    "event_log": str(r.event_log),
                    "task_cpu_s": task_cpu_seconds(r, traces),
                }
                for r in all_runs
            ]
        result["simulation"] = simulation_timing(args, console, runs)
    finally:
        if not args.keep and args.workdir is None and not args.reuse:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not args.reuse:
            console.print(f"work directory kept: {workdir}")
    meta["loadavg_end"] = loadavg()
    meta["total_seconds"] = round(time.monotonic() - started, 1)
    console.print(f"load average at end: {meta['loadavg_end']}; total {meta['total_seconds']} s")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    console = Console(width=None if sys.stdout.isatty() else 160)
    result = run(args, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
