"""Voice activity: is this 20 ms frame speech? webrtcvad, gated by a level floor.

webrtcvad is fast (microseconds a frame) and made for telephone audio. On its own it calls
line hiss and faint background talk speech; the level floor rejects frames too quiet to be
the caller addressing us.
"""

from __future__ import annotations

import webrtcvad

from bridge.media.codecs import rms

SUPPORTED_RATES = (8000, 16000, 32000, 48000)


class WebRtcVoiceDetector:
    def __init__(self, sample_rate: int, aggressiveness: int = 2, min_level_dbfs: float = -45.0) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"webrtcvad needs one of {SUPPORTED_RATES} Hz, got {sample_rate}")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.sample_rate = sample_rate
        self.min_rms = int(32768 * 10 ** (min_level_dbfs / 20))

    def is_speech(self, frame: bytes) -> bool:
        if rms(frame) < self.min_rms:
            return False
        return bool(self._vad.is_speech(frame, self.sample_rate))
