"""Words that back up one of the model's labels, weighed in when the model is unsure.

The model's label scores decide a turn; on misheard or oddly worded requests the right label is
often a close second ("could someone call me back": operator 0.42, message 0.40). A few kinds of
request have plain words every business shares: a call back or a message, a human being, an
extension number, a thank-you that ends the call. Each such cue multiplies its label's
probability by CUE_WEIGHT and the scores are normalised again, so a cue settles a near tie but
cannot outvote a confident model (0.9 against 0.05 stays 0.9 against 0.14).

One cue is a guard, not a weight: words that try to instruct the agent ("ignore your
instructions", "system override") never lead to a transfer or a message on the model's say-so.
Such a turn is answered from the facts (which gives nothing away), or refused when it asks for
an extension: the instruction is not what the caller is allowed to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.config.routing import ELSEWHERE, GOODBYE, MESSAGE, TransferTarget
from bridge.routing.intents import asks_for_message, normalise
from bridge.speech.llm import ANSWER, LabelScores

CUE_WEIGHT = 3.0

_PERSON = re.compile(
    r"\b(operator|receptionist|representative|human( being)?|(real|actual|live) (person|people)|"
    r"a person|someone|somebody|anyone|anybody)\b"
)
_ASKS_TO_REACH = re.compile(r"\b(speak|talk|put me through|connect me|transfer me|get me|reach|on the line)\b")
_EXTENSION = re.compile(r"\bext(?:ension)?\b\W{0,3}(?:number\W{0,3})?(\d[\d ,.-]*)")
_THANKS_AT_END = re.compile(r"\b(thanks|thank you|cheers|that's all|that's it|that is all)\W*$", re.IGNORECASE)
_INSTRUCTS_AGENT = re.compile(
    r"\b(ignore|forget|disregard|override)\b.{0,40}\b(instructions?|told|rules|prompt|programming|said)\b|"
    r"\bsystem override\b|\bnew instructions?\b|\byou are now (authori[sz]ed|allowed|in)\b|\bdeveloper mode\b"
)


@dataclass(frozen=True, slots=True)
class Weighed:
    """The scores after the cues, and which cues the words had (for the turn record)."""

    scores: LabelScores
    cues: tuple[str, ...]


def weigh(text: str, scores: LabelScores, targets: dict[str, TransferTarget], operator: str | None) -> Weighed:
    """`scores` with the labels the caller's words back up weighed in (see the module doc)."""
    words = normalise(text)
    cues: list[str] = []
    factor = {label: 1.0 for label, _ in scores.ranked}

    def back(label: str, cue: str) -> None:
        if label in factor:
            factor[label] *= CUE_WEIGHT
            cues.append(cue)

    if asks_for_message(text):
        back(MESSAGE, "message")
    if operator and _PERSON.search(words) and _ASKS_TO_REACH.search(words):
        back(operator, "person")
    unlisted = _unlisted_extension(text, targets)
    if unlisted:
        back(ELSEWHERE, "extension")
    if _THANKS_AT_END.search(text.strip()) and "?" not in text:
        back(GOODBYE, "thanks")
    if _INSTRUCTS_AGENT.search(words):
        cues.append("instructs_agent")
        keep = {ANSWER} | ({ELSEWHERE} if unlisted else set())
        factor = {label: (value if label in keep else 0.0) for label, value in factor.items()}
    if not cues:
        return Weighed(scores, ())
    weighed = {label: p * factor[label] for label, p in scores.ranked}
    total = sum(weighed.values())
    if total <= 0.0:  # the guard left nothing the model thought possible: answer
        return Weighed(LabelScores.of({ANSWER: 1.0}, scores.off_list), tuple(cues))
    return Weighed(LabelScores.of({label: p / total for label, p in weighed.items()}, scores.off_list), tuple(cues))


def _unlisted_extension(text: str, targets: dict[str, TransferTarget]) -> bool:
    """Asks for an extension by number, and no target is that extension."""
    match = _EXTENSION.search(text.lower())
    if match is None:
        return False
    number = re.sub(r"\D", "", match.group(1))
    listed = {re.sub(r"\D", "", target.destination) for target in targets.values() if target.kind == "extension"}
    return bool(number) and number not in listed
