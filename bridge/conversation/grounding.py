"""The check every spoken answer passes: no day, time, price, number or name that the agent was
not given.

A small model asked "are you open on Sunday?" or "how much is the fibre plan?" will happily say
"yes" or "$10"; a misheard "Hello" became a business called "Tolo". So before a sentence of an
answer is voiced, its specifics are looked up: numbers (digits and number words, so prices and
times too) and day or month names must appear in the persona's knowledge or the caller's own
words; names (capitalised words) must appear in the knowledge, and a capitalised word that only
the caller said is never repeated back as if it were a fact. Anything else is an invention, and
the caller hears the persona's honest `unknown_answer` instead. So does a sentence that pins a
number from the facts on something only the caller named ("the Fibre 2000 plan costs 70 dollars"
when the facts price only the Fibre 1000), and one that states a fact's number without anything
that fact alone says, in the answer or the question: "the fibre to balance plan is 45 dollars"
(a misheard "Fibre 2000") borrows the Fibre 300's price, while "it's 30 dollars" to "how much is
a flu shot?" is the flu shot's.
"""

from __future__ import annotations

import re

from bridge.conversation.clauses import ClauseSplitter

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+(?:[.,:]\d+)*")
_DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "weekend", "weekday"}
_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
}  # fmt: skip
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "noon": "12", "midnight": "12",
}  # fmt: skip
# "one" is mostly a pronoun ("the one you need"); it is a number only as digits.
_NOT_NUMBERS = {"one"}
# Capitalised at a sentence start or as a title: never a name by themselves.
_COMMON = {
    "i", "i'm", "i'll", "i've", "i'd", "a", "an", "the", "we", "we're", "we'll", "our", "you", "your", "yes", "no",
    "sorry", "sure", "hello", "hi", "thanks", "thank", "please", "unfortunately", "of", "ok", "okay", "it", "it's",
    "that", "this", "there", "they", "he", "she", "mr", "mrs", "ms", "dr", "am", "pm", "a.m", "p.m", "us", "let",
    "certainly", "great", "absolutely", "good", "well", "however", "but", "and", "or", "so", "if", "for", "to",
    "at", "on", "in", "is", "are", "can", "could", "would", "will", "do", "does", "what", "how", "when", "where",
    "who", "why", "which", "all", "my", "me", "oh", "right", "just", "also", "as", "not", "here",
}  # fmt: skip


def _numbers(text: str) -> set[str]:
    found: set[str] = set()
    for word in _WORD.findall(text):
        lower = word.lower()
        if word[0].isdigit():
            found.update(part.lstrip("0") or "0" for part in re.split(r"[.,:]", word))
        elif lower in _NUMBER_WORDS and lower not in _NOT_NUMBERS:
            found.add(_NUMBER_WORDS[lower])
    return found


_WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_RANGE = re.compile(rf"\b({'|'.join(_WEEK)})s?\s*(?:to|-|through|thru|until|till)\s*({'|'.join(_WEEK)})", re.I)


def _lower_words(text: str) -> set[str]:
    """Lowercase words; day names also without a plural s ("Sundays" is about Sunday), and the
    days inside a range ("Monday to Friday" names Wednesday too)."""
    words = {word.lower().strip("'") for word in _WORD.findall(text)}
    words |= {word[:-1] for word in words if word.endswith("s") and word[:-1] in _DAYS}
    for first, last in _DAY_RANGE.findall(text):
        start, end = _WEEK.index(first.lower()), _WEEK.index(last.lower())
        words.update(_WEEK[start : end + 1] if start <= end else _WEEK[start:] + _WEEK[: end + 1])
    return words


def _subject_terms(text: str) -> set[str]:
    """The words and numbers that can say what a sentence is about, roughly stemmed ("opening",
    "opens" and "open" are one term), without filler words."""
    terms = set(_numbers(text))
    for word in _lower_words(text):
        if len(word) < 3 or word in _COMMON or word in _NUMBER_WORDS or word[0].isdigit():
            continue
        terms.add(_stem(word))
    return terms


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


