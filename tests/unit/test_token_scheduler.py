"""Several generations on one thread: new work first, paused work skipped, each on its own context."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from bridge.speech.token_scheduler import SchedulerStalled, TokenScheduler


class Context:
    """Stands in for a llama.cpp context: records which generation ran on it, step by step."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def generate(self, label: str, tokens: int, delay: float = 0.002) -> Iterator[str]:
        for index in range(tokens):
            time.sleep(delay)
            self.log.append(label)
            yield f"{label}{index}"


async def collect(scheduler: TokenScheduler, label: str, tokens: int, history: list[str], **kw: object) -> list[str]:
    return [
        token
        async for token in scheduler.stream(
            lambda context: context.generate(label, tokens),
            history,
            **kw,  # type: ignore[arg-type]
        )
    ]


async def test_a_new_generation_overtakes_one_that_is_far_along() -> None:
    log: list[str] = []
    scheduler = TokenScheduler([Context("a", log), Context("b", log)])
    long = asyncio.create_task(collect(scheduler, "long", 200, ["call-1"]))
    await asyncio.sleep(0.1)  # let the first generation get well ahead (its steps are 2 ms)
    short = await collect(scheduler, "new", 5, ["call-2"])
    assert short == [f"new{i}" for i in range(5)]
    started = log.index("new")
    assert log[started : started + 5] == ["new"] * 5, "the new generation should run uninterrupted"
    assert len(await long) == 200
    scheduler.close()


async def test_a_paused_generation_keeps_its_slot_and_lets_others_run() -> None:
    log: list[str] = []
    scheduler = TokenScheduler([Context("a", log), Context("b", log)])
    go = threading.Event()
    paused = asyncio.create_task(collect(scheduler, "paused", 10, ["call-1"], go=go))
    other = await collect(scheduler, "other", 10, ["call-2"])
    assert len(other) == 10 and "paused" not in log
    go.set()
    assert len(await paused) == 10
    scheduler.close()


async def test_a_conversation_goes_back_to_the_context_that_holds_its_history() -> None:
    used: list[str] = []
    contexts = [Context("a", []), Context("b", [])]
    scheduler = TokenScheduler(contexts)

    async def run(history: list[str]) -> None:
        def start(context: Context) -> Iterator[str]:
            used.append(context.name)
            return context.generate("x", 1)

        async for _ in scheduler.stream(start, history):  # type: ignore[arg-type]
            pass

    await run(["system", "call-1 hello"])
    await run(["system", "call-2 hi"])
    await run(["system", "call-1 hello", "answer", "call-1 more"])
    await run(["system", "call-2 hi", "answer", "call-2 more"])
    assert used[2] == used[0] and used[3] == used[1] and used[0] != used[1]
    scheduler.close()


async def test_closing_the_stream_frees_the_context() -> None:
    log: list[str] = []
    scheduler = TokenScheduler([Context("only", log)])
    stream = scheduler.stream(lambda context: context.generate("first", 1000), ["a"])  # type: ignore[arg-type]
    async with contextlib.aclosing(stream) as tokens:
        async for token in tokens:
            if token == "first3":
                break
    assert await asyncio.wait_for(collect(scheduler, "second", 3, ["b"]), 2) == ["second0", "second1", "second2"]
    assert log.count("first") < 20
    scheduler.close()


async def test_errors_reach_the_awaiting_side() -> None:
    def broken(context: object) -> Iterator[str]:
        yield "ok"
        raise RuntimeError("decode failed")

    scheduler = TokenScheduler([object()])
    received = []
    with pytest.raises(RuntimeError, match="decode failed"):
        async for token in scheduler.stream(broken, []):
            received.append(token)
    assert received == ["ok"]
    scheduler.close()


