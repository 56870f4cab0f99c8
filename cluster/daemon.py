"""A cluster outlives the command that created it: a detached daemon process owns it, commands talk to it.

``lakeforge cluster create`` starts ``python -m cluster.daemon run ...`` in its own session (through a short-lived
launcher, so the daemon is nobody's child). The daemon builds the provider from the backend, owns the
:class:`~cluster.api.Cluster` (its reconcile thread runs steps, Spot interruptions, managed scaling and the idle
timeout) and serves a control channel until the cluster is TERMINATED, then exits.

Files in the cluster directory (besides those of :class:`~cluster.api.Cluster`):

* ``daemon.json``: ``pid``, ``socket``, ``backend``, ``address``, ``started_at``; ``exited_at`` and ``error``
  once it ended.
* ``control.key``: the channel's secret (mode 0600): only the owner of the directory can send commands.
* ``control.sock``: the unix socket (in ``$XDG_RUNTIME_DIR`` or ``/tmp`` when the directory's path is too long
  for a socket path; ``daemon.json`` says where).
* ``daemon.log``: the daemon's log.

Protocol: one JSON request per connection (``{"op": ..., "args": {...}}``) over
:mod:`multiprocessing.connection` (HMAC challenge with the key), one JSON answer: ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": <type>, "message": ..., "attrs": {...}}``; errors come back to the caller as the
same :mod:`cluster.errors` types.

:class:`ClusterClient` is the other end, for the CLI and notebooks. Read-only questions (``describe``) fall back
to ``state.json`` when the daemon is gone; a cluster whose daemon died before the cluster ended shows as
``UNREACHABLE`` (with its last known state), and changing it raises :class:`DaemonGoneError` at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import psutil

from cluster.errors import (
    ClusterError,
    ClusterStateError,
    ConfigError,
    NotFoundError,
    ProviderError,
    StepFailedError,
)

log = logging.getLogger("cluster.daemon")  # the same name when run as __main__

DAEMON_FILE = "daemon.json"
KEY_FILE = "control.key"
SOCKET_NAME = "control.sock"
LOG_FILE = "daemon.log"
STATE_FILE = "state.json"
#: Unix socket paths are limited to 107 bytes (with margin).
MAX_SOCKET_PATH = 100
#: Cluster states in which nothing runs any more.
TERMINAL_STATES = frozenset({"TERMINATED", "TERMINATED_WITH_ERRORS"})
#: What a cluster whose daemon died before it ended is shown as.
UNREACHABLE = "UNREACHABLE"
#: Seconds a command waits for the daemon's answer by default.
DEFAULT_CALL_TIMEOUT = 30.0

JsonDict = dict[str, Any]


class DaemonError(ClusterError):
    """The cluster's daemon cannot be reached or did not answer."""


class DaemonGoneError(DaemonError):
    """The daemon that owned the cluster is not running: the cluster cannot be changed any more.

    Attributes:
        cluster_id: The cluster.
        last_state: Its state when the daemon last wrote it.
    """

    def __init__(self, cluster_id: str, last_state: str | None, detail: str) -> None:
        self.cluster_id = cluster_id
        self.last_state = last_state
        super().__init__(f"cluster {cluster_id} cannot be changed: {detail}")


def _read_json(path: Path) -> JsonDict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def socket_path(cluster_dir: Path, cluster_id: str) -> Path:
    """Where the daemon of ``cluster_dir`` listens: in the directory, or a short runtime path if that is too long."""
    inside = cluster_dir / SOCKET_NAME
    if len(str(inside)) <= MAX_SOCKET_PATH:
        return inside
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"lakeforge-{os.getuid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base / f"{cluster_id}.sock"


def _error_payload(exc: BaseException) -> JsonDict:
    attrs: JsonDict = {}
    if isinstance(exc, NotFoundError):
        attrs = {"kind": exc.kind, "entity_id": exc.entity_id}
    elif isinstance(exc, ConfigError):
        attrs = {"field": exc.field, "reason": exc.reason, "problems": [list(p) for p in exc.problems]}
    elif isinstance(exc, StepFailedError):
        attrs = {"step_id": exc.step_id, "reason": exc.reason, "log_dir": exc.log_dir}
    return {"ok": False, "error": type(exc).__name__, "message": str(exc), "attrs": attrs}


