"""Job-bookmark benchmark: a first full bookmarked run over a prefix of N files against incremental runs.

Run::

    .venv/bin/python bench/bookmark_bench.py              # 200 and 800 files, 200 rows each (3-6 minutes)
    .venv/bin/python bench/bookmark_bench.py --quick      # 50 and 200 files, smoke run

For each size N, in one process, one SparkSession and one catalog server (on a temporary lake):

1. **full**: a bookmarked Glue job (``job-bookmark-enable``) reads all N JSON files of a prefix as a
   DynamicFrame, maps them and appends them to an Iceberg table through ``write_dynamic_frame.from_catalog``
   (bookmark token in the snapshot summary), then ``job.commit()``;
2. **fixed**: the same job with no new file (what every run pays: bookmark start and commit, listing and
   filtering the prefix, an empty write);
3. **1% new**: N/100 new files land, then the job runs;
4. **2 new**: 2 new files land, then the job runs (the same new data at every size).

The full run is measured once per size; 2-4 are repeated (``--repeat``, default 3) and their median shown.

The issue's goal: the incremental run costs under 10% of the full run plus the fixed cost, and its cost
grows with the new data, not with the total (the "2 new" run costs the same at every size). Every run's
rows are checked (the table holds each input row exactly once). Results go to ``bench/results/bookmarks.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "bookmarks.json"
GOAL_RATIO = 0.10

log = logging.getLogger("lakeforge.bench.bookmarks")


@dataclass
class SizeResult:
    files: int
    rows_per_file: int
    full_s: float
    fixed_s: float
    one_percent_files: int
    one_percent_s: float
    two_new_s: float

    @property
    def budget_s(self) -> float:
        """The goal's bound for an incremental run: 10% of the full run plus the fixed cost."""
        return GOAL_RATIO * self.full_s + self.fixed_s


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


