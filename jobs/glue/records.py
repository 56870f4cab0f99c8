"""``DynamicRecord``: the Python view of one record that ``DynamicFrame.map``/``filter`` functions receive."""

from __future__ import annotations

from typing import Any


class DynamicRecord(dict[str, Any]):
    """A record: a ``dict`` whose keys are also attributes (``rec.status`` is ``rec["status"]``).

    A missing attribute raises ``KeyError`` like a missing key does (Glue's behaviour, and the error
    ``filter`` treats as "drop the record").
    """

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return self[attr]

    def __setattr__(self, attr: str, value: Any) -> None:
        self[attr] = value

    def __delattr__(self, attr: str) -> None:
        del self[attr]

    def __reduce__(self) -> tuple[Any, ...]:
        return (DynamicRecord, (dict(self),))


def wrap_record(values: dict[str, Any]) -> DynamicRecord:
    """A DynamicRecord of a plain dict, nested dicts wrapped one level deep (as Glue does)."""
    return DynamicRecord({k: DynamicRecord(v) if type(v) is dict else v for k, v in values.items()})


def unwrap_record(value: Any) -> Any:
    """Plain dicts and lists again (DynamicRecords at any depth become dicts)."""
    if isinstance(value, dict):
        return {k: unwrap_record(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap_record(v) for v in value]
    return value
