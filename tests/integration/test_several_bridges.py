"""Several bridges on one Asterisk: real `bridge run` processes (echo pipeline) with their own ARI
app names, a private Asterisk rendered with both in BRIDGE_APPS, and real sipp calls.

The shipped [ai-agent] starts each call at the next app in turn (the global BRIDGE_TURN, pinned
here so each test knows where a call starts), offers it to the next app when a bridge is not
connected or declines it, and queues it for a person only when every bridge refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.ari.client import AriClient, AriNotFound
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import private_settings
from tests.integration.test_media_path import caller_pcap
from tests.integration.test_routing_fallback import wait_for_queue_caller
from tests.support.bridge_process import BridgeRun, echo_config
from tests.support.sipp import SippCaller, SippResult

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

APPS = ("several-a", "several-b")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """One Asterisk whose dialplan lists both bridges (what `bridge up` renders from ari.dialplan_apps)."""
    instance = AsteriskInstance(tmp_path_factory.mktemp("several"), private_settings(ari_app=APPS[0], ari_apps=APPS))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class BridgeProcess(BridgeRun):
    """`bridge run` as ARI app `app`, with its own call database."""

    def __init__(self, asterisk: AsteriskInstance, app: str, workdir: Path, max_calls: int = 0) -> None:
        self.app = app
        self.workdir = workdir / app
        self.workdir.mkdir(exist_ok=True)
        config = self.workdir / "bridge.toml"
        limits = f"[limits]\nmax_calls = {max_calls}\nshutdown_grace_seconds = 0\n"
        config.write_text(echo_config(asterisk, self.workdir, limits, app=app, spool_dir=self.workdir / "spool"))
        super().__init__(app, config)

    def end_reasons(self) -> list[str]:
        with sqlite3.connect(self.workdir / "calls.db") as database:
            return sorted(row[0] for row in database.execute("select end_reason from calls"))


@contextlib.asynccontextmanager
async def two_bridges(
    asterisk: AsteriskInstance, workdir: Path, max_calls: int = 0
) -> AsyncIterator[tuple[BridgeProcess, BridgeProcess]]:
    bridges = (
        BridgeProcess(asterisk, APPS[0], workdir, max_calls),
        BridgeProcess(asterisk, APPS[1], workdir, max_calls),
    )
    try:
        await asyncio.gather(*(bridge.start() for bridge in bridges))
        yield bridges
    finally:
        for bridge in bridges:
            await bridge.close()


def next_call_starts_at(asterisk: AsteriskInstance, app: str) -> None:
    """Pin [ai-agent]'s rotation: the next call is offered to `app` first."""
    asterisk.cli(f"dialplan set global BRIDGE_TURN {APPS.index(app)}")


def callers(asterisk: AsteriskInstance, workdir: Path, calls: int, concurrent: int, hold_ms: int) -> SippCaller:
    return SippCaller(
        workdir,
        ("127.0.0.1", asterisk.settings.sip_port),
        caller_pcap(workdir, hold_ms / 1000),
        caller="15550007000",
        hold_ms=hold_ms,
        calls=calls,
        concurrent=concurrent,
    )


async def queue_callers(asterisk: AsteriskInstance) -> str:
    return (await asyncio.to_thread(asterisk.cli, f"queue show {asterisk.settings.fallback_queue}")).stdout


def assert_all_answered(result: SippResult, calls: int) -> None:
    assert result.successful_calls == calls and result.failed_calls == 0, result.output


async def test_two_calls_at_once_land_one_on_each_bridge(shared: AsteriskInstance, workdir: Path) -> None:
    async with two_bridges(shared, workdir, max_calls=1) as (a, b):
        next_call_starts_at(shared, APPS[0])
        sipp = asyncio.create_task(callers(shared, workdir, calls=2, concurrent=2, hold_ms=5000).run(timeout=40))
        await asyncio.gather(a.wait_for("call.media_connected"), b.wait_for("call.media_connected"))
        assert "support has 0 calls" in await queue_callers(shared)
        assert_all_answered(await sipp, 2)
        await asyncio.gather(a.stop(), b.stop())
    # Spread by the rotation, not spilled over: neither bridge had to decline a call.
    assert [reason.split(":")[0] for reason in a.end_reasons()] == ["caller"]
    assert [reason.split(":")[0] for reason in b.end_reasons()] == ["caller"]


