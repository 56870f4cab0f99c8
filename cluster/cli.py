"""The ``lakeforge`` command: the catalog, the main pipeline, clusters and their steps."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.console import Console

from catalog.cli import catalog_app, version
from catalog.logs import configure_logging
from catalog.settings import get_settings
from cluster.commands import cluster_app, steps_app
from cluster.experiments.cli import experiment_app
from jobs.glue.bookmarks_cli import bookmarks_app

app = typer.Typer(
    no_args_is_help=True,
    help="lakeforge: a local data lake (Iceberg REST catalog, Glue-style jobs, EMR-like cluster on Ray).",
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(bookmarks_app, name="bookmarks")
app.add_typer(cluster_app, name="cluster")
app.add_typer(steps_app, name="steps")
app.add_typer(experiment_app, name="experiment")
app.command()(version)


@app.command()
def demo(
    records: Annotated[int, typer.Option(min=1, help="Raw access-log lines landed on the first day.")] = 200_000,
    more_records: Annotated[int, typer.Option(min=1, help="Lines landed on the second day.")] = 50_000,
    task_nodes: Annotated[int, typer.Option(min=0, help="Spot task nodes of the cluster.")] = 2,
    backend: Annotated[str | None, typer.Option(help="Cluster backend: local (default) or ray.")] = None,
    address: Annotated[str | None, typer.Option(help="Ray head address for --backend ray.")] = None,
) -> None:
    """Run the main pipeline on embedded defaults: land, crawl, cluster, Glue job twice (bookmarked), query, cost."""
    from cluster.errors import ClusterError
    from cluster.pipeline import PipelineOptions, run_demo

    settings = get_settings()
    configure_logging("WARNING", settings.log_format)
    console = Console()
    console.rule("lakeforge demo")
    options = PipelineOptions(
        records=records, more_records=more_records, task_nodes=task_nodes, backend=backend, address=address
    )
    try:
        run_demo(settings, console, options)
    except ClusterError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(f"[green]done.[/] The lake lives in {settings.home}")


@app.command()
def crawl(
    path: Annotated[
        str, typer.Argument(help="What to crawl: s3://bucket/prefix (under the lake's object store) or a folder.")
    ],
    database: Annotated[str, typer.Option("--database", "-d", help="Database (namespace) to register tables in.")],
    table: Annotated[
        str | None, typer.Option(help="Table name (a prefix when several tables are found); default: the folder's.")
    ] = None,
    update_behavior: Annotated[
        Literal["UPDATE_IN_DATABASE", "LOG"],
        typer.Option(case_sensitive=False, help="Apply schema changes to registered tables, or only report them."),
    ] = "UPDATE_IN_DATABASE",
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Glob of files or folders to leave out, relative to PATH.")
    ] = None,
    sample_bytes: Annotated[int, typer.Option(min=1, help="Bytes of each JSON/CSV file read to infer it.")] = 2_097_152,
) -> None:
    """Crawl a folder like a Glue crawler: infer formats, schemas and partitions, register them in the catalog."""
    from catalog.client import LakeClient
    from jobs.crawler import CrawlError, catalog_token, report_renderables
    from jobs.crawler import crawl as run_crawl

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uri = settings.resolved_catalog_uri
    try:
        token = None
        if settings.catalog.client_id and settings.catalog.client_secret:
            token = catalog_token(uri, settings.catalog.client_id, settings.catalog.client_secret.get_secret_value())
        with LakeClient(uri, token) as lake:
            report = run_crawl(
                path,
                database,
                table=table,
                client=lake,
                object_store_root=settings.object_store_root,
                update_behavior=update_behavior,
                sample_bytes=sample_bytes,
                exclusions=exclude or [],
            )
    except CrawlError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    console = Console()
    for renderable in report_renderables(report):
        console.print(renderable)


if __name__ == "__main__":
    app()
