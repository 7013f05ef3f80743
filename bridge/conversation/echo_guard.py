"""Tells the caller talking over the agent from the agent's own voice coming back.

Phones, speakerphones and some trunks return part of what we send (echo): without a guard it
looks like the caller talking over the agent, and the agent stops mid-sentence for nobody. A
fixed level floor (conversation.barge_in_min_level_dbfs) misses loud echo and cuts quiet callers
alike. The guard knows what we sent: sound that arrives within the echo's travel time and is
not louder than our own recent audio minus the line's echo return loss is taken for echo.
Times default to the running loop's clock: both sides are called on the loop, once a frame.
"""

from __future__ import annotations

import asyncio
from collections import deque

from bridge.media.codecs import rms

# Echo travels through Asterisk, the network and back from the phone: well under this.
ECHO_TAIL_SECONDS = 0.4


class EchoGuard:
    def __init__(self, return_loss_db: float, tail_seconds: float = ECHO_TAIL_SECONDS) -> None:
        self.gain = 10 ** (-return_loss_db / 20)
        self.tail = tail_seconds
        self._sent: deque[tuple[float, int]] = deque()  # (when played, level) of our recent frames

    def played(self, frame: bytes, now: float | None = None) -> None:
        """One frame of ours left for the caller (called from the playout queue, every 20 ms)."""
        now = asyncio.get_running_loop().time() if now is None else now
        self._sent.append((now, rms(frame)))
        while self._sent and now - self._sent[0][0] > self.tail:
            self._sent.popleft()

    def floor(self, now: float | None = None) -> int:
        """The loudest our own voice can come back now; quieter inbound sound may be echo."""
        now = asyncio.get_running_loop().time() if now is None else now
        loudest = max((level for at, level in self._sent if now - at <= self.tail), default=0)
        return int(loudest * self.gain)