def _raise_remote(payload: Mapping[str, Any]) -> None:
    """Raise the error a daemon answered with, as the same cluster.errors type when it is one."""
    name = str(payload.get("error", "ClusterError"))
    message = str(payload.get("message", "the daemon reported an error"))
    attrs = payload.get("attrs") or {}
    if name == "NotFoundError":
        raise NotFoundError(str(attrs.get("kind", "entity")), str(attrs.get("entity_id", "?")))
    if name == "ConfigError":
        problems = [(str(f), str(r)) for f, r in attrs.get("problems", [])]
        raise ConfigError(str(attrs.get("field", "?")), str(attrs.get("reason", message)), problems=problems)
    if name == "StepFailedError":
        raise StepFailedError(str(attrs.get("step_id")), str(attrs.get("reason")), attrs.get("log_dir"))
    if name == "ClusterStateError":
        raise ClusterStateError(message)
    if name in ("ProviderError", "RayProviderError", "RayUnavailableError", "ExternalClusterError"):
        raise ProviderError(message)
    if name in ("ValueError", "TypeError"):
        raise ValueError(message)
    raise ClusterError(message)


# --------------------------------------------------------------------------------------------------------------
# The daemon side


class ControlServer:
    """Serves the control channel of one cluster (each connection on its own thread).

    Args:
        cluster: The cluster (a :class:`~cluster.api.Cluster`).
        address: The unix socket path.
        authkey: The channel's secret.
    """

    def __init__(self, cluster: Any, address: Path, authkey: bytes) -> None:
        from cluster.api import Cluster

        self.cluster: Cluster = cluster
        self.address = address
        if address.exists() or address.is_symlink():
            address.unlink()
        self.listener = Listener(str(address), family="AF_UNIX", authkey=authkey)
        self._closed = False
        self._terminator: threading.Thread | None = None
        self._thread = threading.Thread(target=self._serve, name="lakeforge-control", daemon=True)
        self.ops: dict[str, Callable[..., Any]] = {
            "ping": self._ping,
            "describe": self.cluster.describe,
            "add_step": self._add_step,
            "cancel_step": self._cancel_step,
            "resize": self._resize,
            "interrupt": self._interrupt,
            "terminate": self._terminate,
            "cost": self._cost,
        }

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        try:
            self.address.unlink()
        except OSError:
            pass

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn = self.listener.accept()
            except Exception as exc:  # a client that failed authentication, or the listener closing
                if self._closed:
                    return
                log.warning("control channel: connection refused: %s", exc)
                continue
            threading.Thread(target=self._handle, args=(conn,), name="lakeforge-control-conn", daemon=True).start()

    def _handle(self, conn: Connection) -> None:
        with conn:
            try:
                request = json.loads(conn.recv_bytes(1 << 20))
            except (EOFError, OSError, ValueError) as exc:
                log.warning("control channel: bad request: %s", exc)
                return
            response = self.dispatch(request)
            try:
                conn.send_bytes(json.dumps(response, default=str).encode())
            except OSError as exc:
                log.warning("control channel: could not answer %s: %s", request.get("op"), exc)

    def dispatch(self, request: Any) -> JsonDict:
        """Run one request; never raises."""
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return _error_payload(ValueError("a request is {'op': name, 'args': {...}}"))
        op, args = request["op"], request.get("args") or {}
        handler = self.ops.get(op)
        if handler is None:
            return _error_payload(ValueError(f"unknown operation {op!r} (known: {', '.join(sorted(self.ops))})"))
        try:
            return {"ok": True, "result": handler(**args)}
        except (ClusterError, ValueError, TypeError) as exc:
            return _error_payload(exc)
        except Exception as exc:
            log.exception("control channel: %s failed", op)
            return _error_payload(exc)

    # -- operations ----------------------------------------------------------------------------------------

    def _ping(self) -> JsonDict:
        return {"pid": os.getpid(), "cluster_id": self.cluster.id, "state": self.cluster.state.value}

    def _add_step(
        self,
        name: str,
        script: str,
        args: list[str] | None = None,
        spark_conf: dict[str, str] | None = None,
        action_on_failure: str = "CONTINUE",
    ) -> JsonDict:
        step_id = self.cluster.add_step(
            name, script, args or [], spark_conf=spark_conf or {}, action_on_failure=action_on_failure
        )
        return {"step_id": step_id, "state": self.cluster.step(step_id).state.value}

    def _cancel_step(self, step_id: str, force: bool = False) -> JsonDict:
        return {"step_id": step_id, "state": self.cluster.cancel_step(step_id, force=force).value}

    def _resize(
        self,
        group: str,
        count: int | None = None,
        on_demand_units: float | None = None,
        spot_units: float | None = None,
    ) -> JsonDict:
        result = self.cluster.resize(group, count, on_demand_units=on_demand_units, spot_units=spot_units)
        return {
            "group": result.group,
            "targets": dict(result.targets),
            "decommissioning": list(result.decommissioning),
            "refused": [list(r) for r in result.refused],
        }

    def _interrupt(self, node_id: str) -> JsonDict:
        notice = self.cluster.interrupt(node_id)
        return {
            "node_id": notice.node_id,
            "cause": notice.cause,
            "notice_at": notice.notice_at,
            "terminate_at": notice.terminate_at,
        }

    def _terminate(self) -> JsonDict:
        """Start terminating (in the background: it takes a while) and answer at once."""
        from cluster.states import ClusterStateChangeReason

        cluster = self.cluster
        if not cluster.machine.terminal and self._terminator is None:
            self._terminator = threading.Thread(
                target=cluster.terminate,
                args=(ClusterStateChangeReason.USER_REQUEST, "terminate requested"),
                name="lakeforge-terminate",
                daemon=True,
            )
            self._terminator.start()
        return {"state": cluster.state.value}

    def _cost(self) -> JsonDict:
        report = self.cluster.cost_report()
        return {"text": report.to_text(), "rows": report.rows(), "total_usd": report.total_usd}


