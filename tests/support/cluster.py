"""Several Asterisk nodes behind Kamailio on one machine, as the README's scaling section draws it:
Kamailio -> N x (private Asterisk + real `bridge run`) -> one shared call database.

Used by tests/integration/test_cluster.py and scripts/bench_cluster.py, so the test and the
bench run exactly the same parts. Each node's Asterisk accepts the proxy's address as its trunk
(pjsip identify by ip), and each bridge stamps its node name on its call records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import private_settings
from tests.support.bridge_process import BridgeRun, echo_config
from tests.support.kamailio import KamailioProxy
from tests.support.servers import free_udp_port

PROXY_HOST = "127.0.0.5"  # not the callers' 127.0.0.1: each node trusts this address alone as its trunk
ECHO = 'kind = "echo"\n'

# The bridge config of one node: (its Asterisk, its folder, its name) -> TOML.
NodeConfig = Callable[[AsteriskInstance, Path, str], str]


@dataclass
class ClusterNode:
    name: str
    asterisk: AsteriskInstance
    bridge: BridgeRun

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.asterisk.settings.bind_host}:{self.asterisk.settings.sip_port}"

    def crash_asterisk(self) -> None:
        """SIGKILL the node's Asterisk: no BYE, no OPTIONS answer, as when the machine dies."""
        process = self.asterisk.process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def connected_calls(self) -> set[str]:
        """The calls this node's bridge answered (media connected), by call id."""
        return {str(entry["call"]) for entry in self.bridge.events("call.media_connected")}


def echo_node(storage_url: str) -> NodeConfig:
    """An echo bridge writing to the shared database: no models, so the cluster is what is measured."""

    def render(asterisk: AsteriskInstance, folder: Path, name: str) -> str:
        limits = "[limits]\nshutdown_grace_seconds = 0\n"
        return echo_config(
            asterisk, folder, limits, spool_dir=folder / "spool", storage_url=storage_url, node=name, pipeline=ECHO
        )

    return render


def make_node(workdir: Path, name: str, index: int, proxy_port: int, config: NodeConfig) -> ClusterNode:
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    rtp_start = 21000 + 2000 * index
    settings = private_settings(
        ari_app=f"cluster-{name}",
        system_name=name,
        trunk_host=f"{PROXY_HOST}:{proxy_port}",
        trunk_match=PROXY_HOST,
        rtp_start=rtp_start,
        rtp_end=rtp_start + 999,
    )
    asterisk = AsteriskInstance(folder / "asterisk", settings)
    path = folder / "bridge.toml"
    path.write_text(config(asterisk, folder, name))
    return ClusterNode(name, asterisk, BridgeRun(name, path))


@dataclass
class Cluster:
    proxy: KamailioProxy
    nodes: list[ClusterNode]

    @property
    def target(self) -> tuple[str, int]:
        """Where callers send their INVITEs: the proxy's one SIP port."""
        return (self.proxy.host, self.proxy.port)

    async def stop_bridges(self) -> None:
        """SIGTERM every bridge still running: each exits once its call records are written."""
        await asyncio.gather(*(node.bridge.stop() for node in self.nodes))


@contextlib.asynccontextmanager
async def running_cluster(
    workdir: Path,
    config: NodeConfig,
    names: tuple[str, ...] = ("pbx-a", "pbx-b"),
    carriers: tuple[str, ...] = ("127.0.0.1",),
    ping_interval: int = 1,
) -> AsyncIterator[Cluster]:
    """Every node's Asterisk and bridge, then Kamailio in front of them (probing each node every
    `ping_interval` s); all stopped at the end (bridges first, so each writes its records)."""
    proxy_port = free_udp_port()
    nodes = [make_node(workdir, name, index, proxy_port, config) for index, name in enumerate(names)]
    uris = [node.sip_uri for node in nodes]
    proxy = KamailioProxy(
        workdir / "kamailio", PROXY_HOST, proxy_port, uris, list(carriers), ping_interval=ping_interval
    )
    try:
        await asyncio.gather(*(asyncio.to_thread(node.asterisk.start) for node in nodes))
        await asyncio.gather(*(node.bridge.start() for node in nodes))
        await asyncio.to_thread(proxy.start)
        yield Cluster(proxy, nodes)
    finally:
        for node in nodes:
            await node.bridge.close()
        for node in nodes:
            await asyncio.to_thread(node.asterisk.stop)
        await asyncio.to_thread(proxy.stop)
