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
