"""Minimal pcap reading and writing for RTP: sipp plays our files, tcpdump's files are read back."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from bridge.media.clock import FRAME_SECONDS
from bridge.media.codecs import Codec
from bridge.media.rtp import RtpPacket, RtpParseError, parse_rtp

_LINKTYPE_ETHERNET = 1
_LINKTYPE_LINUX_SLL = 113


@dataclass(frozen=True)
class UdpDatagram:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


TELEPHONE_EVENT_PT = 101
DTMF_FRAMES = 5  # 100 ms key press
_DTMF_EVENTS = {digit: code for code, digit in enumerate("0123456789*#")}


def write_rtp_pcap(
    path: Path,
    pcm: bytes,
    codec: Codec,
    src_port: int = 6000,
    dst_port: int = 6002,
    dtmf: dict[float, str] | None = None,
) -> int:
    """Write PCM as a 20 ms RTP stream in an Ethernet/IPv4/UDP pcap; returns the packet count.

    `dtmf` maps seconds to a digit: from there, 100 ms of RFC 4733 telephone-event packets
    (payload type 101) replace the audio, as a phone sends a key press.
    """
    frame = codec.pcm_frame_bytes
    encode = codec.encoder()
    presses = {round(at / FRAME_SECONDS): digit for at, digit in (dtmf or {}).items()}
    packets = []
    event: tuple[str, int, int] | None = None  # digit, first frame, timestamp
    for index, start in enumerate(range(0, len(pcm) - frame + 1, frame)):
        timestamp = index * codec.rtp_step
        if index in presses:
            event = (presses[index], index, timestamp)
        if event is not None and index - event[1] < DTMF_FRAMES:
            digit, first, event_timestamp = event
            step = index - first
            end = step >= DTMF_FRAMES - 1
            duration = (step + 1) * codec.rtp_step
            payload = struct.pack("!BBH", _DTMF_EVENTS[digit], (0x80 if end else 0) | 10, duration)
            rtp = RtpPacket(TELEPHONE_EVENT_PT, index, event_timestamp, 0x1234ABCD, payload, step == 0)
        else:
            payload = encode(pcm[start : start + frame])
            rtp = RtpPacket(codec.payload_type, index, timestamp, 0x1234ABCD, payload, index == 0)
        packets.append((index * FRAME_SECONDS, _udp_frame(rtp.to_bytes(), src_port, dst_port)))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
        for when, data in packets:
            seconds = int(when)
            out.write(struct.pack("<IIII", seconds, int((when - seconds) * 1e6), len(data), len(data)))
            out.write(data)
    return len(packets)


def _udp_frame(payload: bytes, src_port: int, dst_port: int) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    )
    ethernet = bytes(12) + b"\x08\x00"
    return ethernet + ip + udp


def read_udp_pcap(path: Path) -> list[UdpDatagram]:
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nanos = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    link_header = {_LINKTYPE_ETHERNET: 14, _LINKTYPE_LINUX_SLL: 16}[linktype]
    offset = 24
    datagrams = []
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        frame = data[offset : offset + captured]
        offset += captured
        ip = frame[link_header:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        header = (ip[0] & 0x0F) * 4
        src_port, dst_port, length = struct.unpack_from("!HHH", ip, header)
        src = (".".join(map(str, ip[12:16])), src_port)
        dst = (".".join(map(str, ip[16:20])), dst_port)
        when = seconds + fraction / (1e9 if nanos else 1e6)
        datagrams.append(UdpDatagram(when, src, dst, bytes(ip[header + 8 : header + length])))
    return datagrams


def rtp_streams(datagrams: list[UdpDatagram]) -> dict[int, list[tuple[float, RtpPacket]]]:
    """Group captured RTP by SSRC, each stream in sequence order."""
    streams: dict[int, list[tuple[float, RtpPacket]]] = {}
    for datagram in datagrams:
        try:
            packet = parse_rtp(datagram.payload)
        except RtpParseError:
            continue
        streams.setdefault(packet.ssrc, []).append((datagram.time, packet))
    for packets in streams.values():
        packets.sort(key=lambda item: item[0])
    return streams
