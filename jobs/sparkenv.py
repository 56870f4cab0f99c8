"""Make the environment's Spark complete without network access.

``install()`` (run by setup, idempotent) links into the installed pyspark:

* the Iceberg Spark runtime jar shipped by the ``snowpark-connect-deps-iceberg`` wheel (``jars/``);
* the repository's ``spark-defaults.conf`` (``conf/``), so every entry point reads the one config;
* a ``conf/spark-env.sh`` that points ``PYSPARK_PYTHON`` at this environment's interpreter, so
  Python workers started by plain ``spark-submit`` import the project's packages;
* a ``bin/find-spark-home`` next to the interpreter that names that pyspark as ``SPARK_HOME``
  (pip's version asks whatever ``python3`` is first on PATH, which fails outside an activated venv);
* the lake's object store for Spark and the Glue runtime's JVM helpers: ``jobs/java/*.java`` (a Hadoop
  FileSystem mapping ``s3://bucket/key`` to ``<root>/bucket/key``, plus its FileContext delegate; the
  Spark SQL UDFs that type JSON values for the DynamicFrame reader) compiled with ``javac`` against
  pyspark's jars into ``<env>/share/lakeforge/lakeforge-s3fs.jar`` (only when the sources changed) and linked
  into ``jars/``; ``spark-defaults.conf`` registers it for ``s3``, ``s3a`` and ``s3n``, and ``spark-env.sh``
  defaults ``LAKEFORGE_S3_ROOT`` to ``$LAKEFORGE_HOME/s3`` (``<repo>/.lake/s3`` without it);
* the JDBC drivers of Debian's ``libpostgresql-jdbc-java`` and ``libxerial-sqlite-jdbc-java`` packages
  (``/usr/share/java``), when installed, so Glue JDBC sources and sinks work without Maven;
* a ``lakeforge-awsglue.pth`` in the environment's site-packages that puts ``jobs/compat`` on
  ``sys.path``: ``from awsglue.context import GlueContext`` works in every interpreter of the environment,
  Spark's Python workers included.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ICEBERG_JAR = "iceberg-spark-runtime-3.5_2.12-1.9.2.jar"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPARK_DEFAULTS = PROJECT_ROOT / "spark-defaults.conf"
JAVA_SOURCES = PROJECT_ROOT / "jobs" / "java"
COMPAT_DIR = PROJECT_ROOT / "jobs" / "compat"
S3FS_JAR = "lakeforge-s3fs.jar"
S3FS_STAMP = "META-INF/lakeforge-s3fs.sha256"
PTH_FILE = "lakeforge-awsglue.pth"
#: Debian's JDBC drivers: (name in pyspark/jars, candidates in /usr/share/java, package).
JDBC_DRIVERS = (
    ("postgresql.jar", ("postgresql.jar",), "libpostgresql-jdbc-java"),
    ("sqlite-jdbc.jar", ("sqlite-jdbc.jar", "xerial-sqlite-jdbc.jar"), "libxerial-sqlite-jdbc-java"),
)
SYSTEM_JARS = Path("/usr/share/java")


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


def javac() -> Path:
    """The JDK compiler (JAVA_HOME first, then PATH); SparkEnvError saying what to install when missing."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "javac" if home else None
    if candidate is None or not candidate.exists():
        found = shutil.which("javac")
        candidate = Path(found) if found else None
    if candidate is None:
        raise SparkEnvError(
            "javac is not installed: lakeforge compiles its s3:// FileSystem for Spark with the JDK "
            "(apt-get install -y openjdk-17-jdk-headless)"
        )
    return candidate


def _hadoop_api_jar(home: Path) -> Path:
    found = sorted((home / "jars").glob("hadoop-client-api-*.jar"))
    if not found:
        raise SparkEnvError(f"No hadoop-client-api jar in {home / 'jars'}: reinstall pyspark")
    return found[-1]


def _compile_classpath(home: Path) -> str:
    """pyspark's jars (Hadoop, Spark SQL's UDF interfaces, Jackson), without lakeforge's own jar."""
    jars = [str(p) for p in sorted((home / "jars").glob("*.jar")) if p.name != S3FS_JAR]
    return os.pathsep.join(jars)


def _s3fs_fingerprint(sources: list[Path], api_jar: Path, compiler: Path) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    digest.update(api_jar.name.encode())
    digest.update(str(compiler.resolve()).encode())
    return digest.hexdigest()


