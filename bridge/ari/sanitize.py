"""Caller-derived text made safe to hand Asterisk as a channel variable or caller ID.

What a caller says (the summary, the name they give) and what their phone sends (the caller ID
name) end up in the dialplan, where `${AI_SUMMARY}` is expanded inside application arguments:
a comma or pipe there splits arguments, `$(`/`)` starts a function call, a backslash escapes the
next delimiter, quotes and angle brackets end the caller ID name, and control characters end a
line in the manager protocol or a log. So those characters never reach Asterisk, and the text is
capped: a variable is not the place for a whole transcript.
"""

from __future__ import annotations

import re
import unicodedata

CHANNEL_TEXT_CHARS = 250
CALLER_NAME_CHARS = 80
CALLER_NUMBER_CHARS = 40

_UNSAFE = frozenset('"<>,|$()\\')
_CONTROL = ("Cc", "Cf", "Zl", "Zp")  # control, format (bidi overrides), line and paragraph separators


def channel_text(text: str, limit: int = CHANNEL_TEXT_CHARS) -> str:
    """`text` with dialplan metacharacters and control characters turned into spaces, spaces
    collapsed (so words stay apart), at most `limit` characters."""
    kept = "".join(" " if char in _UNSAFE or unicodedata.category(char) in _CONTROL else char for char in text)
    return " ".join(kept.split())[:limit].rstrip()


def caller_id(name: str, number: str) -> str:
    """'"name" <number>' for originate's callerId, both parts cleaned; '' without a number."""
    number = re.sub(r"\s", "", channel_text(number, CALLER_NUMBER_CHARS))
    if not number:
        return ""
    name = channel_text(name, CALLER_NAME_CHARS)
    return f'"{name}" <{number}>' if name else f"<{number}>"
