"""What the agent says back to one caller turn: the final transcript, the decision, the answer.

The conversation decides when a turn is over and what a routing decision does to the call;
this is the part in between, where every model the turn needs is waited for under its deadline
(`deadlines.py`) and the answer streams into the reply clause by clause, so it can start
playing before the model has finished. A routing decision is handed back, unsaid: announcing
and carrying it out is the call's business.
"""

from __future__ import annotations

import structlog

from bridge.conversation.agent import Agent
from bridge.conversation.deadlines import next_within, stalled_after
from bridge.conversation.memory import ConversationMemory
from bridge.conversation.prompt import agent_turn
from bridge.conversation.reply import Reply
from bridge.conversation.reply_slot import ReplySlot
from bridge.conversation.turns import Turn, is_noise
from bridge.conversation.understanding import Decided, Understanding
from bridge.routing.desk import Action, FrontDesk
from bridge.speech.llm import ANSWER
from bridge.speech.stt import Transcriber


class Responder:
    """Turns one finished caller turn into a reply or a routing decision, so the model calls and
    their deadlines live apart from the call's state: the conversation only acts on the result."""

    def __init__(
        self,
        agent: Agent,
        rate: int,
        understanding: Understanding,
        memory: ConversationMemory,
        desk: FrontDesk | None,
        replies: ReplySlot,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._agent = agent
        self._settings = agent.settings
        self._rate = rate
        self._understanding = understanding
        self._memory = memory
        self._desk = desk
        self._replies = replies
        self._log = log

    async def respond(self, turn: Turn, transcriber: Transcriber, reply: Reply) -> Action | None:
        """Fill `reply` for the caller's turn; a routing decision comes back for the call to act on."""
        async with stalled_after(self._settings.stt_timeout_seconds, "speech recognition"):
            text = await transcriber.final()
        turn.mark("stt_final")
        turn.caller_text = text
        if is_noise(turn.caller_text, turn.voiced_ms, self._settings.min_voiced_ms):
            await reply.released.wait()
            turn.outcome = "noise"
            self._resume_unheard(reply)
            return None
        self._replies.forget_unheard()
        async with stalled_after(self._settings.llm_timeout_seconds, "the language model"):
            decided = await self._understanding.decide(
                text, self._memory.recent(), self._caller_facts(), reply.llm_go, turn
            )
        turn.decided = decided.as_dict()
        if decided.action is not None:
            return decided.action
        await self._answer(turn, text, decided, reply)
        return None

    def _caller_facts(self) -> str:
        return self._memory.caller_facts(self._desk.caller_name if self._desk is not None else None)

    async def prefill_history(self) -> None:
        """While the caller speaks, get the LLM's cache ready for the conversation so far."""
        try:
            prompt = self._understanding.prompt
            await self._agent.llm.prefill(prompt.for_turn(self._memory.recent(), "", self._caller_facts())[:-1])
        except Exception as error:  # noqa: BLE001 - an optimisation; the reply itself will surface failures
            self._log.warning("conversation.prefill_failed", error=str(error))

    async def _answer(self, turn: Turn, text: str, decided: Decided, reply: Reply) -> None:
        """Stream the grounded answer into the reply, clause by clause."""
        clauses = aiter(decided.clauses(turn))
        try:
            while True:
                try:
                    clause = await next_within(clauses, self._settings.llm_timeout_seconds, "the language model")
                except StopAsyncIteration:
                    break
                turn.mark("first_clause")
                reply.add(clause, self._agent.cached_phrase(clause, self._rate))
        finally:
            await decided.close()
        reply.close()
        if decided.answer is not None and decided.answer.fell_back:
            turn.outcome = "answered:unknown"
        turn.decided = decided.as_dict()
        self._understanding.after_answer(decided)
        turn.agent_text = reply.text
        self._memory.remember(text, agent_turn(ANSWER, reply.text))
        await reply.released.wait()

    def _resume_unheard(self, reply: Reply) -> None:
        """A false interruption (noise, a cough): say what the caller missed, or nothing."""
        resumed = self._replies.resume_unheard(reply)
        if resumed:
            self._memory.remember(None, " ".join(resumed))
            self._log.info("turn.resumed", clauses=len(resumed))
