"""Serve a ``jobs.glue`` module under its ``awsglue`` name.

``alias("awsglue.context", "jobs.glue.context")`` replaces the shim module in ``sys.modules`` with the
real one, so ``awsglue.context`` *is* ``jobs.glue.context``: classes, functions and module globals are the
same objects (monkeypatching either name patches both, as Glue's unit-test samples expect).

When the real module does not exist yet, the shim stays and resolves lazily: ``import awsglue.x`` works,
and using a name from it retries the import and raises an ImportError saying which module is missing.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


def _load(target: str) -> ModuleType | None:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name != target:
            raise  # the module exists but one of its own imports is missing: a real error
        return None


def alias(name: str, target: str, *, extra: dict[str, tuple[str, str]] | None = None) -> None:
    """Make module ``name`` be ``target``; ``extra`` maps attribute names to ``(module, attribute)``
    found elsewhere (set on the target module when it lacks them)."""
    shim = sys.modules[name]
    module = _load(target)
    if module is not None:
        _add_extra(module, extra)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, module)
        return

    def __getattr__(attr: str) -> Any:  # noqa: N807 - module-level __getattr__ (PEP 562)
        if attr.startswith("__"):
            raise AttributeError(attr)
        loaded = _load(target)
        if loaded is None:
            if extra and attr in extra:
                module_name, attribute = extra[attr]
                return getattr(importlib.import_module(module_name), attribute)
            raise ImportError(f"{name}.{attr} is not available: lakeforge's {target} is not implemented yet")
        _add_extra(loaded, extra)
        sys.modules[name] = loaded
        return getattr(loaded, attr)

    shim.__getattr__ = __getattr__  # type: ignore[method-assign]


def _add_extra(module: ModuleType, extra: dict[str, tuple[str, str]] | None) -> None:
    for attr, (module_name, attribute) in (extra or {}).items():
        if not hasattr(module, attr):
            setattr(module, attr, getattr(importlib.import_module(module_name), attribute))