def _daemon_main(args: argparse.Namespace) -> int:
    from catalog.logs import configure_logging
    from catalog.settings import get_settings
    from cluster.api import Cluster
    from cluster.backends import build_provider, resolve_backend
    from cluster.config import load_config
    from cluster.states import ClusterStateChangeReason

    settings = get_settings()
    configure_logging(args.log_level or settings.log_level, settings.log_format)
    clusters_dir = Path(args.clusters_dir).resolve()
    cluster_dir = clusters_dir / args.cluster_id
    cluster_dir.mkdir(parents=True, exist_ok=True)
    info: JsonDict = {
        "pid": os.getpid(),
        "cluster_id": args.cluster_id,
        "config": str(args.config),
        "cwd": os.getcwd(),
        "started_at": time.time(),
        "exited_at": None,
        "error": None,
    }
    info_path = cluster_dir / DAEMON_FILE
    try:
        cfg = load_config(args.config)
        spec = resolve_backend(cfg, args.backend, args.address)
        info.update(backend=spec.name, address=spec.address)
        provider = build_provider(spec, cluster_dir, cfg)
    except ClusterError as exc:
        log.error("cluster %s cannot start: %s", args.cluster_id, exc)
        info.update(error=str(exc), error_payload=_error_payload(exc), exited_at=time.time())
        _write_json(info_path, info)
        return 2
    speed = float(args.clock_speed)
    origin = time.time()

    def clock() -> float:
        return origin + (time.time() - origin) * speed

    cluster = Cluster(
        cfg,
        provider,
        workdir=clusters_dir,
        cluster_id=args.cluster_id,
        clock=clock if speed != 1.0 else time.time,
        reconcile_interval=settings.cluster.reconcile_interval_seconds,
        provision_workers=settings.cluster.provision_workers,
    )
    key = secrets.token_bytes(32)
    key_path = cluster_dir / KEY_FILE
    key_path.touch(mode=0o600)
    os.chmod(key_path, 0o600)
    key_path.write_bytes(key)
    address = socket_path(cluster_dir, args.cluster_id)
    server = ControlServer(cluster, address, key)
    server.start()
    info["socket"] = str(address)
    _write_json(info_path, info)
    log.info("cluster %s: daemon %d serving %s (backend %s)", cluster.id, os.getpid(), address, info["backend"])

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    code = 0
    try:
        cluster.start()
        cluster.start_reconciler()
        while not cluster.machine.terminal:
            if stop.wait(0.5):
                name = signal.Signals(received[-1]).name if received else "a signal"
                log.warning("cluster %s: daemon got %s, terminating the cluster", cluster.id, name)
                cluster.terminate(ClusterStateChangeReason.USER_REQUEST, f"the daemon got {name}")
        cluster.wait_closed(180)
    except BaseException as exc:
        log.exception("cluster %s: daemon failed", cluster.id)
        info["error"] = f"daemon failed: {exc}"
        code = 1
        cluster.terminate(ClusterStateChangeReason.INTERNAL_ERROR, f"the daemon failed: {exc}")
    finally:
        server.close()
        info["exited_at"] = time.time()
        info["final_state"] = cluster.state.value
        _write_json(info_path, info)
        log.info("cluster %s: daemon exits (%s)", cluster.id, cluster.state.value)
    return code


