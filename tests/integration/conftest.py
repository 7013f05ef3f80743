"""Fixtures that run the real parts: a private Asterisk per test session and the bridge service.

Nothing here skips: a missing Asterisk, sipp or tcpdump is an error that fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.app.service import BridgeService
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.loading import load_agent
from bridge.pbx.instance import AsteriskInstance, AsteriskSettings
from bridge.pipelines.factory import PipelineFactory


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    rtp_start = random.randrange(20000, 30000, 1000)
    settings = AsteriskSettings(
        sip_port=_free_port(socket.SOCK_DGRAM),
        http_port=_free_port(socket.SOCK_STREAM),
        ami_port=_free_port(socket.SOCK_STREAM),
        rtp_start=rtp_start,
        rtp_end=rtp_start + 999,
        ari_password=f"test-{random.getrandbits(32):x}",
        ami_password=f"test-{random.getrandbits(32):x}",
        ari_app="ai-bridge-test",
    )
    instance = AsteriskInstance(tmp_path_factory.mktemp("asterisk"), settings)
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
    }


@contextlib.asynccontextmanager
async def running_bridge(
    asterisk: AsteriskInstance,
    pipelines: PipelineFactory | None = None,
    agent: Agent | None = None,
    conversation: dict[str, object] | None = None,
    **media: object,
) -> AsyncIterator[BridgeService]:
    """Run the real bridge service against the instance until the block ends.

    With `agent` (models loaded once per test session) the product's conversation pipeline runs;
    otherwise `pipelines`, or echo.
    """
    raw = bridge_config(asterisk, **media)
    if agent is not None:
        raw["pipeline"] = {"kind": "agent"}
        if conversation:
            agent = dataclasses.replace(agent, settings=agent.settings.model_copy(update=conversation))
    else:
        raw["pipeline"] = {"kind": "echo"}
    service = BridgeService(parse_config(raw), pipelines, agent)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.events.connected.wait(), 10)
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="session")
def agent() -> Agent:
    """The default local models (Whisper tiny.en, Qwen2.5 0.5B, Piper joe), loaded once per run."""
    return load_agent(parse_config({}))


async def wait_for_finished_calls(service: BridgeService, count: int, timeout: float = 15.0) -> None:
    async def _wait() -> None:
        async with service.app.call_finished:
            await service.app.call_finished.wait_for(lambda: len(service.app.finished) >= count)

    await asyncio.wait_for(_wait(), timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
