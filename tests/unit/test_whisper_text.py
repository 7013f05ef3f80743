"""What Whisper's text goes through before the conversation sees it."""

from __future__ import annotations

import pytest

from bridge.speech.stt_whisper import collapse_repeats


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        (
            "What time do you close on Saturday? What time do you close on Saturday? What time do you close",
            "What time do you close on Saturday?",
        ),
        ("Yes. Yes. Sales, please.", "Yes. Sales, please."),
        ("Hello there. How are you?", "Hello there. How are you?"),
        ("No. No problem at all.", "No. No problem at all."),
    ],
)
def test_a_repetition_loop_is_said_once(heard: str, kept: str) -> None:
    assert collapse_repeats(heard) == kept
