"""Synthetic raw data for the lake's jobs, tests and benchmarks: web access logs as JSON lines.

``generate_access_logs`` writes one file of JSON lines per ``dt=YYYY-MM-DD/hour=HH/`` partition under a
location of the object store (``s3://bucket/prefix``, a ``file:`` URI or a local directory). The records
look like what a web tier ships (a load balancer or an nginx JSON log) and carry the inconsistencies raw
data has, which Glue's per-value typing turns into choice types:

* ``ts`` (ISO-8601 text, UTC, sorted within a partition), ``request_id`` (unique), ``ip``, ``method``,
  ``path``, ``user_agent``, ``referrer`` (a URL, null, or absent), ``bytes`` (an integer);
* ``status``: an integer, but a small share written as a numeric string (``"404"``): a ``choice`` of
  ``int`` and ``string`` that casts to int without loss;
* ``latency_ms``: a float, but a small share a string; half of those are numeric (``"12.345"``, they
  cast), the other half are not (``"timeout"``, ``"n/a"``, ``"-"``: a cast to double fails);
* ``user``: a nested struct ``{id, name, plan, geo: {country, city}}``, null for anonymous requests;
* ``tags``: an array of 0-3 strings.

A ``bad_fraction`` of the lines are malformed (a truncated record, a record with a broken key, a plain
text log line); a file never starts with one, so the crawler classifies every file as JSON.

Everything is deterministic in ``seed``: each partition draws from its own generator seeded by
``(seed, partition index)``, so the same call writes the same bytes. ``records`` is the number of lines
written (good and malformed); the returned :class:`AccessLogSummary` says how many of each, per partition,
and how many values of each kind of inconsistency were written, which is what tests check a job against.

CLI::

    python -m jobs.datagen access-logs --out s3://landing/access_logs --records 1000000 --days 2 --hours 24
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from jobs.glue import storage

log = logging.getLogger(__name__)

DEFAULT_START_DATE = dt.date(2026, 11, 1)
#: Share of ``status`` values written as strings, of ``latency_ms`` values written as strings, and of those
#: latency strings that are not numbers.
STATUS_STRING_SHARE = 0.02
LATENCY_STRING_SHARE = 0.03
LATENCY_UNCASTABLE_SHARE = 0.5

_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")
_METHOD_P = (0.80, 0.12, 0.04, 0.03, 0.01)
_STATUSES = (200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 500, 502, 503)
_STATUS_P = (0.77, 0.03, 0.02, 0.01, 0.02, 0.04, 0.02, 0.01, 0.01, 0.04, 0.015, 0.005, 0.01)
_NO_BODY = frozenset({204, 304})
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.10.1",
    "python-httpx/0.27.2",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "okhttp/4.12.0",
)
_REFERRERS = (
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://t.co/x1y2z3",
)
_PATHS = (
    "/",
    "/index.html",
    "/login",
    "/logout",
    "/cart",
    "/checkout",
    "/static/app.js",
    "/static/app.css",
    "/favicon.ico",
    "/api/v1/health",
)
_API_TEMPLATES = ("/api/v1/items/{}", "/api/v1/users/{}/orders", "/api/v1/search?q=item{}", "/product/{}")
_PLANS = ("free", "pro", "enterprise")
_PLAN_P = (0.7, 0.25, 0.05)
_GEO = (
    ("DE", "Berlin"),
    ("DE", "Munich"),
    ("FR", "Paris"),
    ("US", "New York"),
    ("US", "Seattle"),
    ("GB", "London"),
    ("JP", "Tokyo"),
    ("BR", "Sao Paulo"),
    ("IN", "Bangalore"),
    ("NL", "Amsterdam"),
)
_NAMES = ("ann", "bob", "cy", "dee", "eli", "fay", "gus", "hal", "ivy", "jo", "kai", "liv", "max", "ned", "oz")
_TAGS = ("mobile", "bot", "cached", "canary", "beta", "internal", "cdn", "retry")
_UNCASTABLE_LATENCY = ("timeout", "n/a", "-")
_BAD_KINDS = 3  # truncated record, broken key, plain text line


class DatagenError(ValueError):
    """Arguments the generator cannot honour."""


@dataclass(frozen=True)
class PartitionSummary:
    """One ``dt=/hour=`` partition: its values, file and line counts."""

    dt: str
    hour: str
    uri: str
    good: int
    bad: int
    status_strings: int
    latency_strings: int
    latency_uncastable: int
    bytes: int


@dataclass
class AccessLogSummary:
    """What :func:`generate_access_logs` wrote: totals, and the same per partition (in partition order)."""

    location: str
    seed: int
    records: int
    good: int
    bad: int
    status_strings: int
    latency_strings: int
    latency_uncastable: int
    bytes: int
    seconds: float
    partitions: list[PartitionSummary] = field(default_factory=list)

    @property
    def latency_castable_strings(self) -> int:
        return self.latency_strings - self.latency_uncastable

    def per_partition(self) -> dict[tuple[str, str], PartitionSummary]:
        """Partitions by ``(dt, hour)``."""
        return {(p.dt, p.hour): p for p in self.partitions}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_object_store_root() -> Path:
    """The lake's object-store root, as a Glue job resolves it: ``LAKEFORGE_S3_ROOT``, else the settings'."""
    configured = os.environ.get("LAKEFORGE_S3_ROOT")
    if configured:
        return Path(configured)
    from catalog.settings import get_settings

    return get_settings().object_store_root


def _split_evenly(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _ip_pool(rng: np.random.Generator, size: int) -> list[str]:
    octets = rng.integers(1, 255, size=(size, 4)).tolist()
    return [f"{a}.{b}.{c}.{d}" for a, b, c, d in octets]


def _path_pool(rng: np.random.Generator, size: int) -> list[str]:
    ids = rng.integers(1, 100_000, size=size).tolist()
    templates = rng.integers(0, len(_API_TEMPLATES), size=size).tolist()
    return [*_PATHS, *(_API_TEMPLATES[t].format(i) for t, i in zip(templates, ids, strict=True))]


def _users(rng: np.random.Generator, size: int) -> list[dict[str, Any]]:
    names = rng.integers(0, len(_NAMES), size=size).tolist()
    plans = rng.choice(len(_PLANS), size=size, p=_PLAN_P).tolist()
    geos = rng.integers(0, len(_GEO), size=size).tolist()
    users = []
    for uid, (n, p, g) in enumerate(zip(names, plans, geos, strict=True), start=1000):
        country, city = _GEO[g]
        users.append(
            {"id": uid, "name": f"{_NAMES[n]}{uid}", "plan": _PLANS[p], "geo": {"country": country, "city": city}}
        )
    return users


def _bad_line(kind: int, good_line: bytes, index: int) -> bytes:
    if kind == 0:  # a truncated record (the writer died mid-line)
        return good_line[: max(2, len(good_line) // 2)]
    if kind == 1:  # a record with a broken key
        return b'{"ts": "' + str(index).encode() + b'", method: GET, "status": 200}'
    return b"GET /index.html HTTP/1.1 200 - not json"  # a plain text log line in the JSON stream


def _partition_lines(
    rng: np.random.Generator,
    day: dt.date,
    hour: int,
    count: int,
    bad_fraction: float,
    id_prefix: str,
    pools: tuple[list[str], list[str], list[dict[str, Any]]],
) -> tuple[bytes, dict[str, int]]:
    """The bytes of one partition's file and its counts."""
    ips, paths, users = pools
    bad = min(round(count * bad_fraction), max(count - 1, 0))
    good = count - bad
    millis = np.sort(rng.integers(0, 3_600_000, size=good)).tolist()
    ip_idx = rng.integers(0, len(ips), size=good).tolist()
    methods = rng.choice(len(_METHODS), size=good, p=_METHOD_P).tolist()
    path_idx = (rng.zipf(1.3, size=good) - 1).tolist()
    statuses = rng.choice(len(_STATUSES), size=good, p=_STATUS_P).tolist()
    status_as_text = (rng.random(good) < STATUS_STRING_SHARE).tolist()
    sizes = np.minimum(rng.lognormal(8.0, 1.5, size=good), 50_000_000).astype(np.int64).tolist()
    latencies = np.round(rng.lognormal(3.5, 0.9, size=good), 3).tolist()
    latency_kind = rng.random(good)
    latency_text = (latency_kind < LATENCY_STRING_SHARE).tolist()
    latency_bad = (latency_kind < LATENCY_STRING_SHARE * LATENCY_UNCASTABLE_SHARE).tolist()
    uncastable = rng.integers(0, len(_UNCASTABLE_LATENCY), size=good).tolist()
    agents = rng.integers(0, len(_AGENTS), size=good).tolist()
    referrer_roll = rng.random(good).tolist()
    referrers = rng.integers(0, len(_REFERRERS), size=good).tolist()
    user_idx = rng.integers(0, len(users), size=good).tolist()
    anonymous = (rng.random(good) < 0.3).tolist()
    tag_counts = rng.choice(4, size=good, p=(0.5, 0.3, 0.15, 0.05)).tolist()
    tag_idx = rng.integers(0, len(_TAGS), size=(good, 3)).tolist()

    prefix = f"{day.isoformat()}T{hour:02d}:"
    n_paths = len(paths)
    lines: list[bytes] = []
    counts = {"status_strings": 0, "latency_strings": 0, "latency_uncastable": 0}
    dumps = orjson.dumps
    for i in range(good):
        ms = millis[i]
        minute, rest = divmod(ms, 60_000)
        second, milli = divmod(rest, 1000)
        status: int | str = _STATUSES[statuses[i]]
        size = 0 if status in _NO_BODY else sizes[i]
        if status_as_text[i]:
            status = str(status)
            counts["status_strings"] += 1
        latency: float | str = latencies[i]
        if latency_text[i]:
            counts["latency_strings"] += 1
            if latency_bad[i]:
                latency = _UNCASTABLE_LATENCY[uncastable[i]]
                counts["latency_uncastable"] += 1
            else:
                latency = f"{latency:.3f}"
        record: dict[str, Any] = {
            "ts": f"{prefix}{minute:02d}:{second:02d}.{milli:03d}Z",
            "request_id": f"{id_prefix}{i:07d}",
            "ip": ips[ip_idx[i]],
            "method": _METHODS[methods[i]],
            "path": paths[path_idx[i] % n_paths],
            "status": status,
            "bytes": size,
            "latency_ms": latency,
            "user_agent": _AGENTS[agents[i]],
        }
        roll = referrer_roll[i]
        if roll < 0.4:
            record["referrer"] = _REFERRERS[referrers[i]]
        elif roll < 0.8:
            record["referrer"] = None
        record["user"] = None if anonymous[i] else users[user_idx[i]]
        record["tags"] = [_TAGS[t] for t in tag_idx[i][: tag_counts[i]]]
        lines.append(dumps(record))
    if bad:
        # never at line 0: a file starting with a non-JSON line would not classify as JSON
        positions = np.sort(rng.choice(np.arange(1, good + 1), size=bad, replace=True)).tolist()
        kinds = rng.integers(0, _BAD_KINDS, size=bad).tolist()
        out: list[bytes] = []
        j = 0
        for i, line in enumerate(lines):
            while j < bad and positions[j] == i:
                out.append(_bad_line(kinds[j], lines[i - 1], j))
                j += 1
            out.append(line)
        while j < bad:
            out.append(_bad_line(kinds[j], lines[-1], j))
            j += 1
        lines = out
    data = b"\n".join(lines) + b"\n" if lines else b""
    return data, {"good": good, "bad": bad, **counts}


def generate_access_logs(
    root_or_uri: str | Path,
    records: int,
    days: int = 1,
    hours_per_day: int = 24,
    seed: int = 0,
    bad_fraction: float = 0.0,
    start_date: dt.date | str = DEFAULT_START_DATE,
    *,
    object_store_root: Path | str | None = None,
) -> AccessLogSummary:
    """Write ``records`` JSON lines (good and malformed) of access logs under ``root_or_uri``, partitioned
    ``dt=YYYY-MM-DD/hour=HH/`` over ``days`` days from ``start_date`` and the first ``hours_per_day`` hours
    of each day, one file ``part-<seed>.json`` per partition (rewritten when it exists).

    :param root_or_uri: ``s3://bucket/prefix`` (below ``object_store_root``, default the lake's), a ``file:``
        URI or a local directory.
    :param bad_fraction: the share of lines that are malformed (in ``[0, 1)``), per partition.
    :returns: the counts written, in total and per partition.
    """
    if records < 0:
        raise DatagenError(f"records must be >= 0, got {records}")
    if days < 1:
        raise DatagenError(f"days must be >= 1, got {days}")
    if not 1 <= hours_per_day <= 24:
        raise DatagenError(f"hours_per_day must be within 1..24, got {hours_per_day}")
    if not 0.0 <= bad_fraction < 1.0:
        raise DatagenError(f"bad_fraction must be within [0, 1), got {bad_fraction}")
    start = dt.date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
    location = str(root_or_uri)
    root = Path(object_store_root) if object_store_root is not None else None
    if storage.is_s3(location) and root is None:
        root = default_object_store_root()
    base = storage.local_path(location, root or Path("."))
    begun = time.perf_counter()

    pool_rng = np.random.default_rng([seed, 0xACCE55])
    pools = (_ip_pool(pool_rng, 5000), _path_pool(pool_rng, 2000), _users(pool_rng, 3000))
    slots = [(start + dt.timedelta(days=d), h) for d in range(days) for h in range(hours_per_day)]
    summary = AccessLogSummary(location, seed, 0, 0, 0, 0, 0, 0, 0, 0.0)
    for index, ((day, hour), count) in enumerate(zip(slots, _split_evenly(records, len(slots)), strict=True)):
        rng = np.random.default_rng([seed, index])
        data, counts = _partition_lines(rng, day, hour, count, bad_fraction, f"{seed:x}-{index:05d}-", pools)
        relative = f"dt={day.isoformat()}/hour={hour:02d}"
        directory = base / relative
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"part-{seed}.json"
        tmp = directory / f".part-{seed}.json.tmp"
        tmp.write_bytes(data)
        tmp.replace(target)
        part = PartitionSummary(
            dt=day.isoformat(),
            hour=f"{hour:02d}",
            uri=storage.join(location, relative, target.name),
            bytes=len(data),
            **counts,
        )
        summary.partitions.append(part)
        summary.good += part.good
        summary.bad += part.bad
        summary.status_strings += part.status_strings
        summary.latency_strings += part.latency_strings
        summary.latency_uncastable += part.latency_uncastable
        summary.bytes += part.bytes
    summary.records = summary.good + summary.bad
    summary.seconds = time.perf_counter() - begun
    log.info(
        "access logs: %d lines (%d good, %d malformed) in %d partitions, %.1f MB under %s in %.2f s",
        summary.records,
        summary.good,
        summary.bad,
        len(summary.partitions),
        summary.bytes / 1e6,
        location,
        summary.seconds,
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.datagen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    logs = sub.add_parser("access-logs", help="web access logs as JSON lines, partitioned dt=/hour=")
    logs.add_argument("--out", required=True, help="s3://bucket/prefix, file: URI or local directory")
    logs.add_argument("--records", type=int, default=100_000, help="lines to write, good and malformed")
    logs.add_argument("--days", type=int, default=1)
    logs.add_argument("--hours", type=int, default=24, help="hours per day (the first H hours)")
    logs.add_argument("--seed", type=int, default=0)
    logs.add_argument("--bad-fraction", type=float, default=0.0, help="share of malformed lines")
    logs.add_argument("--start-date", default=DEFAULT_START_DATE.isoformat(), help="first dt (YYYY-MM-DD)")
    logs.add_argument("--object-store-root", default=None, help="the directory s3:// buckets live in")
    logs.add_argument("--summary-json", default=None, help="also write the summary (with partitions) here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = generate_access_logs(
            args.out,
            args.records,
            args.days,
            args.hours,
            args.seed,
            args.bad_fraction,
            args.start_date,
            object_store_root=args.object_store_root,
        )
    except (DatagenError, storage.StorageError, ValueError) as exc:
        parser.error(str(exc))
    if args.summary_json:
        Path(args.summary_json).write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
