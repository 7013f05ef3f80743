"""`bridge call`: a test call through the real dialplan into the running agent, transcript printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.commands.call import TEST_CALLER, run_test_call
from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge

pytestmark = pytest.mark.integration


async def test_bridge_call_prints_the_agents_answer(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_bridge(asterisk, agent=agent) as service:
        status = await asyncio.to_thread(run_test_call, service.config, "Where are you located?", "18005550100")
        records = list(service.app.finished)

    printed = capsys.readouterr().out
    assert status == 0, printed
    assert [record.caller for record in records] == [TEST_CALLER]
    assert "caller:" in printed and "located" in printed.lower(), printed
    assert any(word in printed.lower() for word in ("harbour", "harbor", "street")), printed
