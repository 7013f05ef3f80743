#!/usr/bin/env python3
"""Cluster benchmark: Kamailio in front of 2 Asterisk nodes, each with a bridge, one shared
PostgreSQL, and (unless --echo) one llama.cpp server and Wyoming STT and TTS servers that both
bridges use; all on this machine with private ports, the same parts tests/integration/test_cluster.py
runs (tests/support/cluster.py).

N sipp calls go to the proxy only; once half of them have been answered and the second node has
a call in progress, that node's Asterisk is killed. Its Asterisk is restarted after the run (as a
supervisor would), so its bridge can end the calls that vanished and write their records; then
the call database is read. Printed: calls per node, calls lost (a call neither answered by an
agent nor sent to a fallback queue, or with no record at all), and p95 voice-to-voice from the
records' turn latencies (n/a with --echo: the echo pipeline has no turns). The last line is:

    cluster: N calls, K nodes, lost L, p95 X ms

    bridge bench cluster [--calls 8] [--concurrency 2] [--echo]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance
from bridge.storage.calls import CallStore
from bridge.web.call_story import voice_to_voice_ms
from tests.integration.test_media_path import caller_pcap
from tests.support.bridge_process import echo_config
from tests.support.cluster import Cluster, ClusterNode, NodeConfig, echo_node, running_cluster
from tests.support.model_servers import LLM_ALIAS, VOICE, start_llama_server, start_wyoming_servers
from tests.support.pcap import write_rtp_pcap
from tests.support.postgres import PrivatePostgres
from tests.support.servers import free_tcp_port, stop_server
from tests.support.sipp import SippCaller, SippResult
from tests.support.speech import caller_says, silence

QUESTION = "What are your opening hours on Saturday?"


def agent_node(storage_url: str, llm_url: str, stt_uri: str, tts_uri: str) -> NodeConfig:
    """A bridge running the product's agent, its models on the shared servers."""

    def render(asterisk: AsteriskInstance, folder: Path, name: str) -> str:
        models = (
            f'[stt]\nbackend = "wyoming"\nuri = "{stt_uri}"\n'
            f'[tts]\nbackend = "wyoming"\nuri = "{tts_uri}"\nvoice = "{VOICE}"\n'
            f'[llm]\nbackend = "openai_http"\nbase_url = "{llm_url}"\nmodel = "{LLM_ALIAS}"\n'
            "[limits]\nshutdown_grace_seconds = 0\n"
        )
        return echo_config(
            asterisk,
            folder,
            models,
            spool_dir=folder / "spool",
            storage_url=storage_url,
            node=name,
            pipeline='kind = "agent"\n',
        )

    return render


def caller_audio(workdir: Path, echo: bool) -> tuple[Path, int]:
    """The pcap each caller plays and how long it stays on (ms): a tone for echo, else a question
    after the greeting, with time for the answer."""
    if echo:
        return caller_pcap(workdir, 4.0), 4000
    audio = silence(5.0) + caller_says(QUESTION) + silence(10.0)
    path = workdir / "question.pcap"
    write_rtp_pcap(path, audio, codec_for("ulaw"))
    return path, int(len(audio) / 16) + 300


def in_progress(node: ClusterNode) -> int:
    return len(node.connected_calls()) - len(node.bridge.events("call.end"))


