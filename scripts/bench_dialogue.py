#!/usr/bin/env python3
"""Dialogue benchmark: does the receptionist understand callers on four businesses' own configs?

The dev set (scripts/dialogue/*.toml) holds each business's config (persona facts, routing
targets with descriptions and examples) and its caller utterances with the expected outcome.
Each utterance is spoken by flite (awb, rms, slt, kal16) or espeak-ng (several variants), some
with noise mixed in, sent through G.711 u-law at 8 kHz, transcribed by the real STT (biased with
the business's words) and decided by the real path the calls use (conversation/understanding.py:
instant rules, then the model's scored labels, then a grounded answer).

Scores, per category and overall:
  routing   the case expects a target, message, goodbye or a refusal ("elsewhere"), and the desk
            did that (a confirmation question for the right target counts, and is counted apart)
  answers   the case expects an answer: a known fact named (answer_any, none of answer_not), an
            unknown one admitted (the persona's unknown_answer or the grounding fallback), small
            talk answered without routing
  invented  answers that state what the facts do not (answer_not hit, or a number/day/name the
            facts and the caller never gave)
  refused_wrongly  refusals ("I can only put you through to ...") where the case did not expect one
  first_audio  from the end of the caller's audio to the first reply audio ready: STT + decision +
            first clause + its TTS (cached phrases: none), not counting the end-of-turn silence

    .venv/bin/python scripts/bench_dialogue.py [--model qwen2.5-coder-1.5b] [--stt tiny] [--typed]
    .venv/bin/python scripts/bench_dialogue.py --calls 6     # also a subset through Asterisk + sipp
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bridge.config import BridgeConfig, parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.grounding import Grounding
from bridge.conversation.loading import default_llm_model, load_recognizer, load_synthesizer, voice_detector_factory
from bridge.conversation.understanding import Understanding
from bridge.logs import configure_logging
from bridge.media.codecs import codec_for
from bridge.media.resample import resample_pcm16
from bridge.models.paths import cache_root
from bridge.records import ConversationReport, TurnRecord
from bridge.routing.desk import (
    Clarify,
    Confirm,
    Goodbye,
    MessageTaken,
    OfferMessage,
    RecordMessage,
    Refuse,
    Speak,
    Transfer,
)
from bridge.routing.intents import normalise
from bridge.routing.services import RoutingServices
from bridge.speech.llm import LanguageModel
from bridge.speech.llm_llama import LlamaLanguageModel
from bridge.speech.stt import SpeechRecognizer
from bridge.speech.tts import Speaker
from bridge.speech.tts_command import wav_rate, wav_samples
from bridge.speech.workers import ModelWorker
from scripts.bench_media import percentile

DEV_SET = Path(__file__).resolve().parent / "dialogue"
# The call's audio path: u-law at 8 kHz (a phone trunk) or --wire g722 (16 kHz, as browsers get).
WIRE = codec_for("ulaw")
VOICES = (
    ("flite", "awb"), ("flite", "rms"), ("flite", "slt"), ("flite", "kal16"),
    ("espeak-ng", "en-us"), ("espeak-ng", "en-gb"), ("espeak-ng", "en-us+f3"), ("espeak-ng", "en-us+m3"),
)  # fmt: skip
NOISE_EVERY = 4  # every 4th utterance gets noise mixed in
NOISE_SNR_DB = 15.0
ROUTING_CATEGORIES = ("route_", "person", "message", "goodbye", "elsewhere")
HONEST = ("don't have", "do not have", "not sure", "don't know", "do not know", "can't say", "cannot say")


@dataclass
class Case:
    business: str
    index: int
    text: str
    category: str
    expect: str
    answer_any: list[str] = field(default_factory=list)
    answer_not: list[str] = field(default_factory=list)

    @property
    def voice(self) -> tuple[str, str]:
        return VOICES[self.index % len(VOICES)]

    @property
    def noisy(self) -> bool:
        return self.index % NOISE_EVERY == NOISE_EVERY - 1


@dataclass
class Result:
    case: Case
    heard: str
    outcome: str  # target name, message, goodbye, elsewhere, answer, or offer:<target>
    said: str
    confirmed: bool = False
    fell_back: bool = False
    stt_ms: float = 0.0
    first_audio_ms: float = 0.0
    routing_ok: bool | None = None
    answer_ok: bool | None = None
    invented: bool = False
    refused_wrongly: bool = False
    rejected: list[str] = field(default_factory=list)
    labels: tuple[tuple[str, float], ...] = ()


@dataclass
class Business:
    name: str
    config: BridgeConfig
    cases: list[Case]


def load_dev_set(names: list[str] | None, where: Path = DEV_SET) -> list[Business]:
    """Every business in `where` (a folder of .toml files, or one file): its config and cases."""
    businesses = []
    for path in sorted(where.glob("*.toml")) if where.is_dir() else [where]:
        raw = tomllib.loads(path.read_text())
        if names and raw["name"] not in names:
            continue
        cases = [Case(raw["name"], i, **case) for i, case in enumerate(raw["cases"])]
        businesses.append(Business(raw["name"], parse_config(raw["config"], str(path)), cases))
    return businesses


# -- caller audio ----------------------------------------------------------------------------


def caller_audio(case: Case) -> bytes:
    """The utterance as the bridge would get it: synthetic voice, maybe noise, through the wire codec
    (u-law at 8 kHz, or G.722 at 16 kHz)."""
    engine, voice = case.voice
    return spoken_on_the_wire(case.text, engine, voice, noise_seed=case.index if case.noisy else None)


def spoken_on_the_wire(text: str, engine: str, voice: str, noise_seed: int | None = None) -> bytes:
    """`text` said by flite or espeak-ng, maybe with noise, encoded and decoded by the wire codec
    (cached: the bench re-runs on the same audio)."""
    key = hashlib.sha256(f"{engine}|{voice}|{noise_seed}|{text}|{WIRE.name}".encode()).hexdigest()[:20]
    cached = cache_root() / "dialogue-audio" / f"{key}.pcm"
    if cached.is_file():
        return cached.read_bytes()
    if shutil.which(engine) is None:
        raise SystemExit(f"{engine} not found: install Debian's flite and espeak-ng (scripts/test does this)")
    if engine == "flite":
        command = ["flite", "-voice", voice, "-t", text, "-o", "/dev/stdout"]
    else:
        command = ["espeak-ng", "-v", voice, "-s", "160", "--stdout", "--", text]
    wav = subprocess.run(command, capture_output=True, check=True).stdout
    pcm = resample_pcm16(wav_samples(wav), wav_rate(wav), WIRE.sample_rate)
    if noise_seed is not None:
        pcm = _with_noise(pcm, seed=noise_seed)
    frame = WIRE.pcm_frame_bytes
    pcm += bytes(-len(pcm) % frame)
    encode, decode = WIRE.encoder(), WIRE.decoder()
    pcm = b"".join(decode(encode(pcm[start : start + frame])) for start in range(0, len(pcm), frame))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pcm)
    return pcm


def _with_noise(pcm: bytes, seed: int) -> bytes:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    power = float(np.mean(samples**2)) or 1.0
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (NOISE_SNR_DB / 10)), samples.size)
    return np.clip(samples + noise, -32768, 32767).astype(np.int16).tobytes()


# -- one case ------------------------------------------------------------------------------------


async def run_case(agent: Agent, case: Case, typed: bool) -> Result:
    persona_name, persona = agent.persona(agent.settings.default_persona)
    assert agent.routing is not None
    desk = agent.routing.desk(persona.goodbye)
    understanding = Understanding(agent.llm, agent.prompt(persona_name), persona, desk)
    started = time.perf_counter()
    if typed:
        heard = case.text
    else:
        audio = resample_pcm16(caller_audio(case), WIRE.sample_rate, agent.recognizer.sample_rate)
        hints = agent.hints(persona_name)

        def transcribe() -> str:
            stream = agent.recognizer.open_stream(hints)
            stream.accept(audio)
            return stream.final()

        heard = (await agent.stt_worker.run(transcribe)).strip()
    stt_ms = (time.perf_counter() - started) * 1000
    decided = await understanding.decide(heard, [])
    result = Result(case, heard, "answer", "", stt_ms=stt_ms)
    result.labels = decided.scores.ranked[:3] if decided.scores else ()
    action = decided.action
    if action is None:
        clauses = []
        first_clause_at = None
        async for clause in decided.clauses():
            first_clause_at = first_clause_at or time.perf_counter()
            clauses.append(clause)
        result.said = " ".join(clauses)
        result.fell_back = bool(decided.answer and decided.answer.fell_back)
        result.rejected = list(decided.answer.rejected) if decided.answer else []
        tts_ms = await _first_audio_ms(agent, clauses[0] if clauses else "")
        result.first_audio_ms = ((first_clause_at or time.perf_counter()) - started) * 1000 + tts_ms
    else:
        result.said = action.say
        result.outcome, result.confirmed = _outcome(action, desk.pending.name if desk.pending else "")
        cached = agent.cached_phrase(action.say, WIRE.sample_rate) is not None
        tts_ms = 0.0 if cached else await _first_audio_ms(agent, action.say)
        result.first_audio_ms = (time.perf_counter() - started) * 1000 + tts_ms
    _score(result, Grounding(persona.knowledge()), persona.unknown_answer)
    return result


def _outcome(action: object, pending: str) -> tuple[str, bool]:
    if isinstance(action, Transfer):
        return action.route.name, False
    if isinstance(action, Confirm):
        return action.route.name, True
    if isinstance(action, Refuse):
        return "elsewhere", False
    if isinstance(action, RecordMessage | MessageTaken):
        return "message", False
    if isinstance(action, Goodbye):
        return "goodbye", False
    if isinstance(action, OfferMessage):
        return "message", True
    if isinstance(action, Clarify):
        return "clarify", False
    if isinstance(action, Speak) and pending:  # a queue wait or nobody free: offered for the target
        return pending, False
    return "answer", False


async def _first_audio_ms(agent: Agent, text: str) -> float:
    if not text:
        return 0.0
    started = time.perf_counter()
    async for _ in agent.speaker.speak(text, WIRE.sample_rate):
        break
    return (time.perf_counter() - started) * 1000


def _score(result: Result, grounding: Grounding, unknown_answer: str) -> None:
    case, said = result.case, result.said.lower()
    result.refused_wrongly = result.outcome == "elsewhere" and case.expect != "elsewhere"
    if case.expect != "answer":
        result.routing_ok = result.outcome == case.expect
        return
    if result.outcome != "answer":
        result.answer_ok = False
        return
    honest = result.fell_back or normalise(unknown_answer) in normalise(said) or any(h in said for h in HONEST)
    unsupported = grounding.unsupported(result.said, result.heard)
    wrong = any(phrase.lower() in said for phrase in case.answer_not)
    if case.category == "facts_known":
        right = any(phrase.lower() in said for phrase in case.answer_any)
        result.answer_ok = right and not wrong
    elif case.category == "facts_unknown":
        result.answer_ok = honest and not unsupported
    else:
        result.answer_ok = bool(said) and not unsupported and not wrong
    result.invented = wrong or (bool(unsupported) and not result.fell_back)
    if case.category == "facts_unknown" and not honest:
        result.invented = True


# -- models ----------------------------------------------------------------------------------


def load_models(args: argparse.Namespace) -> tuple[SpeechRecognizer, LanguageModel, Speaker]:
    packaged = {"tiny": "whisper-tiny.en", "base": "whisper-base"}
    stt: dict[str, object] = {"threads": 2}
    if args.stt in packaged:
        stt["packaged"] = packaged[args.stt]
    else:
        stt["model_path"] = args.stt
    if args.second_opinion:
        stt["second_opinion"] = args.second_opinion
    recognizer = load_recognizer(parse_config({"stt": stt}).stt)
    model_path = Path(args.model) if Path(args.model).suffix == ".gguf" else default_llm_model(args.model)
    llm = LlamaLanguageModel(model_path, context_tokens=2048, threads=2, max_tokens=60, contexts=args.concurrency)
    speaker = Speaker(load_synthesizer(parse_config({}).tts))
    return recognizer, llm, speaker


def business_agent(business: Business, models: tuple[SpeechRecognizer, LanguageModel, Speaker], bias: bool) -> Agent:
    recognizer, llm, speaker = models
    config = business.config
    return Agent(
        recognizer=recognizer,
        stt_worker=ModelWorker("stt-bench"),
        llm=llm,
        speaker=speaker,
        voice_detector=voice_detector_factory(config.vad),
        personas=dict(config.personas),
        settings=config.conversation,
        routing=RoutingServices.from_config(config.routing),
        bias_stt=bias,
    )


# -- report ----------------------------------------------------------------------------------


def report(results: list[Result], verbose: bool) -> str:
    categories: dict[str, list[Result]] = {}
    for result in results:
        categories.setdefault(result.case.category, []).append(result)
    print(f"{'category':<16} {'n':>4} {'right':>6} {'%':>6}  {'confirmed':>9} {'invented':>8} {'refused_wrongly':>15}")
    for name in sorted(categories):
        rows = categories[name]
        right = sum(1 for r in rows if r.routing_ok or r.answer_ok)
        print(
            f"{name:<16} {len(rows):>4} {right:>6} {100 * right / len(rows):>5.0f}%  "
            f"{sum(r.confirmed for r in rows):>9} {sum(r.invented for r in rows):>8} "
            f"{sum(r.refused_wrongly for r in rows):>15}"
        )
    if verbose:
        print("\nmisses:")
        for r in results:
            if r.routing_ok is False or r.answer_ok is False or r.invented:
                print(f"  [{r.case.business}/{r.case.category}] said {r.case.text!r}")
                print(f"      heard {r.heard!r} -> {r.outcome} (expected {r.case.expect}): {r.said!r}")
                if r.labels:
                    print(f"      labels: {r.labels}")
                if r.rejected:
                    print(f"      grounding rejected: {', '.join(r.rejected)}")
    routed = [r for r in results if r.routing_ok is not None]
    answered = [r for r in results if r.answer_ok is not None]
    routing_right = sum(1 for r in routed if r.routing_ok)
    answers_right = sum(1 for r in answered if r.answer_ok)
    first_audio = percentile([r.first_audio_ms for r in results], 0.5)
    stt = percentile([r.stt_ms for r in results], 0.5)
    errors, words = (sum(pair) for pair in zip(*(word_errors(r.case.text, r.heard) for r in results), strict=True))
    print(
        f"\nfirst_audio p50={first_audio:.0f} p95={percentile([r.first_audio_ms for r in results], 0.95):.0f} ms "
        f"(stt p50={stt:.0f} ms); confirmed {sum(r.confirmed for r in results)}; "
        f"STT word error rate {errors / max(words, 1):.3f} ({errors}/{words} words, "
        f"{WIRE.name} at {WIRE.sample_rate} Hz)"
    )
    return (
        f"dialogue: routing {routing_right}/{len(routed)} ({_pct(routing_right, len(routed))}), "
        f"answers {answers_right}/{len(answered)} ({_pct(answers_right, len(answered))}), "
        f"invented {sum(r.invented for r in results)}, "
        f"refused_wrongly {sum(r.refused_wrongly for r in results)}, first_audio_p50 {first_audio:.0f} ms"
    )


def word_errors(said: str, heard: str) -> tuple[int, int]:
    """Word-level edit distance between what was said and what STT heard, and the words said."""
    reference, hypothesis = _words(said), _words(heard)
    row = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1], len(reference)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _pct(right: int, total: int) -> str:
    return f"{100 * right / total:.0f}%" if total else "n/a"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="qwen2.5-coder-0.5b | -1.5b | a .gguf")
    parser.add_argument("--stt", default="tiny", help="tiny (Whisper tiny.en) | base (Whisper base) | a model dir")
    parser.add_argument("--second-opinion", default="", help="stt.second_opinion: none | whisper-base")
    parser.add_argument("--typed", action="store_true", help="skip speech: decide on the typed text")
    parser.add_argument("--no-bias", action="store_true", help="do not prime the STT with the business's words")
    parser.add_argument("--business", action="append", help="only this business (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many cases per business")
    parser.add_argument("--concurrency", type=int, default=1, help="cases decided at once (calls in parallel)")
    parser.add_argument("--calls", type=int, default=0, help="also send this many cases per business through Asterisk")
    parser.add_argument("--only-calls", action="store_true", help="with --calls: skip the offline run")
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    parser.add_argument("--wire", default="ulaw", choices=["ulaw", "g722"], help="the call's codec (8 or 16 kHz)")
    parser.add_argument("--denoise", action="store_true", help="with --calls: media.denoise (Asterisk's DENOISE)")
    parser.add_argument(
        "--dev-set",
        type=Path,
        default=DEV_SET,
        help="a folder of business .toml files, or one: your config, your cases",
    )
    args = parser.parse_args()
    global WIRE
    WIRE = codec_for(args.wire)
    configure_logging("error")
    started = time.monotonic()
    models = load_models(args)
    print(f"machine: {os.cpu_count()} cores; models loaded in {time.monotonic() - started:.1f} s", flush=True)
    results: list[Result] = []
    calls_results: list[Result] = []
    for business in load_dev_set(args.business, args.dev_set):
        agent = business_agent(business, models, bias=not args.no_bias)
        prefill_started = time.monotonic()
        await agent.warm(WIRE.sample_rate)
        cases = business.cases[: args.limit] if args.limit else business.cases
        print(f"{business.name}: {len(cases)} cases (prompt + phrases ready in "
              f"{time.monotonic() - prefill_started:.1f} s)", flush=True)  # fmt: skip
        if not args.only_calls:
            results += await run_cases(agent, cases, args)
        if args.calls:
            sample = random.Random(7).sample(cases, min(args.calls, len(cases)))
            called = await run_calls(business, agent, sample, denoise=args.denoise)
            calls_results.extend(called)
    if calls_results:
        print(f"\nthrough Asterisk + sipp ({len(calls_results)} calls):")
        summary = report(calls_results, args.verbose).replace("dialogue:", "calls:")
        print(f"  {summary} (first frame out, on the call)")
        print()
    if results:
        print(report(results, args.verbose))


async def run_calls(business: Business, agent: Agent, cases: list[Case], denoise: bool = False) -> list[Result]:
    """The same cases as real calls: sipp -> a private Asterisk -> the bridge service; each
    outcome read back from the call record (the transfer, or the turn's words)."""
    from bridge.app.service import BridgeService
    from scripts.bench_media import bench_config, start_private_asterisk
    from tests.integration.conftest import wait_for_finished_calls
    from tests.support.pcap import write_rtp_pcap
    from tests.support.sipp import SippCaller

    workdir, asterisk = start_private_asterisk("bench-dialogue-")
    raw = bench_config(asterisk, "agent").model_dump(mode="json")
    raw["personas"] = business.config.model_dump(mode="json")["personas"]
    raw["routing"] = business.config.model_dump(mode="json")["routing"]
    raw["routing"]["messages_dir"] = str(workdir / "messages")
    raw["media"]["denoise"] = denoise
    results = []
    try:
        service = BridgeService(parse_config(raw), None, agent)
        task = asyncio.create_task(service.run())
        await asyncio.wait_for(service.events.connected.wait(), 120)
        _, persona = agent.persona(agent.settings.default_persona)
        for number, case in enumerate(cases, start=1):
            audio = bytes(WIRE.sample_rate * 2 * 5) + caller_audio(case) + bytes(WIRE.sample_rate * 2 * 8)
            pcap = workdir / f"case-{number}.pcap"
            write_rtp_pcap(pcap, audio, WIRE)
            target = ("127.0.0.1", asterisk.settings.sip_port)
            caller = SippCaller(workdir, target, pcap, hold_ms=len(audio) // 16 + 500)
            await caller.run(timeout=len(audio) / 16000 + 60)
            await wait_for_finished_calls(service, number, timeout=30)
            record = service.app.finished[-1]
            conversation = record.conversation or ConversationReport()
            turns = [turn for turn in conversation.turns if turn.caller]
            turn = turns[0] if turns else TurnRecord(outcome="none")
            pending = conversation.routing.pending if conversation.routing is not None else ""
            sent_to = record.transfer.target if record.transfer is not None else ""
            outcome = sent_to or _outcome_of_turn(turn, pending)
            result = Result(case, turn.caller, outcome, turn.agent)
            # On a call: the agent's first frame out after the caller's last voiced frame (end of turn included).
            result.first_audio_ms = float(turn.latency_ms.get("first_frame_out", 0))
            result.confirmed = turn.outcome in ("routing:confirm", "routing:offermessage")
            result.fell_back = turn.outcome == "answered:unknown"
            _score(result, Grounding(persona.knowledge()), persona.unknown_answer)
            results.append(result)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        asterisk.stop()
    return results


def _outcome_of_turn(turn: TurnRecord, pending: str) -> str:
    """What a call's (first) turn came to, from its record: like `_outcome` for the offline run."""
    outcome = turn.outcome
    if outcome.startswith("answered"):
        return "answer"
    if outcome in ("routing:confirm", "routing:speak") and pending:
        return pending
    decided = turn.decided.get("labels")
    labels = decided if isinstance(decided, list) and decided else [["answer"]]
    kinds = {
        "routing:refuse": "elsewhere",
        "goodbye": "goodbye",
        "routing:recordmessage": "message",
        "routing:offermessage": "message",
        "routing:clarify": "clarify",
    }
    return kinds.get(outcome, str(labels[0][0]))


async def run_cases(agent: Agent, cases: list[Case], args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    for start in range(0, len(cases), args.concurrency):
        batch = cases[start : start + args.concurrency]
        results += await asyncio.gather(*(run_case(agent, case, args.typed) for case in batch))
    return results


if __name__ == "__main__":
    asyncio.run(main())
