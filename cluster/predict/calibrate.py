"""Real runs to calibrate and validate the predictors: the calibration job under ``spark-submit`` on this machine.

One ``spark-submit --master local[k]`` launch per core count runs :mod:`cluster.predict.calibration_job` at every
requested data size (after a warm-up), with the event log on. Each measured run becomes a :class:`MeasuredRun`:
the core count as "machines", the data size, the driver's wall-clock time of the run, and where its jobs are in
the event log (its job group and time window). Runs measured elsewhere (the experiment runner, a real cluster)
fit the same type: ``machines``, ``size``, ``runtime`` and, for the simulation, an event log.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.predict.ernest import Observation
from cluster.predict.traces import find_event_log
from cluster.submit import spark_submit

log = logging.getLogger(__name__)

CALIBRATION_JOB = Path(__file__).with_name("calibration_job.py")

#: Rows per size unit: about a second of work per unit for one core of this machine when it is quiet.
DEFAULT_ROWS_PER_UNIT = 1_000_000


@dataclass(frozen=True)
class MeasuredRun:
    """One real run.

    Attributes:
        machines: Parallel units the run had (nodes, executors or local cores).
        size: Data size, in the unit the predictions use.
        runtime: Measured wall-clock seconds.
        event_log: Spark event log holding the run (``None``: none kept).
        group: Job group of the run's jobs in that log (``None``: every job in the window).
        start: Start of the measured window, epoch seconds (``None``: the first job's submission).
        end: End of the measured window.
        repeat: Repetition number of this (machines, size) point.
    """

    machines: int
    size: float
    runtime: float
    event_log: Path | None = None
    group: str | None = None
    start: float | None = None
    end: float | None = None
    repeat: int = 0

    @property
    def observation(self) -> Observation:
        return Observation(self.size, self.machines, self.runtime, f"m={self.machines} size={self.size:g}")

    @property
    def point(self) -> tuple[int, float]:
        return (self.machines, self.size)


def run_local_campaign(
    workdir: Path,
    *,
    cores: Sequence[int] = (1, 2),
    sizes: Sequence[float] = (1, 2, 3, 4),
    rows_per_unit: int = DEFAULT_ROWS_PER_UNIT,
    partitions_per_unit: int = 4,
    repeat: int = 1,
    extra_conf: Mapping[str, str] | None = None,
) -> list[MeasuredRun]:
    """Run the calibration job once per core count (``local[k]``) at every size; return every measured run.

    Raises:
        cluster.submit.JobFailedError: A launch failed (its log is in ``workdir``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    runs: list[MeasuredRun] = []
    for k in cores:
        events = workdir / f"events-local{k}"
        events.mkdir(parents=True, exist_ok=True)
        out = workdir / f"runs-local{k}.json"
        conf = {
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": str(events),
            "spark.eventLog.compress": "false",
            "spark.ui.enabled": "false",
            **(extra_conf or {}),
        }
        args = [
            "--sizes",
            ",".join(f"{s:g}" for s in sizes),
            "--rows-per-unit",
            str(rows_per_unit),
            "--partitions-per-unit",
            str(partitions_per_unit),
            "--repeat",
            str(repeat),
            "--scratch",
            str(workdir / "scratch"),
            "--out",
            str(out),
        ]
        result = spark_submit(
            CALIBRATION_JOB, args, conf=conf, master=f"local[{k}]", log_path=workdir / f"local{k}.log"
        )
        log.info("local[%d] campaign: %.1f s", k, result.seconds)
        runs += read_campaign(out, machines=k)
    return runs


def read_campaign(path: Path, *, machines: int | None = None) -> list[MeasuredRun]:
    """The runs recorded by one calibration-job launch (its ``--out`` file)."""
    doc = json.loads(path.read_text())
    directory = str(doc["event_log_dir"]) or str(path.parent)
    event_log = find_event_log(directory, str(doc["app_id"]))
    k = machines if machines is not None else int(doc["cores"])
    return [
        MeasuredRun(
            machines=k,
            size=float(r["size"]),
            runtime=float(r["seconds"]),
            event_log=event_log,
            group=str(r["group"]),
            start=float(r["start"]),
            end=float(r["end"]),
            repeat=int(r.get("repeat", 0)),
        )
        for r in doc["runs"]
    ]


def summarize(runs: Iterable[MeasuredRun], *, statistic: str = "median") -> list[MeasuredRun]:
    """One run per (machines, size): the repetition whose runtime is the median (or the minimum)."""
    points: dict[tuple[int, float], list[MeasuredRun]] = {}
    for r in runs:
        points.setdefault(r.point, []).append(r)
    out = []
    for key in sorted(points):
        group = sorted(points[key], key=lambda r: r.runtime)
        if statistic == "min":
            out.append(group[0])
        elif statistic == "median":
            target = statistics.median_low([r.runtime for r in group])
            out.append(next(r for r in group if r.runtime == target))
        else:
            raise ValueError(f"unknown statistic {statistic!r}")
    return out
