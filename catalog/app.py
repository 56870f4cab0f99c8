"""The catalog's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.auth import Authenticator
from catalog.errors import error_body, install_error_handlers, install_oauth_handler
from catalog.routes import config, namespaces, tables
from catalog.service import CatalogService
from catalog.settings import Settings, get_settings

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Reject request bodies over ``limit`` bytes with 413, before any handler reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        import json

        body = json.dumps(
            error_body(413, "BadRequestException", f"Request body larger than {self.limit} bytes")
        ).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


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
    for module in (config, namespaces, tables):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, limit=settings.catalog.max_body_bytes)
    return app
