"""What the conversation needs from a language model: a labelled reply to a chat history.

Every caller turn is one reply that starts with a label (a routing target's name, message,
goodbye, elsewhere or answer; conversation/prompt.py writes the prompt). A local model scores the
labels instead of sampling them, so the choice is always one on the list and comes with a
probability; only an `answer` goes on into words, in the same context, so deciding costs no
second pass over the caller's words.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from bridge.speech.workers import Supervised

ANSWER = "answer"


class ChatMessage(TypedDict):
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class LabelScores:
    """The labels a reply could start with, most likely first, with probabilities summing to ~1.

    `off_list` is what a model that cannot be constrained (a remote server) wrote instead of a
    label; the turn is then treated as an answer.
    """

    ranked: tuple[tuple[str, float], ...]
    off_list: str = ""

    @property
    def best(self) -> str:
        return self.ranked[0][0]

    @property
    def confidence(self) -> float:
        return self.ranked[0][1]

    @property
    def runner_up(self) -> tuple[str, float] | None:
        return self.ranked[1] if len(self.ranked) > 1 else None

    @classmethod
    def of(cls, probabilities: dict[str, float], off_list: str = "") -> LabelScores:
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])
        return cls(tuple((label, round(p, 4)) for label, p in ranked), off_list)


def answer_prefix() -> str:
    """How an answer starts in the model's reply; the words after it are what the caller hears."""
    return f"{ANSWER}:"


def label_of(text: str, labels: Sequence[str]) -> tuple[LabelScores, str] | None:
    """Parse the label off the start of free text (models we cannot constrain).

    None while `text` may still be the start of a label; else the scores and the rest of the text
    (an answer's words). Anything that is not a label on the list counts as an answer.
    """
    head, sep, rest = text.lstrip().partition(":")
    word = head.strip().strip("*'\"`").lower()
    if not sep:
        if len(text) < 24 and "\n" not in text and any(label.startswith(word) for label in labels):
            return None
        first = text.split()[0].lower() if text.split() else ""
        return LabelScores.of({ANSWER: 1.0}, off_list=first[:40]), text.strip()
    if word in labels:
        return LabelScores.of({word: 1.0}), rest.lstrip()
    return LabelScores.of({ANSWER: 1.0}, off_list=word[:40]), rest.lstrip()


class LanguageModel(Protocol):
    name: str

    def labelled_reply(
        self, messages: list[ChatMessage], labels: Sequence[str], go: threading.Event | None = None
    ) -> AsyncGenerator[LabelScores | str, None]:
        """First item: the LabelScores for the reply's start. Then, only when the best label is
        `answer`, the answer's text pieces. Closing the iterator stops generation.

        A local model generates only while `go` is set: the conversation clears it while the first
        clause is being synthesised, so TTS gets the CPU on the critical path.
        """

    def workers(self) -> list[Supervised]:
        """The threads this model runs on, for supervision (none for a remote server)."""

    async def prefill(self, messages: list[ChatMessage], everywhere: bool = False) -> None:
        """Pre-compute the KV cache for a conversation so far (the prompt at start-up, into every
        context when `everywhere`; the history while the caller speaks), so the next reply only
        evaluates the caller's new words."""