async def test_a_job_whose_caller_is_gone_does_not_stop_the_thread() -> None:
    """A call that ended (its event loop closed) mid-generation: the next calls are still served."""
    log: list[str] = []
    scheduler = TokenScheduler([Context("a", log)])

    async def first_token() -> str:
        stream = scheduler.stream(lambda context: context.generate("gone", 50, delay=0.01), [])
        return await anext(stream)  # never closed: as if the call's loop died mid-answer

    other_loop = asyncio.new_event_loop()
    assert await asyncio.to_thread(other_loop.run_until_complete, first_token()) == "gone0"
    other_loop.close()

    async def after_that() -> list[str]:
        return await collect(scheduler, "next", 3, [])

    assert await asyncio.wait_for(after_that(), 5) == ["next0", "next1", "next2"]
    scheduler.close()


async def test_a_job_that_raises_inside_the_scheduler_is_dropped_and_the_thread_goes_on() -> None:
    log: list[str] = []
    scheduler = TokenScheduler([Context("a", log)])

    def broken(context: Context) -> Iterator[str]:
        raise ValueError("bad job")
        yield ""  # pragma: no cover

    with pytest.raises(ValueError, match="bad job"):
        async for _ in scheduler.stream(broken, []):
            pass
    assert await asyncio.wait_for(collect(scheduler, "ok", 2, []), 5) == ["ok0", "ok1"]
    scheduler.close()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_step_that_never_returns_is_reported_and_a_restart_serves_the_next_caller() -> None:
    scheduler = TokenScheduler([Context("a", []), Context("b", [])], stall_seconds=0.2)
    release = threading.Event()

    def wedged(context: Context) -> Iterator[str]:
        yield "first"
        release.wait(10)  # llama.cpp stuck inside a decode
        yield "never seen"

    stuck = asyncio.create_task(asyncio.wait_for(_tokens(scheduler.stream(wedged, ["call-1"])), 10))
    await until(lambda: scheduler.state().stalled)
    assert not scheduler.state().healthy
    scheduler.restart()
    with pytest.raises(SchedulerStalled, match="stuck"):
        await stuck
    assert len(scheduler.slots) == 1  # the stuck context is set aside, not shared
    assert await collect(scheduler, "next", 3, ["call-2"]) == ["next0", "next1", "next2"]
    assert scheduler.state().healthy and scheduler.state().restarts == 1
    release.set()
    await until(lambda: len(scheduler.slots) == 2)  # the old thread came back: its context too
    scheduler.close()


class ThreadKiller(BaseException):
    """Escapes the scheduler's per-job guard (as a C-level crash of the thread would)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_thread_is_seen_and_restarted() -> None:
    scheduler = TokenScheduler([Context("a", [])])

    def fatal(context: Context) -> Iterator[str]:
        raise ThreadKiller
        yield ""

    dying = asyncio.create_task(_tokens(scheduler.stream(fatal, ["call-1"])))
    await until(lambda: not scheduler.state().alive)
    scheduler.restart()
    with pytest.raises(SchedulerStalled):
        await dying  # its caller is told, not left waiting
    assert await collect(scheduler, "after", 2, ["call-2"]) == ["after0", "after1"]
    scheduler.close()


async def _tokens(stream: AsyncIterator[str]) -> list[str]:
    return [token async for token in stream]


async def test_open_generations_and_time_spent_in_steps_are_counted() -> None:
    scheduler = TokenScheduler([Context("a", [])])
    release = threading.Event()

    def slow(context: Context) -> Iterator[str]:
        release.wait(5)
        time.sleep(0.05)
        yield "slow"

    first = asyncio.create_task(_tokens(scheduler.stream(slow, ["call-1"])))
    second = asyncio.create_task(collect(scheduler, "next", 2, ["call-2"]))
    await until(lambda: scheduler.state().queued == 2)  # one in a step, one waiting for the context
    release.set()
    assert await first == ["slow"] and await second == ["next0", "next1"]
    state = scheduler.state()
    assert state.queued == 0
    assert 0.05 <= state.job_seconds < 5
    scheduler.close()