# --------------------------------------------------------------------------------------------------------------
# Starting a daemon

_LAUNCHER = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True)\n"
    "print(p.pid)\n"
)


def launch_daemon(
    config_path: Path,
    clusters_dir: Path,
    cluster_id: str,
    *,
    backend: str | None = None,
    address: str | None = None,
    clock_speed: float = 1.0,
    log_level: str | None = None,
    startup_timeout: float = 60.0,
) -> ClusterClient:
    """Start the daemon of a new cluster, detached, and return a client once it serves its channel.

    Raises:
        DaemonError: The daemon exited or did not serve within ``startup_timeout`` (with its log's tail).
        ConfigError / ProviderError: What the daemon refused the cluster for before it started.
    """
    cluster_dir = clusters_dir / cluster_id
    cluster_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "cluster.daemon",
        "run",
        "--cluster-id",
        cluster_id,
        "--config",
        str(config_path.resolve()),
        "--clusters-dir",
        str(clusters_dir.resolve()),
        "--clock-speed",
        repr(clock_speed),
    ]
    if backend:
        cmd += ["--backend", backend]
    if address:
        cmd += ["--address", address]
    if log_level:
        cmd += ["--log-level", log_level]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(cluster_dir / LOG_FILE), *cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise DaemonError(f"could not start the daemon of {cluster_id}: {out.stderr.strip()[-2000:]}")
    pid = int(out.stdout.strip())
    client = ClusterClient(clusters_dir, cluster_id)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        info = client.info()
        if info is not None and info.get("pid") == pid:
            if info.get("error_payload"):
                _raise_remote(info["error_payload"])
            if info.get("socket"):
                return client
        if not _pid_alive(pid):
            info = client.info()
            if info is not None and info.get("error_payload"):
                _raise_remote(info["error_payload"])
            raise DaemonError(f"the daemon of {cluster_id} exited at start:\n{client.log_tail()}")
        time.sleep(0.1)
    raise DaemonError(f"the daemon of {cluster_id} did not start within {startup_timeout:.0f}s:\n{client.log_tail()}")


def _pid_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


# --------------------------------------------------------------------------------------------------------------
# The client side