async def test_a_bridge_that_was_killed_is_skipped_and_the_call_reaches_the_other(
    shared: AsteriskInstance, workdir: Path
) -> None:
    async with two_bridges(shared, workdir) as (a, b):
        await b.kill()
        await app_gone(shared, APPS[1])
        next_call_starts_at(shared, APPS[1])  # offered to the dead bridge first: STASISSTATUS=FAILED
        sipp = asyncio.create_task(callers(shared, workdir, calls=1, concurrent=1, hold_ms=3000).run(timeout=40))
        await a.wait_for("call.media_connected")
        assert "support has 0 calls" in await queue_callers(shared)  # not the fallback queue
        assert_all_answered(await sipp, 1)
        await a.stop()
    assert [reason.split(":")[0] for reason in a.end_reasons()] == ["caller"]
    ari = shared.settings
    async with AriClient(ari.ari_url, ari.ari_user, ari.ari_password, APPS[0]) as client:
        assert await client.global_variable("BRIDGE_TURN") == "2"  # the call did start at the dead bridge


async def test_when_every_bridge_is_full_the_caller_waits_in_the_fallback_queue(
    shared: AsteriskInstance, workdir: Path
) -> None:
    async with two_bridges(shared, workdir, max_calls=1) as (a, b):
        next_call_starts_at(shared, APPS[0])
        sipp = asyncio.create_task(callers(shared, workdir, calls=3, concurrent=3, hold_ms=6000).run(timeout=40))
        output = await wait_for_queue_caller(shared)
        assert "support has 1 calls" in output
        await asyncio.gather(a.wait_for("call.declined"), b.wait_for("call.declined"))  # each was asked
        assert_all_answered(await sipp, 3)
        await asyncio.gather(a.stop(), b.stop())
    for bridge in (a, b):
        assert [reason.split(":")[0] for reason in bridge.end_reasons()] == ["caller", "declined"], bridge.app
        assert bridge.events("call.declined")[0]["reason"] == "at_capacity"


async def test_a_restarted_bridge_rescues_its_own_caller_and_leaves_the_other_bridges_call_alone(
    shared: AsteriskInstance, workdir: Path
) -> None:
    settings = shared.settings
    async with (
        two_bridges(shared, workdir) as (a, b),
        AriClient(settings.ari_url, settings.ari_user, settings.ari_password, APPS[0]) as ari,
    ):
        next_call_starts_at(shared, APPS[0])
        sipp = asyncio.create_task(callers(shared, workdir, calls=2, concurrent=2, hold_ms=15000).run(timeout=60))
        await asyncio.gather(a.wait_for("call.media_connected"), b.wait_for("call.media_connected"))
        a_channels = sorted(await ari.application_channels())
        a_bridges = [bridge for bridge in await ari.list_bridges() if bridge["name"].startswith(f"{APPS[0]}:")]
        assert len(a_channels) == 2 and len(a_bridges) == 1

        await b.kill()
        restarted = BridgeProcess(shared, APPS[1], workdir)
        try:
            await restarted.start()  # its reconcile has run once this returns
            (summary,) = restarted.events("stasis.reconciled")
            assert (summary["orphans"], summary["bridges"]) == (2, 1)  # B's caller and media leg, B's bridge
            assert "support has 1 calls" in await wait_for_queue_caller(shared)  # B's caller, to a person
            # A's call is untouched: same channels in its app, its mixing bridge still holds both.
            assert sorted(await ari.application_channels()) == a_channels
            (still,) = [bridge for bridge in await ari.list_bridges() if bridge["id"] == a_bridges[0]["id"]]
            assert sorted(still["channels"]) == sorted(a_bridges[0]["channels"])
            assert a.events("call.end") == []
            assert_all_answered(await sipp, 2)
            await a.stop()
        finally:
            await restarted.close()
    assert [reason.split(":")[0] for reason in a.end_reasons()] == ["caller"]  # hung up by its caller, not handed back


async def app_gone(asterisk: AsteriskInstance, app: str, seconds: float = 10.0) -> None:
    """Asterisk has dropped a killed bridge's app (no channels were in it), so Stasis() fails fast."""
    settings = asterisk.settings
    async with (
        AriClient(settings.ari_url, settings.ari_user, settings.ari_password, app) as ari,
        asyncio.timeout(seconds),
    ):
        while True:
            try:
                await ari.application_channels()
            except AriNotFound:
                return
            await asyncio.sleep(0.05)
