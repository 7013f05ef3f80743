"""Outbound calls into the same agent (appointment reminders, call-backs), a few at a time.

A call is originated through ARI straight into our Stasis app; once answered it is an ordinary
call session with the persona asked for. At most `max_concurrent` ring or talk at once, the
rest wait their turn, and every request ends with a result: answered (with the call record),
busy, no answer, or failed with Asterisk's reason.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from bridge.ari.client import AriClient, AriError
from bridge.background import BackgroundTasks
from bridge.config.routing import OutboundConfig
from bridge.records import CallRecord
from bridge.telephony.call import CallSession
from bridge.telephony.ending import Q850_UNANSWERED
from bridge.telephony.stasis import StasisApplication

log = structlog.get_logger(__name__)

_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
Status = Literal["queued", "ringing", "answered", "busy", "no_answer", "failed"]


class BadNumber(ValueError):
    """Not a dialable number: only digits, * and # (and a leading +) reach the dial string."""


@dataclass
class OutboundCall:
    id: str
    number: str
    persona: str
    dtmf: str = ""
    status: Status = "queued"
    reason: str = ""
    requested_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    record: CallRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": self.id,
            "number": self.number,
            "persona": self.persona,
            "status": self.status,
            "reason": self.reason,
            "requested_at": self.requested_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
        }
        if self.record is not None:
            result["end_reason"] = self.record.end_reason
            conversation = self.record.conversation
            result["conversation"] = conversation.as_dict() if conversation is not None else {}
        return result


@dataclass(frozen=True)
class OutboundSettings:
    """What a new outbound call is placed with; a config reload may change it between calls.

    Read once when a call is submitted: a call waiting for a slot, ringing or talking keeps
    the endpoint, caller id and ring time it was asked with. Its persona is only a name until
    the call is answered; then, like an inbound call's, it is looked up in the settings current
    at that moment: the call talks with the persona as the last reload left it, or with the
    conversation's default if a reload has removed it meanwhile (logged: call.unknown_persona).
    """

    config: OutboundConfig
    default_persona: str  # outbound.default_persona, else conversation.default_persona
    personas: frozenset[str] = frozenset()

    @classmethod
    def resolve(cls, config: OutboundConfig, default_persona: str, personas: frozenset[str]) -> OutboundSettings:
        """`default_persona`: the conversation's, used when outbound names none of its own."""
        return cls(config, config.default_persona or default_persona, personas)


@dataclass
class _Dial:
    """Waits for the originated channel to be answered (StasisStart) or to fail (hang-up cause)."""

    persona: str
    outcome: asyncio.Future[CallSession | tuple[int, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def answered(self, call: CallSession) -> None:
        if not self.outcome.done():
            self.outcome.set_result(call)

    def failed(self, cause: int, reason: str) -> None:
        if not self.outcome.done():
            self.outcome.set_result((cause, reason))


class OutboundDialer:
    def __init__(
        self,
        ari: AriClient,
        app: StasisApplication,
        settings: Callable[[], OutboundSettings],
    ) -> None:
        """`settings`: read afresh for each new call (the service's reloadable snapshot).

        The number of slots is taken from the first settings and fixed until a restart.
        """
        self.ari = ari
        self.app = app
        self._settings = settings
        self.calls: dict[str, OutboundCall] = {}
        self._slots = asyncio.Semaphore(self._settings().config.max_concurrent)
        self._tasks: BackgroundTasks[OutboundCall] = BackgroundTasks()

    @property
    def app_personas(self) -> frozenset[str]:
        """The persona names a call may ask for (the API refuses others)."""
        return self._settings().personas

    def submit(self, number: str, persona: str | None = None, dtmf: str = "") -> OutboundCall:
        """Queue a call; it rings as soon as a slot is free. Raises BadNumber at once.

        `dtmf` is keyed in as soon as the call is answered (an extension, an IVR choice).
        """
        if not _NUMBER.match(number):
            raise BadNumber(f"{number!r} is not a phone number (digits, *, #, optional leading +)")
        if dtmf and not _NUMBER.match(dtmf.lstrip("+")):
            raise BadNumber(f"dtmf {dtmf!r} may only hold digits, * and #")
        settings = self._settings()
        call = OutboundCall(f"out-{uuid.uuid4().hex[:16]}", number, persona or settings.default_persona, dtmf)
        self.calls[call.id] = call
        self._tasks.start(self._place(call, settings.config), name=call.id)
        return call

    async def call(self, number: str, persona: str | None = None, dtmf: str = "") -> OutboundCall:
        """Place a call and wait for its result (answered calls: until they end)."""
        call = self.submit(number, persona, dtmf)
        task = next(task for task in self._tasks if task.get_name() == call.id)
        return await task

    @property
    def active(self) -> int:
        return sum(1 for call in self.calls.values() if call.status in ("ringing", "answered") and not call.ended_at)

    async def _place(self, call: OutboundCall, config: OutboundConfig) -> OutboundCall:
        async with self._slots:
            call.status = "ringing"
            dial = _Dial(call.persona)
            self.app.expect_dial(call.id, dial)
            endpoint = config.endpoint.format(number=call.number)
            log.info("outbound.dialling", id=call.id, endpoint=endpoint, persona=call.persona)
            try:
                await self.ari.originate(call.id, endpoint, "outbound", config.ring_seconds, config.caller_id)
                outcome = await asyncio.wait_for(dial.outcome, config.ring_seconds + 10)
            except AriError as error:
                self._finish(call, "failed", error.message)
                return call
            except TimeoutError:
                self._finish(call, "no_answer", "no answer from Asterisk in time")
                return call
            finally:
                self.app.forget_dial(call.id)
            if isinstance(outcome, tuple):
                cause, reason = outcome
                self._finish(call, Q850_UNANSWERED.get(cause, "failed"), f"{reason} (cause {cause})")
                return call
            call.status, call.answered_at = "answered", time.time()
            if call.dtmf:
                try:
                    await outcome.send_dtmf(call.dtmf)
                except AriError as error:
                    log.warning("outbound.dtmf_failed", id=call.id, error=error.message)
            await outcome.finished.wait()
            call.record = outcome.record
            call.ended_at = time.time()
            log.info("outbound.done", id=call.id, end_reason=outcome.record.end_reason)
            return call

    def _finish(self, call: OutboundCall, status: Status, reason: str) -> None:
        call.status, call.reason, call.ended_at = status, reason, time.time()
        log.info("outbound.not_answered", id=call.id, status=status, reason=reason)

    async def shutdown(self) -> None:
        self._tasks.cancel()
        await self._tasks.wait()
