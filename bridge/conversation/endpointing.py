"""Turn-taking from voiced/unvoiced frames: when the caller starts, pauses, resumes and is done.

Two silence thresholds: a short `pause` after which the answer is prepared speculatively, and
the longer `end` that commits the turn. With a turn model (`check_ms` set), a pause that reaches
`check_ms` also asks it whether the words so far sound finished (Signal.CHECK); its verdict,
handed back with `settle()`, ends that pause's turn at once or holds it open up to `hold_ms`.
Work started at the pause is thrown away if the caller goes on, so a fast answer does not cost
cutting people off. A pre-roll of audio from before the onset is handed over with it so the
first syllable, which the VAD needs a few frames to believe, is not clipped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from bridge.media.codecs import FRAME_MS


class Signal(Enum):
    ONSET = "onset"
    PAUSE = "pause"
    RESUME = "resume"
    CHECK = "check"  # ask the turn model about this pause (settle() with its verdict)
    END = "end"
    TOO_LONG = "too_long"


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    onset_frames: int = 3
    onset_window: int = 5
    pause_ms: int = 140
    end_ms: int = 400
    preroll_ms: int = 300
    max_utterance_ms: int = 20000
    check_ms: int = 0  # 0: silence alone decides
    hold_ms: int = 1200


class Endpointer:
    """Fed one frame and its VAD verdict at a time; returns the turn-taking signals it caused."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self._recent: deque[bool] = deque(maxlen=settings.onset_window)
        self._preroll: deque[bytes] = deque(maxlen=max(1, settings.preroll_ms // FRAME_MS))
        self.in_speech = False
        self.paused = False
        self._silent_ms = 0
        self._utterance_ms = 0
        self.utterance: list[bytes] = []
        self.voiced_ms = 0
        self.pause_number = 0  # which pause a CHECK (and its settle()) belongs to
        self._end_ms = settings.end_ms

    def feed(self, frame: bytes, voiced: bool) -> list[Signal]:
        if not self.in_speech:
            return self._listen(frame, voiced)
        return self._follow(frame, voiced)

    def reset(self) -> None:
        """Forget the current utterance (after END, or when the agent discards it)."""
        self.in_speech = False
        self.paused = False
        self.utterance = []
        self._recent.clear()
        self._silent_ms = self._utterance_ms = self.voiced_ms = 0
        self._end_ms = self.settings.end_ms

    def carry_on(self, earlier: list[bytes], earlier_ms: int) -> None:
        """The utterance just begun continues an earlier one (the caller went on after its end): it
        is judged (Smart Turn) with the earlier audio before it, and counts against
        max_utterance_ms from the earlier start."""
        self.utterance = [*earlier, *self.utterance]
        self._utterance_ms += earlier_ms

    def settle(self, pause: int, complete: bool | None) -> None:
        """The turn model's verdict on pause `pause`: complete ends the turn on the next frame,
        incomplete waits up to hold_ms, unsure (None) leaves end_ms. Ignored when the caller has
        gone on since."""
        if pause != self.pause_number or not self.paused or not self.in_speech or complete is None:
            return
        self._end_ms = self._silent_ms if complete else max(self.settings.end_ms, self.settings.hold_ms)

    def trailing_silence_ms(self) -> int:
        return self._silent_ms

    def _listen(self, frame: bytes, voiced: bool) -> list[Signal]:
        self._preroll.append(frame)
        self._recent.append(voiced)
        if sum(self._recent) < self.settings.onset_frames:
            return []
        self.in_speech = True
        self.utterance = list(self._preroll)
        self._preroll.clear()
        self._recent.clear()
        self._utterance_ms = len(self.utterance) * FRAME_MS
        self.voiced_ms = self.settings.onset_frames * FRAME_MS
        self._silent_ms = 0
        return [Signal.ONSET]

    def _follow(self, frame: bytes, voiced: bool) -> list[Signal]:
        self.utterance.append(frame)
        self._utterance_ms += FRAME_MS
        signals: list[Signal] = []
        if voiced:
            self.voiced_ms += FRAME_MS
            self._silent_ms = 0
            if self.paused:
                self.paused = False
                self._end_ms = self.settings.end_ms
                signals.append(Signal.RESUME)
        else:
            self._silent_ms += FRAME_MS
            if not self.paused and self._silent_ms >= self.settings.pause_ms:
                self.paused = True
                self.pause_number += 1
                signals.append(Signal.PAUSE)
            if self.settings.check_ms and self._silent_ms == self.settings.check_ms // FRAME_MS * FRAME_MS:
                signals.append(Signal.CHECK)
            if self._silent_ms >= self._end_ms:
                signals.append(Signal.END)
        if Signal.END not in signals and self._utterance_ms >= self.settings.max_utterance_ms:
            signals.append(Signal.TOO_LONG)
        return signals
