"""``awsglue`` for scripts written against AWS Glue, served by lakeforge's runtime (``jobs.glue``).

Each submodule is the ``jobs.glue`` module of the same name (see ``_alias``): ``awsglue.context``,
``awsglue.dynamicframe``, ``awsglue.transforms``, ``awsglue.utils``, ``awsglue.job``,
``awsglue.gluetypes``, ``awsglue.functions``. Setup puts ``jobs/compat`` on ``sys.path`` of every
interpreter of the environment (``lakeforge-awsglue.pth``).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """``from awsglue import DynamicFrame`` (as Glue Studio scripts write it), resolved on first use."""
    if name in ("DynamicFrame", "DynamicFrameCollection"):
        from awsglue import dynamicframe

        return getattr(dynamicframe, name)
    raise AttributeError(f"module 'awsglue' has no attribute {name!r}")
