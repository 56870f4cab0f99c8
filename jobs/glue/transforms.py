"""The transform classes (served as ``awsglue.transforms``; the ML ones also as ``awsglueml.transforms``).

Every class is a :class:`GlueTransform`: ``Class.apply(...)`` instantiates it and calls it,
``Class.name()`` and the ``describe*()`` class methods describe it. Each one delegates to the
DynamicFrame (or DynamicFrameCollection) method of the same meaning, as Glue's do, except
``FillMissingValues`` and ``FindMatches``, which run the local stand-ins of ``jobs.glue.ops.ml``.

Differences from Glue: ``Union`` works (Glue's Python class references an undefined name); the
ML transforms run locally (see ``jobs.glue.ops.ml``); ``DropNullFields`` logs its ``null_fields``
list instead of printing it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

log = logging.getLogger(__name__)

_FRAME = "DynamicFrame"
_COLLECTION = "DynamicFrameCollection"


def _arg(name: str, type_: str, description: str, optional: bool = True, default: str | None = None) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, "optional": optional, "defaultValue": default}


_CTX = _arg(
    "transformation_ctx", "String", "A unique string that is used to identify stats / state information", True, ""
)
_INFO = _arg("info", "String", "Any string to be associated with errors in the transformation", True, '""')
_STAGE = _arg(
    "stageThreshold", "Integer", "Max number of errors in the transformation until processing will error out", True, "0"
)
_TOTAL = _arg("totalThreshold", "Integer", "Max number of errors total until processing will error out.", True, "0")
_COMMON = [_CTX, _INFO, _STAGE, _TOTAL]


def _frame_arg(name: str = "frame", description: str = "The DynamicFrame to transform") -> dict[str, Any]:
    return _arg(name, _FRAME, description, False, None)


class GlueTransform:
    """Base of the transforms: ``apply`` instantiates and calls; ``describe*`` describe."""

    _description: ClassVar[str] = ""
    _args: ClassVar[list[dict[str, Any]]] = []
    _returns: ClassVar[dict[str, str]] = {}
    _errors: ClassVar[list[dict[str, str]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the transform and call it with the arguments."""
        return cls()(*args, **kwargs)

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    @classmethod
    def describeArgs(cls) -> list[dict[str, Any]]:  # noqa: N802
        """``[{"name", "type", "description", "optional", "defaultValue"}, ...]``."""
        return [dict(a) for a in cls._args]

    @classmethod
    def describeReturn(cls) -> dict[str, str]:  # noqa: N802
        """``{"type", "description"}`` of the result."""
        return dict(cls._returns)

    @classmethod
    def describeTransform(cls) -> str:  # noqa: N802
        return cls._description

    @classmethod
    def describeErrors(cls) -> list[dict[str, str]]:  # noqa: N802
        """``[{"type", "description"}, ...]`` of the exceptions the transform raises."""
        return [dict(e) for e in cls._errors]

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "transform": {
                "name": cls.name(),
                "args": cls.describeArgs(),
                "returns": cls.describeReturn(),
                "description": cls.describeTransform(),
                "raises": cls.describeErrors(),
                "location": "internal",
            }
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"<Transform: {self.name()}>"


def _frame_out(description: str) -> dict[str, str]:
    return {"type": _FRAME, "description": description}


def _collection_out(description: str) -> dict[str, str]:
    return {"type": _COLLECTION, "description": description}


_VALUE_ERROR = [{"type": "ValueError", "description": "An argument is invalid (a missing field, a bad option)."}]


# --------------------------------------------------------------------------------------------
# Field transforms
# --------------------------------------------------------------------------------------------


