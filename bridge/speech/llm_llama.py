"""llama.cpp (llama-cpp-python) running a local GGUF, shared by every call through one worker.

llama.cpp keeps the KV cache of the last prompt and reuses its longest common prefix, so the
persona's system prompt (prefilled at start-up) and the call's earlier turns (prefilled while
the caller speaks) are not evaluated again: only the caller's new words are. Generation stops
at the next token once the caller barges in.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

from bridge.models.errors import ModelFileError
from bridge.speech.llm import ChatMessage
from bridge.speech.token_scheduler import TokenScheduler


def check_gguf(model_path: Path) -> None:
    if not model_path.is_file():
        raise ModelFileError(f"{model_path}: GGUF model file missing; set llm.model_path or run `bridge models`")
    with model_path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(f"{model_path}: not a GGUF file (bad magic); re-download or reassemble it")


class LlamaLanguageModel:
    name = "llama_cpp"

    def __init__(
        self,
        model_path: Path,
        context_tokens: int = 2048,
        threads: int = 2,
        max_tokens: int = 80,
        temperature: float = 0.0,
        contexts: int = 2,
    ) -> None:
        check_gguf(model_path)
        from llama_cpp import Llama

        try:
            # The weights are memory-mapped once by the OS; each context adds its KV cache (~25 MB).
            llamas: list[Any] = [
                Llama(model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, n_batch=256, verbose=False)
                for _ in range(contexts)
            ]
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(
                f"{model_path}: llama.cpp could not load it ({error}); the file may be corrupt"
            ) from None
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._scheduler = TokenScheduler(llamas)

    async def prefill(self, messages: list[ChatMessage]) -> None:
        """A bare system prompt is the start of every conversation, so every context gets it;
        a conversation's history goes to the context that will serve its next turn."""
        # An empty user turn after the history: its template prefix is what the next real turn shares.
        probe: list[ChatMessage] = [*messages, {"role": "user", "content": ""}]
        slots: list[int | None] = list(range(len(self._scheduler.slots))) if len(messages) == 1 else [None]
        for slot in slots:
            stream = self._scheduler.stream(
                lambda llama: self._generate(llama, probe, 1), messages, background=True, slot=slot
            )
            async with contextlib.aclosing(stream) as steps:
                async for _ in steps:
                    pass

    def reply(self, messages: list[ChatMessage], go: threading.Event | None = None) -> AsyncGenerator[str, None]:
        return self._scheduler.stream(lambda llama: self._generate(llama, messages, self.max_tokens), messages, go)

    def _generate(self, llama: Any, messages: list[ChatMessage], max_tokens: int) -> Iterator[str]:
        chunks = llama.create_chat_completion(
            messages, stream=True, max_tokens=max_tokens, temperature=self.temperature
        )
        try:
            for chunk in chunks:
                yield chunk["choices"][0]["delta"].get("content") or ""
        finally:
            chunks.close()

    def close(self) -> None:
        self._scheduler.close()
