"""``lakeforge bookmarks show|history|reset|rewind JOB``: job bookmarks kept by the lake catalog.

``show`` prints the current bookmark (version, run number, last run ids, the state of each
``transformation_ctx``); ``history`` the runs, newest first, with their attempts, statuses and times;
``reset`` clears the state (the next run processes everything); ``rewind JOB --to RUN_ID`` sets the state
to what it was right after that run (the next run reprocesses what came after). ``--json`` prints the
catalog's JSON instead of tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from catalog import errors
from catalog.bookmarks import Bookmark, BookmarkRun
from catalog.client import LakeClient
from catalog.settings import get_settings

T = TypeVar("T")

bookmarks_app = typer.Typer(no_args_is_help=True, help="Job bookmarks: show, history, reset, rewind.")

CatalogUri = Annotated[
    str | None, typer.Option("--catalog-uri", help="The catalog's URL (default: from the lake settings).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _call(uri: str | None, fn: Callable[[LakeClient], T]) -> T:
    settings = get_settings()
    target = uri or settings.resolved_catalog_uri
    token = None
    if settings.catalog.client_id and settings.catalog.client_secret:
        from jobs.crawler import catalog_token

        token = catalog_token(target, settings.catalog.client_id, settings.catalog.client_secret.get_secret_value())
    err = Console(stderr=True)
    try:
        with LakeClient(target, token) as client:
            return fn(client)
    except errors.CatalogError as exc:
        err.print(f"[red]error:[/] {exc.message}", soft_wrap=True, highlight=False, markup=True)
    except httpx.TransportError as exc:
        err.print(f"[red]error:[/] cannot reach the catalog at {target} ({exc}): is `lakeforge catalog serve` running?")
    raise typer.Exit(1)


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summary(value: Any) -> str:
    """One line about one transformation_ctx's state."""
    if isinstance(value, dict) and value.get("kind") == "files":
        high = datetime.fromtimestamp(float(value["high"]), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"files up to {high} UTC, {len(value.get('band') or {})} in the band, {value.get('files-read', 0)} read"
    if isinstance(value, dict) and value.get("kind") == "jdbc":
        keys = ", ".join(value.get("keys") or [])
        return f"{value.get('table')} by {keys} ({value.get('order')}) up to {value.get('last')}"
    text = json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _print_bookmark(bookmark: Bookmark, verb: str | None = None) -> None:
    console = Console()
    head = f"job {bookmark.job_name}: version {bookmark.version}, {bookmark.run} run(s)"
    if verb:
        head = f"{verb} {head}"
    console.print(head, highlight=False)
    console.print(f"  last run {bookmark.run_id or '-'}, previous {bookmark.previous_run_id or '-'}", highlight=False)
    console.print(f"  updated {_ts(bookmark.updated_ms)} UTC", highlight=False)
    if not bookmark.state:
        console.print("  state: empty (the next run processes everything)", highlight=False)
        return
    table = Table("transformation_ctx", "state")
    for ctx, value in sorted(bookmark.state.items()):
        table.add_row(ctx, _summary(value))
    console.print(table)


@bookmarks_app.command("show")
def show(
    job: Annotated[str, typer.Argument(help="Job name.")], catalog_uri: CatalogUri = None, as_json: AsJson = False
) -> None:
    """The job's current bookmark."""
    bookmark = _call(catalog_uri, lambda c: c.get_bookmark(job))
    if as_json:
        typer.echo(json.dumps(bookmark.to_json(), indent=2))
    else:
        _print_bookmark(bookmark)


@bookmarks_app.command("history")
def history(
    job: Annotated[str, typer.Argument(help="Job name.")],
    limit: Annotated[int, typer.Option(min=1, help="Runs to show, newest first.")] = 20,
    catalog_uri: CatalogUri = None,
    as_json: AsJson = False,
) -> None:
    """The job's runs, newest first: run id, attempt, option, status, times, versions."""
    runs: list[BookmarkRun] = _call(catalog_uri, lambda c: c.bookmark_history(job, limit))
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in runs], indent=2))
        return
    table = Table("run id", "attempt", "option", "status", "started (UTC)", "ended (UTC)", "version", "note")
    for run in runs:
        version = (
            f"{run.base_version} -> {run.committed_version}"
            if run.committed_version is not None
            else str(run.base_version)
        )
        table.add_row(
            run.run_id,
            str(run.attempt),
            run.option.removeprefix("job-bookmark-"),
            run.status,
            _ts(run.started_ms),
            _ts(run.ended_ms),
            version,
            run.error or "",
        )
    Console().print(table)


@bookmarks_app.command("reset")
def reset(job: Annotated[str, typer.Argument(help="Job name.")], catalog_uri: CatalogUri = None) -> None:
    """Clear the job's state: its next run processes all input again (targets are not cleaned)."""
    _print_bookmark(_call(catalog_uri, lambda c: c.reset_bookmark(job)), "reset")


@bookmarks_app.command("rewind")
def rewind(
    job: Annotated[str, typer.Argument(help="Job name.")],
    to: Annotated[str, typer.Option("--to", help="The committed run to rewind to.")],
    catalog_uri: CatalogUri = None,
) -> None:
    """Set the job's state to what it was right after run --to: the next run reprocesses what came after."""
    _print_bookmark(_call(catalog_uri, lambda c: c.rewind_bookmark(job, to)), "rewound")
