"""The catalog's FastAPI application."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.auth import Authenticator
from catalog.errors import error_body, install_error_handlers, install_oauth_handler
from catalog.routes import bookmarks, config, lake, namespaces, tables, views
from catalog.service import CatalogService
from catalog.settings import Settings, get_settings

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Reject request bodies over ``limit`` bytes with 413, before any handler reads them.

    A declared ``Content-Length`` is checked up front; a streamed (chunked) body is buffered here up to
    the limit and replayed to the application, because FastAPI turns any error raised while it reads
    the body into a generic 400.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_error(send, 413, "BadRequestException", f"Request body larger than {self.limit} bytes")
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await _send_error(send, 413, "BadRequestException", f"Request body larger than {self.limit} bytes")
                return
            if not message.get("more_body", False):
                break
        replay = iter(buffered)

        async def replay_receive() -> Message:
            message = next(replay, None)
            return message if message is not None else await receive()

        await self.app(scope, replay_receive, send)


class EncodedSlashGuard:
    """Reject a percent-encoded ``/`` in the request path with 400.

    The ASGI server decodes the path before routing, so ``DELETE /v1/namespaces/db%2Ftables%2Ft`` (drop the
    namespace ``db/tables/t``) would otherwise be routed as ``DELETE /v1/namespaces/db/tables/t`` and drop
    table ``db.t``. No identifier may contain ``/``, so such a request is always malformed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"%2f" in bytes(scope.get("raw_path") or b"").lower():
            await _send_error(
                send,
                400,
                "IllegalArgumentException",
                "Invalid identifier in the request path: '/' (%2F) is not allowed in names",
            )
            return
        await self.app(scope, receive, send)


async def _send_error(send: Send, status: int, iceberg_type: str, message: str) -> None:
    body = json.dumps(error_body(status, iceberg_type, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, service: CatalogService | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            app.state.service.close()

    owned = service is None
    app = FastAPI(title="lakeforge catalog", version="0.1.0", lifespan=lifespan)
    app.state.service = service or CatalogService(settings)
    app.state.authenticator = Authenticator(settings.catalog)
    install_error_handlers(app)
    install_oauth_handler(app)
    for module in (config, namespaces, tables, views, lake, bookmarks):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, limit=settings.catalog.max_body_bytes)
    app.add_middleware(EncodedSlashGuard)
    return app
