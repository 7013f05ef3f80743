"""The running bridge: ARI client, events stream, media clock and Stasis app wired together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bridge.app.live import live_settings
from bridge.app.pipelines import pipeline_factory
from bridge.app.reload import live_part, reloaded_agent, restart_only_changes
from bridge.ari.client import AriClient, AriError
from bridge.ari.events import AriEventStream
from bridge.config import BridgeConfig, ConfigError
from bridge.conversation.agent import Agent
from bridge.dialplan import APPS_GLOBAL
from bridge.logs import redacted_url
from bridge.media.clock import MediaClock
from bridge.pipelines.base import MediaPipeline, PipelineFactory
from bridge.records import CallRecord
from bridge.routing.messages import forget_message, forget_messages_before
from bridge.routing.queues import QueueMonitor
from bridge.routing.validation import missing_targets
from bridge.routing.webhooks import Webhooks
from bridge.speech.workers import Supervised
from bridge.storage.calls import CallStore
from bridge.storage.writer import RecordWriter
from bridge.telephony.outbound import OutboundDialer
from bridge.telephony.stasis import StasisApplication
from bridge.web.api import build_api, start_api
from bridge.web.dashboard import Dashboard, LiveCall
from bridge.web.metrics import BridgeMetrics
from bridge.web.webphone import PhoneCall, add_phone_routes

log = structlog.get_logger(__name__)

COUNTED_MEMORY = 10_000
# Reading the dialplan's BRIDGE_APPS delays the first events after a connect by this much at most.
DIALPLAN_READ_SECONDS = 3.0
# How often the model threads are checked (dead or stalled ones are restarted).
SUPERVISE_SECONDS = 5.0


def _not_ready(persona: str) -> MediaPipeline:
    raise RuntimeError("pipelines are built in BridgeService.run() before ARI is subscribed")


def _warm_failed(warming: asyncio.Task[None]) -> None:
    """A reloaded agent that could not be warmed still takes calls: each renders what it needs."""
    if not warming.cancelled() and (error := warming.exception()) is not None:
        log.warning("config.reload_warm_failed", error=str(error) or type(error).__name__)


class BridgeService:
    """Owns the long-lived parts; `run()` until cancelled, then shuts calls down cleanly.

    With the agent pipeline, models are loaded (and warmed) before the bridge subscribes to
    ARI: until then Stasis() fails fast and the dialplan sends callers to the human queue.

    What a reload may change lives in one `LiveSettings` snapshot (`_live`); the Stasis app,
    the dialer and the webhooks read it through callables, so a reload is one swap.
    """

    def __init__(
        self, config: BridgeConfig, pipelines: PipelineFactory | None = None, agent: Agent | None = None
    ) -> None:
        """`pipelines`: a fixed per-call pipeline (tests, benches); None builds the configured one in
        run(). `agent`: models already loaded, for the agent pipeline (else run() loads them)."""
        self._pipelines_given = pipelines
        self._live = live_settings(config, pipelines or _not_ready, agent)
        ari = config.ari
        password = ari.resolved_password()
        self.clock = MediaClock()
        self.client = AriClient(ari.url, ari.username, password, ari.app)
        self.events = AriEventStream(ari.url, ari.username, password, ari.app, ari.reconnect_max_seconds)
        self.queues = QueueMonitor(config.ami)
        self.app = StasisApplication(
            self.client,
            config.media,
            self.clock,
            lambda: self._live.calls,
            queues=self.queues,
            record_calls=config.storage.record_calls,
            max_calls=config.limits.resolved_max_calls(config.pipeline.kind),
            node=config.storage.resolved_node(),
        )
        self.webhooks = Webhooks(lambda: self._live.webhooks)
        self.store = CallStore(config.storage.resolved_url())
        self.records = RecordWriter(
            self.store,
            config.storage.resolved_spool_dir(),
            retention_days=config.storage.retention_days,
            on_expired=self._forget_attachments,
        )
        self.app.record_listeners.append(self.records.submit)
        self.metrics = BridgeMetrics(
            {
                "calls_active": lambda: len(self.app.calls),
                "ari_connected": lambda: float(self.events.connected.is_set()),
                "ami_connected": lambda: float(self.queues.connected),
                "outbound_active": lambda: self.dialer.active,
                "records_pending": lambda: self.records.pending,
                "max_calls": lambda: self.app.max_calls,
                "accepting_calls": lambda: float(self.app.accepting),
            },
            lambda: [worker.state() for worker in self.workers()],
            lambda: self.config.personas,
        )
        self._counted: OrderedDict[str, None] = OrderedDict()
        self.app.record_listeners.append(self._observe)
        self.app.record_listeners.append(self._post_call_webhook)
        self.dialer = OutboundDialer(self.client, self.app, lambda: self._live.outbound)
        self._api: web.AppRunner | None = None
        # Reloads apply one at a time (and wait for start-up's models): see reload().
        self._reloading = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def config(self) -> BridgeConfig:
        """The running config: the start-up one with the live sections of the last reload."""
        return self._live.config

    @property
    def agent(self) -> Agent | None:
        """The models, with the personas and settings new calls get (None: no agent pipeline)."""
        return self._live.agent

    async def run(self) -> None:
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())
            raise
        self.clock.start()
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="model-supervisor")
        log.info(
            "bridge.start",
            ari=redacted_url(self.config.ari.url),
            app=self.config.ari.app,
            format=self.config.media.format,
        )
        try:
            await self.events.run(self.app.handle_event, on_connect=self._connected)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._shutdown())

    async def _connected(self) -> None:
        """Each (re)connection: learn what the dialplan does with a declined call, then reconcile."""
        await self._read_dialplan_apps()
        await self.app.reconcile()

    async def _read_dialplan_apps(self) -> None:
        """BRIDGE_APPS decides `declined` vs `failed` for calls we turn away (bridge.dialplan).

        Read on every connect: a reconnect often follows Asterisk's restart with a new dialplan.
        If Asterisk does not answer, the last answer stands.
        """
        try:
            async with asyncio.timeout(DIALPLAN_READ_SECONDS):
                value = await self.client.global_variable(APPS_GLOBAL)
        except (AriError, TimeoutError) as error:
            log.warning("dialplan.apps_unread", error=str(error) or type(error).__name__)
            return
        apps = self.app.follow_dialplan(value)
        problem = apps.problem()
        if problem is not None:
            log.warning("dialplan.apps_mismatch", problem=problem, decline_result=apps.decline_result)
        else:
            log.info("dialplan.apps", apps=list(apps.listed), decline_result=apps.decline_result)

    async def _start(self) -> None:
        """Everything that must work before the first call; a failure here ends start-up cleanly."""
        if self._pipelines_given is None:
            await self._build_pipelines()
        await self._open_storage()
        await self._start_routing()
        if self.config.api.enabled:
            dashboard = Dashboard(
                self.config.api.dashboard_password(),
                self.live_calls,
                self.store,
                recordings=self.client.stored_recording,
                messages_dir=self.config.routing.message_store(),
            )
            phone = None
            if self.config.webphone.enabled:
                phone = functools.partial(add_phone_routes, config=self.config.webphone, find_call=self.phone_call)
            api = build_api(self.config.api, self.dialer, self.health, self.metrics.render, dashboard, phone)
            self._api = await start_api(api, self.config.api)

    async def _build_pipelines(self) -> None:
        """The configured pipeline (models loaded and warmed first), swapped into the snapshot.

        Holds the reload lock throughout: a SIGHUP while the models load waits for them, then
        applies like any reload (its copy of the agent warmed in turn). Applied during loading
        instead, the copy swapped in afterwards was one nobody had warmed.
        """
        async with self._reloading:
            config = self.config
            agent = self.agent
            if config.pipeline.kind == "agent":
                if agent is None:
                    from bridge.conversation.loading import load_agent

                    log.info("bridge.loading_models")
                    agent = await asyncio.to_thread(load_agent, config)
                await agent.warm(*config.media.call_rates())
                log.info("bridge.models_ready")
            self._live = live_settings(config, pipeline_factory(config, agent), agent)

    async def _open_storage(self) -> None:
        """The call database must be usable before the first call, or the records would pile up unseen."""
        try:
            await self.store.open()
        except (SQLAlchemyError, OSError) as error:
            raise ConfigError(
                f"storage.url: cannot open the call database ({error.__class__.__name__}: {error}); "
                f"check the URL (or {self.config.storage.url_env}) and that the database is reachable"
            ) from None
        await self.records.start()

    async def _start_routing(self) -> None:
        """AMI for queue stats (optional), then every transfer target checked against Asterisk."""
        await self.queues.start()
        if self.agent is not None and self.agent.routing is not None:
            self.agent.routing.queues = self.queues
            self.agent.routing.webhooks = self.webhooks
        problems = await missing_targets(self.config.routing, self.client, self.queues)
        if problems:
            raise ConfigError("routing targets Asterisk does not know:\n  " + "\n  ".join(problems))

    def workers(self) -> list[Supervised]:
        return self.agent.workers() if self.agent is not None else []

    async def _supervise(self) -> None:
        """Restart a model thread that died or is stuck; calls waiting on it have their own
        deadlines and have already apologised."""
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            for worker in self.workers():
                state = worker.state()
                if not state.healthy:
                    log.error(
                        "model.worker_unhealthy", worker=state.name, alive=state.alive, busy_seconds=state.busy_seconds
                    )
                    worker.restart()

    def health(self) -> dict[str, Any]:
        models = [worker.state() for worker in self.workers()]
        return {
            "models_ok": all(state.healthy for state in models),
            "models": {
                state.name: {
                    "alive": state.alive,
                    "stalled": state.stalled,
                    "busy_seconds": round(state.busy_seconds, 1),
                    "restarts": state.restarts,
                }
                for state in models
            },
            "ari": self.events.connected.is_set(),
            "ami": self.queues.connected,
            "calls": len(self.app.calls),
            "outbound_active": self.dialer.active,
            "records_pending": self.records.pending,
            "accepting": self.app.accepting,
            "max_calls": self.app.max_calls,
        }

    async def drain(self) -> None:
        """SIGTERM: take no new calls, give those in progress limits.shutdown_grace_seconds.

        What is still talking after that is handed to the dialplan when run() ends (shutdown).
        """
        grace = self.config.limits.shutdown_grace_seconds
        left = await self.app.drain(grace)
        log.info("bridge.drained", calls_left=left, grace_seconds=grace)

    async def _forget_attachments(self, attachments: list[str]) -> None:
        """storage.retention_days: a purged call's recording (in Asterisk's spool) and message go too."""
        messages = self.config.routing.message_store().resolve()
        cutoff = time.time() - self.config.storage.retention_days * 86400
        await asyncio.to_thread(forget_messages_before, messages, cutoff)  # also those no row names
        for attachment in attachments:
            if attachment.endswith(".json"):
                await asyncio.to_thread(forget_message, Path(attachment), messages)
            else:
                try:
                    await self.client.delete_stored_recording(attachment.removesuffix(".wav"))
                except AriError as error:  # already gone, or Asterisk away: the row goes anyway
                    log.info("storage.recording_not_deleted", recording=attachment, error=error.message)

    def _post_call_webhook(self, record: CallRecord) -> None:
        if self.webhooks.config.post_call_url:
            self.webhooks.post_call(record.as_dict())

    async def reload(self, new: BridgeConfig) -> list[str]:
        """Apply a changed config to new calls; calls in progress keep what they started with.

        Returns the sections that changed but need a restart. Raises ConfigError (keeping the
        running config) if a routing target is unknown to Asterisk. Everything new calls read
        changes at once, in the one swap of the snapshot, with no await in between.

        Reloads apply one at a time, in the order they were asked for: two SIGHUPs in quick
        succession leave the second file in force, even when the first one's targets take
        longer to check. A reload during start-up waits for the models (`_build_pipelines`).
        """
        async with self._reloading:
            restart = restart_only_changes(self.config, new)
            applied = live_part(self.config, new)
            problems = await missing_targets(applied.routing, self.client, self.queues)
            if problems:
                raise ConfigError("reload refused, routing targets Asterisk does not know:\n  " + "\n  ".join(problems))
            await self._stop_warming()  # the agent it warms is about to take no new calls
            running = self._live
            agent = running.agent
            pipelines = running.calls.pipelines
            if agent is not None:
                agent = reloaded_agent(agent, applied, self.queues, self.webhooks)
                pipelines = pipeline_factory(applied, agent)
            self._live = live_settings(applied, pipelines, agent)
            if agent is not None:  # its prompts and greetings, in the background
                self._warming = asyncio.get_running_loop().create_task(agent.warm(*applied.media.call_rates()))
                self._warming.add_done_callback(_warm_failed)
            log.info("config.reloaded", restart_needed=restart)
            return restart

    async def _stop_warming(self) -> None:
        """Cancel the last reload's warm-up and wait until it has stopped, so two never run at once."""
        warming, self._warming = self._warming, None
        if warming is not None and not warming.done():
            warming.cancel()
            await asyncio.wait([warming])

    def live_calls(self) -> list[LiveCall]:
        """Calls in progress with their conversation so far (for the dashboard)."""
        now = time.time()
        return [
            LiveCall(
                call.channel_id,
                call.record.caller,
                call.record.persona,
                call.record.direction,
                now - call.record.started_at,
                call.pipeline.report(),
            )
            for call in list(self.app.calls.values())
        ]

    def phone_call(self, session: str) -> PhoneCall | None:
        """The web phone's call with this session id, as the page may see it (for the web phone)."""
        call, record = self.app.client_call(session)
        if call is not None:
            return PhoneCall(call.record, call.pipeline.report(), live=True)
        if record is not None:
            return PhoneCall(record, record.conversation, live=False)
        return None

    def _observe(self, record: CallRecord) -> None:
        """Count each call once (a record is announced again when AMI reports on a hand-over)."""
        if record.channel_id in self._counted:
            return
        self._counted[record.channel_id] = None
        if len(self._counted) > COUNTED_MEMORY:
            self._counted.popitem(last=False)
        self.metrics.observe(record)

    async def _shutdown(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        await self._stop_warming()
        await self.dialer.shutdown()
        if self._api is not None:
            await self._api.cleanup()
        self.queues.close()
        await self.app.shutdown()
        await self.webhooks.close()
        await self.records.close()
        await self.store.close()
        await self.clock.stop()
        await self.client.close()
        log.info("bridge.stopped")
