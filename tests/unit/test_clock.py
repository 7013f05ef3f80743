"""The media clock: one 20 ms timer for every outbound stream, on the loop's time (virtual here)."""

import asyncio

import pytest

from bridge.media.clock import MediaClock

pytestmark = pytest.mark.virtual_time


class CountingSink:
    def __init__(self, target: int) -> None:
        self.ticks = 0
        self.target = target
        self.done = asyncio.Event()

    def on_tick(self) -> None:
        self.ticks += 1
        if self.ticks >= self.target:
            self.done.set()


class BrokenSink:
    def on_tick(self) -> None:
        raise RuntimeError("boom")


def test_a_failing_sink_is_dropped_and_others_keep_ticking() -> None:
    clock = MediaClock()
    good = CountingSink(99)
    clock.register(BrokenSink())
    clock.register(good)
    clock.tick()
    clock.tick()
    assert good.ticks == 2
    assert clock.sink_count == 1


async def test_running_clock_drives_registered_sinks() -> None:
    clock = MediaClock()
    sink = CountingSink(5)
    clock.register(sink)
    started = asyncio.get_running_loop().time()
    clock.start()
    try:
        await asyncio.wait_for(sink.done.wait(), 5)
    finally:
        await clock.stop()
    assert asyncio.get_running_loop().time() - started == pytest.approx(5 * 0.02)
    assert clock.ticks == 5 and clock.slips == 0
    assert clock.lateness.values() == [0.0] * 5  # every tick at its deadline


async def test_stall_re_anchors_instead_of_bursting() -> None:
    now = [0.0]
    clock = MediaClock(time_source=lambda: now[0])
    sink = CountingSink(1)
    clock.register(sink)
    clock.start()
    await asyncio.sleep(0)  # the clock anchors its first deadline at t=0
    now[0] = 1.0  # a one-second stall: 50 ticks late
    await asyncio.wait_for(sink.done.wait(), 5)
    await clock.stop()
    assert clock.slips == 1
    assert sink.ticks < 10
