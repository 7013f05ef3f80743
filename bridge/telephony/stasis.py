"""The Stasis application: routes ARI events to the call they belong to.

Event handling is a dispatch and nothing more, so one slow or failing call can never hold up
the event stream for the others; each call runs as its own task. What happens after a
reconnection is `telephony.reconcile`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import structlog

from bridge.ari.client import AriClient, AriError
from bridge.background import BackgroundTasks
from bridge.config import MediaConfig
from bridge.dialplan import FAILED, DeclineResult, DialplanApps, listed_apps
from bridge.media.clock import MediaClock
from bridge.pipelines.base import PipelineFactory
from bridge.records import CallRecord
from bridge.routing.queues import QueueMonitor
from bridge.telephony.call import CallSession
from bridge.telephony.ending import hand_over_to_dialplan
from bridge.telephony.reconcile import Reconciler
from bridge.telephony.record import CLIENT_SESSION

log = structlog.get_logger(__name__)

_END_EVENTS = ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest")


class PendingDial(Protocol):
    """An outbound call that is ringing: it learns whether it was answered or why not."""

    persona: str

    def answered(self, call: CallSession) -> None: ...

    def failed(self, cause: int, reason: str) -> None: ...


@dataclass(frozen=True)
class StasisArgs:
    """What the dialplan passed to Stasis() (bridge.dialplan), read once as the call arrives, so the
    persona chosen, the record of a declined call and the call session all go by one reading."""

    persona: str = ""  # asked for by name ("": the called number's, else the default)
    called: str = ""  # the number the caller dialled
    session: str = ""  # the web phone's session id (X-Bridge-Session), unchecked

    @classmethod
    def parse(cls, args: list[str]) -> StasisArgs:
        padded = [*args[:3], "", "", ""]
        return cls(*(str(arg).strip() for arg in padded[:3]))


@dataclass(frozen=True)
class CallSettings:
    """What a new call is started with; a config reload may change it between calls.

    The app reads it once as each call arrives and the call keeps what it was given, so a
    reload never changes a conversation half-way through.
    """

    pipelines: PipelineFactory
    default_persona: str = "default"
    # The configured persona names: a call asking for another gets the default (None: take any).
    personas: frozenset[str] | None = None
    personas_by_number: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ring_seconds: int = 20

    def wanted_persona(self, asked: str, called: str) -> str:
        """The one the dialplan asked for, else the called number's, else the default."""
        return asked or self.personas_by_number.get(called, self.default_persona)


