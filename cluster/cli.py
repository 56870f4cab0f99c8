"""The ``lakeforge`` command: the catalog, the main pipeline, and (later) clusters and steps."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from catalog.cli import catalog_app, version
from catalog.logs import configure_logging
from catalog.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="lakeforge: a local data lake (Iceberg REST catalog, Glue-style jobs, EMR-like cluster on Ray).",
)
app.add_typer(catalog_app, name="catalog")
app.command()(version)


@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Events to generate.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days (partitions) to spread them over.")] = 3,
) -> None:
    """Run the main pipeline on embedded defaults and show what it wrote."""
    from cluster.pipeline import run_demo

    settings = get_settings()
    configure_logging("WARNING", settings.log_format)
    console = Console()
    console.rule("lakeforge demo")
    run_demo(settings, console, rows=rows, days=days)
    console.print(f"[green]done.[/] The lake lives in {settings.home}")


if __name__ == "__main__":
    app()
