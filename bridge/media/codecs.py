"""Audio codecs the externalMedia channel can speak: G.711 u-law, A-law and 16 kHz slin.

Inside the bridge audio is always 16-bit signed little-endian mono PCM at the codec's rate;
codecs convert to and from the wire payload. slin16 travels big-endian, as RTP's L16 requires
(RFC 3551) and as Asterisk sends it: getting this wrong turns speech into loud noise.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Literal

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib on 3.11/3.12, the audioop-lts package on >= 3.13

CodecName = Literal["ulaw", "alaw", "slin16"]
FRAME_MS = 20
SAMPLE_WIDTH = 2


@dataclass(frozen=True, slots=True)
class Codec:
    name: CodecName
    payload_type: int
    sample_rate: int

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * FRAME_MS // 1000

    @property
    def pcm_frame_bytes(self) -> int:
        return self.samples_per_frame * SAMPLE_WIDTH

    def silence(self) -> bytes:
        """One frame of PCM silence."""
        return bytes(self.pcm_frame_bytes)

    def encode(self, pcm: bytes) -> bytes:
        if self.name == "ulaw":
            return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)
        if self.name == "alaw":
            return audioop.lin2alaw(pcm, SAMPLE_WIDTH)
        return _swap_if_little_endian(pcm)

    def decode(self, payload: bytes) -> bytes:
        if self.name == "ulaw":
            return audioop.ulaw2lin(payload, SAMPLE_WIDTH)
        if self.name == "alaw":
            return audioop.alaw2lin(payload, SAMPLE_WIDTH)
        if len(payload) % SAMPLE_WIDTH:
            payload = payload[:-1]
        return _swap_if_little_endian(payload)


def _swap_if_little_endian(pcm: bytes) -> bytes:
    return audioop.byteswap(pcm, SAMPLE_WIDTH) if sys.byteorder == "little" else pcm


# Payload types as Asterisk's RTP engine maps them (static 0 and 8; 118 is Asterisk's slin16).
CODECS: dict[str, Codec] = {
    "ulaw": Codec("ulaw", 0, 8000),
    "alaw": Codec("alaw", 8, 8000),
    "slin16": Codec("slin16", 118, 16000),
}

COMFORT_NOISE_PAYLOAD_TYPE = 13


def codec_for(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}") from None


def rms(pcm: bytes) -> int:
    """Root-mean-square level of 16-bit PCM (0..32767), used for energy checks and stats."""
    return int(audioop.rms(pcm, SAMPLE_WIDTH)) if pcm else 0
