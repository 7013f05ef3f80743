"""Queue status and hand-over events from Asterisk's AMI (through panoramisk).

The agent uses it to tell a caller how long the wait is before putting them in a queue, and the
call record learns what happened after the hand-over (an agent answered, the caller gave up).
AMI is optional at run time: when it is down the agent still transfers, it just says nothing
about the wait, and the monitor keeps reconnecting in the background.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.config.routing import AmiConfig
from bridge.routing.ami import AmiConnection

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


@dataclass
class QueueMonitor:
    config: AmiConfig
    _handover_listeners: dict[str, Callable[[dict[str, str]], None]] = field(default_factory=dict)
    _ami: AmiConnection = field(init=False)

    def __post_init__(self) -> None:
        self._ami = AmiConnection(self.config)

    @property
    def connected(self) -> bool:
        return self._ami.connected

    async def start(self, wait_seconds: float = 3.0) -> bool:
        """Connect and log in; True if AMI is usable now (it keeps trying in the background if not)."""
        events = dict.fromkeys(HANDOVER_EVENTS, self._on_handover_event)
        return await self._ami.open(events, wait_seconds)

    def close(self) -> None:
        self._ami.close()

    async def stats(self, queue: str) -> QueueStats | None:
        """Current state of one queue, or None when AMI cannot tell us right now."""
        messages = await self._ami.query({"Action": "QueueStatus", "Queue": queue})
        return None if messages is None else parse_queue_status(queue, messages)

    async def queue_names(self) -> set[str] | None:
        messages = await self._ami.query({"Action": "QueueSummary"})
        if messages is None:
            return None
        return {str(m.get("Queue")) for m in messages if m.get("Event") == "QueueSummary"}

    async def has_extension(self, context: str, exten: str) -> bool | None:
        messages = await self._ami.query({"Action": "ShowDialPlan", "Context": context, "Extension": exten})
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

    async def __aenter__(self) -> QueueMonitor:
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            self.close()