class Bench:
    def __init__(self, home: Path, rows_per_file: int) -> None:
        from catalog.server import CatalogServer
        from catalog.settings import CatalogSettings, Settings

        self.home = home
        self.rows_per_file = rows_per_file
        settings = Settings(home=home, catalog=CatalogSettings(port=0))  # type: ignore[call-arg]
        self.server = CatalogServer(settings).start()
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ["LAKEFORGE_S3_ROOT"] = str(settings.object_store_root)
        from pyspark.sql import SparkSession

        self.spark = (
            SparkSession.builder.master("local[2]")
            .appName("bookmark-bench")
            .config("spark.sql.catalog.lake.uri", self.server.uri)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        from jobs.glue.context import GlueContext

        self.glue = GlueContext(self.spark)
        self.root = settings.object_store_root
        self.next_id = 0

    def land(self, prefix: str, count: int) -> int:
        """Write ``count`` new JSON files under ``prefix`` (modified a few seconds ago); returns their rows."""
        directory = self.root / "bench" / prefix
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.time() - 5
        for _ in range(count):
            path = directory / f"part-{self.next_id:08d}.json"
            lines = []
            for i in range(self.rows_per_file):
                n = self.next_id * self.rows_per_file + i
                lines.append(json.dumps({"id": n, "user": f"u{n % 997}", "amount": n % 1000 / 10, "kind": "click"}))
            path.write_text("\n".join(lines) + "\n")
            os.utime(path, (stamp, stamp))
            self.next_id += 1
        return count * self.rows_per_file

    def run_job(self, job_name: str, prefix: str, table: str) -> tuple[float, int]:
        """One bookmarked run; returns its wall time and the rows it read."""
        from jobs.glue.job import Job
        from jobs.glue.transforms import ApplyMapping

        start = time.perf_counter()
        job = Job(self.glue).init(job_name, {"job_bookmark_option": "job-bookmark-enable"})
        frame = self.glue.create_dynamic_frame.from_options(
            "s3", {"paths": [f"s3://bench/{prefix}/"], "recurse": True}, format="json", transformation_ctx="events"
        )
        mapped = ApplyMapping.apply(
            frame=frame,
            mappings=[
                ("id", "long", "id", "long"),
                ("user", "string", "user", "string"),
                ("amount", "double", "amount", "double"),
            ],
            transformation_ctx="mapped",
        )
        rows = mapped.count()
        self.glue.write_dynamic_frame.from_catalog(
            frame=mapped, database="bench", table_name=table, additional_options={"enableUpdateCatalog": True}
        )
        job.commit()
        return time.perf_counter() - start, rows

    def table_rows(self, table: str) -> tuple[int, int]:
        row = self.spark.sql(f"SELECT count(*) AS n, count(DISTINCT id) AS d FROM lake.bench.{table}").first()
        assert row is not None
        return int(row["n"]), int(row["d"])

    def size(self, files: int, repeat: int) -> SizeResult:
        """Measure one prefix size: the full run once, the others ``repeat`` times each (their median)."""
        prefix, table, job = f"size{files}", f"events_{files}", f"bench_{files}_{uuid.uuid4().hex[:6]}"
        expected = self.land(prefix, files)
        full_s, read = self.run_job(job, prefix, table)
        assert read == expected, (read, expected)
        new_files = max(1, files // 100)
        fixed, one, two = [], [], []
        for _ in range(repeat):
            seconds, read = self.run_job(job, prefix, table)
            assert read == 0, read
            fixed.append(seconds)
            new_rows = self.land(prefix, new_files)
            seconds, read = self.run_job(job, prefix, table)
            assert read == new_rows, (read, new_rows)
            one.append(seconds)
            expected += new_rows
            new_rows = self.land(prefix, 2)
            seconds, read = self.run_job(job, prefix, table)
            assert read == new_rows, (read, new_rows)
            two.append(seconds)
            expected += new_rows
        total, distinct = self.table_rows(table)
        assert total == distinct == expected, (total, distinct, expected)  # each row exactly once
        return SizeResult(
            files, self.rows_per_file, full_s, statistics.median(fixed), new_files, statistics.median(one),
            statistics.median(two),
        )  # fmt: skip

    def close(self) -> None:
        self.spark.stop()
        self.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", default="200,800", help="Comma-separated prefix sizes (files). Default 200,800.")
    parser.add_argument("--rows-per-file", type=int, default=200, help="Rows in each JSON file (default 200).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each incremental kind per size (median).")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 50 and 200 files of 50 rows, 1 repeat.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Where the JSON results go.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary lake for inspection.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    sizes = [50, 200] if args.quick else [int(x) for x in args.files.split(",") if x.strip()]
    rows_per_file = 50 if args.quick else args.rows_per_file
    console = Console()
    load_start = loadavg()
    console.print(f"load average at start: {load_start} ({os.cpu_count()} CPUs)")
    home = Path(tempfile.mkdtemp(prefix="lakeforge-bookmark-bench-"))
    begun = time.perf_counter()
    bench = Bench(home, rows_per_file)
    results: list[SizeResult] = []
    try:
        bench.land("warmup", 4)  # JVM, readers and the Iceberg writer warmed up before anything is timed
        bench.run_job("warmup", "warmup", "warmup")
        bench.land("warmup", 1)
        bench.run_job("warmup", "warmup", "warmup")
        for files in sizes:
            console.print(f"measuring {files} files ...")
            results.append(bench.size(files, 1 if args.quick else max(1, args.repeat)))
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    load_end = loadavg()

    table = RichTable(title="bookmarked runs (wall seconds, in-process Spark, Iceberg sink)")
    for column in ("files", "rows", "full", "fixed (0 new)", "1% new", "1% / full", "2 new", "budget", "goal"):
        table.add_column(column, justify="right")
    checks: list[dict[str, Any]] = []
    for r in results:
        ok = r.one_percent_s <= r.budget_s
        checks.append({"files": r.files, "one_percent_s": r.one_percent_s, "budget_s": r.budget_s, "pass": ok})
        table.add_row(
            str(r.files),
            str(r.files * r.rows_per_file),
            f"{r.full_s:.2f}",
            f"{r.fixed_s:.2f}",
            f"{r.one_percent_s:.2f} ({r.one_percent_files} files)",
            f"{r.one_percent_s / r.full_s:.1%}",
            f"{r.two_new_s:.2f}",
            f"{r.budget_s:.2f}",
            "PASS" if ok else "MISS",
        )
    console.print(table)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        grow_total = large.full_s / small.full_s
        grow_two = large.two_new_s / small.two_new_s
        console.print(
            f"total data x{large.files / small.files:.0f}: full run cost x{grow_total:.2f}, "
            f"'2 new' run cost x{grow_two:.2f} (incremental cost follows the new data, not the total: "
            f"{'PASS' if grow_two < 1 + (grow_total - 1) / 4 else 'MISS'})"
        )
        console.print(
            f"1% new: {small.one_percent_files} files -> {small.one_percent_s - small.fixed_s:+.2f} s over fixed; "
            f"{large.one_percent_files} files -> {large.one_percent_s - large.fixed_s:+.2f} s over fixed"
        )
    console.print(f"load average at end: {load_end}; total {time.perf_counter() - begun:.0f} s")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": {
            "time": datetime.now(UTC).isoformat(),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_start": load_start,
            "load_end": load_end,
            "sizes": sizes,
            "rows_per_file": rows_per_file,
        },
        "goal": {"incremental_le": f"{GOAL_RATIO:.0%} of full + fixed"},
        "results": [{**asdict(r), "budget_s": r.budget_s} for r in results],
        "checks": checks,
    }
    args.output.write_text(json.dumps(payload, indent=2))
    console.print(f"results written to {args.output}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
