"""Traces, the workload model and both predictors on real Spark runs of this machine.

One module-scoped campaign: the calibration job under ``spark-submit --master local[1]`` and ``local[2]`` (two
launches) at three data sizes, with event logs. The trace tests read those logs; the validation fits Ernest on
the two smaller sizes, replays the largest training run in the simulation, and reports both predictors' error
on the largest size. Timing on a shared 2-core machine is noisy, so the errors are logged, and only what must
hold at any load is asserted (a replay of a run's own trace reproduces it; the report is complete and
consistent).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import zstandard

from cluster.predict.calibrate import MeasuredRun, read_campaign, run_local_campaign, summarize
from cluster.predict.model import WorkloadModel
from cluster.predict.simulate import ClusterShape, SimOptions, simulate
from cluster.predict.traces import JobTrace, TraceError, parse_event_log
from cluster.predict.validate import validate, workload_of

pytestmark = [pytest.mark.spark, pytest.mark.slow]

log = logging.getLogger(__name__)

SIZES = (1.0, 2.0, 3.0)
ROWS_PER_UNIT = 400_000
PARTITIONS_PER_UNIT = 4
WARMUP_ROWS = 200_000


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> list[MeasuredRun]:
    workdir = tmp_path_factory.mktemp("predict-campaign")
    return run_local_campaign(
        workdir, cores=(1, 2), sizes=SIZES, rows_per_unit=ROWS_PER_UNIT, partitions_per_unit=PARTITIONS_PER_UNIT
    )


@pytest.fixture(scope="module")
def trace2(campaign: list[MeasuredRun]) -> JobTrace:
    run = next(r for r in campaign if r.machines == 2)
    assert run.event_log is not None
    return parse_event_log(run.event_log)


def test_campaign_measures_every_point_with_its_window(campaign: list[MeasuredRun]) -> None:
    assert sorted(r.point for r in campaign) == sorted((k, s) for k in (1, 2) for s in SIZES)
    for r in campaign:
        assert r.runtime > 0
        assert r.start is not None and r.end is not None
        assert r.end - r.start == pytest.approx(r.runtime)
        assert r.event_log is not None and r.event_log.is_file()
        assert r.group == f"calibration-{r.size:g}-0"
    assert summarize(campaign) == sorted(campaign, key=lambda r: r.point)


def test_trace_has_the_application_executor_and_job_groups(trace2: JobTrace) -> None:
    assert trace2.app_id.startswith("local-")
    assert trace2.spark_version == "3.5.7"
    assert trace2.properties["spark.master"] == "local[2]"
    assert [(e.executor_id, e.cores) for e in trace2.executors] == [("driver", 2)]
    assert trace2.total_cores == 2
    assert trace2.job_groups() == ("warmup-io", "warmup-run", *(f"calibration-{s:g}-0" for s in SIZES))
    assert trace2.start_time is not None and trace2.end_time is not None
    assert all(j.succeeded for j in trace2.jobs)


@pytest.mark.parametrize("size", SIZES)
def test_calibration_run_stages_tasks_and_shuffle(trace2: JobTrace, size: float) -> None:
    run = trace2.for_group(f"calibration-{size:g}-0")
    assert len(run.jobs) == 1
    stages = {s.stage_id: s for s in run.stages}
    assert len(stages) == 4 and all(s.attempt == 0 and s.succeeded for s in stages.values())
    sources = [s for s in stages.values() if not s.parent_ids]
    join = next(s for s in stages.values() if len(s.parent_ids) == 2)
    final = next(s for s in stages.values() if s.parent_ids == (join.stage_id,))
    parts = round(size * PARTITIONS_PER_UNIT)
    facts, dims = sorted(sources, key=lambda s: -s.num_tasks)
    assert set(join.parent_ids) == {facts.stage_id, dims.stage_id}
    assert (facts.num_tasks, dims.num_tasks, join.num_tasks, final.num_tasks) == (parts, parts // 2, 8, 8)
    for s in stages.values():
        assert len(s.successful_tasks) == s.num_tasks == len(s.tasks)
        assert sorted(t.index for t in s.tasks) == list(range(s.num_tasks))
        for t in s.tasks:
            assert s.submission_time is not None and s.completion_time is not None
            assert s.submission_time <= t.launch_time <= t.finish_time <= s.completion_time
            assert 0 <= t.run_time <= t.duration + 0.002
            assert t.executor_id == "driver"
    rows = int(size * ROWS_PER_UNIT)
    assert facts.input_records == rows  # spark.range reports the rows it produced as records read
    assert dims.input_records == rows // 10
    # Every shuffle byte written by the map stages is read by the join stage, and so on.
    assert join.shuffle_read_bytes == facts.shuffle_write_bytes + dims.shuffle_write_bytes > 0
    assert final.shuffle_read_bytes == join.shuffle_write_bytes > 0
    assert sum(t.shuffle_read_records for t in join.tasks) == rows + rows // 10


def test_parquet_warm_up_has_input_and_output_metrics(trace2: JobTrace) -> None:
    io = trace2.for_group("warmup-io")
    write = next(s for s in io.stages if s.output_bytes > 0)
    assert sum(t.output_records for t in write.tasks) == WARMUP_ROWS
    read = [s for s in io.stages if s.input_bytes > 0]
    assert read and sum(s.input_records for s in read) == WARMUP_ROWS


def test_in_progress_rolling_and_broken_logs(trace2: JobTrace, campaign: list[MeasuredRun], tmp_path: Path) -> None:
    source = next(r.event_log for r in campaign if r.machines == 2)
    assert source is not None
    lines = source.read_bytes().splitlines(keepends=True)
    # A log still being written: the partial last line is dropped, everything before it is kept.
    partial = tmp_path / f"{trace2.app_id}.inprogress"
    partial.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    cut = parse_event_log(partial)
    assert cut.end_time is None  # the ApplicationEnd line was the partial one
    assert len(cut.tasks) == len(trace2.tasks)
    # A rolling log directory: the same events split over numbered files.
    rolling = tmp_path / f"eventlog_v2_{trace2.app_id}"
    rolling.mkdir()
    half = len(lines) // 2
    (rolling / f"events_2_{trace2.app_id}").write_bytes(b"".join(lines[half:]))
    (rolling / f"events_1_{trace2.app_id}").write_bytes(b"".join(lines[:half]))
    (rolling / f"appstatus_{trace2.app_id}").write_bytes(b"")
    assert parse_event_log(rolling) == trace2
    # Compressed with zstd (spark.eventLog.compress=true, Spark 3's default codec), in two frames.
    packed = tmp_path / f"{trace2.app_id}.zstd"
    cctx = zstandard.ZstdCompressor()
    packed.write_bytes(cctx.compress(b"".join(lines[:half])) + cctx.compress(b"".join(lines[half:])))
    assert parse_event_log(packed) == trace2
    lz4 = tmp_path / f"{trace2.app_id}.lz4"
    lz4.write_bytes(b"")
    with pytest.raises(TraceError, match="lz4"):
        parse_event_log(lz4)
    # A broken line in the middle is an error, not silently skipped.
    broken = tmp_path / "broken"
    broken.write_bytes(b"".join(lines[:5]) + b"{not json\n" + b"".join(lines[5:]))
    with pytest.raises(TraceError):
        parse_event_log(broken)
    with pytest.raises(TraceError):
        parse_event_log(tmp_path / "missing")


def test_replaying_a_run_reproduces_its_runtime(campaign: list[MeasuredRun]) -> None:
    """The model of a run, replayed as measured on the same slots, lands on the measured time."""
    traces = {str(r.event_log): parse_event_log(r.event_log) for r in campaign if r.event_log is not None}
    for run in campaign:
        model = workload_of(run, traces[str(run.event_log)])
        assert model.traced_runtime == pytest.approx(run.runtime, rel=1e-6)
        assert model.task_count == (
            round(run.size * PARTITIONS_PER_UNIT) + round(run.size * PARTITIONS_PER_UNIT) // 2 + 16
        )
        replay = simulate(model, ClusterShape.local(run.machines), SimOptions(resample=False))
        log.info(
            "replay m=%d size=%g: measured %.2f s, replayed %.2f s", run.machines, run.size, run.runtime, replay.runtime
        )
        assert replay.runtime == pytest.approx(run.runtime, rel=0.10)


def test_validation_reports_both_predictors_on_held_out_runs(campaign: list[MeasuredRun]) -> None:
    report = validate(summarize(campaign), repetitions=10, seed=1)
    log.info("prediction error on real runs:\n%s", report.to_text())
    assert report.traced == (2, 2.0)  # largest training size, most machines
    assert {(p.machines, p.size) for p in report.held_out} == {(1, 3.0), (2, 3.0)}
    assert all(t >= 0 for t in report.model.theta)
    for error in (report.ernest_error, report.simulation_error, report.replay_error):
        assert 0 <= error < 10
    traced = next(p for p in report.points if p.traced)
    assert traced.replay_error < 0.15  # its own trace, resampled
    assert set(report.calibration.speeds) == {1, 2}
    assert all(p.speed == report.calibration.speeds[p.machines] for p in report.points)
    # The calibration fits the training runs at least as well as the plain replay does.
    train = [p for p in report.points if not p.held_out]
    assert sum(p.calibrated_error**2 for p in train) <= sum(p.replay_error**2 for p in train) * 1.05 + 1e-3
    rows = report.to_json()["points"]
    assert len(rows) == 6 and sum(r["role"] == "held-out" for r in rows) == 2
    # The same runs read back from the campaign files give the same report.
    again = []
    for path in sorted({r.event_log.parent.parent for r in campaign if r.event_log is not None}):
        for k in (1, 2):
            again += read_campaign(path / f"runs-local{k}.json", machines=k)
    assert validate(summarize(again), repetitions=10, seed=1).to_json() == report.to_json()


def test_model_of_the_whole_application(trace2: JobTrace) -> None:
    model = WorkloadModel.from_trace(trace2)
    assert len(model.phases) == len(trace2.jobs)  # one driver thread: the jobs ran one after the other
    assert model.task_count == sum(len(s.successful_tasks) for s in trace2.stages)
    assert model.driver_seconds > 0  # Python and planning between the jobs
    assert model.traced_runtime == pytest.approx(
        max(j.completion_time or 0 for j in trace2.jobs) - trace2.jobs[0].submission_time
    )
