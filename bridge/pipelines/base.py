"""What a call's media pipeline looks like to the call: audio in, a playout queue out, call control."""

from __future__ import annotations

from typing import Any, Protocol

from bridge.media.codecs import Codec
from bridge.media.playout import PlayoutQueue


class CallControl(Protocol):
    """What a pipeline may ask of the call it runs in."""

    def hang_up(self, reason: str) -> None:
        """End the call (after the pipeline has said goodbye)."""

    def hand_over(self, reason: str) -> None:
        """Leave Stasis to the dialplan with BRIDGE_RESULT set, e.g. to reach a human queue."""


class MediaPipeline(Protocol):
    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        """Begin the conversation; audio for the caller goes into `output`."""

    def on_audio(self, pcm: bytes) -> None:
        """One decoded 20 ms frame from the caller. Must return at once (media path)."""

    async def stop(self) -> None:
        """Cancel any work in flight; called once when the call ends."""

    def report(self) -> dict[str, Any]:
        """What the pipeline wants kept in the call record (transcript, turns, latencies)."""
