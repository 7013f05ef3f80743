"""One call's RTP endpoint facing Asterisk's externalMedia channel.

Inbound: datagrams are checked (source address, RTP syntax, payload type), reordered by the
jitter buffer, decoded to PCM and handed to the pipeline. Outbound: the shared media clock calls
`on_tick` every 20 ms and we send exactly one frame, from the playout queue or silence.

Latching: we accept media only from Asterisk's announced RTP address (`expect_peer`); until it is
known nothing is accepted, since the socket is open to anyone who finds the port. The first packet
from that address fixes the source port (symmetric RTP), and anything from elsewhere is dropped
and counted (spoofing, stray streams).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from bridge.media.clock import FRAME_SECONDS, MediaClock
from bridge.media.codecs import COMFORT_NOISE_PAYLOAD_TYPE, Codec
from bridge.media.jitter import JitterBuffer
from bridge.media.playout import PlayoutQueue
from bridge.media.rtp import RtpPacket, RtpParseError, parse_rtp
from bridge.media.stats import SampleWindow

Address = tuple[str, int]
AudioSink = Callable[[bytes], None]


@dataclass(slots=True)
class RtpSessionStats:
    packets_in: int = 0
    packets_out: int = 0
    audio_frames_out: int = 0
    malformed: int = 0
    foreign: int = 0
    wrong_payload_type: int = 0
    comfort_noise: int = 0
    wrong_size: int = 0
    send_errors: int = 0
    send_interval_error: SampleWindow = field(default_factory=SampleWindow)


class RtpSession(asyncio.DatagramProtocol):
    def __init__(
        self,
        codec: Codec,
        clock: MediaClock,
        remote: Address | None = None,
        jitter_depth: int = 3,
    ) -> None:
        self.codec = codec
        self.clock = clock
        self.remote: Address | None = None
        self.latched: Address | None = None
        if remote is not None:
            self.expect_peer(remote)
        self.playout = PlayoutQueue(codec.pcm_frame_bytes)
        self.jitter = JitterBuffer(jitter_depth)
        self.stats = RtpSessionStats()
        self.on_audio: AudioSink | None = None
        self.local_address: Address | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._ssrc = random.getrandbits(32)
        self._sequence = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._talking = False
        self._last_send: float | None = None
        self._encode = codec.encoder()  # G.722 keeps state per direction: one of each per call
        self._decode = codec.decoder()
        self._silence = codec.silence()
        self._payload_size = len(codec.encoder()(self._silence))
        self.closed = asyncio.Event()

    # asyncio.DatagramProtocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a DatagramTransport subclass on 3.11.
        self._transport = cast(asyncio.DatagramTransport, transport)
        host, port = transport.get_extra_info("sockname")[:2]
        self.local_address = (host, port)

    def connection_lost(self, exc: Exception | None) -> None:
        self.clock.unregister(self)
        self._transport = None
        self.closed.set()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        source = (_plain_host(addr[0]), addr[1])
        if not self._accepts_source(source):
            self.stats.foreign += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.stats.malformed += 1
            return
        if packet.payload_type != self.codec.payload_type:
            if packet.payload_type == COMFORT_NOISE_PAYLOAD_TYPE:
                self.stats.comfort_noise += 1
            else:
                self.stats.wrong_payload_type += 1
            return
        if len(packet.payload) != self._payload_size:
            # Not a 20 ms frame: the pipeline (VAD, STT) works on exact frames, so drop and count it.
            self.stats.wrong_size += 1
            return
        if self.latched is None:
            self.latched = source
        self.stats.packets_in += 1
        sink = self.on_audio
        for ready in self.jitter.push(packet):
            if sink is not None:
                sink(self._decode(ready.payload))

    def expect_peer(self, remote: Address) -> None:
        """Asterisk's RTP address, as its externalMedia channel reports it; port 0: any port from
        that host, the first packet's port is then latched. A source latched before that no
        longer counts unless it matches."""
        self.remote = (_plain_host(remote[0]), remote[1])
        if self.latched is not None and not self._from_remote(self.latched):
            self.latched = None

    # Outbound, driven by MediaClock ---------------------------------------------------------
    def start_sending(self) -> None:
        self.clock.register(self)

    def on_tick(self) -> None:
        destination = self.latched or self.remote
        if self._transport is None or destination is None or destination[1] == 0:
            return
        frame = self.playout.pop()
        marker = False
        if frame is None:
            payload = self._encode(self._silence)  # through the stream's encoder: G.722 state stays whole
            self._talking = False
        else:
            payload = self._encode(frame)
            marker = not self._talking
            self._talking = True
            self.stats.audio_frames_out += 1
        packet = RtpPacket(self.codec.payload_type, self._sequence, self._timestamp, self._ssrc, payload, marker)
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + self.codec.rtp_step) & 0xFFFFFFFF
        now = time.monotonic()
        try:
            self._transport.sendto(packet.to_bytes(), destination)
        except OSError:
            self.stats.send_errors += 1
            return
        if self._last_send is not None:
            self.stats.send_interval_error.add(abs(now - self._last_send - FRAME_SECONDS))
        self._last_send = now
        self.stats.packets_out += 1

    def close(self) -> None:
        self.clock.unregister(self)
        if self._transport is not None:
            self._transport.close()

    def _accepts_source(self, source: Address) -> bool:
        if self.latched is not None:
            return source == self.latched
        return self._from_remote(source)

    def _from_remote(self, source: Address) -> bool:
        if self.remote is None:
            return False  # Asterisk's address is not known yet: nobody is trusted
        host, port = self.remote
        return source[0] == host and (port == 0 or source[1] == port)


def _plain_host(host: str) -> str:
    """'::ffff:10.0.0.5' (an IPv4 peer on a dual-stack socket) compares as '10.0.0.5'."""
    return host[7:] if host.startswith("::ffff:") and "." in host else host


async def open_rtp_session(
    session: RtpSession,
    bind_host: str,
    port_range: tuple[int, int] | None,
) -> RtpSession:
    """Bind the session's UDP socket, trying ports in the range from a random start.

    A fixed range lets firewalls be configured; a random start spreads calls after restarts.
    `None` binds an ephemeral port.
    """
    loop = asyncio.get_running_loop()
    if port_range is None:
        await loop.create_datagram_endpoint(lambda: session, local_addr=(bind_host, 0))
        return session
    low, high = port_range
    ports = list(range(low, high + 1))
    offset = random.randrange(len(ports))
    last_error: OSError | None = None
    for port in ports[offset:] + ports[:offset]:
        try:
            await loop.create_datagram_endpoint(lambda: session, local_addr=(bind_host, port))
            return session
        except OSError as error:
            last_error = error
    raise OSError(f"no free UDP port for RTP in {low}-{high} on {bind_host}: {last_error}")
