"""A job trace reduced to what the cluster simulation replays: stage DAG, task times, driver time.

:meth:`WorkloadModel.from_trace` turns a :class:`~cluster.predict.traces.JobTrace` (optionally restricted to a
time window, e.g. the driver's measured window around one run) into:

* **stages** (every stage that ran): parent stages (only those that ran; a parent skipped because its shuffle
  output already existed is not waited for), and one ``(fixed, work)`` pair per partition from the successful
  task attempt of that partition: ``work`` is the executor run time (the task body, which grows with the data a
  task processes), ``fixed`` the rest of the slot time (scheduling, deserialization, result handling), which
  does not. Failed, killed and speculative duplicate attempts are left out: the model is a clean run, failures
  are what the simulation adds.
* stage **delays**: ``launch_delay`` from the moment a stage could start (its job submitted and its parents
  done) to its first task, measured only on stages that found a free slot (a stage queued behind another
  stage's tasks gets the median of the others), and ``finish_delay`` from its last task to its completion.
* **phases**: jobs grouped by overlapping lifetimes. Phases run one after the other with the measured **driver
  time** between them (query planning, Python, collecting results), which the simulation keeps constant; jobs
  inside a phase start at their measured offsets from the phase start.
* ``tail``: driver time after the last job until the end of the window.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from cluster.predict.traces import JobRecord, JobTrace, StageRecord, TaskRecord


@dataclass(frozen=True)
class StageModel:
    """One stage as the simulation replays it.

    Attributes:
        stage_id: Spark stage id.
        job_id: The job it ran in.
        name: Spark's stage name (call site).
        parents: Stages (that ran) whose output it reads.
        fixed: Per measured partition: slot seconds outside the task body.
        work: Per measured partition: executor run time, seconds.
        num_tasks: Partitions of the stage in the traced run.
        source: Has no parent stage at all: reads external data (its task count follows the input size).
        launch_delay: Seconds from ready to the first task launch.
        finish_delay: Seconds from the last task end to the stage's completion.
        input_bytes / shuffle_read_bytes / shuffle_write_bytes: Totals of the traced run (for reports).
    """

    stage_id: int
    job_id: int
    name: str
    parents: tuple[int, ...]
    fixed: tuple[float, ...]
    work: tuple[float, ...]
    num_tasks: int
    source: bool
    launch_delay: float = 0.0
    finish_delay: float = 0.0
    input_bytes: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0

    @property
    def slot_seconds(self) -> float:
        return sum(self.fixed) + sum(self.work)


@dataclass(frozen=True)
class JobModel:
    """One job: its stages, when it starts in its phase, and how long after its last stage it ends."""

    job_id: int
    offset: float
    stages: tuple[int, ...]
    end_delay: float = 0.0
    duration_without_stages: float = 0.0


@dataclass(frozen=True)
class PhaseModel:
    """Jobs that overlapped in time, preceded by ``gap_before`` seconds of driver time."""

    gap_before: float
    jobs: tuple[JobModel, ...]


@dataclass(frozen=True)
class WorkloadModel:
    """A replayable workload (see the module docstring)."""

    name: str
    stages: Mapping[int, StageModel]
    phases: tuple[PhaseModel, ...]
    tail: float
    traced_slots: int
    traced_runtime: float

    @property
    def driver_seconds(self) -> float:
        """Driver time outside jobs (constant in the simulation)."""
        return sum(p.gap_before for p in self.phases) + self.tail

    @property
    def task_count(self) -> int:
        return sum(len(s.work) for s in self.stages.values())

    @property
    def slot_seconds(self) -> float:
        return sum(s.slot_seconds for s in self.stages.values())

    @classmethod
    def from_trace(
        cls,
        trace: JobTrace,
        *,
        start: float | None = None,
        end: float | None = None,
        slots: int | None = None,
        name: str | None = None,
    ) -> WorkloadModel:
        """Build the model of the jobs submitted in ``[start, end]`` (epoch seconds; default: all jobs).

        ``start``/``end`` are also the ends of the measured run: the driver time before the first job and after
        the last one counts. Without them the run spans the first job's submission to the last job's end.
        ``slots`` is the number of task slots of the traced run (default: the executors' cores).
        """
        jobs = [j for j in trace.jobs if (start is None or j.submission_time >= start - 1e-6)]
        jobs = [j for j in jobs if end is None or j.submission_time <= end + 1e-6]
        if not jobs:
            raise ValueError("no job in the window")
        jobs.sort(key=lambda j: (j.submission_time, j.job_id))
        ends = {j.job_id: _job_end(j, trace) for j in jobs}
        window_start = jobs[0].submission_time if start is None else min(start, jobs[0].submission_time)
        last_end = max(ends.values())
        window_end = last_end if end is None else max(end, last_end)

        attempts: dict[int, list[StageRecord]] = {}
        for s in trace.stages:
            attempts.setdefault(s.stage_id, []).append(s)
        owner = _stage_owners(jobs, attempts)
        ran = set(owner)
        traced_slots = slots or trace.total_cores
        occ = _Occupancy(trace)
        delay_default = _typical_launch_delay(trace, occ, traced_slots)

        stage_models: dict[int, StageModel] = {}
        completion: dict[int, float] = {}
        for sid in sorted(ran):
            recs = sorted(attempts[sid], key=lambda s: s.attempt)
            done = [r.completion_time for r in recs if r.completion_time is not None]
            completion[sid] = max(done) if done else max((t.finish_time for r in recs for t in r.tasks), default=0.0)
        for sid in sorted(ran):
            recs = sorted(attempts[sid], key=lambda s: s.attempt)
            first = recs[0]
            tasks = _one_success_per_partition(recs)
            job = owner[sid]
            parents = tuple(p for p in first.parent_ids if p in ran)
            ready = max([job.submission_time, *(completion[p] for p in parents if p in completion)])
            launch_delay = _launch_delay(first, ready, delay_default, occ, traced_slots)
            last_task = max((t.finish_time for t in tasks), default=completion[sid])
            stage_models[sid] = StageModel(
                stage_id=sid,
                job_id=job.job_id,
                name=first.name,
                parents=parents,
                fixed=tuple(t.overhead for t in tasks),
                work=tuple(t.run_time for t in tasks),
                num_tasks=max(first.num_tasks, len(tasks)),
                source=not first.parent_ids,
                launch_delay=launch_delay,
                finish_delay=max(0.0, completion[sid] - last_task),
                input_bytes=sum(t.input_bytes for t in tasks),
                shuffle_read_bytes=sum(t.shuffle_read_bytes for t in tasks),
                shuffle_write_bytes=sum(t.shuffle_write_bytes for t in tasks),
            )

        by_job: dict[int, list[int]] = {}
        for sid, job in owner.items():
            by_job.setdefault(job.job_id, []).append(sid)
        phases: list[PhaseModel] = []
        group: list[JobRecord] = []
        group_end = window_start
        previous_end = window_start

        def close() -> None:
            nonlocal previous_end
            phase_start = group[0].submission_time
            models = []
            for j in group:
                stages = tuple(sorted(by_job.get(j.job_id, [])))
                last_stage = max((completion[s] for s in stages), default=None)
                models.append(
                    JobModel(
                        job_id=j.job_id,
                        offset=j.submission_time - phase_start,
                        stages=stages,
                        end_delay=0.0 if last_stage is None else max(0.0, ends[j.job_id] - last_stage),
                        duration_without_stages=max(0.0, ends[j.job_id] - j.submission_time) if not stages else 0.0,
                    )
                )
            phases.append(PhaseModel(max(0.0, phase_start - previous_end), tuple(models)))
            previous_end = max(ends[j.job_id] for j in group)

        for j in jobs:
            if group and j.submission_time > group_end:
                close()
                group = []
            group.append(j)
            group_end = max(group_end, ends[j.job_id]) if len(group) > 1 else ends[j.job_id]
        close()
        return cls(
            name=name or trace.app_name or trace.app_id,
            stages=stage_models,
            phases=tuple(phases),
            tail=max(0.0, window_end - previous_end),
            traced_slots=traced_slots,
            traced_runtime=window_end - window_start,
        )


def _job_end(job: JobRecord, trace: JobTrace) -> float:
    if job.completion_time is not None:
        return job.completion_time
    ids = set(job.stage_ids)
    times = [t.finish_time for s in trace.stages if s.stage_id in ids for t in s.tasks]
    return max(times, default=job.submission_time)


def _stage_owners(jobs: list[JobRecord], attempts: Mapping[int, list[StageRecord]]) -> dict[int, JobRecord]:
    """The job each stage ran in: the latest job listing it that was submitted before its first attempt."""
    owner: dict[int, JobRecord] = {}
    for job in jobs:
        for sid in job.stage_ids:
            recs = attempts.get(sid)
            if not recs:
                continue  # skipped in this job and never run
            first = min(r.submission_time or 0.0 for r in recs)
            if job.submission_time <= first + 1e-6:
                current = owner.get(sid)
                if current is None or job.submission_time >= current.submission_time:
                    owner[sid] = job
    return owner


def _one_success_per_partition(records: list[StageRecord]) -> list[TaskRecord]:
    """The first successful attempt of each partition over all stage attempts."""
    chosen: dict[int, TaskRecord] = {}
    for rec in records:
        for t in sorted(rec.tasks, key=lambda t: t.finish_time):
            if not t.successful:
                continue
            key = t.partition if t.partition >= 0 else (t.index if rec.attempt == 0 else -1 - t.task_id)
            chosen.setdefault(key, t)
    return sorted(chosen.values(), key=lambda t: (t.launch_time, t.task_id))


class _Occupancy:
    """How many tasks ran at a moment (from every task of the trace)."""

    def __init__(self, trace: JobTrace) -> None:
        self.launches = sorted(t.launch_time for s in trace.stages for t in s.tasks)
        self.finishes = sorted(t.finish_time for s in trace.stages for t in s.tasks)

    def running(self, at: float) -> int:
        return bisect.bisect_right(self.launches, at) - bisect.bisect_right(self.finishes, at)


def _first_launch(stage: StageRecord) -> float | None:
    return min((t.launch_time for t in stage.tasks), default=None)


def _typical_launch_delay(trace: JobTrace, occ: _Occupancy, slots: int) -> float:
    """Median submission-to-first-task delay of stages submitted while a slot was free."""
    delays = []
    for s in trace.stages:
        first = _first_launch(s)
        if s.submission_time is None or first is None:
            continue
        if occ.running(s.submission_time) < slots:
            delays.append(max(0.0, first - s.submission_time))
    return statistics.median(delays) if delays else 0.0


def _launch_delay(stage: StageRecord, ready: float, default: float, occ: _Occupancy, slots: int) -> float:
    submitted = stage.submission_time if stage.submission_time is not None else ready
    first = _first_launch(stage)
    before = max(0.0, submitted - ready)
    if first is None:
        return before
    if occ.running(submitted) < slots:
        return before + max(0.0, first - submitted)
    return before + default
