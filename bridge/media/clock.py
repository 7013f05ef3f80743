"""The one 20 ms clock that paces every outbound RTP stream in the process.

A single timer serves all calls: each tick it asks every registered sink to send one frame.
Deadlines are absolute (start + n * 20 ms), so scheduling jitter never accumulates into drift,
and audio goes out at the wire rate no matter how fast or slow the producer is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import structlog

from bridge.media.codecs import FRAME_MS
from bridge.media.stats import SampleWindow

log = structlog.get_logger(__name__)

FRAME_SECONDS = FRAME_MS / 1000
# After a stall longer than this, the clock re-anchors instead of bursting the backlog out.
_MAX_CATCH_UP_TICKS = 5


class ClockSink(Protocol):
    def on_tick(self) -> None: ...


class MediaClock:
    def __init__(self, time_source: Callable[[], float] | None = None) -> None:
        self._sinks: dict[int, ClockSink] = {}
        self._time = time_source
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.slips = 0
        self.lateness = SampleWindow()

    def register(self, sink: ClockSink) -> None:
        self._sinks[id(sink)] = sink

    def unregister(self, sink: ClockSink) -> None:
        self._sinks.pop(id(sink), None)

    @property
    def sink_count(self) -> int:
        return len(self._sinks)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def tick(self) -> None:
        """Drive every sink once; a failing sink is unregistered so it cannot stall the others."""
        self.ticks += 1
        for key, sink in list(self._sinks.items()):
            try:
                sink.on_tick()
            except Exception:
                # One broken call must not stop the clock for all; say which one went quiet.
                log.exception("media.sink_failed", sink=type(sink).__name__)
                self._sinks.pop(key, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        now = self._time or loop.time
        deadline = now() + FRAME_SECONDS
        while True:
            delay = deadline - now()
            if delay > 0:
                await asyncio.sleep(delay)
            late = now() - deadline
            self.lateness.add(max(late, 0.0))
            if late > _MAX_CATCH_UP_TICKS * FRAME_SECONDS:
                self.slips += 1
                deadline = now()
            self.tick()
            deadline += FRAME_SECONDS
