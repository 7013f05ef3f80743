"""Runs blocking model work on threads of its own, so the event loop (and the 20 ms media clock) never waits.

Each loaded model gets one `ModelWorker`: a small thread pool that serialises access to a model
that is not thread-safe (llama.cpp) or bounds how many decodes run at once (Whisper), shared by
every call. Streaming results (LLM tokens, TTS audio) cross back to the loop through a queue,
and closing the async iterator tells the producing thread to stop at its next step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class ModelWorker:
    def __init__(self, name: str, threads: int = 1) -> None:
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"model-{name}")

    async def run(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function)

    async def stream(self, produce: Callable[[threading.Event], Iterator[T]]) -> AsyncGenerator[T, None]:
        """Iterate a blocking generator on the worker; `produce` must stop when the event is set."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def pump() -> None:
            try:
                for item in produce(cancel):
                    if cancel.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting side
                loop.call_soon_threadsafe(queue.put_nowait, _Failure(error))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        job = loop.run_in_executor(self._pool, pump)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            cancel.set()
            job.add_done_callback(_consume_outcome)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _consume_outcome(job: asyncio.Future[None]) -> None:
    """Errors already went through the queue; this only keeps asyncio from warning about them."""
    if not job.cancelled():
        job.exception()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
