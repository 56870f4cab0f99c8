"""Discrete-event simulation of a Spark job on an EMR-like cluster of tens to thousands of nodes.

The simulation replays a :class:`~cluster.predict.model.WorkloadModel` (stage DAG, task times and driver time
measured from a real run) on a :class:`ClusterShape`, with Spot interruptions and managed scaling, and bills the
nodes with :mod:`cluster.cost`. It is event driven (a ``heapq`` of timed events; nothing advances in ticks), so
its cost grows with tasks and nodes, not with simulated time: about 100k tasks on 1000 nodes take seconds.

**Execution.** Every core/task node offers ``slots`` task slots: ``vcpu // task_cpus`` of its instance type
(``ClusterShape.slots_per_node`` overrides it). The master node runs the driver and is billed, but runs no tasks.
Phases of jobs run one after the other with the traced driver time between them; a stage starts
``launch_delay`` after its job was submitted and all its parent stages completed, and completes
``finish_delay`` after its last task. Free slots take pending tasks in FIFO order of (job, stage id) (Spark's
default FIFO scheduler); locality is not modelled.

**Task times.** A stage of the model has measured ``(fixed, work)`` pairs per partition. For a run ``data_scale``
times the traced input:

* a *source* stage (no parent stage: it reads the input) gets ``round(n * data_scale)`` tasks of the measured
  size (file splits: more data, more tasks), unless ``scale_source_tasks`` is off;
* every other stage keeps its task count (``spark.sql.shuffle.partitions``) and each task's ``work`` is
  multiplied by ``data_scale`` (more data per partition); ``fixed`` is not. With ``shuffle_partitions`` those
  stages get that many tasks instead, each with ``work * data_scale * measured count / new count``.

Each task's pair is drawn from the stage's measured pairs (bootstrap resampling, seeded), or replayed in order
with ``resample=False``; the time is ``(fixed + work * factor) / speed`` where ``speed`` is how much faster a
target slot is than a traced one. Driver-side times (driver time between jobs, scheduling delays) are multiplied
by ``driver_scale``.

**Spot interruptions** hit nodes whose market is ``SPOT`` (task nodes usually; a Spot core node is treated the
same, its HDFS role is not modelled). Each Spot node gets a Poisson interruption time
(:class:`cluster.spot.PoissonInterruptions`, rate per instance-hour: ``spot_rate_per_hour`` or the type's Spot
Advisor band). At the notice the node stops taking tasks (as EMR does after the two-minute warning) and its
running tasks go on; ``notice_seconds`` later it is gone:

1. tasks still running on it are lost and queued again (first in their stage's queue) with the same time;
2. **shuffle output rule**: every map output the node held of a stage that still has an unfinished consumer
   stage is lost, and those partitions of the parent stage are run again. The parent stage is incomplete
   until they are done; consumers that have not started wait for it, consumers that are running keep their
   running tasks but start no new task until the parent is complete again (Spark: ``FetchFailed`` makes the
   DAG scheduler resubmit the missing map partitions; EMR unregisters a lost host's shuffle output at once).
   Output no unfinished stage reads any more is not recomputed then; if a stage that read it has to run
   again later, the lost partitions are recomputed first (the cascade Spark goes through). With
   ``shuffle_migration`` (Spark's
   ``spark.storage.decommission.shuffleBlocks.enabled``) the output is assumed migrated during the notice and
   nothing is recomputed.
3. With ``replace_interrupted`` the group gets a replacement node ``provisioning_seconds`` later.

**Managed scaling** calls :func:`cluster.scaling.decide` every ``evaluation_seconds`` with the simulated load:
pending tasks of runnable stages, running tasks, every node's slots as vCPUs, its idle time, and whether it
holds shuffle output still needed. Added nodes are billed from the request and take tasks after
``provisioning_seconds``. Removed nodes stop taking tasks and leave once their running tasks finish. Managed
scaling is shuffle-aware: a node holding needed shuffle output reports itself busy, so it is not removed for
idleness (it may still be removed to get under a lowered limit; its output is then lost by the rule above).

**Cost**: every node (master included) is billed per second with the 60-second minimum from its launch to its
end (the job's end for nodes still up) through :func:`cluster.cost.node_cost`, EC2 (Spot or On-Demand) plus
EMR fee.

:func:`monte_carlo` repeats the simulation with seeds derived from one seed and reports runtime and cost
distributions; the same seed gives the same numbers. Under heavy interruption a job can stop making progress
(every loss sends a stage back before its consumers can finish), as a real one would: a run still going at
``max_simulated_seconds`` or ``max_slowdown`` times a failure-free estimate is stopped and reported unfinished
(infinite runtime) instead of looping on.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cluster.cost import NodeUsage, PriceBook, node_cost
from cluster.instances import DEFAULT_CATALOG, InstanceType
from cluster.predict.model import WorkloadModel
from cluster.provider import Market, Role
from cluster.scaling import ComputeLimits, NodeLoad, Pool, ScalingAction, ScalingInputs, decide, node_units
from cluster.spot import PoissonInterruptions, ScheduledInterruption, SpotNode, Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one role, instance type and market."""

    role: Role
    instance_type: str
    count: int
    market: Market = "ON_DEMAND"
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.role.lower()}-{self.market.lower()}-{self.instance_type}"


@dataclass(frozen=True)
class ClusterShape:
    """The simulated cluster.

    Attributes:
        groups: Core and task node groups (the first group of a role and market is the one managed scaling
            grows, as EMR scales the first instance group of a kind).
        master_type: Instance type of the master (billed, runs no task); ``None``: not billed.
        slots_per_node: Task slots per node; default ``vcpu // task_cpus`` of the node's type.
        task_cpus: ``spark.task.cpus``.
    """

    groups: tuple[NodeGroup, ...]
    master_type: str | None = "m5.xlarge"
    slots_per_node: int | None = None
    task_cpus: int = 1

    @classmethod
    def emr(
        cls,
        *,
        core: int,
        task: int = 0,
        instance_type: str = "m5.xlarge",
        task_market: Market = "SPOT",
        master_type: str | None = "m5.xlarge",
    ) -> ClusterShape:
        """The usual shape: on-demand core nodes and (by default Spot) task nodes of one type."""
        groups = [NodeGroup("CORE", instance_type, core, "ON_DEMAND", "core")]
        if task:
            groups.append(NodeGroup("TASK", instance_type, task, task_market, "task"))
        return cls(tuple(groups), master_type)

    @classmethod
    def local(cls, slots: int) -> ClusterShape:
        """``slots`` one-slot nodes, nothing billed beyond them: a ``local[slots]`` Spark run."""
        return cls((NodeGroup("CORE", "m5.large", slots, "ON_DEMAND", "local"),), None, slots_per_node=1)

    def slots(self, itype: InstanceType) -> int:
        return self.slots_per_node or max(1, itype.vcpu // self.task_cpus)

    @property
    def nodes(self) -> int:
        return sum(g.count for g in self.groups)


@dataclass(frozen=True)
class ScalingPolicy:
    """Managed scaling as the simulation runs it (see :mod:`cluster.scaling` for the decision rules)."""

    limits: ComputeLimits
    evaluation_seconds: float = 10.0
    scale_out_cooldown: float = 0.0
    scale_in_cooldown: float = 0.0
    idle_seconds_to_scale_in: float = 60.0
    min_core_nodes: int = 1
    shuffle_aware: bool = True


@dataclass(frozen=True)
class SimOptions:
    """What to simulate besides the shape (see the module docstring for each rule).

    Attributes:
        data_scale: Input size relative to the traced run.
        speed: How much faster a simulated slot runs a task than a traced slot did.
        driver_scale: Multiplies every driver-side time: driver time between jobs, job offsets and end delays,
            stage launch and finish delays (a slower or faster driver and scheduler).
        scale_source_tasks: Source stages get more tasks (not longer ones) for more data.
        shuffle_partitions: Task count of every non-source stage (``spark.sql.shuffle.partitions`` of the
            target run); the stage's measured work is spread evenly over them, the fixed part is per task.
        resample: Draw task times from the stage's measured ones (else replay them in order).
        spot_rate_per_hour: Interruptions per Spot instance-hour (``None``: the type's Spot Advisor band).
        scheduled_interruptions: Interruption notices at fixed simulated times (``at_seconds`` after the start),
            each hitting ``count`` live, not yet noticed Spot nodes matching its ``node_id``/``group`` (the
            group's ``label``)/``role``, oldest first.
        notice_seconds: Spot interruption notice.
        replace_interrupted: Replace an interrupted node (after ``provisioning_seconds``).
        provisioning_seconds: Request to ready, for replacements and scale-out.
        shuffle_migration: Shuffle output of an interrupted node survives (migrated during the notice).
        scaling: Managed scaling policy (``None``: fixed size).
        max_simulated_seconds: Stop there (the run is reported unfinished).
        max_slowdown: Also stop at this multiple of a failure-free serial estimate of the runtime (at least an
            hour): under heavy interruption a job can stop making progress, as a real one would.
    """

    data_scale: float = 1.0
    speed: float = 1.0
    driver_scale: float = 1.0
    scale_source_tasks: bool = True
    shuffle_partitions: int | None = None
    resample: bool = True
    spot_rate_per_hour: float | None = 0.0
    scheduled_interruptions: tuple[ScheduledInterruption, ...] = ()
    notice_seconds: float = 120.0
    replace_interrupted: bool = True
    provisioning_seconds: float = 300.0
    shuffle_migration: bool = False
    scaling: ScalingPolicy | None = None
    max_simulated_seconds: float = 7 * 86400.0
    max_slowdown: float = 20.0


@dataclass(frozen=True)
class SimResult:
    """One simulated run (``finished`` false: stopped at ``max_simulated_seconds``, ``runtime`` is infinite and
    the costs are those up to the stop)."""

    finished: bool
    runtime: float
    cost_usd: float
    ec2_usd: float
    emr_usd: float
    tasks: int
    tasks_launched: int
    killed_tasks: int
    recomputed_tasks: int
    interruptions: int
    nodes_added: int
    nodes_removed: int
    peak_nodes: int
    node_seconds: Mapping[str, float]
    events: int

    @property
    def rerun_tasks(self) -> int:
        return self.killed_tasks + self.recomputed_tasks


@dataclass(frozen=True)
class Distribution:
    """Summary of Monte-Carlo values; unfinished runs count as infinite runtimes (``mean``/``p90`` become inf)."""

    mean: float
    p50: float
    p90: float
    minimum: float
    maximum: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        a = np.asarray(values, dtype=np.float64)
        if a.size == 0:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
        finite = bool(np.all(np.isfinite(a)))
        # No interpolation towards an infinite value.
        method: Literal["linear", "inverted_cdf"] = "linear" if finite else "inverted_cdf"
        return cls(
            float(a.mean()),
            float(np.percentile(a, 50, method=method)),
            float(np.percentile(a, 90, method=method)),
            float(a.min()),
            float(a.max()),
            float(a.std()) if finite else math.inf,
        )


@dataclass(frozen=True)
class MonteCarloResult:
    runs: tuple[SimResult, ...]
    runtime: Distribution
    cost: Distribution

    @property
    def unfinished(self) -> int:
        return sum(1 for r in self.runs if not r.finished)

    @classmethod
    def of(cls, runs: Sequence[SimResult]) -> MonteCarloResult:
        return cls(tuple(runs), Distribution.of([r.runtime for r in runs]), Distribution.of([r.cost_usd for r in runs]))


# ---------------------------------------------------------------------------------------------------------
# Simulation state
# ---------------------------------------------------------------------------------------------------------

# Event kinds (ints: cheap to compare in the heap tuples).
_FINISH = 0
_STAGE_LAUNCH = 1
_STAGE_DONE = 2
_JOB_SUBMIT = 3
_JOB_DONE = 4
_PHASE_START = 5
_NOTICE = 6
_LOST = 7
_NODE_READY = 8
_SCALE = 9
_END = 10
_SCHEDULED = 11


@dataclass(eq=False)
class _Node:
    index: int
    node_id: str
    group: NodeGroup
    itype: InstanceType
    slots: int
    start: float
    ready: bool = False
    accepting: bool = False
    end: float | None = None
    removing: bool = False
    noticed: bool = False
    running: set[int] = field(default_factory=set)
    idle_since: float = 0.0
    outputs: dict[int, list[int]] = field(default_factory=dict)


@dataclass(eq=False)
class _Stage:
    sid: int
    priority: tuple[int, int]
    durations: list[float]
    parents: list[_Stage] = field(default_factory=list)
    children: list[_Stage] = field(default_factory=list)
    job: _Job | None = None
    launch_delay: float = 0.0
    finish_delay: float = 0.0
    pending: deque[int] = field(default_factory=deque)
    running: int = 0
    done: int = 0
    location: list[int] = field(default_factory=list)
    submitted: bool = False
    launched: bool = False
    complete: bool = False
    queued: bool = False
    generation: int = 0
    consumers_left: int = 0
    lost: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Job:
    job_id: int
    stages: list[_Stage]
    offset: float
    end_delay: float
    bare_duration: float
    submitted: bool = False
    done: bool = False
    phase: int = 0
    order: int = 0


class _Sim:
    def __init__(
        self,
        model: WorkloadModel,
        shape: ClusterShape,
        options: SimOptions,
        seed: int,
        catalog: Mapping[str, InstanceType],
        prices: PriceBook,
    ) -> None:
        self.model = model
        self.shape = shape
        self.options = options
        self.catalog = catalog
        self.prices = prices
        self.rng = np.random.default_rng(seed)
        rate = options.spot_rate_per_hour
        self.spot = PoissonInterruptions(
            (lambda t: catalog[t].advisor_band.rate_per_hour) if rate is None else rate,
            seed=seed,
            window=Window(options.notice_seconds),
        )
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.now = 0.0
        self.events = 0
        self.nodes: list[_Node] = []
        self.free: list[int] = []  # one entry per free slot of an accepting node (stale entries skipped)
        self.runnable: list[tuple[tuple[int, int], int]] = []  # heap of stages with tasks to launch
        self.active: dict[int, tuple[_Stage, int, int]] = {}  # token -> (stage, partition, node)
        self.tokens = 0
        self.stages: dict[int, _Stage] = {}
        self.jobs: list[list[_Job]] = []
        self.phase_jobs_left = 0
        self.phase = -1
        self.end: float | None = None
        self.tasks = 0
        self.launched = 0
        self.killed = 0
        self.recomputed = 0
        self.interruptions = 0
        self.added = 0
        self.removed = 0
        self.peak = 0
        self.alive = 0
        self.in_flight: set[int] = set()
        self.last_scale_out: float | None = None
        self.last_scale_in: float | None = None
        self._build()

    # --- set-up -------------------------------------------------------------------------------------------
    def _durations(self, fixed: Sequence[float], work: Sequence[float], source: bool) -> list[float]:
        opts = self.options
        n_meas = len(work)
        if n_meas == 0:
            return []
        scale_count = source and opts.scale_source_tasks
        if scale_count:
            n, factor = max(1, round(n_meas * opts.data_scale)), 1.0
        elif not source and opts.shuffle_partitions is not None:
            n = opts.shuffle_partitions
            factor = opts.data_scale * n_meas / n  # the stage's work spread over the new partitions
        else:
            n, factor = n_meas, opts.data_scale
        if opts.resample:
            idx = self.rng.integers(0, n_meas, size=n)
        else:
            idx = np.arange(n) % n_meas
        f = np.asarray(fixed, dtype=np.float64)[idx]
        w = np.asarray(work, dtype=np.float64)[idx]
        out: list[float] = ((f + w * factor) / opts.speed).tolist()
        return out

    def _build(self) -> None:
        m = self.model
        ds = self.options.driver_scale
        for phase_no, phase in enumerate(m.phases):
            row = []
            for job_order, jm in enumerate(phase.jobs):
                job = _Job(
                    jm.job_id,
                    [],
                    jm.offset * ds,
                    jm.end_delay * ds,
                    jm.duration_without_stages * ds,
                    phase=phase_no,
                    order=job_order,
                )
                for sid in jm.stages:
                    sm = m.stages[sid]
                    durations = self._durations(sm.fixed, sm.work, sm.source)
                    st = _Stage(
                        sid,
                        (phase_no * 100_000 + job_order, sid),
                        durations,
                        job=job,
                        launch_delay=sm.launch_delay * ds,
                        finish_delay=sm.finish_delay * ds,
                        location=[-1] * len(durations),
                    )
                    self.stages[sid] = st
                    job.stages.append(st)
                    self.tasks += len(durations)
                row.append(job)
            self.jobs.append(row)
        for st in self.stages.values():
            for pid in m.stages[st.sid].parents:
                parent = self.stages.get(pid)
                if parent is not None:
                    st.parents.append(parent)
                    parent.children.append(st)
        for st in self.stages.values():
            st.consumers_left = len(st.children)
        index = 0
        for group in self.shape.groups:
            itype = self.catalog[group.instance_type]
            for _ in range(group.count):
                self._new_node(group, itype, index, start=0.0, ready_at=0.0)
                index += 1
        if self.options.scaling is not None:
            self._push(0.0, _SCALE, 0, 0)
        for i, entry in enumerate(self.options.scheduled_interruptions):
            self._push(entry.at_seconds, _SCHEDULED, i, 0)
        self._push(m.phases[0].gap_before * self.options.driver_scale if m.phases else 0.0, _PHASE_START, 0, 0)

    def _serial_bound(self) -> float:
        """A failure-free upper estimate of the runtime: stages one after another on the initial slots."""
        slots = max(1, sum(n.slots for n in self.nodes))
        stages = sum(
            sum(st.durations) / slots + max(st.durations, default=0.0) + st.launch_delay + st.finish_delay
            for st in self.stages.values()
        )
        jobs = sum(j.offset + j.end_delay + j.bare_duration for row in self.jobs for j in row)
        return max(3600.0, self.model.driver_seconds * self.options.driver_scale + stages + jobs)

    def _new_node(self, group: NodeGroup, itype: InstanceType, index: int, *, start: float, ready_at: float) -> _Node:
        node = _Node(len(self.nodes), f"{group.label}-{index}", group, itype, self.shape.slots(itype), start)
        self.nodes.append(node)
        if ready_at <= start:
            self._ready(node)
        else:
            self.in_flight.add(node.index)
            self._push(ready_at, _NODE_READY, node.index, 0)
        return node

    def _ready(self, node: _Node) -> None:
        node.ready = node.accepting = True
        node.idle_since = self.now
        self.in_flight.discard(node.index)
        self.free.extend([node.index] * node.slots)
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        if node.group.market == "SPOT":
            notice = self.spot.notice_time(
                SpotNode(node.node_id, node.itype.name, node.group.role, node.group.label, node.start)
            )
            if math.isfinite(notice):
                self._push(max(notice, self.now), _NOTICE, node.index, 0)

    def _push(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    # --- main loop ----------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        heap = self.heap
        pop = heapq.heappop
        horizon = min(self.options.max_simulated_seconds, self.options.max_slowdown * self._serial_bound())
        while heap and self.end is None:
            t, _, kind, a, b = pop(heap)
            if t > horizon:
                log.warning("the workload did not finish within %g simulated seconds; stopped", horizon)
                self.now = horizon
                return self._result(finished=False)
            self.now = t
            self.events += 1
            if kind == _FINISH:
                self._finish(a)
            elif kind == _STAGE_LAUNCH:
                self._stage_launch(self.stages[a])
            elif kind == _STAGE_DONE:
                self._stage_done(self.stages[a], b)
            elif kind == _JOB_SUBMIT:
                self._job_submit(self.jobs[a][b])
            elif kind == _JOB_DONE:
                self._job_done(self.jobs[a][b])
            elif kind == _PHASE_START:
                self._phase_start(a)
            elif kind == _NOTICE:
                self._notice(self.nodes[a])
            elif kind == _LOST:
                self._lost(self.nodes[a])
            elif kind == _NODE_READY:
                node = self.nodes[a]
                if node.end is None:
                    self._ready(node)
                    self._dispatch()
            elif kind == _SCALE:
                self._scale()
            elif kind == _END:
                self.end = t
            elif kind == _SCHEDULED:
                self._scheduled(self.options.scheduled_interruptions[a])
        if self.end is None:
            raise RuntimeError("simulation ran out of events before the workload finished (no slot left?)")
        return self._result(finished=True)

    # --- workload -----------------------------------------------------------------------------------------
    def _phase_start(self, p: int) -> None:
        self.phase = p
        jobs = self.jobs[p]
        self.phase_jobs_left = len(jobs)
        for i, job in enumerate(jobs):
            self._push(self.now + job.offset, _JOB_SUBMIT, p, i)
        if not jobs:
            self._phase_end()

    def _phase_end(self) -> None:
        nxt = self.phase + 1
        if nxt < len(self.model.phases):
            gap = self.model.phases[nxt].gap_before * self.options.driver_scale
            self._push(self.now + gap, _PHASE_START, nxt, 0)
        else:
            self._push(self.now + self.model.tail * self.options.driver_scale, _END, 0, 0)

    def _job_submit(self, job: _Job) -> None:
        job.submitted = True
        if not job.stages:
            self._push(self.now + job.bare_duration, _JOB_DONE, job.phase, job.order)
            return
        for st in job.stages:
            self._try_submit(st)

    def _try_submit(self, st: _Stage) -> None:
        if st.submitted or st.job is None or not st.job.submitted:
            return
        if all(p.complete for p in st.parents):
            st.submitted = True
            self._push(self.now + st.launch_delay, _STAGE_LAUNCH, st.sid, 0)

    def _stage_launch(self, st: _Stage) -> None:
        st.launched = True
        st.pending.extend(range(len(st.durations)))
        if not st.durations:
            self._check_stage(st)
            return
        self._enqueue(st)
        self._dispatch()

    def _enqueue(self, st: _Stage) -> None:
        if not st.queued and st.pending:
            st.queued = True
            heapq.heappush(self.runnable, (st.priority, st.sid))

    def _check_stage(self, st: _Stage) -> None:
        if st.launched and not st.complete and st.running == 0 and st.done == len(st.durations):
            st.generation += 1
            self._push(self.now + st.finish_delay, _STAGE_DONE, st.sid, st.generation)

    def _stage_done(self, st: _Stage, generation: int) -> None:
        if generation != st.generation or st.complete or st.done < len(st.durations) or st.running:
            return
        st.complete = True
        for parent in st.parents:
            parent.consumers_left -= 1
        for child in st.children:
            if child.submitted:
                self._enqueue(child)
            else:
                self._try_submit(child)
        job = st.job
        if job is not None and not job.done and all(s.complete for s in job.stages):
            job.done = True
            self._push(self.now + job.end_delay, _JOB_DONE, job.phase, job.order)
        self._dispatch()

    def _job_done(self, job: _Job) -> None:
        job.done = True
        if job.phase == self.phase:
            self.phase_jobs_left -= 1
            if self.phase_jobs_left == 0:
                self._phase_end()

    # --- tasks --------------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        free = self.free
        runnable = self.runnable
        nodes = self.nodes
        while free and runnable:
            _, sid = runnable[0]
            st = self.stages[sid]
            if not st.pending or any(not p.complete for p in st.parents):
                heapq.heappop(runnable)
                st.queued = False
                continue
            ni = free.pop()
            node = nodes[ni]
            if not node.accepting:
                continue
            part = st.pending.popleft()
            self.tokens += 1
            token = self.tokens
            self.active[token] = (st, part, ni)
            node.running.add(token)
            st.running += 1
            self.launched += 1
            self._push(self.now + st.durations[part], _FINISH, token, 0)

    def _finish(self, token: int) -> None:
        entry = self.active.pop(token, None)
        if entry is None:
            return  # the task was lost with its node
        st, part, ni = entry
        node = self.nodes[ni]
        node.running.discard(token)
        st.running -= 1
        if st.location[part] < 0:
            st.location[part] = ni
            st.done += 1
            if st.children and not self.options.shuffle_migration:
                node.outputs.setdefault(st.sid, []).append(part)
        if not node.running:
            node.idle_since = self.now
            if node.removing:
                self._retire(node)
        if node.accepting:
            self.free.append(ni)
        self._check_stage(st)
        self._dispatch()

    # --- nodes --------------------------------------------------------------------------------------------
    def _notice(self, node: _Node) -> None:
        if node.end is not None or node.noticed:
            return
        node.noticed = True
        self.interruptions += 1
        node.accepting = False
        self._push(self.now + self.options.notice_seconds, _LOST, node.index, 0)

    def _scheduled(self, entry: ScheduledInterruption) -> None:
        candidates = [
            n
            for n in self.nodes
            if n.end is None
            and n.ready
            and n.accepting
            and n.group.market == "SPOT"
            and entry.matches(SpotNode(n.node_id, n.itype.name, n.group.role, n.group.label, n.start))
        ]
        candidates.sort(key=lambda n: (n.start, n.index))
        for node in candidates[: entry.count]:
            self._notice(node)

    def _lost(self, node: _Node) -> None:
        if node.end is not None:
            return
        self._kill(node)
        if self.options.replace_interrupted and self.end is None:
            g = node.group
            self.added += 1
            self._new_node(
                g, node.itype, len(self.nodes), start=self.now, ready_at=self.now + self.options.provisioning_seconds
            )
        self._dispatch()

    def _kill(self, node: _Node) -> None:
        """The node is gone now: its running tasks are lost, and its shuffle output (the rule above)."""
        node.accepting = False
        if node.ready:
            self.alive -= 1
        node.end = self.now
        self.in_flight.discard(node.index)
        for token in sorted(node.running):
            st, part, _ = self.active.pop(token)
            st.running -= 1
            st.pending.appendleft(part)
            self.killed += 1
            self._enqueue(st)
        node.running.clear()
        for sid, parts in node.outputs.items():
            st = self.stages[sid]
            lost = [p for p in parts if st.location[p] == node.index]
            if not lost:
                continue
            for p in lost:
                st.location[p] = -1
            st.done -= len(lost)
            if st.consumers_left > 0:
                self._reopen(st, lost)
            else:
                st.lost.extend(lost)  # nobody reads it now; recomputed only if a consumer runs again
        node.outputs.clear()

    def _reopen(self, st: _Stage, parts: list[int]) -> None:
        """Run ``parts`` of ``st`` again; a complete stage becomes incomplete and needs its parents again."""
        st.pending.extend(parts)
        self.recomputed += len(parts)
        if st.complete:
            st.complete = False
            for parent in st.parents:
                parent.consumers_left += 1
                if parent.lost:
                    lost, parent.lost = parent.lost, []
                    self._reopen(parent, lost)
        self._enqueue(st)

    def _retire(self, node: _Node) -> None:
        """A node removed by scaling leaves once idle (its needed shuffle output is lost, see the rule)."""
        self.removed += 1
        self._kill(node)

    # --- managed scaling ----------------------------------------------------------------------------------
    def _holds_shuffle(self, node: _Node) -> bool:
        for sid in [s for s, parts in node.outputs.items() if self.stages[s].consumers_left <= 0]:
            del node.outputs[sid]
        return bool(node.outputs)

    def _scale(self) -> None:
        policy = self.options.scaling
        assert policy is not None
        unit = policy.limits.unit_type
        loads = []
        pending = 0
        for _, sid in self.runnable:
            st = self.stages[sid]
            if all(p.complete for p in st.parents):
                pending += len(st.pending)
        for node in self.nodes:
            if node.end is not None or node.removing or (node.ready and not node.accepting):
                continue
            holds = self._holds_shuffle(node)
            idle = 0.0 if node.running or not node.ready else self.now - node.idle_since
            if holds and policy.shuffle_aware:
                idle = 0.0
            loads.append(
                NodeLoad(
                    node.node_id,
                    node.group.role,
                    node.group.market,
                    node_units(unit, node.itype.vcpu, float(node.itype.vcpu)),
                    node.slots,
                    idle_seconds=idle,
                    holds_shuffle=holds,
                    in_flight=not node.ready,
                )
            )
        pools = tuple(
            Pool(
                g.label,
                g.role,
                g.market,
                node_units(unit, self.catalog[g.instance_type].vcpu, float(self.catalog[g.instance_type].vcpu)),
                self.shape.slots(self.catalog[g.instance_type]),
            )
            for g in self.shape.groups
        )
        decision = decide(
            ScalingInputs(
                now=self.now,
                limits=policy.limits,
                nodes=tuple(loads),
                pools=pools,
                pending_tasks=pending,
                running_tasks=len(self.active),
                last_scale_out_at=self.last_scale_out,
                last_scale_in_at=self.last_scale_in,
                scale_out_cooldown=policy.scale_out_cooldown,
                scale_in_cooldown=policy.scale_in_cooldown,
                idle_seconds_to_scale_in=policy.idle_seconds_to_scale_in,
                min_core_nodes=policy.min_core_nodes,
            )
        )
        if decision.action == ScalingAction.SCALE_OUT:
            self.last_scale_out = self.now
            groups = {g.label: g for g in self.shape.groups}
            for add in decision.additions:
                g = groups[add.pool]
                for _ in range(add.count):
                    self.added += 1
                    self._new_node(
                        g,
                        self.catalog[g.instance_type],
                        len(self.nodes),
                        start=self.now,
                        ready_at=self.now + self.options.provisioning_seconds,
                    )
        elif decision.action == ScalingAction.SCALE_IN:
            self.last_scale_in = self.now
            by_id = {n.node_id: n for n in self.nodes if n.end is None}
            for node_id in decision.removals:
                node = by_id[node_id]
                node.removing = True
                node.accepting = False
                if not node.running:
                    self._retire(node)
        self._push(self.now + policy.evaluation_seconds, _SCALE, 0, 0)

    # --- result -------------------------------------------------------------------------------------------
    def _result(self, *, finished: bool) -> SimResult:
        end = self.end if self.end is not None else self.now
        usages = [
            NodeUsage(n.node_id, n.group.role, n.itype.name, n.group.market, n.start, min(end, n.end or end))
            for n in self.nodes
        ]
        if self.shape.master_type is not None:
            usages.append(NodeUsage("master", "MASTER", self.shape.master_type, "ON_DEMAND", 0.0, end))
        ec2 = emr = 0.0
        seconds: dict[str, float] = {"ON_DEMAND": 0.0, "SPOT": 0.0}
        for u in usages:
            c = node_cost(u, self.prices, end)
            ec2 += c.ec2_usd
            emr += c.emr_usd
            seconds[u.market] += c.seconds
        return SimResult(
            finished=finished,
            runtime=end if finished else math.inf,
            cost_usd=ec2 + emr,
            ec2_usd=ec2,
            emr_usd=emr,
            tasks=self.tasks,
            tasks_launched=self.launched,
            killed_tasks=self.killed,
            recomputed_tasks=self.recomputed,
            interruptions=self.interruptions,
            nodes_added=self.added,
            nodes_removed=self.removed,
            peak_nodes=self.peak,
            node_seconds=seconds,
            events=self.events,
        )


def simulate(
    model: WorkloadModel,
    shape: ClusterShape,
    options: SimOptions = SimOptions(),
    *,
    seed: int = 0,
    catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG,
    prices: PriceBook | None = None,
) -> SimResult:
    """Simulate one run of ``model`` on ``shape`` (deterministic for a seed)."""
    if shape.nodes <= 0 and options.scaling is None:
        raise ValueError("a cluster without nodes and without scaling cannot run tasks")
    if options.speed <= 0 or options.data_scale <= 0 or options.driver_scale < 0:
        raise ValueError("speed and data_scale must be positive, driver_scale not negative")
    return _Sim(model, shape, options, seed, catalog, prices or PriceBook(catalog)).run()


def monte_carlo(
    model: WorkloadModel,
    shape: ClusterShape,
    options: SimOptions = SimOptions(),
    *,
    repetitions: int = 20,
    seed: int = 0,
    catalog: Mapping[str, InstanceType] = DEFAULT_CATALOG,
    prices: PriceBook | None = None,
) -> MonteCarloResult:
    """``repetitions`` simulations with seeds derived from ``seed``: runtime and cost distributions."""
    seeds = np.random.SeedSequence(seed).generate_state(repetitions, dtype=np.uint32)
    book = prices or PriceBook(catalog)
    return MonteCarloResult.of(
        [simulate(model, shape, options, seed=int(s), catalog=catalog, prices=book) for s in seeds]
    )
