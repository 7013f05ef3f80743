"""Synthetic test audio and the measurements we assert on (level, dominant frequency)."""

from __future__ import annotations

import numpy as np


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.4) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = amplitude * 32767 * np.sin(2 * np.pi * frequency * t)
    return samples.astype("<i2").tobytes()


def dominant_frequency(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size < 64:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def level(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
