"""When the bridge cannot take a call, the shipped dialplan puts the caller in the human queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import caller_pcap
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration


async def wait_for_queue_caller(asterisk: AsteriskInstance, timeout: float = 10) -> str:
    """Poll `queue show` until a SIP caller is waiting in the fallback queue."""
    queue = asterisk.settings.fallback_queue
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        output = (await asyncio.to_thread(asterisk.cli, f"queue show {queue}")).stdout
        if "Callers:" in output and "PJSIP/trunk-" in output:
            return output
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"caller never reached queue {queue}:\n{output}")
        await asyncio.sleep(0.1)


async def test_caller_goes_to_queue_when_bridge_is_not_connected(asterisk: AsteriskInstance, workdir: Path) -> None:
    caller = SippCaller(
        workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir), caller="15550001111", hold_ms=3000
    )
    call = asyncio.create_task(caller.run(timeout=30))
    output = await wait_for_queue_caller(asterisk)
    assert "support has 1 calls" in output
    result = await call
    assert result.successful_calls == 1, result.output


async def test_ari_error_during_setup_hands_caller_to_queue(asterisk: AsteriskInstance, workdir: Path) -> None:
    # An address Asterisk refuses for externalMedia makes ARI answer with an error mid set-up.
    async with running_bridge(asterisk, None, advertise_host="not-an-address") as service:
        caller = SippCaller(
            workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir), caller="15550002222", hold_ms=3000
        )
        call = asyncio.create_task(caller.run(timeout=30))
        await wait_for_queue_caller(asterisk)
        await wait_for_finished_calls(service, 1)
        record = service.app.finished[0]
        assert record.error and "externalMedia" in record.error
        assert record.end_reason == "handed_back_to_dialplan:failed"
        result = await call
        assert result.successful_calls == 1, result.output
        assert await service.client.list_bridges() == []


async def test_a_call_over_max_calls_waits_in_the_fallback_queue_not_with_the_agent(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    async with running_bridge(asterisk, None, overrides={"limits": {"max_calls": 2}}) as service:
        target = ("127.0.0.1", asterisk.settings.sip_port)
        callers = [
            SippCaller(workdir, target, caller_pcap(workdir), caller=f"155500030{i}", hold_ms=6000) for i in range(3)
        ]
        calls = [asyncio.create_task(caller.run(timeout=40)) for caller in callers]
        await wait_for_finished_calls(service, 1)
        declined = service.app.finished[0]
        assert declined.end_reason == "declined:at_capacity"
        assert len(service.app.calls) == 2  # the other two talk to the bridge
        output = await wait_for_queue_caller(asterisk, timeout=1.0)  # within a second of arriving
        assert "support has 1 calls" in output
        metrics = service.metrics.render().decode()
        assert 'bridge_calls_declined_total{reason="at_capacity"} 1.0' in metrics
        assert "bridge_max_calls 2.0" in metrics
        results = await asyncio.gather(*calls)
        assert all(result.successful_calls == 1 for result in results), [r.output for r in results]
        await wait_for_finished_calls(service, 3)
        assert sorted(record.end_reason.split(":")[0] for record in service.app.finished) == [
            "caller",
            "caller",
            "declined",
        ]
