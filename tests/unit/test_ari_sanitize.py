"""Caller-derived text on its way into channel variables and caller ID: nothing the dialplan parses."""

from __future__ import annotations

import pytest

from bridge.ari.sanitize import CHANNEL_TEXT_CHARS, caller_id, channel_text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("I want to buy a chair", "I want to buy a chair"),
        ("sales,30,tT|exten", "sales 30 tT exten"),
        ("${SHELL(rm -rf /)}", "{SHELL rm -rf / }"),
        ('Eve" <666>', "Eve 666"),
        ("first\nline\r\x00\x1b[2Jsecond\u202e", "first line [2Jsecond"),
        ("escape\\", "escape"),
        ("  lots   of\tspace  ", "lots of space"),
        ("Zoë, café au lait", "Zoë café au lait"),
    ],
)
def test_dialplan_metacharacters_and_control_characters_are_stripped(given: str, kept: str) -> None:
    assert channel_text(given) == kept


def test_text_is_capped() -> None:
    assert len(channel_text("word " * 200)) <= CHANNEL_TEXT_CHARS
    assert channel_text("abcdef", limit=3) == "abc"


@pytest.mark.parametrize(
    ("name", "number", "shown"),
    [
        ("Alice", "15550001111", '"Alice" <15550001111>'),
        ('Mallory" <1000>, ', "15550002222", '"Mallory 1000" <15550002222>'),
        ("", "100", "<100>"),
        ("Nobody", "", ""),
        ("x" * 200, "1 555 000", f'"{"x" * 80}" <1555000>'),
    ],
)
def test_caller_id_cannot_be_broken_out_of(name: str, number: str, shown: str) -> None:
    assert caller_id(name, number) == shown
