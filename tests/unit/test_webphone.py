"""The web phone's server side: its config, its routes on the API server, and the WSS certificate."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import ConfigError, parse_config
from bridge.config.ops import ApiConfig, WebphoneConfig
from bridge.pbx.certs import self_signed
from bridge.records import CallRecord, ConversationReport, TurnRecord
from bridge.web.api import build_api
from bridge.web.webphone import WEB_ROOT, PhoneCall, add_phone_routes
from tests.unit.test_api import FakeDialer

SESSION = "0f8e3c1a-6b2d-4e5f-9a7b-1c2d3e4f5a6b"
REPO = Path(__file__).resolve().parents[2]


def finished_call(session: str) -> PhoneCall | None:
    if session != SESSION:
        return None
    record = CallRecord("1.1", "webphone", "receptionist", "agent", caller_codec="opus", client_session=SESSION)
    record.end_reason = "caller:ChannelHangupRequest"
    record.conversation = ConversationReport(
        greeting="Hello, Sam here.",
        turns=[TurnRecord(caller="Are you open?", agent="Yes.", latency_ms={"first_frame_out": 540})],
        errors=["LlmError: internal detail"],
    )
    return PhoneCall(record, record.conversation, live=False)


async def phone_client(monkeypatch: pytest.MonkeyPatch, **webphone: Any) -> TestClient[Any, Any]:
    monkeypatch.setenv("TEST_API_TOKEN", "s3cret")
    config = WebphoneConfig(**webphone)
    app = build_api(
        ApiConfig(token_env="TEST_API_TOKEN"),
        FakeDialer(),
        lambda: {"ari": True},
        phone=lambda app: add_phone_routes(app, config, finished_call),
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_page_needs_no_api_token_but_the_api_still_does(monkeypatch: pytest.MonkeyPatch) -> None:
    client = await phone_client(monkeypatch)
    try:
        page = await client.get("/phone")
        assert page.status == 200 and "Call the AI agent" in await page.text()
        script = await client.get("/phone/static/vendor/jssip.min.js")
        assert script.status == 200 and len(await script.read()) > 100_000
        assert (await client.get("/phone/static/phone.js")).status == 200
        assert (await client.get("/api/calls")).status == 401
    finally:
        await client.close()


async def test_settings_tell_the_page_where_asterisk_is_and_nothing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TURN_PASSWORD", "turn-pass")
    client = await phone_client(
        monkeypatch,
        wss_url="wss://pbx.example.com:8089/ws",
        ice_servers=["stun:stun.example.com:3478", "turn:turn.example.com:3478"],
        turn_username="web",
    )
    try:
        settings = await (await client.get("/phone/settings.json")).json()
    finally:
        await client.close()
    assert settings == {
        "wssUrl": "wss://pbx.example.com:8089/ws",
        "wssPort": 8089,
        "username": "webphone",
        "dial": "agent",
        "iceServers": [
            {"urls": "stun:stun.example.com:3478"},
            {"urls": "turn:turn.example.com:3478", "username": "web", "credential": "turn-pass"},
        ],
        "iceTransportPolicy": "all",
        "mediaTimeoutMs": 10000,
        "codecs": [],
    }
    assert "s3cret" not in json.dumps(settings)


async def test_a_call_is_found_only_by_its_session_id(monkeypatch: pytest.MonkeyPatch) -> None:
    client = await phone_client(monkeypatch)
    try:
        found = await client.get(f"/phone/calls/{SESSION}")
        view = await found.json()
        unknown = await client.get("/phone/calls/" + "a" * 32)
        malformed = await client.get("/phone/calls/x';drop")
    finally:
        await client.close()
    assert found.status == 200 and view["state"] == "ended" and view["caller_codec"] == "opus"
    assert view["greeting"] == "Hello, Sam here." and view["turns"][0]["agent"] == "Yes."
    assert "errors" not in view, "internal errors are for the dashboard, not the caller"
    assert unknown.status == 404 and malformed.status == 400


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"wss_url": "https://pbx:8089/ws"}, "WebSocket URL"),
        ({"ice_servers": ["stun.example.com"]}, "not a STUN/TURN URL"),
        ({"ice_servers": ["turn:turn.example.com"]}, r"webphone\.turn_username"),
        ({"ice_transport_policy": "none"}, "ice_transport_policy"),
    ],
)
def test_bad_webphone_settings_name_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"webphone": values})


def test_api_https_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls_cert_file and api\.tls_key_file go together"):
        parse_config({"api": {"tls_cert_file": str(tmp_path / "cert.pem")}})
    with pytest.raises(ConfigError, match="no such file"):
        parse_config({"api": {"tls_cert_file": str(tmp_path / "c.pem"), "tls_key_file": str(tmp_path / "k.pem")}})


def test_self_signed_certificate_names_the_hosts_and_is_kept(tmp_path: Path) -> None:
    pair = self_signed(tmp_path / "keys", ["pbx.example.com", "192.0.2.7"])
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pair.cert_file), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "DNS:pbx.example.com" in text and "IP Address:192.0.2.7" in text
    assert pair.key_file.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    before = pair.cert_file.read_bytes()
    assert self_signed(tmp_path / "keys").cert_file.read_bytes() == before, "an existing certificate was replaced"


def test_the_bundled_sip_library_is_the_pinned_npm_release() -> None:
    package = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    pinned = package["devDependencies"]["jssip"]
    assert lock["packages"]["node_modules/jssip"]["version"] == pinned
    bundle = (WEB_ROOT / "static" / "vendor" / "jssip.min.js").read_text()
    assert re.search(rf'"{re.escape(pinned)}"', bundle), "the bundle is not built from the pinned JsSIP"
    assert (WEB_ROOT / "static" / "vendor" / "JSSIP-LICENSE.md").is_file()
