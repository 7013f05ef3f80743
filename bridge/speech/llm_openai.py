"""An OpenAI-compatible chat server on another box (llama.cpp server, vLLM, ...), streamed over SSE.

For sites whose GPU server already hosts a model: the bridge stays local to the PBX, the model
runs where the hardware is. Nothing here talks to a cloud unless the operator points it there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator, Sequence

import aiohttp
import structlog

from bridge.speech.llm import ANSWER, ChatMessage, LabelScores, label_of
from bridge.speech.workers import Supervised

log = structlog.get_logger(__name__)


class OpenAiCompatibleError(Exception):
    pass


class OpenAiCompatibleModel:
    name = "openai_http"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_tokens: int = 80,
        temperature: float = 0.0,
        timeout_seconds: float = 10.0,
        constrain_labels: bool = True,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.constrain_labels = constrain_labels
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def workers(self) -> list[Supervised]:
        return []  # the server runs the model; its request timeout bounds every wait

    async def prefill(self, messages: list[ChatMessage], everywhere: bool = False) -> None:
        """The server owns its cache; nothing to do here."""

    async def labelled_reply(
        self, messages: list[ChatMessage], labels: Sequence[str], go: threading.Event | None = None
    ) -> AsyncGenerator[LabelScores | str, None]:
        """A server cannot be made to score our labels, so its reply's first word is parsed: a word
        not on the list makes the turn an answer (logged). With constrain_labels a GBNF grammar
        (llama.cpp's servers) lets it write nothing else. `go` is ignored (not our CPU)."""
        text = ""
        parsed: tuple[LabelScores, str] | None = None
        grammar = labels_grammar(labels) if self.constrain_labels else None
        async for piece in self._stream(messages, grammar):
            if parsed is None:
                text += piece
                parsed = label_of(text, labels)
                if parsed is None:
                    continue
                scores, rest = parsed
                if scores.off_list:
                    log.warning("llm.label_off_list", label=scores.off_list)
                yield scores
                if scores.best != ANSWER:
                    return
                if rest:
                    yield rest
            else:
                yield piece
        if parsed is None:
            scores, rest = label_of(text + ":", labels) or (LabelScores.of({ANSWER: 1.0}), "")
            yield scores
            if scores.best == ANSWER and rest:
                yield rest

    async def _stream(self, messages: list[ChatMessage], grammar: str | None = None) -> AsyncGenerator[str, None]:
        body: dict[str, object] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if grammar is not None:
            body["grammar"] = grammar
        session = self._client()
        try:
            async with session.post(self.url, json=body, headers=self._headers) as response:
                if response.status != 200:
                    detail = (await response.text())[:200]
                    raise OpenAiCompatibleError(f"{self.url}: HTTP {response.status}: {detail}")
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    text = _delta_text(data)
                    if text:
                        yield text
        except aiohttp.ClientError as error:
            raise OpenAiCompatibleError(f"{self.url}: {error}") from error

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def labels_grammar(labels: Sequence[str]) -> str:
    """GBNF: exactly one label, or "answer:" and one line of text. Labels are config names
    (lower-case letters, digits, '_' and '-'), so they quote safely."""
    choices = " | ".join(f'"{label}"' for label in labels if label != ANSWER)
    answer = '"answer:" [^\\n]*' if ANSWER in labels else ""
    return "root ::= " + " | ".join(part for part in (choices, answer) if part) + "\n"


def _delta_text(data: str) -> str:
    try:
        choices = json.loads(data).get("choices") or []
    except (ValueError, AttributeError):
        raise OpenAiCompatibleError(f"malformed stream chunk: {data[:100]!r}") from None
    if not choices:
        return ""
    return str((choices[0].get("delta") or {}).get("content") or "")
