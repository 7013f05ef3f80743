"""The Stasis application: routes ARI events to the call they belong to.

Event handling is a dispatch and nothing more, so one slow or failing call can never hold up
the event stream for the others; each call runs as its own task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from bridge.app.call import CallRecord, CallSession
from bridge.ari.client import AriClient
from bridge.config import MediaConfig
from bridge.media.clock import MediaClock
from bridge.pipelines.factory import PipelineFactory
from bridge.routing.queues import QueueMonitor

log = structlog.get_logger(__name__)

_END_EVENTS = ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest")


class PendingDial(Protocol):
    """An outbound call that is ringing: it learns whether it was answered or why not."""

    persona: str

    def answered(self, call: CallSession) -> None: ...

    def failed(self, cause: int, reason: str) -> None: ...


class StasisApplication:
    def __init__(
        self,
        ari: AriClient,
        media_config: MediaConfig,
        clock: MediaClock,
        pipelines: PipelineFactory,
        default_persona: str = "default",
        queues: QueueMonitor | None = None,
        ring_seconds: int = 20,
    ) -> None:
        self.ari = ari
        self.media_config = media_config
        self.clock = clock
        self.pipelines = pipelines
        self.default_persona = default_persona
        self.queues = queues
        self.ring_seconds = ring_seconds
        self._dialling: dict[str, PendingDial] = {}
        self.record_listeners: list[Callable[[CallRecord], None]] = []
        self.calls: dict[str, CallSession] = {}
        self.finished: deque[CallRecord] = deque(maxlen=1000)
        self.call_finished = asyncio.Condition()
        self._by_channel: dict[str, CallSession] = {}
        self._media_waiters: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        channel = event.get("channel") or {}
        channel_id = channel.get("id")
        if not isinstance(channel_id, str):
            return
        if kind == "StasisStart":
            waiter = self._media_waiters.pop(channel_id, None)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(None)
            elif (dial := self._dialling.pop(channel_id, None)) is not None:
                dial.answered(self._start_call(channel, [dial.persona], direction="outbound"))
            elif channel_id not in self._by_channel:
                self._start_call(channel, event.get("args") or [])
        elif kind in _END_EVENTS and (dial := self._dialling.pop(channel_id, None)) is not None:
            dial.failed(int(event.get("cause") or 0), str(event.get("cause_txt") or kind))
        elif kind in _END_EVENTS and (call := self._by_channel.get(channel_id)) is not None:
            call.channel_gone(channel_id, kind, int(event.get("cause") or 0))
        elif kind == "ChannelDtmfReceived" and (call := self._by_channel.get(channel_id)) is not None:
            call.dtmf(channel_id, str(event.get("digit", "")))

    def expect_stasis_start(self, channel_id: str) -> asyncio.Future[None]:
        """Register interest before creating a channel, so its StasisStart cannot be missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._media_waiters[channel_id] = future
        return future

    def _tell_listeners(self, record: CallRecord) -> None:
        for listener in self.record_listeners:
            try:
                listener(record)
            except Exception:  # a listener (webhook, storage) must not take the call loop down
                log.exception("call.record_listener_failed", call=record.channel_id)

    def expect_dial(self, channel_id: str, dial: PendingDial) -> None:
        """Before originating: route the new channel's answer (or failure) to `dial`."""
        self._dialling[channel_id] = dial

    def forget_dial(self, channel_id: str) -> None:
        self._dialling.pop(channel_id, None)

    def watch_channel(self, channel_id: str, call: CallSession) -> None:
        """A further channel of a call (a transfer leg): its events go to that call."""
        self._by_channel[channel_id] = call

    def _start_call(self, channel: dict[str, Any], args: list[str], direction: str = "inbound") -> CallSession:
        persona = args[0] if args else self.default_persona
        call = CallSession(
            self.ari,
            self.media_config,
            self.clock,
            self.pipelines(persona),
            channel,
            persona,
            self.expect_stasis_start,
            watch_channel=self.watch_channel,
            queues=self.queues,
            ring_seconds=self.ring_seconds,
            direction=direction,
        )
        self.calls[call.channel_id] = call
        call.on_record_update = self._tell_listeners
        for channel_id in call.channel_ids:
            self._by_channel[channel_id] = call
        task = asyncio.get_running_loop().create_task(self._run_call(call), name=f"call-{call.channel_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    async def _run_call(self, call: CallSession) -> None:
        try:
            record = await call.run()
        except Exception as error:  # a bug in one call must not end the process or other calls
            log.exception("call.crashed", call=call.channel_id)
            record = call.record
            record.error = record.error or repr(error)
        finally:
            self.calls.pop(call.channel_id, None)
            for channel_id in (*call.channel_ids, *call.leg_ids):
                self._by_channel.pop(channel_id, None)
                self._media_waiters.pop(channel_id, None)
        self.finished.append(record)
        call.finished.set()
        self._tell_listeners(record)
        async with self.call_finished:
            self.call_finished.notify_all()

    async def shutdown(self) -> None:
        """End every call (hang up, free bridges and sockets) and wait for their tear-down."""
        for call in list(self.calls.values()):
            call.end("shutdown")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
