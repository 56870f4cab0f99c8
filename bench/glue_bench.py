"""Glue runtime benchmark: the access-log job on DynamicFrames against the same logic in the DataFrame API.

Run::

    .venv/bin/python bench/glue_bench.py                 # 1,000,000 records, 3 rounds (about 8-12 minutes)
    .venv/bin/python bench/glue_bench.py --quick         # 100,000 records, 1 round (about 2 minutes)

What it measures, in one run, on one generated input (``jobs.datagen``: JSON lines partitioned
``dt=/hour=``, 1% malformed lines, ``status`` an int/string choice, ``latency_ms`` a double/string choice):

* **DynamicFrame**: ``jobs/access_logs_job.py``'s logic: ``create_dynamic_frame.from_options`` (Glue's
  per-value typing), ``ResolveChoice`` + ``ApplyMapping`` typing, failed casts to error rows, derived
  columns, the good records written as Parquet partitioned by ``dt``/``hour`` with
  ``write_dynamic_frame.from_options``, the error rows (malformed lines, failed casts) as JSON;
* **DataFrame** (the baseline): the same in the plain DataFrame API: ``spark.read.json`` (Spark's schema
  inference, ``_corrupt_record``), casts, the same derived columns (the very ``derive`` function), the
  same two writes.

The two alternate (DynamicFrame first in odd rounds, DataFrame first in even ones), after an untimed
warm-up of both on one partition, in one SparkSession (``local[2]``). Both outputs are checked to hold the
same records. Reported: seconds per run and per phase (reading with inference, writing the good records,
writing the errors), records/s, and the cost ratio DynamicFrame / DataFrame (goal: under 1.15).
``--python-inference`` adds a third variant: the DynamicFrame job with the runtime's JVM JSON helpers
switched off (the pure-Python typing passes), to show what the helpers buy.

Results go to ``bench/results/glue.json``.
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from jobs import access_logs_job as job_logic
from jobs.datagen import AccessLogSummary, generate_access_logs

log = logging.getLogger("lakeforge.bench.glue")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "glue.json"
GOAL_MAX_RATIO = 1.15
DYNAMIC, DATAFRAME, PYTHON = "DynamicFrame", "DataFrame", "DynamicFrame (Python typing)"
SOURCE = "s3://bench/access_logs/"


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@dataclass
class RunResult:
    variant: str
    round: int
    seconds: float
    phases: dict[str, float]
    good: int = 0
    errors: int = 0


@dataclass
class VariantSummary:
    variant: str
    runs: list[float] = field(default_factory=list)
    median_seconds: float = 0.0
    records_per_s: float = 0.0
    phases_median: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------
# The two implementations of the job
# ----------------------------------------------------------------------------------------------------
def dynamic_frame_job(glue_context: Any, source: str, out: str) -> dict[str, float]:
    """The job on DynamicFrames (``jobs/access_logs_job.py``'s functions, Parquet instead of Iceberg)."""
    from jobs.glue.dynamicframe import DynamicFrame

    phases: dict[str, float] = {}
    t = time.perf_counter()
    frame = job_logic.read_source(glue_context, {"source_path": source})
    phases["read + inference"] = time.perf_counter() - t
    t = time.perf_counter()
    refined, errors = job_logic.refine(glue_context, frame)
    glue_context.write_dynamic_frame.from_options(
        frame=refined,
        connection_type="s3",
        connection_options={"path": f"{out}/good", "partitionKeys": job_logic.PARTITION_KEYS},
        format="parquet",
    )
    phases["good records"] = time.perf_counter() - t
    t = time.perf_counter()
    glue_context.write_dynamic_frame.from_options(
        frame=DynamicFrame.fromDF(errors.coalesce(1), glue_context, "errors"),
        connection_type="s3",
        connection_options={"path": f"{out}/errors"},
        format="json",
    )
    phases["error records"] = time.perf_counter() - t
    return phases


def dataframe_job(spark: Any, source: str, out: str) -> dict[str, float]:
    """The same job in the plain DataFrame API."""
    from pyspark.sql import functions as F

    phases: dict[str, float] = {}
    t = time.perf_counter()
    raw = (
        spark.read.option("recursiveFileLookup", "true")  # the files' records only, as from_options reads them
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .json(source)
    )
    if "_corrupt_record" not in raw.columns:  # Spark adds it only when it saw a malformed line
        raw = raw.withColumn("_corrupt_record", F.lit(None).cast("string"))
    phases["read + inference"] = time.perf_counter() - t
    t = time.perf_counter()
    parsed = raw.where(F.col("_corrupt_record").isNull())
    typed = parsed.select(
        F.col("request_id").cast("string").alias("request_id"),
        F.col("ts").cast("string").alias("ts_text"),
        F.col("ts").cast("timestamp").alias("ts"),
        F.col("ip").alias("client_ip"),
        "method",
        "path",
        F.col("status").cast("string").alias("status_text"),
        F.col("status").cast("int").alias("status"),
        F.col("bytes").cast("long").alias("bytes"),
        F.col("latency_ms").cast("string").alias("latency_text"),
        F.col("latency_ms").cast("double").alias("latency_ms"),
        "user_agent",
        F.col("referrer").cast("string").alias("referrer"),
        F.col("user.id").cast("long").alias("user_id"),
        F.col("user.plan").alias("user_plan"),
        F.col("user.geo.country").alias("country"),
        F.col("user.geo.city").alias("city"),
        "tags",
    )
    good = job_logic.derive(typed.where(~job_logic.failed_cast(typed)))
    good.write.mode("append").partitionBy(*job_logic.PARTITION_KEYS).parquet(f"{out}/good")
    phases["good records"] = time.perf_counter() - t
    t = time.perf_counter()
    # Spark refuses a query of the corrupt-record column alone (the coalesce also reads a data column); a
    # malformed line may still have some fields parsed (a truncated record), so only the column decides
    malformed = raw.where(F.col("_corrupt_record").isNotNull()).select(
        F.lit("malformed").alias("kind"),
        F.lit("Malformed JSON record").alias("message"),
        F.lit("json reader").alias("stage"),
        F.lit("").alias("info"),
        F.coalesce(F.col("_corrupt_record"), F.col("request_id")).alias("record"),
    )
    errors = malformed.unionByName(job_logic.cast_errors(typed))
    errors.coalesce(1).write.mode("append").json(f"{out}/errors")
    phases["error records"] = time.perf_counter() - t
    return phases


# ----------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------
def spark_session(root: Path) -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("lakeforge-glue-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext._jsc.hadoopConfiguration().set("fs.lakeforge.root", str(root))
    return spark


def set_python_typing(enabled: bool) -> None:
    """Switch the DynamicFrame reader's JVM JSON helpers off (``enabled``) or back on."""
    from jobs.glue import inference

    inference._jvm_missing = "switched off by the benchmark" if enabled else None


def count_output(spark: Any, out_local: Path) -> tuple[int, int]:
    good = spark.read.parquet(str(out_local / "good")).count()
    errors_dir = out_local / "errors"
    has_errors = any(p.stat().st_size for p in errors_dir.glob("part-*"))
    errors = spark.read.json(str(errors_dir)).count() if has_errors else 0
    return int(good), int(errors)


def run_variant(variant: str, spark: Any, glue_context: Any, source: str, out_uri: str, out_local: Path) -> RunResult:
    shutil.rmtree(out_local, ignore_errors=True)
    set_python_typing(variant == PYTHON)
    start = time.perf_counter()
    try:
        if variant == DATAFRAME:
            phases = dataframe_job(spark, source, out_uri)
        else:
            phases = dynamic_frame_job(glue_context, source, out_uri)
    finally:
        set_python_typing(False)
    return RunResult(variant, 0, time.perf_counter() - start, phases)


def summarize(results: list[RunResult], records: int) -> list[VariantSummary]:
    out = []
    for variant in dict.fromkeys(r.variant for r in results):
        mine = [r for r in results if r.variant == variant]
        median = statistics.median(r.seconds for r in mine)
        phases = {p: statistics.median(r.phases[p] for r in mine) for p in mine[0].phases}
        out.append(VariantSummary(variant, [round(r.seconds, 2) for r in mine], median, records / median, phases))
    return out


def print_report(console: Console, meta: dict[str, Any], summaries: list[VariantSummary], ratio: float) -> None:
    console.print(
        f"[bold]lakeforge Glue runtime benchmark[/bold]  {meta['started']}  host {meta['host']} ({meta['cpus']} CPUs)"
        f"  Spark {meta['pyspark']} local[2]"
    )
    console.print(
        f"input: {meta['records']:,} JSON lines ({meta['good']:,} good, {meta['malformed']:,} malformed, "
        f"{meta['failed_casts']:,} failed casts), {meta['input_mb']:.0f} MB in {meta['partitions']} partitions, "
        f"generated in {meta['datagen_seconds']:.1f}s ({meta['records'] / meta['datagen_seconds']:,.0f} lines/s)"
    )
    console.print(
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
        f"{meta['rounds']} alternating round(s) after a warm-up; both outputs: {meta['output_check']}"
    )
    phases = list(summaries[0].phases_median)
    table = RichTable(title="Runs (seconds; median per phase)", title_justify="left")
    table.add_column("variant")
    table.add_column("runs (s)", justify="right")
    table.add_column("median s", justify="right")
    table.add_column("records/s", justify="right")
    for p in phases:
        table.add_column(p, justify="right")
    for s in summaries:
        table.add_row(
            s.variant,
            " ".join(f"{x:.1f}" for x in s.runs),
            f"{s.median_seconds:.1f}",
            f"{s.records_per_s:,.0f}",
            *[f"{s.phases_median[p]:.1f}" for p in phases],
        )
    console.print(table)
    results = RichTable(
        title="Result (ratio = DynamicFrame cost / DataFrame cost; 1.0x = as fast)", title_justify="left"
    )
    for col in ("figure", "DynamicFrame", "DataFrame", "ratio", "goal", "status"):
        results.add_column(col, justify="right" if col in ("DynamicFrame", "DataFrame", "ratio") else "left")
    by_name = {s.variant: s for s in summaries}
    status = "PASS" if ratio < GOAL_MAX_RATIO else f"MISS ({(ratio - 1) * 100:.0f}% overhead)"
    style = "green" if status == "PASS" else "red"
    results.add_row(
        "access-log job, records/s",
        f"{by_name[DYNAMIC].records_per_s:,.0f}",
        f"{by_name[DATAFRAME].records_per_s:,.0f}",
        f"{ratio:.2f}x",
        f"< {GOAL_MAX_RATIO:.2f}x",
        f"[{style}]{status}[/{style}]",
    )
    if PYTHON in by_name:
        py_ratio = by_name[PYTHON].median_seconds / by_name[DATAFRAME].median_seconds
        results.add_row(
            "  with Python typing (helpers off)",
            f"{by_name[PYTHON].records_per_s:,.0f}",
            f"{by_name[DATAFRAME].records_per_s:,.0f}",
            f"{py_ratio:.2f}x",
            "-",
            "[dim]info[/dim]",
        )
    console.print(results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--records", type=int, default=None, help="JSON lines to generate (default 1,000,000; quick 100,000)"
    )
    p.add_argument("--days", type=int, default=2, help="days of dt= partitions (default 2)")
    p.add_argument("--hours", type=int, default=24, help="hour= partitions per day (default 24)")
    p.add_argument("--bad-fraction", type=float, default=0.01, help="share of malformed lines (default 0.01)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3; quick 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100,000 records, one round")
    p.add_argument(
        "--python-inference",
        action="store_true",
        help="also time the DynamicFrame job with the JVM JSON helpers off (pure-Python typing; slow)",
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    p.add_argument("--keep", action="store_true", help="keep the temporary lake (input and outputs)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.records = args.records or (100_000 if args.quick else 1_000_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyspark": dist_version("pyspark"),
        "argv": sys.argv[1:],
        "rounds": args.rounds,
        "loadavg_start": loadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="lakeforge-glue-bench-"))
    root = tmp / "s3"
    results: list[RunResult] = []
    try:
        summary: AccessLogSummary = generate_access_logs(
            SOURCE, args.records, args.days, args.hours, args.seed, args.bad_fraction, object_store_root=root
        )
        meta.update(
            records=summary.records,
            good=summary.good,
            malformed=summary.bad,
            failed_casts=summary.latency_uncastable,
            partitions=len(summary.partitions),
            input_mb=summary.bytes / 1e6,
            datagen_seconds=summary.seconds,
        )
        spark = spark_session(root)
        from jobs.glue.context import GlueContext

        glue_context = GlueContext(spark)
        variants = [DYNAMIC, DATAFRAME] + ([PYTHON] if args.python_inference else [])
        first = summary.partitions[0]
        warm_source = first.uri.rsplit("/", 1)[0] + "/"
        for variant in variants:  # warm-up (JIT, Python workers, class loading), one partition, untimed
            run_variant(variant, spark, glue_context, warm_source, "s3://bench/warmup", root / "bench" / "warmup")
        expected = (summary.good - summary.latency_uncastable, summary.bad + summary.latency_uncastable)
        for round_no in range(1, args.rounds + 1):
            order = variants if round_no % 2 else list(reversed(variants))
            for variant in order:
                out_local = root / "bench" / "out"
                result = run_variant(variant, spark, glue_context, SOURCE, "s3://bench/out", out_local)
                result.round = round_no
                result.good, result.errors = count_output(spark, out_local)
                log.info("round %d %s: %.1fs %s", round_no, variant, result.seconds, result.phases)
                if (result.good, result.errors) != expected:
                    raise RuntimeError(
                        f"{variant} wrote {result.good} good and {result.errors} error records, expected {expected}"
                    )
                results.append(result)
        meta["output_check"] = f"{expected[0]:,} good + {expected[1]:,} error records, as generated"
    finally:
        if args.keep:
            log.info("kept the temporary lake under %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_end"] = loadavg()
    summaries = summarize(results, meta["records"])
    by_name = {s.variant: s for s in summaries}
    ratio = by_name[DYNAMIC].median_seconds / by_name[DATAFRAME].median_seconds
    print_report(console, meta, summaries, ratio)
    return {
        "meta": meta,
        "goals": {"max_dynamicframe_over_dataframe_ratio": GOAL_MAX_RATIO},
        "ratio": ratio,
        "status": "PASS" if ratio < GOAL_MAX_RATIO else "MISS",
        "variants": [asdict(s) for s in summaries],
        "runs": [asdict(r) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("py4j", "jobs.glue", "jobs.datagen"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 160)
    results = run(args, console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log.info("results written to %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