class ApplyMapping(GlueTransform):
    _description = "Apply a declarative mapping to this DynamicFrame: select, rename and cast fields."
    _args = [
        _frame_arg(),
        _arg("mappings", "List", "(source path, source type, target path, target type) tuples", False),
        _arg("case_sensitive", "Boolean", "Whether source paths match case-sensitively", True, "False"),
        *_COMMON,
    ]
    _returns = _frame_out("The DynamicFrame after the mapping; unmapped fields are dropped.")
    _errors = _VALUE_ERROR

    def __call__(
        self,
        frame: Any,
        mappings: Sequence[Any],
        case_sensitive: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.apply_mapping(
            mappings,
            case_sensitive=case_sensitive,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class ResolveChoice(GlueTransform):
    _description = "Resolve choice types: cast, project, make_cols, make_struct or match_catalog."
    _args = [
        _frame_arg(),
        _arg("specs", "List", "(path, action) pairs", True, "None"),
        _arg("choice", "String", "One action for every choice field", True, '""'),
        _arg("database", "String", "Catalog database for match_catalog", True, "None"),
        _arg("table_name", "String", "Catalog table for match_catalog", True, "None"),
        *_COMMON,
        _arg("catalog_id", "String", "Catalog id for match_catalog", True, "None"),
    ]
    _returns = _frame_out("The DynamicFrame with the choices resolved.")
    _errors = _VALUE_ERROR

    def __call__(
        self,
        frame: Any,
        specs: Sequence[Any] | None = None,
        choice: str = "",
        database: str | None = None,
        table_name: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        catalog_id: str | None = None,
    ) -> Any:
        return frame.resolveChoice(
            specs=specs,
            choice=choice,
            database=database,
            table_name=table_name,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
            catalog_id=catalog_id,
        )


class DropFields(GlueTransform):
    _description = "Drop fields (full paths, nested ones included) from a DynamicFrame."
    _args = [_frame_arg(), _arg("paths", "List[String]", "Paths of the fields to drop", False), *_COMMON]
    _returns = _frame_out("The DynamicFrame without those fields.")

    def __call__(
        self,
        frame: Any,
        paths: Sequence[str],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.drop_fields(
            paths,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class SelectFields(GlueTransform):
    _description = "Keep only the given fields of a DynamicFrame."
    _args = [_frame_arg(), _arg("paths", "List[String]", "Paths of the fields to keep", False), *_COMMON]
    _returns = _frame_out("The DynamicFrame with only those fields.")

    def __call__(
        self,
        frame: Any,
        paths: Sequence[str],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.select_fields(
            paths,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class RenameField(GlueTransform):
    _description = "Rename a field (full paths; backticks around names containing dots)."
    _args = [
        _frame_arg(),
        _arg("old_name", "String", "Full path of the field to rename", False),
        _arg("new_name", "String", "Its new full path", False),
        *_COMMON,
    ]
    _returns = _frame_out("The DynamicFrame with the field renamed.")

    def __call__(
        self,
        frame: Any,
        old_name: str,
        new_name: str,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.rename_field(
            old_name,
            new_name,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class SplitFields(GlueTransform):
    _description = "Split a DynamicFrame in two by fields: the given paths, and the rest."
    _args = [
        _frame_arg(),
        _arg("paths", "List[String]", "Paths of the fields of the first frame", False),
        _arg("name1", "String", "Name of the first frame (default: the frame's name + '1')", True, "None"),
        _arg("name2", "String", "Name of the second frame (default: the frame's name + '2')", True, "None"),
        *_COMMON,
    ]
    _returns = _collection_out("{name1: the selected fields, name2: the other fields}")

    def __call__(
        self,
        frame: Any,
        paths: Sequence[str],
        name1: str | None = None,
        name2: str | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        base = getattr(frame, "name", "") or "frame"
        return frame.split_fields(
            paths,
            name1 or f"{base}1",
            name2 or f"{base}2",
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class SplitRows(GlueTransform):
    _description = "Split a DynamicFrame in two by rows: those matching every comparison, and the rest."
    _args = [
        _frame_arg(),
        _arg("comparison_dict", "Dictionary", '{path: {operator: value}}, e.g. {"age": {">": 10, "<": 20}}', False),
        _arg("name1", "String", "Name of the frame of matching records", True, "frame1"),
        _arg("name2", "String", "Name of the frame of the other records", True, "frame2"),
        *_COMMON,
    ]
    _returns = _collection_out("{name1: matching records, name2: the other records}")
    _errors = [{"type": "ValueError", "description": "Unknown comparison operator or field."}]

    def __call__(
        self,
        frame: Any,
        comparison_dict: Mapping[str, Mapping[str, Any]],
        name1: str = "frame1",
        name2: str = "frame2",
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.split_rows(
            comparison_dict,
            name1,
            name2,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Join(GlueTransform):
    _description = "Equi-join two DynamicFrames on keys; both frames' key fields are kept."
    _args = [
        _frame_arg("frame1", "The first DynamicFrame"),
        _frame_arg("frame2", "The second DynamicFrame"),
        _arg("keys1", "List[String]", "Key paths of frame1", False),
        _arg("keys2", "List[String]", "Key paths of frame2", False),
        _CTX,
    ]
    _returns = _frame_out("The joined DynamicFrame.")
    _errors = [{"type": "ValueError", "description": "A key is missing, or the key lists differ in length."}]

    def __call__(
        self,
        frame1: Any,
        frame2: Any,
        keys1: Sequence[str] | str,
        keys2: Sequence[str] | str,
        transformation_ctx: str = "",
    ) -> Any:
        # like Glue, the transformation context is not passed on
        return frame1.join(keys1, keys2, frame2)


class Spigot(GlueTransform):
    _description = "Write a sample of a DynamicFrame's records (topk / prob) to a path; returns the frame."
    _args = [
        _frame_arg(),
        _arg("path", "String", "Where to write the sample", False),
        _arg("options", "Dictionary", '{"topk": 100} and/or {"prob": 0.1}', True, "{}"),
        _CTX,
    ]
    _returns = _frame_out("The input DynamicFrame, unchanged.")

    def __call__(
        self, frame: Any, path: str, options: Mapping[str, Any] | None = None, transformation_ctx: str = ""
    ) -> Any:
        return frame.spigot(path, dict(options or {}), transformation_ctx=transformation_ctx)


class Filter(GlueTransform):
    _description = "Keep the records for which a Python predicate is true."
    _args = [_frame_arg(), _arg("f", "Function", "Predicate on a DynamicRecord", False), *_COMMON]
    _returns = _frame_out("The records the predicate accepted.")

    def __call__(
        self,
        frame: Any,
        f: Callable[[Any], bool],
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.filter(
            f,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Map(GlueTransform):
    _description = "Apply a Python function to every record."
    _args = [
        _frame_arg(),
        _arg("f", "Function", "DynamicRecord -> DynamicRecord", False),
        _arg("preservesPartitioning", "Boolean", "Whether f keeps the partitioning", True, "False"),
        *_COMMON,
    ]
    _returns = _frame_out("The mapped records (failing records become error records).")

    def __call__(
        self,
        frame: Any,
        f: Callable[[Any], Any],
        preservesPartitioning: bool = False,  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.map(
            f,
            preservesPartitioning=preservesPartitioning,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class DropNullFields(GlueTransform):
    _description = "Drop all null fields in this DynamicFrame"
    _args = [_frame_arg("frame", "Drop all null fields in this DynamicFrame"), *_COMMON]
    _returns = _frame_out("DynamicFrame without null fields.")

    def __call__(
        self,
        frame: Any,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        # the frame drops, recursively, every field that is null in all its good records (see
        # ops.structure.drop_null_fields); Glue's computes NullType paths and calls drop_fields
        return frame.drop_null_fields(
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Relationalize(GlueTransform):
    _description = "Flatten nested structs and pivot arrays into child tables joined by generated keys."
    _args = [
        _frame_arg(),
        _arg("staging_path", "String", "Where intermediates are staged (default: --TempDir)", True, "None"),
        _arg("name", "String", "Name of the root table", True, "roottable"),
        _arg("options", "Dictionary", "Unused", True, "None"),
        *_COMMON,
    ]
    _returns = _collection_out("The root table and one table per array, by name.")

    def __call__(
        self,
        frame: Any,
        staging_path: str | None = None,
        name: str = "roottable",
        options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        if staging_path is None:
            from jobs.glue.runtime_args import last_args

            temp_dir = last_args().get("TempDir")
            if temp_dir:
                staging_path = str(temp_dir)
                log.info("Relationalize: staging under --TempDir %s", staging_path)
        return frame.relationalize(
            name,
            staging_path,
            dict(options or {}),
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class UnnestFrame(GlueTransform):
    _description = "Flatten nested structs into top-level fields named by their dotted paths."
    _args = [_frame_arg(), *_COMMON]
    _returns = _frame_out("The unnested DynamicFrame.")

    def __call__(
        self,
        frame: Any,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.unnest(
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Unbox(GlueTransform):
    _description = "Parse a string field (json or csv) into a struct."
    _args = [
        _frame_arg(),
        _arg("path", "String", "Full path of the string field", False),
        _arg("format", "String", "json or csv", False),
        *_COMMON,
        _arg("separator", "String", "CSV separator", True, ","),
        _arg("escaper", "String", "CSV escape character", True, "None"),
        _arg("skipFirst", "Boolean", "Skip the first line", True, "False"),
        _arg("withSchema", "String", "Schema of the parsed value (StructType JSON)", True, "None"),
        _arg("withHeader", "Boolean", "The value starts with a header line", True, "False"),
    ]
    _returns = _frame_out("The DynamicFrame with the field parsed; unparsable values become error records.")
    _errors = [{"type": "ValueError", "description": "Unsupported format, or the field is not a string."}]

    def __call__(
        self,
        frame: Any,
        path: str,
        format: str,  # noqa: A002
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        **options: Any,
    ) -> Any:
        return frame.unbox(
            path,
            format,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
            **options,
        )


class ErrorsAsDynamicFrame(GlueTransform):
    _description = "The error records of a DynamicFrame (upstream ones included), as a DynamicFrame."
    _args = [_frame_arg()]
    _returns = _frame_out("The error records, nested.")

    def __call__(self, frame: Any) -> Any:
        return frame.errorsAsDynamicFrame()


class Repartition(GlueTransform):
    _description = "Repartition a DynamicFrame into num_partitions partitions."
    _args = [_frame_arg(), _arg("num_partitions", "Integer", "Number of partitions", False), *_COMMON]
    _returns = _frame_out("The repartitioned DynamicFrame.")

    def __call__(
        self,
        frame: Any,
        num_partitions: int,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.repartition(
            num_partitions,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Coalesce(GlueTransform):
    _description = "Reduce a DynamicFrame to num_partitions partitions."
    _args = [
        _frame_arg(),
        _arg("num_partitions", "Integer", "Number of partitions", False),
        _arg("shuffle", "Boolean", "Whether to shuffle", True, "False"),
        *_COMMON,
    ]
    _returns = _frame_out("The coalesced DynamicFrame.")

    def __call__(
        self,
        frame: Any,
        num_partitions: int,
        shuffle: bool = False,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame.coalesce(
            num_partitions,
            shuffle,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


class Union(GlueTransform):
    _description = "All records of two DynamicFrames (schemas merged by name)."
    _args = [
        _frame_arg("frame1", "The first DynamicFrame"),
        _frame_arg("frame2", "The second DynamicFrame"),
        *_COMMON,
    ]
    _returns = _frame_out("The union of both frames.")

    def __call__(
        self,
        frame1: Any,
        frame2: Any,
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        return frame1.union(
            frame2,
            transformation_ctx=transformation_ctx,
            info=info,
            stageThreshold=stageThreshold,
            totalThreshold=totalThreshold,
        )


# --------------------------------------------------------------------------------------------
# Collection transforms
# --------------------------------------------------------------------------------------------


class SelectFromCollection(GlueTransform):
    _description = "Select one DynamicFrame of a DynamicFrameCollection (an empty one when the key is absent)."
    _args = [
        _arg("dfc", _COLLECTION, "The collection", False),
        _arg("key", "String", "Name of the frame", False),
        _CTX,
    ]
    _returns = _frame_out("The selected DynamicFrame.")

    def __call__(self, dfc: Any, key: str, transformation_ctx: str = "") -> Any:
        return dfc.select(key, transformation_ctx)


class MapToCollection(GlueTransform):
    _description = "Apply a function (frame, transformation_ctx) -> frame to every frame of a collection."
    _args = [
        _arg("dfc", _COLLECTION, "The collection", False),
        _arg("callable", "Function", "(DynamicFrame, transformation_ctx) -> DynamicFrame", False),
        _CTX,
    ]
    _returns = _collection_out("The collection of the results, same keys.")

    def __call__(self, dfc: Any, callable: Callable[[Any, str], Any], transformation_ctx: str = "") -> Any:  # noqa: A002
        return dfc.map(callable, transformation_ctx)


class FlatMap(GlueTransform):
    _description = "Apply a transform to every frame of a collection and flatten the resulting collections."
    _args = [
        _arg("dfc", _COLLECTION, "The collection", False),
        _arg("BaseTransform", "GlueTransform", "The transform to apply", False),
        _arg("frame_name", "String", "The argument name under which the transform takes the frame", False),
        _CTX,
        _arg("base_kwargs", "Dictionary", "Other arguments of the transform", True, "{}"),
    ]
    _returns = _collection_out("All results, flattened into one collection.")

    def __call__(
        self,
        dfc: Any,
        BaseTransform: type[GlueTransform],  # noqa: N803
        frame_name: str,
        transformation_ctx: str = "",
        **base_kwargs: Any,
    ) -> Any:
        def apply_inner(frame: Any, ctx: str) -> Any:
            kwargs = dict(base_kwargs)
            kwargs[frame_name] = frame
            kwargs["transformation_ctx"] = ctx
            return BaseTransform.apply(**kwargs)

        return dfc.flatmap(apply_inner, transformation_ctx)


# --------------------------------------------------------------------------------------------
# ML transforms (awsglueml), run locally
# --------------------------------------------------------------------------------------------


def _frame_df_with_errors(frame: Any) -> Any:
    """The DataFrame behind a DynamicFrame, error records included (the contract's encoding)."""
    from pyspark.sql import DataFrame

    for attr in ("_df", "df", "_frame"):
        df = getattr(frame, attr, None)
        if isinstance(df, DataFrame):
            return df
    raise TypeError(f"expected a DynamicFrame, got {type(frame).__name__}")


def _wrap(frame: Any, df: Any) -> Any:
    from jobs.glue.dynamicframe import DynamicFrame

    return DynamicFrame(df, frame.glue_ctx, getattr(frame, "name", "") or "")


class FillMissingValues(GlueTransform):
    _description = (
        "Fill null and empty values of a column with estimates from a model trained on the other columns "
        "(local decision tree; Glue's is a managed ML transform)."
    )
    _args = [
        _frame_arg(),
        _arg("missing_values_column", "String", "The column with missing values", False),
        _arg("output_column", "String", "The new column (default: <missing_values_column>_filled)", True, '""'),
        *_COMMON,
    ]
    _returns = _frame_out("The frame with the filled column added.")
    _errors = _VALUE_ERROR

    def __call__(
        self,
        frame: Any,
        missing_values_column: str,
        output_column: str = "",
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
    ) -> Any:
        from jobs.glue.ops.ml import fill_missing_values

        df = fill_missing_values(_frame_df_with_errors(frame), missing_values_column, output_column or None)
        return _wrap(frame, df)


class FindMatches(GlueTransform):
    _description = (
        "Group records that refer to the same entity (adds match_id); a local string-similarity "
        "stand-in for Glue's trained FindMatches transform."
    )
    _args = [
        _frame_arg(),
        _arg("transformId", "String", "Glue's trained transform id (not used locally)", True, '""'),
        *_COMMON,
        _arg("computeMatchConfidenceScores", "Boolean", "Add match_confidence_score", True, "False"),
        _arg("key_columns", "List[String]", "Columns to compare (default: all string/number/date ones)", True, "None"),
        _arg("threshold", "Float", "Similarity (0, 1] from which two records match", True, "0.85"),
        _arg("primary_key", "String", "Unique record id column (numbers the groups)", True, "None"),
    ]
    _returns = _frame_out("The frame with match_id (and match_confidence_score when asked).")
    _errors = _VALUE_ERROR

    def __call__(
        self,
        frame: Any,
        transformId: str = "",  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        computeMatchConfidenceScores: bool = False,  # noqa: N803
        key_columns: Sequence[str] | None = None,
        threshold: float = 0.85,
        primary_key: str | None = None,
    ) -> Any:
        from jobs.glue.ops.ml import find_matches

        if transformId:
            log.info("FindMatches: transformId %s is not used; matching locally by string similarity", transformId)
        df = find_matches(
            _frame_df_with_errors(frame),
            key_columns,
            threshold,
            primary_key=primary_key,
            compute_confidence=computeMatchConfidenceScores,
        )
        return _wrap(frame, df)


class FindIncrementalMatches(GlueTransform):
    _description = (
        "Match an incremental frame against an existing one (FindMatches over both, locally); "
        "the result holds the records of both frames with match_id."
    )
    _args = [
        _frame_arg("existingFrame", "The records matched before"),
        _frame_arg("incrementalFrame", "The new records"),
        _arg("transformId", "String", "Glue's trained transform id (not used locally)", True, '""'),
        *_COMMON,
        _arg("computeMatchConfidenceScores", "Boolean", "Add match_confidence_score", True, "False"),
        _arg("key_columns", "List[String]", "Columns to compare (default: all string/number/date ones)", True, "None"),
        _arg("threshold", "Float", "Similarity (0, 1] from which two records match", True, "0.85"),
        _arg("primary_key", "String", "Unique record id column (numbers the groups)", True, "None"),
    ]
    _returns = _frame_out("Both frames' records with match_id (and match_confidence_score when asked).")
    _errors = _VALUE_ERROR

    def __call__(
        self,
        existingFrame: Any,  # noqa: N803
        incrementalFrame: Any,  # noqa: N803
        transformId: str = "",  # noqa: N803
        transformation_ctx: str = "",
        info: str = "",
        stageThreshold: int = 0,  # noqa: N803
        totalThreshold: int = 0,  # noqa: N803
        computeMatchConfidenceScores: bool = False,  # noqa: N803
        key_columns: Sequence[str] | None = None,
        threshold: float = 0.85,
        primary_key: str | None = None,
    ) -> Any:
        from jobs.glue.ops.ml import find_matches
        from jobs.glue.ops.structure import union

        both = union(_frame_df_with_errors(existingFrame), _frame_df_with_errors(incrementalFrame))
        df = find_matches(
            both, key_columns, threshold, primary_key=primary_key, compute_confidence=computeMatchConfidenceScores
        )
        return _wrap(existingFrame, df)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

ALL_TRANSFORMS: tuple[type[GlueTransform], ...] = (
    ApplyMapping,
    ResolveChoice,
    DropFields,
    DropNullFields,
    SelectFields,
    RenameField,
    SplitFields,
    SplitRows,
    Join,
    Filter,
    Map,
    Relationalize,
    UnnestFrame,
    Unbox,
    Spigot,
    ErrorsAsDynamicFrame,
    SelectFromCollection,
    MapToCollection,
    FlatMap,
    Repartition,
    Coalesce,
    Union,
    FillMissingValues,
    FindMatches,
    FindIncrementalMatches,
)


def get_transforms() -> set[GlueTransform]:
    """One instance of every transform."""
    return {t() for t in ALL_TRANSFORMS}


def get_transform(name: str) -> GlueTransform | None:
    """An instance of the transform called ``name`` (case-insensitive); None when there is none (as in Glue)."""
    for t in ALL_TRANSFORMS:
        if t.name().lower() == str(name).lower():
            return t()
    return None


def describe_transform(name: str) -> str:
    """The transform's ``describe()`` as indented JSON; ``{}`` for an unknown name (as in Glue)."""
    transform = get_transform(name)
    description = transform.describe() if transform is not None else {}
    return json.dumps(description, sort_keys=True, indent=4, separators=(",", ": "))


__all__ = [t.__name__ for t in ALL_TRANSFORMS] + ["GlueTransform", "get_transform", "describe_transform"]
