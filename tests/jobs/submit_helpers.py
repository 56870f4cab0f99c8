"""Running a Glue job script with the environment's plain ``spark-submit``, as a user would: its own lake
home (``LAKEFORGE_HOME``, whose ``s3/`` directory holds the ``s3://`` buckets) and the session's catalog
server (``spark.sql.catalog.lake.uri``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
REPO = Path(__file__).resolve().parents[2]


def run_glue_script(
    script: Path, args: list[str], *, home: Path, catalog_uri: str, cwd: Path, timeout: float = 600
) -> str:
    """Run ``script`` with ``args``; returns its combined output, fails the test with the output's tail on
    a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFORGE_", "PYSPARK_", "SPARK_"))}
    env["LAKEFORGE_HOME"] = str(home)
    cmd = [
        str(SPARK_SUBMIT),
        "--master", "local[2]",
        "--conf", f"spark.sql.catalog.lake.uri={catalog_uri}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        str(script),
        *args,
    ]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    output = result.stdout + result.stderr
    with (cwd / f"{script.stem}.log").open("a") as saved:  # kept with the test's tmp_path, for diagnosis
        saved.write(f"$ {' '.join(cmd)}\n{output}\n")
    if result.returncode != 0:
        python_error = (
            output[output.rfind("Traceback (most recent call last)") :][:6000] if "Traceback" in output else ""
        )
        pytest.fail(
            f"{script.name} failed ({result.returncode}); full output in {cwd / f'{script.stem}.log'}\n"
            f"{python_error or output[-6000:]}"
        )
    return output


def read_json_lines(directory: Path) -> list[dict[str, Any]]:
    """Every JSON line of the ``part-*`` files below ``directory`` (Spark's JSON output)."""
    rows = []
    for path in sorted(directory.rglob("part-*")):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return rows
