"""The one settings object of lakeforge.

Every value can be set by an environment variable: ``LAKEFORGE_<FIELD>`` for top-level fields and
``LAKEFORGE_CATALOG__<FIELD>`` for the catalog section, ``LAKEFORGE_CLUSTER__<FIELD>`` for the cluster
section (nested sections use ``__``).
Tests and entry points build :class:`Settings` explicitly; everything else calls :func:`get_settings`.
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root (this project is installed in editable mode, so the package lives in the checkout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class CatalogSettings(BaseModel):
    """How the Iceberg REST catalog server runs and how clients reach it."""

    name: str = Field("lake", description="Catalog name: the Spark catalog and the SQL catalog_name column.")
    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8181, ge=0, le=65535, description="Port the server binds to (0: any free port).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the catalog database; default: SQLite file under the lake home."
    )
    warehouse: str | None = Field(None, description="Root location of new tables; default: <home>/warehouse.")
    client_id: str | None = Field(None, description="OAuth2 client id; with client_secret, turns auth on.")
    client_secret: SecretStr | None = Field(None, description="OAuth2 client secret.")
    token_ttl_seconds: int = Field(3600, gt=0, description="Lifetime of issued bearer tokens.")
    signing_key: SecretStr | None = Field(None, description="HMAC key for tokens; default: derived from the secret.")
    allow_insecure_bind: bool = Field(
        False, description="Allow binding to a non-loopback address with auth off (unsafe; explicit opt-in)."
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Largest accepted request body.")
    commit_retries: int = Field(4, ge=0, description="Server-side retries of a commit that lost the pointer swap.")
    page_size: int = Field(1000, gt=0, description="Largest page of list endpoints.")
    fsync: bool = Field(True, description="fsync metadata files before the pointer swap (power-loss durability).")

    @property
    def auth_enabled(self) -> bool:
        return self.client_id is not None and self.client_secret is not None

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @model_validator(mode="after")
    def _check_auth_pair(self) -> CatalogSettings:
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("catalog.client_id and catalog.client_secret must be set together")
        return self


class ClusterSettings(BaseModel):
    """How EMR-like clusters run on this machine (the cluster itself is described by its YAML config)."""

    dir: Path | None = Field(None, description="Where cluster directories go; default: <home>/clusters.")
    reconcile_interval_seconds: float = Field(
        1.0, gt=0, description="Period of the reconcile loop (steps, Spot, scaling, idle timeout)."
    )
    provision_workers: int = Field(1, ge=1, description="Nodes provisioned at once (1: one after another).")


class Settings(BaseSettings):
    """Root settings: where the lake lives and how each component reaches the others."""

    model_config = SettingsConfigDict(env_prefix="LAKEFORGE_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(PROJECT_ROOT / ".lake", description="Directory holding all local lake state.")
    log_level: str = Field("INFO", description="Log level of lakeforge's own loggers.")
    log_format: str = Field("text", pattern="^(text|json)$", description="'text' or 'json' (one object a line).")
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)  # type: ignore[arg-type]
    catalog_uri: str | None = Field(None, description="URL clients use for the catalog; default from host/port.")
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)  # type: ignore[arg-type]

    @property
    def database_url(self) -> str:
        return self.catalog.database_url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def warehouse(self) -> str:
        return self.catalog.warehouse or (self.home / "warehouse").as_uri()

    @property
    def object_store_root(self) -> Path:
        """Local directory behind ``s3://`` URIs: one sub-directory per bucket."""
        return self.home / "s3"

    @property
    def clusters_dir(self) -> Path:
        """Directory holding one sub-directory per cluster (events, node directories, step logs)."""
        return self.cluster.dir or self.home / "clusters"

    @property
    def resolved_catalog_uri(self) -> str:
        if self.catalog_uri:
            return self.catalog_uri.rstrip("/")
        host = "127.0.0.1" if self.catalog.host in ("0.0.0.0", "::") else self.catalog.host
        return f"http://{host}:{self.catalog.port}"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, built once per process."""
    return Settings()  # type: ignore[call-arg]  # pydantic-settings fills the fields (no mypy plugin here)
