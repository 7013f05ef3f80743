"""Drives a media pipeline like a call would, without Asterisk: 20 ms in, 20 ms out.

Paced by the event loop's clock: real time for model-level tests of the conversation (real
models, no PBX), virtual time (`tests.support.virtual_time`) for unit tests with scripted models.
The integration tests do the same through a real Asterisk and sipp.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from bridge.media.clock import FRAME_SECONDS
from bridge.media.codecs import FRAME_MS, Codec, codec_for, rms
from bridge.media.playout import PlayoutQueue
from bridge.pipelines.base import CallInfo, MediaPipeline, TransferOutcome
from bridge.routing.intents import RouteMatch

FRAMES_PER_SECOND = 1000 // FRAME_MS


@dataclass
class SimulatedCall:
    pipeline: MediaPipeline
    codec: Codec = field(default_factory=lambda: codec_for("ulaw"))
    ended: str = ""
    handed_over: str = ""
    heard: list[bytes] = field(default_factory=list)
    keypad: dict[float, str] = field(default_factory=dict)  # seconds into the call -> digit pressed
    transfer_outcome: TransferOutcome = "handed_over"
    transfers: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sent_dtmf: str = ""
    info: CallInfo = field(default_factory=lambda: CallInfo("sim-call", "15550001111", "", "18005550100"))
    # (gain, delay in 20 ms frames): the agent's own audio comes back mixed into the caller's, as
    # a phone's echo does.
    echo: tuple[float, int] | None = None

    async def transfer(self, route: RouteMatch, variables: dict[str, str]) -> TransferOutcome:
        self.transfers.append((route.name, variables))
        if self.transfer_outcome in ("handed_over", "answered"):
            self.handed_over = route.target.kind
        return self.transfer_outcome

    async def send_dtmf(self, digits: str) -> None:
        self.sent_dtmf += digits

    def hang_up(self, reason: str) -> None:
        self.ended = reason

    def hand_over(self, reason: str) -> None:
        self.handed_over = reason

    async def run(self, caller_pcm: bytes, seconds: float) -> None:
        """Play `caller_pcm` (at the codec rate) then silence, for `seconds` in all, paced by the loop's clock."""
        frame_bytes = self.codec.pcm_frame_bytes
        output = PlayoutQueue(frame_bytes)
        self.pipeline.start(self.codec, output, self)
        clock = asyncio.get_running_loop().time
        start = clock()
        ticks = int(seconds * FRAMES_PER_SECOND)
        presses = {round(at * FRAMES_PER_SECOND): digit for at, digit in self.keypad.items()}
        for tick in range(ticks):
            if tick in presses:
                self.pipeline.on_dtmf(presses[tick])
            chunk = caller_pcm[tick * frame_bytes : (tick + 1) * frame_bytes].ljust(frame_bytes, b"\x00")
            if self.echo is not None and tick >= self.echo[1]:
                chunk = _mix(chunk, self.heard[tick - self.echo[1]], self.echo[0])
            self.pipeline.on_audio(chunk)
            self.heard.append(output.pop() or self.codec.silence())
            if self.ended or self.handed_over:
                break
            await asyncio.sleep(max(0.0, start + (tick + 1) * FRAME_SECONDS - clock()))
        await self.pipeline.stop()

    def agent_audio(self) -> bytes:
        return b"".join(self.heard)

    def voiced_spans(self, threshold: int = 300) -> list[tuple[float, float]]:
        """(start, end) seconds of agent audio above `threshold` RMS, gaps under 300 ms merged."""
        spans: list[tuple[float, float]] = []
        for index, frame in enumerate(self.heard):
            if rms(frame) < threshold:
                continue
            at = index * FRAME_SECONDS
            if spans and at - spans[-1][1] <= 0.3:
                spans[-1] = (spans[-1][0], at + FRAME_SECONDS)
            else:
                spans.append((at, at + FRAME_SECONDS))
        return spans


def _mix(pcm: bytes, other: bytes, gain: float) -> bytes:
    mixed = np.frombuffer(pcm, np.int16).astype(np.int32) + (np.frombuffer(other, np.int16) * gain).astype(np.int32)
    return np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