async def kill_mid_run(cluster: Cluster, calls: int, seconds: float) -> str:
    """Once half the calls are answered and the last node has one in progress, kill its Asterisk
    and wait until the proxy has marked it down. Returns the victim's name."""
    victim = cluster.nodes[-1]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answered = sum(len(node.connected_calls()) for node in cluster.nodes)
        if answered >= max(1, calls // 2) and in_progress(victim) > 0:
            break
        await asyncio.sleep(0.1)
    victim.crash_asterisk()
    print(f"killed {victim.name}'s Asterisk with {in_progress(victim)} call(s) in progress")
    await asyncio.to_thread(cluster.proxy.wait_for, victim.sip_uri, False, 30.0)
    return victim.name


async def restart(cluster: Cluster, name: str) -> None:
    """The supervisor's part: the dead node's Asterisk comes back, its bridge reconciles."""
    (node,) = [node for node in cluster.nodes if node.name == name]
    marker = len(node.bridge.log.lines) if node.bridge.log else 0
    await asyncio.to_thread(node.asterisk.start)
    await node.bridge.wait_for("stasis.reconciled", timeout=90, after=marker)
    await asyncio.to_thread(cluster.proxy.wait_for, node.sip_uri, True, 30.0)


async def run_calls(workdir: Path, config: NodeConfig, calls: int, concurrency: int, echo: bool) -> SippResult:
    pcap, hold_ms = caller_audio(workdir, echo)
    async with running_cluster(workdir, config) as cluster:
        sipp = SippCaller(
            workdir, cluster.target, pcap, caller="15550008000", hold_ms=hold_ms, calls=calls,
            concurrent=concurrency, via_proxy=True,
        )  # fmt: skip
        run = asyncio.create_task(sipp.run(timeout=60 + calls * hold_ms / 1000))
        victim = await kill_mid_run(cluster, calls, seconds=120 + calls * hold_ms / 1000)
        result = await run
        await restart(cluster, victim)
        await cluster.stop_bridges()
        return result


def reached_help(record: dict[str, Any]) -> bool:
    """Answered by an agent, or handed to the dialplan's fallback queue (declined, or failed)."""
    reason = str(record.get("end_reason") or "")
    return bool(record.get("media_connected")) or reason.startswith(("declined", "handed_back_to_dialplan"))


def p95(values: list[int]) -> int | None:
    if len(values) < 2:
        return values[0] if values else None
    return round(statistics.quantiles(values, n=20, method="inclusive")[18])


async def report(url: str, calls: int, nodes: int, result: SippResult, echo: bool) -> str:
    store = CallStore(url)
    try:
        rows = await store.search(limit=100_000)
    finally:
        await store.close()
    records = [row["record"] for row in rows]
    per_node = Counter(str(row["node"]) for row in rows)
    for name, count in sorted(per_node.items()):
        print(f"  {name}: {count} calls")
    helped = sum(1 for record in records if reached_help(record))
    lost = max(0, calls - helped)
    print(f"sipp: {result.successful_calls} completed, {result.failed_calls} cut off (calls on the killed node)")
    print(f"records: {len(rows)}, answered or queued: {helped}")
    latencies = [ms for record in records for ms in voice_to_voice_ms(record)]
    value = None if echo else p95(latencies)
    if not echo:
        median = round(statistics.median(latencies)) if latencies else None
        print(f"turns with a voice-to-voice latency: {len(latencies)}, p50 {median} ms")
    shown = "n/a" if value is None else f"{value}"
    return f"cluster: {calls} calls, {nodes} nodes, lost {lost}, p95 {shown} ms"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8, help="calls through the proxy (default 8: 2 CPU cores)")
    parser.add_argument("--concurrency", type=int, default=2, help="calls at once")
    parser.add_argument("--echo", action="store_true", help="echo bridges, no model servers")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    print(f"logs in {workdir} (removed after a run that completes)")
    postgres = PrivatePostgres(free_tcp_port())
    await asyncio.to_thread(postgres.start)
    servers = []
    try:
        if args.echo:
            config = echo_node(postgres.url)
        else:
            print("starting the model servers (llama.cpp, Wyoming STT and TTS)")
            llama, llm_url = await asyncio.to_thread(start_llama_server, workdir)
            servers.append(llama)
            wyoming, stt_uri, tts_uri = await asyncio.to_thread(start_wyoming_servers, workdir)
            servers += wyoming
            config = agent_node(postgres.url, llm_url, stt_uri, tts_uri)
        result = await run_calls(workdir, config, args.calls, args.concurrency, args.echo)
        line = await report(postgres.url, args.calls, 2, result, args.echo)
    finally:
        for server in servers:
            stop_server(server)
        await asyncio.to_thread(postgres.stop)
    shutil.rmtree(workdir, ignore_errors=True)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
