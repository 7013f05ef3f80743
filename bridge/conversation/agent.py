"""The models every call shares, and the fixed phrases each persona needs at once (rendered once).

Greetings, apologies and goodbyes are synthesised the first time a call at a given rate needs
them and then reused: the caller hears the greeting the instant media connects, and an
apology still plays when the TTS backend itself is what broke.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import structlog

from bridge.config.agent import ConversationConfig, PersonaConfig, TurnConfig
from bridge.conversation.grounding import GroundedAnswer, Grounding
from bridge.conversation.prompt import DEMONSTRATION_QUESTIONS, TurnPrompt, build_prompt, hearing_hints
from bridge.routing.desk import fixed_phrases
from bridge.routing.services import RoutingServices
from bridge.speech.llm import ANSWER, LanguageModel
from bridge.speech.stt import SpeechRecognizer
from bridge.speech.tts import Speaker
from bridge.speech.workers import ModelWorker, Supervised

log = structlog.get_logger(__name__)


class VoiceDetector(Protocol):
    def is_speech(self, frame: bytes) -> bool: ...


class TurnModel(Protocol):
    """Whether the caller's words so far sound finished (speech/turn_model.py)."""

    def complete_probability(self, audio: np.ndarray) -> float: ...


@dataclass
class Agent:
    recognizer: SpeechRecognizer
    stt_worker: ModelWorker
    llm: LanguageModel
    speaker: Speaker
    voice_detector: Callable[[int], VoiceDetector]
    personas: dict[str, PersonaConfig]
    settings: ConversationConfig
    routing: RoutingServices | None = None
    _phrases: dict[tuple[str, int], bytes] = field(default_factory=dict)
    bias_stt: bool = True
    # Semantic end of turn (turn.detector = "smart_turn"): the model and its own thread, so a
    # verdict never waits behind speech recognition.
    turn_model: TurnModel | None = None
    turn_worker: ModelWorker | None = None
    turn_settings: TurnConfig | None = None
    _prompts: dict[str, TurnPrompt] = field(default_factory=dict, init=False)  # rebuilt on reload
    # The model's answers to the demonstration questions, by the prompt they were asked with:
    # shared by the copies a reload makes, so an unchanged persona does not ask again.
    _demonstrations: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    _rendering: dict[tuple[str, int], asyncio.Task[bytes]] = field(default_factory=dict)

    def persona(self, name: str) -> tuple[str, PersonaConfig]:
        """The persona a call asked for (Stasis argument), or the default one."""
        if name in self.personas:
            return name, self.personas[name]
        default = self.settings.default_persona
        return default, self.personas[default]

    async def phrase(self, text: str, rate: int) -> bytes:
        """Fixed text as audio at `rate`, synthesised once and shared by all calls."""
        key = (text, rate)
        if key in self._phrases:
            return self._phrases[key]
        task = self._rendering.get(key)
        if task is None:
            task = asyncio.ensure_future(self.speaker.render(text, rate))
            self._rendering[key] = task
        try:
            audio = await asyncio.shield(task)
        finally:
            if task.done():
                self._rendering.pop(key, None)
        self._phrases[key] = audio
        return audio

    def prompt(self, name: str) -> TurnPrompt:
        """The persona's turn prompt (facts, targets, labels, examples), built once. A copy made
        by a reload has no prompts yet: for a persona the model already answered the
        demonstration questions for (unchanged by the reload) they go straight in, so a call in
        the seconds before the copy's `warm()` gets the same prompt as before."""
        if name not in self._prompts:
            persona = self.personas[name]
            routing = self.routing.config if self.routing is not None else None
            prompt = build_prompt(persona, routing)
            demonstrations = self._demonstrations.get(_demonstration_key(prompt, persona))
            self._prompts[name] = build_prompt(persona, routing, demonstrations) if demonstrations else prompt
        return self._prompts[name]

    def hints(self, name: str) -> str:
        """Words to bias the recogniser with on this persona's calls ("" when switched off)."""
        if not self.bias_stt:
            return ""
        routing = self.routing.config if self.routing is not None else None
        return hearing_hints(self.personas[name], routing)

    async def warm(self, *rates: int) -> None:
        """Before the first call: persona prompts into the LLM cache, fixed phrases into audio.

        A prompt is ~700-1,100 tokens: 2-4 s to evaluate with the 0.5B model, 4-8 s with the 1.5B
        on two cores, paid here once instead of on a caller's first turn."""
        routing = self.routing.config if self.routing is not None else None
        for name, persona in self.personas.items():
            plain = build_prompt(persona, routing)
            demonstrations = self._demonstrations.get(_demonstration_key(plain, persona))
            if demonstrations is None:
                await self.llm.prefill(list(plain.messages), everywhere=True)
                try:
                    demonstrations = await self._demonstrate(plain, persona)
                except Exception as error:  # noqa: BLE001 - examples are an aid; a broken model fails on its calls
                    log.warning("agent.demonstrations_failed", persona=name, error=str(error))
                    demonstrations = ()
            self._prompts[name] = build_prompt(persona, routing, demonstrations)
            await self.llm.prefill(list(self.prompt(name).messages), everywhere=True)
            for text in (persona.greeting, persona.apology, persona.goodbye, persona.reprompt, persona.unknown_answer):
                for rate in rates:
                    await self.phrase(text, rate)
        if self.routing is not None:
            for text in fixed_phrases(self.routing.rules):
                for rate in rates:
                    await self.phrase(text, rate)

    async def _demonstrate(self, prompt: TurnPrompt, persona: PersonaConfig) -> tuple[tuple[str, str], ...]:
        """The model answers the questions every receptionist gets, from this persona's facts;
        an answer that fails the grounding check becomes the honest unknown answer."""
        key = _demonstration_key(prompt, persona)
        if key in self._demonstrations:
            return self._demonstrations[key]
        answers = []
        for question in DEMONSTRATION_QUESTIONS:
            answer = GroundedAnswer(Grounding(persona.knowledge()), persona.unknown_answer, question)
            clauses: list[str] = []
            async for piece in self.llm.labelled_reply(prompt.for_turn([], question), (ANSWER,)):
                if isinstance(piece, str) and not answer.done:
                    clauses += answer.feed(piece)
            clauses += [] if answer.done else answer.flush()
            answers.append((question, " ".join(clauses)))
        self._demonstrations[key] = tuple(answers)
        return self._demonstrations[key]

    def workers(self) -> list[Supervised]:
        """Every model thread the calls depend on, for the service's supervision."""
        turn = [self.turn_worker] if self.turn_worker is not None else []
        return [self.stt_worker, self.speaker.worker, *self.llm.workers(), *turn]

    def cached_phrase(self, text: str, rate: int) -> bytes | None:
        """Audio for `text` if it was rendered before (fixed phrases), else None: stream it instead."""
        return self._phrases.get((text, rate))


def _demonstration_key(prompt: TurnPrompt, persona: PersonaConfig) -> str:
    """What the demonstration answers depend on: the prompt they were asked with and the facts."""
    return json.dumps([prompt.messages, persona.knowledge()])
