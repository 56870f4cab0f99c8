"""``lakeforge experiment run|points|show``: run a declarative experiment and look at its results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalog.logs import configure_logging
from catalog.settings import Settings, get_settings
from cluster.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog.rest import RestCatalog

    from cluster.experiments.spec import ExperimentSpec

experiment_app = typer.Typer(no_args_is_help=True, help="Scaling experiments on simulated clusters.")

_err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error:[/] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(1)


def _load(path: Path) -> ExperimentSpec:
    from cluster.experiments.spec import load_experiment

    try:
        return load_experiment(path)
    except ConfigError as exc:
        raise _fail(f"{path}: {exc}") from None


def lake_catalog(settings: Settings, uri: str) -> RestCatalog:
    """A pyiceberg REST catalog for the lake at ``uri`` (with the configured client credentials)."""
    from pyiceberg.catalog.rest import RestCatalog

    props: dict[str, str] = {"uri": uri}
    secret = settings.catalog.client_secret
    if settings.catalog.client_id and secret is not None:
        props["credential"] = f"{settings.catalog.client_id}:{secret.get_secret_value()}"
    return RestCatalog("lake", **props)


@experiment_app.command("points")
def points_command(file: Annotated[Path, typer.Argument(help="Experiment YAML file.")]) -> None:
    """Validate an experiment and list its points (nothing runs)."""
    from cluster.experiments.spec import describe_points, expand

    spec = _load(file)
    points = expand(spec)
    table = Table(title=f"{spec.name}: {describe_points(points)}")
    for column in ("point", "workload", "records", "shape", "spot /h", "scaling", "rep"):
        table.add_column(column)
    for p in points:
        table.add_row(
            p.id, p.workload.name, f"{p.records:,}", p.shape.name, f"{p.spot_rate:g}", p.scaling_name, str(p.repetition)
        )
    Console().print(table)


@experiment_app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    retry_failed: Annotated[bool, typer.Option(help="Run again the points whose recorded run failed.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Run at most this many points now.")] = None,
    backend: Annotated[str | None, typer.Option(help="Cluster backend (default: the experiment's or local).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray head address for --backend ray.")] = None,
    keep_outputs: Annotated[bool, typer.Option(help="Keep each run's output table.")] = False,
) -> None:
    """Run every point not yet in the results table (an interrupted run resumes where it stopped)."""
    from catalog.server import running_catalog
    from cluster.api import Cluster
    from cluster.config import ClusterConfig
    from cluster.experiments.results import STATUS_OK, ResultsTable
    from cluster.experiments.runner import ExperimentRunner
    from cluster.experiments.runner import Progress as RunProgress
    from cluster.experiments.workloads import WorkloadContext

    spec = _load(file)
    settings = get_settings()
    configure_logging("WARNING", settings.log_format)
    console = Console()

    def launch(config: ClusterConfig) -> Cluster:
        return Cluster.create(config, backend=backend, address=address, settings=settings)

    try:
        with running_catalog(settings) as uri:
            catalog = lake_catalog(settings, uri)
            results = ResultsTable(catalog, spec.results_table)
            context = WorkloadContext(spec.name, catalog, settings.object_store_root)
            runner = ExperimentRunner(spec, results, context, launch, uri, keep_outputs=keep_outputs)
            all_points, todo = runner.pending(retry_failed=retry_failed)
            console.print(
                f"{spec.name}: {len(all_points)} points, {len(all_points) - len(todo)} already recorded in "
                f"{spec.results_table}, {len(todo) if limit is None else min(limit, len(todo))} to run now"
            )
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console,
            ) as bar:  # fmt: skip
                task = bar.add_task(spec.name, total=len(all_points))

                def show(p: RunProgress) -> None:
                    bar.update(task, completed=p.done)
                    if p.result is not None:
                        r = p.result
                        mark = "[green]ok[/]" if r.status == STATUS_OK and r.correct else f"[red]{r.status}[/]"
                        bar.console.print(
                            f"{mark} {p.point.label}: {r.wall_seconds:.1f}s, ${r.cost_usd:.4f}, "
                            f"{r.tasks} tasks, {r.lost_executors} lost executors" + (f" - {r.error}" if r.error else "")
                        )

                new = runner.run(retry_failed=retry_failed, limit=limit, on_progress=show)
    except ClusterError as exc:
        raise _fail(str(exc)) from None
    failed = [r for r in new if not (r.status == STATUS_OK and r.correct)]
    console.print(f"{len(new)} run(s) recorded, {len(failed)} failed or incorrect; results in {spec.results_table}")
    if failed:
        raise typer.Exit(1)


@experiment_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    table: Annotated[str, typer.Option(help="Results table.")] = "experiments.runs",
) -> None:
    """Print an experiment's recorded runs."""
    from catalog.server import running_catalog
    from cluster.experiments.results import ResultsTable

    settings = get_settings()
    with running_catalog(settings) as uri:
        rows = ResultsTable(lake_catalog(settings, uri), table).rows(name)
    if rows.num_rows == 0:
        raise _fail(f"no runs recorded for experiment {name!r} in {table}")
    out = Table(title=f"{name}: {rows.num_rows} run(s)")
    columns = ("workload", "records", "shape", "spot_rate_per_hour", "scaling", "repetition", "status",
               "wall_seconds", "tasks", "lost_executors", "cost_usd", "correct")  # fmt: skip
    for c in columns:
        out.add_column(c)
    for row in rows.select(list(columns)).to_pylist():
        out.add_row(*(str(row[c]) for c in columns))
    Console().print(out)