def _jar_stamp(jar: Path) -> str | None:
    try:
        with zipfile.ZipFile(jar) as zf:
            return zf.read(S3FS_STAMP).decode().strip()
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def build_s3fs_jar(home: Path, out_dir: Path | None = None) -> Path:
    """Compile ``jobs/java`` into the object-store jar unless it is current; returns the jar."""
    sources = sorted(JAVA_SOURCES.glob("*.java"))
    if not sources:
        raise SparkEnvError(f"No Java sources in {JAVA_SOURCES}")
    out_dir = out_dir or Path(sys.prefix) / "share" / "lakeforge"
    jar = out_dir / S3FS_JAR
    api_jar = _hadoop_api_jar(home)
    compiler = javac()
    fingerprint = _s3fs_fingerprint(sources, api_jar, compiler)
    if jar.is_file() and _jar_stamp(jar) == fingerprint:
        return jar
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakeforge-javac-") as tmp:
        classes = Path(tmp) / "classes"
        cmd = [str(compiler), "--release", "11", "-nowarn", "-cp", _compile_classpath(home), "-d", str(classes)]
        result = subprocess.run([*cmd, *map(str, sources)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SparkEnvError(f"javac failed on {JAVA_SOURCES}:\n{result.stdout}{result.stderr}")
        staged = Path(tmp) / S3FS_JAR
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: lakeforge jobs/sparkenv.py\n\n")
            zf.writestr(S3FS_STAMP, fingerprint + "\n")
            for cls in sorted(classes.rglob("*.class")):
                zf.write(cls, cls.relative_to(classes).as_posix())
        shutil.move(str(staged), jar)
    log.info("built %s", jar)
    return jar


def jdbc_driver_jars() -> dict[str, Path | None]:
    """Debian's JDBC driver jars by their name in pyspark/jars (None: the package is not installed)."""
    found: dict[str, Path | None] = {}
    for name, candidates, _package in JDBC_DRIVERS:
        found[name] = next((SYSTEM_JARS / c for c in candidates if (SYSTEM_JARS / c).is_file()), None)
    return found


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


@dataclass(frozen=True)
class SparkEnv:
    spark_home: Path
    jar: Path
    defaults: Path
    env_script: Path
    s3fs_jar: Path | None = None
    pth: Path | None = None


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
    s3fs = build_s3fs_jar(home)
    if _link(s3fs, home / "jars" / S3FS_JAR):
        log.info("linked %s", home / "jars" / S3FS_JAR)
    for name, source in jdbc_driver_jars().items():
        if source is None:
            package = next(p for n, _c, p in JDBC_DRIVERS if n == name)
            log.warning("JDBC driver %s missing: install the Debian package %s (setup does as root)", name, package)
        elif _link(source, home / "jars" / name):
            log.info("linked %s", home / "jars" / name)
    interpreter = python or sys.executable
    env_script = conf / "spark-env.sh"
    default_home = PROJECT_ROOT / ".lake"
    content = (
        "# Written by lakeforge setup (jobs/sparkenv.py): Python workers use this environment.\n"
        f'export PYSPARK_PYTHON="${{PYSPARK_PYTHON:-{interpreter}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{interpreter}}}"\n'
        "# The directory behind s3:// paths (lakeforge's object store), one sub-directory per bucket.\n"
        f'export LAKEFORGE_S3_ROOT="${{LAKEFORGE_S3_ROOT:-${{LAKEFORGE_HOME:-{default_home}}}/s3}}"\n'
    )
    _write_if_changed(env_script, content)
    pth = site_packages() / PTH_FILE
    _write_if_changed(pth, f"{COMPAT_DIR}\n")
    finder = Path(interpreter).parent / "find-spark-home"
    if finder.exists():
        _write_if_changed(
            finder,
            "# Written by lakeforge setup (jobs/sparkenv.py): this environment's Spark is its pyspark.\n"
            f'export SPARK_HOME="${{SPARK_HOME:-{home}}}"\n',
        )
    return SparkEnv(home, jar, defaults, env_script, s3fs, pth)


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
    if not (home / "jars" / S3FS_JAR).exists():
        problems.append(f"the s3:// FileSystem jar is not linked into {home / 'jars'}: run setup")
    for name, _candidates, package in JDBC_DRIVERS:
        if not (home / "jars" / name).exists():
            problems.append(f"JDBC driver {name} not linked into {home / 'jars'}: install {package}, run setup")
    if not (site_packages() / PTH_FILE).exists():
        problems.append(f"{PTH_FILE} missing from {site_packages()}: run setup (awsglue imports need it)")
    return problems


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        env = install()
    except SparkEnvError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from exc
    sys.stdout.write(f"Spark ready: {env.spark_home}\n")
