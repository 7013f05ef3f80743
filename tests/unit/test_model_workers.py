"""Model work on threads: results stream back to the loop, cancellation reaches the thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from bridge.speech.workers import ModelWorker


async def test_run_returns_the_result_without_blocking_the_loop() -> None:
    worker = ModelWorker("test")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert await worker.run(lambda: time.sleep(0.2) or 42) == 42
    task.cancel()
    assert ticks >= 10
    worker.close()


async def test_closing_the_stream_stops_the_producer() -> None:
    worker = ModelWorker("test")
    produced: list[int] = []

    def produce(cancel: threading.Event) -> Iterator[int]:
        for index in range(1000):
            if cancel.is_set():
                return
            produced.append(index)
            time.sleep(0.005)
            yield index

    async with contextlib.aclosing(worker.stream(produce)) as items:
        async for item in items:
            if item == 3:
                break
    await asyncio.sleep(0.2)
    count = len(produced)
    await asyncio.sleep(0.2)
    assert len(produced) == count < 20
    worker.close()


async def test_errors_in_the_thread_reach_the_caller() -> None:
    worker = ModelWorker("test")

    def produce(cancel: threading.Event) -> Iterator[str]:
        yield "a"
        raise RuntimeError("model blew up")

    received = []
    with pytest.raises(RuntimeError, match="model blew up"):
        async for item in worker.stream(produce):
            received.append(item)
    assert received == ["a"]
    worker.close()


async def test_a_job_that_raises_is_counted_and_the_next_one_runs() -> None:
    worker = ModelWorker("test")

    def broken() -> int:
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError):
        await worker.run(broken)
    assert await worker.run(lambda: 7) == 7
    state = worker.state()
    assert state.failures == 1 and state.jobs == 2 and state.healthy
    worker.close()


async def test_a_stuck_job_shows_as_stalled_and_a_restart_lets_later_jobs_run() -> None:
    worker = ModelWorker("test", stall_seconds=0.2)
    release = threading.Event()
    stuck = asyncio.ensure_future(worker.run(lambda: release.wait(10)))
    deadline = time.monotonic() + 5
    while not worker.state().stalled:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert worker.state().busy_seconds >= 0.2 and not worker.state().healthy
    worker.restart()
    assert await asyncio.wait_for(worker.run(lambda: "fresh thread"), 2) == "fresh thread"
    assert worker.state().healthy and worker.state().restarts == 1
    release.set()
    assert await stuck is True  # the old thread finished on its own, harmlessly
    worker.close()


async def test_jobs_waiting_for_the_thread_and_time_spent_in_jobs_are_counted() -> None:
    worker = ModelWorker("test")
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        time.sleep(0.05)
        return "slow"

    first = asyncio.ensure_future(worker.run(slow))
    second = asyncio.ensure_future(worker.run(lambda: "second"))
    given_up = asyncio.ensure_future(worker.run(lambda: "never wanted"))
    deadline = time.monotonic() + 5
    while worker.state().queued != 2:  # the first runs, two wait behind it
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    given_up.cancel()  # its caller hung up: it never runs and no longer waits
    with contextlib.suppress(asyncio.CancelledError):
        await given_up
    assert worker.state().queued == 1
    release.set()
    assert (await first, await second) == ("slow", "second")
    state = worker.state()
    assert state.queued == 0 and state.jobs == 2
    assert 0.05 <= state.job_seconds < 5
    worker.close()
