"""Audio codecs the externalMedia channel can speak: G.711 u-law and A-law (8 kHz), G.722 (16 kHz)
and 16 kHz slin.

Inside the bridge audio is always 16-bit signed little-endian mono PCM at the codec's rate;
codecs convert to and from the wire payload. slin16 travels big-endian, as RTP's L16 requires
(RFC 3551) and as Asterisk sends it: getting this wrong turns speech into loud noise.

G.722 is ADPCM: each direction of a call keeps its own encoder or decoder state, so a stream
asks for `encoder()`/`decoder()` once and feeds it every frame in order. Its RTP clock is 8000 Hz
although the audio is 16 kHz (RFC 3551's historical error, kept by everyone), so a 20 ms frame
advances the timestamp by 160, not 320.
"""

from __future__ import annotations

import array
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import G722

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib on 3.11/3.12, the audioop-lts package on >= 3.13

CodecName = Literal["ulaw", "alaw", "slin16", "g722"]
Transcode = Callable[[bytes], bytes]
G722_BITRATE = 64000
FRAME_MS = 20
SAMPLE_WIDTH = 2


@dataclass(frozen=True, slots=True)
class Codec:
    name: CodecName
    payload_type: int
    sample_rate: int
    clock_rate: int = 0  # the RTP timestamp clock; 0: the sample rate

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * FRAME_MS // 1000

    @property
    def rtp_step(self) -> int:
        """How far the RTP timestamp moves per 20 ms frame."""
        return (self.clock_rate or self.sample_rate) * FRAME_MS // 1000

    @property
    def wideband(self) -> bool:
        return self.sample_rate > 8000

    @property
    def pcm_frame_bytes(self) -> int:
        return self.samples_per_frame * SAMPLE_WIDTH

    def silence(self) -> bytes:
        """One frame of PCM silence."""
        return bytes(self.pcm_frame_bytes)

    def encoder(self) -> Transcode:
        """PCM frames -> payloads, for one direction of one call (state kept between frames)."""
        if self.name == "g722":
            state = G722.G722(self.sample_rate, G722_BITRATE)
            return lambda pcm: bytes(state.encode(array.array("h", pcm)))
        return self.encode

    def decoder(self) -> Transcode:
        """Payloads -> PCM frames, for one direction of one call (state kept between frames)."""
        if self.name == "g722":
            state = G722.G722(self.sample_rate, G722_BITRATE)
            return lambda payload: state.decode(payload).tobytes()
        return self.decode

    def encode(self, pcm: bytes) -> bytes:
        """One frame, for the stateless codecs (G.711, slin16); streams use encoder()."""
        if self.name == "g722":
            return self.encoder()(pcm)
        if self.name == "ulaw":
            return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)
        if self.name == "alaw":
            return audioop.lin2alaw(pcm, SAMPLE_WIDTH)
        return _swap_if_little_endian(pcm)

    def decode(self, payload: bytes) -> bytes:
        """One frame, for the stateless codecs (G.711, slin16); streams use decoder()."""
        if self.name == "g722":
            return self.decoder()(payload)
        if self.name == "ulaw":
            return audioop.ulaw2lin(payload, SAMPLE_WIDTH)
        if self.name == "alaw":
            return audioop.alaw2lin(payload, SAMPLE_WIDTH)
        if len(payload) % SAMPLE_WIDTH:
            payload = payload[:-1]
        return _swap_if_little_endian(payload)


def _swap_if_little_endian(pcm: bytes) -> bytes:
    return audioop.byteswap(pcm, SAMPLE_WIDTH) if sys.byteorder == "little" else pcm


# Payload types as Asterisk's RTP engine maps them (static 0, 8 and 9; 118 is Asterisk's slin16).
CODECS: dict[str, Codec] = {
    "ulaw": Codec("ulaw", 0, 8000),
    "alaw": Codec("alaw", 8, 8000),
    "g722": Codec("g722", 9, 16000, clock_rate=8000),
    "slin16": Codec("slin16", 118, 16000),
}
# Callers whose own audio is wideband (Asterisk's names in CHANNEL(audionativeformat)): with
# media.format = "auto" their calls get a G.722 leg, everyone else u-law.
WIDEBAND_CALLER_CODECS = frozenset({"opus", "g722", "slin16", "slin", "silk16", "speex16", "g7221", "siren7"})

COMFORT_NOISE_PAYLOAD_TYPE = 13


def codec_for(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}") from None


def rms(pcm: bytes) -> int:
    """Root-mean-square level of 16-bit PCM (0..32767), used for energy checks and stats."""
    return int(audioop.rms(pcm, SAMPLE_WIDTH)) if pcm else 0
