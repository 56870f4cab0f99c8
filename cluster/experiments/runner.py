"""Run an experiment's points on simulated clusters and record each run in the results table.

Points that share a cluster setting (shape, Spot rate, scaling policy) within one repetition run as consecutive
steps of one cluster, which is launched for them and terminated after them; every point is one step. What a run
records comes from the cluster itself: the step's window and counters, the node lives overlapping it (node-
seconds by market), its share of the bill, and the Spark event log of the step (jobs, stages, tasks, failures).
The output table is checked against the input before the row is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster.api import Cluster
from cluster.config import ClusterConfig
from cluster.experiments.results import STATUS_FAILED, STATUS_OK, ResultsTable, RunResult
from cluster.experiments.spec import ExperimentSpec, Point, cluster_config, expand
from cluster.experiments.workloads import Prepared, WorkloadContext, check_output, drop_output, workload
from cluster.states import StepState
from cluster.steps import Step

log = logging.getLogger(__name__)

#: Launches a cluster for a config and waits until it takes steps.
ClusterFactory = Callable[[ClusterConfig], Cluster]


@dataclass(frozen=True)
class Progress:
    """What the runner reports after each point (for a progress bar)."""

    done: int
    total: int
    point: Point
    result: RunResult | None
    skipped: bool


@dataclass(frozen=True)
class SparkCounts:
    jobs: int = 0
    stages: int = 0
    tasks: int = 0
    failed_tasks: int = 0
    event_log: str = ""


def spark_counts(log_dir: Path) -> SparkCounts:
    """Jobs, stages and tasks of a step, from the Spark event log the provider keeps in its log directory."""
    logs = sorted((log_dir / "spark-events").glob("*")) if (log_dir / "spark-events").is_dir() else []
    logs = [p for p in logs if p.is_file() and not p.name.endswith(".inprogress")] or logs
    if not logs:
        return SparkCounts()
    from cluster.predict.traces import parse_event_log

    trace = parse_event_log(logs[-1])
    tasks = [t for s in trace.stages for t in s.tasks]
    return SparkCounts(
        jobs=len(trace.jobs),
        stages=len(trace.stages),
        tasks=len(tasks),
        failed_tasks=sum(1 for t in tasks if not t.successful),
        event_log=str(logs[-1]),
    )


def node_seconds_by_market(cluster: Cluster, start: float, end: float) -> dict[str, float]:
    """Node-seconds of every node alive during ``[start, end]``, by market."""
    out = {"ON_DEMAND": 0.0, "SPOT": 0.0}
    for node in cluster.list_nodes():
        launched = node.launched_at
        if launched is None:
            continue
        ended = node.ended_at if node.ended_at is not None else end
        overlap = min(ended, end) - max(launched, start)
        if overlap > 0:
            out[node.market] += overlap
    return out


class ExperimentRunner:
    """Runs the points of one experiment that are not in the results table yet.

    Args:
        spec: The experiment.
        results: Where runs are recorded (and what is already done).
        context: Where workload data lives.
        launch: Starts a cluster for a config and waits until it is ready.
        catalog_uri: The REST catalog the steps write through.
        step_timeout: Longest a step may run, seconds.
        keep_outputs: Keep each run's output table (dropped after its check by default).
    """

    def __init__(
        self,
        spec: ExperimentSpec,
        results: ResultsTable,
        context: WorkloadContext,
        launch: ClusterFactory,
        catalog_uri: str,
        *,
        step_timeout: float = 3600.0,
        keep_outputs: bool = False,
    ) -> None:
        self.spec = spec
        self.results = results
        self.context = context
        self.launch = launch
        self.catalog_uri = catalog_uri
        self.step_timeout = step_timeout
        self.keep_outputs = keep_outputs

    def pending(self, *, retry_failed: bool = False) -> tuple[list[Point], list[Point]]:
        """``(all points, points still to run)``."""
        points = expand(self.spec)
        done = self.results.finished(self.spec.name, include_failed=not retry_failed)
        return points, [p for p in points if p.id not in done]

    def run(
        self,
        *,
        retry_failed: bool = False,
        limit: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> list[RunResult]:
        """Run what is left; return the new results.

        Args:
            retry_failed: Run again the points whose recorded run failed.
            limit: Stop after this many runs (the rest is left for the next call).
            on_progress: Called after every point, skipped ones included.
        """
        points, todo = self.pending(retry_failed=retry_failed)
        if limit is not None:
            todo = todo[:limit]
        todo_ids = {p.id for p in todo}
        done = 0
        for point in points:
            if point.id not in todo_ids:
                done += 1
                if on_progress:
                    on_progress(Progress(done, len(points), point, None, True))
        results: list[RunResult] = []
        for group in _groups(todo):
            config = cluster_config(self.spec, group[0])
            log.info("launching %s for %d run(s)", config.name, len(group))
            with self._cluster(config) as cluster:
                for point in group:
                    result = self._run_point(cluster, point)
                    self.results.append([result])
                    results.append(result)
                    done += 1
                    if on_progress:
                        on_progress(Progress(done, len(points), point, result, False))
        return results

    @contextmanager
    def _cluster(self, config: ClusterConfig) -> Iterator[Cluster]:
        cluster = self.launch(config)
        try:
            yield cluster
        finally:
            cluster.terminate()
            cluster.wait_terminated()

    def _run_point(self, cluster: Cluster, point: Point) -> RunResult:
        kind = workload(point.workload.job)
        ctx = WorkloadContext(
            self.spec.name,
            self.context.catalog,
            self.context.object_store_root,
            self.context.output_namespace,
            {**self.context.options, **point.workload.options},
        )
        started = time.time()
        try:
            prepared = kind.prepare(ctx, point.workload.name, point.records, point.id)
        except Exception as exc:  # noqa: BLE001 - a bad input is this point's failure, not the experiment's
            log.exception("preparing %s failed", point.label)
            return self._failed(point, cluster, f"input preparation failed: {exc}", started)
        conf = {"spark.sql.catalog.lake.uri": self.catalog_uri, **prepared.spark_conf}
        step_id = cluster.add_step(
            f"{point.workload.name}-{point.records}", str(prepared.script), prepared.args, spark_conf=conf
        )
        step = cluster.wait_for_step(step_id, self.step_timeout)
        try:
            return self._result(cluster, point, step, prepared, ctx)
        finally:
            if not self.keep_outputs:
                drop_output(ctx, prepared)

    def _result(
        self, cluster: Cluster, point: Point, step: Step, prepared: Prepared, ctx: WorkloadContext
    ) -> RunResult:
        start = step.started_at if step.started_at is not None else step.submitted_at
        end = step.ended_at if step.ended_at is not None else time.time()
        ok = step.state == StepState.COMPLETED
        check = check_output(ctx, prepared) if ok else None
        counts = spark_counts(step.log_dir)
        seconds = node_seconds_by_market(cluster, start, end)
        try:
            cost = cluster.cost_report().step(step.step_id).total_usd
        except KeyError:
            cost = 0.0
        error = "" if ok else f"step {step.state.value}: {step.failure_reason or 'see its stderr'} ({step.log_dir})"
        if check is not None and not check.correct:
            ok = False
            error = f"output has {check.output_rows} rows, input says {check.expected_rows}"
        return self._row(
            point,
            status=STATUS_OK if ok else STATUS_FAILED,
            error=error,
            cluster_id=cluster.id,
            step_id=step.step_id,
            started_at=start,
            wall_seconds=end - start,
            counts=counts,
            step=step,
            node_seconds=seconds,
            cost=cost,
            output_rows=check.output_rows if check else 0,
            expected_rows=prepared.expected_rows,
            correct=bool(check and check.correct),
        )

    def _failed(self, point: Point, cluster: Cluster, error: str, started: float) -> RunResult:
        return self._row(
            point,
            status=STATUS_FAILED,
            error=error,
            cluster_id=cluster.id,
            step_id="",
            started_at=started,
            wall_seconds=0.0,
            counts=SparkCounts(),
            step=None,
            node_seconds={"ON_DEMAND": 0.0, "SPOT": 0.0},
            cost=0.0,
            output_rows=0,
            expected_rows=0,
            correct=False,
        )

    def _row(
        self,
        point: Point,
        *,
        status: str,
        error: str,
        cluster_id: str,
        step_id: str,
        started_at: float,
        wall_seconds: float,
        counts: SparkCounts,
        step: Step | None,
        node_seconds: dict[str, float],
        cost: float,
        output_rows: int,
        expected_rows: int,
        correct: bool,
    ) -> RunResult:
        shape = point.shape
        counters = step.counters if step is not None else None
        return RunResult(
            experiment=point.experiment,
            point_id=point.id,
            repetition=point.repetition,
            workload=point.workload.name,
            job=point.workload.job,
            records=point.records,
            shape=shape.name,
            core_nodes=shape.core,
            task_nodes=shape.task,
            core_instance_type=shape.core_instance_type,
            task_instance_type=shape.task_instance_type,
            task_market=shape.task_market,
            spot_rate_per_hour=point.spot_rate,
            scaling=point.scaling_name,
            status=status,
            error=error,
            cluster_id=cluster_id,
            step_id=step_id,
            started_at=started_at,
            wall_seconds=round(wall_seconds, 3),
            jobs=counts.jobs,
            stages=counts.stages,
            tasks=counts.tasks,
            failed_tasks=counts.failed_tasks,
            recomputed_tasks=counters.recomputed_tasks if counters else 0,
            lost_executors=counters.lost_executors if counters else 0,
            interrupted_nodes=counters.interrupted_nodes if counters else 0,
            node_seconds_on_demand=round(node_seconds["ON_DEMAND"], 3),
            node_seconds_spot=round(node_seconds["SPOT"], 3),
            wasted_node_seconds=round(counters.wasted_node_seconds, 3) if counters else 0.0,
            cost_usd=round(cost, 6),
            output_rows=output_rows,
            expected_rows=expected_rows,
            correct=correct,
            event_log=counts.event_log,
        )


def _groups(points: list[Point]) -> list[list[Point]]:
    """Consecutive points of one repetition sharing a cluster setting."""
    groups: list[list[Point]] = []
    for p in points:
        if groups and (groups[-1][0].repetition, groups[-1][0].cluster_key) == (p.repetition, p.cluster_key):
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups
