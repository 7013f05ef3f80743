"""The front desk of one call: what to do when the caller asks to be put through, or for a message.

It turns the caller's words (and keypad digits) into actions the conversation carries out:
transfer, say something, record a message. It holds the little dialogue state routing needs
("I offered a message; is this the answer?") and what the dialplan is told when the call
leaves (intent, summary, caller name). It never touches the call itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bridge.routing.intents import (
    IntentRules,
    RouteMatch,
    accepts,
    asks_for_message,
    asks_for_transfer,
    caller_name,
)
from bridge.routing.queues import QueueStats
from bridge.routing_config import RoutingConfig

SUMMARY_CHARS = 250
TOOL_PREFIX = "TRANSFER"
_TOOL_QUOTES = " \n'\"`*"


class QueueStatsSource(Protocol):
    async def stats(self, queue: str) -> QueueStats | None: ...


@dataclass(frozen=True, slots=True)
class Transfer:
    route: RouteMatch
    say: str
    stats: QueueStats | None = None


@dataclass(frozen=True, slots=True)
class Speak:
    say: str


@dataclass(frozen=True, slots=True)
class RecordMessage:
    say: str


@dataclass(frozen=True, slots=True)
class MessageTaken:
    say: str
    text: str
    for_target: str | None


Action = Transfer | Speak | RecordMessage | MessageTaken
State = Literal["idle", "offered_wait", "offered_message", "recording"]


@dataclass
class FrontDesk:
    rules: IntentRules
    config: RoutingConfig
    queues: QueueStatsSource | None = None
    state: State = "idle"
    pending: RouteMatch | None = None
    caller_name: str | None = None
    intent: str = ""
    heard: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stats: dict[str, Any] | None = None

    async def on_words(self, text: str) -> Action | None:
        """An utterance, after recognition. None: not a routing matter, the LLM answers it."""
        self.heard.append(text)
        self.caller_name = caller_name(text) or self.caller_name
        if self.state == "recording":
            return self._message_taken(text)
        if self.state in ("offered_wait", "offered_message"):
            answered = self._answer_to_offer(text)
            if answered is not None:
                return answered
        match = self.rules.target_for_words(text)
        if match is not None:
            return await self._route(match)
        if asks_for_message(text):
            return self._record_for(self._operator())
        if asks_for_transfer(text):
            self.refused.append(text)
            return Speak(refusal_phrase(self.rules))
        return None

    async def on_digit(self, digit: str) -> Action | None:
        match = self.rules.target_for_digit(digit)
        if match is None:
            return None
        self.state, self.pending = "idle", None
        return await self._route(match, offer_message=False)

    async def on_tool_call(self, reply: str) -> Action:
        """The LLM answered 'TRANSFER <name>': only a name on the allowlist goes anywhere."""
        words = reply.strip(_TOOL_QUOTES)[len(TOOL_PREFIX) :].strip(_TOOL_QUOTES + ".:!").split()
        target_name = words[0].strip(".,!:") if words else ""
        match = self.rules.allowed(target_name) if target_name else None
        if match is None:
            self.refused.append(f"tool:{target_name}")
            return Speak(refusal_phrase(self.rules))
        return await self._route(match)

    def transfer_failed(self, route: RouteMatch, reason: str) -> Speak:
        """The extension did not answer: tell the caller and offer to take a message instead."""
        self.state, self.pending = "offered_message", route
        why = "is busy" if reason == "busy" else "is not answering" if reason == "no_answer" else "is not available"
        return Speak(f"I'm sorry, {route.target.description} {why} right now. Would you like to leave a message?")

    def variables(self) -> dict[str, str]:
        """Channel variables for the dialplan when the call leaves the agent."""
        summary = " / ".join(text.strip() for text in self.heard if text.strip())
        if len(summary) > SUMMARY_CHARS:
            summary = summary[: SUMMARY_CHARS - 3].rstrip() + "..."
        return {
            "AI_INTENT": self.intent or "none",
            "AI_SUMMARY": summary,
            "AI_CALLER_NAME": self.caller_name or "",
        }

    def report(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "summary": self.variables()["AI_SUMMARY"],
            "caller_name": self.caller_name,
            "refused": self.refused,
            "queue_stats": self.stats,
            **({"pending": self.pending.name} if self.pending else {}),
        }

    # -- internals -----------------------------------------------------------------------------

    async def _route(self, match: RouteMatch, offer_message: bool = True) -> Action:
        self.intent = match.name
        stats = await self._stats_for(match)
        wait = stats.estimated_wait_seconds(self.config.assumed_seconds_per_caller) if stats else 0.0
        if offer_message and wait > self.config.offer_message_over_wait_seconds:
            self.state, self.pending = "offered_wait", match
            return Speak(
                f"The wait for {match.target.description} is {_minutes(wait)}. "
                "Shall I put you through, or would you like to leave a message?"
            )
        return self._transfer(match, stats)

    def _transfer(self, match: RouteMatch, stats: QueueStats | None) -> Transfer:
        self.state, self.pending = "idle", None
        self.intent = match.name
        say = transfer_phrase(match.target.description)
        if stats is not None and stats.callers:
            ahead = "is 1 caller" if stats.callers == 1 else f"are {stats.callers} callers"
            say += f" There {ahead} ahead of you."
        return Transfer(match, say, stats)

    def _answer_to_offer(self, text: str) -> Action | None:
        pending = self.pending
        if pending is None:
            self.state = "idle"
            return None
        if asks_for_message(text) or (self.state == "offered_message" and accepts(text)):
            return self._record_for(pending)
        if self.state == "offered_wait" and accepts(text):
            return self._transfer(pending, None)
        self.state, self.pending = "idle", None
        return None

    def _record_for(self, route: RouteMatch | None) -> RecordMessage:
        self.state, self.pending = "recording", route
        self.intent = "message"
        who = route.target.description if route else "the team"
        return RecordMessage(record_phrase(who))

    def _message_taken(self, text: str) -> MessageTaken:
        route, self.pending, self.state = self.pending, None, "idle"
        return MessageTaken(
            MESSAGE_TAKEN,
            text,
            route.name if route else None,
        )

    def _operator(self) -> RouteMatch | None:
        name = self.config.operator
        return self.rules.allowed(name) if name else None

    async def _stats_for(self, match: RouteMatch) -> QueueStats | None:
        if match.target.kind != "queue" or self.queues is None:
            return None
        stats = await self.queues.stats(match.target.destination)
        self.stats = stats.as_dict() if stats else None
        return stats


MESSAGE_TAKEN = "Thank you, I have taken your message and will pass it on. Goodbye."


def transfer_phrase(description: str) -> str:
    return f"Putting you through to {description} now."


def refusal_phrase(rules: IntentRules) -> str:
    return f"I'm sorry, I can only put you through to {rules.describe()}."


def record_phrase(who: str) -> str:
    return f"Of course. Please say your message now, and I will pass it on to {who}."


def fixed_phrases(rules: IntentRules) -> list[str]:
    """What the desk says with no numbers in it: rendered at start-up so routing answers at once."""
    descriptions = [target.description for target in rules.targets.values()]
    return [
        refusal_phrase(rules),
        MESSAGE_TAKEN,
        record_phrase("the team"),
        *(transfer_phrase(description) for description in descriptions),
        *(record_phrase(description) for description in descriptions),
    ]


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "about a minute" if minutes == 1 else f"about {minutes} minutes"


class ToolReplyFilter:
    """Holds back the start of an LLM reply until it is clear whether it is a tool call.

    Speech passes through as soon as its first characters cannot be 'TRANSFER', so an ordinary
    answer loses nothing; a tool call is kept whole and never reaches the caller's ears.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.text = ""
        self.state: Literal["deciding", "speech", "tool"] = "deciding" if enabled else "speech"

    def feed(self, token: str) -> str:
        if self.state == "speech":
            return token
        self.text += token
        if self.state == "tool":
            return ""
        head = self.text.lstrip(_TOOL_QUOTES).upper()
        if head.startswith(TOOL_PREFIX):
            self.state = "tool"
            return ""
        if TOOL_PREFIX.startswith(head):
            return ""
        self.state = "speech"
        return self.text

    def flush(self) -> str:
        """End of reply: whatever was held back while deciding is speech after all."""
        if self.state != "deciding":
            return ""
        self.state = "speech"
        return self.text
