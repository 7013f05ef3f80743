"""Text-to-speech: what every synthesiser offers, and the async, call-rate face of it.

Synthesisers are loaded once and shared; each produces 16-bit mono PCM at its own rate, one
chunk per sentence. `Speaker` runs them on the model worker and converts each chunk to the
call's rate with a band-limited resampler, so callers hear no aliasing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Protocol

from bridge.media.resample import StreamResampler
from bridge.speech.workers import ModelWorker


class SpeechSynthesizer(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Blocking; yields PCM chunks at `sample_rate` (runs on a worker thread)."""


class Speaker:
    """Shared by all calls: one synthesiser, one worker; output at whatever rate a call asks."""

    def __init__(self, synthesizer: SpeechSynthesizer, threads: int = 1) -> None:
        self.synthesizer = synthesizer
        self._worker = ModelWorker(f"tts-{synthesizer.name}", threads)

    async def speak(self, text: str, rate: int) -> AsyncGenerator[bytes, None]:
        # One resampler per utterance: chunks may be small (a Wyoming server streams ~50 ms
        # pieces), and converting each alone would click at every seam.
        resampler = StreamResampler(self.synthesizer.sample_rate, rate)
        async for chunk in self._worker.stream(lambda cancel: self.synthesizer.synthesize(text)):
            audio = resampler.process(chunk[: len(chunk) - len(chunk) % 2])
            if audio:
                yield audio
        tail = resampler.process(b"", last=True)
        if tail:
            yield tail

    async def render(self, text: str, rate: int) -> bytes:
        """A whole utterance at once (greetings and apologies cached per call rate)."""
        return b"".join([chunk async for chunk in self.speak(text, rate)])

    @property
    def worker(self) -> ModelWorker:
        return self._worker

    def close(self) -> None:
        self._worker.close()
