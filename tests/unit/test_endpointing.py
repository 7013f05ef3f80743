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
    # Onset at frame 2 with 3 frames (60 ms) of the utterance; 400 ms is reached at frame 19.
    assert next(index for index, s in signals if s is Signal.TOO_LONG) == 19


def test_reset_forgets_the_utterance() -> None:
    endpointer = Endpointer(EndpointSettings())
    feed(endpointer, "vvvvv")
    endpointer.reset()
    assert not endpointer.in_speech and endpointer.utterance == [] and endpointer.voiced_ms == 0


def test_a_check_at_check_ms_and_a_complete_verdict_ends_the_turn_on_the_next_frame() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=40, end_ms=400, check_ms=100))
    signals = feed(endpointer, "vvv" + "." * 5)
    assert [s for _, s in signals] == [Signal.ONSET, Signal.PAUSE, Signal.CHECK]
    assert signals[-1][0] == 3 + 5 - 1  # the 5th silent frame: 100 ms
    endpointer.settle(endpointer.pause_number, complete=True)
    assert endpointer.feed(b"\0" * 4, False) == [Signal.END]


def test_an_incomplete_verdict_holds_the_turn_open_up_to_hold_ms() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=40, end_ms=200, check_ms=100, hold_ms=600))
    feed(endpointer, "vvv" + "." * 5)
    endpointer.settle(endpointer.pause_number, complete=False)
    ends = [i for i, s in feed(endpointer, "." * 30) if s is Signal.END]
    assert ends[0] == 600 // 20 - 5 - 1  # 600 ms of silence in all


def test_an_unsure_verdict_leaves_end_ms() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=40, end_ms=200, check_ms=100, hold_ms=600))
    feed(endpointer, "vvv" + "." * 5)
    endpointer.settle(endpointer.pause_number, complete=None)
    assert next(i for i, s in feed(endpointer, "." * 30) if s is Signal.END) == 200 // 20 - 5 - 1


def test_a_verdict_on_a_pause_the_caller_already_ended_is_ignored() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=40, end_ms=200, check_ms=100, hold_ms=600))
    feed(endpointer, "vvv" + "." * 5)
    stale = endpointer.pause_number
    feed(endpointer, "vv" + "..")  # the caller went on, and paused again
    endpointer.settle(stale, complete=True)
    assert [s for _, s in feed(endpointer, ".")] == []
    endpointer.settle(stale, complete=False)  # nor is the new pause held by the old verdict
    assert next(i for i, s in feed(endpointer, "." * 30) if s is Signal.END) == 200 // 20 - 3 - 1


def test_without_check_ms_no_check_is_asked() -> None:
    endpointer = Endpointer(EndpointSettings(pause_ms=40, end_ms=200))
    assert Signal.CHECK not in [s for _, s in feed(endpointer, "vvv" + "." * 12)]
