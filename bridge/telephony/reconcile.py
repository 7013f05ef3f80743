"""After each (re)connection of the events socket: make our state and Asterisk's agree again.

While the socket was down we may have missed hang-ups: calls whose caller channel is gone are
ended. Channels in our Stasis app that no call owns were left by a bridge process that died:
callers are handed over to the dialplan (BRIDGE_RESULT=failed, so the human queue), stray media
channels are hung up, and our old bridges are destroyed.

Only our own app's channels and bridges named with our app's prefix are touched: other bridges
on the same Asterisk (another ari.app) keep their calls.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from bridge.ari.client import AriClient, AriError
from bridge.background import BackgroundTasks
from bridge.telephony.call import CallSession, bridge_name
from bridge.telephony.ending import hand_over_to_dialplan

log = structlog.get_logger(__name__)

BARRIER_SECONDS = 5.0


class Reconciler:
    def __init__(
        self,
        ari: AriClient,
        calls: Mapping[str, CallSession],
        owned: Callable[[str], bool],
    ) -> None:
        """`calls` are the calls in progress; `owned(channel_id)` says a channel is already ours
        (a call's leg, a media channel being set up, an outbound call ringing)."""
        self.ari = ari
        self.calls = calls
        self.owned = owned
        self._barriers: dict[str, asyncio.Future[None]] = {}
        self._runs: BackgroundTasks[None] = BackgroundTasks()

    def start(self) -> None:
        """The work runs once the backlog of events queued before now has been read."""
        self._runs.start(self._after_backlog(), name="reconcile")

    def cancel(self) -> None:
        self._runs.cancel()

    def barrier_arrived(self, name: str) -> bool:
        """A user event came back: True if it was one of our barriers (nobody else's business)."""
        barrier = self._barriers.pop(name, None)
        if barrier is None:
            return False
        if not barrier.done():
            barrier.set_result(None)
        return True

    async def _after_backlog(self) -> None:
        """A user event we send comes back after every event queued before it: once it is here, a
        channel in our app that no call owns really has no call (its StasisStart was not just late)."""
        name = f"bridge-reconcile-{uuid.uuid4().hex}"
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers[name] = barrier
        try:
            await self.ari.user_event(name)
            await asyncio.wait_for(barrier, BARRIER_SECONDS)
        except (AriError, TimeoutError) as error:
            log.warning("stasis.reconcile_skipped", error=str(error) or type(error).__name__)
            return
        finally:
            self._barriers.pop(name, None)
        await self.reconcile()

    async def reconcile(self) -> None:
        try:
            present = {channel["id"] for channel in await self.ari.list_channels()}
            in_app = await self.ari.application_channels()
            bridges = await self.ari.list_bridges()
        except AriError as error:
            log.warning("stasis.reconcile_failed", error=str(error))
            return
        for call in list(self.calls.values()):
            if call.channel_id not in present:
                call.channel_gone(call.channel_id, "missing_after_reconnect")
        orphans = [cid for cid in in_app if not self.owned(cid)]
        ours = {call.bridge_id for call in self.calls.values()}
        prefix = bridge_name(self.ari.app, "")
        stale = [b["id"] for b in bridges if str(b.get("name", "")).startswith(prefix) and b["id"] not in ours]
        for channel_id in orphans:
            await self._hand_over_orphan(channel_id)
        for bridge_id in stale:
            await self._quietly(self.ari.destroy_bridge(bridge_id))
        if orphans or stale:
            log.warning("stasis.orphans_recovered", channels=len(orphans), bridges=len(stale))
        log.info("stasis.reconciled", app=self.ari.app, calls=len(self.calls), orphans=len(orphans), bridges=len(stale))

    async def _hand_over_orphan(self, channel_id: str) -> None:
        if channel_id.startswith("em-"):  # our externalMedia leg: its call is gone
            await self._quietly(self.ari.hangup(channel_id))
            return
        try:
            await hand_over_to_dialplan(self.ari, channel_id, "failed")
        except AriError as error:
            log.warning("stasis.orphan_hand_back_failed", channel=channel_id, error=str(error))

    async def _quietly(self, operation: Any) -> None:
        try:
            await operation
        except AriError as error:
            log.info("stasis.cleanup_skipped", error=str(error))
