"""llama.cpp (llama-cpp-python) running a local GGUF, shared by every call through one worker.

llama.cpp keeps the KV cache of the last prompt and we reuse its longest common prefix, so the
persona's prompt (prefilled at start-up) and the call's earlier turns (prefilled while the caller
speaks) are not evaluated again: only the caller's new words are. A labelled reply reads the
label probabilities from the logits right after those words (a constrained choice: no label off
the list can come out), then, for an answer, forces "answer:" and samples the rest in the same
context. Generation stops at the next token once the caller barges in.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from bridge.models.errors import ModelFileError
from bridge.speech.llm import ANSWER, ChatMessage, LabelScores, answer_prefix
from bridge.speech.token_scheduler import TokenScheduler
from bridge.speech.workers import Supervised

STOP = ["\n\n", "<|im_end|>", "<|endoftext|>"]


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
            # The weights are memory-mapped once by the OS; each context adds its KV cache.
            llamas: list[Any] = [
                Llama(model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, n_batch=256, verbose=False)
                for _ in range(contexts)
            ]
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(
                f"{model_path}: llama.cpp could not load it ({error}); the file may be corrupt"
            ) from None
        self.path = model_path
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._format = _chat_formatter(llamas[0])
        self._scheduler = TokenScheduler(llamas)

    async def prefill(self, messages: list[ChatMessage], everywhere: bool = False) -> None:
        """Evaluate a conversation so far: into every context (a persona's fixed prompt, at
        start-up: evaluated once, then its KV state copied, which takes milliseconds instead of
        seconds per context) or into the one that will serve its next turn (a call's history)."""
        # An empty user turn after the history: its template prefix is what the next real turn shares.
        probe: list[ChatMessage] = [*messages, {"role": "user", "content": ""}]
        if not everywhere:
            async for _ in self._scheduler.stream(lambda llama: self._prefill(llama, probe), messages, background=True):
                pass
            return
        states = [
            state
            async for state in self._scheduler.stream(
                lambda llama: self._prefill(llama, probe, keep=True), messages, background=True, slot=0
            )
        ]
        for slot in range(1, len(self._scheduler.slots)):
            async for _ in self._scheduler.stream(
                lambda llama: _load_state(llama, states[0]), messages, background=True, slot=slot
            ):
                pass

    def labelled_reply(
        self, messages: list[ChatMessage], labels: Sequence[str], go: threading.Event | None = None
    ) -> AsyncGenerator[LabelScores | str, None]:
        return self._scheduler.stream(lambda llama: self._labelled(llama, messages, tuple(labels)), messages[:-1], go)

    def _tokens(self, llama: Any, messages: list[ChatMessage]) -> list[int]:
        prompt, add_bos = self._format(messages)
        return list(llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))

    def _prefill(self, llama: Any, messages: list[ChatMessage], keep: bool = False) -> Iterator[Any]:
        tokens = self._tokens(llama, messages)
        _evaluate(llama, tokens[:-1])
        yield llama.save_state() if keep else None

    def _labelled(
        self, llama: Any, messages: list[ChatMessage], labels: tuple[str, ...]
    ) -> Iterator[LabelScores | str]:
        tokens = self._tokens(llama, messages)
        _evaluate(llama, tokens)
        paths = {label: _reply_tokens(llama, label) for label in labels}
        scores = _choose(llama, paths)
        yield scores
        if scores.best != ANSWER:
            return
        forced = tokens + _reply_tokens(llama, answer_prefix())
        chunks = llama.create_completion(
            forced, max_tokens=self.max_tokens, temperature=self.temperature, stream=True, stop=STOP
        )
        try:
            for chunk in chunks:
                yield chunk["choices"][0]["text"] or ""
        finally:
            chunks.close()

    def workers(self) -> list[Supervised]:
        return [self._scheduler]

    def close(self) -> None:
        self._scheduler.close()


def _chat_formatter(llama: Any) -> Any:
    """The GGUF's own chat template, rendered exactly as llama-cpp-python's chat completion does."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelFileError(f"{llama.model_path}: the GGUF has no chat template; use an instruct model")
    model = llama._model
    eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
    bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(messages: list[ChatMessage]) -> tuple[str, bool]:
        result = formatter(messages=cast(Any, messages))
        return result.prompt, not result.added_special

    return render


def _load_state(llama: Any, state: Any) -> Iterator[None]:
    llama.load_state(state)
    yield None


def _evaluate(llama: Any, tokens: list[int]) -> None:
    """Bring the context to exactly `tokens`, evaluating only what its cache does not share."""
    shared = 0
    cached = llama.input_ids[: llama.n_tokens]
    for have, want in zip(cached, tokens, strict=False):
        if have != want:
            break
        shared += 1
    shared = min(shared, len(tokens) - 1)  # the last token is always evaluated: its logits are needed
    llama.n_tokens = shared
    llama.eval(tokens[shared:])


def _last_logits(llama: Any) -> np.ndarray:
    """The logits after the last evaluated token (llama-cpp-python keeps them only in the context)."""
    row = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    return np.array(row, dtype=np.float64)


def _reply_tokens(llama: Any, text: str) -> list[int]:
    """The tokens `text` becomes at the start of the assistant's reply (chat templates end the
    prompt with a newline, and tokenizers split words from a newline before them)."""
    return list(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _choose(llama: Any, paths: dict[str, list[int]]) -> LabelScores:
    """Walk the labels' token trie greedily from the prompt's last logits.

    At each branch the probability is renormalised over the tokens that keep a label possible;
    a label is that product along its path (labels that part after the first token share the
    first token's mass until the walk goes on down the winning branch).
    """
    probabilities: dict[str, float] = {}
    candidates = dict(paths)
    mass = 1.0
    depth = 0
    while candidates:
        logits = _last_logits(llama)
        groups: dict[int, list[str]] = {}
        for label, path in candidates.items():
            if depth < len(path):
                groups.setdefault(path[depth], []).append(label)
        if not groups:
            break
        first = np.array(list(groups))
        weights = np.exp(logits[first] - logits[first].max())
        weights /= weights.sum()
        ranked = sorted(zip(first.tolist(), weights.tolist(), strict=True), key=lambda item: -item[1])
        for token, weight in ranked[1:]:
            for label in groups[token]:
                probabilities[label] = mass * weight
        token, weight = ranked[0]
        mass *= weight
        winners = groups[token]
        if len(winners) == 1:
            probabilities[winners[0]] = mass
            break
        candidates = {label: candidates[label] for label in winners}
        finished = [label for label in winners if len(candidates[label]) == depth + 1]
        if finished:  # a label that ends here beside longer ones: keep the shorter one
            probabilities[finished[0]] = mass
            for label in winners:
                if label != finished[0]:
                    probabilities[label] = 0.0
            break
        llama.eval([token])
        depth += 1
    total = sum(probabilities.values()) or 1.0
    return LabelScores.of({label: p / total for label, p in probabilities.items() if not math.isnan(p)})
