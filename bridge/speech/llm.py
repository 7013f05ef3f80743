"""What the conversation needs from a language model: stream a reply to a chat history."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Protocol, TypedDict


class ChatMessage(TypedDict):
    role: str
    content: str


class LanguageModel(Protocol):
    name: str

    def reply(self, messages: list[ChatMessage], go: threading.Event | None = None) -> AsyncGenerator[str, None]:
        """Stream the reply's text pieces; closing the iterator stops generation.

        A local model generates only while `go` is set: the conversation clears it while the first
        clause is being synthesised, so TTS gets the CPU on the critical path.
        """

    async def warm(self, system_prompt: str) -> None:
        """Pre-compute what can be (the system prompt's KV cache) before the first caller."""
