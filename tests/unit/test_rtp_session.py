"""RtpSession over real loopback UDP sockets: latching, bad input, clock-paced sending."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest

from bridge.media.clock import MediaClock
from bridge.media.codecs import codec_for
from bridge.media.rtp import RtpPacket, parse_rtp
from bridge.media.session import RtpSession, open_rtp_session

ULAW = codec_for("ulaw")


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


@pytest.fixture
async def asterisk_side() -> AsyncIterator[socket.socket]:
    sock = udp_socket()
    yield sock
    sock.close()


@pytest.fixture
async def session(asterisk_side: socket.socket) -> AsyncIterator[RtpSession]:
    rtp = RtpSession(ULAW, MediaClock(), remote=asterisk_side.getsockname())
    await open_rtp_session(rtp, "127.0.0.1", None)
    yield rtp
    rtp.close()


def packet(seq: int, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq, seq * 160, 7, ULAW.encode(bytes(320))).to_bytes()


async def settle(session: RtpSession, count: int) -> None:
    for _ in range(200):
        stats = session.stats
        seen = stats.packets_in + stats.malformed + stats.foreign + stats.wrong_payload_type + stats.comfort_noise
        if seen >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {session.stats} arrived")


async def test_audio_from_asterisk_reaches_the_pipeline(session: RtpSession, asterisk_side: socket.socket) -> None:
    heard: list[bytes] = []
    session.on_audio = heard.append
    assert session.local_address is not None
    for seq in (1, 2, 3):
        asterisk_side.sendto(packet(seq), session.local_address)
    await settle(session, 3)
    assert len(heard) == 3 and all(len(frame) == 320 for frame in heard)
    assert session.latched == asterisk_side.getsockname()


async def test_packets_from_anyone_else_are_dropped(session: RtpSession, asterisk_side: socket.socket) -> None:
    intruder = udp_socket()
    heard: list[bytes] = []
    session.on_audio = heard.append
    assert session.local_address is not None
    intruder.sendto(packet(1), session.local_address)
    asterisk_side.sendto(packet(2), session.local_address)
    intruder.sendto(packet(3), session.local_address)
    await settle(session, 3)
    intruder.close()
    assert session.stats.foreign == 2
    assert len(heard) == 1


async def test_nothing_is_accepted_until_asterisks_address_is_known(asterisk_side: socket.socket) -> None:
    """The port is open before ARI reports Asterisk's address: a first packet from anyone must not latch."""
    rtp = RtpSession(ULAW, MediaClock())
    await open_rtp_session(rtp, "127.0.0.1", None)
    assert rtp.local_address is not None
    heard: list[bytes] = []
    rtp.on_audio = heard.append
    intruder = udp_socket()
    intruder.sendto(packet(1), rtp.local_address)
    await settle(rtp, 1)
    assert (rtp.stats.foreign, rtp.latched) == (1, None)
    rtp.expect_peer(asterisk_side.getsockname())
    asterisk_side.sendto(packet(2), rtp.local_address)
    intruder.sendto(packet(3), rtp.local_address)
    await settle(rtp, 3)
    intruder.close()
    rtp.close()
    assert (rtp.stats.foreign, rtp.stats.packets_in, len(heard)) == (2, 1, 1)
    assert rtp.latched == asterisk_side.getsockname()


async def test_any_port_from_asterisks_host_latches_but_no_other_host() -> None:
    """Port 0 (Asterisk did not say): the first packet from its host fixes the port, symmetric RTP."""
    rtp = RtpSession(ULAW, MediaClock(), remote=("127.0.0.1", 0))
    await open_rtp_session(rtp, "127.0.0.1", None)
    assert rtp.local_address is not None
    rtp.on_tick()
    assert rtp.stats.packets_out == rtp.stats.send_errors == 0, "nowhere to send to before the port is known"
    other_host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other_host.bind(("127.0.0.2", 0))
    asterisk, second_port = udp_socket(), udp_socket()
    asterisk_address = asterisk.getsockname()
    other_host.sendto(packet(1), rtp.local_address)
    await settle(rtp, 1)
    asterisk.sendto(packet(2), rtp.local_address)
    await settle(rtp, 2)
    second_port.sendto(packet(3), rtp.local_address)
    await settle(rtp, 3)
    rtp.on_tick()
    assert parse_rtp(asterisk.recv(2048)).payload_type == 0, "we answer the latched port"
    for sock in (other_host, asterisk, second_port):
        sock.close()
    rtp.close()
    assert (rtp.stats.foreign, rtp.stats.packets_in) == (2, 1)
    assert rtp.latched == asterisk_address


