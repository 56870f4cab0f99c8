"""``lakeforge cluster ...`` and ``lakeforge steps ...``: EMR-like clusters from the command line.

A cluster is owned by a detached daemon (:mod:`cluster.daemon`) started by ``cluster create``; the other commands
talk to it over its control channel, and the read-only ones (``list``, ``describe``, ``steps list|describe|logs``)
also work from the cluster's state files once the daemon is gone. Exit codes: 0 done, 1 refused or failed
(with the reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from catalog.settings import get_settings
from cluster.daemon import TERMINAL_STATES, UNREACHABLE, ClusterClient, JsonDict, launch_daemon, list_clusters
from cluster.errors import ClusterError, ConfigError, NotFoundError

cluster_app = typer.Typer(
    no_args_is_help=True,
    help="EMR-like clusters on Ray: create, list, describe, scale, interrupt, terminate.",
)
steps_app = typer.Typer(no_args_is_help=True, help="Steps (spark-submit-style Spark applications) of a cluster.")

#: Piped output (scripts, tests) gets wide lines instead of rich's 80-column default.
_WIDTH = None if os.isatty(1) else 200
console = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, width=_WIDTH)

READY_STATES = frozenset({"RUNNING", "WAITING"})
_MOVING = frozenset({"REQUESTED", "PROVISIONING", "BOOTSTRAPPING", "DECOMMISSIONING"})
STEP_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"})
_STATE_STYLE = {
    "WAITING": "green",
    "RUNNING": "green",
    "COMPLETED": "green",
    "STARTING": "yellow",
    "BOOTSTRAPPING": "yellow",
    "PENDING": "yellow",
    "TERMINATING": "yellow",
    "CANCEL_PENDING": "yellow",
    "REQUESTED": "yellow",
    "PROVISIONING": "yellow",
    "DECOMMISSIONING": "yellow",
    "TERMINATED": "dim",
    "CANCELLED": "dim",
    "TERMINATED_WITH_ERRORS": "red",
    "FAILED": "red",
    "INTERRUPTED": "red",
    "SPOT_INTERRUPTED": "red",
    UNREACHABLE: "red",
}

ClustersDir = Annotated[
    Path | None,
    typer.Option(
        "--clusters-dir",
        help="Directory of the cluster directories (default: settings' clusters dir, <lake home>/clusters).",
    ),
]
ClusterId = Annotated[str, typer.Argument(help="Cluster id (j-...).", show_default=False)]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _styled(state: str | None) -> str:
    text = state or "?"
    style = _STATE_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors become one red line on stderr and exit code 1 (never a traceback)."""
    try:
        yield
    except ConfigError as exc:
        if len(exc.problems) > 1:
            raise _fail(str(exc)) from None
        raise _fail(f"{exc.field}: {exc.reason}") from None
    except (ClusterError, TimeoutError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _dir(ctx: typer.Context) -> Path:
    obj = ctx.obj or {}
    found = obj.get("clusters_dir")
    return Path(found) if found else get_settings().clusters_dir


def _client(ctx: typer.Context, cluster_id: str) -> ClusterClient:
    root = _dir(ctx)
    try:
        return ClusterClient(root, cluster_id)
    except NotFoundError:
        raise _fail(f"no such cluster: {cluster_id} (in {root}; `lakeforge cluster list` shows them)") from None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


@cluster_app.callback()
def _cluster_options(ctx: typer.Context, clusters_dir: ClustersDir = None) -> None:
    ctx.obj = {"clusters_dir": clusters_dir}


@steps_app.callback()
def _steps_options(ctx: typer.Context, clusters_dir: ClustersDir = None) -> None:
    ctx.obj = {"clusters_dir": clusters_dir}


# --------------------------------------------------------------------------------------------------------------
# Progress


class Progress:
    """Prints what changed between two views of a cluster (cluster state, each node, each step), one line each."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def update(self, data: JsonDict) -> None:
        items: list[tuple[str, str, str]] = [
            ("cluster", str(data.get("state")), str(data.get("state_detail") or "")),
        ]
        for node in data.get("nodes", []):
            label = f"node {node['node_id']} {node['role']} {node['instance_type']} {node['market']}"
            items.append((label, str(node["state"]), str(node.get("reason") or "")))
        for step in data.get("steps", []):
            label = f"step {step['step_id']} {step['name']}"
            items.append((label, str(step["state"]), str(step.get("failure_reason") or "")))
        for label, state, reason in items:
            if self.seen.get(label) == state:
                continue
            self.seen[label] = state
            why = f"  [dim]{reason}[/]" if reason and label != "cluster" else ""
            console.print(f"{time.strftime('%H:%M:%S')}  {label}: {_styled(state)}{why}", soft_wrap=True)


def _summary(data: JsonDict) -> str:
    nodes = data.get("nodes", [])
    running = sum(1 for n in nodes if n.get("state") == "RUNNING")
    active = sum(1 for s in data.get("steps", []) if s.get("state") in ("PENDING", "RUNNING"))
    return f"{data.get('cluster_id')}: {data.get('state')}, {running} node(s) running, {active} step(s) active"


def _watch(client: ClusterClient, done: Callable[[JsonDict], bool], timeout: float, what: str) -> JsonDict:
    """Show progress until ``done(data)``, the cluster ended or became unreachable; returns the last view."""
    progress = Progress()
    deadline = time.monotonic() + timeout
    with console.status(what) as status:
        while True:
            data = client.describe()
            progress.update(data)
            status.update(f"{what} ({_summary(data)})")
            if done(data) or data.get("state") in TERMINAL_STATES | {UNREACHABLE}:
                return data
            if time.monotonic() >= deadline:
                raise _fail(f"{what}: gave up after {timeout:.0f}s; the cluster is {data.get('state')}")
            time.sleep(0.5)


# --------------------------------------------------------------------------------------------------------------
# lakeforge cluster ...


@cluster_app.command("create")
def create(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Cluster config (YAML).", show_default=False)],
    backend: Annotated[
        str | None,
        typer.Option(help="local (Ray nodes on this machine) or ray (attach to --address); default: the config's."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray head host:port for backend ray (default: the config's, $RAY_ADDRESS).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until the cluster is ready (or failed).")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait with --wait, seconds.")] = 900.0,
    clock_speed: Annotated[float, typer.Option(hidden=True, help="Simulated seconds per second (tests).")] = 1.0,
) -> None:
    """Create a cluster: validate CONFIG, start its daemon, and (with --wait) show progress until it is ready."""
    from cluster.backends import resolve_backend
    from cluster.config import load_config
    from cluster.nodes import new_cluster_id

    root = _dir(ctx)
    with _errors():
        cfg = load_config(config)
        spec = resolve_backend(cfg, backend, address)
        cluster_id = new_cluster_id()
        console.print(f"cluster [bold]{cluster_id}[/] ({cfg.name}) on backend {spec.describe()}")
        client = launch_daemon(
            config, root, cluster_id, backend=spec.name, address=spec.address, clock_speed=clock_speed
        )
    console.print(f"daemon pid {client.daemon_pid()}, state in {client.dir}")
    if not wait:
        console.print(f"starting; follow with `lakeforge cluster describe {cluster_id}`")
        return
    t0 = time.monotonic()
    with _errors():
        data = _watch(client, lambda d: d.get("state") in READY_STATES, timeout, f"starting {cluster_id}")
    state = data.get("state")
    if state in READY_STATES:
        console.print(f"[green]ready[/]: {cluster_id} is {state} after {time.monotonic() - t0:.1f}s")
        return
    raise _fail(f"cluster {cluster_id} is {state}: {data.get('state_reason') or ''} {data.get('state_detail') or ''}")


@cluster_app.command("list")
def list_(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only clusters not terminated.")] = False,
    json_out: JsonOut = False,
) -> None:
    """List clusters (newest first)."""
    rows = list_clusters(_dir(ctx))
    if active:
        rows = [r for r in rows if r.get("state") not in TERMINAL_STATES]
    if json_out:
        _print_json(
            [
                {k: r.get(k) for k in ("cluster_id", "name", "state", "state_reason", "created_at", "cost_usd")}
                | {"backend": (r.get("daemon") or {}).get("backend")}
                for r in rows
            ]
        )
        return
    table = Table(title=f"clusters in {_dir(ctx)}")
    for col in ("id", "name", "state", "backend", "nodes", "steps", "created", "cost $"):
        table.add_column(col, justify="right" if col in ("nodes", "steps", "cost $") else "left")
    for r in rows:
        nodes = sum(1 for n in r.get("nodes", []) if n.get("state") == "RUNNING")
        cost = r.get("cost_usd")
        table.add_row(
            str(r.get("cluster_id")),
            str(r.get("name") or "-"),
            _styled(r.get("state")),
            str((r.get("daemon") or {}).get("backend") or "-"),
            str(nodes),
            str(len(r.get("steps", []))),
            _when(r.get("created_at")),
            f"{cost:.4f}" if isinstance(cost, int | float) else "-",
        )
    console.print(table)


def _cost_text(client: ClusterClient, data: JsonDict) -> str | None:
    if data.get("daemon", {}).get("source") == "daemon":
        try:
            return str(client.cost()["text"])
        except ClusterError:
            return None
    path = client.dir / "cost.txt"
    return path.read_text() if path.exists() else None


@cluster_app.command("describe")
def describe(ctx: typer.Context, cluster_id: ClusterId, json_out: JsonOut = False) -> None:
    """Show a cluster: state, groups, nodes, steps, HDFS, managed scaling and cost."""
    client = _client(ctx, cluster_id)
    with _errors():
        data = client.describe()
    if json_out:
        _print_json(data)
        return
    daemon = data.get("daemon") or {}
    console.print(f"[bold]{data.get('cluster_id')}[/] {data.get('name') or ''}  {_styled(data.get('state'))}")
    if data.get("state_reason") or data.get("state_detail"):
        console.print(f"  reason: {data.get('state_reason') or '-'}  {data.get('state_detail') or ''}", soft_wrap=True)
    backend = daemon.get("backend") or "-"
    if daemon.get("address"):
        backend += f" ({daemon['address']})"
    alive = "alive" if daemon.get("alive") else "gone"
    console.print(f"  backend {backend}; daemon pid {daemon.get('pid')} ({alive}); dir {data.get('dir') or client.dir}")
    console.print(
        f"  created {_when(data.get('created_at'))}, ready {_when(data.get('ready_at'))}, "
        f"ended {_when(data.get('ended_at'))}; cost so far ${data.get('cost_usd') or 0:.4f}"
    )
    groups = Table(title="instance groups / fleets")
    for col in ("group", "role", "market", "target", "running", "types", "suspended"):
        groups.add_column(col)
    for g in data.get("groups", []):
        types = ",".join(t["type"] for t in g.get("instance_types", []))
        groups.add_row(
            str(g.get("name")),
            str(g.get("role")),
            str(g.get("market")),
            f"{g.get('target'):g} {g.get('unit')}",
            str(g.get("running")),
            types,
            "yes" if g.get("suspended") else "",
        )
    console.print(groups)
    nodes = Table(title="nodes")
    for col in ("node", "role", "group", "type", "market", "state", "since", "reason"):
        nodes.add_column(col, overflow="fold")
    for n in data.get("nodes", []):
        history = n.get("history") or [{}]
        nodes.add_row(
            str(n.get("node_id")),
            str(n.get("role")),
            str(n.get("group")),
            str(n.get("instance_type")),
            str(n.get("market")),
            _styled(n.get("state")),
            _when(history[-1].get("time")),
            str(n.get("reason") or ""),
        )
    console.print(nodes)
    _steps_table(data)
    decision = data.get("managed_scaling")
    if isinstance(decision, dict):
        console.print(f"managed scaling: last decision {decision.get('action')}: {decision.get('reason')}")
    cost = _cost_text(client, data)
    if cost:
        console.print("cost (USD):")
        console.print(cost, markup=False)


@cluster_app.command("scale")
def scale(
    ctx: typer.Context,
    cluster_id: ClusterId,
    group: Annotated[
        str, typer.Option("--group", help="Group or fleet name, or a role (CORE, TASK) with exactly one group.")
    ],
    count: Annotated[int | None, typer.Option("--count", min=0, help="New instance count (instance groups).")] = None,
    on_demand_units: Annotated[float | None, typer.Option(min=0, help="New on-demand target (fleets).")] = None,
    spot_units: Annotated[float | None, typer.Option(min=0, help="New Spot target (fleets).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until the group reached its target.")] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait with --wait, seconds.")] = 600.0,
) -> None:
    """Resize an instance group (--count) or fleet (--on-demand-units/--spot-units)."""
    client = _client(ctx, cluster_id)
    with _errors():
        data = client.describe()
        name = _group_name(data, group)
        result = client.resize(name, count, on_demand_units=on_demand_units, spot_units=spot_units)
    targets = ", ".join(f"{k} -> {v:g}" for k, v in result["targets"].items())
    console.print(f"{cluster_id}: {targets}")
    if result["decommissioning"]:
        console.print(f"  decommissioning {', '.join(result['decommissioning'])}")
    for node_id, reason in result["refused"]:
        console.print(f"  [yellow]{node_id} stays[/]: {reason}")
    if not wait:
        return
    pools = set(result["targets"])

    def reached(d: JsonDict) -> bool:
        for g in d.get("groups", []):
            if g.get("name") in pools:
                members = [n for n in d.get("nodes", []) if n.get("pool") == g["name"]]
                up = sum(n.get("weight", 1) for n in members if n.get("state") == "RUNNING")
                moving = any(n.get("state") in _MOVING for n in members)
                if moving or abs(up - float(g.get("target", 0))) > 1e-9:
                    return False
        return True

    with _errors():
        final = _watch(client, reached, timeout, f"resizing {name}")
    if final.get("state") not in READY_STATES:
        raise _fail(f"cluster {cluster_id} is {final.get('state')}")
    console.print(f"[green]done[/]: {name} at its target")


def _group_name(data: JsonDict, wanted: str) -> str:
    groups = data.get("groups", [])
    names = {str(g.get("group")) for g in groups}
    if wanted in names:
        return wanted
    by_role = {str(g.get("group")) for g in groups if str(g.get("role")).upper() == wanted.upper()}
    if len(by_role) == 1:
        return by_role.pop()
    if by_role:
        raise ValueError(f"several {wanted.upper()} groups ({', '.join(sorted(by_role))}): name one with --group")
    raise NotFoundError("group", f"{wanted} (groups: {', '.join(sorted(names))})")


@cluster_app.command("interrupt")
def interrupt(
    ctx: typer.Context,
    cluster_id: ClusterId,
    node_id: Annotated[str, typer.Argument(help="A running Spot node (i-...).", show_default=False)],
) -> None:
    """Send a Spot interruption notice to a node now (as AWS FIS does): decommission, then reclaim."""
    client = _client(ctx, cluster_id)
    with _errors():
        notice = client.interrupt(node_id)
    left = notice["terminate_at"] - notice["notice_at"]
    console.print(f"{node_id}: Spot interruption notice sent; reclaimed in {left:.1f}s (cluster clock)")


@cluster_app.command("terminate")
def terminate(
    ctx: typer.Context,
    cluster_id: ClusterId,
    wait: Annotated[bool, typer.Option(help="Show progress until TERMINATED and the daemon exited.")] = True,
    timeout: Annotated[float, typer.Option(help="Longest wait, seconds.")] = 600.0,
) -> None:
    """Terminate a cluster: stop its steps and nodes (TERMINATING -> TERMINATED)."""
    client = _client(ctx, cluster_id)
    saved = client.describe(live=False)
    if saved.get("state") in TERMINAL_STATES:
        console.print(f"{cluster_id} is already {saved['state']}")
        return
    with _errors():
        state = client.terminate()
    console.print(f"{cluster_id}: {state}")
    if not wait:
        return
    with _errors():
        data = _watch(client, lambda d: d.get("state") in TERMINAL_STATES, timeout, f"terminating {cluster_id}")
        deadline = time.monotonic() + 60
        while client.daemon_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
    console.print(f"{cluster_id}: {_styled(data.get('state'))} {data.get('state_detail') or ''}", soft_wrap=True)
    if data.get("state") not in TERMINAL_STATES:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------------------------
# lakeforge steps ...


def _steps_table(data: JsonDict) -> None:
    table = Table(title="steps")
    for col in ("step", "name", "state", "started", "ended", "exit", "lost exec", "recomputed", "wasted node-s"):
        table.add_column(col, overflow="fold")
    for s in data.get("steps", []):
        counters = s.get("counters") or {}
        table.add_row(
            str(s.get("step_id")),
            str(s.get("name")),
            _styled(s.get("state")),
            _when(s.get("started_at")),
            _when(s.get("ended_at")),
            "" if s.get("exit_code") is None else str(s.get("exit_code")),
            str(counters.get("lost_executors", 0)),
            str(counters.get("recomputed_tasks", 0)),
            f"{counters.get('wasted_node_seconds', 0):.1f}",
        )
    console.print(table)


def _parse_conf(pairs: list[str] | None) -> dict[str, str]:
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--conf")
        conf[key.strip()] = value
    return conf


@steps_app.command(
    "add",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def steps_add(
    ctx: typer.Context,
    cluster_id: ClusterId,
    script: Annotated[str, typer.Argument(help="The PySpark script (path).", show_default=False)],
    args: Annotated[
        list[str] | None, typer.Argument(help="Arguments of the script (put `--` before them if they clash).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Step name (default: the script's name).")] = None,
    conf: Annotated[list[str] | None, typer.Option("--conf", help="Spark conf for this step, key=value.")] = None,
    action_on_failure: Annotated[
        str, typer.Option(help="CONTINUE, CANCEL_AND_WAIT or TERMINATE_CLUSTER (alias TERMINATE_JOB_FLOW).")
    ] = "CONTINUE",
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until the step ended; exit 1 unless it completed.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Longest wait with --wait, seconds.")] = 3600.0,
) -> None:
    """Add a step (runs when a concurrency slot is free, as `spark-submit SCRIPT ARGS` on the cluster)."""
    client = _client(ctx, cluster_id)
    spark_conf = _parse_conf(conf)
    path = Path(script)
    if "://" not in script:
        if not path.is_file():
            raise _fail(f"no such script: {script}")
        script = str(path.resolve())
    extra = [*(args or []), *ctx.args]
    with _errors():
        step_id = client.add_step(
            name or Path(script).stem,
            script,
            extra,
            spark_conf=spark_conf,
            action_on_failure=action_on_failure.upper(),
        )
    console.print(f"step [bold]{step_id}[/] added to {cluster_id}")
    if not wait:
        return
    with _errors():
        _watch(client, lambda d: _step_state(d, step_id) in STEP_ENDED, timeout, f"step {step_id}")
        step = client.step(step_id)
    _print_step(step)
    if step.get("state") != "COMPLETED":
        raise typer.Exit(1)


def _step_state(data: JsonDict, step_id: str) -> str | None:
    step = next((s for s in data.get("steps", []) if s.get("step_id") == step_id), None)
    return None if step is None else str(step.get("state"))


def _find_step(ctx: typer.Context, cluster_id: str, step_id: str) -> tuple[ClusterClient, JsonDict]:
    client = _client(ctx, cluster_id)
    with _errors():
        try:
            return client, client.step(step_id)
        except NotFoundError:
            raise _fail(f"no such step: {step_id} in cluster {cluster_id}") from None


def _print_step(step: JsonDict) -> None:
    console.print(f"[bold]{step.get('step_id')}[/] {step.get('name')}  {_styled(step.get('state'))}")
    console.print(f"  script {step.get('script')} {' '.join(step.get('args') or [])}", soft_wrap=True)
    console.print(f"  action on failure {step.get('action_on_failure')}; logs {step.get('log_dir')}")
    console.print(
        f"  submitted {_when(step.get('submitted_at'))}, started {_when(step.get('started_at'))}, "
        f"ended {_when(step.get('ended_at'))}, exit code {step.get('exit_code')}"
    )
    if step.get("failure_reason"):
        console.print(f"  [red]failure[/]: {step['failure_reason']}", soft_wrap=True)
    counters = step.get("counters") or {}
    console.print(
        "  lost executors {lost_executors}, recomputed tasks {recomputed_tasks}, interrupted nodes "
        "{interrupted_nodes}, wasted node-seconds {wasted_node_seconds}".format(
            **{k: counters.get(k, 0) for k in ("lost_executors", "recomputed_tasks", "interrupted_nodes")},
            wasted_node_seconds=f"{counters.get('wasted_node_seconds', 0):.1f}",
        )
    )
    metrics = step.get("metrics") or {}
    shown = {k: v for k, v in metrics.items() if ":" not in k}
    if shown:
        console.print("  spark: " + ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items())), soft_wrap=True)


@steps_app.command("list")
def steps_list(ctx: typer.Context, cluster_id: ClusterId, json_out: JsonOut = False) -> None:
    """List a cluster's steps."""
    client = _client(ctx, cluster_id)
    with _errors():
        data = client.describe()
    if json_out:
        _print_json(data.get("steps", []))
        return
    _steps_table(data)


@steps_app.command("describe")
def steps_describe(
    ctx: typer.Context,
    cluster_id: ClusterId,
    step_id: Annotated[str, typer.Argument(help="Step id (s-...).", show_default=False)],
    json_out: JsonOut = False,
) -> None:
    """Show one step: state, timings, counters of lost work, Spark metrics."""
    _, step = _find_step(ctx, cluster_id, step_id)
    if json_out:
        _print_json(step)
        return
    _print_step(step)


@steps_app.command("logs")
def steps_logs(
    ctx: typer.Context,
    cluster_id: ClusterId,
    step_id: Annotated[str, typer.Argument(help="Step id (s-...).", show_default=False)],
    stderr: Annotated[bool, typer.Option("--stderr", help="Show stderr (Spark's log) instead of stdout.")] = False,
    tail: Annotated[int | None, typer.Option(min=1, help="Only the last N lines.")] = None,
) -> None:
    """Print a step's stdout (or stderr)."""
    _, step = _find_step(ctx, cluster_id, step_id)
    log_dir = Path(str(step.get("log_dir")))
    path = log_dir / ("stderr" if stderr else "stdout")
    if not path.exists():
        if step.get("state") == "PENDING":
            raise _fail(f"step {step_id} has not started yet: no logs")
        raise _fail(f"no {path.name} for step {step_id} (looked in {log_dir})")
    text = path.read_text(errors="replace")
    if tail is not None:
        text = "\n".join(text.splitlines()[-tail:]) + "\n"
    typer.echo(text, nl=False)


@steps_app.command("cancel")
def steps_cancel(
    ctx: typer.Context,
    cluster_id: ClusterId,
    step_id: Annotated[str, typer.Argument(help="Step id (s-...).", show_default=False)],
    force: Annotated[
        bool, typer.Option("--force", help="SIGKILL the step and its processes (TERMINATE_PROCESS), not SIGTERM.")
    ] = False,
) -> None:
    """Cancel a pending or running step."""
    client = _client(ctx, cluster_id)
    with _errors():
        try:
            state = client.cancel_step(step_id, force=force)
        except NotFoundError:
            raise _fail(f"no such step: {step_id} in cluster {cluster_id}") from None
    console.print(f"step {step_id}: {_styled(state)}")