class StasisApplication:
    def __init__(
        self,
        ari: AriClient,
        media_config: MediaConfig,
        clock: MediaClock,
        settings: Callable[[], CallSettings],
        queues: QueueMonitor | None = None,
        record_calls: bool = False,
        max_calls: int = 1000,
        node: str = "",
    ) -> None:
        """`settings`: read afresh for each new call (the service's reloadable snapshot)."""
        self.ari = ari
        self.media_config = media_config
        self.clock = clock
        self._settings = settings
        self.queues = queues
        self.record_calls = record_calls
        # Stamped on every call record (storage.node): which node of a cluster took the call.
        self.node = node
        # Admission: at most max_calls at once, and none while draining for shutdown.
        self.max_calls = max_calls
        self.accepting = True
        self.declined: dict[str, int] = {"at_capacity": 0, "shutting_down": 0}
        # What a declined caller takes back to the dialplan: `declined` (the next bridge) once the
        # dialplan is known to list several (bridge.dialplan); `failed` (the fallback queue) before.
        self.decline_result: DeclineResult = FAILED
        self._dialling: dict[str, PendingDial] = {}
        self.record_listeners: list[Callable[[CallRecord], None]] = []
        self.calls: dict[str, CallSession] = {}
        self.finished: deque[CallRecord] = deque(maxlen=1000)
        self.call_finished = asyncio.Condition()
        self._by_channel: dict[str, CallSession] = {}
        self._media_waiters: dict[str, asyncio.Future[None]] = {}
        self._tasks: BackgroundTasks[None] = BackgroundTasks()
        self._reconciler = Reconciler(ari, self.calls, self._owns)

    async def handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ChannelUserevent" and self._reconciler.barrier_arrived(str(event.get("eventname"))):
            return
        if kind == "ApplicationReplaced":
            log.error(
                "ari.app_taken_over",
                app=self.ari.app,
                hint="another connection subscribed with the same ari.app and now gets its calls; "
                "give each bridge its own ari.app and list them all in the dialplan's BRIDGE_APPS",
            )
            return
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
                dial.answered(self._start_call(channel, StasisArgs.parse([dial.persona]), direction="outbound"))
            elif channel_id not in self._by_channel:
                args = StasisArgs.parse(event.get("args") or [])
                if (refusal := self._refusal()) is not None:
                    self._tasks.start(self._decline(channel, args, refusal), f"decline-{channel_id}")
                else:
                    self._start_call(channel, args)
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

    def follow_dialplan(self, apps_global: str) -> DialplanApps:
        """Asterisk's BRIDGE_APPS, read on connect, decides how declined callers leave: to the next
        bridge (`declined`) in a dialplan that lists them, else to the fallback queue (`failed`)."""
        apps = DialplanApps(self.ari.app, listed_apps(apps_global))
        self.decline_result = apps.decline_result
        return apps

    def _refusal(self) -> str | None:
        """Why a new inbound call cannot be taken now, or None when it can."""
        if not self.accepting:
            return "shutting_down"
        if len(self.calls) >= self.max_calls:
            return "at_capacity"
        return None

    async def _decline(self, channel: dict[str, Any], args: StasisArgs, reason: str) -> None:
        """Straight back to the dialplan before any media or model work: it offers the call to the
        next bridge (BRIDGE_RESULT=declined), and after the last to its fallback queue.

        The caller reaches an agent with room, or a person, instead of one that cannot keep up;
        the call still gets a record, so refusals show in the history and the metrics.
        """
        self.declined[reason] += 1
        caller = channel.get("caller") or {}
        persona = self._persona_for(str(channel["id"]), args, self._settings())
        record = CallRecord(str(channel["id"]), str(caller.get("number", "")), persona, args.called)
        record.end_reason = f"declined:{reason}"
        record.node = self.node
        log.warning("call.declined", call=record.channel_id, reason=reason, calls=len(self.calls), limit=self.max_calls)
        try:
            await hand_over_to_dialplan(self.ari, record.channel_id, self.decline_result)
        except AriError as error:
            record.error = str(error)
            log.warning("call.decline_failed", call=record.channel_id, error=str(error))
        record.ended_at = time.time()
        self.finished.append(record)
        self._tell_listeners(record)
        async with self.call_finished:
            self.call_finished.notify_all()

    def _persona_for(self, call_id: str, args: StasisArgs, settings: CallSettings) -> str:
        """The persona the call will talk with, decided once (CallSettings.wanted_persona). An
        unknown name gets the default, and the record says so, since the pipeline is built for
        that persona and not for the name asked."""
        persona = settings.wanted_persona(args.persona, args.called)
        if settings.personas is not None and persona not in settings.personas:
            log.warning("call.unknown_persona", call=call_id, asked=persona, persona=settings.default_persona)
            return settings.default_persona
        return persona

    def _start_call(self, channel: dict[str, Any], args: StasisArgs, direction: str = "inbound") -> CallSession:
        settings = self._settings()  # once: the call keeps these whatever a reload does meanwhile
        persona = self._persona_for(str(channel["id"]), args, settings)
        call = CallSession(
            self.ari,
            self.media_config,
            self.clock,
            settings.pipelines(persona),
            channel,
            persona,
            self.expect_stasis_start,
            watch_channel=self.watch_channel,
            queues=self.queues,
            ring_seconds=settings.ring_seconds,
            direction=direction,
            called_number=args.called,
            record_calls=self.record_calls,
            client_session=args.session if CLIENT_SESSION.fullmatch(args.session) else "",
            node=self.node,
        )
        self.calls[call.channel_id] = call
        call.on_record_update = self._tell_listeners
        for channel_id in call.channel_ids:
            self._by_channel[channel_id] = call
        self._tasks.start(self._run_call(call), f"call-{call.channel_id}")
        return call

    def client_call(self, session: str) -> tuple[CallSession | None, CallRecord | None]:
        """The call the web phone with this session id placed: in progress, or recently finished."""
        if not session:
            return None, None  # calls from phones and trunks have none
        for call in list(self.calls.values()):
            if call.record.client_session == session:
                return call, None
        for record in reversed(self.finished):
            if record.client_session == session:
                return None, record
        return None, None

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

    async def reconcile(self) -> None:
        """Called on each connection of the events socket; the work runs once the backlog is read."""
        self._reconciler.start()

    def _owns(self, channel_id: str) -> bool:
        """A call's leg, a media channel being set up, or an outbound call ringing."""
        return channel_id in self._by_channel or channel_id in self._media_waiters or channel_id in self._dialling

    async def drain(self, grace: float) -> int:
        """Take no new calls; let calls in progress finish for up to `grace` seconds.

        Returns how many were still talking when the time ran out (shutdown() hands them over).
        """
        self.accepting = False
        log.info("stasis.draining", calls=len(self.calls), grace_seconds=grace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace), self.call_finished:
                await self.call_finished.wait_for(lambda: not self.calls)
        return len(self.calls)

    async def shutdown(self) -> None:
        """Hand every call left over to the dialplan (its fallback queue), then wait for tear-down.

        A caller in the middle of a conversation reaches a person instead of being cut off.
        """
        self.accepting = False
        self._reconciler.cancel()
        for call in list(self.calls.values()):
            log.warning("call.handed_over_at_shutdown", call=call.channel_id)
            call.hand_over("failed")
        await self._tasks.wait()
