#!/usr/bin/env python3
"""Turn-taking benchmark: silence alone against Smart Turn, on pauses built from sentence structure.

The dev set (scripts/turn/cases.toml) has complete requests, requests cut mid-phrase ("my number
is 555 | 0123", "put me through to | billing") and requests cut at a clause boundary, each with a
300-700 ms pause before the rest. Each part is spoken by flite or espeak-ng and sent through the
wire codec (u-law 8 kHz by default). The product's own VAD and Endpointer are fed the 20 ms frames
in simulated time; at each CHECK the real Smart Turn model judges the audio so far, and its
verdict takes effect as many frames later as the inference really took.

Printed per detector: false cut-offs (the turn ended inside the caller's pause) mid-phrase and at
clause boundaries, and the wait after complete requests (silence from the last voiced frame to the
end of turn, p50/p95). What this set can show: whether the model holds on unfinished syntax and
lets go on finished sentences, as robotic voices say them. What it cannot: real callers' prosody
(hesitation, falling pitch), which is what the model mostly listens to; synthetic voices judge it
poorly, so treat its numbers as a floor.

A cut-off offline is not yet a caller talked over: with conversation.continue_within_ms, a caller
who goes on before the answer has played that long stays in the same turn. `--live` measures what
the caller gets: each case is a simulated call (tests/support/sim_call.py: 20 ms in, 20 ms out,
real time, no PBX) through the real Conversation and the real local models (Whisper, the LLM,
Piper, Smart Turn with --detector smart_turn). The greeting is cut to "Hello." and the caller
starts 1.5 s in. Printed per detector: "cut in", the agent talked in the caller's pause (more than
continue_within_ms + 100 ms of voice before the rest began, or still talking when the rest began
and the request was split); "split", the request's words landed in more than one caller turn (turns
heard as noise not counted; a transfer or goodbye ends the simulated call, so a request cut off by
one cannot split and shows only as a cut in); and after complete requests the wait from the caller's last voiced
frame to the agent's first voiced one, which includes speech recognition, the LLM and Piper, unlike
the offline wait. Cost: each case runs for its audio plus 6 s, so the 56 cases take ~10 minutes
per detector (plus loading the models), all on the CPU; use --limit N to smoke-test.

    .venv/bin/python scripts/bench_turn.py        # or: bridge bench turn [--wire g722]
    .venv/bin/python scripts/bench_turn.py --live [--detector both] [--continue-within-ms 0] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bridge.config import DEFAULT_PERSONAS, parse_config
from bridge.config.agent import TurnConfig
from bridge.conversation.agent import Agent, VoiceDetector
from bridge.conversation.controller import Conversation
from bridge.conversation.endpointing import Endpointer, EndpointSettings, Signal
from bridge.conversation.loading import load_agent, voice_detector_factory
from bridge.conversation.turn_judge import verdict
from bridge.logs import configure_logging
from bridge.media.clock import FRAME_SECONDS
from bridge.media.codecs import FRAME_MS, codec_for
from bridge.media.resample import resample_pcm16
from bridge.speech.turn_model import SAMPLE_RATE, SmartTurnModel, packaged_smart_turn
from scripts import bench_dialogue
from scripts.bench_media import percentile
from tests.support.sim_call import SimulatedCall

CASES = Path(__file__).resolve().parent / "turn" / "cases.toml"
VOICES = (
    ("flite", "slt"), ("flite", "awb"), ("flite", "rms"), ("flite", "kal16"),
    ("espeak-ng", "en-us"), ("espeak-ng", "en-gb"),
)  # fmt: skip
PAUSES_MS = (300, 450, 550, 700)
TAIL_MS = 2500
TURN = TurnConfig()


@dataclass
class Case:
    kind: str  # complete | mid_phrase | clause
    first: str
    rest: str
    voice: tuple[str, str]
    pause_ms: int


@dataclass
class Outcome:
    case: Case
    cut_off: bool = False  # ended inside the pause
    wait_ms: int | None = None  # complete: silence waited before the end of turn
    verdicts: int = 0


def load_cases() -> list[Case]:
    raw = tomllib.loads(CASES.read_text())
    cases: list[Case] = []
    for i, text in enumerate(raw["complete"]):
        cases.append(Case("complete", text, "", VOICES[i % len(VOICES)], 0))
    for kind in ("mid_phrase", "clause"):
        for i, pair in enumerate(raw[kind]):
            voice = VOICES[(i + 3) % len(VOICES)]
            cases.append(Case(kind, pair["first"], pair["rest"], voice, PAUSES_MS[i % len(PAUSES_MS)]))
    return cases


def frames_of(pcm: bytes, frame_bytes: int) -> list[bytes]:
    pcm += bytes(-len(pcm) % frame_bytes)
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]


def trimmed(pcm: bytes, rate: int) -> bytes:
    """The synthetic voice's own leading/trailing silence off, so the pause is exactly ours."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 500)
    if loud.size == 0:
        return pcm
    margin = rate // 50
    return samples[max(0, loud[0] - margin) : loud[-1] + margin].tobytes()


