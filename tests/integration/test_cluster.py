"""Several Asterisk nodes behind Kamailio: the shipped deploy/kamailio/kamailio.cfg in a real
Kamailio, two private Asterisk instances each with a real `bridge run` (echo pipeline), one real
PostgreSQL for every node's call records, and sipp callers that only know the proxy's address.

Calls spread over both nodes; one node's Asterisk is killed mid-run; the dispatcher's probes
mark it down, calls sent to it in the meantime fail over to the live node, and every call a
node answered has its row in the shared database with that node's name, the dead node's too
once its Asterisk is back (its bridge ends the calls that vanished and writes their records).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.storage.calls import CallStore
from tests.integration.test_media_path import caller_pcap
from tests.support.cluster import Cluster, echo_node, running_cluster
from tests.support.postgres import PrivatePostgres
from tests.support.servers import free_tcp_port
from tests.support.sip_probe import invite
from tests.support.sipp import SippCaller, SippResult

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
async def postgres() -> AsyncIterator[str]:
    server = PrivatePostgres(free_tcp_port())
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


def callers(cluster: Cluster, workdir: Path, calls: int, concurrent: int, hold_ms: int) -> SippCaller:
    return SippCaller(
        workdir,
        cluster.target,
        caller_pcap(workdir, hold_ms / 1000),
        caller="15550009000",
        hold_ms=hold_ms,
        calls=calls,
        concurrent=concurrent,
        via_proxy=True,
    )


async def stored_nodes(url: str) -> dict[str, str]:
    """Call id -> node, for every row in the shared database."""
    store = CallStore(url)
    try:
        return {str(row["id"]): str(row["node"]) for row in await store.search(limit=10_000)}
    finally:
        await store.close()


def assert_all_answered(result: SippResult, calls: int) -> None:
    assert result.successful_calls == calls and result.failed_calls == 0, result.output


async def test_calls_spread_over_both_nodes_and_survive_a_node_that_dies(postgres: str, workdir: Path) -> None:
    async with running_cluster(workdir, echo_node(postgres)) as cluster:
        a, b = cluster.nodes
        # Round robin: four calls, two at a time, land two on each node.
        assert_all_answered(await callers(cluster, workdir, calls=4, concurrent=2, hold_ms=2000).run(timeout=60), 4)
        assert len(a.connected_calls()) == 2 and len(b.connected_calls()) == 2, cluster.proxy.routed()

        # Mid-run: once B has a call of this run in progress, its Asterisk dies.
        before = len(b.bridge.log.lines) if b.bridge.log else 0
        run = asyncio.create_task(callers(cluster, workdir, calls=8, concurrent=2, hold_ms=3000).run(timeout=90))
        await b.bridge.wait_for("call.media_connected", timeout=30, after=before)
        in_flight = len(b.connected_calls()) - len(b.bridge.events("call.end"))
        b.crash_asterisk()
        await asyncio.to_thread(cluster.proxy.wait_for, b.sip_uri, False, 20.0)
        result = await run
        # Only the calls B had at the crash are cut off; every later call reached A, through
        # failover while B was not yet marked down.
        assert result.successful_calls + result.failed_calls == 8, result.output
        assert result.failed_calls <= in_flight, result.output
        assert len(a.connected_calls()) + len(b.connected_calls()) == 12
        routed = cluster.proxy.routed()
        assert routed[-1] == a.sip_uri, routed

        # With B marked down, new calls go straight to A.
        assert_all_answered(await callers(cluster, workdir, calls=2, concurrent=2, hold_ms=1000).run(timeout=60), 2)
        assert cluster.proxy.routed()[len(routed) :] == [a.sip_uri, a.sip_uri]

        # B's Asterisk comes back (a supervisor restarts it): its bridge reconnects, ends the calls
        # that vanished and writes their records; the probes mark B up again.
        await asyncio.to_thread(b.asterisk.start)
        await asyncio.to_thread(cluster.proxy.wait_for, b.sip_uri, True, 20.0)
        await b.bridge.wait_for("stasis.reconciled", timeout=60, after=before)
        await cluster.stop_bridges()

        stored = await stored_nodes(postgres)
        for node in cluster.nodes:
            answered = node.connected_calls()
            assert {call: stored.get(call) for call in answered} == dict.fromkeys(answered, node.name), node.name
        assert len(stored) == 14


async def test_a_call_sent_to_a_dead_node_not_yet_marked_down_fails_over_to_the_next(
    postgres: str, workdir: Path
) -> None:
    # Probes far apart: the proxy learns of the dead node only from the call it sends there.
    async with running_cluster(workdir, echo_node(postgres), ping_interval=60) as cluster:
        a, b = cluster.nodes
        b.crash_asterisk()
        assert cluster.proxy.states()[b.sip_uri].startswith("A")  # still believed up
        assert_all_answered(await callers(cluster, workdir, calls=2, concurrent=1, hold_ms=1000).run(timeout=60), 2)
        assert len(a.connected_calls()) == 2
        assert cluster.proxy.states()[b.sip_uri].startswith("I")  # marked down by the timeout
        log = cluster.proxy.log.read_text(errors="replace")
        assert f"node {b.sip_uri} failed (408)" in log, cluster.proxy.log_tail()
        await cluster.stop_bridges()
        assert set((await stored_nodes(postgres)).values()) == {a.name}


async def test_the_proxy_is_not_an_open_relay(postgres: str, workdir: Path) -> None:
    async with running_cluster(workdir, echo_node(postgres)) as cluster:
        stranger = await invite("127.0.0.2", cluster.target, "attacker", "18005550100")
        assert stranger.final == 403, stranger.codes  # not a carrier address
        elsewhere = await invite("127.0.0.1", cluster.target, "15550009000", "0044207946000")
        assert elsewhere.final == 403, elsewhere.codes  # a carrier, but not one of our numbers
        # A node would also refuse a caller that bypasses the proxy: its trunk is the proxy alone.
        a = cluster.nodes[0]
        direct = await invite(
            "127.0.0.1", (a.asterisk.settings.bind_host, a.asterisk.settings.sip_port), "x", "18005550100"
        )
        assert direct.final == 401, direct.codes
        await cluster.stop_bridges()
        assert await stored_nodes(postgres) == {}
