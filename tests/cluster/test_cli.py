"""``lakeforge cluster`` / ``lakeforge steps`` through typer's CliRunner, with real daemon processes.

The daemons use the test-only plug-in backend ``tests.cluster.cli_backend:provider`` (nodes in memory, steps as
plain Python processes), so these tests need neither Ray nor Spark; ``test_cluster_on_ray.py`` covers the real
backend. Every daemon a test started is gone when the test ends (checked, and killed by pid if not).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from cluster.cli import app
from cluster.daemon import UNREACHABLE, ClusterClient, DaemonGoneError, connect

BACKEND = "tests.cluster.cli_backend:provider"
ID = re.compile(r"\bj-[A-Z0-9]{13}\b")
STEP = re.compile(r"\bs-[A-Z0-9]{13}\b")

runner = CliRunner()


def base_config(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "cli",
        "backend": BACKEND,
        "instance_groups": {
            "master": {"instance_type": "m5.xlarge", "count": 1},
            "core": {"instance_type": "m5.xlarge", "count": 1},
            "task": [{"name": "spot-task", "instance_type": "m5.xlarge", "count": 2, "market": "SPOT"}],
        },
        "spot": {"time_scale": 0.01},  # a 120-s notice lasts 1.2 s
        "decommission_timeout_seconds": 1,
    }
    data.update(overrides)
    return data


class Cli:
    """Runs ``lakeforge`` commands against one clusters directory; cleans up its daemons."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.dir = tmp_path / "clusters"

    def config(self, **overrides: Any) -> Path:
        path = self.tmp / f"cluster-{len(list(self.tmp.glob('cluster-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(base_config(**overrides)))
        return path

    def script(self, name: str, body: str) -> Path:
        path = self.tmp / name
        path.write_text(body)
        return path

    def __call__(self, group: str, *args: str, ok: bool = True) -> Result:
        result = runner.invoke(app, [group, "--clusters-dir", str(self.dir), *args])
        if ok:
            assert result.exit_code == 0, f"{group} {args} -> {result.exit_code}\n{result.output}"
        return result

    def create(self, config: Path, *extra: str) -> str:
        result = self("cluster", "create", str(config), "--wait", *extra)
        match = ID.search(result.output)
        assert match, result.output
        return match.group(0)

    def describe(self, cluster_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self("cluster", "describe", cluster_id, "--json").stdout)
        return data

    def wait(self, cluster_id: str, cond: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = self.describe(cluster_id)
            if cond(data):
                return data
            assert time.monotonic() < deadline, f"timed out; last view:\n{json.dumps(data, indent=1)[:3000]}"
            time.sleep(0.3)

    def daemons(self) -> list[psutil.Process]:
        found = []
        for info in self.dir.glob("*/daemon.json"):
            pid = json.loads(info.read_text()).get("pid")
            try:
                proc = psutil.Process(pid)
                if "cluster.daemon" in proc.cmdline():
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def cleanup(self) -> list[int]:
        """Kill leftover daemons (a failed test); return their pids."""
        left = self.daemons()
        for proc in left:
            proc.terminate()
        _, alive = psutil.wait_procs(left, timeout=15)
        for proc in alive:
            proc.kill()
        return [p.pid for p in left]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner_cli = Cli(tmp_path)
    yield runner_cli
    runner_cli.cleanup()


def nodes(data: dict[str, Any], role: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    return [n for n in data["nodes"] if (role is None or n["role"] == role) and (state is None or n["state"] == state)]


def step_of(data: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in data["steps"] if s["step_id"] == step_id)


def wait_gone(proc_pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(proc_pid):
        try:
            if psutil.Process(proc_pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.Error:
            return
        assert time.monotonic() < deadline, f"pid {proc_pid} still alive"
        time.sleep(0.2)


def test_bad_config_is_rejected_before_anything_starts(cli: Cli) -> None:
    bad = cli.config(instance_groups={"master": {"instance_type": "m5.xlarge", "count": 2}})
    result = cli("cluster", "create", str(bad), ok=False)
    assert result.exit_code == 1
    assert "instance_groups.master.count: must be 1 (or 3 for high availability), got 2" in result.stderr
    assert not cli.dir.exists() or not list(cli.dir.iterdir())
    local_with_address = cli.config(backend="local", address="10.0.0.1:6379")
    result = cli("cluster", "create", str(local_with_address), ok=False)
    assert "address: only applies to backend 'ray'" in result.stderr
    result = cli("cluster", "create", str(cli.tmp / "missing.yaml"), ok=False)
    assert "cannot read" in result.stderr


def test_unknown_cluster_and_step_ids_are_clear_errors(cli: Cli) -> None:
    for args in (
        ("cluster", "describe", "j-NOSUCHCLUSTER"),
        ("cluster", "terminate", "j-NOSUCHCLUSTER"),
        ("cluster", "scale", "j-NOSUCHCLUSTER", "--group", "TASK", "--count", "1"),
        ("steps", "list", "j-NOSUCHCLUSTER"),
        ("steps", "logs", "j-NOSUCHCLUSTER", "s-X"),
    ):
        result = cli(*args, ok=False)
        assert result.exit_code == 1, args
        assert "no such cluster: j-NOSUCHCLUSTER" in result.stderr, (args, result.output)
        assert "Traceback" not in result.output
    listing = cli("cluster", "list", "--json")
    assert json.loads(listing.stdout) == []


def test_cluster_and_steps_from_the_command_line(cli: Cli) -> None:
    t0 = time.monotonic()
    cluster_id = cli.create(cli.config())
    data = cli.describe(cluster_id)
    assert data["state"] == "WAITING" and data["daemon"]["alive"] and data["daemon"]["backend"] == BACKEND
    assert [n["role"] for n in nodes(data, state="RUNNING")] == ["MASTER", "CORE", "TASK", "TASK"]
    assert time.monotonic() - t0 < 30

    listing = json.loads(cli("cluster", "list", "--json").stdout)
    assert [(c["cluster_id"], c["state"]) for c in listing] == [(cluster_id, "WAITING")]
    table = cli("cluster", "describe", cluster_id).stdout
    assert "spot-task" in table and "WAITING" in table and "cost (USD)" in table

    # A step that succeeds: arguments (options included) reach the script; logs by stream.
    hello = cli.script("hello.py", "import sys\nprint('hello', *sys.argv[1:])\nprint('oops', file=sys.stderr)\n")
    added = cli("steps", "add", cluster_id, "--name", "greet", "--conf", "spark.x=1", str(hello), "a", "--rows", "3",
                "--wait")  # fmt: skip
    step_id = STEP.search(added.stdout).group(0)  # type: ignore[union-attr]
    assert "COMPLETED" in added.stdout
    step = json.loads(cli("steps", "describe", cluster_id, step_id, "--json").stdout)
    assert step["name"] == "greet" and step["args"] == ["a", "--rows", "3"] and step["spark_conf"] == {"spark.x": "1"}
    assert step["exit_code"] == 0
    assert cli("steps", "logs", cluster_id, step_id).stdout == "hello a --rows 3\n"
    assert cli("steps", "logs", cluster_id, step_id, "--stderr").stdout == "oops\n"

    # A failing step: --wait exits 1; CONTINUE keeps the cluster.
    boom = cli.script("boom.py", "import sys\nsys.exit(3)\n")
    failed = cli("steps", "add", cluster_id, str(boom), "--wait", ok=False)
    assert failed.exit_code == 1 and "FAILED" in failed.stdout
    # A long step, cancelled.
    sleepy = cli.script("sleepy.py", "import time\ntime.sleep(300)\n")
    long_id = STEP.search(cli("steps", "add", cluster_id, str(sleepy)).stdout).group(0)  # type: ignore[union-attr]
    cli.wait(cluster_id, lambda d: step_of(d, long_id)["state"] == "RUNNING")
    assert "CANCEL" in cli("steps", "cancel", cluster_id, long_id).stdout
    data = cli.wait(cluster_id, lambda d: step_of(d, long_id)["state"] == "CANCELLED")
    assert [s["state"] for s in data["steps"]] == ["COMPLETED", "FAILED", "CANCELLED"]
    listed = json.loads(cli("steps", "list", cluster_id, "--json").stdout)
    assert [s["step_id"] for s in listed][0] == step_id
    for args in (("describe", cluster_id, "s-NOSUCHSTEP"), ("logs", cluster_id, "s-NOSUCHSTEP"),
                 ("cancel", cluster_id, "s-NOSUCHSTEP")):  # fmt: skip
        result = cli("steps", *args, ok=False)
        assert result.exit_code == 1 and f"no such step: s-NOSUCHSTEP in cluster {cluster_id}" in result.stderr
    assert "no such script" in cli("steps", "add", cluster_id, "nope.py", ok=False).stderr
    bad_action = cli("steps", "add", cluster_id, str(hello), "--action-on-failure", "EXPLODE", ok=False)
    assert bad_action.exit_code == 1 and "EXPLODE" in bad_action.stderr

    # Scale the task group out and in by role name; waits until the target is met.
    cli("cluster", "scale", cluster_id, "--group", "TASK", "--count", "3", "--wait")
    assert len(nodes(cli.describe(cluster_id), "TASK", "RUNNING")) == 3
    shrunk = cli("cluster", "scale", cluster_id, "--group", "spot-task", "--count", "1", "--wait")
    assert "decommissioning" in shrunk.stdout
    data = cli.describe(cluster_id)
    assert len(nodes(data, "TASK", "RUNNING")) == 1 and len(nodes(data, "TASK", "TERMINATED")) == 2
    assert "no such group" in cli("cluster", "scale", cluster_id, "--group", "gpu", "--count", "1", ok=False).stderr

    # Spot interruption by command: notice, reclaim, replacement; on-demand nodes refuse.
    (task,) = nodes(data, "TASK", "RUNNING")
    assert "Spot interruption notice sent" in cli("cluster", "interrupt", cluster_id, task["node_id"]).stdout
    data = cli.wait(
        cluster_id,
        lambda d: (
            any(n["node_id"] == task["node_id"] and n["state"] == "SPOT_INTERRUPTED" for n in d["nodes"])
            and len(nodes(d, "TASK", "RUNNING")) == 1
        ),
    )
    (core,) = nodes(data, "CORE")
    refused = cli("cluster", "interrupt", cluster_id, core["node_id"], ok=False)
    assert refused.exit_code == 1 and "only running Spot nodes" in refused.stderr
    assert "no such node: i-nope" in cli("cluster", "interrupt", cluster_id, "i-nope", ok=False).stderr

    # Terminate: waits for TERMINATED and the daemon's exit; then everything reads from the state files.
    (daemon,) = cli.daemons()
    ended = cli("cluster", "terminate", cluster_id)
    assert "TERMINATED" in ended.stdout
    wait_gone(daemon.pid)
    data = cli.describe(cluster_id)
    assert data["state"] == "TERMINATED" and data["state_reason"] == "USER_REQUEST"
    assert not data["daemon"]["alive"] and data["daemon"]["source"] == "state.json"
    assert cli("steps", "logs", cluster_id, step_id).stdout == "hello a --rows 3\n"
    assert "already TERMINATED" in cli("cluster", "terminate", cluster_id).stdout
    refused = cli("cluster", "scale", cluster_id, "--group", "TASK", "--count", "2", ok=False)
    assert refused.exit_code == 1 and "it is TERMINATED" in refused.stderr
    assert (cli.dir / cluster_id / "cost.txt").is_file()
    assert not (cli.dir / cluster_id / "control.sock").exists()


def test_a_dead_daemon_shows_as_unreachable_not_a_hang(cli: Cli) -> None:
    cluster_id = cli.create(cli.config())
    (daemon,) = cli.daemons()
    daemon.kill()
    wait_gone(daemon.pid)
    t0 = time.monotonic()
    data = cli.describe(cluster_id)
    assert data["state"] == UNREACHABLE and data["last_known_state"] == "WAITING"
    assert f"pid {daemon.pid}" in data["state_detail"] and "is gone" in data["state_detail"]
    assert UNREACHABLE in cli("cluster", "list").stdout
    refused = cli("cluster", "scale", cluster_id, "--group", "TASK", "--count", "3", ok=False)
    assert refused.exit_code == 1 and "its daemon" in refused.stderr and "is gone" in refused.stderr
    assert cli("cluster", "terminate", cluster_id, ok=False).exit_code == 1
    assert time.monotonic() - t0 < 20
    with pytest.raises(DaemonGoneError, match="last known state WAITING"):
        ClusterClient(cli.dir, cluster_id).add_step("x", "x.py")


def test_the_daemon_auto_terminates_an_idle_cluster_and_exits(cli: Cli) -> None:
    # A 60-s idle timeout on a clock 60x faster than real time: about one real second.
    cluster_id = cli.create(cli.config(auto_termination={"idle_timeout_seconds": 60}), "--clock-speed", "60")
    (daemon,) = cli.daemons()
    data = cli.wait(cluster_id, lambda d: d["state"] == "TERMINATED", timeout=30)
    assert data["state_reason"] == "IDLE_TIMEOUT"
    wait_gone(daemon.pid)
    assert json.loads((cli.dir / cluster_id / "daemon.json").read_text())["final_state"] == "TERMINATED"


def test_steps_from_the_config_and_keep_alive_off_end_the_cluster(cli: Cli) -> None:
    hello = cli.script("hello.py", "print('from the config')\n")
    config = cli.config(keep_alive=False, steps=[{"name": "only", "script": str(hello)}])
    cluster_id = cli.create(config)
    data = cli.wait(cluster_id, lambda d: d["state"] == "TERMINATED")
    assert data["state_reason"] == "ALL_STEPS_COMPLETED" and data["steps"][0]["state"] == "COMPLETED"
    assert cli("steps", "logs", cluster_id, data["steps"][0]["step_id"]).stdout == "from the config\n"


def test_sigterm_to_the_daemon_terminates_the_cluster(cli: Cli) -> None:
    cluster_id = cli.create(cli.config())
    (daemon,) = cli.daemons()
    os.kill(daemon.pid, signal.SIGTERM)
    wait_gone(daemon.pid)
    data = cli.describe(cluster_id)
    assert data["state"] == "TERMINATED" and "SIGTERM" in data["state_detail"]
    assert {n["state"] for n in data["nodes"]} == {"TERMINATED"}


def test_python_client_for_notebooks(cli: Cli) -> None:
    cluster_id = cli.create(cli.config())
    client = connect(cluster_id, cli.dir)
    hello = cli.script("hello.py", "print('hi')\n")
    step_id = client.add_step("hi", str(hello))
    assert client.wait_for_step(step_id, timeout=30)["state"] == "COMPLETED"
    assert client.cost()["total_usd"] > 0
    with pytest.raises(Exception, match="no such step"):
        client.cancel_step("s-NOSUCHSTEP")
    assert client.terminate() in ("TERMINATING", "TERMINATED")
    assert client.wait_terminated(60)["state"] == "TERMINATED"
    assert not client.daemon_alive()


@pytest.mark.slow
def test_an_unreachable_ray_head_fails_the_cluster_with_the_reason(cli: Cli) -> None:
    config = cli.config(backend="ray", address="127.0.0.1:9")
    result = cli("cluster", "create", str(config), "--wait", ok=False)
    assert result.exit_code == 1
    assert "TERMINATED_WITH_ERRORS" in result.stderr and "Ray head at 127.0.0.1:9 is not reachable" in result.stderr
    cluster_id = ID.search(result.output).group(0)  # type: ignore[union-attr]
    data = cli.describe(cluster_id)
    assert data["state"] == "TERMINATED_WITH_ERRORS" and data["state_reason"] == "INTERNAL_ERROR"
    (master,) = nodes(data, "MASTER")
    assert "not reachable" in master["reason"]