class ClusterClient:
    """Commands to a cluster owned by a daemon (the CLI's and notebooks' handle on it).

    Args:
        clusters_dir: Directory holding the cluster directories.
        cluster_id: The cluster.

    Raises:
        NotFoundError: No such cluster directory.
    """

    def __init__(self, clusters_dir: Path, cluster_id: str) -> None:
        self.clusters_dir = clusters_dir
        self.cluster_id = cluster_id
        self.dir = clusters_dir / cluster_id
        if not cluster_id or "/" in cluster_id or not self.dir.is_dir():
            raise NotFoundError("cluster", cluster_id)

    # -- files ---------------------------------------------------------------------------------------------

    def info(self) -> JsonDict | None:
        """``daemon.json`` (None before the daemon wrote it)."""
        return _read_json(self.dir / DAEMON_FILE)

    def saved_state(self) -> JsonDict | None:
        """``state.json``: the cluster as its daemon last wrote it."""
        return _read_json(self.dir / STATE_FILE)

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / LOG_FILE
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no daemon log)"

    def daemon_pid(self) -> int | None:
        info = self.info()
        pid = info.get("pid") if info else None
        return pid if isinstance(pid, int) else None

    def daemon_alive(self) -> bool:
        """Whether this cluster's daemon process runs (checked by pid and command line, not just the pid)."""
        info = self.info()
        if info is None or info.get("exited_at") is not None:
            return False
        pid = info.get("pid")
        if not isinstance(pid, int):
            return False
        try:
            proc = psutil.Process(pid)
            if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                return False
            cmdline = proc.cmdline()
        except psutil.Error:
            return False
        return "cluster.daemon" in cmdline and self.cluster_id in cmdline

    # -- the channel ---------------------------------------------------------------------------------------

    def call(self, op: str, timeout: float = DEFAULT_CALL_TIMEOUT, **args: Any) -> Any:
        """Send one request to the daemon and return its result.

        Raises:
            DaemonGoneError: The daemon is not running (the cluster ended, or the daemon died).
            DaemonError: It did not answer within ``timeout``.
            ClusterError: What the operation raised in the daemon (same type).
        """
        info = self.info()
        if not self.daemon_alive() or info is None or not info.get("socket"):
            raise self._gone()
        key = (self.dir / KEY_FILE).read_bytes()
        try:
            conn = Client(str(info["socket"]), family="AF_UNIX", authkey=key)
        except (OSError, EOFError) as exc:
            if not self.daemon_alive():
                raise self._gone() from exc
            raise DaemonError(f"cluster {self.cluster_id}: the daemon's channel refused the connection: {exc}") from exc
        with conn:
            conn.send_bytes(json.dumps({"op": op, "args": args}).encode())
            if not conn.poll(timeout):
                raise DaemonError(
                    f"cluster {self.cluster_id}: the daemon (pid {info.get('pid')}) did not answer {op!r} "
                    f"within {timeout:.0f}s"
                )
            try:
                response = json.loads(conn.recv_bytes())
            except (EOFError, OSError) as exc:
                raise DaemonError(f"cluster {self.cluster_id}: the daemon hung up during {op!r}") from exc
        if not response.get("ok"):
            _raise_remote(response)
        return response.get("result")

    def _gone(self) -> DaemonGoneError:
        state = self.saved_state() or {}
        last = state.get("state")
        info = self.info() or {}
        if last in TERMINAL_STATES:
            detail = f"it is {last}"
        elif info.get("error"):
            detail = f"it failed to start: {info['error']}"
        else:
            pid = info.get("pid", "?")
            detail = f"its daemon (pid {pid}) is gone (last known state {last or 'unknown'}); see {self.dir / LOG_FILE}"
        return DaemonGoneError(self.cluster_id, str(last) if last else None, detail)

    # -- operations ----------------------------------------------------------------------------------------

    def describe(self, timeout: float = 10.0, *, live: bool = True) -> JsonDict:
        """The cluster now: from the daemon (``live``), else from ``state.json`` (written after every reconcile
        pass); ``UNREACHABLE`` if the daemon died before the cluster ended.

        The result has a ``daemon`` entry: ``pid``, ``alive``, ``backend``, ``address``, ``source``
        (``daemon`` or ``state.json``).
        """
        info = self.info() or {}
        daemon: JsonDict = {
            "pid": info.get("pid"),
            "alive": False,
            "backend": info.get("backend"),
            "address": info.get("address"),
            "log": str(self.dir / LOG_FILE),
            "error": info.get("error"),
            "source": STATE_FILE,
        }
        if self.daemon_alive():
            daemon["alive"] = True
        if daemon["alive"] and live:
            try:
                data: JsonDict = self.call("describe", timeout=timeout)
                daemon["source"] = "daemon"
                data["daemon"] = daemon
                return data
            except DaemonGoneError:
                daemon["alive"] = False
            except DaemonError as exc:
                log.warning("%s; showing %s", exc, STATE_FILE)
                daemon["error"] = str(exc)
        data = self.saved_state() or {
            "cluster_id": self.cluster_id,
            "name": None,
            "state": "STARTING",
            "state_reason": None,
            "state_detail": "",
            "nodes": [],
            "steps": [],
            "groups": [],
        }
        data["daemon"] = daemon
        if not daemon["alive"] and data.get("state") not in TERMINAL_STATES:
            data["last_known_state"] = data.get("state")
            data["state"] = UNREACHABLE
            if info.get("error"):
                data["state_detail"] = f"the cluster could not start: {info['error']}"
            else:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("exited_at") or time.time())))
                data["state_detail"] = (
                    f"its daemon (pid {info.get('pid', '?')}) is gone; last known state {data['last_known_state']}; "
                    f"its nodes and steps stopped with it (checked {when}; log {self.dir / LOG_FILE})"
                )
        return data

    def step(self, step_id: str) -> JsonDict:
        """One step as :meth:`describe` shows it.

        Raises:
            NotFoundError: No such step in this cluster.
        """
        for step in self.describe().get("steps", []):
            if step.get("step_id") == step_id:
                result: JsonDict = step
                return result
        raise NotFoundError("step", f"{step_id} (in cluster {self.cluster_id})")

    def add_step(
        self,
        name: str,
        script: str,
        args: list[str] | None = None,
        *,
        spark_conf: Mapping[str, str] | None = None,
        action_on_failure: str = "CONTINUE",
    ) -> str:
        result = self.call(
            "add_step",
            name=name,
            script=script,
            args=list(args or []),
            spark_conf=dict(spark_conf or {}),
            action_on_failure=action_on_failure,
        )
        return str(result["step_id"])

    def cancel_step(self, step_id: str, *, force: bool = False) -> str:
        return str(self.call("cancel_step", step_id=step_id, force=force)["state"])

    def resize(
        self,
        group: str,
        count: int | None = None,
        *,
        on_demand_units: float | None = None,
        spot_units: float | None = None,
    ) -> JsonDict:
        result: JsonDict = self.call(
            "resize", group=group, count=count, on_demand_units=on_demand_units, spot_units=spot_units
        )
        return result

    def interrupt(self, node_id: str) -> JsonDict:
        result: JsonDict = self.call("interrupt", node_id=node_id)
        return result

    def terminate(self) -> str:
        """Ask the daemon to terminate the cluster; returns the state at once (see :meth:`wait_terminated`)."""
        return str(self.call("terminate")["state"])

    def cost(self) -> JsonDict:
        result: JsonDict = self.call("cost")
        return result

    def wait(self, predicate: Callable[[JsonDict], bool], timeout: float, poll: float = 0.5) -> JsonDict:
        """Poll :meth:`describe` until ``predicate`` holds, the cluster ends or becomes unreachable.

        Raises:
            TimeoutError: ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            data = self.describe()
            if predicate(data) or data.get("state") in TERMINAL_STATES | {UNREACHABLE}:
                return data
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cluster {self.cluster_id}: still {data.get('state')} after {timeout:.0f}s")
            time.sleep(poll)

    def wait_for_step(self, step_id: str, timeout: float = 3600.0) -> JsonDict:
        """Wait until the step ended (or the cluster did); returns the step."""

        def ended(data: JsonDict) -> bool:
            step = next((s for s in data.get("steps", []) if s.get("step_id") == step_id), None)
            if step is None:
                raise NotFoundError("step", f"{step_id} (in cluster {self.cluster_id})")
            return step.get("state") in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")

        self.wait(ended, timeout)
        return self.step(step_id)

    def wait_terminated(self, timeout: float = 600.0) -> JsonDict:
        """Wait until the cluster ended and its daemon exited."""
        deadline = time.monotonic() + timeout
        data = self.wait(lambda d: d.get("state") in TERMINAL_STATES, timeout)
        while self.daemon_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.describe() if data.get("state") in TERMINAL_STATES else data


def list_clusters(clusters_dir: Path) -> list[JsonDict]:
    """Every cluster under ``clusters_dir`` (newest first), as :meth:`ClusterClient.describe` shows it."""
    if not clusters_dir.is_dir():
        return []
    out = []
    for child in clusters_dir.iterdir():
        if not child.is_dir() or not ((child / STATE_FILE).exists() or (child / DAEMON_FILE).exists()):
            continue
        out.append(ClusterClient(clusters_dir, child.name).describe(live=False))
    out.sort(key=lambda d: float(d.get("created_at") or 0.0), reverse=True)
    return out


def connect(cluster_id: str, clusters_dir: Path | None = None) -> ClusterClient:
    """A client for a cluster started by ``lakeforge cluster create`` (for notebooks)."""
    if clusters_dir is None:
        from catalog.settings import get_settings

        clusters_dir = get_settings().clusters_dir
    return ClusterClient(clusters_dir, cluster_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.daemon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="own one cluster until it terminates (started by `lakeforge cluster create`)")
    run.add_argument("--cluster-id", required=True)
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--clusters-dir", required=True, type=Path)
    run.add_argument("--backend")
    run.add_argument("--address")
    run.add_argument("--clock-speed", default="1.0", help="simulated seconds per second (tests and demos)")
    run.add_argument("--log-level")
    args = parser.parse_args(argv)
    return _daemon_main(args)


if __name__ == "__main__":
    sys.exit(main())
