"""Scripted stand-ins for the models, for unit tests of the conversation logic (never integration)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from bridge.config.agent import DEFAULT_PERSONAS, ConversationConfig, PersonaConfig, TurnConfig
from bridge.conversation.agent import Agent, TurnModel
from bridge.media.codecs import rms
from bridge.routing.services import RoutingServices
from bridge.speech.llm import ChatMessage, LabelScores
from bridge.speech.tts import Speaker
from bridge.speech.workers import ModelWorker, Supervised
from tests.support.audio import tone

LOUD = 3000


class LevelVoiceDetector:
    """Voiced means loud: lets tests script speech with tones."""

    def is_speech(self, frame: bytes) -> bool:
        return rms(frame) > 1000


@dataclass
class ScriptedRecognizer:
    """Returns the next scripted transcript for each utterance (by stream order)."""

    transcripts: list[str]
    name: str = "scripted"
    sample_rate: int = 16000
    opened: int = 0
    # Set: final() blocks its worker thread until the event is set (a wedged recogniser).
    stall: threading.Event | None = None
    streams: list[ScriptedStream] = field(default_factory=list)

    def open_stream(self, hints: str = "") -> ScriptedStream:
        text = self.transcripts[min(self.opened, len(self.transcripts) - 1)]
        self.opened += 1
        self.streams.append(ScriptedStream(text, stall=self.stall))
        return self.streams[-1]


@dataclass
class ScriptedStream:
    text: str
    audio_bytes: int = 0
    stall: threading.Event | None = None

    def accept(self, pcm: bytes) -> None:
        self.audio_bytes += len(pcm)

    def partial(self) -> str:
        return self.text

    def final(self) -> str:
        if self.stall is not None:
            self.stall.wait(30)
        return self.text


@dataclass
class ScriptedLanguageModel:
    """Chooses scripted labels (one per turn, the last repeats), then streams a fixed answer word by
    word when the label is 'answer'; records the prompts it was asked about."""

    reply_text: str = "We open at 8 am, and we close at 6 pm. See you soon."  # the default persona's facts
    token_delay: float = 0.01
    fail_with: Exception | None = None
    stall: bool = False  # True: never answers (a server that accepted the request and went quiet)
    labels: list[dict[str, float]] = field(default_factory=lambda: [{"answer": 1.0}])
    name: str = "scripted"
    requests: list[list[ChatMessage]] = field(default_factory=list)
    offered: list[tuple[str, ...]] = field(default_factory=list)
    cancelled: int = 0
    # Set: every prefill waits until it is set (a model still busy warming up); `prefilling` is
    # set once the first has begun.
    hold_prefill: asyncio.Event | None = None
    prefilling: asyncio.Event = field(default_factory=asyncio.Event)

    def workers(self) -> list[Supervised]:
        return []

    async def prefill(self, messages: list[ChatMessage], everywhere: bool = False) -> None:
        self.prefilling.set()
        if self.hold_prefill is not None:
            await self.hold_prefill.wait()

    async def labelled_reply(
        self, messages: list[ChatMessage], labels: Sequence[str], go: threading.Event | None = None
    ) -> AsyncGenerator[LabelScores | str, None]:
        self.requests.append(messages)
        self.offered.append(tuple(labels))
        if self.stall:
            await asyncio.Event().wait()
        scores = LabelScores.of(self.labels[min(len(self.requests), len(self.labels)) - 1])
        await asyncio.sleep(self.token_delay)
        yield scores
        if scores.best != "answer":
            return
        finished = False
        try:
            for index, word in enumerate(self.reply_text.split(" ")):
                if self.fail_with is not None and index == 1:
                    raise self.fail_with
                await asyncio.sleep(self.token_delay)
                yield word if index == 0 else " " + word
            finished = True
        finally:
            if not finished:
                self.cancelled += 1


@dataclass
class ToneSynthesizer:
    """Each clause becomes a loud tone, 60 ms per word, at 16 kHz."""

    name: str = "tone"
    sample_rate: int = 16000
    spoken: list[str] = field(default_factory=list)
    # Text containing this blocks the worker thread until `release` is set (a wedged synthesiser).
    stall_on: str | None = None
    release: threading.Event = field(default_factory=threading.Event)

    def synthesize(self, text: str) -> Iterator[bytes]:
        if self.stall_on is not None and self.stall_on in text:
            self.release.wait(30)
        self.spoken.append(text)
        yield tone(600, 0.06 * len(text.split()), self.sample_rate, amplitude=0.3)


def fake_agent(
    transcripts: list[str],
    llm: ScriptedLanguageModel | None = None,
    synthesizer: ToneSynthesizer | None = None,
    persona: PersonaConfig | None = None,
    routing: RoutingServices | None = None,
    turn_model: TurnModel | None = None,
    turn: TurnConfig | None = None,
    **settings: object,
) -> Agent:
    base = {"end_ms": 200, "pause_ms": 60, "min_voiced_ms": 100, **settings}
    return Agent(
        recognizer=ScriptedRecognizer(transcripts),
        stt_worker=ModelWorker("stt-test"),
        llm=llm or ScriptedLanguageModel(),
        speaker=Speaker(synthesizer or ToneSynthesizer()),
        voice_detector=lambda rate: LevelVoiceDetector(),
        personas={"receptionist": persona or DEFAULT_PERSONAS["receptionist"]},
        settings=ConversationConfig.model_validate(base),
        routing=routing,
        turn_model=turn_model,
        turn_worker=ModelWorker("turn-test") if turn_model is not None else None,
        turn_settings=turn or TurnConfig(detector="smart_turn"),
    )


class ScriptedTurnModel:
    """Says each pause is complete with the next probability in `probabilities` (the last repeats)."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = probabilities
        self.heard_seconds: list[float] = []

    def complete_probability(self, audio: np.ndarray) -> float:
        self.heard_seconds.append(audio.size / 16000)
        index = min(len(self.heard_seconds), len(self.probabilities)) - 1
        return self.probabilities[index]


def speech(seconds: float, rate: int = 8000) -> bytes:
    """A loud tone the level detector calls speech."""
    return tone(300, seconds, rate, amplitude=0.3)


def quiet(seconds: float, rate: int = 8000) -> bytes:
    return bytes(int(seconds * rate) * 2)
