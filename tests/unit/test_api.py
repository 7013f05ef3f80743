"""The HTTP API: token check, request validation, outbound call submission (dialler faked)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import ConfigError
from bridge.config.ops import ApiConfig
from bridge.config.routing import OutboundConfig
from bridge.records import CallRecord, ConversationReport, TurnRecord
from bridge.telephony.outbound import BadNumber, OutboundCall, OutboundDialer, OutboundSettings
from bridge.web.api import build_api


class FakeDialer:
    def __init__(self) -> None:
        self.calls: dict[str, OutboundCall] = {}
        self.app_personas = {"receptionist", "reminder"}

    def submit(self, number: str, persona: str | None = None, dtmf: str = "") -> OutboundCall:
        if not number.isdigit():
            raise BadNumber(f"{number!r} is not a phone number")
        call = OutboundCall(f"out-{len(self.calls)}", number, persona or "receptionist", dtmf)
        self.calls[call.id] = call
        return call


async def client_for(monkeypatch: pytest.MonkeyPatch, token: str | None) -> tuple[TestClient[Any, Any], FakeDialer]:
    if token:
        monkeypatch.setenv("TEST_API_TOKEN", token)
    dialer = FakeDialer()
    app = build_api(ApiConfig(token_env="TEST_API_TOKEN"), dialer, lambda: {"ari": True})
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, dialer


async def test_token_is_required_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = await client_for(monkeypatch, "s3cret")
    try:
        assert (await client.get("/api/health")).status == 401
        wrong = await client.get("/api/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        good = await client.get("/api/health", headers={"Authorization": "Bearer s3cret"})
        assert good.status == 200 and await good.json() == {"ari": True}
    finally:
        await client.close()


async def test_outbound_calls_are_validated_and_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    client, dialer = await client_for(monkeypatch, None)
    try:
        bad = await client.post("/api/calls", json={"number": "PJSIP/evil"})
        assert bad.status == 400 and "not a phone number" in (await bad.json())["error"]
        persona = await client.post("/api/calls", json={"number": "5551234", "persona": "pirate"})
        assert persona.status == 400
        placed = await client.post("/api/calls", json={"number": "5551234", "persona": "reminder", "dtmf": "1"})
        body = await placed.json()
        assert placed.status == 202 and body["status"] == "queued" and body["persona"] == "reminder"
        fetched = await client.get(f"/api/calls/{body['id']}")
        assert (await fetched.json())["number"] == "5551234"
        assert (await client.get("/api/calls/out-nope")).status == 404
        assert list(dialer.calls) == [body["id"]]
    finally:
        await client.close()


async def test_a_finished_outbound_call_is_served_with_its_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    client, dialer = await client_for(monkeypatch, None)
    answered = dialer.submit("5551234")
    answered.record = CallRecord("c1", "5551234", "receptionist", end_reason="agent:caller_goodbye")
    answered.record.conversation = ConversationReport("receptionist", "caller_goodbye", turns=[TurnRecord(0, "bye")])
    unanswered = dialer.submit("5551235")
    unanswered.record = CallRecord("c2", "5551235", "receptionist", end_reason="caller:StasisEnd")
    try:
        first = await (await client.get(f"/api/calls/{answered.id}")).json()
        second = await (await client.get(f"/api/calls/{unanswered.id}")).json()
    finally:
        await client.close()
    assert first["end_reason"] == "agent:caller_goodbye"
    assert first["conversation"] == answered.record.conversation.as_dict()
    assert first["conversation"]["turns"][0]["caller"] == "bye"
    assert second["conversation"] == {}  # a pipeline that keeps no conversation, as before


def test_api_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="BRIDGE_API_TOKEN"):
        build_api(ApiConfig(bind="0.0.0.0"), FakeDialer(), dict)


def test_only_numbers_reach_the_dial_string() -> None:
    settings = OutboundSettings.resolve(OutboundConfig(), "receptionist", frozenset())
    dialer = OutboundDialer(None, None, lambda: settings)  # type: ignore[arg-type]
    for number in ("PJSIP/evil", "123&Local/x", "", "12 34", "+1555" + "1" * 40):
        with pytest.raises(BadNumber):
            dialer.submit(number)
    with pytest.raises(BadNumber):
        dialer.submit("5551234", dtmf="1&2")


async def test_dns_rebinding_and_cross_site_writes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    client, dialer = await client_for(monkeypatch, None)
    try:
        rebound = await client.get("/api/calls", headers={"Host": "evil.example:8090"})
        assert rebound.status == 421 and "api.allowed_hosts" in (await rebound.json())["error"]
        assert (await client.get("/api/calls", headers={"Host": "localhost:8090"})).status == 200
        cross = await client.post("/api/calls", json={"number": "5551234"}, headers={"Origin": "http://evil.example"})
        assert cross.status == 403
        form = await client.post("/api/calls", data={"number": "5551234"})
        assert form.status == 415
        host = f"{client.host}:{client.port}"
        same = await client.post("/api/calls", json={"number": "5551234"}, headers={"Origin": f"http://{host}"})
        assert same.status == 202
        assert len(dialer.calls) == 1  # only the same-origin JSON request placed a call
    finally:
        await client.close()


def test_host_names_allowed() -> None:
    from bridge.web.request_guard import allowed_host_names, host_name

    assert host_name("[::1]:8090") == "::1" and host_name("LocalHost:80") == "localhost"
    assert allowed_host_names("0.0.0.0", []) is None  # any name: the token protects it
    names = allowed_host_names("0.0.0.0", ["pbx.example.com"])
    assert names is not None and "pbx.example.com" in names and "127.0.0.1" in names
    bound = allowed_host_names("192.168.1.5", [])
    assert bound is not None and "192.168.1.5" in bound and "evil.example" not in bound
