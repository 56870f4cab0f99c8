"""``awsgluedq.transforms.EvaluateDataQuality``: importable and constructible so Glue Studio scripts load;
evaluating a DQDL ruleset raises NotImplementedError when it is called."""

from __future__ import annotations

from typing import Any

_MESSAGE = (
    "EvaluateDataQuality (AWS Glue Data Quality, DQDL rulesets) is not implemented by lakeforge: remove the "
    "data-quality step from the script or check the frame with DynamicFrame/DataFrame operations"
)


class EvaluateDataQuality:
    """Glue Data Quality's transform. ``process_rows`` and ``apply`` raise NotImplementedError."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def process_rows(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_MESSAGE)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_MESSAGE)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_MESSAGE)

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"name": cls.__name__, "description": "AWS Glue Data Quality (not implemented by lakeforge)"}


__all__ = ["EvaluateDataQuality"]
