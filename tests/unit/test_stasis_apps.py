"""One bridge among several on one Asterisk, seen from its Stasis app: it declines with the word its
dialplan knows, and its reconcile touches only its own app's channels and bridges."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from structlog.testing import capture_logs

from bridge.config import parse_config
from bridge.media.clock import MediaClock
from bridge.pipelines.echo import EchoPipeline
from bridge.telephony.call import bridge_name
from bridge.telephony.stasis import CallSettings, StasisApplication


@dataclass
class SharedAsterisk:
    """The channels (by app) and mixing bridges of one Asterisk that several bridges use."""

    channels: dict[str, str] = field(default_factory=dict)  # channel id -> Stasis app
    bridges: list[dict[str, Any]] = field(default_factory=list)
    operations: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # app, operation, args


class AppView:
    """ARI as the bridge running Stasis app `app` sees the shared Asterisk: only what reconcile and
    a decline use, so a call to anything else fails the test."""

    base_url = "http://127.0.0.1:8088"

    def __init__(self, asterisk: SharedAsterisk, app: str) -> None:
        self.asterisk = asterisk
        self.app = app
        self.application: StasisApplication | None = None

    def _did(self, operation: str, *args: str) -> None:
        self.asterisk.operations.append((self.app, operation, args))

    async def user_event(self, name: str) -> None:
        """The events socket has no backlog here: the barrier event comes straight back."""
        assert self.application is not None
        await self.application.handle_event({"type": "ChannelUserevent", "eventname": name})

    async def list_channels(self) -> list[dict[str, Any]]:
        return [{"id": channel_id} for channel_id in self.asterisk.channels]

    async def application_channels(self) -> list[str]:
        return [channel_id for channel_id, app in self.asterisk.channels.items() if app == self.app]

    async def list_bridges(self) -> list[dict[str, Any]]:
        return list(self.asterisk.bridges)

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        self._did("set_variable", channel_id, variable, value)

    async def continue_in_dialplan(self, channel_id: str) -> None:
        self._did("continue_in_dialplan", channel_id)
        self.asterisk.channels.pop(channel_id, None)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._did("hangup", channel_id)
        self.asterisk.channels.pop(channel_id, None)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._did("destroy_bridge", bridge_id)
        self.asterisk.bridges = [bridge for bridge in self.asterisk.bridges if bridge["id"] != bridge_id]


def stasis_app(ari: AppView) -> StasisApplication:
    config = parse_config({"media": {"rtp_port_min": 0, "rtp_port_max": 0}})
    settings = CallSettings(lambda persona: EchoPipeline())
    app = StasisApplication(ari, config.media, MediaClock(), lambda: settings, max_calls=1)  # type: ignore[arg-type]
    ari.application = app
    return app


def an_asterisk_with_a_live_call_on_a_and_leftovers_of_b() -> SharedAsterisk:
    """Bridge A is talking to a caller; bridge B died mid-call and left its caller and media leg in
    its app; a third app whose name starts like B's has a bridge of its own."""
    asterisk = SharedAsterisk(
        channels={"a-caller": "bridge-a", "em-a": "bridge-a", "b-caller": "bridge-b", "em-b": "bridge-b"},
    )
    asterisk.bridges = [
        {"id": "br-a", "name": bridge_name("bridge-a", "a-caller"), "channels": ["a-caller", "em-a"]},
        {"id": "br-b", "name": bridge_name("bridge-b", "b-caller"), "channels": ["b-caller", "em-b"]},
        {"id": "br-b2", "name": bridge_name("bridge-b-2", "x"), "channels": []},
        {"id": "br-other", "name": "someone-elses-conference", "channels": []},
    ]
    return asterisk


async def reconciled(app: StasisApplication, logs: list[dict[str, Any]]) -> dict[str, Any]:
    await app.reconcile()
    async with asyncio.timeout(5):
        while True:
            done = [entry for entry in logs if entry["event"] == "stasis.reconciled"]
            if done:
                return done[0]
            await asyncio.sleep(0.01)


async def test_reconcile_of_one_bridge_never_touches_another_bridges_call() -> None:
    asterisk = an_asterisk_with_a_live_call_on_a_and_leftovers_of_b()
    app_b = stasis_app(AppView(asterisk, "bridge-b"))
    with capture_logs() as logs:
        summary = await reconciled(app_b, logs)
    assert summary["orphans"] == 2 and summary["bridges"] == 1
    touched = {args[0] for _, _, args in asterisk.operations}
    assert touched == {"b-caller", "em-b", "br-b"}
    # B's caller goes to the dialplan (a person), its media leg and mixing bridge are removed.
    assert ("bridge-b", "set_variable", ("b-caller", "BRIDGE_RESULT", "failed")) in asterisk.operations
    assert ("bridge-b", "hangup", ("em-b",)) in asterisk.operations
    # A's call, the look-alike app's bridge and a bridge nobody of ours named are left alone.
    assert asterisk.channels == {"a-caller": "bridge-a", "em-a": "bridge-a"}
    assert [bridge["id"] for bridge in asterisk.bridges] == ["br-a", "br-b2", "br-other"]


async def test_each_bridge_cleans_up_only_its_own_app() -> None:
    asterisk = an_asterisk_with_a_live_call_on_a_and_leftovers_of_b()
    app_a = stasis_app(AppView(asterisk, "bridge-a"))  # A restarted: its old call is an orphan now
    with capture_logs() as logs:
        summary = await reconciled(app_a, logs)
    assert summary["orphans"] == 2 and summary["bridges"] == 1
    assert {args[0] for _, _, args in asterisk.operations} == {"a-caller", "em-a", "br-a"}
    assert asterisk.channels == {"b-caller": "bridge-b", "em-b": "bridge-b"}  # B's, for B to rescue


async def test_a_declined_call_is_offered_to_the_next_bridge_only_by_a_dialplan_that_lists_them() -> None:
    asterisk = SharedAsterisk(channels={"c1": "bridge-b", "c2": "bridge-b", "c3": "bridge-b"})
    app = stasis_app(AppView(asterisk, "bridge-b"))
    app.accepting = False  # draining: every new call is declined
    # c1: before the dialplan was read; c2: an [ai-agent] from before BRIDGE_APPS; c3: the shipped one.
    for count, (channel_id, apps_global) in enumerate((("c1", None), ("c2", ""), ("c3", "bridge-a,bridge-b")), 1):
        if apps_global is not None:
            app.follow_dialplan(apps_global)
        await app.handle_event({"type": "StasisStart", "args": ["", "100"], "channel": {"id": channel_id}})
        async with app.call_finished, asyncio.timeout(5):
            await app.call_finished.wait_for(lambda: len(app.finished) == count)  # noqa: B023
    results = {args[0]: args[2] for _, operation, args in asterisk.operations if operation == "set_variable"}
    assert results == {"c1": "failed", "c2": "failed", "c3": "declined"}
    assert [record.end_reason for record in app.finished] == ["declined:shutting_down"] * 3
    assert ("bridge-b", "continue_in_dialplan", ("c3",)) in asterisk.operations


async def test_another_connection_taking_over_the_app_name_is_reported_with_the_fix() -> None:
    app = stasis_app(AppView(SharedAsterisk(), "bridge-a"))
    with capture_logs() as logs:
        await app.handle_event({"type": "ApplicationReplaced", "application": "bridge-a"})
    (entry,) = [entry for entry in logs if entry["event"] == "ari.app_taken_over"]
    assert entry["log_level"] == "error" and "its own ari.app" in entry["hint"]
