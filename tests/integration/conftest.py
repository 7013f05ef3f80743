"""Fixtures that run the real parts: a private Asterisk per test session and the bridge service.

Nothing here skips: a missing Asterisk, sipp or tcpdump is an error that fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.app.service import BridgeService
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.loading import load_agent
from bridge.pbx.instance import AsteriskInstance, AsteriskSettings
from bridge.pipelines.base import PipelineFactory
from bridge.routing.services import RoutingServices
from tests.support.servers import free_tcp_port, free_udp_port

# Test-only dialplan, included by the shipped extensions.conf (#tryinclude extensions_custom.conf).
TEST_DIALPLAN = """
[bridge-tests]
; A dialplan transfer target: keep what the agent told the dialplan where the test can read it.
exten => vars,1,Set(GLOBAL(SEEN_RESULT)=${BRIDGE_RESULT})
 same => n,Set(GLOBAL(SEEN_INTENT)=${AI_INTENT})
 same => n,Set(GLOBAL(SEEN_CALLER_NAME)=${AI_CALLER_NAME})
 same => n,Set(GLOBAL(SEEN_SUMMARY)=${AI_SUMMARY})
 same => n,Hangup()
; An outbound callee that reads keypad digits (DTMF sent by the bridge) and keeps them.
exten => 5000,1,Answer()
 same => n,Read(DIGITS,,4,,,15)
 same => n,Set(GLOBAL(KEYPAD_DIGITS)=${DIGITS})
 same => n,Hangup()
; A caller already waiting in the sales queue.
exten => wait-sales,1,Answer()
 same => n,Queue(sales,,,,120)
"""


def private_settings(**overrides: Any) -> AsteriskSettings:
    """Settings for a private test Asterisk: free ports, random passwords, its own RTP range."""
    rtp_start = random.randrange(20000, 30000, 1000)
    settings = AsteriskSettings(
        sip_port=free_udp_port(),
        http_port=free_tcp_port(),
        ami_port=free_tcp_port(),
        https_port=free_tcp_port(),
        webphone_password=f"web-{random.getrandbits(32):x}",
        rtp_start=rtp_start,
        rtp_end=rtp_start + 999,
        ari_password=f"test-{random.getrandbits(32):x}",
        ami_password=f"test-{random.getrandbits(32):x}",
        ari_app="ai-bridge-test",
    )
    return dataclasses.replace(settings, **overrides)


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    settings = private_settings()
    instance = AsteriskInstance(tmp_path_factory.mktemp("asterisk"), settings)
    instance.etc_dir.mkdir(parents=True, exist_ok=True)
    (instance.etc_dir / "extensions_custom.conf").write_text(TEST_DIALPLAN)
    # A staff phone at a fixed address (a sipp phone in the tests), so queues see it as reachable.
    phone_port = free_udp_port()
    settings.extra["TEST_PHONE_PORT"] = str(phone_port)
    (instance.etc_dir / "pjsip_custom.conf").write_text(
        "[queue-phone](staff-phone)\naors = queue-phone\nauth = queue-phone-auth\n"
        f"[queue-phone-auth]\ntype = auth\nauth_type = userpass\nusername = queue-phone\n"
        f"password = phone-{random.getrandbits(64):x}\n"
        f"[queue-phone]\ntype = aor\ncontact = sip:phone@127.0.0.1:{phone_port}\n"
    )
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def bridge_config(asterisk: AsteriskInstance, **media: object) -> dict[str, object]:
    settings = asterisk.settings
    return {
        "ari": {
            "url": settings.ari_url,
            "username": settings.ari_user,
            "password": settings.ari_password,
            "app": settings.ari_app,
        },
        "media": {"rtp_port_min": 0, "rtp_port_max": 0, **media},
        "log": {"level": "debug"},
        "ami": {
            "host": settings.bind_host,
            "port": settings.ami_port,
            "username": settings.ami_user,
            "password": settings.ami_password,
        },
        "api": {"enabled": False},
        "storage": {
            "url": f"sqlite:///{asterisk.base_dir / 'bridge-data' / 'calls.db'}",
            "spool_dir": str(asterisk.base_dir / "bridge-data" / "spool"),
        },
    }


@contextlib.asynccontextmanager
async def running_bridge(
    asterisk: AsteriskInstance,
    pipelines: PipelineFactory | None = None,
    agent: Agent | None = None,
    conversation: dict[str, object] | None = None,
    overrides: dict[str, object] | None = None,
    **media: object,
) -> AsyncIterator[BridgeService]:
    """Run the real bridge service against the instance until the block ends.

    With `agent` (models loaded once per test session) the product's conversation pipeline runs;
    otherwise `pipelines`, or echo.
    """
    raw = bridge_config(asterisk, **media)
    for section, values in (overrides or {}).items():
        current = raw.get(section)
        raw[section] = {**current, **values} if isinstance(current, dict) and isinstance(values, dict) else values
    raw["pipeline"] = {"kind": "agent" if agent is not None else "echo"}
    config = parse_config(raw)
    if agent is not None:
        settings = agent.settings.model_copy(update=conversation or {})
        agent = dataclasses.replace(
            agent,
            settings=settings,
            routing=RoutingServices.from_config(config.routing),
            personas=dict(config.personas),
        )
    service = BridgeService(config, pipelines, agent)
    task = asyncio.create_task(service.run())
    try:
        connected = asyncio.create_task(service.events.connected.wait())
        # Start-up includes evaluating each persona's prompt (~10 s for a new one with the 1.5B model).
        await asyncio.wait([connected, task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        connected.cancel()
        if task.done():
            task.result()  # start-up failed: raise its error here
        if not service.events.connected.is_set():
            raise TimeoutError("the bridge did not connect to ARI in 60 s")
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="session")
def agent() -> Agent:
    """The default local models (Whisper tiny.en, Qwen2.5 1.5B, Piper joe), loaded once per run."""
    return load_agent(parse_config({}))


async def wait_for_finished_calls(service: BridgeService, count: int, timeout: float = 15.0) -> None:
    async def _wait() -> None:
        async with service.app.call_finished:
            await service.app.call_finished.wait_for(lambda: len(service.app.finished) >= count)

    await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
