"""Interleaves several LLM generations token by token on one thread, newest work first.

With one llama.cpp context, a second caller's question waits for the first caller's whole answer
(measured: p95 1.4 s at two concurrent calls). Here each generation runs in a context of its own
("slot", so each call keeps its KV cache), but one thread advances them one token at a time, so
two generations never fight over the two cores (llama.cpp's threads spin) and a generation that
has produced little so far (a new question, whose first words the caller is waiting for) goes
before one that is far along (the tail of an answer that is already being spoken). A generation
whose `go` event is clear (its first clause is being synthesised) is skipped without losing its
slot.

The thread is supervised: a job whose step raises is dropped and the thread goes on; a step
that never returns (llama.cpp wedged) shows in `state()`, and `restart()` hands its caller an
error, sets its context aside and starts a new thread on the other contexts. The stuck thread
gives its context back if it ever returns.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from bridge.speech.workers import WorkerState

log = structlog.get_logger(__name__)

IDLE_POLL_SECONDS = 0.01
# One step is one token (~30 ms) or a prompt evaluation (up to ~15 s for a new persona's
# prompt on two cores with the 1.5B model): longer than this is a wedged thread.
STALL_SECONDS = 60.0
T = TypeVar("T")
_DONE = object()


@dataclass
class Slot:
    """One context (KV cache) and the conversation it last held, to route that conversation back."""

    context: Any
    history: list[Any] = field(default_factory=list)
    busy: bool = False
    last_used: int = 0


@dataclass
class _Job:
    start: Callable[[Any], Iterator[Any]]
    history: list[Any]
    emit: Callable[[object], object]
    go: threading.Event | None
    order: int
    background: bool
    pin: Slot | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    slot: Slot | None = None
    steps: Iterator[Any] | None = None
    produced: int = 0

    def runnable(self) -> bool:
        return self.cancel.is_set() or self.go is None or self.go.is_set()

    def priority(self) -> tuple[int, int, int]:
        return (1 if self.background else 0, self.produced, self.order)


class SchedulerStalled(RuntimeError):
    """The generation's thread was stuck in one step and was replaced."""


