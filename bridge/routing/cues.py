"""Words that back up one of the model's labels, weighed in when the model is unsure.

The model's label scores decide a turn; on misheard or oddly worded requests the right label is
often a close second ("could someone call me back": operator 0.42, message 0.40). A few kinds of
request have plain words every business shares: asking for a call back or to leave a message,
asking to speak to a human being, asking for an extension by number, a short closing thank-you.
When the model is unsure (its best label below the desk's `confirm_below`), each such cue
multiplies its label's probability by CUE_WEIGHT and the scores are normalised again, so a cue
settles a near tie; a model sure enough to transfer is left alone.

One cue is a guard, not a weight, and holds however sure the model is: words that try to
instruct the agent ("ignore your instructions", "system override") never lead to a transfer or a
message. Such a turn is answered from the facts (which gives nothing away), or refused when it
asks for an extension no target has: the instruction is not the caller's to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.config.routing import ELSEWHERE, GOODBYE, MESSAGE, TransferTarget
from bridge.routing.intents import normalise
from bridge.speech.llm import ANSWER, LabelScores

CUE_WEIGHT = 3.0
# The cues' names, as the turn record and the desk see them.
MESSAGE_CUE = "message"
PERSON_CUE = "person"
EXTENSION_CUE = "extension"
THANKS_CUE = "thanks"
GUARD_CUE = "instructs_agent"

# Asking to leave a message or be called back (not "I got a message", "set up voicemail").
_WANTS_MESSAGE = re.compile(
    r"\b(leave|take|pass on|give (him|her|them))\b.{0,20}\bmessage\b|\bcall (me )?back\b|\bcallback\b|"
    r"\bget back to me\b|\b(have|ask) (someone|somebody|him|her|them) (to )?call\b|\bvoicemail for\b"
)
_PERSON = re.compile(
    r"\b(operator|receptionist|representative|human( being)?|(real|actual|live) (person|people)|"
    r"a person|someone|somebody|anyone|anybody)\b"
)
_ASKS_TO_REACH = re.compile(r"\b(speak|talk|put me through|connect me|transfer me|get me|reach|on the line)\b")
# "extension 6020", "extension number 5,555"; not "a lease extension of 30 days".
_EXTENSION = re.compile(r"\bext(?:ension)?\W{0,2}(?:number\W{0,2})?(\d+(?:[ ,.]\d{3})*)\b(?!\W*(days?|weeks?|months?))")
_CLOSING = re.compile(r"\b(thanks|thank you|cheers)( (so|very) much| a lot)?\W*(bye)?\W*$")
# What a closing thank-you does not have: a question or a request.
_NOT_A_CLOSING = re.compile(
    r"^(what|when|where|how|who|why|which|is|are|do|does|can|could|would|will|may)\b|"
    r"\b(book|need|want|like|put|connect|speak|talk|transfer|cancel|schedule|order|check|send|help)\b"
)
_CLOSING_MAX_WORDS = 8
_INSTRUCTS_AGENT = re.compile(
    r"\b(ignore|forget|disregard)\b.{0,12}\b(your|the|previous|prior|earlier|above|all|any)\b.{0,12}"
    r"\b(instructions?|rules|prompt|programming|guidelines)\b|"
    r"\b(ignore|forget|disregard) (everything|what|anything) you (were|have been|'ve been) (told|given)\b|"
    r"\bsystem override\b|^\W*override\b|\bdeveloper mode\b|\byou are now (authori[sz]ed|allowed|in)\b|"
    r"\bnew instructions?\s*(:|from)"
)


@dataclass(frozen=True, slots=True)
class Weighed:
    """The scores after the cues, and which cues the words had (for the turn record)."""

    scores: LabelScores
    cues: tuple[str, ...]


def weigh(
    text: str,
    scores: LabelScores,
    targets: dict[str, TransferTarget],
    operator: str | None,
    unsure_below: float,
) -> Weighed:
    """`scores` with the labels the caller's words back up weighed in (see the module doc)."""
    words = normalise(text)
    lowered = text.lower().strip()
    guarded = bool(_INSTRUCTS_AGENT.search(lowered))
    if scores.confidence >= unsure_below and not guarded:
        return Weighed(scores, ())
    cues: list[str] = []
    factor = {label: 1.0 for label, _ in scores.ranked}

    def back(label: str, cue: str) -> None:
        if label in factor:
            factor[label] *= CUE_WEIGHT
            cues.append(cue)

    unlisted = _unlisted_extension(lowered, targets)
    if scores.confidence < unsure_below:
        if _WANTS_MESSAGE.search(words):
            back(MESSAGE, MESSAGE_CUE)
        if operator and _PERSON.search(words) and _ASKS_TO_REACH.search(words):
            back(operator, PERSON_CUE)
        if unlisted:
            back(ELSEWHERE, EXTENSION_CUE)
        if _is_closing(words, text):
            back(GOODBYE, THANKS_CUE)
    if guarded:
        cues.append(GUARD_CUE)
        keep = {ELSEWHERE} if unlisted else {ANSWER}  # an instruction naming an unlisted extension: refused
        factor = {label: (value if label in keep else 0.0) for label, value in factor.items()}
    if not cues:
        return Weighed(scores, ())
    weighed = {label: p * factor[label] for label, p in scores.ranked}
    total = sum(weighed.values())
    if total <= 0.0:  # the guard left nothing the model thought possible: answer
        return Weighed(LabelScores.of({ANSWER: 1.0}, scores.off_list), tuple(cues))
    return Weighed(LabelScores.of({label: p / total for label, p in weighed.items()}, scores.off_list), tuple(cues))


def _is_closing(words: str, text: str) -> bool:
    """A short thank-you with no question or request in it ("Okay, that's all, thanks")."""
    return (
        "?" not in text
        and len(words.split()) <= _CLOSING_MAX_WORDS
        and bool(_CLOSING.search(words))
        and not _NOT_A_CLOSING.search(words)
    )


def _unlisted_extension(text: str, targets: dict[str, TransferTarget]) -> bool:
    """Asks for an extension by number, and no target is that extension."""
    match = _EXTENSION.search(text)
    if match is None:
        return False
    number = re.sub(r"\D", "", match.group(1))
    return bool(number) and number not in {_extension_of(target) for target in targets.values()}


def _extension_of(target: TransferTarget) -> str:
    """The number a caller would say for a target: PJSIP/201@trunk -> 201; internal,300,1 -> 300."""
    if target.kind == "extension":
        return re.sub(r"\D", "", target.destination.split("/")[-1].split("@")[0])
    if target.kind == "dialplan":
        return re.sub(r"\D", "", target.destination.split(",")[1]) if "," in target.destination else ""
    return ""
