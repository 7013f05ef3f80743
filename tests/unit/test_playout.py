import asyncio

from bridge.media.playout import PlayoutQueue


def test_pcm_of_any_length_becomes_whole_frames() -> None:
    queue = PlayoutQueue(frame_bytes=4)
    queue.put(b"abcdef")
    assert queue.pop() == b"abcd"
    assert queue.pop() is None
    queue.put(b"gh")
    assert queue.pop() == b"efgh"


def test_end_segment_pads_the_tail_with_silence() -> None:
    queue = PlayoutQueue(frame_bytes=4)
    queue.put(b"ab")
    queue.end_segment()
    assert queue.pop() == b"ab\x00\x00"


def test_clear_drops_everything_at_once() -> None:
    queue = PlayoutQueue(frame_bytes=2)
    queue.put(b"x" * 11)
    assert queue.clear() == 5
    assert queue.pop() is None
    queue.put(b"y")
    assert queue.pop() is None, "the partial frame was cleared too"


def test_overflow_drops_oldest() -> None:
    queue = PlayoutQueue(frame_bytes=1, max_frames=3)
    queue.put(b"abcde")
    assert queue.dropped_overflow == 2
    assert queue.pop() == b"c"


async def test_wait_for_playout_returns_when_drained() -> None:
    queue = PlayoutQueue(frame_bytes=1)
    queue.put(b"ab")
    waiter = asyncio.create_task(queue.wait_for_playout())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.pop()
    queue.pop()
    await asyncio.wait_for(waiter, 1)
