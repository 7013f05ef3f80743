"""Config sections for running the service: its HTTP API (dashboard, web phone) and the call database."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bridge.config.section import Section
from bridge.models.paths import data_root


class ApiConfig(Section):
    """The bridge's own HTTP server: outbound-call API, dashboard, metrics and health."""

    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    token_env: str = "BRIDGE_API_TOKEN"
    dashboard_password_env: str = "BRIDGE_DASHBOARD_PASSWORD"
    # Host names (besides loopback and `bind`) browsers may reach this server by, e.g. the
    # machine's DNS name. Requests naming any other Host are refused (DNS rebinding).
    allowed_hosts: list[str] = Field(default_factory=list)

    # HTTPS for the API server: needed when the web phone is opened from another machine, since
    # browsers give the microphone only to https:// pages (and http://localhost).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("api.tls_cert_file and api.tls_key_file go together: set both or neither")
        for key, path in (("api.tls_cert_file", self.tls_cert_file), ("api.tls_key_file", self.tls_key_file)):
            if path is not None and not path.is_file():
                raise ValueError(f"{key} = {str(path)!r}: no such file (scripts/make_cert.sh makes a local one)")
        return self

    def token(self) -> str | None:
        return os.environ.get(self.token_env) or None

    def dashboard_password(self) -> str | None:
        return os.environ.get(self.dashboard_password_env) or None


class StorageConfig(Section):
    """Call records: SQLite by default; PostgreSQL for larger sites (url = 'postgresql://user@host/db')."""

    url: str | None = None
    url_env: str = "BRIDGE_DATABASE_URL"
    spool_dir: Path | None = None
    record_calls: bool = False
    # Calls (and spool dead-letter files) older than this many days are deleted, at start and hourly; 0 keeps all.
    retention_days: int = Field(default=0, ge=0)
    # This bridge's name in the call records, so one database can hold several nodes' calls (a
    # Kamailio cluster) and the dashboard can tell them apart; empty: the machine's host name.
    # `bridge up` also makes it its Asterisk's systemname (channel ids unique across nodes).
    node: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")

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

    def resolved_node(self) -> str:
        return self.node or socket.gethostname()[:64]


class WebphoneConfig(Section):
    """The browser phone page (/phone on the API server): a WebRTC caller through Asterisk's WSS.

    The page only needs to know where Asterisk's secure WebSocket is and what to dial; the SIP
    password is typed by the person calling and never served.
    """

    enabled: bool = True
    # Asterisk's SIP-over-WebSocket URL as the *browser* reaches it (http.conf tlsbindaddr, path /ws).
    # Empty: the host the page was loaded from, on wss_port (Asterisk and the bridge on one machine).
    wss_url: str = ""
    wss_port: int = Field(default=8089, ge=1, le=65535)
    username: str = "webphone"
    # The extension in [from-webrtc] the page calls (the bridge picks the persona by this number).
    dial: str = "agent"
    # STUN/TURN for browsers behind NAT, e.g. ["stun:stun.example.org:3478", "turn:turn.example.org"].
    ice_servers: list[str] = Field(default_factory=list)
    turn_username: str = ""
    turn_password_env: str = "BRIDGE_TURN_PASSWORD"
    # "relay" forces media through TURN (for sites that only allow that).
    ice_transport_policy: Literal["all", "relay"] = "all"
    # Audio codecs the browser offers, in order of preference (empty: the browser's own list,
    # Opus first). ["PCMU"] or ["PCMA"] avoid Opus transcoding on Asterisk.
    codecs: list[Literal["opus", "PCMU", "PCMA"]] = Field(default_factory=list)
    # Give up (and say why) if media has not connected this long after dialling.
    media_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("wss_url")
    @classmethod
    def _secure_websocket(cls, url: str) -> str:
        if url and not url.startswith(("wss://", "ws://")):
            raise ValueError("use Asterisk's WebSocket URL, e.g. wss://pbx.example.com:8089/ws")
        return url

    @field_validator("ice_servers")
    @classmethod
    def _ice_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a STUN/TURN URL (stun:HOST:PORT or turn:HOST:PORT)")
        return urls

    @model_validator(mode="after")
    def _turn_needs_credentials(self) -> WebphoneConfig:
        if any(url.startswith("turn") for url in self.ice_servers) and not self.turn_username:
            raise ValueError(
                "webphone.ice_servers has a TURN server: set webphone.turn_username (and its password in "
                f"the environment variable {self.turn_password_env}); browsers refuse TURN without them"
            )
        return self

    def browser_settings(self) -> dict[str, object]:
        """What the page is told: no secrets but the TURN credential, which browsers must have."""
        ice: list[dict[str, object]] = []
        turn_password = os.environ.get(self.turn_password_env, "")
        for url in self.ice_servers:
            server: dict[str, object] = {"urls": url}
            if url.startswith("turn") and self.turn_username:
                server.update(username=self.turn_username, credential=turn_password)
            ice.append(server)
        return {
            "wssUrl": self.wss_url,
            "wssPort": self.wss_port,
            "username": self.username,
            "dial": self.dial,
            "iceServers": ice,
            "iceTransportPolicy": self.ice_transport_policy,
            "mediaTimeoutMs": round(self.media_timeout_seconds * 1000),
            "codecs": list(self.codecs),
        }
