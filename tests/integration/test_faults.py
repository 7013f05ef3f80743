"""Faults with the real parts: the ARI socket cut mid-call, the bridge killed mid-call, Asterisk
restarted mid-call, and a soak of concurrent calls that must leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.app.service import BridgeService
from bridge.ari.client import AriClient
from bridge.pbx.instance import AsteriskInstance, AsteriskSettings
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import assert_nothing_left, caller_pcap
from tests.integration.test_routing_fallback import wait_for_queue_caller
from tests.support.audio import dominant_frequency
from tests.support.bridge_process import echo_config, start_bridge
from tests.support.capture import LoopbackCapture
from tests.support.servers import free_port as _free_port
from tests.support.sipp import SippCaller
from tests.support.tcp_proxy import TcpProxy
from tests.support.wire import calls_on_wire

pytestmark = pytest.mark.integration


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def connected_calls(service: BridgeService, count: int = 1) -> Callable[[], bool]:
    calls = service.app.calls.values()
    return lambda: len(calls) == count and all(call.record.media_connected for call in calls)


async def test_ari_socket_cut_mid_call_is_restored_and_the_call_goes_on(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    proxy = TcpProxy(("127.0.0.1", asterisk.settings.http_port))
    await proxy.start()
    try:
        async with running_bridge(asterisk, overrides={"ari": {"url": proxy.url}}) as service:
            caller = SippCaller(
                workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir, 8.0), hold_ms=8500
            )
            async with LoopbackCapture(workdir / "cut.pcap", f"udp and port {caller.media_port}") as capture:
                call = asyncio.create_task(caller.run(timeout=40))
                await until(connected_calls(service), 10, "the call to be connected")
                assert await proxy.cut() >= 1
                await until(lambda: service.events.connections >= 2, 15, "the events socket to come back")
                result = await call
            await wait_for_finished_calls(service, 1)
            record = service.app.finished[0]
            await assert_nothing_left(asterisk, service)
    finally:
        await proxy.close()

    assert result.successful_calls == 1, result.output
    assert record.end_reason.startswith("caller:"), record.end_reason  # the hang-up came through the new socket
    (wire,) = calls_on_wire(capture.datagrams(), caller.media_port)
    echoed_late = wire.received_between(6.0, 8.0)  # well after the cut: media never depended on ARI
    assert len(echoed_late) > 8000 and dominant_frequency(echoed_late, 8000) == pytest.approx(440, abs=15)


async def test_killed_bridge_leaves_the_caller_to_the_next_one_which_sends_them_to_the_queue(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    settings = asterisk.settings
    config = workdir / "bridge.toml"
    config.write_text(echo_config(asterisk, workdir))
    process = await start_bridge(config)
    try:
        caller = SippCaller(workdir, ("127.0.0.1", settings.sip_port), caller_pcap(workdir, 20.0), hold_ms=20000)
        call = asyncio.create_task(caller.run(timeout=60))
        await until_bridged(asterisk, 15)
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        async with running_bridge(asterisk) as service:
            output = await wait_for_queue_caller(asterisk, timeout=20)
            assert await service.client.list_bridges() == []  # the dead bridge's mixing bridge was removed
        assert "support has 1 calls" in output
        await call
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until_bridged(asterisk: AsteriskInstance, seconds: float) -> None:
    """The doomed bridge process has the caller: one of its mixing bridges holds two channels."""
    settings = asterisk.settings
    async with AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app) as ari:
        for _ in range(int(seconds / 0.1)):
            if any(len(bridge.get("channels", [])) == 2 for bridge in await ari.list_bridges()):
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the bridge process never bridged the call")


async def test_asterisk_crash_and_restart_end_its_calls_cleanly_and_new_calls_work(
    tmp_path: Path, workdir: Path
) -> None:
    rtp_start = 47000
    settings = AsteriskSettings(
        sip_port=_free_port(socket.SOCK_DGRAM), http_port=_free_port(socket.SOCK_STREAM),
        ami_port=_free_port(socket.SOCK_STREAM), https_port=_free_port(socket.SOCK_STREAM),
        rtp_start=rtp_start, rtp_end=rtp_start + 499,
        ari_password="restart", ami_password="restart", ari_app="ai-bridge-restart",
    )  # fmt: skip
    pbx = AsteriskInstance(tmp_path / "restarting", settings)
    pbx.start()
    try:
        async with running_bridge(pbx) as service:
            first = SippCaller(workdir, ("127.0.0.1", settings.sip_port), caller_pcap(workdir, 10.0), hold_ms=10000)
            doomed = asyncio.create_task(first.run(timeout=30))
            await until(connected_calls(service), 10, "the first call to be connected")
            assert pbx.process is not None
            os.killpg(pbx.process.pid, signal.SIGKILL)  # a crash: no hang-up events are sent
            await asyncio.to_thread(pbx.process.wait)
            await asyncio.to_thread(pbx.start)
            await until(lambda: service.events.connections >= 2, 30, "the events socket to come back")
            await wait_for_finished_calls(service, 1, timeout=20)
            ended = service.app.finished[0]
            second = SippCaller(workdir, ("127.0.0.1", settings.sip_port), caller_pcap(workdir), hold_ms=2000)
            result = await second.run(timeout=30)
            await wait_for_finished_calls(service, 2)
            await assert_nothing_left(pbx, service)
        await doomed  # sipp's own call was cut by the restart; it ends by itself
    finally:
        pbx.stop()

    assert ended.end_reason == "caller:missing_after_reconnect", ended.end_reason
    assert result.successful_calls == 1, result.output
    assert service.app.finished[1].media.packets_in > 50


async def test_soak_of_concurrent_calls_leaves_nothing_behind(asterisk: AsteriskInstance, workdir: Path) -> None:
    rounds, concurrent = 3, 8
    async with running_bridge(asterisk) as service:
        open_files = len(os.listdir("/proc/self/fd"))
        for round_number in range(rounds):
            caller = SippCaller(
                workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir, 3.0),
                hold_ms=3000, calls=concurrent, concurrent=concurrent, rate=20,
            )  # fmt: skip
            result = await caller.run(timeout=60)
            assert result.successful_calls == concurrent, result.output
            await wait_for_finished_calls(service, concurrent * (round_number + 1), timeout=30)
        await assert_nothing_left(asterisk, service)
        assert await service.records.drain(10)
        stored = await service.store.search(limit=1000)
        files_after = len(os.listdir("/proc/self/fd"))
        ids = {record.channel_id for record in service.app.finished}

    assert len(ids) == rounds * concurrent
    assert ids <= {row["id"] for row in stored}  # every call has its row: no lost records
    assert all(record.media.packets_in > 100 and record.media.malformed == 0 for record in service.app.finished)
    assert files_after <= open_files + 2, (open_files, files_after)  # sockets and files were all closed
