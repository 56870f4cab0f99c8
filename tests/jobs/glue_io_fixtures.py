"""Fixtures of the Glue runtime's I/O tests (star-imported by those modules): the session's object-store
root (the catalog server's, so the server and Spark see the same ``s3://`` files), a GlueContext on the
one SparkSession, a LakeClient and a fresh bucket name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.server import CatalogServer

__all__ = ["bucket", "glue_context", "lake", "lake_root"]


@pytest.fixture(scope="session")
def lake_root(server: CatalogServer, spark) -> Path:  # type: ignore[no-untyped-def]
    """``s3://`` root of the test session: the server's object store, set in Spark like GlueContext does."""
    root = server.settings.object_store_root
    root.mkdir(parents=True, exist_ok=True)
    spark.sparkContext._jsc.hadoopConfiguration().set("fs.lakeforge.root", str(root))
    spark.sparkContext._jvm.java.lang.System.setProperty("lakeforge.s3.root", str(root))
    return root


@pytest.fixture(scope="session")
def glue_context(spark, lake_root: Path):  # type: ignore[no-untyped-def]
    from jobs.glue.context import GlueContext

    return GlueContext(spark.sparkContext)


@pytest.fixture
def lake(server: CatalogServer) -> Iterator[object]:
    from catalog.client import LakeClient

    with LakeClient(server.uri) as client:
        yield client


@pytest.fixture
def bucket() -> str:
    """A bucket no other test uses."""
    return f"bkt-{uuid.uuid4().hex[:10]}"
