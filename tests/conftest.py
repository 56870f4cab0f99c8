"""Shared fixtures: settings on a temporary lake, the catalog in-process and as a real server,
pyiceberg's RestCatalog, and one SparkSession per test process."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.server import CatalogServer
from catalog.settings import CatalogSettings, Settings


def make_settings(home: Path, **catalog: object) -> Settings:
    return Settings(home=home, catalog=CatalogSettings(port=0, fsync=False, **catalog))  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "lake")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The catalog in-process (FastAPI TestClient) on a fresh SQLite database."""
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogServer]:
    """One real uvicorn catalog server for the whole test session."""
    home = tmp_path_factory.mktemp("server-lake")
    with CatalogServer(make_settings(home)) as srv:
        yield srv


@pytest.fixture
def http(server: CatalogServer) -> Iterator[httpx.Client]:
    """An HTTP client of the real server."""
    with httpx.Client(base_url=server.uri, timeout=30) as c:
        yield c


@pytest.fixture
def rest_catalog(server: CatalogServer):  # type: ignore[no-untyped-def]
    """pyiceberg's RestCatalog talking to the real server."""
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog("lake", uri=server.uri)


@pytest.fixture
def unique_ns() -> str:
    """A namespace name no other test uses (tests share the session server)."""
    return f"ns_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def spark(server: CatalogServer):  # type: ignore[no-untyped-def]
    """The one SparkSession of the test process, with the `lake` catalog on the session server."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("lakeforge-tests")
        .config("spark.sql.catalog.lake.uri", server.uri)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    # Never stopped: one JVM per test process, torn down with the process.
