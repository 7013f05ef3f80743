#!/usr/bin/env python3
"""Voice-to-voice benchmark over real calls: sipp -> private Asterisk -> bridge with the default models.

Measured on the wire (tcpdump between sipp and Asterisk), per caller question:
  voice-to-voice = caller's last voiced RTP packet sent -> first agent RTP packet with audio received
and per interruption:
  barge-in = caller's first voiced packet over the agent -> start of the agent's silence on the wire.
The caller speaks with flite (voice 'slt'); the agent answers with Piper. For each concurrency
level, that many calls run the same script, started one second apart.

    .venv/bin/python scripts/bench_voice.py --concurrency 1,2,3 --questions 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.app.service import BridgeService
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.loading import load_agent
from bridge.logs import configure_logging
from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance
from scripts.bench_media import bench_config, percentile, start_private_asterisk
from tests.integration.conftest import wait_for_finished_calls
from tests.support.capture import LoopbackCapture
from tests.support.pcap import write_rtp_pcap
from tests.support.sipp import SippCaller
from tests.support.speech import caller_says, silence
from tests.support.wire import WireAudio, calls_on_wire

QUESTIONS = [
    "What are your opening hours on Saturday?",
    "Where is your office located?",
    "How much does a cleaning cost?",
    "Are you open on Sunday?",
    "What time do you close on Friday?",
    "Can I come in on Monday morning?",
    "Do you take new patients?",
    "Is there parking near the office?",
    "How long does a cleaning take?",
    "What is your address again?",
]
GREETING_WAIT = 5.5
ANSWER_WAIT = 6.0
BARGE_IN_OFFSETS = (1.0, 1.6, 2.2, 2.8)


def conversation_script(questions: int) -> tuple[bytes, list[float]]:
    """Caller audio (8 kHz) and the second at which each question ends."""
    audio = silence(GREETING_WAIT)
    ends = []
    for text in (QUESTIONS * 3)[:questions]:
        audio += caller_says(text)
        ends.append(len(audio) / 16000)
        audio += silence(ANSWER_WAIT)
    return audio, ends


def interruption_script(offset: float) -> bytes:
    return silence(offset) + caller_says("Sorry, what are your opening hours?") + silence(ANSWER_WAIT)


def voice_to_voice(call: WireAudio) -> list[float]:
    """Per caller utterance after the greeting: last voiced packet sent -> first agent audio back."""
    results = []
    for _, end in call.sent_voice_spans():
        last = end - 0.02
        answer = call.first_received_voice(after=last)
        if answer is not None and answer - last < ANSWER_WAIT:
            results.append(answer - last)
    return results


def barge_in(call: WireAudio) -> float | None:
    onset = call.first_sent_voice()
    stopped = call.received_silent_from(onset)
    return None if stopped is None else max(0.0, stopped - onset)


async def run_calls(
    asterisk: AsteriskInstance, agent: Agent, workdir: Path, name: str, audio: bytes, calls: int
) -> tuple[list[WireAudio], list[dict[str, object]]]:
    settings = asterisk.settings
    service = BridgeService(bench_config(asterisk, "agent"), None, agent)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.events.connected.wait(), 60)
    pcap = workdir / f"{name}.pcap"
    write_rtp_pcap(pcap, audio, codec_for("ulaw"))
    caller = SippCaller(
        workdir, ("127.0.0.1", settings.sip_port), pcap, hold_ms=int(len(audio) / 16) + 500,
        calls=calls, concurrent=calls, rate=1.0,
    )  # fmt: skip
    async with LoopbackCapture(workdir / f"{name}-wire.pcap", f"udp and port {caller.media_port}") as capture:
        result = await caller.run(timeout=len(audio) / 16000 + calls + 60)
    if result.successful_calls != calls:
        print(f"  warning: {result.successful_calls}/{calls} sipp calls succeeded", flush=True)
    await wait_for_finished_calls(service, calls)
    records = [record.as_dict()["conversation"] for record in service.app.finished]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return calls_on_wire(capture.datagrams(), caller.media_port), records


def stats_ms(values: list[float]) -> str:
    if not values:
        return "n=0"
    ms = [v * 1000 for v in values]
    return f"n={len(ms)} p50={percentile(ms, 0.5):.0f} p95={percentile(ms, 0.95):.0f} max={max(ms):.0f}"


def stage_medians(records: list[dict[str, object]]) -> str:
    stages: dict[str, list[float]] = {}
    for record in records:
        for turn in record.get("turns", []):  # type: ignore[attr-defined]
            for stage, value in turn["latency_ms"].items():
                stages.setdefault(stage, []).append(value)
    return " ".join(f"{stage}={percentile(values, 0.5):.0f}" for stage, values in stages.items())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,2,3", help="comma-separated numbers of simultaneous calls")
    parser.add_argument("--questions", type=int, default=8, help="caller questions per call")
    parser.add_argument("--no-barge-in", action="store_true", help="skip the barge-in calls")
    parser.add_argument("--no-llm-tools", action="store_true", help="routing.llm_tools = false (for comparison)")
    parser.add_argument("--llm", default=None, help="llm.packaged: qwen2.5-coder-1.5b (default) | qwen2.5-coder-0.5b")
    parser.add_argument("--turn", default=None, help="turn.detector: silence (default) | smart_turn")
    args = parser.parse_args()
    configure_logging("warning")
    workdir, asterisk = start_private_asterisk("bench-voice-")
    started = time.monotonic()
    raw: dict[str, object] = {"routing": {"llm_tools": not args.no_llm_tools}}
    if args.llm:
        raw["llm"] = {"packaged": args.llm}
    if args.turn:
        raw["turn"] = {"detector": args.turn}
    agent = load_agent(parse_config(raw))
    print(f"machine: {os.cpu_count()} cores; models loaded in {time.monotonic() - started:.1f} s", flush=True)
    try:
        audio, _ = conversation_script(args.questions)
        for calls in [int(n) for n in args.concurrency.split(",")]:
            wires, records = await run_calls(asterisk, agent, workdir, f"conv-{calls}", audio, calls)
            latencies = [value for wire in wires for value in voice_to_voice(wire)]
            print(f"concurrency {calls}: voice-to-voice {stats_ms(latencies)}", flush=True)
            print(f"  bridge stage medians (ms after caller's last voiced frame): {stage_medians(records)}")
        if not args.no_barge_in:
            stops = []
            for offset in BARGE_IN_OFFSETS:
                wires, _ = await run_calls(asterisk, agent, workdir, f"barge-{offset}", interruption_script(offset), 1)
                stops += [value for wire in wires if (value := barge_in(wire)) is not None]
            print(f"barge-in (caller onset -> agent silent on the wire): {stats_ms(stops)}", flush=True)
    finally:
        asterisk.stop()


if __name__ == "__main__":
    asyncio.run(main())
