#!/usr/bin/env python3
"""Voice-to-voice benchmark for browser callers: headless Chromium web phone -> Asterisk WebRTC -> bridge.

Same definition as the SIP benchmark (scripts/bench_voice.py), measured where the caller is:
  voice-to-voice = caller's last voiced 20 ms frame -> first voiced frame of the agent's answer,
both taken inside the browser from one Web Audio graph (microphone track and remote WebRTC track
sample-aligned), so it includes Opus encoding, DTLS-SRTP, Asterisk's Opus<->G.711 transcoding,
the bridge, and the browser's jitter buffer and decoder. The bridge's own per-turn stage marks
are printed beside it. Same questions as the SIP benchmark, in flite's voice, through Chromium's
fake microphone. Barge-in: the caller talks over the greeting; caller onset -> start of the agent's
silence on the remote track (as in the SIP benchmark, but that silence must last 1 s, not 300 ms).

    .venv/bin/python scripts/bench_webphone.py --questions 8 [--calls 2] [--no-barge-in]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.app.service import BridgeService
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.loading import load_agent
from bridge.logs import configure_logging
from bridge.media.resample import resample_pcm16
from bridge.pbx.instance import AsteriskInstance
from scripts.bench_media import bench_config, start_private_asterisk
from scripts.bench_voice import QUESTIONS, stage_medians, stats_ms
from tests.integration.conftest import wait_for_finished_calls
from tests.support.browser import TAP_RATE, BrowserPhone, write_wav
from tests.support.servers import free_tcp_port
from tests.support.speech import caller_says, silence

MIC_RATE = 48000
GREETING_WAIT = 7.0  # the microphone starts before the call connects
ANSWER_WAIT = 7.0
FRAME = TAP_RATE // 50
VOICED = 300.0  # RMS of a 20 ms frame (16-bit) above which it counts as speech (-40 dBFS)
PAUSE_FRAMES = 25  # 500 ms of quiet ends a caller's utterance
# Seconds of the microphone's file before the caller talks over the greeting (it starts ~1 s in).
BARGE_IN_OFFSETS = (1.8, 2.2, 2.6, 3.0, 3.4, 3.8)


def microphone_script(questions: int) -> bytes:
    audio = silence(GREETING_WAIT, MIC_RATE)
    for text in (QUESTIONS * 3)[:questions]:
        audio += resample_pcm16(caller_says(text, rate=16000), 16000, MIC_RATE) + silence(ANSWER_WAIT, MIC_RATE)
    return audio


def voiced_frames(pcm: bytes) -> np.ndarray:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
    return np.sqrt((frames**2).mean(axis=1)) > VOICED


def utterance_ends(voiced: np.ndarray) -> list[int]:
    """Frame index of the last voiced frame of each utterance (pauses under 500 ms do not split)."""
    ends, last, quiet = [], -1, 0
    for index, is_voiced in enumerate(voiced):
        if is_voiced:
            last, quiet = index, 0
        elif last >= 0:
            quiet += 1
            if quiet == PAUSE_FRAMES:
                ends.append(last)
    if last >= 0 and quiet < PAUSE_FRAMES:
        ends.append(last)
    return ends


def barge_in(mic: bytes, agent: bytes, hold_frames: int = 50) -> float | None:
    """Caller's first voiced frame -> start of the agent's silence that lasts at least 1 s.

    The SIP benchmark waits for 300 ms of silence; here 1 s, so that a pause between the
    greeting's sentences is not taken for the agent stopping. None when the agent was not
    audible in the 40 ms before the caller started (nothing to interrupt).
    """
    heard = voiced_frames(agent)
    onset = int(np.flatnonzero(voiced_frames(mic))[0])
    if not heard[max(0, onset - 2) : onset + 1].any():
        return None
    for start in range(onset, len(heard) - hold_frames):
        if not heard[start : start + hold_frames].any():
            return (start - onset) * 0.02
    return None


def voice_to_voice(mic: bytes, agent: bytes) -> list[float]:
    heard = voiced_frames(agent)
    results = []
    for end in utterance_ends(voiced_frames(mic)):
        later = np.flatnonzero(heard[end + 1 :])
        if later.size and later[0] * 0.02 < ANSWER_WAIT:
            results.append(float(later[0] + 1) * 0.02)
    return results


async def one_call(url: str, asterisk: AsteriskInstance, microphone: Path, seconds: float) -> tuple[bytes, bytes]:
    settings = asterisk.settings
    async with BrowserPhone(url, microphone) as browser:
        await browser.call(settings.webphone_user, settings.webphone_password)
        await browser.wait_for_remote_audio(30)
        await browser.start_tap()
        await browser.wait_for_state("connected", timeout=30)
        mic, heard = await browser.listen(seconds)
        await browser.hang_up()
        return mic, heard


async def run(
    asterisk: AsteriskInstance, agent: Agent, workdir: Path, questions: int, calls: int, barge_ins: bool
) -> None:
    port = free_tcp_port()
    raw = bench_config(asterisk, "agent").model_dump(mode="json")
    raw["api"] = {"enabled": True, "port": port}
    raw["webphone"] = {"wss_url": asterisk.settings.wss_url}
    service = BridgeService(parse_config(raw), None, agent)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.events.connected.wait(), 60)
    url = f"http://127.0.0.1:{port}/phone"
    try:
        audio = microphone_script(questions)
        microphone = write_wav(workdir / "microphone.wav", audio, MIC_RATE)
        seconds = len(audio) / 2 / MIC_RATE + 2
        taps = await asyncio.gather(*(one_call(url, asterisk, microphone, seconds) for _ in range(calls)))
        await wait_for_finished_calls(service, calls, timeout=30)
        records = list(service.app.finished)
        latencies = [value for mic, heard in taps for value in voice_to_voice(mic, heard)]
        codecs = sorted({record.caller_codec for record in records})
        print(f"browser calls {calls} (caller codec {', '.join(codecs)}): voice-to-voice {stats_ms(latencies)}")
        stages = stage_medians([record.as_dict()["conversation"] for record in records])
        print(f"  bridge stage medians (ms after caller's last voiced frame): {stages}")
        if barge_ins:
            stops = []
            for offset in BARGE_IN_OFFSETS:
                audio = silence(offset, MIC_RATE) + interruption() + silence(ANSWER_WAIT, MIC_RATE)
                microphone = write_wav(workdir / f"barge-{offset}.wav", audio, MIC_RATE)
                mic, heard = await one_call(url, asterisk, microphone, len(audio) / 2 / MIC_RATE)
                stops += [stop] if (stop := barge_in(mic, heard)) is not None else []
            later = list(service.app.finished)[calls:]
            counted = sum(record.as_dict()["conversation"].get("barge_ins", 0) for record in later)
            print(f"barge-in (caller onset -> agent silent, in the browser): {stats_ms(stops)}")
            print(f"  each (ms): {[round(stop * 1000) for stop in stops]}; barge-ins the bridge counted: {counted}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def interruption() -> bytes:
    return resample_pcm16(caller_says("Sorry, what are your opening hours?", rate=16000), 16000, MIC_RATE)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=8, help="caller questions per call")
    parser.add_argument("--calls", type=int, default=1, help="simultaneous browser calls (one Chromium each)")
    parser.add_argument("--no-barge-in", action="store_true", help="skip the barge-in calls")
    args = parser.parse_args()
    configure_logging("warning")
    workdir, asterisk = start_private_asterisk("bench-webphone-")
    started = time.monotonic()
    agent = load_agent(parse_config({}))
    print(f"machine: {os.cpu_count()} cores; models loaded in {time.monotonic() - started:.1f} s", flush=True)
    try:
        await run(asterisk, agent, workdir, args.questions, args.calls, not args.no_barge_in)
    finally:
        asterisk.stop()


if __name__ == "__main__":
    asyncio.run(main())
