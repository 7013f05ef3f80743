"""A small reordering jitter buffer keyed on RTP sequence numbers.

It adds no delay while packets arrive in order. A gap holds later packets back until either the
missing packet arrives or `depth` packets are waiting, at which point the gap is declared lost.
Duplicates and packets older than what was already released are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.media.rtp import RtpPacket, sequence_delta

# A sequence jump this large is a new stream (e.g. Asterisk re-INVITE), not loss.
_RESYNC_DISTANCE = 1000


@dataclass(slots=True)
class JitterStats:
    released: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    resyncs: int = 0


class JitterBuffer:
    def __init__(self, depth: int = 3) -> None:
        if depth < 1:
            raise ValueError("jitter buffer depth must be >= 1 packet")
        self.depth = depth
        self.stats = JitterStats()
        self._pending: dict[int, RtpPacket] = {}
        self._next: int | None = None
        self._ssrc: int | None = None

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        """Add a packet; return the packets now releasable, in sequence order."""
        if self._ssrc != packet.ssrc or self._next is None:
            self._reset(packet)
        assert self._next is not None
        distance = sequence_delta(packet.sequence, self._next)
        if abs(distance) > _RESYNC_DISTANCE:
            self._reset(packet)
            distance = 0
        if distance < 0:
            self.stats.late += 1
            return []
        if packet.sequence in self._pending:
            self.stats.duplicate += 1
            return []
        self._pending[packet.sequence] = packet
        released = self._release_in_order()
        if len(self._pending) >= self.depth:
            released += self._skip_gap()
        return released

    def _reset(self, packet: RtpPacket) -> None:
        if self._next is not None:
            self.stats.resyncs += 1
        self._pending.clear()
        self._ssrc = packet.ssrc
        self._next = packet.sequence

    def _release_in_order(self) -> list[RtpPacket]:
        released: list[RtpPacket] = []
        assert self._next is not None
        while (packet := self._pending.pop(self._next, None)) is not None:
            released.append(packet)
            self._next = (self._next + 1) & 0xFFFF
        self.stats.released += len(released)
        return released

    def _skip_gap(self) -> list[RtpPacket]:
        assert self._next is not None
        nearest = min(self._pending, key=lambda seq: sequence_delta(seq, self._next or 0))
        self.stats.lost += sequence_delta(nearest, self._next)
        self._next = nearest
        return self._release_in_order()