class TokenScheduler:
    def __init__(self, contexts: list[Any], name: str = "llm", stall_seconds: float = STALL_SECONDS) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self.slots = [Slot(context) for context in contexts]
        self._set_aside: list[Slot] = []
        self._jobs: list[_Job] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._generation = 0
        self._current: tuple[_Job, float] | None = None  # the job in a step, and since when
        self.steps = 0
        self.step_seconds = 0.0
        self.failures = 0
        self.restarts = 0
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(self._generation,), name=f"model-{self.name}", daemon=True)
        thread.start()
        return thread

    def state(self) -> WorkerState:
        current = self._current
        busy = time.monotonic() - current[1] if current is not None else 0.0
        alive = self._thread.is_alive() and bool(self.slots)
        return WorkerState(
            self.name,
            alive,
            busy,
            busy > self.stall_seconds,
            self.steps,
            self.failures,
            self.restarts,
            len(self._jobs),  # generations open: each waits its turn for the one thread
            self.step_seconds,
        )

    def restart(self) -> None:
        """Replace a dead or stuck thread; the stuck job's caller gets SchedulerStalled."""
        with self._wake:
            if self._closed:
                return
            self._generation += 1
            stuck, self._current = self._current, None
            if stuck is not None:
                job = stuck[0]
                if job in self._jobs:
                    self._jobs.remove(job)
                if job.slot is not None and not self._thread.is_alive():
                    job.slot.busy, job.slot.history = False, []  # its thread is gone: free, cache unknown
                elif job.slot is not None and job.slot in self.slots:
                    self.slots.remove(job.slot)  # in use by the stuck thread: not safe to share
                    self._set_aside.append(job.slot)
            self.restarts += 1
            self._thread = self._start_thread()
            self._wake.notify_all()
        if stuck is not None:
            job.emit(SchedulerStalled(f"the language model was stuck for {time.monotonic() - stuck[1]:.0f} s"))
            job.emit(_DONE)
        log.error("model.worker_restarted", worker=self.name, restarts=self.restarts, contexts=len(self.slots))

    async def stream(
        self,
        start: Callable[[Any], Iterator[T]],
        history: list[Any],
        go: threading.Event | None = None,
        background: bool = False,
        slot: int | None = None,
    ) -> AsyncGenerator[T, None]:
        """Run `start(context)` (a token iterator) on a slot: slot number `slot`, or else the one
        that last saw the longest part of `history`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the waiting loop is closed (its call is over): nobody wants the rest
                cancel.set()

        job = _Job(
            start, history, emit, go, next(self._order), background, None if slot is None else self.slots[slot], cancel
        )
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            job.cancel.set()
            with self._wake:
                self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self, generation: int) -> None:
        while True:
            with self._wake:
                job = self._next_job()
                while job is None and not self._closed and generation == self._generation:
                    self._wake.wait(IDLE_POLL_SECONDS)
                    job = self._next_job()
                if self._closed or generation != self._generation:
                    return
                assert job is not None
                started = time.monotonic()
                self._current = (job, started)
            try:
                self._step(job)
            except Exception:  # one job's failure must never stop the thread every call needs
                self.failures += 1
                log.exception("llm.job_failed")
                self._drop(job)
            finally:
                self.steps += 1
                self.step_seconds += time.monotonic() - started
            with self._wake:
                if generation != self._generation:  # replaced while stuck in that step
                    self._give_back(job)
                    return
                self._current = None

    def _give_back(self, job: _Job) -> None:
        """A retired thread came back from its step: its context is free again (cache unknown)."""
        slot = job.slot
        if job.steps is not None:
            close = getattr(job.steps, "close", None)
            if close is not None:
                close()
        if slot is not None and slot in self._set_aside:
            self._set_aside.remove(slot)
            slot.busy, slot.history = False, []
            self.slots.append(slot)
            log.info("model.context_recovered", worker=self.name, contexts=len(self.slots))

    def _next_job(self) -> _Job | None:
        free = [slot for slot in self.slots if not slot.busy]
        candidates = [job for job in self._jobs if job.runnable() and (job.cancel.is_set() or _placeable(job, free))]
        if not candidates:
            return None
        job = min(candidates, key=_Job.priority)
        if job.slot is None and not job.cancel.is_set():
            job.slot = job.pin or max(free, key=lambda slot: _fit(slot, job.history))
            job.slot.busy = True
            job.slot.last_used = job.order + 1
        return job

    def _step(self, job: _Job) -> None:
        try:
            if job.cancel.is_set():
                raise StopIteration
            if job.steps is None:
                assert job.slot is not None
                job.slot.history = list(job.history)
                job.steps = job.start(job.slot.context)
            job.emit(next(job.steps))
            job.produced += 1
        except StopIteration:
            self._finish(job, _DONE)
        except Exception as error:  # noqa: BLE001 - handed to the awaiting side
            self.failures += 1
            self._finish(job, error)

    def _drop(self, job: _Job) -> None:
        with self._wake:
            if job in self._jobs:
                self._jobs.remove(job)
            if job.slot is not None:
                job.slot.busy = False

    def _finish(self, job: _Job, outcome: object) -> None:
        if job.steps is not None:
            close = getattr(job.steps, "close", None)
            if close is not None:
                close()
        with self._wake:
            if job not in self._jobs:
                return  # taken away by restart(): its caller has been told already
            self._jobs.remove(job)
            if job.slot is not None:
                job.slot.busy = False
        if isinstance(outcome, BaseException):
            job.emit(outcome)
        job.emit(_DONE)


def _placeable(job: _Job, free: list[Slot]) -> bool:
    return job.slot is not None or (job.pin in free if job.pin is not None else bool(free))


def _fit(slot: Slot, history: list[Any]) -> tuple[int, int]:
    """Reuse the longest cached prefix, but not at the price of evicting another conversation's
    state for no gain; between equals take the least recently used context."""
    shared = 0
    for cached, wanted in zip(slot.history, history, strict=False):
        if cached != wanted:
            break
        shared += 1
    evicts = len(slot.history) > shared
    return shared - evicts, -slot.last_used
