"""Drives a media pipeline like a call would, in real time, without Asterisk: 20 ms in, 20 ms out.

For model-level tests of the conversation (real models, no PBX); the integration tests do the
same through a real Asterisk and sipp.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bridge.media.codecs import Codec, codec_for, rms
from bridge.media.playout import PlayoutQueue
from bridge.pipelines.base import MediaPipeline


@dataclass
class SimulatedCall:
    pipeline: MediaPipeline
    codec: Codec = field(default_factory=lambda: codec_for("ulaw"))
    ended: str = ""
    handed_over: str = ""
    heard: list[bytes] = field(default_factory=list)

    def hang_up(self, reason: str) -> None:
        self.ended = reason

    def hand_over(self, reason: str) -> None:
        self.handed_over = reason

    async def run(self, caller_pcm: bytes, seconds: float) -> None:
        """Play `caller_pcm` (at the codec rate) then silence, for `seconds` in all, paced by the clock."""
        frame_bytes = self.codec.pcm_frame_bytes
        output = PlayoutQueue(frame_bytes)
        self.pipeline.start(self.codec, output, self)
        start = time.monotonic()
        ticks = int(seconds * 50)
        for tick in range(ticks):
            chunk = caller_pcm[tick * frame_bytes : (tick + 1) * frame_bytes]
            self.pipeline.on_audio(chunk.ljust(frame_bytes, b"\x00"))
            self.heard.append(output.pop() or self.codec.silence())
            if self.ended or self.handed_over:
                break
            await asyncio.sleep(max(0.0, start + (tick + 1) * 0.02 - time.monotonic()))
        await self.pipeline.stop()

    def agent_audio(self) -> bytes:
        return b"".join(self.heard)

    def voiced_spans(self, threshold: int = 300) -> list[tuple[float, float]]:
        """(start, end) seconds of agent audio above `threshold` RMS, gaps under 300 ms merged."""
        spans: list[tuple[float, float]] = []
        for index, frame in enumerate(self.heard):
            if rms(frame) < threshold:
                continue
            at = index * 0.02
            if spans and at - spans[-1][1] <= 0.3:
                spans[-1] = (spans[-1][0], at + 0.02)
            else:
                spans.append((at, at + 0.02))
        return spans
