"""The models every call shares, and the fixed phrases each persona needs at once (rendered once).

Greetings, apologies and goodbyes are synthesised the first time a call at a given rate needs
them and then reused: the caller hears the greeting the instant media connects, and an
apology still plays when the TTS backend itself is what broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bridge.agent_config import ConversationConfig, PersonaConfig
from bridge.routing.desk import fixed_phrases
from bridge.routing.services import RoutingServices
from bridge.speech.llm import LanguageModel
from bridge.speech.stt import SpeechRecognizer
from bridge.speech.tts import Speaker
from bridge.speech.workers import ModelWorker


class VoiceDetector(Protocol):
    def is_speech(self, frame: bytes) -> bool: ...


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

    def system_prompt(self, persona: PersonaConfig) -> str:
        """The persona's prompt plus, when routing lets the LLM transfer, the targets it may name."""
        tools = self.routing.tool_instructions() if self.routing is not None else ""
        return persona.system_prompt + tools

    async def warm(self, rate: int) -> None:
        """Before the first call: persona prompts into the LLM cache, fixed phrases into audio."""
        for persona in self.personas.values():
            await self.llm.prefill([{"role": "system", "content": self.system_prompt(persona)}])
            for text in (persona.greeting, persona.apology, persona.goodbye, persona.reprompt):
                await self.phrase(text, rate)
        if self.routing is not None:
            for text in fixed_phrases(self.routing.rules):
                await self.phrase(text, rate)

    def cached_phrase(self, text: str, rate: int) -> bytes | None:
        """Audio for `text` if it was rendered before (fixed phrases), else None: stream it instead."""
        return self._phrases.get((text, rate))
