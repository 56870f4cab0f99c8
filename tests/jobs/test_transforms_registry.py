"""The transform classes' registry and self-description (no DynamicFrame needed)."""

from __future__ import annotations

import json

import pytest

import jobs.glue.transforms as transforms
from jobs.glue.transforms import GlueTransform, describe_transform, get_transform

EXPECTED = {
    "ApplyMapping",
    "ResolveChoice",
    "DropFields",
    "DropNullFields",
    "SelectFields",
    "RenameField",
    "SplitFields",
    "SplitRows",
    "Join",
    "Filter",
    "Map",
    "Relationalize",
    "UnnestFrame",
    "Unbox",
    "Spigot",
    "ErrorsAsDynamicFrame",
    "SelectFromCollection",
    "MapToCollection",
    "FlatMap",
    "Repartition",
    "Coalesce",
    "Union",
    "FillMissingValues",
    "FindMatches",
    "FindIncrementalMatches",
}


def test_star_import_gives_every_transform() -> None:
    namespace: dict[str, object] = {}
    exec("from jobs.glue.transforms import *", namespace)
    assert EXPECTED <= set(namespace)
    assert {"GlueTransform", "get_transform", "describe_transform"} <= set(namespace)
    for name in EXPECTED:
        cls = namespace[name]
        assert isinstance(cls, type) and issubclass(cls, GlueTransform)
        assert cls.name() == name


def test_every_transform_describes_itself() -> None:
    for name in EXPECTED:
        cls = getattr(transforms, name)
        description = cls.describe()["transform"]
        assert description["name"] == name
        assert description["location"] == "internal"
        assert description["description"], name
        assert description["returns"]["type"] in ("DynamicFrame", "DynamicFrameCollection"), name
        args = description["args"]
        assert args and all(set(a) == {"name", "type", "description", "optional", "defaultValue"} for a in args)
        # the described arguments are the ones __call__ takes, in order
        code = cls.__call__.__code__
        params = list(code.co_varnames[1 : code.co_argcount])
        described = [a["name"] for a in args if a["name"] != "base_kwargs"]
        kwonly = {"separator", "escaper", "skipFirst", "withSchema", "withHeader"}
        assert [d for d in described if d not in kwonly] == params, name


def test_get_transform_is_case_insensitive_and_none_for_unknown() -> None:
    t = get_transform("applymapping")
    assert isinstance(t, transforms.ApplyMapping)
    assert t == transforms.ApplyMapping() and repr(t) == "<Transform: ApplyMapping>"
    assert get_transform("NoSuchTransform") is None
    doc = json.loads(describe_transform("SplitRows"))
    assert doc["transform"]["name"] == "SplitRows"
    assert [a["name"] for a in doc["transform"]["args"]][:4] == ["frame", "comparison_dict", "name1", "name2"]
    assert json.loads(describe_transform("nope")) == {}


def test_apply_instantiates_and_calls() -> None:
    class Echo(GlueTransform):
        def __call__(self, a: int, b: int = 2) -> tuple[int, int]:
            return (a, b)

    assert Echo.apply(1, b=5) == (1, 5)
    with pytest.raises(NotImplementedError):
        GlueTransform.apply()
