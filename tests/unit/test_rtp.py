import struct

import pytest

from bridge.media.rtp import RtpPacket, RtpParseError, parse_rtp, sequence_delta


def test_round_trip_keeps_every_field() -> None:
    packet = RtpPacket(0, 65535, 4294967295, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert parse_rtp(packet.to_bytes()) == packet


def test_csrc_extension_and_padding_are_skipped() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 8, 7, 160, 42)
    csrcs = struct.pack("!II", 1, 2)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = header + csrcs + extension + b"abcd" + b"\x00\x00\x03"
    packet = parse_rtp(data)
    assert (packet.payload_type, packet.sequence, packet.ssrc, packet.payload) == (8, 7, 42, b"abcd")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short packet"),
        (b"\x80\x00\x00", "short packet"),
        (b"\x40" + bytes(11), "version 1"),
        (b"\x8f" + bytes(11), "header claims"),
        (b"\x90" + bytes(11), "extension"),
        (b"\xa0" + bytes(11) + b"\x00", "padding"),
        (b"\xa0" + bytes(11) + b"\x09", "padding"),
    ],
)
def test_malformed_datagrams_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        parse_rtp(data)


def test_sequence_delta_across_wrap() -> None:
    assert sequence_delta(2, 65534) == 4
    assert sequence_delta(65534, 2) == -4
    assert sequence_delta(100, 100) == 0
