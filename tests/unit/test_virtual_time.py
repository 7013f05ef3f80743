"""The virtual clock the simulated-call tests run on: idle time is skipped, thread work is waited for."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bridge.speech.workers import ModelWorker
from tests.support import virtual_time
from tests.support.virtual_time import VirtualTimeLoop

pytestmark = pytest.mark.virtual_time


async def test_sleeping_takes_virtual_time_only_and_the_process_clock_follows() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    started, real_started = loop.time(), time.perf_counter()
    await asyncio.sleep(60)
    assert loop.time() - started == pytest.approx(60)
    assert time.monotonic() == loop.time()  # the product's own marks read the same clock
    assert time.perf_counter() - real_started < 1


async def test_deadlines_fire_at_their_virtual_instant_in_order() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    fired: list[tuple[str, float]] = []

    async def after(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        fired.append((name, round(loop.time() - started, 6)))

    await asyncio.gather(after("late", 0.5), after("early", 0.02), after("middle", 0.2))
    assert fired == [("early", 0.02), ("middle", 0.2), ("late", 0.5)]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await asyncio.Event().wait()
    assert round(loop.time() - started, 6) == 1.0


async def test_a_thread_at_work_holds_the_clock_so_no_deadline_beats_its_result() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    timer = asyncio.create_task(asyncio.sleep(0.001))
    await asyncio.to_thread(time.sleep, 0.05)  # 50 ms of real work
    assert loop.time() == started and not timer.done()

    def job() -> int:
        time.sleep(0.05)
        return 42

    worker = ModelWorker("virtual-time")
    try:
        async with asyncio.timeout(0.01):  # far shorter than the job, in real time
            assert await worker.run(job) == 42
    finally:
        worker.close()
    await timer


async def test_a_wedged_thread_lets_the_clock_go_on_so_its_deadline_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(virtual_time, "WEDGED_AFTER_SECONDS", 0.1)
    loop = asyncio.get_running_loop()
    started, real_started = loop.time(), time.perf_counter()
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.to_thread(release.wait, 30)
    finally:
        release.set()
    assert loop.time() - started == pytest.approx(5)
    assert 0.1 <= time.perf_counter() - real_started < 1  # held for the wedge allowance, then skipped


def test_the_process_clock_is_real_again_once_the_loop_stops() -> None:
    real = (time.monotonic, asyncio.wrap_future, asyncio.futures.wrap_future)
    loop = VirtualTimeLoop()
    try:
        loop.run_until_complete(asyncio.sleep(3600))
        assert (time.monotonic, asyncio.wrap_future, asyncio.futures.wrap_future) == real
        assert loop.time() - time.monotonic() > 3000
    finally:
        loop.close()
