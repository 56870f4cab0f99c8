"""The ``awsglue`` import names: every module imports in any interpreter of the environment (the ``.pth``
that setup writes), each is the ``jobs.glue`` module itself, and the stubs fail only when called."""

from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from jobs import sparkenv

MODULES = ["context", "dynamicframe", "transforms", "utils", "job", "gluetypes", "functions"]


def test_pth_file_puts_the_shim_on_sys_path() -> None:
    pth = Path(sysconfig.get_paths()["purelib"]) / sparkenv.PTH_FILE
    assert pth.read_text().strip() == str(sparkenv.COMPAT_DIR)
    assert (sparkenv.COMPAT_DIR / "awsglue" / "__init__.py").is_file()


def test_a_fresh_interpreter_imports_awsglue_from_anywhere(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib, sys
        for name in ["awsglue", "awsglue.utils", "awsglue.job", "awsglue.context", "awsglue.gluetypes",
                     "awsglue.dynamicframe", "awsglue.transforms", "awsglue.functions",
                     "awsgluedq", "awsgluedq.transforms", "awsglueml", "awsglueml.transforms"]:
            importlib.import_module(name)
        from awsglue.utils import getResolvedOptions, GlueArgumentError
        from awsglue.context import GlueContext
        from awsglue.job import Job
        import jobs.glue.utils
        assert sys.modules["awsglue.utils"] is jobs.glue.utils
        args = getResolvedOptions(["s.py", "--JOB_NAME", "j"], ["JOB_NAME"])
        print(args["JOB_NAME"], GlueContext.__module__, Job.__module__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["j", "jobs.glue.context", "jobs.glue.job"]


@pytest.mark.parametrize("name", MODULES)
def test_each_awsglue_module_is_the_runtime_module(name: str) -> None:
    shim = importlib.import_module(f"awsglue.{name}")
    try:
        real = importlib.import_module(f"jobs.glue.{name}")
    except ModuleNotFoundError:
        # Not written yet: the name still imports, and using it says what is missing.
        with pytest.raises(ImportError, match=f"jobs.glue.{name} is not implemented yet"):
            shim.SomeName  # noqa: B018
        return
    assert shim is real
    assert getattr(importlib.import_module("awsglue"), name) is real


def test_monkeypatching_through_awsglue_patches_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from awsglue.context import GlueContext as ShimContext

    from jobs.glue.context import GlueContext

    assert ShimContext is GlueContext
    calls = []
    monkeypatch.setattr(ShimContext, "purge_s3_path", lambda self, path, options=None, ctx="": calls.append(path))
    GlueContext.purge_s3_path(None, "s3://b/p")  # type: ignore[arg-type]
    assert calls == ["s3://b/p"]


def test_reader_and_writer_classes_live_where_glue_puts_them() -> None:
    from awsglue.dynamicframe import DynamicFrameReader, DynamicFrameWriter

    from jobs.glue import context

    assert DynamicFrameReader is context.DynamicFrameReader
    assert DynamicFrameWriter is context.DynamicFrameWriter


def test_dynamic_frame_collection_is_exported_where_glue_exports_it() -> None:
    from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection

    from jobs.glue import collection

    assert DynamicFrameCollection is collection.DynamicFrameCollection
    assert "DynamicFrameCollection" in importlib.import_module("awsglue.dynamicframe").__all__
    frames = DynamicFrameCollection({}, None)
    assert list(frames.keys()) == [] and len(frames) == 0
    assert DynamicFrame.__module__ == "jobs.glue.dynamicframe"
    # Glue Studio scripts import both from the package itself
    from awsglue import DynamicFrame as TopLevelFrame
    from awsglue import DynamicFrameCollection as TopLevelCollection

    assert TopLevelFrame is DynamicFrame and TopLevelCollection is DynamicFrameCollection
    with pytest.raises(ImportError, match="cannot import name 'NoSuchThing'"):
        from awsglue import NoSuchThing  # type: ignore[attr-defined]  # noqa: F401


def test_evaluate_data_quality_fails_only_when_called() -> None:
    from awsgluedq.transforms import EvaluateDataQuality

    ruleset = "Rules = [ ColumnCount > 0 ]"
    dq = EvaluateDataQuality()
    assert EvaluateDataQuality.name() == "EvaluateDataQuality"
    with pytest.raises(NotImplementedError, match="EvaluateDataQuality"):
        dq.process_rows(frame=None, ruleset=ruleset, publishing_options={"dataQualityEvaluationContext": "x"})
    with pytest.raises(NotImplementedError, match="not implemented by lakeforge"):
        EvaluateDataQuality.apply(frame=None, ruleset=ruleset)
    with pytest.raises(NotImplementedError):
        EvaluateDataQuality().process_rows(None, ruleset)


def test_awsglueml_transforms_come_from_the_runtime() -> None:
    import awsglueml.transforms as ml

    try:
        transforms = importlib.import_module("jobs.glue.transforms")
    except ModuleNotFoundError:
        with pytest.raises(ImportError, match="jobs.glue.transforms"):
            ml.FillMissingValues  # noqa: B018
        return
    for name in ("FillMissingValues", "FindMatches", "FindIncrementalMatches"):
        if hasattr(transforms, name):
            assert getattr(ml, name) is getattr(transforms, name)
        else:
            with pytest.raises(ImportError, match=f"does not provide {name}"):
                getattr(ml, name)
    with pytest.raises(AttributeError):
        ml.NotATransform  # noqa: B018


@pytest.mark.spark
def test_gs_now_adds_a_timestamp_method(spark) -> None:  # type: ignore[no-untyped-def]
    dynamicframe = pytest.importorskip("jobs.glue.dynamicframe")
    import gs_now  # noqa: F401 - registers DynamicFrame.gs_now

    from jobs.glue.context import GlueContext

    ctx = GlueContext(spark)
    frame = dynamicframe.DynamicFrame.fromDF(spark.createDataFrame([(1,)], "id long"), ctx, "f")
    stamped = frame.gs_now(colName="ts", dateFormat="yyyy")
    row = stamped.toDF().first()
    assert row.id == 1 and len(row.ts) == 4 and row.ts.startswith("20")
