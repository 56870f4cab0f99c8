"""``DynamicFrameCollection``: a named set of DynamicFrames (``awsglue.dynamicframe.DynamicFrameCollection``).

Transforms that produce several frames (``relationalize``, ``split_fields``, ``split_rows``)
return one; ``SelectFromCollection``, ``MapToCollection`` and ``FlatMap`` consume it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, KeysView, ValuesView
from typing import Any

log = logging.getLogger(__name__)


def _dynamic_frame_class() -> Any:
    from jobs.glue.dynamicframe import DynamicFrame

    return DynamicFrame


def _spark_of(glue_ctx: Any) -> Any:
    for attr in ("spark_session", "sparkSession"):
        session = getattr(glue_ctx, attr, None)
        if session is not None:
            return session
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        raise RuntimeError("DynamicFrameCollection: no SparkSession (the glue context has none and none is active)")
    return active


class DynamicFrameCollection:
    """Frames by name. Built from a dict ``{name: frame}`` or a list of frames (keyed by ``frame.name``)."""

    def __init__(self, dynamic_frames: dict[str, Any] | list[Any], glue_ctx: Any) -> None:
        if isinstance(dynamic_frames, dict):
            frames = dict(dynamic_frames)
        elif isinstance(dynamic_frames, (list, tuple)):
            frames = {}
            for frame in dynamic_frames:
                name = getattr(frame, "name", None)
                if not isinstance(name, str):
                    raise TypeError(f"DynamicFrameCollection: {frame!r} has no name to key it by")
                frames[name] = frame
        else:
            raise TypeError(
                f"DynamicFrameCollection takes a dict or a list of DynamicFrames, got {type(dynamic_frames).__name__}"
            )
        self._df_dict: dict[str, Any] = frames
        self._glue_ctx = glue_ctx

    @property
    def glue_ctx(self) -> Any:
        return self._glue_ctx

    def __getitem__(self, key: str) -> Any:
        return self._df_dict[key]

    def __len__(self) -> int:
        return len(self._df_dict)

    def __iter__(self) -> Iterator[str]:
        return iter(self._df_dict)

    def __contains__(self, key: object) -> bool:
        return key in self._df_dict

    def __repr__(self) -> str:
        return f"DynamicFrameCollection({list(self._df_dict)})"

    def keys(self) -> KeysView[str]:
        return self._df_dict.keys()

    def values(self) -> ValuesView[Any]:
        return self._df_dict.values()

    def items(self) -> Any:
        return self._df_dict.items()

    def select(self, key: str, transformation_ctx: str = "") -> Any:
        """The frame called ``key``; an empty DynamicFrame (not an error) when there is none, as in Glue."""
        if key in self._df_dict:
            return self._df_dict[key]
        log.info("DynamicFrameCollection.select: no frame %r (have %s); returning an empty frame", key, list(self))
        from pyspark.sql.types import StructType

        empty = _spark_of(self._glue_ctx).createDataFrame([], StructType([]))
        return _dynamic_frame_class().fromDF(empty, self._glue_ctx, key)

    def map(self, callable: Callable[[Any, str], Any], transformation_ctx: str = "") -> DynamicFrameCollection:  # noqa: A002
        """Apply ``callable(frame, transformation_ctx + ":" + key)`` to every frame; same keys."""
        frame_class = _dynamic_frame_class()
        out: dict[str, Any] = {}
        for key, frame in self._df_dict.items():
            result = callable(frame, f"{transformation_ctx}:{key}")
            if not isinstance(result, frame_class):
                raise TypeError(
                    f"DynamicFrameCollection.map: the callable must return a DynamicFrame, "
                    f"got {type(result).__name__} for {key!r}"
                )
            out[key] = result
        return DynamicFrameCollection(out, self._glue_ctx)

    def flatmap(self, f: Callable[[Any, str], Any], transformation_ctx: str = "") -> DynamicFrameCollection:
        """Apply ``f(frame, transformation_ctx + ":" + key)`` to every frame and flatten the results.

        A DynamicFrame result is keyed by its name (the original key when it has none); a
        collection result contributes all its frames under their keys.
        """
        frame_class = _dynamic_frame_class()
        out: dict[str, Any] = {}

        def put(name: str, frame: Any) -> None:
            if name in out:
                log.warning("DynamicFrameCollection.flatmap: two results are called %r; the later one wins", name)
            out[name] = frame

        for key, frame in self._df_dict.items():
            result = f(frame, f"{transformation_ctx}:{key}")
            if isinstance(result, DynamicFrameCollection):
                for sub_key, sub_frame in result.items():
                    put(sub_key, sub_frame)
            elif isinstance(result, frame_class):
                put(getattr(result, "name", "") or key, result)
            else:
                raise TypeError(
                    f"DynamicFrameCollection.flatmap: f must return a DynamicFrame or a DynamicFrameCollection, "
                    f"got {type(result).__name__} for {key!r}"
                )
        return DynamicFrameCollection(out, self._glue_ctx)
