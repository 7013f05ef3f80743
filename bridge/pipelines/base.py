"""What a call's media pipeline looks like to the call: audio in, a playout queue out."""

from __future__ import annotations

from typing import Protocol

from bridge.media.codecs import Codec
from bridge.media.playout import PlayoutQueue


class MediaPipeline(Protocol):
    def start(self, codec: Codec, output: PlayoutQueue) -> None:
        """Begin the conversation; audio for the caller goes into `output`."""

    def on_audio(self, pcm: bytes) -> None:
        """One decoded 20 ms frame from the caller. Must return at once (media path)."""

    async def stop(self) -> None:
        """Cancel any work in flight; called once when the call ends."""
