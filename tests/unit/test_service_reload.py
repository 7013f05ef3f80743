"""A reload is one swap of the service's settings snapshot: every new call, inbound or outbound,
and every new webhook request gets the new settings; a call already started keeps its own.
Reloads apply one at a time, in order, and the agent they leave live is the one being warmed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import bridge.app.service as service_module
from bridge.app.pipelines import pipeline_factory
from bridge.app.service import BridgeService
from bridge.ari.client import AriError
from bridge.config import BridgeConfig, parse_config
from bridge.config.routing import RoutingConfig
from bridge.conversation.agent import Agent
from bridge.conversation.controller import Conversation
from bridge.conversation.prompt import DEMONSTRATION_QUESTIONS
from bridge.pipelines.echo import EchoPipeline
from bridge.routing.queues import QueueMonitor
from bridge.routing.validation import EndpointDirectory
from bridge.telephony.call import CallSession
from tests.support.fakes import ScriptedLanguageModel, fake_agent
from tests.unit.test_call_session import ScriptedAri

PERSONA = {"system_prompt": "You answer the phone.", "greeting": "Hello."}
NO_HOOK = "http://127.0.0.1:1"


class HeldAri(ScriptedAri):
    """Every call waits in answer() until `release` is set (calls in progress), then fails there;
    an originated call rings until the test ends it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def answer(self, channel_id: str) -> None:
        self.calls.append(("answer", (channel_id,)))
        await self.release.wait()
        raise AriError("POST", f"/channels/{channel_id}/answer", 500, "test")

    def originated(self) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == "originate"]


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[str]]]:
    """A site's webhook server: notes the path of each request."""
    paths: list[str] = []

    async def note(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{hook:.*}", note)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", paths
    await runner.cleanup()


def config_with(tmp_path: Path, hook: str, which: str, kind: str = "echo") -> BridgeConfig:
    """Every reloadable setting named after `which` ("old", "new"), so a call shows which it got."""
    personas = (f"{which}_default", f"{which}_line", f"{which}_out")
    return parse_config(
        {
            "ari": {"password": "test", "url": "http://127.0.0.1:1"},
            "pipeline": {"kind": kind},
            "media": {"rtp_port_min": 0, "rtp_port_max": 0},
            "storage": {"url": f"sqlite:///{tmp_path}/calls.db", "spool_dir": str(tmp_path / "spool")},
            "personas": {name: {**PERSONA, "greeting": f"Hello from {which}."} for name in personas},
            "conversation": {"default_persona": f"{which}_default", "personas_by_number": {"100": f"{which}_line"}},
            "routing": {"ring_seconds": 11 if which == "old" else 22, "messages_dir": str(tmp_path / "messages")},
            "outbound": {
                "endpoint": f"PJSIP/{{number}}@{which}",
                "max_concurrent": 1,
                "default_persona": f"{which}_out",
            },
            "webhooks": {"pre_call_url": f"{hook}/{which}/pre", "post_call_url": f"{hook}/{which}/post"},
        }
    )


def service_on(
    monkeypatch: pytest.MonkeyPatch, ari: HeldAri, config: BridgeConfig, **given: Any
) -> tuple[BridgeService, list[CallSession]]:
    """The service with ARI scripted and every routing target taken as known; also each call's
    session, as the Stasis app started it."""

    async def all_known(routing: RoutingConfig, ari: EndpointDirectory, queues: QueueMonitor | None) -> list[str]:
        return []

    started: list[CallSession] = []

    def noted_session(*args: Any, **kwargs: Any) -> CallSession:
        started.append(CallSession(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(service_module, "AriClient", lambda *args: ari)
    monkeypatch.setattr(service_module, "missing_targets", all_known)
    monkeypatch.setattr("bridge.telephony.stasis.CallSession", noted_session)
    service = BridgeService(config, **given)
    ari.application = service.app
    return service, started


async def arrives(service: BridgeService, channel_id: str, args: list[str]) -> None:
    await service.app.handle_event(
        {"type": "StasisStart", "args": args, "channel": {"id": channel_id, "caller": {"number": "1"}}}
    )


async def until(done: Callable[[], bool]) -> None:
    """Let the other tasks run until `done` (no real time passes)."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def closed(service: BridgeService) -> None:
    """What the test started: outbound calls, webhook posts, the record writer."""
    await service.dialer.shutdown()
    await service.webhooks.close()
    await service.records.close()
    await service.store.close()


async def settle() -> None:
    """Let every other task run as far as it can without real time passing."""
    for _ in range(100):
        await asyncio.sleep(0)


def warmed(agent: Agent, persona: str, rates: tuple[int, ...]) -> bool:
    """Agent.warm ran for this persona: its prompt carries the model's own answers to the
    start-up questions, and its greeting is audio at every call rate."""
    contents = [message["content"] for message in agent.prompt(persona).messages]
    greeting = agent.personas[persona].greeting
    return DEMONSTRATION_QUESTIONS[0] in contents and all(agent.cached_phrase(greeting, rate) for rate in rates)


def agent_for(config: BridgeConfig, llm: ScriptedLanguageModel) -> Agent:
    models = fake_agent(["hello"], llm=llm)
    return dataclasses.replace(models, personas=dict(config.personas), settings=config.conversation)


def ring_seconds(call: CallSession) -> int:
    return call._transfer_legs.ring_seconds  # what the call's transfers will ring for


async def test_new_calls_get_the_reloaded_settings_and_calls_in_progress_keep_theirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hooks: tuple[str, list[str]]
) -> None:
    hook, requests = hooks
    ari = HeldAri()
    service, started = service_on(
        monkeypatch, ari, config_with(tmp_path, hook, "old"), pipelines=lambda persona: EchoPipeline()
    )
    await arrives(service, "early-default", [])
    await arrives(service, "early-line", ["", "100"])
    assert await service.webhooks.pre_call({"call_id": "early-default"}) == {}
    early_out = service.dialer.submit("5551000")
    queued_out = service.dialer.submit("5552000")  # waits for the one outbound slot
    await until(lambda: len(ari.originated()) == 1)

    assert await service.reload(config_with(tmp_path, hook, "new")) == []

    await arrives(service, "later-default", [])
    await arrives(service, "later-line", ["", "100"])
    assert await service.webhooks.pre_call({"call_id": "later-default"}) == {}
    later_out = service.dialer.submit("5553000")

    calls = {call.channel_id: call for call in started}
    assert {name: call.record.persona for name, call in calls.items()} == {
        "early-default": "old_default",
        "early-line": "old_line",
        "later-default": "new_default",
        "later-line": "new_line",
    }
    assert {name: ring_seconds(call) for name, call in calls.items()} == {
        "early-default": 11,
        "early-line": 11,
        "later-default": 22,
        "later-line": 22,
    }
    assert service.app.calls.keys() == calls.keys()  # the early ones are still in progress
    assert (early_out.persona, queued_out.persona, later_out.persona) == ("old_out", "old_out", "new_out")
    assert service.dialer.app_personas == {"new_default", "new_line", "new_out"}

    for dialled, call in enumerate((early_out, queued_out), start=2):  # unanswered: the next one's turn
        await service.app.handle_event({"type": "ChannelDestroyed", "channel": {"id": call.id}, "cause": 17})
        await until(lambda: len(ari.originated()) == dialled)  # noqa: B023 - awaited at once
    # Submitted before the reload: dialled as it was asked, even when its slot came after.
    assert [args[1] for args in ari.originated()] == ["PJSIP/5551000@old", "PJSIP/5552000@old", "PJSIP/5553000@new"]

    ari.release.set()
    await until(lambda: len(service.app.finished) == 4)
    await closed(service)
    # Records go to the post-call hook configured when they are sent (bridge.routing.webhooks).
    assert requests == ["/old/pre", "/new/pre"] + ["/new/post"] * 4


async def test_a_reload_gives_new_calls_a_new_agent_and_leaves_the_old_one_to_calls_in_progress(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ari = HeldAri()
    old = config_with(tmp_path, NO_HOOK, "old", kind="agent")
    agent = agent_for(old, ScriptedLanguageModel(token_delay=0))
    service, started = service_on(monkeypatch, ari, old, pipelines=pipeline_factory(old, agent), agent=agent)
    await arrives(service, "early", [])

    await service.reload(config_with(tmp_path, NO_HOOK, "new", kind="agent"))
    await arrives(service, "later", [])

    early, later = (call.pipeline for call in started)
    assert isinstance(early, Conversation) and isinstance(later, Conversation)
    assert early.agent is agent and early.persona_name == "old_default"
    assert later.agent is service.agent and later.persona_name == "new_default"
    assert set(later.agent.personas) == {"new_default", "new_line", "new_out"}
    assert later.agent.routing is not None and later.agent.routing.webhooks is service.webhooks
    assert later.agent.stt_worker is agent.stt_worker  # the same models
    assert service._warming is not None
    await service._warming  # the new persona's greetings, rendered in the background
    ari.release.set()
    await until(lambda: len(service.app.finished) == 2)
    await closed(service)


@pytest.mark.parametrize("given", [True, False], ids=["agent_given", "models_loaded_at_start"])
async def test_a_reload_while_the_models_warm_up_leaves_a_warmed_agent_live(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: bool
) -> None:
    ari = HeldAri()
    old = config_with(tmp_path, NO_HOOK, "old", kind="agent")
    new = config_with(tmp_path, NO_HOOK, "new", kind="agent")
    llm = ScriptedLanguageModel(token_delay=0, hold_prefill=asyncio.Event())
    agent = agent_for(old, llm)
    if not given:
        monkeypatch.setattr("bridge.conversation.loading.load_agent", lambda config: agent)
    service, _ = service_on(monkeypatch, ari, old, **({"agent": agent} if given else {}))
    starting = asyncio.ensure_future(service._build_pipelines())
    await asyncio.wait_for(llm.prefilling.wait(), 30)  # start-up's warm-up is under way

    reloading = asyncio.ensure_future(service.reload(new))
    await settle()
    assert llm.hold_prefill is not None
    llm.hold_prefill.set()
    await starting
    assert await reloading == []
    if service._warming is not None:
        await service._warming

    live = service.agent
    assert live is not None and set(live.personas) == {"new_default", "new_line", "new_out"}
    rates = new.media.call_rates()
    assert [name for name in live.personas if not warmed(live, name, rates)] == []
    await closed(service)


async def test_overlapping_reloads_apply_in_the_order_they_were_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ari = HeldAri()
    service, _ = service_on(
        monkeypatch, ari, config_with(tmp_path, NO_HOOK, "old"), pipelines=lambda persona: EchoPipeline()
    )
    checked: list[RoutingConfig] = []
    first_checked = asyncio.Event()

    async def first_is_slow(routing: RoutingConfig, ari: EndpointDirectory, queues: QueueMonitor | None) -> list[str]:
        checked.append(routing)
        if len(checked) == 1:
            await first_checked.wait()
        return []

    monkeypatch.setattr(service_module, "missing_targets", first_is_slow)
    first = asyncio.ensure_future(service.reload(config_with(tmp_path, NO_HOOK, "first")))
    await until(lambda: len(checked) == 1)
    second = asyncio.ensure_future(service.reload(config_with(tmp_path, NO_HOOK, "second")))
    await settle()
    first_checked.set()
    await asyncio.gather(first, second)

    assert service.config.conversation.default_persona == "second_default"
    assert service.dialer.app_personas == {"second_default", "second_line", "second_out"}
    await closed(service)


async def test_a_reload_stops_the_last_reloads_warm_up_before_starting_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ari = HeldAri()
    old = config_with(tmp_path, NO_HOOK, "old", kind="agent")
    llm = ScriptedLanguageModel(token_delay=0, hold_prefill=asyncio.Event())
    agent = agent_for(old, llm)
    service, _ = service_on(monkeypatch, ari, old, pipelines=pipeline_factory(old, agent), agent=agent)

    await service.reload(config_with(tmp_path, NO_HOOK, "first", kind="agent"))
    first_warming = service._warming
    await settle()
    assert first_warming is not None and not first_warming.done()  # held in the LLM's prefill
    await service.reload(config_with(tmp_path, NO_HOOK, "second", kind="agent"))

    assert first_warming.cancelled()
    assert llm.hold_prefill is not None
    llm.hold_prefill.set()
    assert service._warming is not None
    await service._warming
    live = service.agent
    assert live is not None and warmed(live, "second_default", old.media.call_rates())
    await closed(service)
