"""Experiments: the file's validation, its points, the results table, and the runner's resume/failure rules.

The runner tests launch real clusters through the control plane with the test plug-in backend (in-memory nodes,
steps as real processes; see ``cli_backend.py``), whose steps write real Iceberg tables through the session's
uvicorn catalog, so what is checked and recorded is real. The same runner on Ray is exercised by the main job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyiceberg.catalog.rest import RestCatalog

from catalog.server import CatalogServer
from catalog.settings import Settings
from cluster.api import Cluster
from cluster.config import ClusterConfig
from cluster.errors import ConfigError
from cluster.experiments import (
    WORKLOADS,
    ExperimentRunner,
    ResultsTable,
    RunResult,
    WorkloadContext,
    cluster_config,
    expand,
    load_experiment,
    parse_experiment,
)
from cluster.experiments.results import SCHEMA
from cluster.experiments.workloads import Prepared
from tests.conftest import make_settings

HERE = Path(__file__).parent
BACKEND = "tests.cluster.cli_backend:provider"


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "exp",
        "workloads": [{"name": "rows", "job": "test_rows", "records": [10, 20]}],
        "shapes": [{"name": "small", "core": 1, "task": 0}, {"name": "two-task", "core": 1, "task": 2}],
        "repetitions": 1,
        "cluster": {"backend": BACKEND, "hdfs": False},
    }
    data.update(overrides)
    return data


class RowsWorkload:
    """Writes ``records`` rows with tests/cluster/experiment_jobs/write_rows.py; options can make it fail."""

    description = "test rows"

    def prepare(self, ctx: WorkloadContext, name: str, records: int, run_key: str) -> Prepared:
        table = f"{ctx.output_namespace}.{ctx.experiment}_{run_key}"
        args = ["--uri", ctx.options["uri"], "--table", table, "--rows", str(records)]
        if ctx.options.get("fail_records") == str(records):
            args.append("--fail")
        if ctx.options.get("short_records") == str(records):
            args += ["--short", "1"]
        return Prepared(HERE / "experiment_jobs" / "write_rows.py", tuple(args), table, records)


@pytest.fixture(autouse=True)
def rows_workload() -> Iterator[None]:
    WORKLOADS["test_rows"] = RowsWorkload()
    yield
    del WORKLOADS["test_rows"]


# -- the file ------------------------------------------------------------------------------------------------


def test_points_are_the_cross_product_with_stable_ids() -> None:
    spec = parse_experiment(spec_data(spot_interruption_rates=[0, 10], repetitions=2))
    points = expand(spec)
    # sizes x (small at rate 0 only: it has no Spot node to interrupt + two-task at both rates) x repetitions
    assert len(points) == 2 * 3 * 2
    assert {(p.shape.name, p.spot_rate) for p in points} == {("small", 0), ("two-task", 0), ("two-task", 10)}
    assert len({p.id for p in points}) == len(points)
    assert [p.id for p in expand(parse_experiment(spec_data(spot_interruption_rates=[0, 10], repetitions=2)))] == [
        p.id for p in points
    ]
    # repetition 1 first; points sharing a cluster are adjacent
    assert [p.repetition for p in points] == [1] * 6 + [2] * 6
    keys = [p.cluster_key for p in points[:6]]
    assert keys == sorted(keys, key=keys.index) and len(set(keys)) == 3
    changed = expand(parse_experiment(spec_data(spot_interruption_rates=[0, 10], repetitions=2, seed=1)))
    assert {p.id for p in changed} == {p.id for p in points}  # the seed is not part of what a point is


def test_cluster_config_of_a_point() -> None:
    spec = parse_experiment(
        spec_data(
            spot_interruption_rates=[12.5],
            scaling=[{"name": "elastic", "minimum": 2, "maximum": 5}],
        )
    )
    point = next(p for p in expand(spec) if p.shape.name == "two-task")
    cfg = cluster_config(spec, point)
    assert isinstance(cfg, ClusterConfig)
    assert cfg.instance_groups is not None and cfg.instance_groups.core is not None
    assert cfg.instance_groups.core.count == 1
    assert [(g.count, g.market) for g in cfg.instance_groups.task] == [(2, "SPOT")]
    assert cfg.spot.interruption_rate_per_hour == 12.5
    assert cfg.managed_scaling is not None and (cfg.managed_scaling.minimum, cfg.managed_scaling.maximum) == (2, 5)
    assert cfg.backend == BACKEND


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"workloads": [{"name": "rows", "job": "test_rows", "records": [0]}]}, "workloads.0.records", "positive"),
        ({"workloads": [{"name": "rows", "job": "nope", "records": [1]}]}, "workloads[].job", "unknown workload"),
        ({"shapes": [{"name": "a", "task": -1}]}, "shapes.0.task", "greater than or equal to 0"),
        ({"shapes": [{"name": "a"}, {"name": "a", "task": 1}]}, "<root>", "repeated: a"),
        ({"scaling": [{"name": "s", "minimum": 4, "maximum": 2}]}, "scaling.0", "above maximum"),
        ({"spot_interruption_rates": [-1]}, "spot_interruption_rates", "cannot be negative"),
        ({"cluster": {"instance_groups": {}}}, "<root>", "set by each point"),
        ({"shapes": [{"name": "a", "core_instance_type": "m9.huge"}]}, "shapes[a]", "m9.huge"),
        ({"repetitions": 0}, "repetitions", "greater than or equal to 1"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
    ],
)
def test_bad_experiments_name_the_field(change: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiment(spec_data(**change))
    assert err.value.field.startswith(field), err.value.problems
    assert reason in str(err.value)


def test_load_experiment_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_experiment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_experiment(bad)


def test_example_experiment_file_is_valid() -> None:
    """cluster/experiments/examples/task-scaling.yaml, the file the README tells users to run."""
    spec = load_experiment(HERE.parents[1] / "cluster" / "experiments" / "examples" / "task-scaling.yaml")
    points = expand(spec)
    assert (spec.name, spec.results_table) == ("task-scaling", "experiments.runs")
    assert len(points) == 2 * (5 + 3)  # sizes x (5 shapes at rate 0 + the 3 Spot shapes at rate 6), one repetition
    assert len({p.id for p in points}) == len(points)
    assert {(p.shape.task, p.shape.task_market) for p in points} >= {(2, "SPOT"), (2, "ON_DEMAND")}
    assert {p.spot_rate for p in points} == {0.0, 6.0}


# -- results and runs ----------------------------------------------------------------------------------------


@pytest.fixture
def lake(server: CatalogServer) -> RestCatalog:
    return RestCatalog("lake", uri=server.uri)


@pytest.fixture
def cluster_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


def runner_for(
    data: dict[str, Any], lake: RestCatalog, server: CatalogServer, settings: Settings, table: str, **options: str
) -> ExperimentRunner:
    spec = parse_experiment({**data, "results_table": table})

    def launch(config: ClusterConfig) -> Cluster:
        return Cluster.create(config, settings=settings, timeout=60)

    context = WorkloadContext(spec.name, lake, settings.object_store_root, options={"uri": server.uri, **options})
    return ExperimentRunner(spec, ResultsTable(lake, table), context, launch, server.uri, step_timeout=120)


def test_results_table_schema_matches_run_result(lake: RestCatalog, unique_ns: str) -> None:
    results = ResultsTable(lake, f"{unique_ns}.runs")
    assert results.finished("nothing") == set()
    assert set(SCHEMA.names) == set(RunResult.__dataclass_fields__)
    assert lake.load_table(f"{unique_ns}.runs").schema().as_arrow().names == SCHEMA.names


@pytest.mark.slow
def test_run_records_every_point_and_resumes_without_redoing(
    lake: RestCatalog, server: CatalogServer, cluster_settings: Settings, unique_ns: str
) -> None:
    table = f"{unique_ns}.runs"
    data = spec_data(shapes=[{"name": "small", "core": 1, "task": 1}])
    first = runner_for(data, lake, server, cluster_settings, table).run(limit=1)
    assert len(first) == 1 and first[0].status == "ok" and first[0].correct
    assert first[0].output_rows == first[0].expected_rows == 10
    assert first[0].wall_seconds > 0 and first[0].node_seconds_on_demand > 0 and first[0].node_seconds_spot > 0
    assert first[0].cost_usd > 0 and first[0].cluster_id.startswith("j-")
    # the output table is dropped after its check
    assert not lake.table_exists(f"experiment_outputs.exp_{first[0].point_id}")

    # "interrupted" after one point: the next run does only the rest
    runner = runner_for(data, lake, server, cluster_settings, table)
    _, todo = runner.pending()
    assert [p.records for p in todo] == [20]
    second = runner.run()
    assert [r.records for r in second] == [20] and second[0].correct
    assert runner.run() == []  # nothing left
    rows = ResultsTable(lake, table).rows("exp")
    assert sorted(rows.column("records").to_pylist()) == [10, 20]
    assert set(rows.column("status").to_pylist()) == {"ok"}


@pytest.mark.slow
def test_failed_and_wrong_runs_are_recorded_and_retried_on_request(
    lake: RestCatalog, server: CatalogServer, cluster_settings: Settings, unique_ns: str
) -> None:
    table = f"{unique_ns}.runs"
    data = spec_data(shapes=[{"name": "small", "core": 1, "task": 0}])
    runner = runner_for(data, lake, server, cluster_settings, table, fail_records="10", short_records="20")
    results = {r.records: r for r in runner.run()}
    assert results[10].status == "failed" and "FAILED" in results[10].error and not results[10].correct
    # the step completed, but its output is wrong: a failed run, not a result
    assert results[20].status == "failed" and not results[20].correct
    assert results[20].output_rows == 19 and "19 rows" in results[20].error
    assert runner.run() == []  # failures count as done...
    fixed = runner_for(data, lake, server, cluster_settings, table)
    retried = fixed.run(retry_failed=True)  # ...until asked again
    assert [(r.records, r.status, r.correct) for r in retried] == [(10, "ok", True), (20, "ok", True)]
    assert ResultsTable(lake, table).rows("exp").num_rows == 4


def test_cli_points_lists_the_plan(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cluster.cli import app

    path = tmp_path / "exp.yaml"

    path.write_text(yaml.safe_dump(spec_data(workloads=[{"name": "ev", "job": "events", "records": [100]}])))
    result = CliRunner().invoke(app, ["experiment", "points", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 runs on 2 cluster launches" in result.output
    path.write_text(yaml.safe_dump(spec_data(repetitions=-1)))
    result = CliRunner().invoke(app, ["experiment", "points", str(path)])
    assert result.exit_code == 1
    assert "repetitions" in result.output
