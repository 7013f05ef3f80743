"""Speech-to-text: what every recogniser offers the conversation, and the async side of it.

A recogniser (one loaded model, shared by all calls) opens one `RecognitionStream` per
utterance. Streams take 16-bit PCM at the recogniser's rate and are only ever touched from
the model's worker thread. `Transcriber` is the per-utterance async face: it converts the
call's audio to the model's rate on the way in and hands batches to the worker while the
caller is still speaking, so the decode after the endpoint has little left to do.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from bridge.media.resample import StreamResampler
from bridge.speech.workers import ModelWorker

FEED_BATCH_FRAMES = 10


class RecognitionStream(Protocol):
    def accept(self, pcm: bytes) -> None:
        """More audio of this utterance (model rate, 16-bit mono)."""

    def partial(self) -> str:
        """Best guess so far; may be expensive for non-streaming models."""

    def final(self) -> str:
        """The transcript of everything accepted; the stream stays usable if more audio follows."""


class SpeechRecognizer(Protocol):
    name: str
    sample_rate: int

    def open_stream(self, hints: str = "") -> RecognitionStream:
        """A stream for one utterance; `hints` are words this call is likely to contain (the
        business's names), for recognisers that can be biased towards them."""


class Transcriber:
    """One utterance's transcription, fed from the event loop, decoded on the model worker."""

    def __init__(self, recognizer: SpeechRecognizer, worker: ModelWorker, call_rate: int, hints: str = "") -> None:
        self._recognizer = recognizer
        self._hints = hints
        self._worker = worker
        self._resampler = StreamResampler(call_rate, recognizer.sample_rate)
        self._pending: list[bytes] = []
        self._stream: RecognitionStream | None = None

    def feed(self, frames: list[bytes]) -> None:
        """Queue call-rate audio; cheap (resampling ~20 us a frame), safe on the media path."""
        self._pending.append(self._resampler.process(b"".join(frames)))

    def pending_frames(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Hand queued audio to the model (streaming models decode it now)."""
        if not self._pending:
            return
        audio = b"".join(self._pending)
        self._pending = []
        # Shielded: the audio is taken from `_pending`, so a cancelled wait (the reply it was for
        # dropped) must not cancel its delivery: the same transcription may go on.
        await asyncio.shield(self._worker.submit(lambda: self._open().accept(audio)))

    async def partial(self) -> str:
        await self.flush()
        return await self._worker.run(lambda: self._open().partial())

    async def final(self) -> str:
        await self.flush()
        return (await self._worker.run(lambda: self._open().final())).strip()

    def _open(self) -> RecognitionStream:
        if self._stream is None:
            self._stream = self._recognizer.open_stream(self._hints)
        return self._stream
