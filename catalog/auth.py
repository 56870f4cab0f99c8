"""Optional OAuth2 client-credentials auth: the token endpoint and bearer-token checking.

Tokens are HS256 JWTs signed with a key derived from the client secret (or ``catalog.signing_key``),
so they survive server restarts and need no table. The Java client refreshes with the token-exchange
grant, which is accepted for a still-valid token.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

from catalog.errors import NotAuthorizedError, OAuthError
from catalog.settings import CatalogSettings

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class Authenticator:
    def __init__(self, settings: CatalogSettings) -> None:
        self.settings = settings
        self.enabled = settings.auth_enabled
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        key = settings.signing_key.get_secret_value() if settings.signing_key else None
        self._key = key or hashlib.sha256(b"lakeforge-token:" + secret.encode()).hexdigest()

    def _issue(self, subject: str) -> dict[str, object]:
        now = int(time.time())
        ttl = self.settings.token_ttl_seconds
        token = jwt.encode({"sub": subject, "iat": now, "exp": now + ttl}, self._key, algorithm="HS256")
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "issued_token_type": ACCESS_TOKEN_TYPE,
        }

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        """Answer ``POST /v1/oauth/tokens``."""
        if not self.enabled:
            raise OAuthError("unsupported_grant_type", "Authentication is not enabled on this catalog", 400)
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
            expected_secret = self.settings.client_secret.get_secret_value() if self.settings.client_secret else ""
            id_ok = hmac.compare_digest(client_id.encode(), (self.settings.client_id or "").encode())
            secret_ok = hmac.compare_digest(client_secret.encode(), expected_secret.encode())
            if not (id_ok and secret_ok):
                raise OAuthError("invalid_client", "Invalid client credentials")
            return self._issue(client_id)
        if grant == TOKEN_EXCHANGE:
            subject = self.verify(form.get("subject_token", ""), oauth=True)
            return self._issue(subject)
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant!r}", 400)

    def verify(self, token: str, *, oauth: bool = False) -> str:
        """The principal of a valid token; 401 otherwise."""
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            if oauth:
                raise OAuthError("invalid_grant", f"Invalid token: {exc}") from exc
            raise NotAuthorizedError(f"Not authorized: invalid bearer token ({exc})") from exc
        return str(claims["sub"])

    def principal(self, authorization: str | None) -> str:
        """Check an ``Authorization`` header; the anonymous principal when auth is off."""
        if not self.enabled:
            return "anonymous"
        if not authorization or not authorization.lower().startswith("bearer "):
            raise NotAuthorizedError("Not authorized: a bearer token is required (POST /v1/oauth/tokens)")
        return self.verify(authorization[7:].strip())
