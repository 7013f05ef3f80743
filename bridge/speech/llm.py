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

    async def prefill(self, messages: list[ChatMessage]) -> None:
        """Pre-compute the KV cache for a conversation so far (the system prompt at start-up, the
        history while the caller speaks), so the next reply only evaluates the caller's new words."""
