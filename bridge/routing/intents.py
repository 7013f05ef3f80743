"""What a caller's words ask for, decided by rules the operator wrote (phrases and digits in config).

Rules run before the model on every utterance: they are instant, predictable, and cannot be argued
with. They only ever route to a target or answer an offer the agent made; they never refuse. What
no rule names goes to the model's constrained choice (routing/decision.py), which may pick a
target, a message, goodbye, an answer, or "elsewhere" (the one case that is refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.config.routing import TransferTarget

_GOODBYE = re.compile(r"\b(good ?bye|bye(?: bye)?|that'?s all)\b[.!]*$", re.IGNORECASE)
_MESSAGE = re.compile(r"\b(message|voicemail|call me back|callback|call back)\b")
_ACCEPT = re.compile(r"\b(yes|yeah|yep|sure|ok|okay|please do|put me through|connect me|i'?ll (wait|hold))\b")
_DECLINE = re.compile(r"\b(no|nope|never ?mind|don'?t)\b")
_NAME = re.compile(r"\b(?:my name is|my name's|this is|it's|name is)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)")


def normalise(text: str) -> str:
    """Lowercase words separated by single spaces: what phrases are matched against."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


@dataclass(frozen=True, slots=True)
class RouteMatch:
    name: str
    target: TransferTarget
    by: str  # "phrase:<phrase>", "dtmf:<digit>", "model:<probability>" or "confirmed"


class IntentRules:
    """Targets by phrase and by digit, from the routing allowlist."""

    def __init__(self, targets: dict[str, TransferTarget]) -> None:
        self.targets = targets
        self._phrases = sorted(
            ((phrase, name) for name, target in targets.items() for phrase in target.phrases),
            key=lambda item: -len(item[0]),
        )
        self._digits = {target.dtmf: name for name, target in targets.items() if target.dtmf}

    def target_for_words(self, text: str) -> RouteMatch | None:
        words = f" {normalise(text)} "
        for phrase, name in self._phrases:
            if f" {phrase} " in words:
                return RouteMatch(name, self.targets[name], f"phrase:{phrase}")
        return None

    def target_for_digit(self, digit: str) -> RouteMatch | None:
        name = self._digits.get(digit)
        return RouteMatch(name, self.targets[name], f"dtmf:{digit}") if name else None

    def allowed(self, name: str, by: str = "model") -> RouteMatch | None:
        """A target named by something less trusted than the rules (the model's choice)."""
        key = normalise(name).replace(" ", "_")
        for candidate, target in self.targets.items():
            if normalise(candidate).replace(" ", "_") == key:
                return RouteMatch(candidate, target, by)
        return None

    def describe(self) -> str:
        """The allowed targets in words, for the agent to offer: 'our sales team or a colleague'."""
        names = [target.description for target in self.targets.values()]
        if len(names) <= 1:
            return "".join(names)
        return ", ".join(names[:-1]) + " or " + names[-1]


def says_goodbye(text: str) -> bool:
    """Ends with goodbye: an instant rule (the model's `goodbye` label catches the rest)."""
    return bool(_GOODBYE.search(text.strip()))


def asks_for_message(text: str) -> bool:
    return bool(_MESSAGE.search(normalise(text)))


def accepts(text: str) -> bool:
    words = normalise(text)
    return bool(_ACCEPT.search(words)) and not _DECLINE.search(words)


def caller_name(text: str) -> str | None:
    """'Hi, this is John Smith' -> 'John Smith'. Needs the capitals Whisper writes names with."""
    match = _NAME.search(text)
    return match.group(1) if match else None
