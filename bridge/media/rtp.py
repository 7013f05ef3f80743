"""RTP packets (RFC 3550): parse from bytes and build to bytes, with no I/O.

Kept free of sockets so that every malformed-input rule is testable from raw bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
_HEADER = struct.Struct("!BBHII")


class RtpParseError(ValueError):
    """Raised for datagrams that are not valid RTP; the caller drops and counts them."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def to_bytes(self) -> bytes:
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        header = _HEADER.pack(
            RTP_VERSION << 6,
            second,
            self.sequence & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc & 0xFFFFFFFF,
        )
        return header + self.payload


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram, honouring CSRC lists, header extensions and padding."""
    if len(data) < RTP_HEADER_SIZE:
        raise RtpParseError(f"short packet: {len(data)} bytes, an RTP header needs {RTP_HEADER_SIZE}")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpParseError(f"RTP version {version}, expected {RTP_VERSION}")
    offset = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpParseError("header extension flag set but packet ends inside the extension header")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > end - offset:
            raise RtpParseError(f"invalid padding length {padding}")
        end -= padding
    if offset > end:
        raise RtpParseError(f"header claims {offset} bytes but packet has {end}")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
    )


def sequence_delta(newer: int, older: int) -> int:
    """Signed distance between two 16-bit sequence numbers, correct across wrap-around."""
    delta = (newer - older) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta
