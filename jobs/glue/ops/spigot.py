"""Glue's ``spigot``: write a sample of a frame's records to a path as JSON, for inspection."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame

from jobs.glue.ops._frame import col, data_columns, good_rows

log = logging.getLogger(__name__)

DEFAULT_TOPK = 100


def spigot(df: DataFrame, path: str, options: Mapping[str, Any] | None = None) -> None:
    """Write a sample of the good records of ``df`` under ``path`` as JSON lines (one file).

    Options (as in Glue): ``topk`` (how many records at most, default 100) and ``prob`` (the
    probability that a record is taken, default 1.0: the first ``topk`` records). Both may be given:
    sample with ``prob``, then keep at most ``topk``. ``seed`` (lakeforge extension) makes the
    ``prob`` sample reproducible. Error records are not sampled. An existing sample at ``path`` is
    replaced.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"spigot needs a target path, got {path!r}")
    opts = dict(options or {})
    unknown = set(opts) - {"topk", "prob", "seed"}
    if unknown:
        log.warning("spigot ignores unknown options %s", sorted(unknown))
    topk = _int_option(opts, "topk", DEFAULT_TOPK)
    prob = _float_option(opts, "prob", 1.0)
    if topk < 0:
        raise ValueError(f"spigot option topk must be >= 0, got {topk}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"spigot option prob must be within [0, 1], got {prob}")
    sample = good_rows(df).select(*[col(c) for c in data_columns(df)])
    if prob < 1.0:
        seed = opts.get("seed")
        sample = sample.sample(withReplacement=False, fraction=prob, seed=int(seed) if seed is not None else None)
    sample = sample.limit(topk)
    sample.coalesce(1).write.mode("overwrite").json(path)
    log.info("spigot wrote a sample (topk=%d, prob=%s) to %s", topk, prob, path)


def _int_option(opts: Mapping[str, Any], name: str, default: int) -> int:
    raw = opts.get(name, default)
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spigot option {name} must be an integer, got {raw!r}") from exc


def _float_option(opts: Mapping[str, Any], name: str, default: float) -> float:
    raw = opts.get(name, default)
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spigot option {name} must be a number, got {raw!r}") from exc
