from bridge.media.jitter import JitterBuffer
from bridge.media.rtp import RtpPacket


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, seq * 160, ssrc, bytes([seq & 0xFF]))


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence for p in packets]


def test_in_order_packets_pass_without_delay() -> None:
    jb = JitterBuffer(3)
    assert [seqs(jb.push(pkt(n))) for n in range(10, 14)] == [[10], [11], [12], [13]]


def test_reordered_packet_is_put_back_in_place() -> None:
    jb = JitterBuffer(3)
    jb.push(pkt(1))
    assert jb.push(pkt(3)) == []
    assert seqs(jb.push(pkt(2))) == [2, 3]
    assert jb.stats.lost == 0


def test_gap_is_declared_lost_once_depth_packets_wait() -> None:
    jb = JitterBuffer(3)
    jb.push(pkt(1))
    assert jb.push(pkt(3)) == [] and jb.push(pkt(4)) == []
    assert seqs(jb.push(pkt(5))) == [3, 4, 5]
    assert jb.stats.lost == 1
    assert jb.push(pkt(2)) == [] and jb.stats.late == 1


def test_duplicates_are_dropped() -> None:
    jb = JitterBuffer(3)
    jb.push(pkt(1))
    jb.push(pkt(3))
    assert jb.push(pkt(3)) == []
    assert jb.stats.duplicate == 1


def test_sequence_wrap_is_continuous() -> None:
    jb = JitterBuffer(3)
    out = [s for n in (65534, 65535, 65536, 65537) for s in seqs(jb.push(pkt(n)))]
    assert out == [65534, 65535, 0, 1]
    assert jb.stats.lost == 0


def test_new_ssrc_or_big_jump_resyncs() -> None:
    jb = JitterBuffer(3)
    jb.push(pkt(1))
    assert seqs(jb.push(pkt(500, ssrc=2))) == [500]
    assert seqs(jb.push(pkt(30000, ssrc=2))) == [30000]
    assert jb.stats.resyncs == 2
