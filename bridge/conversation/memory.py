"""What the model is told about this call besides the caller's new words: the turns so far and
what the pre-call lookup knew about the caller.

The history is written the way the model itself would have written its turns (a routing turn is
its label, an answer is "answer: ..."), so the cached prompt prefix and the history agree and a
turn evaluates only the new words.
"""

from __future__ import annotations

from bridge.config.routing import ELSEWHERE, MESSAGE
from bridge.conversation.prompt import agent_turn
from bridge.routing.desk import Action, Confirm, MessageTaken, RecordMessage, Refuse, Transfer
from bridge.speech.llm import ANSWER, ChatMessage


class ConversationMemory:
    def __init__(self, history_turns: int) -> None:
        self.history_turns = history_turns
        self.history: list[ChatMessage] = []
        self.caller_notes = ""  # from the pre-call webhook

    def remember(self, caller: str | None, agent: str) -> None:
        if caller:
            self.history.append({"role": "user", "content": caller})
        if agent:
            self.history.append({"role": "assistant", "content": agent})

    def snapshot(self) -> list[ChatMessage]:
        return list(self.history)

    def restore(self, history: list[ChatMessage]) -> None:
        """Back to a `snapshot`: a reply the caller never heard is not part of the conversation."""
        self.history = list(history)

    def recent(self) -> list[ChatMessage]:
        return self.history[-2 * self.history_turns :] if self.history_turns else []

    def caller_facts(self, caller_name: str | None) -> str:
        """What the pre-call webhook told us, after the shared prompt (so its cached prefix still fits)."""
        facts = [f"The caller's name is {caller_name}." if caller_name else "", self.caller_notes]
        text = " ".join(fact for fact in facts if fact)
        return f"About this caller: {text}" if text else ""


def label_for(action: Action) -> str:
    """A routing turn in the history, as the model would have started it."""
    if isinstance(action, Transfer | Confirm):
        return action.route.name
    if isinstance(action, Refuse):
        return ELSEWHERE
    if isinstance(action, RecordMessage | MessageTaken):
        return MESSAGE
    return agent_turn(ANSWER, action.say)
