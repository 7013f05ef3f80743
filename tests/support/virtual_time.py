"""An event loop whose clock jumps over idle time, so a 6 s simulated call runs in a fraction of a second.

The simulated-call tests used to pace 20 ms frames against the wall clock: 118 s of the unit run's
126 s (Dec 2026), and timing that shifted with the machine's load. On `VirtualTimeLoop` time stands still
while anything can run and jumps straight to the next timer once nothing can, so every
`asyncio.sleep`, `asyncio.timeout` and `wait_for` deadline (model deadlines, frame pacing, the
watchdog) fires at exactly its virtual instant, whatever the load.

Model work runs on threads (`ModelWorker`, `asyncio.to_thread`). While the loop waits on one, the
clock stays put and the loop waits for real: a scripted model's work takes no virtual time, and a
deadline can never fire before a result that was on its way. A thread busy for longer than
`WEDGED_AFTER_SECONDS` of real time is taken to be wedged (the stalled-model tests) and no longer
holds the clock, so the deadline that guards against it can fire.

The conversation reads the running loop's clock for its own marks (turn latencies, echo timing,
idle and call-length limits), so those follow the virtual clock by themselves. While this loop
runs, `time.monotonic()` reads the virtual clock too, for code that still calls it directly
(the model workers' job timing) and so the two clocks never disagree.

Only for tests without real I/O: a socket read is not something the loop knows to wait for, and
the clock would jump past its timeout.
"""

from __future__ import annotations

import asyncio
import asyncio.futures
import concurrent.futures
import contextlib
import selectors
import time
from collections.abc import Iterator
from typing import Any

# Longer than any scripted model's work (well under 50 ms, even on a loaded machine); shorter than
# the stall tests care to wait.
WEDGED_AFTER_SECONDS = 1.0
# How often the loop looks again at a thread that has not called back yet.
_POLL_SECONDS = 0.02

_real_monotonic = time.monotonic
_real_wrap_future = asyncio.futures.wrap_future


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop with a virtual `time()`; see the module docstring for the rules."""

    def __init__(self) -> None:
        self._now = _real_monotonic()
        self._threads: dict[asyncio.Future[Any], float] = {}  # awaited thread result -> real start
        super().__init__(_IdleSkippingSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def waiting_on_threads(self) -> bool:
        """True while a thread the loop awaits is working and has not yet been given up as wedged."""
        now = _real_monotonic()
        for future in [future for future in self._threads if future.done()]:
            del self._threads[future]
        return any(now - started < WEDGED_AFTER_SECONDS for started in self._threads.values())

    def run_forever(self) -> None:
        with self._virtual_process_clock():
            super().run_forever()

    @contextlib.contextmanager
    def _virtual_process_clock(self) -> Iterator[None]:
        """While the loop runs: `time.monotonic()` reads the virtual clock, and thread results are tracked."""

        def wrap_future(future: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
            wrapped = _real_wrap_future(future, loop=loop)
            if isinstance(future, concurrent.futures.Future) and wrapped.get_loop() is self:
                self._threads[wrapped] = _real_monotonic()
            return wrapped

        # asyncio.to_thread / run_in_executor look up asyncio.futures.wrap_future; ModelWorker asyncio.wrap_future.
        saved = (time.monotonic, asyncio.wrap_future, asyncio.futures.wrap_future)
        time.monotonic = self.time
        asyncio.wrap_future = asyncio.futures.wrap_future = wrap_future
        try:
            yield
        finally:
            time.monotonic, asyncio.wrap_future, asyncio.futures.wrap_future = saved


class _IdleSkippingSelector(selectors.DefaultSelector):
    """Where the loop would block until its next timer, move the clock to that timer instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        while self._loop.waiting_on_threads():
            ready = super().select(_POLL_SECONDS)  # a thread's call_soon_threadsafe wakes this at once
            if ready:
                return ready
        if timeout is None:
            return super().select(None)  # no timer at all: only another thread can wake the loop
        self._loop.advance(timeout)
        return []
