"""Turn-taking signals from voiced/unvoiced frames."""

from __future__ import annotations

from bridge.conversation.endpointing import Endpointer, EndpointSettings, Signal


def feed(endpointer: Endpointer, pattern: str) -> list[tuple[int, Signal]]:
    """'v' voiced, '.' silent; returns (frame index, signal) pairs."""
    signals = []
    for index, mark in enumerate(pattern):
        for signal in endpointer.feed(bytes([index % 256]) * 4, mark == "v"):
            signals.append((index, signal))
    return signals


def test_onset_needs_three_voiced_frames_of_five_and_keeps_the_preroll() -> None:
    endpointer = Endpointer(EndpointSettings(preroll_ms=100))
    assert feed(endpointer, "..v.v") == []
    assert endpointer.feed(b"\x05" * 4, True) == [Signal.ONSET]
    assert len(endpointer.utterance) == 5  # 100 ms of pre-roll, ending with the onset frame
    assert endpointer.utterance[-1] == b"\x05" * 4


def test_isolated_clicks_are_not_speech() -> None:
    endpointer = Endpointer(EndpointSettings())
    assert feed(endpointer, "v...v...v...v...") == []


def test_pause_resume_and_end() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=60, end_ms=200))
    signals = feed(endpointer, "vvv" + "..." + "vv" + "." * 10)
    assert [signal for _, signal in signals] == [Signal.ONSET, Signal.PAUSE, Signal.RESUME, Signal.PAUSE, Signal.END]
    assert signals[-1][0] == 3 + 3 + 2 + 10 - 1
    assert endpointer.voiced_ms == 5 * 20


def test_an_endless_utterance_is_cut() -> None:
    endpointer = Endpointer(EndpointSettings(max_utterance_ms=400))
    signals = feed(endpointer, "v" * 30)
    assert (19, Signal.TOO_LONG) in signals or any(s is Signal.TOO_LONG for _, s in signals)


def test_reset_forgets_the_utterance() -> None:
    endpointer = Endpointer(EndpointSettings())
    feed(endpointer, "vvvvv")
    endpointer.reset()
    assert not endpointer.in_speech and endpointer.utterance == [] and endpointer.voiced_ms == 0
