"""Cuts a stream of LLM tokens into pieces worth speaking as soon as they are complete.

TTS cannot start on half a word, and waiting for the whole reply wastes the LLM's head start.
The first piece may end at a comma, or after `first_piece_max_words` words even mid-sentence, so
the caller hears something early (each word the LLM must produce first costs ~20 ms, and TTS
time grows with the text); later pieces end at sentence punctuation, which sounds more natural.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?;:](?=\s)|\n")
_CLAUSE_END = re.compile(r"[,.!?;:](?=\s)|\n")
_MARKUP = re.compile(r"[*_#`>|]+|\[(.*?)\]\(.*?\)")


class ClauseSplitter:
    def __init__(self, first_clause_min_words: int = 3, first_piece_max_words: int = 3, max_words: int = 40) -> None:
        self.first_clause_min_words = first_clause_min_words
        self.first_piece_max_words = first_piece_max_words
        self.max_words = max_words
        self._buffer = ""
        self._emitted = 0

    def feed(self, token: str) -> list[str]:
        """Add streamed text; return the pieces that are now complete."""
        self._buffer += token
        pieces = []
        while piece := self._next_piece():
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        """The end of the reply: whatever is left is the last piece."""
        rest = clean_for_speech(self._buffer)
        self._buffer = ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        pattern = _CLAUSE_END if self._emitted == 0 else _SENTENCE_END
        for match in pattern.finditer(self._buffer):
            candidate = self._buffer[: match.end()]
            words = len(candidate.split())
            if self._emitted == 0 and match.group() == "," and words < self.first_clause_min_words:
                continue
            return self._take(match.end())
        limit = self.first_piece_max_words if self._emitted == 0 and self.first_piece_max_words else self.max_words
        complete_words = self._buffer.split()[:-1] if not self._buffer[-1:].isspace() else self._buffer.split()
        if len(complete_words) >= limit:
            return self._take(_end_of_word(self._buffer, limit))
        return None

    def _take(self, end: int) -> str | None:
        piece = clean_for_speech(self._buffer[:end])
        self._buffer = self._buffer[end:]
        if not piece:
            return None
        self._emitted += 1
        return piece


def _end_of_word(text: str, count: int) -> int:
    """Index just past the `count`-th word."""
    matches = list(re.finditer(r"\S+", text))
    return matches[count - 1].end()


def clean_for_speech(text: str) -> str:
    """Remove markdown a small model likes to emit; TTS would read it out or choke on it."""
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or "", text).split())
