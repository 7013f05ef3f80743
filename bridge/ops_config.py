"""Config sections for running the service: its HTTP API (and dashboard) and the call database."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.models.paths import data_root


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Section):
    """The bridge's own HTTP server: outbound-call API, dashboard, metrics and health."""

    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    token_env: str = "BRIDGE_API_TOKEN"
    dashboard_password_env: str = "BRIDGE_DASHBOARD_PASSWORD"

    def token(self) -> str | None:
        return os.environ.get(self.token_env) or None

    def dashboard_password(self) -> str | None:
        return os.environ.get(self.dashboard_password_env) or None


class StorageConfig(_Section):
    """Call records: SQLite by default; PostgreSQL for larger sites (url = 'postgresql://user@host/db')."""

    url: str | None = None
    url_env: str = "BRIDGE_DATABASE_URL"
    spool_dir: Path | None = None
    record_calls: bool = False

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("sqlite:", "postgresql:", "postgresql+asyncpg:", "postgres:")):
            raise ValueError("use sqlite:///path/to/calls.db or postgresql://user:password@host/dbname")
        return url

    def resolved_url(self) -> str:
        return self.url or os.environ.get(self.url_env) or f"sqlite:///{data_root() / 'calls.db'}"

    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or data_root() / "spool"
