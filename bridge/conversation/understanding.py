"""Deciding one caller turn: instant rules first, then the model's constrained choice, and for an
answer, grounded clauses.

The conversation (controller.py) and the dialogue benchmark (scripts/bench_dialogue.py) both
decide turns through this one class, so the benchmark measures exactly what callers get.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

import structlog

from bridge.config.agent import PersonaConfig
from bridge.config.routing import GOODBYE
from bridge.conversation.grounding import GroundedAnswer, Grounding
from bridge.conversation.prompt import TurnPrompt
from bridge.conversation.turns import Turn
from bridge.routing.cues import weigh
from bridge.routing.desk import Action, FrontDesk, Goodbye
from bridge.routing.intents import normalise, says_goodbye
from bridge.speech.llm import ANSWER, ChatMessage, LabelScores, LanguageModel

log = structlog.get_logger(__name__)


@dataclass
class Decided:
    """One turn's decision: a routing action to carry out, or an answer to stream (`clauses`)."""

    action: Action | None
    scores: LabelScores | None = None
    by: str = "rule"
    answer: GroundedAnswer | None = None
    # Words that backed up a label (routing/cues.py); the scores are those after weighing them.
    cues: tuple[str, ...] = ()
    # The model's own scores, when cues changed them (the record shows both).
    model_scores: LabelScores | None = None
    _stream: AsyncGenerator[LabelScores | str, None] | None = field(default=None, repr=False)

    async def clauses(self, turn: Turn | None = None) -> AsyncIterator[str]:
        """The answer's clauses as they become speakable, checked against the facts."""
        if self._stream is None or self.answer is None:
            return
        answer = self.answer
        async for piece in self._stream:
            if not isinstance(piece, str) or not piece:
                continue
            if turn is not None:
                turn.mark("llm_first_token")
            for clause in answer.feed(piece):
                yield clause
            if answer.done:
                break
        if not answer.done:
            for clause in answer.flush():
                yield clause
        await self.close()

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()

    def as_dict(self) -> dict[str, object]:
        """For the turn record: how the turn was decided."""
        return {
            "by": self.by,
            **({"labels": [list(item) for item in self.scores.ranked[:3]]} if self.scores else {}),
            **({"cues": list(self.cues)} if self.cues else {}),
            **({"model_labels": [list(item) for item in self.model_scores.ranked[:3]]} if self.model_scores else {}),
            **({"off_list": self.scores.off_list} if self.scores and self.scores.off_list else {}),
            **({"grounding": self.answer.rejected} if self.answer and self.answer.rejected else {}),
        }


class Understanding:
    def __init__(self, llm: LanguageModel, prompt: TurnPrompt, persona: PersonaConfig, desk: FrontDesk | None) -> None:
        self.llm = llm
        self.prompt = prompt
        self.persona = persona
        self.desk = desk
        self.grounding = Grounding(persona.knowledge())

    async def decide(
        self,
        text: str,
        history: list[ChatMessage],
        notes: str = "",
        go: threading.Event | None = None,
        turn: Turn | None = None,
    ) -> Decided:
        desk = self.desk
        if desk is not None:
            action = await desk.on_words(text)
        else:
            action = Goodbye(self.persona.goodbye) if says_goodbye(text) else None
        if action is not None:
            return Decided(action)
        stream = self.llm.labelled_reply(self.prompt.for_turn(history, text, notes), self.prompt.labels, go)
        try:
            scores = await anext(stream)
        except BaseException:
            with contextlib.suppress(Exception):
                await stream.aclose()
            raise
        if not isinstance(scores, LabelScores):  # a backend that broke the protocol: answer
            scores = LabelScores.of({ANSWER: 1.0}, off_list="(none)")
        if turn is not None:
            turn.mark("decision")
        if scores.off_list:
            log.warning("turn.label_off_list", label=scores.off_list)
        cues: tuple[str, ...] = ()
        model_scores: LabelScores | None = None
        if desk is not None:
            weighed = weigh(text, scores, desk.rules.targets, desk.config.operator, desk.config.confirm_below)
            if weighed.cues:
                model_scores, scores, cues = scores, weighed.scores, weighed.cues
            action = await desk.on_decision(text, scores, cues)
        elif scores.best == GOODBYE:
            action = Goodbye(self.persona.goodbye)
        if action is not None:
            await stream.aclose()
            return Decided(action, scores, by="model", cues=cues, model_scores=model_scores)
        caller = desk.caller_name if desk is not None else None
        answer = GroundedAnswer(self.grounding, self.persona.unknown_answer, text, caller)
        return Decided(None, scores, by="model", answer=answer, cues=cues, model_scores=model_scores, _stream=stream)

    def after_answer(self, decided: Decided) -> None:
        """An answer that admitted not knowing offers a message: a 'yes' next records one."""
        answer = decided.answer
        if self.desk is None or answer is None:
            return
        unknown = normalise(self.persona.unknown_answer)
        if answer.fell_back or (unknown and unknown in normalise(answer.text)):
            self.desk.offer_message()
