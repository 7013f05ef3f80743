"""`bridge doctor` against a real Asterisk: all green when it is right, the fix named when it is not."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from bridge.commands.doctor import diagnose
from bridge.config import parse_config
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import bridge_config
from tests.support.servers import free_port as _free_port

pytestmark = pytest.mark.integration


def config_with(asterisk: AsteriskInstance, **sections: dict[str, Any]) -> dict[str, Any]:
    raw = bridge_config(asterisk)
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}  # type: ignore[dict-item]
    return raw


async def test_doctor_finds_nothing_wrong_with_a_working_set_up(asterisk: AsteriskInstance) -> None:
    findings = await diagnose(parse_config(config_with(asterisk)))
    assert [f.line() for f in findings if not f.ok] == []
    checks = {f.check for f in findings}
    assert {"ari", "dialplan", "ami", "routing", "storage", "model stt", "model llm", "model tts"} <= checks


async def test_doctor_names_a_bridge_the_dialplan_never_offers_calls_to(asterisk: AsteriskInstance) -> None:
    raw = config_with(asterisk, ari={"app": "ai-bridge-2"})
    failures = {f.check: f.detail for f in await diagnose(parse_config(raw)) if not f.ok}
    assert list(failures) == ["dialplan"], failures
    assert "ari.app 'ai-bridge-2' is not in the dialplan's BRIDGE_APPS (ai-bridge-test)" in failures["dialplan"]
    assert "add it to BRIDGE_APPS in [globals]" in failures["dialplan"]


async def test_doctor_names_each_problem_and_its_fix(asterisk: AsteriskInstance) -> None:
    raw = config_with(
        asterisk,
        ari={"password": "wrong"},
        ami={"password": "wrong"},
        storage={"url": "postgresql://nobody@127.0.0.1:1/none"},
    )
    failures = {f.check: f.detail for f in await diagnose(parse_config(raw)) if not f.ok}
    assert "401" in failures["ari"] and "ari.conf" in failures["ari"], failures
    assert "manager.conf" in failures["ami"], failures
    assert "storage.url" in failures["storage"], failures


async def test_doctor_names_a_routing_target_asterisk_does_not_have(asterisk: AsteriskInstance) -> None:
    targets = {"x": {"kind": "queue", "destination": "nosuch", "description": "x"}}
    raw = config_with(asterisk, routing={"targets": targets, "operator": None})
    failures = [f.detail for f in await diagnose(parse_config(raw)) if not f.ok]
    assert failures == [
        "routing.targets.x.destination: queue 'nosuch' does not exist in Asterisk (queues there: sales, support); "
        "add it to queues.conf or fix the name"
    ]


async def test_doctor_checks_the_web_phone_wss_and_account(asterisk: AsteriskInstance) -> None:
    api = {"enabled": True, "port": _free_port(socket.SOCK_STREAM)}
    good = config_with(asterisk, api=api, webphone={"wss_port": asterisk.settings.https_port})
    found = {f.check: f for f in await diagnose(parse_config(good))}
    dead_port = _free_port(socket.SOCK_STREAM)
    bad = config_with(asterisk, api=api, webphone={"wss_port": dead_port, "username": "nosuch"})
    failures = {f.check: f.detail for f in await diagnose(parse_config(bad)) if not f.ok}

    assert found["webphone wss"].ok and "not trusted (self-signed?)" in found["webphone wss"].detail
    assert found["webphone account"].ok, found["webphone account"]
    assert f"nothing answers at wss://127.0.0.1:{dead_port}/ws" in failures["webphone wss"], failures
    assert "webphone.wss_port" in failures["webphone wss"]
    assert "no PJSIP endpoint 'nosuch'" in failures["webphone account"], failures
