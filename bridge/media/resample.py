"""Band-limited sample-rate conversion (libsoxr) between model rates and the call's rate.

Piper speaks at 22.05 kHz and Whisper listens at 16 kHz while a G.711 call runs at 8 kHz.
Naive conversion (decimation, linear interpolation) folds everything above 4 kHz back into the
band as hiss and whistles; soxr low-passes first, so what the caller hears is clean.
"""

from __future__ import annotations

import numpy as np
import soxr


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Convert a whole 16-bit mono chunk (one sentence, one prompt)."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    return bytes(soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.int16).tobytes())


class StreamResampler:
    """Converts audio that arrives in pieces (20 ms frames) without clicks at the seams."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16")

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16)
        return bytes(self._stream.resample_chunk(samples, last=last).tobytes())


def pcm16_to_float32(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
