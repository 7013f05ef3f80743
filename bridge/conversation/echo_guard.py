"""Tells the caller talking over the agent from the agent's own voice coming back.

Phones, speakerphones and some trunks return part of what we send (echo): without a guard it
looks like the caller talking over the agent, and the agent stops mid-sentence for nobody. A
fixed level floor (conversation.barge_in_min_level_dbfs) misses loud echo and cuts quiet callers
alike. The guard knows what we sent: sound that arrives within the echo's travel time and is
not louder than our own recent audio minus the line's echo return loss is taken for echo.

The configured return loss is the worst case (6 dB: a loud speakerphone). Most lines return far
less (an echo-cancelling phone or trunk: nothing at all), and there the worst-case floor hides a
caller who goes on or talks over the agent at a normal level (measured with `bench turn --live`:
the callers' first words came in 5-15 dB under our voice and were taken for echo for 200-500 ms).
So the guard also measures the line: while we talk, how loud the inbound sound is next to what
we sent (mostly silence or echo; a caller talking over us is the exception), and uses that, with
a margin, when it is lower than the configured worst case. A caller talking over us a lot only
raises the measurement back towards the worst case: the guard errs on the side of echo.
Times default to the running loop's clock: both sides are called on the loop, once a frame.
"""

from __future__ import annotations

import asyncio
from collections import deque

from bridge.media.codecs import rms

# Echo travels through Asterisk, the network and back from the phone: well under this.
ECHO_TAIL_SECONDS = 0.4
# The line is measured over the last 100 inbound frames (2 s) heard while the caller could hear
# us and our level over the echo tail was at least this loud (pauses between words count too).
MEASURE_FRAMES = 100
MEASURE_MIN_LEVEL = 1000  # RMS of 16-bit audio, ~-30 dBFS
MEASURED_AFTER_FRAMES = 25  # 0.5 s of such frames (most of a greeting) before the measurement is trusted
# 9 of 10 frames of the line's return are under its 90th percentile; twice that (6 dB) is the floor.
MEASURE_QUANTILE = 0.9
MEASURE_MARGIN = 2.0
# Never trust a line to return less than 20 dB under our voice: echo that appears mid-call (a
# speakerphone switched on) at -12 dB still needs a few frames to move the measurement, and
# under a ~-13 dBFS voice this floor is about the fixed -35 dBFS barge-in floor anyway.
LOWEST_GAIN = 10 ** (-20 / 20)


class EchoGuard:
    def __init__(self, return_loss_db: float, tail_seconds: float = ECHO_TAIL_SECONDS, measure: bool = True) -> None:
        self.gain = 10 ** (-return_loss_db / 20)
        self.tail = tail_seconds
        self.measure = measure
        self._sent: deque[tuple[float, int]] = deque()  # (when played, level) of our recent frames
        # Inbound level over our loudest recent level, one per frame heard while we talked.
        self._returns: deque[float] = deque(maxlen=MEASURE_FRAMES)
        self._line_gain = self.gain

    def played(self, frame: bytes, now: float | None = None) -> None:
        """One frame of ours left for the caller (called from the playout queue, every 20 ms)."""
        now = asyncio.get_running_loop().time() if now is None else now
        self._sent.append((now, rms(frame)))
        while self._sent and now - self._sent[0][0] > self.tail:
            self._sent.popleft()

    def floor(self, now: float | None = None) -> int:
        """The loudest our own voice can come back now; quieter inbound sound may be echo."""
        return int(self._loudest(now) * self.line_gain())

    def heard(self, level: int, now: float | None = None) -> None:
        """One inbound frame's level (voiced or not) while the caller can hear us, after its
        `floor` was asked: it measures how much of our voice this line returns."""
        if not self.measure:
            return
        loudest = self._loudest(now)
        if loudest < MEASURE_MIN_LEVEL:
            return
        self._returns.append(level / loudest)
        if len(self._returns) >= MEASURED_AFTER_FRAMES:
            ordered = sorted(self._returns)
            measured = ordered[min(len(ordered) - 1, int(len(ordered) * MEASURE_QUANTILE))]
            self._line_gain = min(self.gain, max(LOWEST_GAIN, measured * MEASURE_MARGIN))

    def line_gain(self) -> float:
        """The share of our level that may come back: measured with a margin, never more than
        the configured worst case, never less than 20 dB under our voice; the worst case until
        0.5 s of our voice has been measured."""
        return self._line_gain

    def _loudest(self, now: float | None) -> int:
        now = asyncio.get_running_loop().time() if now is None else now
        return max((level for at, level in self._sent if now - at <= self.tail), default=0)
