"""``awsglueml.transforms``: ``FillMissingValues``, ``FindMatches`` and ``FindIncrementalMatches`` from
lakeforge's ``jobs.glue.transforms`` (resolved when first used, so this imports before they exist)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FillMissingValues", "FindMatches", "FindIncrementalMatches"]  # noqa: F822 - resolved by __getattr__


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        transforms = importlib.import_module("jobs.glue.transforms")
    except ModuleNotFoundError as exc:
        if exc.name != "jobs.glue.transforms":
            raise
        raise ImportError(f"awsglueml.transforms.{name}: lakeforge's jobs.glue.transforms is not available") from None
    if not hasattr(transforms, name):
        raise ImportError(f"awsglueml.transforms.{name}: jobs.glue.transforms does not provide {name}")
    value = getattr(transforms, name)
    globals()[name] = value
    return value
