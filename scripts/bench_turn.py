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

    .venv/bin/python scripts/bench_turn.py        # or: bridge bench turn [--wire g722]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bridge.config import parse_config
from bridge.config.agent import TurnConfig
from bridge.conversation.endpointing import Endpointer, EndpointSettings, Signal
from bridge.conversation.loading import voice_detector_factory
from bridge.conversation.turn_judge import verdict
from bridge.media.codecs import FRAME_MS, codec_for
from bridge.media.resample import resample_pcm16
from bridge.speech.turn_model import SAMPLE_RATE, SmartTurnModel, packaged_smart_turn
from scripts import bench_dialogue
from scripts.bench_media import percentile

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
    engine, voice = case.voice
    first = trimmed(bench_dialogue.spoken_on_the_wire(case.first, engine, voice), rate)
    audio = frames_of(bytes(frame_bytes * 10) + first, frame_bytes)
    speech_end_frame = len(audio)
    rest_frame: int | None = None
    if case.rest:
        audio += frames_of(bytes(frame_bytes * (case.pause_ms // FRAME_MS)), frame_bytes)
        rest_frame = len(audio)
        rest = trimmed(bench_dialogue.spoken_on_the_wire(case.rest, engine, voice), rate)
        audio += frames_of(rest, frame_bytes)
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
    waits = sorted(o.wait_ms for o in outcomes if o.case.kind == "complete" and o.wait_ms is not None)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wire", choices=["ulaw", "g722"], default="ulaw")
    parser.add_argument("--check-ms", type=int, default=None, help="turn.check_ms (default: the config's)")
    parser.add_argument("--hold-ms", type=int, default=None, help="turn.hold_ms (default: the config's)")
    parser.add_argument("--complete-above", type=float, default=None, help="turn.complete_above")
    parser.add_argument("--incomplete-below", type=float, default=None, help="turn.incomplete_below")
    parser.add_argument("--verbose", action="store_true", help="list each case's outcome")
    args = parser.parse_args()
    bench_dialogue.WIRE = codec_for(args.wire)
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
