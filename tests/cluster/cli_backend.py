"""A test-only plug-in backend (``backend: tests.cluster.cli_backend:provider``) for the CLI tests.

Nodes live in memory (as in :class:`tests.cluster.fakes.FakeNodeProvider`); a step runs its script as a plain
``python SCRIPT ARGS`` process with stdout/stderr in the step's log directory, so steps really run, end, fail,
log and can be cancelled, without Ray (a step's Spark conf reaches a PySpark script as ``PYSPARK_SUBMIT_ARGS``,
so a Glue script runs on ``local[2]``). The real-Ray path is covered by ``test_cluster_on_ray.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.fakes import FakeNodeProvider


@dataclass
class ProcessStep:
    """A step run as a plain Python process."""

    step_id: str
    process: subprocess.Popen[bytes]

    def poll(self) -> int | None:
        return self.process.poll()

    def cancel(self, force: bool) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL if force else signal.SIGTERM)

    def metrics(self) -> dict[str, float]:
        return {}


class ProcessProvider(FakeNodeProvider):
    """In-memory nodes; steps as real processes."""

    def __init__(self) -> None:
        super().__init__(executors_per_node=1)
        self.processes: dict[str, ProcessStep] = {}

    def run_step(  # type: ignore[override]
        self, step_id: str, script: str, args: list[str], spark_conf: dict[str, str], log_dir: Path
    ) -> ProcessStep:
        self.calls.append(f"run {step_id}")
        log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        conf = [f"--conf {k}={v}" for k, v in sorted(spark_conf.items())]
        env["PYSPARK_SUBMIT_ARGS"] = " ".join(["--master local[2]", *conf, "pyspark-shell"])
        with (log_dir / "stdout").open("wb") as out, (log_dir / "stderr").open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, script, *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=log_dir,
                start_new_session=True,
            )
        handle = ProcessStep(step_id, process)
        self.processes[step_id] = handle
        return handle

    def shutdown(self) -> None:
        super().shutdown()
        for handle in self.processes.values():
            handle.cancel(True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                handle.process.wait(10)


def provider(*, cluster_dir: Path, config: Any, address: str | None) -> ProcessProvider:
    """The plug-in factory (called by :func:`cluster.backends.build_provider`)."""
    return ProcessProvider()
