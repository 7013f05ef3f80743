"""The running bridge: ARI client, events stream, media clock and Stasis app wired together."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from bridge.app.stasis import StasisApplication
from bridge.ari.client import AriClient
from bridge.ari.events import AriEventStream
from bridge.config import BridgeConfig
from bridge.media.clock import MediaClock
from bridge.pipelines.factory import PipelineFactory, pipeline_factory

log = structlog.get_logger(__name__)


@dataclass
class BridgeService:
    """Owns the long-lived parts; `run()` until cancelled, then shuts calls down cleanly."""

    config: BridgeConfig
    pipelines: PipelineFactory | None = None

    def __post_init__(self) -> None:
        ari = self.config.ari
        password = ari.resolved_password()
        self.clock = MediaClock()
        self.client = AriClient(ari.url, ari.username, password, ari.app)
        self.events = AriEventStream(ari.url, ari.username, password, ari.app, ari.reconnect_max_seconds)
        self.app = StasisApplication(
            self.client,
            self.config.media,
            self.clock,
            self.pipelines or pipeline_factory(self.config.pipeline),
        )

    async def run(self) -> None:
        self.clock.start()
        log.info("bridge.start", ari=self.config.ari.url, app=self.config.ari.app, format=self.config.media.format)
        try:
            await self.events.run(self.app.handle_event)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    async def _shutdown(self) -> None:
        await self.app.shutdown()
        await self.clock.stop()
        await self.client.close()
        log.info("bridge.stopped")
