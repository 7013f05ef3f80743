"""The dashboard behind its login: a live call appears while it runs, then its transcript and waterfall."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_routing import place_call
from tests.support.servers import free_port as _free_port
from tests.support.speech import caller_says, silence

pytestmark = pytest.mark.integration


async def wait_for_live_call(http: aiohttp.ClientSession, base: str) -> list[dict[str, object]]:
    for _ in range(200):
        live = await (await http.get(f"{base}/dashboard/api/live")).json()
        if live:
            return list(live)
        await asyncio.sleep(0.05)
    raise AssertionError("the call never showed up as live")


async def test_dashboard_shows_live_and_finished_calls_behind_a_login(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DASHBOARD_PASSWORD", "letmein")
    port = _free_port(socket.SOCK_STREAM)
    overrides = {"api": {"enabled": True, "port": port, "dashboard_password_env": "TEST_DASHBOARD_PASSWORD"}}
    base = f"http://127.0.0.1:{port}"
    audio = silence(4.0) + caller_says("Where are you located?") + silence(6.0)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
    async with (
        running_bridge(asterisk, agent=agent, overrides=overrides) as service,
        aiohttp.ClientSession(cookie_jar=jar) as http,
    ):
        away = await http.get(f"{base}/dashboard", allow_redirects=False)
        assert (away.status, away.headers["Location"]) == (303, "/login")
        assert (await http.get(f"{base}/dashboard/api/live", allow_redirects=False)).status == 303
        assert (await http.post(f"{base}/login", data={"password": "wrong"})).status == 401
        signed_in = await http.post(f"{base}/login", data={"password": "letmein"})
        assert signed_in.status == 200 and "Live calls" in await signed_in.text()

        call = asyncio.create_task(place_call(asterisk, workdir, audio, "dashboard"))
        (live,) = await wait_for_live_call(http, base)
        await call
        await wait_for_finished_calls(service, 1)
        assert await service.records.drain(10)
        history = await (await http.get(f"{base}/dashboard", params={"q": "located"})).text()
        detail = await (await http.get(f"{base}/dashboard/calls/{live['id']}")).text()
        nothing = await (await http.get(f"{base}/dashboard", params={"q": "no such words"})).text()

    assert live["caller"] == "15551230000" and live["persona"] == "receptionist"
    assert f"/dashboard/calls/{live['id']}" in history
    assert f"/dashboard/calls/{live['id']}" not in nothing
    assert "located" in detail.lower() and "first frame out" in detail and "class=waterfall" in detail