async def test_bad_input_is_counted_not_fatal(session: RtpSession, asterisk_side: socket.socket) -> None:
    assert session.local_address is not None
    for data in (b"", b"\x00" * 5, b"garbage" * 20, packet(1, pt=8), packet(2, pt=13), packet(3)):
        asterisk_side.sendto(data, session.local_address)
    await settle(session, 6)
    stats = session.stats
    assert (stats.malformed, stats.wrong_payload_type, stats.comfort_noise, stats.packets_in) == (3, 1, 1, 1)


async def test_each_tick_sends_one_frame_with_advancing_seq_and_timestamp(
    session: RtpSession, asterisk_side: socket.socket
) -> None:
    session.playout.put(b"\x10\x00" * 160)
    for _ in range(3):
        session.on_tick()
    received = [parse_rtp(asterisk_side.recv(2048)) for _ in range(3)]
    assert [p.marker for p in received] == [True, False, False]
    assert received[1].sequence == (received[0].sequence + 1) & 0xFFFF
    assert received[2].timestamp == (received[1].timestamp + 160) & 0xFFFFFFFF
    assert set(received[1].payload) == {0xFF}, "an empty queue sends silence, keeping the clock"
    assert session.stats.audio_frames_out == 1


async def test_clear_silences_the_very_next_frame(session: RtpSession, asterisk_side: socket.socket) -> None:
    session.playout.put(b"\x10\x00" * 1600)
    session.on_tick()
    session.playout.clear()
    session.on_tick()
    first, second = (parse_rtp(asterisk_side.recv(2048)) for _ in range(2))
    assert set(first.payload) != {0xFF}
    assert set(second.payload) == {0xFF}


async def test_port_range_is_honoured() -> None:
    probe = udp_socket()
    port = probe.getsockname()[1]
    probe.close()
    rtp = RtpSession(ULAW, MediaClock())
    await open_rtp_session(rtp, "127.0.0.1", (port, port))
    assert rtp.local_address == ("127.0.0.1", port)
    with pytest.raises(OSError, match=f"no free UDP port for RTP in {port}-{port}"):
        await open_rtp_session(RtpSession(ULAW, MediaClock()), "127.0.0.1", (port, port))
    rtp.close()


def test_fuzzed_datagrams_from_asterisk_are_counted_never_raised() -> None:
    """Random bytes and mangled RTP from the trusted address: every packet lands in one counter."""
    rng = random.Random(20261127)
    asterisk = ("127.0.0.1", 40000)
    rtp = RtpSession(ULAW, MediaClock(), remote=asterisk)
    frames: list[bytes] = []
    rtp.on_audio = frames.append
    valid = packet(1)
    sent = 0
    for index in range(5000):
        kind = index % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 400))
        elif kind == 1:  # a real header with random flags, counts, sizes
            data = bytes([0x80 | rng.randrange(0, 64), rng.randrange(0, 256)]) + rng.randbytes(rng.randrange(10, 300))
        elif kind == 2:  # one byte of a valid packet flipped
            mangled = bytearray(valid)
            mangled[rng.randrange(len(mangled))] ^= 1 << rng.randrange(8)
            data = bytes(mangled)
        else:  # well-formed packets with wild sequence numbers, timestamps and payload sizes
            size = rng.choice((160, 160, 80, 240, 7, 0))
            data = RtpPacket(0, rng.randrange(65536), rng.randrange(2**32), 0x1234, bytes(size), False).to_bytes()
        rtp.datagram_received(data, asterisk)
        sent += 1
    stats = rtp.stats
    counted = stats.packets_in + stats.malformed + stats.wrong_payload_type + stats.comfort_noise + stats.wrong_size
    assert counted == sent
    assert stats.packets_in > 500 and stats.malformed > 100 and stats.wrong_size > 100
    assert all(len(frame) == ULAW.pcm_frame_bytes for frame in frames)  # the pipeline only ever sees whole frames
