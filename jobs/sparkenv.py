"""Make the environment's Spark complete without network access.

``install()`` (run by setup, idempotent) links into the installed pyspark:

* the Iceberg Spark runtime jar shipped by the ``snowpark-connect-deps-iceberg`` wheel (``jars/``);
* the repository's ``spark-defaults.conf`` (``conf/``), so every entry point reads the one config;
* a ``conf/spark-env.sh`` that points ``PYSPARK_PYTHON`` at this environment's interpreter, so
  Python workers started by plain ``spark-submit`` import the project's packages;
* a ``bin/find-spark-home`` next to the interpreter that names that pyspark as ``SPARK_HOME``
  (pip's version asks whatever ``python3`` is first on PATH, which fails outside an activated venv).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ICEBERG_JAR = "iceberg-spark-runtime-3.5_2.12-1.9.2.jar"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPARK_DEFAULTS = PROJECT_ROOT / "spark-defaults.conf"


class SparkEnvError(RuntimeError):
    """The Spark environment is incomplete, with what to do about it."""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def iceberg_jar_source() -> Path:
    try:
        import snowpark_connect_deps_iceberg as wheel  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SparkEnvError(
            "snowpark-connect-deps-iceberg==1.0.1 is not installed: it ships the Iceberg Spark runtime jar"
        ) from exc
    jar = Path(wheel.__path__[0]) / "jars" / ICEBERG_JAR
    if not jar.is_file():
        raise SparkEnvError(f"{jar} is missing: reinstall snowpark-connect-deps-iceberg==1.0.1")
    return jar


def java_version() -> int:
    """Major version of the ``java`` on PATH (or JAVA_HOME); SparkEnvError when there is none."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkEnvError("Java is not installed: Spark 3.5 needs Java 17 (apt-get install openjdk-17-jre-headless)")
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False).stderr
    for token in out.split():
        token = token.strip('"')
        if token[:1].isdigit():
            major = token.split(".")[0]
            return int(major) if major != "1" else int(token.split(".")[1])
    raise SparkEnvError(f"Cannot read the Java version from: {out.strip()}")


def _link(target: Path, link: Path) -> bool:
    if link.is_symlink() and link.resolve() == target.resolve():
        return False
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)
    return True


@dataclass(frozen=True)
class SparkEnv:
    spark_home: Path
    jar: Path
    defaults: Path
    env_script: Path


def install(python: str | None = None) -> SparkEnv:
    """Link the jar and the config into pyspark and write spark-env.sh (idempotent)."""
    version = java_version()
    if version not in (17, 11, 21):
        raise SparkEnvError(f"Java {version} found; Spark 3.5 with this project is tested on Java 17")
    home = spark_home()
    jar = home / "jars" / ICEBERG_JAR
    if _link(iceberg_jar_source(), jar):
        log.info("linked %s", jar)
    conf = home / "conf"
    conf.mkdir(exist_ok=True)
    defaults = conf / "spark-defaults.conf"
    if _link(SPARK_DEFAULTS, defaults):
        log.info("linked %s", defaults)
    interpreter = python or sys.executable
    env_script = conf / "spark-env.sh"
    content = (
        "# Written by lakeforge setup (jobs/sparkenv.py): Python workers use this environment.\n"
        f'export PYSPARK_PYTHON="${{PYSPARK_PYTHON:-{interpreter}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{interpreter}}}"\n'
    )
    _write_if_changed(env_script, content)
    finder = Path(interpreter).parent / "find-spark-home"
    if finder.exists():
        _write_if_changed(
            finder,
            "# Written by lakeforge setup (jobs/sparkenv.py): this environment's Spark is its pyspark.\n"
            f'export SPARK_HOME="${{SPARK_HOME:-{home}}}"\n',
        )
    return SparkEnv(home, jar, defaults, env_script)


def _write_if_changed(path: Path, content: str) -> None:
    if not path.exists() or path.read_text() != content:
        path.write_text(content)
        log.info("wrote %s", path)


def check() -> list[str]:
    """Problems with the Spark environment, empty when complete."""
    problems = []
    try:
        java_version()
    except SparkEnvError as exc:
        problems.append(str(exc))
    home = spark_home()
    if not (home / "jars" / ICEBERG_JAR).exists():
        problems.append(f"Iceberg jar not linked into {home / 'jars'}: run setup")
    if not (home / "conf" / "spark-defaults.conf").exists():
        problems.append(f"spark-defaults.conf not linked into {home / 'conf'}: run setup")
    return problems


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        env = install()
    except SparkEnvError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from exc
    sys.stdout.write(f"Spark ready: {env.spark_home}\n")
