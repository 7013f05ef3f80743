"""Runs blocking model work on threads of its own, so the event loop (and the 20 ms media clock) never waits.

Each loaded model gets one `ModelWorker`: a small thread pool that serialises access to a model
that is not thread-safe (llama.cpp) or bounds how many decodes run at once (Whisper), shared by
every call. Streaming results (LLM tokens, TTS audio) cross back to the loop through a queue,
and closing the async iterator tells the producing thread to stop at its next step.

A job that never returns (a wedged model) cannot be killed in Python, but it need not take the
model down with it: `state()` shows the stall, and `restart()` gives the worker a fresh pool so
later jobs run while the stuck thread is left to finish (or not) on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
_DONE = object()
# A job running longer than this is stuck: a Whisper decode or a Piper sentence takes well
# under a second, a 20 s utterance a few seconds.
STALL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What /health and /metrics say about one model thread (or pool)."""

    name: str
    alive: bool
    busy_seconds: float  # how long the oldest running job has run (0: idle)
    stalled: bool
    jobs: int
    failures: int
    restarts: int
    queued: int = 0  # jobs handed in and not started yet (LLM: generations open on the thread)
    job_seconds: float = 0.0  # time spent in finished jobs: with `jobs`, the mean job time

    @property
    def healthy(self) -> bool:
        return self.alive and not self.stalled


class Supervised(Protocol):
    """A model thread the service watches: restarted when it dies or stalls."""

    name: str

    def state(self) -> WorkerState: ...

    def restart(self) -> None: ...


class ModelWorker:
    def __init__(self, name: str, threads: int = 1, stall_seconds: float = STALL_SECONDS) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self._threads = threads
        self._pool = self._new_pool()
        self._running: dict[int, float] = {}  # job number -> when it started (monotonic)
        self._waiting: set[int] = set()  # job numbers submitted, not started, not cancelled
        self._numbers = itertools.count()
        self._counting = threading.Lock()  # the pool may have several threads finishing at once
        self.jobs = 0
        self.failures = 0
        self.restarts = 0
        self.job_seconds = 0.0
        self._closed = False

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix=f"model-{self.name}")

    def _submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        """Hand a job to the pool, counted as waiting until a thread takes it (or it is cancelled)."""
        number = next(self._numbers)

        def job() -> T:
            self._waiting.discard(number)
            started = self._running[number] = time.monotonic()
            failed = False
            try:
                return function()
            except BaseException:
                failed = True
                raise
            finally:
                self._running.pop(number, None)
                with self._counting:
                    self.jobs += 1
                    self.failures += int(failed)
                    self.job_seconds += time.monotonic() - started

        self._waiting.add(number)
        try:
            future = self._pool.submit(job)
        except RuntimeError:  # the worker was closed: nothing waits
            self._waiting.discard(number)
            raise
        future.add_done_callback(lambda _: self._waiting.discard(number))
        return asyncio.wrap_future(future)

    async def run(self, function: Callable[[], T]) -> T:
        return await self._submit(function)

    def submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        """Queue the job now; awaiting the future (through asyncio.shield, if the job must happen
        even when the wait is cancelled) gives its result."""
        return self._submit(function)

    def state(self) -> WorkerState:
        started = list(self._running.values())
        busy = time.monotonic() - min(started) if started else 0.0
        return WorkerState(
            self.name,
            not self._closed,
            busy,
            busy > self.stall_seconds,
            self.jobs,
            self.failures,
            self.restarts,
            len(self._waiting),
            self.job_seconds,
        )

    def restart(self) -> None:
        """A fresh pool for the jobs to come; the stuck thread keeps its job and is forgotten."""
        stuck, self._pool = self._pool, self._new_pool()
        self._running.clear()
        self.restarts += 1
        stuck.shutdown(wait=False, cancel_futures=False)
        log.error("model.worker_restarted", worker=self.name, restarts=self.restarts)

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
                with self._counting:
                    self.failures += 1
                loop.call_soon_threadsafe(queue.put_nowait, _Failure(error))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        job = self._submit(pump)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            cancel.set()
            job.add_done_callback(_consume_outcome)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _consume_outcome(job: asyncio.Future[None]) -> None:
    """Errors already went through the queue; this only keeps asyncio from warning about them."""
    if not job.cancelled():
        job.exception()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
