"""The front desk of one call: what to do when the caller asks to be put through, or for a message.

It turns the caller's words, keypad digits and the model's constrained choice into actions the
conversation carries out: transfer, confirm, refuse, say something, record a message, say goodbye.
Every step is a pure decision on its inputs plus the little dialogue state routing needs ("I
offered a message; is this the answer?"), so it is tested by tables of inputs and actions; it
also knows what the dialplan is told when the call leaves (intent, summary, caller name). It
never touches the call itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from bridge.config.routing import ELSEWHERE, GOODBYE, MESSAGE, RoutingConfig
from bridge.records import RoutingReport
from bridge.routing.cues import EXTENSION_CUE
from bridge.routing.intents import (
    IntentRules,
    RouteMatch,
    accepts,
    asks_for_message,
    caller_name,
    says_goodbye,
)
from bridge.routing.queues import QueueStats
from bridge.speech.llm import ANSWER, LabelScores

SUMMARY_CHARS = 250
# A runner-up this likely is offered beside the best target instead of guessing between them.
SECOND_CHOICE_MIN = 0.2


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
class Confirm:
    """Not sure enough to transfer: ask first ("Shall I put you through to ...?")."""

    say: str
    route: RouteMatch
    second: RouteMatch | None = None


@dataclass(frozen=True, slots=True)
class Refuse:
    """A place that is not on the allowlist: say where the agent can send the caller instead."""

    say: str


@dataclass(frozen=True, slots=True)
class Clarify:
    """Too unsure to refuse (often a misheard request): ask the caller to say it again."""

    say: str


@dataclass(frozen=True, slots=True)
class OfferMessage:
    """Not sure the caller wants to leave a message: ask first, a 'yes' starts the recording."""

    say: str


@dataclass(frozen=True, slots=True)
class Goodbye:
    say: str


@dataclass(frozen=True, slots=True)
class RecordMessage:
    say: str


@dataclass(frozen=True, slots=True)
class MessageTaken:
    say: str
    text: str
    for_target: str | None


Action = Transfer | Confirm | Refuse | Clarify | Speak | OfferMessage | RecordMessage | MessageTaken | Goodbye
State = Literal["idle", "offered_transfer", "offered_wait", "offered_message", "recording"]


@dataclass
class FrontDesk:
    rules: IntentRules
    config: RoutingConfig
    queues: QueueStatsSource | None = None
    goodbye: str = "Thank you for calling. Goodbye."
    state: State = "idle"
    pending: RouteMatch | None = None
    caller_name: str | None = None
    intent: str = ""
    heard: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    # The last queue asked about, for the call record (None: not a queue, or AMI could not say).
    stats: QueueStats | None = None

    async def on_words(self, text: str) -> Action | None:
        """The instant rules, before any model: an answer to an offer, a phrase, a goodbye.
        None: not decided by rule; the model's choice goes to `on_decision`."""
        self.heard.append(text)
        self.caller_name = caller_name(text) or self.caller_name
        if self.state == "recording":
            return self._message_taken(text)
        if self.state != "idle":
            answered = await self._answer_to_offer(text)
            if answered is not None:
                return answered
        match = self.rules.target_for_words(text)
        if match is not None:
            return await self._route(match)
        if says_goodbye(text):
            return Goodbye(self.goodbye)
        return None

    async def on_decision(self, text: str, scores: LabelScores, cues: tuple[str, ...] = ()) -> Action | None:
        """The model's label for `text`. None: answer it. Only `elsewhere` refuses, and only when
        the model is sure (`refuse_from`, or `confirm_below` when the caller asked for an
        extension no target has: the words back the refusal up); an unsure target is confirmed, an
        unsure message offered ("I wanted to ask ..." scored `message` at 0.47-0.56)."""
        label, confidence = scores.best, scores.confidence
        if label == ANSWER:
            return None
        if label == GOODBYE:
            return Goodbye(self.goodbye)
        if label == MESSAGE:
            route = self.pending or self._operator()
            if confidence < self.config.confirm_below and route is not None:  # half sentences look like it
                self.state, self.pending = "offered_message", route
                return OfferMessage(MESSAGE_OFFER)
            return self._record_for(route)
        second = self._target(scores.runner_up, "model")
        if label == ELSEWHERE:
            sure = self.config.confirm_below if EXTENSION_CUE in cues else self.config.refuse_from
            if confidence < sure:  # unsure: never refuse on a guess
                return self._confirm(second, None) if second is not None else Clarify(clarify_phrase(self.rules))
            self.refused.append(text)
            return Refuse(refusal_phrase(self.rules))
        match = self.rules.allowed(label, f"model:{confidence:.2f}")
        if match is None:  # cannot happen with scored labels; a remote model's slip is an answer
            return None
        if confidence >= self.config.confirm_below:
            return await self._route(match)
        return self._confirm(match, second)

    def snapshot(self) -> FrontDesk:
        """A copy of the dialogue state, to undo a decision made on words the caller went on from."""
        return replace(self, heard=list(self.heard), refused=list(self.refused))

    def restore(self, snapshot: FrontDesk) -> None:
        """Back to a `snapshot`, all but the caller's name: told by the caller or the pre-call
        lookup meanwhile, it is still true."""
        for name in ("state", "pending", "intent", "heard", "refused", "stats"):
            setattr(self, name, getattr(snapshot, name))

    def offer_message(self) -> None:
        """The agent said it cannot answer and offered a message: a 'yes' now records one."""
        operator = self._operator()
        if operator is not None:
            self.state, self.pending = "offered_message", operator

    async def on_digit(self, digit: str) -> Action | None:
        match = self.rules.target_for_digit(digit)
        if match is None:
            return None
        self.state, self.pending = "idle", None
        return await self._route(match, offer_message=False)

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

    def report(self) -> RoutingReport:
        return RoutingReport(
            intent=self.intent,
            summary=self.variables()["AI_SUMMARY"],
            caller_name=self.caller_name,
            refused=list(self.refused),
            queue_stats=self.stats.as_dict() if self.stats is not None else None,
            pending=self.pending.name if self.pending else "",
        )

    # -- internals -----------------------------------------------------------------------------

    async def _route(self, match: RouteMatch, offer_message: bool = True) -> Action:
        self.intent = match.name
        stats = await self._stats_for(match)
        if stats is not None and stats.members == 0 and offer_message:
            self.state, self.pending = "offered_message", match
            return Speak(unstaffed_phrase(match.target.description, self._operator_besides(match)))
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

    async def _answer_to_offer(self, text: str) -> Action | None:
        pending, state = self.pending, self.state
        self.state, self.pending = "idle", None
        if pending is None:
            return None
        if asks_for_message(text) or (state == "offered_message" and accepts(text)):
            return self._record_for(pending)
        if state == "offered_wait" and accepts(text):
            return self._transfer(pending, None)
        if state == "offered_transfer" and accepts(text):
            return await self._route(RouteMatch(pending.name, pending.target, "confirmed"))
        return None

    def _confirm(self, match: RouteMatch, second: RouteMatch | None) -> Confirm:
        self.state, self.pending = "offered_transfer", match
        if second is not None and second.name == match.name:
            second = None
        return Confirm(
            confirm_phrase(match.target.description, second.target.description if second else None), match, second
        )

    def _target(self, ranked: tuple[str, float] | None, by: str) -> RouteMatch | None:
        """The runner-up label as a target worth offering (likely enough, and on the allowlist)."""
        if ranked is None or ranked[1] < SECOND_CHOICE_MIN:
            return None
        return self.rules.allowed(ranked[0], f"{by}:{ranked[1]:.2f}")

    def _operator_besides(self, match: RouteMatch) -> str | None:
        operator = self._operator()
        return operator.target.description if operator is not None and operator.name != match.name else None

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
        self.stats = stats
        return stats


MESSAGE_TAKEN = "Thank you, I have taken your message and will pass it on. Goodbye."


MESSAGE_OFFER = "Would you like to leave a message?"


def transfer_phrase(description: str) -> str:
    return f"Putting you through to {description} now."


def refusal_phrase(rules: IntentRules) -> str:
    return f"I'm sorry, I can only put you through to {rules.describe()}."


def clarify_phrase(rules: IntentRules) -> str:
    return f"Sorry, I didn't quite catch that. I can put you through to {rules.describe()}, or take a message."


def confirm_phrase(description: str, second: str | None = None) -> str:
    if second:
        return f"Shall I put you through to {description}, or would you rather speak to {second}?"
    return f"Shall I put you through to {description}?"


def unstaffed_phrase(description: str, operator: str | None) -> str:
    """A queue with nobody logged in: no invented wait, an honest offer instead."""
    instead = f", or I can put you through to {operator}" if operator else ""
    return (
        f"I'm sorry, there is nobody free right now to put you through to {description}. "
        f"I can take a message{instead}. Would you like to leave one?"
    )


def record_phrase(who: str) -> str:
    return f"Of course. Please say your message now, and I will pass it on to {who}."


def fixed_phrases(rules: IntentRules) -> list[str]:
    """What the desk says with no numbers in it: rendered at start-up so routing answers at once."""
    descriptions = [target.description for target in rules.targets.values()]
    return [
        refusal_phrase(rules),
        clarify_phrase(rules),
        MESSAGE_TAKEN,
        record_phrase("the team"),
        *(transfer_phrase(description) for description in descriptions),
        *(record_phrase(description) for description in descriptions),
        *(confirm_phrase(description) for description in descriptions),
    ]


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "about a minute" if minutes == 1 else f"about {minutes} minutes"
