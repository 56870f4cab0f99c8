"""The job arguments of the last :func:`awsglue.utils.getResolvedOptions` call in this process.

Glue keeps them in a module global (``_global_args``) that transforms read, e.g. ``Relationalize``
falls back to ``--TempDir`` when no staging path is given. ``getResolvedOptions`` calls
:func:`set_last_args`; readers call :func:`last_args` (an empty dict when it was never called).
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_last: dict[str, Any] = {}


def set_last_args(args: dict[str, Any]) -> None:
    """Remember ``args`` (a copy) as the process's job arguments."""
    global _last
    with _lock:
        _last = dict(args)


def last_args() -> dict[str, Any]:
    """A copy of the arguments of the last ``getResolvedOptions`` call; empty when there was none."""
    with _lock:
        return dict(_last)
