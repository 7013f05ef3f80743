"""A call's audio as it crossed the wire between the SIP caller and Asterisk, as timed 20 ms frames.

Used by the conversation tests and the voice-to-voice benchmark: latency is measured here, on
packets, not inside the bridge. With several calls from one sipp (one media port), calls are
told apart by Asterisk's RTP port, which is different for each call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from bridge.media.clock import FRAME_SECONDS
from bridge.media.codecs import Codec, codec_for, rms
from bridge.media.rtp import RtpParseError, parse_rtp
from tests.support.pcap import UdpDatagram

SILENT_RMS = 200
ULAW = codec_for("ulaw")


@dataclass
class WireAudio:
    """sent: caller -> Asterisk; received: Asterisk -> caller; times in seconds from the call's first packet."""

    sent: list[tuple[float, bytes]]
    received: list[tuple[float, bytes]]

    def received_between(self, start: float, end: float) -> bytes:
        return b"".join(pcm for at, pcm in self.received if start <= at < end)

    def first_sent_voice(self, after: float = 0.0) -> float:
        return next(at for at, pcm in self.sent if at >= after and rms(pcm) > SILENT_RMS)

    def last_sent_voice(self, before: float) -> float:
        return max(at for at, pcm in self.sent if at < before and rms(pcm) > SILENT_RMS)

    def first_received_voice(self, after: float) -> float | None:
        return next((at for at, pcm in self.received if at > after and rms(pcm) > SILENT_RMS), None)

    def received_silent_from(self, after: float, hold: float = 0.3) -> float | None:
        """Start of the first run of >= `hold` seconds of silence from the agent after `after`."""
        run_start: float | None = None
        for at, pcm in self.received:
            if at < after:
                continue
            if rms(pcm) > SILENT_RMS:
                run_start = None
            elif run_start is None:
                run_start = at
            elif at - run_start >= hold:
                return run_start
        return None

    def sent_voice_spans(self, gap: float = 0.6) -> list[tuple[float, float]]:
        return _spans(self.sent, gap)

    def received_voice_spans(self, gap: float = 0.3) -> list[tuple[float, float]]:
        return _spans(self.received, gap)


def _spans(frames: list[tuple[float, bytes]], gap: float) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    for at, pcm in frames:
        if rms(pcm) <= SILENT_RMS:
            continue
        if spans and at - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], at + FRAME_SECONDS)
        else:
            spans.append((at, at + FRAME_SECONDS))
    return spans


def calls_on_wire(datagrams: list[UdpDatagram], caller_media_port: int, codec: Codec = ULAW) -> list[WireAudio]:
    """One WireAudio per call (per Asterisk RTP port), in order of first packet."""
    sent: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    received: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    decoders: dict[tuple[str, int], Callable[[bytes], bytes]] = {}  # one per direction (G.722 state)
    for datagram in datagrams:
        try:
            packet = parse_rtp(datagram.payload)
        except RtpParseError:
            continue
        if packet.payload_type != codec.payload_type:
            continue
        if datagram.src[1] == caller_media_port:
            decode = decoders.setdefault(("sent", datagram.dst[1]), codec.decoder())
            sent[datagram.dst[1]].append((datagram.time, decode(packet.payload)))
        elif datagram.dst[1] == caller_media_port:
            decode = decoders.setdefault(("received", datagram.src[1]), codec.decoder())
            received[datagram.src[1]].append((datagram.time, decode(packet.payload)))
    calls = []
    for port in sorted(set(sent) | set(received), key=lambda p: min(t for t, _ in sent[p] + received[p])):
        origin = min(t for t, _ in sent[port] + received[port])
        calls.append(
            WireAudio(
                [(t - origin, pcm) for t, pcm in sent[port]],
                [(t - origin, pcm) for t, pcm in received[port]],
            )
        )
    return calls
