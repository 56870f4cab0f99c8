"""Running the catalog server: in the foreground (CLI) or on a background thread (tests, notebooks,
the main job)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import httpx
import uvicorn

from catalog.app import create_app
from catalog.errors import CatalogError
from catalog.settings import Settings

log = logging.getLogger(__name__)


class UnsafeBindError(CatalogError):
    iceberg_type = "UnsafeBind"
    status = 400


def check_bind(settings: Settings) -> None:
    """Refuse to expose an unauthenticated catalog beyond loopback unless explicitly forced."""
    cat = settings.catalog
    if not cat.is_loopback and not cat.auth_enabled and not cat.allow_insecure_bind:
        raise UnsafeBindError(
            f"Refusing to bind to {cat.host} without authentication: set LAKEFORGE_CATALOG__CLIENT_ID and "
            "LAKEFORGE_CATALOG__CLIENT_SECRET, or force it with --allow-insecure-bind"
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(settings: Settings, workers: int = 1) -> None:
    """Serve in the foreground until interrupted, with ``workers`` processes sharing the port.

    Several workers are safe: commits are compare-and-swaps in the database, and metadata files are
    immutable, so each process's cache stays valid. Workers get the settings through the environment.
    """
    check_bind(settings)
    log.info(
        "catalog serving on %s:%d with %d worker(s) (db %s)",
        settings.catalog.host,
        settings.catalog.port,
        workers,
        settings.database_url,
    )
    common = {"host": settings.catalog.host, "port": settings.catalog.port, "log_level": "warning", "access_log": False}
    if workers <= 1:
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    os.environ.update(settings_environment(settings))
    uvicorn.run("catalog.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]


def settings_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that rebuild ``settings`` in another process (secrets included)."""
    catalog = settings.catalog.model_dump(mode="json")
    for key in ("client_secret", "signing_key"):
        secret = getattr(settings.catalog, key)
        catalog[key] = secret.get_secret_value() if secret is not None else None
    env = {
        "LAKEFORGE_HOME": str(settings.home),
        "LAKEFORGE_LOG_LEVEL": settings.log_level,
        "LAKEFORGE_LOG_FORMAT": settings.log_format,
        "LAKEFORGE_CATALOG": json.dumps(catalog),
    }
    if settings.catalog_uri:
        env["LAKEFORGE_CATALOG_URI"] = settings.catalog_uri
    return env


class CatalogServer:
    """A real uvicorn server on a background thread; ``uri`` is where clients reach it.

    Example::

        with CatalogServer(settings) as server:
            ... server.uri ...
    """

    def __init__(self, settings: Settings) -> None:
        if settings.catalog.port == 0:
            settings = settings.model_copy(
                update={"catalog": settings.catalog.model_copy(update={"port": free_port(settings.catalog.host)})}
            )
        check_bind(settings)
        self.settings = settings
        self.uri = settings.resolved_catalog_uri
        config = uvicorn.Config(
            create_app(settings),
            host=settings.catalog.host,
            port=settings.catalog.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="catalog-server", daemon=True)

    def start(self, timeout: float = 30.0) -> CatalogServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError(f"catalog server failed to start on {self.uri}")
            time.sleep(0.02)
        raise TimeoutError(f"catalog server did not start within {timeout}s on {self.uri}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> CatalogServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_until_up(uri: str, timeout: float = 30.0) -> None:
    """Poll ``/healthz`` of a server started elsewhere (another process)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{uri}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"catalog at {uri} not reachable within {timeout}s: {last}")


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` now."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_up(uri: str, timeout: float = 1.0) -> bool:
    """Whether a catalog answers ``/healthz`` at ``uri`` right now."""
    try:
        return httpx.get(f"{uri}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_catalog(settings: Settings) -> Iterator[str]:
    """The catalog the settings point at if it is up, else one served here for the duration; yields its URI.

    When ``settings.catalog_uri`` is set explicitly and nothing answers there, that is an error (the user named
    a server); otherwise an embedded server is started on the configured port (or a free one when it is busy).
    """
    uri = settings.resolved_catalog_uri
    if is_up(uri):
        log.info("using the catalog at %s", uri)
        yield uri
        return
    if settings.catalog_uri:
        raise CatalogError(f"no catalog answers at LAKEFORGE_CATALOG_URI={uri}")
    with embedded_server(settings) as server:
        log.info("serving the catalog at %s for this command", server.uri)
        yield server.uri


def embedded_server(settings: Settings) -> CatalogServer:
    """A server for this process on the configured port, or on a free one when that port is taken (not started)."""
    port = settings.catalog.port if port_free(settings.catalog.host, settings.catalog.port) else 0
    return CatalogServer(settings.model_copy(update={"catalog": settings.catalog.model_copy(update={"port": port})}))
