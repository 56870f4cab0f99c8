"""A Ray cluster in its own process, for the tests of the ``ray`` (attach) backend.

``python -m tests.cluster.external_ray DIR`` starts a head (``master`` resource) and one worker labelled as a
core node, with :class:`cluster.ray_provider.LocalRayProvider` (whose raylets survive a loaded 2-core machine,
where ``ray start`` may abort: its raylet waits only 15 s for the dashboard agent), writes
``DIR/address.json`` and runs until SIGTERM (clean shutdown) or SIGKILL (its Ray processes die with it, as a
crashed head's cluster does).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from cluster.provider import NodeSpec
from cluster.ray_provider import LocalRayProvider

GIB = 1024**3
HEAD = NodeSpec("ext-head", "MASTER", "m5.xlarge", "ON_DEMAND", 1.0, GIB)
CORE = NodeSpec("ext-core", "CORE", "m5.xlarge", "ON_DEMAND", 1.0, GIB)


def main(directory: str) -> int:
    root = Path(directory)
    provider = LocalRayProvider(root / "ray-cluster", timeout=120)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        provider.start(HEAD)
        provider.add_node(CORE)
        (root / "address.json").write_text(json.dumps({"address": provider.address}))
        stop.wait()
    finally:
        provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
