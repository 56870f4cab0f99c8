"""``GET /v1/config`` and the OAuth2 token endpoint."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from catalog.auth import Authenticator
from catalog.deps import PrincipalDep, ServiceDep
from catalog.errors import OAuthError

router = APIRouter(tags=["config"])

_NS = "/v1/{prefix}/namespaces/{namespace}"
ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET " + _NS,
    "HEAD " + _NS,
    "DELETE " + _NS,
    "POST " + _NS + "/properties",
    "GET " + _NS + "/tables",
    "POST " + _NS + "/tables",
    "GET " + _NS + "/tables/{table}",
    "HEAD " + _NS + "/tables/{table}",
    "POST " + _NS + "/tables/{table}",
    "DELETE " + _NS + "/tables/{table}",
    "POST /v1/{prefix}/tables/rename",
    "POST " + _NS + "/register",
    "POST " + _NS + "/tables/{table}/metrics",
    "POST /v1/{prefix}/transactions/commit",
    "GET " + _NS + "/views",
    "POST " + _NS + "/views",
    "GET " + _NS + "/views/{view}",
    "HEAD " + _NS + "/views/{view}",
    "POST " + _NS + "/views/{view}",
    "DELETE " + _NS + "/views/{view}",
    "POST /v1/{prefix}/views/rename",
]


@router.get("/v1/config")
def get_config(
    service: ServiceDep, principal: PrincipalDep, warehouse: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    return {
        "defaults": {
            "warehouse": service.settings.warehouse,
            # HadoopFileIO serves file: and (through the lake's mapping) s3: locations.
            "io-impl": "org.apache.iceberg.hadoop.HadoopFileIO",
        },
        "overrides": {"rest-page-size": str(service.settings.catalog.page_size)},
        "endpoints": ENDPOINTS,
    }


@router.post("/v1/oauth/tokens")
async def get_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, object]:
    authenticator: Authenticator = request.app.state.authenticator
    try:
        form = {k: str(v) for k, v in (await request.form()).items()}
    except Exception as exc:  # noqa: BLE001 - a malformed form is the client's error
        raise OAuthError("invalid_request", f"Malformed form body: {exc}", 400) from exc
    basic = None
    if authorization and authorization.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_request", "Malformed Basic authorization header", 400) from exc
        basic = (user, password)
    return authenticator.token(form, basic)
