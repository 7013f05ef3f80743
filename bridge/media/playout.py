"""The outbound audio queue that the media clock drains one 20 ms frame at a time.

Producers (echo, prompts, TTS) put PCM of any length; the clock pops exact frames. `clear()`
empties it at once, which is how barge-in silences the agent within one frame.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class PlayoutQueue:
    def __init__(self, frame_bytes: int, max_frames: int = 3000) -> None:
        self.frame_bytes = frame_bytes
        self.max_frames = max_frames
        self.dropped_overflow = 0
        self.frames_queued_total = 0
        self._frames: deque[bytes] = deque()
        self._partial = b""
        self._drained = asyncio.Event()
        self._drained.set()
        self._on_next_frame: Callable[[], None] | None = None
        # Told every frame that leaves for the caller (the conversation's echo guard listens).
        self.on_frame: Callable[[bytes], None] | None = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frames_played_total(self) -> int:
        """Frames that left the queue for the caller (or were cleared); positions in the agent's speech."""
        return self.frames_queued_total - len(self._frames)

    @property
    def duration_ms(self) -> int:
        return len(self._frames) * 20

    def put(self, pcm: bytes) -> None:
        """Queue PCM; a trailing part shorter than a frame waits for more or for `end_segment`."""
        data = self._partial + pcm
        whole = len(data) - len(data) % self.frame_bytes
        for start in range(0, whole, self.frame_bytes):
            self._append(data[start : start + self.frame_bytes])
        self._partial = data[whole:]

    def end_segment(self) -> None:
        """Pad the trailing partial frame with silence so the end of a segment is played."""
        if self._partial:
            self._append(self._partial.ljust(self.frame_bytes, b"\x00"))
            self._partial = b""

    def pop(self) -> bytes | None:
        if not self._frames:
            self._drained.set()
            return None
        frame = self._frames.popleft()
        if self.on_frame is not None:
            self.on_frame(frame)
        if not self._frames and not self._partial:
            self._drained.set()
        if self._on_next_frame is not None:
            notify, self._on_next_frame = self._on_next_frame, None
            notify()
        return frame

    def notify_next_frame(self, callback: Callable[[], None]) -> None:
        """Call `callback` (once, on the clock's tick) when the next queued frame goes out.

        This is how a turn learns when its first audio actually left for the caller.
        """
        self._on_next_frame = callback

    def clear(self) -> int:
        """Drop everything queued; returns the number of frames dropped."""
        dropped = len(self._frames)
        self._frames.clear()
        self._partial = b""
        self._on_next_frame = None
        self._drained.set()
        return dropped

    async def wait_for_playout(self) -> None:
        await self._drained.wait()

    def _append(self, frame: bytes) -> None:
        if len(self._frames) >= self.max_frames:
            self._frames.popleft()
            self.dropped_overflow += 1
        self._frames.append(frame)
        self.frames_queued_total += 1
        self._drained.clear()
