"""Spark event logs (``spark.eventLog.enabled``) as typed job traces.

A Spark 3.5 event log is one JSON object per line. The events read here:

* ``SparkListenerApplicationStart`` / ``ApplicationEnd`` / ``LogStart``: application id, name, times, version;
* ``SparkListenerEnvironmentUpdate``: the Spark properties (master, executor cores);
* ``SparkListenerExecutorAdded`` / ``ExecutorRemoved``: executors, their host, cores, lifetime, removal reason;
* ``SparkListenerJobStart`` / ``JobEnd``: jobs, their stage ids, job group and description, result;
* ``SparkListenerStageSubmitted`` / ``StageCompleted``: stage attempts with parent stage ids, task count,
  submission and completion times, failure reason;
* ``SparkListenerTaskEnd``: every task attempt: launch/finish times, executor, end reason, and its metrics
  (executor run/CPU/deserialize/GC times, input, output, shuffle read and write bytes and records).

Every other event is skipped. Times are epoch **seconds** (floats; Spark logs milliseconds). A log being written
(``.inprogress``) may end in a partial line: it is dropped with a warning. Rolling logs (a directory
``eventlog_v2_<app>`` of ``events_<n>_<app>`` files) are read in order. Compressed logs are read when their
codec is ``zstd`` (``zstandard`` installed); other codecs raise :class:`TraceError`.

A stage that was skipped in a job (its shuffle output already existed) appears in the job's stage ids but has
no attempt in the trace. Stage attempts are kept separately (a fetch failure resubmits a stage as attempt 1);
:meth:`JobTrace.stage_ids` lists the ids that ran.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


class TraceError(ValueError):
    """The file is not a readable Spark event log."""


@dataclass(frozen=True)
class TaskRecord:
    """One task attempt.

    Attributes:
        task_id: Spark's task id (unique in the application).
        index: Index of the task in its stage attempt (the partition for a first attempt).
        partition: Partition id (``-1`` when the log does not say).
        attempt: Attempt number of this partition's task.
        stage_id: Stage id.
        stage_attempt: Stage attempt id.
        executor_id: Executor that ran it (``driver`` in local mode).
        host: Host of the executor.
        launch_time: When it was launched on the executor (epoch seconds).
        finish_time: When it ended (epoch seconds).
        end_reason: ``Success`` or the failure class (``FetchFailed``, ``ExceptionFailure``, ``TaskKilled``,
            ``ExecutorLostFailure``, ...).
        speculative: A speculative copy.
        run_time: Executor run time, seconds (the task body, without deserialization).
        cpu_time: Executor CPU time, seconds.
        deserialize_time: Task deserialization time, seconds.
        result_serialization_time: Result serialization time, seconds.
        gc_time: JVM GC time during the task, seconds.
        input_bytes / input_records: Read from the data source.
        output_bytes / output_records: Written to the data sink.
        shuffle_read_bytes / shuffle_read_records: Shuffle input (local + remote).
        shuffle_write_bytes / shuffle_write_records: Shuffle output.
        spilled_bytes: Memory + disk bytes spilled.
    """

    task_id: int
    index: int
    partition: int
    attempt: int
    stage_id: int
    stage_attempt: int
    executor_id: str
    host: str
    launch_time: float
    finish_time: float
    end_reason: str
    speculative: bool = False
    run_time: float = 0.0
    cpu_time: float = 0.0
    deserialize_time: float = 0.0
    result_serialization_time: float = 0.0
    gc_time: float = 0.0
    input_bytes: int = 0
    input_records: int = 0
    output_bytes: int = 0
    output_records: int = 0
    shuffle_read_bytes: int = 0
    shuffle_read_records: int = 0
    shuffle_write_bytes: int = 0
    shuffle_write_records: int = 0
    spilled_bytes: int = 0

    @property
    def successful(self) -> bool:
        return self.end_reason == "Success"

    @property
    def duration(self) -> float:
        """Seconds the task held its executor slot (launch to finish)."""
        return max(0.0, self.finish_time - self.launch_time)

    @property
    def overhead(self) -> float:
        """Slot time outside the task body: scheduling, deserialization, result handling."""
        return max(0.0, self.duration - self.run_time)


@dataclass(frozen=True)
class StageRecord:
    """One stage attempt and its tasks."""

    stage_id: int
    attempt: int
    name: str
    num_tasks: int
    parent_ids: tuple[int, ...]
    submission_time: float | None
    completion_time: float | None
    failure_reason: str | None = None
    tasks: tuple[TaskRecord, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.completion_time is not None and self.failure_reason is None

    @property
    def successful_tasks(self) -> tuple[TaskRecord, ...]:
        return tuple(t for t in self.tasks if t.successful)

    @property
    def input_bytes(self) -> int:
        return sum(t.input_bytes for t in self.tasks)

    @property
    def input_records(self) -> int:
        return sum(t.input_records for t in self.tasks)

    @property
    def output_bytes(self) -> int:
        return sum(t.output_bytes for t in self.tasks)

    @property
    def shuffle_read_bytes(self) -> int:
        return sum(t.shuffle_read_bytes for t in self.tasks)

    @property
    def shuffle_write_bytes(self) -> int:
        return sum(t.shuffle_write_bytes for t in self.tasks)

    @property
    def task_seconds(self) -> float:
        """Slot-seconds of every task attempt of this stage attempt."""
        return sum(t.duration for t in self.tasks)


@dataclass(frozen=True)
class JobRecord:
    """One Spark job (an action)."""

    job_id: int
    submission_time: float
    completion_time: float | None
    stage_ids: tuple[int, ...]
    result: str | None
    group: str | None = None
    description: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.result == "JobSucceeded"


@dataclass(frozen=True)
class ExecutorRecord:
    executor_id: str
    host: str
    cores: int
    added_time: float
    removed_time: float | None = None
    removed_reason: str | None = None


@dataclass(frozen=True)
class JobTrace:
    """What one Spark application did, from its event log.

    ``jobs`` are ordered by submission, ``stages`` by (stage id, attempt), ``executors`` by the time added.
    """

    app_id: str
    app_name: str
    spark_version: str
    start_time: float | None
    end_time: float | None
    jobs: tuple[JobRecord, ...]
    stages: tuple[StageRecord, ...]
    executors: tuple[ExecutorRecord, ...]
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[TaskRecord, ...]:
        return tuple(t for s in self.stages for t in s.tasks)

    @property
    def total_cores(self) -> int:
        """Cores of the executors that were never removed, else of all executors (at least 1)."""
        live = [e.cores for e in self.executors if e.removed_time is None]
        return max(1, sum(live) if live else sum(e.cores for e in self.executors))

    def stage_ids(self) -> tuple[int, ...]:
        """Ids of the stages that ran (at least one attempt submitted), ascending."""
        return tuple(sorted({s.stage_id for s in self.stages}))

    def attempts(self, stage_id: int) -> tuple[StageRecord, ...]:
        return tuple(s for s in self.stages if s.stage_id == stage_id)

    def job_groups(self) -> tuple[str, ...]:
        """Job groups in order of their first job."""
        seen: dict[str, None] = {}
        for j in self.jobs:
            if j.group is not None:
                seen.setdefault(j.group, None)
        return tuple(seen)

    def select(self, jobs: Iterable[JobRecord]) -> JobTrace:
        """The trace restricted to ``jobs`` and the stage attempts that ran in them."""
        chosen = sorted(jobs, key=lambda j: (j.submission_time, j.job_id))
        ids = {sid for j in chosen for sid in j.stage_ids}
        return replace(self, jobs=tuple(chosen), stages=tuple(s for s in self.stages if s.stage_id in ids))

    def for_group(self, group: str) -> JobTrace:
        """The jobs of one job group (``SparkContext.setJobGroup``)."""
        picked = [j for j in self.jobs if j.group == group]
        if not picked:
            raise KeyError(f"no job in group {group!r} (groups: {', '.join(self.job_groups()) or 'none'})")
        return self.select(picked)

    def between(self, start: float, end: float) -> JobTrace:
        """The jobs submitted in ``[start, end]`` (epoch seconds)."""
        return self.select(j for j in self.jobs if start <= j.submission_time <= end)


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


def _log_files(path: Path) -> list[Path]:
    if path.is_dir():
        parts = [p for p in path.iterdir() if p.name.startswith("events_")]
        if not parts:
            raise TraceError(f"{path}: a directory without events_* files is not a rolling event log")

        def index(p: Path) -> int:
            try:
                return int(p.name.split("_")[1])
            except (IndexError, ValueError):
                return 0

        return sorted(parts, key=index)
    if not path.exists():
        raise TraceError(f"{path}: no such event log")
    return [path]


def _open_text(path: Path) -> io.BufferedReader | io.BytesIO:
    name = path.name.removesuffix(".inprogress")
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix in ("zstd", "zst"):
        try:
            import zstandard
        except ImportError as exc:  # pragma: no cover - zstandard is present in the environment
            raise TraceError(f"{path}: zstd event logs need the zstandard package") from exc
        with path.open("rb") as raw:
            return io.BytesIO(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read())
    if suffix in ("lz4", "lzf", "snappy"):
        raise TraceError(f"{path}: {suffix}-compressed event logs are not supported; set spark.eventLog.compress=false")
    return path.open("rb")


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """The events of an event log (file or rolling directory), as dicts; a truncated last line is dropped."""
    for part in _log_files(Path(path)):
        with _open_text(part) as fh:
            pending: bytes | None = None
            for number, line in enumerate(fh, 1):
                if pending is not None:
                    raise TraceError(f"{part}:{number - 1}: not a JSON event line")
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    pending = line  # tolerated only as the very last line (a log still being written)
                    continue
                if not isinstance(event, dict) or "Event" not in event:
                    raise TraceError(f"{part}:{number}: not a Spark listener event")
                yield event
            if pending is not None:
                log.warning("%s: dropped a partial last line (%d bytes)", part, len(pending))


def _s(ms: Any) -> float | None:
    return None if ms is None else float(ms) / 1000.0


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    return int(value) if value is not None else 0


def _task(event: Mapping[str, Any]) -> TaskRecord:
    info: Mapping[str, Any] = event.get("Task Info") or {}
    metrics: Mapping[str, Any] = event.get("Task Metrics") or {}
    reason: Mapping[str, Any] = event.get("Task End Reason") or {}
    shuffle_read: Mapping[str, Any] = metrics.get("Shuffle Read Metrics") or {}
    shuffle_write: Mapping[str, Any] = metrics.get("Shuffle Write Metrics") or {}
    inputs: Mapping[str, Any] = metrics.get("Input Metrics") or {}
    outputs: Mapping[str, Any] = metrics.get("Output Metrics") or {}
    launch = float(info.get("Launch Time", 0)) / 1000.0
    finish = float(info.get("Finish Time", 0) or info.get("Launch Time", 0)) / 1000.0
    return TaskRecord(
        task_id=_int(info, "Task ID"),
        index=_int(info, "Index"),
        partition=int(info.get("Partition ID", -1)),
        attempt=_int(info, "Attempt"),
        stage_id=_int(event, "Stage ID"),
        stage_attempt=_int(event, "Stage Attempt ID"),
        executor_id=str(info.get("Executor ID", "")),
        host=str(info.get("Host", "")),
        launch_time=launch,
        finish_time=finish,
        end_reason=str(reason.get("Reason", "Success")),
        speculative=bool(info.get("Speculative", False)),
        run_time=_int(metrics, "Executor Run Time") / 1000.0,
        cpu_time=_int(metrics, "Executor CPU Time") / 1e9,
        deserialize_time=_int(metrics, "Executor Deserialize Time") / 1000.0,
        result_serialization_time=_int(metrics, "Result Serialization Time") / 1000.0,
        gc_time=_int(metrics, "JVM GC Time") / 1000.0,
        input_bytes=_int(inputs, "Bytes Read"),
        input_records=_int(inputs, "Records Read"),
        output_bytes=_int(outputs, "Bytes Written"),
        output_records=_int(outputs, "Records Written"),
        shuffle_read_bytes=_int(shuffle_read, "Remote Bytes Read") + _int(shuffle_read, "Local Bytes Read"),
        shuffle_read_records=_int(shuffle_read, "Total Records Read"),
        shuffle_write_bytes=_int(shuffle_write, "Shuffle Bytes Written"),
        shuffle_write_records=_int(shuffle_write, "Shuffle Records Written"),
        spilled_bytes=_int(metrics, "Memory Bytes Spilled") + _int(metrics, "Disk Bytes Spilled"),
    )


@dataclass
class _StageBuilder:
    stage_id: int
    attempt: int
    name: str = ""
    num_tasks: int = 0
    parent_ids: tuple[int, ...] = ()
    submission_time: float | None = None
    completion_time: float | None = None
    failure_reason: str | None = None
    submitted: bool = False
    tasks: list[TaskRecord] = field(default_factory=list)

    def update(self, info: Mapping[str, Any]) -> None:
        self.name = str(info.get("Stage Name", self.name))
        self.num_tasks = int(info.get("Number of Tasks", self.num_tasks))
        self.parent_ids = tuple(int(p) for p in info.get("Parent IDs", self.parent_ids))
        self.submission_time = _s(info.get("Submission Time")) or self.submission_time
        self.completion_time = _s(info.get("Completion Time")) or self.completion_time
        failure = info.get("Failure Reason")
        self.failure_reason = str(failure) if failure is not None else self.failure_reason

    def build(self) -> StageRecord:
        tasks = tuple(sorted(self.tasks, key=lambda t: (t.launch_time, t.task_id)))
        submitted = self.submission_time
        if submitted is None and tasks:
            submitted = tasks[0].launch_time
        return StageRecord(
            self.stage_id,
            self.attempt,
            self.name,
            self.num_tasks,
            self.parent_ids,
            submitted,
            self.completion_time,
            self.failure_reason,
            tasks,
        )


def parse_events(events: Iterable[Mapping[str, Any]]) -> JobTrace:
    """Build a trace from event dicts (see :func:`iter_events`)."""
    app_id = app_name = version = ""
    start: float | None = None
    end: float | None = None
    properties: dict[str, str] = {}
    jobs: dict[int, dict[str, Any]] = {}
    stages: dict[tuple[int, int], _StageBuilder] = {}
    executors: dict[str, ExecutorRecord] = {}

    def stage(stage_id: int, attempt: int) -> _StageBuilder:
        key = (stage_id, attempt)
        builder = stages.get(key)
        if builder is None:
            builder = stages[key] = _StageBuilder(stage_id, attempt)
        return builder

    for event in events:
        kind = event["Event"]
        if kind == "SparkListenerTaskEnd":
            task = _task(event)
            stage(task.stage_id, task.stage_attempt).tasks.append(task)
        elif kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info: Mapping[str, Any] = event.get("Stage Info") or {}
            builder = stage(int(info.get("Stage ID", -1)), int(info.get("Stage Attempt ID", 0)))
            builder.update(info)
            builder.submitted = builder.submitted or kind == "SparkListenerStageSubmitted"
        elif kind == "SparkListenerJobStart":
            props: Mapping[str, Any] = event.get("Properties") or {}
            jobs[int(event["Job ID"])] = {
                "submission_time": _s(event.get("Submission Time")) or 0.0,
                "stage_ids": tuple(int(s) for s in event.get("Stage IDs", ())),
                "group": props.get("spark.jobGroup.id"),
                "description": props.get("spark.job.description"),
                "completion_time": None,
                "result": None,
            }
        elif kind == "SparkListenerJobEnd":
            job = jobs.get(int(event["Job ID"]))
            if job is not None:
                job["completion_time"] = _s(event.get("Completion Time"))
                job["result"] = str((event.get("Job Result") or {}).get("Result"))
        elif kind == "SparkListenerExecutorAdded":
            info = event.get("Executor Info") or {}
            eid = str(event["Executor ID"])
            executors[eid] = ExecutorRecord(
                eid, str(info.get("Host", "")), int(info.get("Total Cores", 1)), _s(event.get("Timestamp")) or 0.0
            )
        elif kind == "SparkListenerExecutorRemoved":
            eid = str(event["Executor ID"])
            if eid in executors:
                executors[eid] = replace(
                    executors[eid],
                    removed_time=_s(event.get("Timestamp")),
                    removed_reason=str(event.get("Removed Reason", "")),
                )
        elif kind == "SparkListenerApplicationStart":
            app_id = str(event.get("App ID", ""))
            app_name = str(event.get("App Name", ""))
            start = _s(event.get("Timestamp"))
        elif kind == "SparkListenerApplicationEnd":
            end = _s(event.get("Timestamp"))
        elif kind == "SparkListenerLogStart":
            version = str(event.get("Spark Version", ""))
        elif kind == "SparkListenerEnvironmentUpdate":
            raw = event.get("Spark Properties") or {}
            pairs = raw.items() if isinstance(raw, Mapping) else (tuple(p) for p in raw)
            properties = {str(k): str(v) for k, v in pairs}

    job_records = tuple(
        sorted(
            (
                JobRecord(
                    job_id,
                    d["submission_time"],
                    d["completion_time"],
                    d["stage_ids"],
                    d["result"],
                    None if d["group"] is None else str(d["group"]),
                    None if d["description"] is None else str(d["description"]),
                )
                for job_id, d in jobs.items()
            ),
            key=lambda j: (j.submission_time, j.job_id),
        )
    )
    # Stages announced in a JobStart but never submitted were skipped: they have no attempt.
    stage_records = tuple(
        b.build() for key, b in sorted(stages.items()) if b.submitted or b.tasks or b.completion_time is not None
    )
    return JobTrace(
        app_id=app_id,
        app_name=app_name,
        spark_version=version,
        start_time=start,
        end_time=end,
        jobs=job_records,
        stages=stage_records,
        executors=tuple(sorted(executors.values(), key=lambda e: (e.added_time, e.executor_id))),
        properties=properties,
    )


def parse_event_log(path: str | Path) -> JobTrace:
    """Read a Spark event log (a file, possibly ``.inprogress``, or a rolling-log directory)."""
    trace = parse_events(iter_events(path))
    if not trace.app_id and not trace.jobs:
        raise TraceError(f"{path}: no application or job events")
    return trace


def find_event_log(directory: str | Path, app_id: str) -> Path:
    """The event log of ``app_id`` in ``spark.eventLog.dir`` (finished, in progress, compressed or rolling)."""
    root = Path(directory.removeprefix("file:") if isinstance(directory, str) else directory)
    candidates = sorted(p for p in root.iterdir() if app_id in p.name)
    finished = [p for p in candidates if not p.name.endswith(".inprogress")]
    if not candidates:
        raise TraceError(f"no event log of {app_id} in {root}")
    return (finished or candidates)[0]
