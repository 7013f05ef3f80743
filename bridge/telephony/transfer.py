"""Attended transfer to an extension: ring the target while the caller stays with the agent, and
bridge them only once it answers.

When the target is busy or nobody answers, the agent is still on the line and says so; only an
answered leg replaces our media leg in the call's bridge. The legs belong to the call: its
tear-down hangs up any still ringing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bridge.ari.client import AriClient, AriError
from bridge.pipelines.base import TransferOutcome
from bridge.telephony.ending import Q850_UNANSWERED

Quietly = Callable[[Awaitable[Any]], Awaitable[None]]


class ExtensionLegs:
    """The extension legs one call has rung, and the one it is bridged to (if any)."""

    def __init__(
        self,
        ari: AriClient,
        ring_seconds: int,
        expect_stasis_start: Callable[[str], asyncio.Future[None]],
        watch_channel: Callable[[str], None] | None,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.ari = ari
        self.ring_seconds = ring_seconds
        self._expect_stasis_start = expect_stasis_start
        self._watch_channel = watch_channel
        self._log = log
        # Each leg's hang-up cause, once it is gone.
        self.legs: dict[str, asyncio.Future[int]] = {}
        self.connected: str | None = None

    def gone(self, channel_id: str, cause: int) -> None:
        """A channel left: if it is one of our legs, its ringing is over with this cause."""
        leg = self.legs.get(channel_id)
        if leg is not None and not leg.done():
            leg.set_result(cause)

    async def connect(
        self, endpoint: str, shown_as: str, bridge_id: str, media_channel_id: str, quietly: Quietly
    ) -> TransferOutcome:
        """Ring `endpoint`; once it answers, it takes our media leg's place in `bridge_id`."""
        leg_id = f"tr-{uuid.uuid4().hex}"
        answered = self._expect_stasis_start(leg_id)
        hung_up: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.legs[leg_id] = hung_up
        if self._watch_channel is not None:
            self._watch_channel(leg_id)
        try:
            await self.ari.originate(leg_id, endpoint, "transfer", self.ring_seconds, shown_as)
        except AriError as error:
            self._log.info("call.transfer_unavailable", endpoint=endpoint, error=str(error))
            return "unavailable"
        waiters: list[asyncio.Future[Any]] = [answered, hung_up]
        await asyncio.wait(waiters, timeout=self.ring_seconds + 5, return_when=asyncio.FIRST_COMPLETED)
        if hung_up.done() or not answered.done():
            if not hung_up.done():
                await quietly(self.ari.hangup(leg_id))
                return "no_answer"
            return Q850_UNANSWERED.get(hung_up.result(), "unavailable")
        self.connected = leg_id
        await self.ari.add_to_bridge(bridge_id, leg_id)
        await quietly(self.ari.hangup(media_channel_id))
        self._log.info("call.transferred", endpoint=endpoint, leg=leg_id)
        return "answered"
