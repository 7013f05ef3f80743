"""llama.cpp (llama-cpp-python) running a local GGUF, shared by every call through one worker.

llama.cpp keeps the KV cache of the last prompt and reuses its longest common prefix, so the
persona's system prompt (prefilled at start-up) and the call's earlier turns (prefilled while
the caller speaks) are not evaluated again: only the caller's new words are. Generation stops
at the next token once the caller barges in.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

from bridge.models.errors import ModelFileError
from bridge.speech.llm import ChatMessage
from bridge.speech.workers import ModelWorker

GATE_POLL_SECONDS = 0.05


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
    ) -> None:
        check_gguf(model_path)
        from llama_cpp import Llama

        try:
            self._llama: Any = Llama(
                model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, n_batch=256, verbose=False
            )
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(
                f"{model_path}: llama.cpp could not load it ({error}); the file may be corrupt"
            ) from None
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._worker = ModelWorker("llm")

    async def prefill(self, messages: list[ChatMessage]) -> None:
        # An empty user turn after the history: its template prefix is what the next real turn shares.
        probe: list[ChatMessage] = [*messages, {"role": "user", "content": ""}]
        await self._worker.run(lambda: self._llama.create_chat_completion(probe, max_tokens=1))

    def reply(self, messages: list[ChatMessage], go: threading.Event | None = None) -> AsyncGenerator[str, None]:
        return self._worker.stream(lambda cancel: self._generate(messages, cancel, go))

    def _generate(
        self, messages: list[ChatMessage], cancel: threading.Event, go: threading.Event | None
    ) -> Iterator[str]:
        chunks = self._llama.create_chat_completion(
            messages, stream=True, max_tokens=self.max_tokens, temperature=self.temperature
        )
        try:
            for chunk in chunks:
                while go is not None and not go.wait(GATE_POLL_SECONDS) and not cancel.is_set():
                    pass
                if cancel.is_set():
                    return
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text
        finally:
            chunks.close()

    def close(self) -> None:
        self._worker.close()
