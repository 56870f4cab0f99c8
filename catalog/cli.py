"""The ``lakeforge`` command line: ``lakeforge catalog serve``, ``lakeforge version``, ..."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.logs import configure_logging
from catalog.settings import CatalogSettings, Settings, get_settings

app = typer.Typer(
    no_args_is_help=True, help="lakeforge: a local data lake (Iceberg REST catalog, Glue-style jobs, EMR-like cluster)."
)
catalog_app = typer.Typer(no_args_is_help=True, help="The Iceberg REST catalog server.")
app.add_typer(catalog_app, name="catalog")


@app.command()
def version() -> None:
    """Print the versions of lakeforge and the engines it pins."""
    from importlib.metadata import version as v

    typer.echo(f"lakeforge {v('lakeforge')}")
    for dist in ("pyspark", "pyiceberg", "ray", "raydp", "pyarrow"):
        typer.echo(f"  {dist} {v(dist)}")


@catalog_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8181).")] = None,
    warehouse: Annotated[str | None, typer.Option(help="Root location of new tables.")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: SQLite under the lake home).")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Lake home directory.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port.")] = 1,
    allow_insecure_bind: Annotated[
        bool, typer.Option(help="Allow a non-loopback bind without authentication.")
    ] = False,
) -> None:
    """Serve the Iceberg REST catalog in the foreground."""
    from catalog.server import UnsafeBindError
    from catalog.server import serve as run

    base = get_settings()
    overrides = {
        k: val
        for k, val in {
            "host": host,
            "port": port,
            "warehouse": warehouse,
            "database_url": database_url,
            "allow_insecure_bind": allow_insecure_bind or None,
        }.items()
        if val is not None
    }
    settings = Settings(
        **{**base.model_dump(exclude={"catalog"}), **({"home": home} if home else {})},
        catalog=CatalogSettings(**{**base.catalog.model_dump(), **overrides}),
    )
    configure_logging(settings.log_level, settings.log_format)
    try:
        run(settings, workers=workers)
    except UnsafeBindError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
