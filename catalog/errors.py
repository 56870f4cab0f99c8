"""Domain errors of the catalog, and the one place they become HTTP responses.

Routes never catch: services raise these errors and :func:`install_error_handlers` turns each into
the Iceberg REST error model ``{"error": {"message", "type", "code"}}``. The status codes follow
the Java client's error handlers: a 5xx on a commit means "commit state unknown" to that client, so
validation problems are always 4xx.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class CatalogError(Exception):
    """Base of every error the catalog reports to clients."""

    #: The Iceberg error ``type`` clients switch on.
    iceberg_type = "RuntimeException"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(CatalogError):
    iceberg_type = "BadRequestException"
    status = 400


class ValidationFailedError(BadRequestError):
    """A well-formed request that asks for something invalid (the Java client raises IllegalArgument)."""

    iceberg_type = "IllegalArgumentException"


class NotAuthorizedError(CatalogError):
    iceberg_type = "NotAuthorizedException"
    status = 401


class ForbiddenError(CatalogError):
    iceberg_type = "ForbiddenException"
    status = 403


class NoSuchNamespaceError(CatalogError):
    iceberg_type = "NoSuchNamespaceException"
    status = 404


class NoSuchTableError(CatalogError):
    iceberg_type = "NoSuchTableException"
    status = 404


class NoSuchViewError(CatalogError):
    iceberg_type = "NoSuchViewException"
    status = 404


class NoSuchDatasetError(CatalogError):
    """A raw (non-Iceberg) dataset of the lake's data catalog is missing."""

    iceberg_type = "NoSuchDatasetException"
    status = 404


class NotFoundError(CatalogError):
    iceberg_type = "NotFoundException"
    status = 404


class UnsupportedOperationError(CatalogError):
    iceberg_type = "UnsupportedOperationException"
    status = 406


class AlreadyExistsError(CatalogError):
    iceberg_type = "AlreadyExistsException"
    status = 409


class NamespaceNotEmptyError(CatalogError):
    iceberg_type = "NamespaceNotEmptyException"
    status = 409


class CommitFailedError(CatalogError):
    """A requirement failed or a concurrent commit won: the client refreshes and retries."""

    iceberg_type = "CommitFailedException"
    status = 409


class NoSuchBookmarkError(CatalogError):
    """A job has no bookmark (it never ran with bookmarks, or its bookmark was deleted)."""

    iceberg_type = "NoSuchBookmarkException"
    status = 404


class NoSuchJobRunError(CatalogError):
    """A job's bookmark has no run with that id."""

    iceberg_type = "NoSuchJobRunException"
    status = 404


class BookmarkVersionMismatchError(CommitFailedError):
    """Glue's ``GLUE_JOB_BOOKMARK_VERSION_MISMATCH_ERROR``: another run (or a reset) changed the bookmark
    after this run started, so this run's state is not saved (nor its output accepted by an Iceberg table
    it writes with its bookmark token)."""

    iceberg_type = "BookmarkVersionMismatchException"


class JobRunConflictError(CatalogError):
    """A job run in the wrong status for the request (committing a failed run, reusing a run id)."""

    iceberg_type = "JobRunConflictException"
    status = 409


class PayloadTooLargeError(CatalogError):
    iceberg_type = "BadRequestException"
    status = 413


def error_body(status: int, iceberg_type: str, message: str) -> dict[str, dict[str, object]]:
    return {"error": {"message": message, "type": iceberg_type, "code": status}}


def _response(status: int, iceberg_type: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, iceberg_type, message), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, malformed requests and unexpected failures to the Iceberg error model."""

    @app.exception_handler(CatalogError)
    async def _catalog_error(request: Request, exc: CatalogError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return _response(exc.status, exc.iceberg_type, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return _response(400, "BadRequestException", "Malformed request: " + "; ".join(parts))

    @app.exception_handler(PyIcebergValidationError)
    async def _invalid_iceberg_object(request: Request, exc: PyIcebergValidationError) -> JSONResponse:
        # pyiceberg raises its own ValidationError (not a ValueError, so pydantic does not wrap it) while
        # parsing request bodies, e.g. for a transform "bucket[-1]": the client's error, not ours.
        return _response(400, "BadRequestException", f"Malformed request: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "NotFoundException", 405: "BadRequestException", 401: "NotAuthorizedException"}
        return _response(exc.status_code, kinds.get(exc.status_code, "RESTException"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return _response(500, "ServiceFailureException", f"Internal error: {type(exc).__name__}")


class UnprocessableEntityError(CatalogError):
    iceberg_type = "UnprocessableEntityException"
    status = 422


class OAuthError(CatalogError):
    """Errors of the token endpoint, which speaks RFC 6749's error format, not Iceberg's."""

    status = 401

    def __init__(self, error: str, description: str, status: int = 401) -> None:
        super().__init__(description)
        self.error = error
        self.status = status


def install_oauth_handler(app: FastAPI) -> None:
    @app.exception_handler(OAuthError)
    async def _oauth_error(request: Request, exc: OAuthError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.message},
            status_code=exc.status,
            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None,
        )
