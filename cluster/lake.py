"""The lake from Python, for notebooks and scripts: its catalog (served here if nothing is up), Spark, clients.

::

    from cluster.lake import connect

    lake = connect()                      # the catalog at the configured URI, or one served by this process
    lake.catalog.list_namespaces()        # pyiceberg RestCatalog
    lake.client.list_datasets("raw")      # lakeforge extension API (raw datasets, partitions, audit)
    spark = lake.spark()                  # local SparkSession whose `lake` catalog is this catalog
    ...
    lake.close()                          # stops the embedded server, if this handle started one
"""

from __future__ import annotations

import logging
import os
import sys
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from catalog.client import LakeClient
from catalog.server import CatalogServer, embedded_server, is_up
from catalog.settings import Settings, get_settings

if TYPE_CHECKING:
    from pyiceberg.catalog.rest import RestCatalog
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class Lake:
    """A handle on the lake.

    Args:
        settings: Where the lake lives (default: :func:`get_settings`, i.e. ``LAKEFORGE_*``).
        serve: Start an embedded catalog server when none answers at the configured URI.
    """

    def __init__(self, settings: Settings | None = None, *, serve: bool = True) -> None:
        self.settings = settings or get_settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self._server: CatalogServer | None = None
        uri = self.settings.resolved_catalog_uri
        if not is_up(uri):
            if not serve or self.settings.catalog_uri:
                raise ConnectionError(f"no catalog answers at {uri}")
            self._server = embedded_server(self.settings).start()
            uri = self._server.uri
            log.info("serving the catalog at %s from this process", uri)
        self.uri = uri
        self._spark: SparkSession | None = None

    @property
    def serving(self) -> bool:
        """Whether this handle runs the catalog server (it stops with :meth:`close`)."""
        return self._server is not None

    def _credential(self) -> str | None:
        secret = self.settings.catalog.client_secret
        if self.settings.catalog.client_id and secret is not None:
            return f"{self.settings.catalog.client_id}:{secret.get_secret_value()}"
        return None

    @cached_property
    def catalog(self) -> RestCatalog:
        """pyiceberg's REST catalog client for the lake."""
        from pyiceberg.catalog.rest import RestCatalog

        props = {"uri": self.uri}
        if credential := self._credential():
            props["credential"] = credential
        return RestCatalog("lake", **props)

    @cached_property
    def client(self) -> LakeClient:
        """The lakeforge extension API client (raw datasets, partitions, audit log)."""
        token = None
        secret = self.settings.catalog.client_secret
        if self.settings.catalog.client_id and secret is not None:
            from jobs.crawler import catalog_token

            token = catalog_token(self.uri, self.settings.catalog.client_id, secret.get_secret_value())
        return LakeClient(self.uri, token)

    def spark(self, app_name: str = "lakeforge-notebook", master: str = "local[2]") -> SparkSession:
        """A SparkSession whose ``lake`` catalog is this lake (``spark-defaults.conf`` supplies the rest)."""
        if self._spark is None:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            from pyspark.sql import SparkSession

            builder = (
                SparkSession.builder.master(master)
                .appName(app_name)
                .config("spark.sql.catalog.lake.uri", self.uri)
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
            )
            if credential := self._credential():
                builder = builder.config("spark.sql.catalog.lake.credential", credential)
            self._spark = builder.getOrCreate()
            self._spark.sparkContext.setLogLevel("ERROR")
        return self._spark

    def close(self) -> None:
        """Stop the SparkSession and the embedded server this handle started."""
        if self._spark is not None:
            self._spark.stop()
            self._spark = None
        if "client" in self.__dict__:
            self.client.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Lake:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(settings: Settings | None = None, *, serve: bool = True) -> Lake:
    """A handle on the lake (see :class:`Lake`)."""
    return Lake(settings, serve=serve)
