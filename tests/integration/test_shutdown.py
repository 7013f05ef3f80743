"""SIGTERM drains the bridge: no new calls, grace for calls in progress, then people, not a hang-up."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstance
from tests.integration.test_media_path import caller_pcap
from tests.integration.test_routing_fallback import wait_for_queue_caller
from tests.support.bridge_process import LogTail, echo_config
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration

GRACE_SECONDS = 3


@pytest.mark.timeout(120)
async def test_sigterm_lets_the_call_go_on_then_hands_it_to_the_fallback_queue(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    config = workdir / "bridge.toml"
    config.write_text(echo_config(asterisk, workdir, f"[limits]\nshutdown_grace_seconds = {GRACE_SECONDS}\n"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    log = LogTail(process.stdout)
    target = ("127.0.0.1", asterisk.settings.sip_port)
    try:
        await log.wait_for(b"ari.connected")
        talking = SippCaller(workdir, target, caller_pcap(workdir), caller="15550004001", hold_ms=20000)
        first = asyncio.create_task(talking.run(timeout=60))
        await log.wait_for(b"call.start", timeout=20)
        process.send_signal(signal.SIGTERM)
        await log.wait_for(b"stasis.draining", timeout=10)
        assert process.returncode is None  # still serving the call in progress

        late = SippCaller(workdir, target, caller_pcap(workdir), caller="15550004002", hold_ms=8000)
        second = asyncio.create_task(late.run(timeout=60))
        await log.wait_for(b"call.declined", timeout=10)
        output = await wait_for_queue_caller(asterisk, timeout=2)
        assert "support has 1 calls" in output  # the new caller waits for a person

        await log.wait_for(b"call.handed_over_at_shutdown", timeout=GRACE_SECONDS + 10)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        output = (await asyncio.to_thread(asterisk.cli, f"queue show {asterisk.settings.fallback_queue}")).stdout
        assert "support has 2 calls" in output, output  # the first caller was handed over, not hung up
        results = await asyncio.gather(first, second)
        assert all(result.successful_calls == 1 for result in results), [r.output for r in results]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    with sqlite3.connect(workdir / "calls.db") as database:
        reasons = sorted(row[0] for row in database.execute("select end_reason from calls"))
    assert reasons == ["declined:shutting_down", "handed_back_to_dialplan:failed"]
