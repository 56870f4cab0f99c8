"""Running job scripts with the environment's plain ``spark-submit``."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def spark_submit_path() -> Path:
    """The ``spark-submit`` of this environment (next to the interpreter, else pyspark's own)."""
    beside = Path(sys.executable).parent / "spark-submit"
    if beside.exists():
        return beside
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-submit"


@dataclass(frozen=True)
class SubmitResult:
    returncode: int
    seconds: float
    log_path: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class JobFailedError(RuntimeError):
    def __init__(self, script: Path, result: SubmitResult) -> None:
        tail = "\n".join(result.log_path.read_text(errors="replace").splitlines()[-25:])
        super().__init__(f"{script.name} failed with exit code {result.returncode}; log {result.log_path}:\n{tail}")
        self.result = result


def spark_submit(
    script: Path,
    args: list[str],
    *,
    conf: dict[str, str] | None = None,
    master: str = "local[2]",
    log_path: Path,
    check: bool = True,
) -> SubmitResult:
    """Run ``spark-submit`` on ``script``; its output goes to ``log_path``."""
    cmd = [str(spark_submit_path()), "--master", master]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(script), *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("spark-submit %s %s", script.name, " ".join(args))
    start = time.monotonic()
    with log_path.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    result = SubmitResult(proc.returncode, time.monotonic() - start, log_path)
    if check and not result.ok:
        raise JobFailedError(script, result)
    return result