def caller_frames(case: Case, lead_frames: int = 10) -> tuple[list[bytes], int | None]:
    """The caller's side of a case at the wire rate: `lead_frames` of silence, the first part, then
    (split cases) the pause and the rest; no tail. Returns the frames and where the rest starts."""
    wire = bench_dialogue.WIRE
    rate, frame_bytes = wire.sample_rate, wire.pcm_frame_bytes
    engine, voice = case.voice
    first = trimmed(bench_dialogue.spoken_on_the_wire(case.first, engine, voice), rate)
    audio = frames_of(bytes(frame_bytes * lead_frames) + first, frame_bytes)
    rest_frame: int | None = None
    if case.rest:
        audio += frames_of(bytes(frame_bytes * (case.pause_ms // FRAME_MS)), frame_bytes)
        rest_frame = len(audio)
        rest = trimmed(bench_dialogue.spoken_on_the_wire(case.rest, engine, voice), rate)
        audio += frames_of(rest, frame_bytes)
    return audio, rest_frame


def run_case(case: Case, detector: str, model: SmartTurnModel | None, check_ms: int, hold_ms: int) -> Outcome:
    wire = bench_dialogue.WIRE
    rate, frame_bytes = wire.sample_rate, wire.pcm_frame_bytes
    config = parse_config({})
    vad = voice_detector_factory(config.vad)(rate)
    settings = config.conversation
    endpointer = Endpointer(
        EndpointSettings(
            pause_ms=settings.pause_ms,
            end_ms=settings.end_ms,
            preroll_ms=settings.preroll_ms,
            check_ms=check_ms if detector == "smart_turn" else 0,
            hold_ms=hold_ms,
        )
    )
    audio, rest_frame = caller_frames(case)
    speech_end_frame = len(audio)
    audio += frames_of(bytes(frame_bytes * (TAIL_MS // FRAME_MS)), frame_bytes)

    outcome = Outcome(case)
    pending: list[tuple[int, int, bool | None]] = []  # (frame at which the verdict lands, pause, complete)
    last_voiced = 0
    for index, frame in enumerate(audio):
        for _, pause, complete in [p for p in pending if p[0] == index]:
            endpointer.settle(pause, complete)
        voiced = vad.is_speech(frame)
        if voiced:
            last_voiced = index
        for signal in endpointer.feed(frame, voiced):
            if signal is Signal.CHECK and model is not None:
                pcm = b"".join(endpointer.utterance)
                started = time.perf_counter()
                samples = np.frombuffer(resample_pcm16(pcm, rate, SAMPLE_RATE), dtype=np.int16)
                probability = model.complete_probability(samples.astype(np.float32) / 32768.0)
                took = (time.perf_counter() - started) * 1000
                outcome.verdicts += 1
                lands = index + 1 + int(took // FRAME_MS)
                pending.append((lands, endpointer.pause_number, verdict(probability, TURN)))
            elif signal in (Signal.END, Signal.TOO_LONG):
                if rest_frame is not None and index < rest_frame:
                    outcome.cut_off = True
                elif case.kind == "complete":
                    outcome.wait_ms = (index - last_voiced) * FRAME_MS
                return outcome
    if case.kind == "complete":
        outcome.wait_ms = (len(audio) - speech_end_frame) * FRAME_MS
    return outcome


def summary(outcomes: list[Outcome], detector: str) -> tuple[str, float, float]:
    lines = []
    mid = [o for o in outcomes if o.case.kind == "mid_phrase"]
    clause = [o for o in outcomes if o.case.kind == "clause"]
    waits = sorted(float(o.wait_ms) for o in outcomes if o.case.kind == "complete" and o.wait_ms is not None)
    pauses = mid + clause
    cut = sum(o.cut_off for o in pauses)
    rate = 100.0 * cut / len(pauses) if pauses else 0.0
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    lines.append(
        f"{detector:<11} cut-offs mid-phrase {sum(o.cut_off for o in mid)}/{len(mid)}, "
        f"at a clause {sum(o.cut_off for o in clause)}/{len(clause)}, all {cut}/{len(pauses)} ({rate:.0f}%); "
        f"wait after complete requests p50={p50:.0f} p95={p95:.0f} ms (n={len(waits)})"
    )
    for pause in PAUSES_MS:
        group = [o for o in pauses if o.case.pause_ms == pause]
        lines.append(f"    pause {pause} ms: cut off {sum(o.cut_off for o in group)}/{len(group)}")
    return "\n".join(lines), rate, p50


# -- live: real simulated calls ------------------------------------------------------------------

LIVE_GREETING = "Hello."  # short, so each call gets to the caller fast
LIVE_LEAD_FRAMES = 75  # the caller starts 1.5 s into the call, after the greeting has played
LIVE_TAIL_S = 6.0  # after the request: time for the answer to start on two shared cores
SPLIT_KINDS = ("mid_phrase", "clause")


@dataclass
class Timeline:
    """The caller's speech in 20 ms frames from the start of the call, as the product's VAD hears it."""

    start: int  # first voiced frame
    first_end: int  # last voiced frame of the first part (of the whole request when complete)
    rest_start: int | None  # first voiced frame of the rest
    end: int  # last voiced frame of the request


@dataclass
class LiveOutcome:
    case: Case
    timeline: Timeline
    cut_in: bool  # the agent talked in the caller's pause (more than a dropped blip)
    split: bool  # the request landed in more than one turn
    pause_voice_ms: int  # agent voice between the first part's end and the rest's start
    first_reply_ms: int | None  # agent's first voice after the caller started, from the first part's end
    wait_ms: int | None  # complete: from the caller's last voiced frame to the agent's first voiced one
    greeting_overlap: bool  # the agent was still talking when the caller began: the case is not clean
    turns: list[tuple[str, str, int]]  # (caller_text, outcome, times continued) of the caller's turns, noise too


def caller_timeline(frames: list[bytes], rest_frame: int | None, vad: VoiceDetector) -> Timeline:
    voiced = [index for index, frame in enumerate(frames) if vad.is_speech(frame)]
    first = [i for i in voiced if rest_frame is None or i < rest_frame] or [LIVE_LEAD_FRAMES]
    rest = [i for i in voiced if rest_frame is not None and i >= rest_frame]
    if rest_frame is not None and not rest:
        rest = [rest_frame, len(frames) - 1]
    return Timeline(first[0], first[-1], rest[0] if rest else None, (rest or first)[-1])


def agent_voice_frames(call: SimulatedCall) -> set[int]:
    """Frames the agent was talking in (SimulatedCall.voiced_spans: gaps under 300 ms merged)."""
    return {
        index
        for start, end in call.voiced_spans()
        for index in range(round(start / FRAME_SECONDS), round(end / FRAME_SECONDS))
    }


async def live_case(agent: Agent, case: Case, wire: str) -> LiveOutcome:
    frames, rest_frame = caller_frames(case, lead_frames=LIVE_LEAD_FRAMES)
    timeline = caller_timeline(frames, rest_frame, agent.voice_detector(bench_dialogue.WIRE.sample_rate))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation, codec=codec_for(wire))
    await call.run(b"".join(frames), len(frames) * FRAME_SECONDS + LIVE_TAIL_S)

    voice = agent_voice_frames(call)
    said = [t for t in conversation.turns if t.caller_text.strip()]
    split = sum(t.outcome != "noise" for t in said) > 1
    turns = [(t.caller_text.strip(), t.outcome, t.continued) for t in said]
    pause_voice = rest_start = 0
    cut_in = False
    if timeline.rest_start is not None:
        rest_start = timeline.rest_start
        pause_voice = sum(timeline.first_end < i < rest_start for i in voice) * FRAME_MS
        talking_at_rest = rest_start in voice and pause_voice > 0
        cut_in = pause_voice > agent.settings.continue_within_ms + 100 or (talking_at_rest and split)
    replies = sorted(i for i in voice if i >= timeline.start)
    after_end = [i for i in replies if i > timeline.end]
    complete = case.kind == "complete"
    return LiveOutcome(
        case,
        timeline,
        cut_in=cut_in,
        split=split,
        pause_voice_ms=pause_voice,
        first_reply_ms=(replies[0] - timeline.first_end) * FRAME_MS if replies else None,
        wait_ms=(after_end[0] - timeline.end) * FRAME_MS if complete and after_end else None,
        greeting_overlap=timeline.start in voice,
        turns=turns,
    )


def ratio(hits: int, total: int) -> str:
    return f"{hits}/{total} ({100.0 * hits / total if total else 0.0:.0f}%)"


def live_summary(outcomes: list[LiveOutcome], detector: str) -> tuple[str, str]:
    """The detector's block of lines, and its closing `turn live` line."""
    pauses = [o for o in outcomes if o.case.kind in SPLIT_KINDS]
    waits = [float(o.wait_ms) for o in outcomes if o.wait_ms is not None]
    complete = [o for o in outcomes if o.case.kind == "complete"]
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    cut, split = sum(o.cut_in for o in pauses), sum(o.split for o in pauses)
    by_kind = ", ".join(
        f"{kind} cut in {ratio(sum(o.cut_in for o in group), len(group))} split {sum(o.split for o in group)}"
        for kind in SPLIT_KINDS
        for group in [[o for o in pauses if o.case.kind == kind]]
    )
    lines = [
        f"{detector:<11} live: {by_kind}; all pauses cut in {ratio(cut, len(pauses))}, "
        f"split {ratio(split, len(pauses))}",
        f"{'':<11} complete requests: wait p50={p50:.0f} p95={p95:.0f} ms (n={len(waits)}/{len(complete)}), "
        f"split {sum(o.split for o in complete)}/{len(complete)}",
    ]
    for pause in PAUSES_MS:
        group = [o for o in pauses if o.case.pause_ms == pause]
        if group:
            lines.append(f"    pause {pause} ms: cut in {sum(o.cut_in for o in group)}/{len(group)}")
    overlapped = sum(o.greeting_overlap for o in outcomes)
    if overlapped:
        lines.append(f"    warning: the agent was still talking when the caller began in {overlapped} calls")
    closing = (
        f"cut_in {100.0 * cut / len(pauses) if pauses else 0.0:.0f}% ({cut}/{len(pauses)}), "
        f"split {100.0 * split / len(pauses) if pauses else 0.0:.0f}% ({split}/{len(pauses)}), "
        f"complete_wait_p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    )
    return "\n".join(lines), closing


def live_case_line(o: LiveOutcome) -> str:
    reply = "none" if o.first_reply_ms is None else f"{o.first_reply_ms:+d} ms"
    turns = "; ".join(
        f"{text!r} {outcome}" + (f" (continued {continued})" if continued else "")
        for text, outcome, continued in o.turns
    )
    return (
        f"      {o.case.kind:<10} pause {o.case.pause_ms:>3} ms {'CUT-IN' if o.cut_in else 'ok':<6} "
        f"{'SPLIT' if o.split else 'whole':<5} agent in pause {o.pause_voice_ms:>4} ms, "
        f"first voice {reply} after part 1: {turns or 'no caller turn'}"
    )


def live_raw_config(detector: str, args: argparse.Namespace) -> dict[str, object]:
    persona = DEFAULT_PERSONAS["receptionist"]
    turn: dict[str, object] = {"detector": detector}
    for key in ("check_ms", "hold_ms", "complete_above", "incomplete_below"):
        if getattr(args, key) is not None:
            turn[key] = getattr(args, key)
    raw: dict[str, object] = {
        "personas": {
            "receptionist": {
                "system_prompt": persona.system_prompt,
                "facts": list(persona.facts),
                "greeting": LIVE_GREETING,
            }
        },
        "turn": turn,
    }
    if args.continue_within_ms is not None:
        raw["conversation"] = {"continue_within_ms": args.continue_within_ms}
    return raw


async def live(args: argparse.Namespace) -> None:
    configure_logging("error")
    detectors = ("silence", "smart_turn") if args.detector == "both" else (args.detector,)
    started = time.monotonic()
    config = parse_config(live_raw_config(detectors[-1], args))
    loaded = load_agent(config)
    await loaded.warm(bench_dialogue.WIRE.sample_rate)
    agents = {detectors[-1]: loaded}
    if "silence" not in agents:
        silent = config.turn.model_copy(update={"detector": "silence"})
        agents["silence"] = dataclasses.replace(loaded, turn_model=None, turn_worker=None, turn_settings=silent)
    cases = load_cases()
    if args.limit is not None:
        cases = [c for kind in ("complete", *SPLIT_KINDS) for c in [c for c in cases if c.kind == kind][: args.limit]]
    seconds = sum(len(caller_frames(c, LIVE_LEAD_FRAMES)[0]) * FRAME_SECONDS + LIVE_TAIL_S for c in cases)
    print(
        f"models ready in {time.monotonic() - started:.1f} s; {len(cases)} calls per detector "
        f"(~{seconds / 60:.1f} min each), {args.wire}, continue_within_ms={config.conversation.continue_within_ms}, "
        f"end_ms={config.conversation.end_ms}",
        flush=True,
    )
    closing: dict[str, str] = {}
    for detector in detectors:
        outcomes = []
        for case in cases:
            outcomes.append(await live_case(agents[detector], case, args.wire))
            if args.verbose:
                print(live_case_line(outcomes[-1]), flush=True)
        text, closing[detector] = live_summary(outcomes, detector)
        print(text, flush=True)
    for detector in detectors:
        print(f"turn live{'' if len(detectors) == 1 else ' ' + detector}: {closing[detector]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wire", choices=["ulaw", "g722"], default="ulaw")
    parser.add_argument("--check-ms", type=int, default=None, help="turn.check_ms (default: the config's)")
    parser.add_argument("--hold-ms", type=int, default=None, help="turn.hold_ms (default: the config's)")
    parser.add_argument("--complete-above", type=float, default=None, help="turn.complete_above")
    parser.add_argument("--incomplete-below", type=float, default=None, help="turn.incomplete_below")
    parser.add_argument("--verbose", action="store_true", help="list each case's outcome")
    parser.add_argument("--live", action="store_true", help="real simulated calls on the real models (slow)")
    parser.add_argument("--continue-within-ms", type=int, default=None, help="--live: conversation.continue_within_ms")
    parser.add_argument("--detector", choices=["silence", "smart_turn", "both"], default="silence", help="--live")
    parser.add_argument("--limit", type=int, default=None, help="--live: at most N cases of each kind")
    args = parser.parse_args()
    bench_dialogue.WIRE = codec_for(args.wire)
    if args.live:
        asyncio.run(live(args))
        return
    turn = parse_config({}).turn
    check_ms = args.check_ms or turn.check_ms
    hold_ms = args.hold_ms or turn.hold_ms
    global TURN
    TURN = turn.model_copy(
        update={
            "complete_above": args.complete_above or turn.complete_above,
            "incomplete_below": args.incomplete_below or turn.incomplete_below,
        }
    )
    model = SmartTurnModel(packaged_smart_turn())
    cases = load_cases()
    print(
        f"{len(cases)} cases ({sum(c.kind == 'complete' for c in cases)} complete), {args.wire}; "
        f"smart_turn check_ms={check_ms} hold_ms={hold_ms} complete_above={TURN.complete_above} "
        f"incomplete_below={TURN.incomplete_below}; silence end_ms={parse_config({}).conversation.end_ms}"
    )
    results: dict[str, tuple[float, float]] = {}
    for detector in ("silence", "smart_turn"):
        judge = model if detector == "smart_turn" else None
        outcomes = [run_case(case, detector, judge, check_ms, hold_ms) for case in cases]
        text, rate, p50 = summary(outcomes, detector)
        results[detector] = (rate, p50)
        print(text)
        if args.verbose:
            for o in outcomes:
                if o.cut_off or o.case.kind == "complete":
                    what = "CUT" if o.cut_off else f"wait {o.wait_ms} ms"
                    print(f"      {o.case.kind:<10} {'/'.join(o.case.voice):<14} {what:<12} {o.case.first!r}")
    silence, smart = results["silence"], results["smart_turn"]
    print(
        f"turn: silence cut_offs {silence[0]:.0f}%, wait_p50 {silence[1]:.0f} ms; "
        f"smart_turn cut_offs {smart[0]:.0f}%, wait_p50 {smart[1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
