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
from bridge.conversation.agent import Agent
from bridge.media.clock import MediaClock
from bridge.media.codecs import codec_for
from bridge.pipelines.base import MediaPipeline
from bridge.pipelines.factory import PipelineFactory, pipeline_factory

log = structlog.get_logger(__name__)


def _not_ready(persona: str) -> MediaPipeline:
    raise RuntimeError("pipelines are built in BridgeService.run() before ARI is subscribed")


@dataclass
class BridgeService:
    """Owns the long-lived parts; `run()` until cancelled, then shuts calls down cleanly.

    With the agent pipeline, models are loaded (and warmed) before the bridge subscribes to
    ARI: until then Stasis() fails fast and the dialplan sends callers to the human queue.
    """

    config: BridgeConfig
    pipelines: PipelineFactory | None = None
    agent: Agent | None = None

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
            self.pipelines or _not_ready,
        )

    async def run(self) -> None:
        if self.pipelines is None:
            self.app.pipelines = await self._build_pipelines()
        self.clock.start()
        log.info("bridge.start", ari=self.config.ari.url, app=self.config.ari.app, format=self.config.media.format)
        try:
            await self.events.run(self.app.handle_event)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    async def _build_pipelines(self) -> PipelineFactory:
        if self.config.pipeline.kind == "agent":
            if self.agent is None:
                from bridge.conversation.loading import load_agent

                log.info("bridge.loading_models")
                self.agent = await asyncio.to_thread(load_agent, self.config)
            await self.agent.warm(codec_for(self.config.media.format).sample_rate)
            log.info("bridge.models_ready")
        return pipeline_factory(self.config, self.agent)

    async def _shutdown(self) -> None:
        await self.app.shutdown()
        await self.clock.stop()
        await self.client.close()
        log.info("bridge.stopped")
