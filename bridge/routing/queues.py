"""Queue status and hand-over events from Asterisk's AMI (through panoramisk).

The agent uses it to tell a caller how long the wait is before putting them in a queue, and the
call record learns what happened after the hand-over (an agent answered, the caller gave up).
AMI is optional at run time: when it is down the agent still transfers, it just says nothing
about the wait, and the monitor keeps reconnecting in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from panoramisk import Manager

from bridge.routing_config import AmiConfig

log = structlog.get_logger(__name__)

QUERY_TIMEOUT = 1.0
HANDOVER_EVENTS = ("QueueCallerJoin", "AgentConnect", "QueueCallerAbandon", "AgentRingNoAnswer")


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    callers: int
    average_hold_seconds: float
    longest_wait_seconds: float
    members: int
    available_members: int

    def estimated_wait_seconds(self, assumed_seconds_per_caller: float) -> float:
        """Seconds a new caller would wait: none when nobody is ahead (never an invented wait; an
        unstaffed queue is the desk's matter, not a wait).

        Member device states are not trusted here (a member dialled by URI reports 'unavailable'
        while being perfectly reachable); callers ahead and the queue's own average hold are.
        """
        if self.callers == 0:
            return 0.0
        per_caller = self.average_hold_seconds or assumed_seconds_per_caller
        return per_caller * self.callers

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "callers": self.callers,
            "average_hold_seconds": self.average_hold_seconds,
            "longest_wait_seconds": self.longest_wait_seconds,
            "members": self.members,
            "available_members": self.available_members,
        }


def parse_queue_status(queue: str, messages: list[Any]) -> QueueStats | None:
    """QueueStatus answers with QueueParams, QueueMember and QueueEntry events; None if no such queue."""
    params = next((m for m in messages if m.get("Event") == "QueueParams" and m.get("Queue") == queue), None)
    if params is None:
        return None
    members = [m for m in messages if m.get("Event") == "QueueMember" and m.get("Queue") == queue]
    entries = [m for m in messages if m.get("Event") == "QueueEntry" and m.get("Queue") == queue]
    # Member Status 1 = AST_DEVICE_NOT_INUSE; 0 = unknown (e.g. a dial-string member): both may ring.
    available = [m for m in members if m.get("Status") in ("0", "1") and m.get("Paused") in ("0", "", None)]
    return QueueStats(
        queue=queue,
        callers=int(params.get("Calls") or 0),
        average_hold_seconds=float(params.get("Holdtime") or 0),
        longest_wait_seconds=max((float(e.get("Wait") or 0) for e in entries), default=0.0),
        members=len(members),
        available_members=len(available),
    )


class AmiManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager, but one that stops reconnecting once we close it."""

    closing = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: Any) -> None:
        if not self.closing:
            super().connection_lost(exc)


@dataclass
class QueueMonitor:
    config: AmiConfig
    _manager: AmiManager | None = None
    _handover_listeners: dict[str, Callable[[dict[str, str]], None]] = field(default_factory=dict)
    _warned: bool = False
    _login: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected(self) -> bool:
        manager = self._manager
        return bool(manager is not None and manager._connected and manager.authenticated)

    async def start(self, wait_seconds: float = 3.0) -> bool:
        """Connect and log in; True if AMI is usable now (it keeps trying in the background if not)."""
        config = self.config
        password = config.resolved_password()
        if not config.enabled or not password:
            log.warning(
                "ami.disabled",
                hint=f"set ami.password or {config.password_env} for queue wait times and hand-over events",
            )
            return False
        manager = AmiManager(
            loop=asyncio.get_running_loop(),
            host=config.host,
            port=config.port,
            username=config.username,
            secret=password,
            ping_delay=5,
            ping_interval=5,
            reconnect_timeout=2,
            on_login=self._logged_in,
            on_disconnect=lambda _, exc: log.warning("ami.disconnected", error=str(exc)),
        )
        for event in HANDOVER_EVENTS:
            manager.register_event(event, self._on_handover_event)
        self._manager = manager
        self._login = asyncio.Event()
        manager.connect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._login.wait(), wait_seconds)
        if not self.connected:
            log.warning(
                "ami.unavailable",
                host=config.host,
                port=config.port,
                hint="the agent works without queue wait times; check manager.conf and ami.* in the config",
            )
        return self.connected

    def _logged_in(self, _manager: Any) -> None:
        log.info("ami.connected", host=self.config.host, port=self.config.port)
        self._login.set()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.closing = True
            self._manager.close()
            self._manager = None

    async def stats(self, queue: str) -> QueueStats | None:
        """Current state of one queue, or None when AMI cannot tell us right now."""
        messages = await self._query({"Action": "QueueStatus", "Queue": queue})
        return None if messages is None else parse_queue_status(queue, messages)

    async def queue_names(self) -> set[str] | None:
        messages = await self._query({"Action": "QueueSummary"})
        if messages is None:
            return None
        return {str(m.get("Queue")) for m in messages if m.get("Event") == "QueueSummary"}

    async def has_extension(self, context: str, exten: str) -> bool | None:
        messages = await self._query({"Action": "ShowDialPlan", "Context": context, "Extension": exten})
        if messages is None:
            return None
        return any(m.get("Event") == "ListDialplan" for m in messages)

    def watch_handover(self, channel_id: str, listener: Callable[[dict[str, str]], None]) -> None:
        """Call `listener` with each queue event about this channel (AMI Uniqueid = ARI channel id)."""
        self._handover_listeners[channel_id] = listener

    def forget_handover(self, channel_id: str) -> None:
        self._handover_listeners.pop(channel_id, None)

    def _on_handover_event(self, _manager: Any, event: Any) -> None:
        listener = self._handover_listeners.get(str(event.get("Uniqueid", "")))
        if listener is None:
            return
        fields = {key: str(event.get(key, "")) for key in ("Event", "Queue", "Interface", "MemberName", "HoldTime")}
        listener({key: value for key, value in fields.items() if value})
        if fields["Event"] in ("AgentConnect", "QueueCallerAbandon"):
            self.forget_handover(str(event.get("Uniqueid")))

    async def _query(self, action: dict[str, str]) -> list[Any] | None:
        manager = self._manager
        if manager is None or not self.connected:
            self._warn_once("not connected")
            return None
        try:
            result = await asyncio.wait_for(manager.send_action(dict(action)), QUERY_TIMEOUT)
        except (TimeoutError, OSError, AttributeError) as error:
            self._warn_once(str(error) or type(error).__name__)
            return None
        self._warned = False
        return list(result) if isinstance(result, list) else [result]

    def _warn_once(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("ami.query_failed", why=why, hint="carrying on without queue information")

    async def __aenter__(self) -> QueueMonitor:
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            self.close()
