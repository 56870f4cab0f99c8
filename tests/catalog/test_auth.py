"""OAuth2 client credentials and bearer tokens: the endpoint, the check, and real clients."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from catalog.app import create_app
from catalog.server import CatalogServer, UnsafeBindError, check_bind
from catalog.settings import CatalogSettings, Settings
from tests.conftest import make_settings

CLIENT_ID, SECRET = "etl-client", "s3cr3t-value"


@pytest.fixture
def auth_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "lake", client_id=CLIENT_ID, client_secret=SECRET, token_ttl_seconds=60)


@pytest.fixture
def auth_client(auth_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings)) as c:
        yield c


def token(c: TestClient, client_id: str = CLIENT_ID, secret: str = SECRET) -> str:
    resp = c.post(
        "/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "catalog"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 60
    return str(body["access_token"])


def test_requests_without_a_token_get_401_and_change_nothing(auth_client: TestClient) -> None:
    for method, path, body in [
        ("GET", "/v1/config", None),
        ("GET", "/v1/namespaces", None),
        ("POST", "/v1/namespaces", {"namespace": ["x"]}),
    ]:
        resp = auth_client.request(method, path, json=body)
        assert resp.status_code == 401
        assert resp.json()["error"]["type"] == "NotAuthorizedException"
        assert resp.headers["www-authenticate"] == "Bearer"
    headers = {"Authorization": f"Bearer {token(auth_client)}"}
    assert auth_client.get("/v1/namespaces", headers=headers).json()["namespaces"] == []


def test_valid_token_grants_access_and_is_the_audit_principal(auth_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token(auth_client)}"}
    assert auth_client.post("/v1/namespaces", json={"namespace": ["sales"]}, headers=headers).status_code == 200
    assert auth_client.get("/v1/namespaces", headers=headers).json()["namespaces"] == [["sales"]]
    entries = auth_client.app.state.service.audit.query(action="create-namespace")  # type: ignore[attr-defined]
    assert [e.principal for e in entries] == [CLIENT_ID]


def test_wrong_credentials_and_grants_are_rejected_in_oauth_format(auth_client: TestClient) -> None:
    resp = auth_client.post(
        "/v1/oauth/tokens", data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "no"}
    )
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = auth_client.post("/v1/oauth/tokens", data={"grant_type": "password", "username": "u"})
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"


def test_basic_auth_and_token_exchange_refresh(auth_client: TestClient) -> None:
    resp = auth_client.post("/v1/oauth/tokens", data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, SECRET))
    assert resp.status_code == 200
    first = resp.json()["access_token"]
    refreshed = auth_client.post(
        "/v1/oauth/tokens",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": first,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        headers={"Authorization": f"Bearer {first}"},
    )
    assert refreshed.status_code == 200
    new = refreshed.json()["access_token"]
    assert auth_client.get("/v1/namespaces", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_expired_forged_and_malformed_tokens_get_401(auth_client: TestClient, auth_settings: Settings) -> None:
    key = auth_client.app.state.authenticator._key  # type: ignore[attr-defined]
    expired = jwt.encode({"sub": CLIENT_ID, "exp": int(time.time()) - 5}, key, algorithm="HS256")
    forged = jwt.encode({"sub": CLIENT_ID, "exp": int(time.time()) + 60}, "not-the-key", algorithm="HS256")
    for bad in (expired, forged, "garbage", ""):
        resp = auth_client.get("/v1/namespaces", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status_code == 401, bad
        assert (
            "invalid bearer token" in resp.json()["error"]["message"] or "required" in resp.json()["error"]["message"]
        )


def test_token_endpoint_without_auth_configured(client: TestClient) -> None:
    resp = client.post("/v1/oauth/tokens", data={"grant_type": "client_credentials"})
    assert resp.status_code == 400 and "not enabled" in resp.json()["error_description"]


def test_non_loopback_bind_needs_auth_or_explicit_force(tmp_path: Path) -> None:
    exposed = Settings(home=tmp_path, catalog=CatalogSettings(host="0.0.0.0"))  # type: ignore[call-arg]
    with pytest.raises(UnsafeBindError, match="without authentication"):
        check_bind(exposed)
    check_bind(Settings(home=tmp_path, catalog=CatalogSettings(host="0.0.0.0", allow_insecure_bind=True)))  # type: ignore[call-arg]
    check_bind(
        Settings(home=tmp_path, catalog=CatalogSettings(host="0.0.0.0", client_id="a", client_secret="b"))  # type: ignore[call-arg]
    )
    check_bind(Settings(home=tmp_path, catalog=CatalogSettings(host="127.0.0.1")))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="set together"):
        CatalogSettings(client_id="only-id")  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogServer]:
    home = tmp_path_factory.mktemp("auth-lake")
    with CatalogServer(make_settings(home, client_id=CLIENT_ID, client_secret=SECRET)) as srv:
        yield srv


def test_pyiceberg_rest_catalog_with_credentials(auth_server: CatalogServer) -> None:
    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.exceptions import OAuthError, RESTError

    catalog = RestCatalog("lake", uri=auth_server.uri, credential=f"{CLIENT_ID}:{SECRET}")
    ns = f"py_{uuid.uuid4().hex[:6]}"
    catalog.create_namespace(ns)
    table = catalog.create_table(f"{ns}.t", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": [1, 2, 3]}))
    assert catalog.load_table(f"{ns}.t").scan().to_arrow().num_rows == 3
    with pytest.raises((OAuthError, RESTError)):
        RestCatalog("lake", uri=auth_server.uri, credential=f"{CLIENT_ID}:wrong")
    with pytest.raises(Exception, match="(?i)not authorized|401"):
        RestCatalog("lake", uri=auth_server.uri).list_namespaces()


@pytest.mark.spark
def test_spark_with_credentials(spark, auth_server: CatalogServer) -> None:  # type: ignore[no-untyped-def]
    prefix = "spark.sql.catalog.secure"
    spark.conf.set(prefix, "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set(f"{prefix}.type", "rest")
    spark.conf.set(f"{prefix}.uri", auth_server.uri)
    spark.conf.set(f"{prefix}.credential", f"{CLIENT_ID}:{SECRET}")
    spark.conf.set(f"{prefix}.oauth2-server-uri", f"{auth_server.uri}/v1/oauth/tokens")
    spark.conf.set(f"{prefix}.scope", "catalog")
    ns = f"secure.sp_{uuid.uuid4().hex[:6]}"
    spark.sql(f"CREATE NAMESPACE {ns}")
    spark.sql(f"CREATE TABLE {ns}.t (id int) USING iceberg")
    spark.sql(f"INSERT INTO {ns}.t VALUES (1), (2)")
    assert spark.sql(f"SELECT count(*) FROM {ns}.t").collect()[0][0] == 2