class Grounding:
    """What one persona may state. `knowledge`: its prompt and facts (PersonaConfig.knowledge), one
    fact per line.

    Its words and numbers are extracted once per call, not once per clause.
    """

    def __init__(self, knowledge: str) -> None:
        self.knowledge = knowledge
        self._known_words = _lower_words(knowledge)
        self._known_numbers = _numbers(knowledge)
        lines = [line for line in knowledge.splitlines() if line.strip()]
        terms = [_subject_terms(line) for line in lines]
        # Per number: for each fact line stating it, what only that line says (its subject).
        self._subjects: dict[str, list[set[str]]] = {}
        for index, line in enumerate(lines):
            elsewhere = set().union(*(other for j, other in enumerate(terms) if j != index))
            for number in _numbers(line):
                self._subjects.setdefault(number, []).append(terms[index] - elsewhere - {number})

    def unsupported(self, sentence: str, caller: str = "", caller_name: str | None = None) -> list[str]:
        """The specifics in `sentence` that neither the knowledge nor the caller gave ([] = fine)."""
        known_words, known_numbers = self._known_words, self._known_numbers
        caller_words, caller_numbers = _lower_words(caller), _numbers(caller)
        said_numbers = _numbers(sentence)
        capitalised = _capitalised(sentence)
        problems = [f"number {n}" for n in sorted(said_numbers - known_numbers - caller_numbers)]
        for word in _lower_words(sentence) & (_DAYS | _MONTHS):
            if word not in known_words and word not in caller_words:
                problems.append(f"day {word}")
        names = _lower_words(caller_name or "")
        caller_only: set[str] = (said_numbers & caller_numbers) - known_numbers
        for word, _ in capitalised:
            lower = word.lower()
            if lower in caller_words and lower not in known_words and lower not in _COMMON and lower not in names:
                caller_only.add(word)
        stated = said_numbers - caller_numbers
        if caller_only and stated:  # facts pinned on something the facts never mention
            problems.append(f"{'/'.join(sorted(stated))} about {'/'.join(sorted(caller_only))}")
        elif stated:
            mentioned = _subject_terms(sentence) | _subject_terms(caller)
            for number in sorted(stated & known_numbers):
                subjects = self._subjects.get(number, [])
                if subjects and all(subject and not subject & mentioned for subject in subjects):
                    problems.append(f"{number} without its subject")
        for word, starts_sentence in capitalised:
            lower = word.lower()
            if lower.endswith("s") and lower[:-1] in _DAYS:
                continue
            if lower in _COMMON or lower in _DAYS or lower in _MONTHS or lower in names or lower in known_words:
                continue
            if starts_sentence and lower not in caller_words:
                continue  # an ordinary word opening a sentence ("Parking is free")
            problems.append(f"name {word}")
        return problems


def _capitalised(sentence: str) -> list[tuple[str, bool]]:
    """Capitalised words, and whether each opens a sentence (where any word is capitalised)."""
    words = []
    for match in re.finditer(r"[A-Za-z][A-Za-z'-]*", sentence):
        word = match.group()
        if word[0].isupper():
            before = sentence[: match.start()].rstrip()
            words.append((word, not before or before[-1] in ".!?:;\"'"))
    return words


class GroundedAnswer:
    """Cuts an answer's stream into speakable clauses and lets through only grounded ones.

    The first clause that states something unsupported is replaced by the persona's honest
    fallback and ends the answer (`fell_back`); what was already said stays said.
    """

    def __init__(self, grounding: Grounding, fallback: str, caller: str, caller_name: str | None = None) -> None:
        self._grounding = grounding
        self._fallback = fallback
        self._caller = caller
        self._caller_name = caller_name
        self._splitter = ClauseSplitter()
        self.text = ""
        self.fell_back = False
        self.rejected: list[str] = []

    @property
    def done(self) -> bool:
        return self.fell_back

    def feed(self, piece: str) -> list[str]:
        return self._check(self._splitter.feed(piece))

    def flush(self) -> list[str]:
        clauses = self._check(self._splitter.flush())
        if not self.text and not self.fell_back:  # the model said nothing at all
            self.fell_back = True
            return [self._fallback]
        return clauses

    def _check(self, clauses: list[str]) -> list[str]:
        passed = []
        for clause in clauses:
            if self.fell_back:
                break
            # Checked with what was said before it: the first piece is cut after a few words for
            # speed, so "The Fibre 2000" | "plan costs 70 dollars" only shows the pinned price whole.
            said = f"{self.text} {clause}".strip()
            problems = self._grounding.unsupported(said, self._caller, self._caller_name)
            if problems:
                self.rejected += problems
                self.fell_back = True
                passed.append(self._fallback)
                break
            passed.append(clause)
            self.text = f"{self.text} {clause}".strip()
        return passed
