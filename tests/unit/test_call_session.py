"""Call set-up and tear-down against a scripted ARI (no Asterisk): failures end one call cleanly."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from bridge.ari.client import AriClient, AriError, AriNotFound
from bridge.config import parse_config
from bridge.config.routing import TransferTarget
from bridge.media.clock import MediaClock
from bridge.pipelines.echo import EchoPipeline
from bridge.routing.intents import RouteMatch
from bridge.telephony.call import CallSession, asterisk_rtp_address
from bridge.telephony.stasis import CallSettings, StasisApplication


class ScriptedAri:
    """Records calls; fails the operations named in `fail`. Only AriClient's own operations exist,
    called as AriClient declares them: a misspelt or misused operation fails the test here, not
    against a real Asterisk."""

    base_url = "http://127.0.0.1:8088"
    app = "ai-bridge"

    def __init__(self, fail: dict[str, AriError] | None = None) -> None:
        unknown = set(fail or {}) - ARI_OPERATIONS.keys()
        assert not unknown, f"AriClient has no {sorted(unknown)}"
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail = fail or {}
        self.application: StasisApplication | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in ARI_OPERATIONS:
            raise AttributeError(f"AriClient has no operation {name!r}")
        signature = ARI_OPERATIONS[name]

        async def operation(*args: Any, **kwargs: Any) -> Any:
            signature.bind(self, *args, **kwargs)  # TypeError: not how AriClient is called
            self.calls.append((name, args))
            if name in self.fail:
                raise self.fail[name]
            if name == "external_media":
                assert self.application is not None
                await self.application.handle_event({"type": "StasisStart", "channel": {"id": args[0]}})
                return {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "10000"}}
            if name == "get_variable" and args[1] == "CHANNEL(audionativeformat)":
                return "(ulaw|alaw)"
            return None

        return operation

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# The coroutine methods of the real client, by name: what a call may ask of ARI.
ARI_OPERATIONS = {
    name: inspect.signature(member)
    for name, member in inspect.getmembers(AriClient, inspect.iscoroutinefunction)
    if not name.startswith("_")
}


def make_app(ari: ScriptedAri) -> StasisApplication:
    config = parse_config({"media": {"rtp_port_min": 0, "rtp_port_max": 0}})
    settings = CallSettings(lambda persona: EchoPipeline())
    app = StasisApplication(ari, config.media, MediaClock(), lambda: settings)  # type: ignore[arg-type]
    ari.application = app
    return app


async def start_call(app: StasisApplication, channel_id: str = "chan-1") -> None:
    await app.handle_event(
        {"type": "StasisStart", "args": ["sales"], "channel": {"id": channel_id, "caller": {"number": "100"}}}
    )


async def finished(app: StasisApplication, count: int = 1) -> None:
    async with app.call_finished:
        await asyncio.wait_for(app.call_finished.wait_for(lambda: len(app.finished) >= count), 5)


async def test_call_is_bridged_then_fully_torn_down_on_hangup() -> None:
    ari = ScriptedAri()
    app = make_app(ari)
    await start_call(app)
    for _ in range(100):
        if "add_to_bridge" in ari.names():
            break
        await asyncio.sleep(0.01)
    call = app.calls["chan-1"]
    await app.handle_event({"type": "StasisEnd", "channel": {"id": "chan-1"}})
    await finished(app)
    record = app.finished[0]
    assert record.persona == "sales" and record.media_connected and record.end_reason == "caller:StasisEnd"
    assert record.caller_codec == "ulaw,alaw"
    assert call.rtp is not None and call.rtp.remote == ("127.0.0.1", 10000), "RTP trusted only from Asterisk"
    # The caller's codec is read first: it chooses our leg's (u-law for this G.711 caller).
    assert ari.names()[:5] == ["answer", "get_variable", "create_bridge", "external_media", "add_to_bridge"]
    assert record.media_format == "ulaw"
    assert ("hangup", (call.media_channel_id,)) in ari.calls
    assert ("hangup", ("chan-1",)) not in ari.calls, "the caller already left"
    assert ari.names()[-1] == "destroy_bridge"
    assert app.calls == {} and app.clock.sink_count == 0


async def test_ari_error_during_setup_hands_the_caller_back_to_the_dialplan() -> None:
    ari = ScriptedAri(fail={"create_bridge": AriError("POST", "/bridges", 500, "Internal Server Error")})
    app = make_app(ari)
    await start_call(app)
    await finished(app)
    record = app.finished[0]
    assert "500" in record.error
    assert ("set_variable", ("chan-1", "BRIDGE_RESULT", "failed")) in ari.calls
    assert ("continue_in_dialplan", ("chan-1",)) in ari.calls
    assert record.end_reason == "handed_back_to_dialplan:failed"


async def test_caller_gone_during_setup_leaks_nothing() -> None:
    ari = ScriptedAri(fail={"answer": AriNotFound("POST", "/channels/chan-1/answer", 404, "Channel not found")})
    app = make_app(ari)
    await start_call(app)
    await app.handle_event({"type": "ChannelDestroyed", "channel": {"id": "chan-1"}})
    await finished(app)
    record = app.finished[0]
    # Nothing was created, so nothing is hung up, destroyed or handed back: the failed answer was all.
    assert ari.names() == ["answer"]
    assert record.end_reason == "caller:ChannelDestroyed" and "404" in record.error
    assert not record.answered and not record.media_connected and record.media is None
    assert app.calls == {} and app.clock.sink_count == 0


async def test_the_scripted_ari_has_only_the_real_clients_operations() -> None:
    ari = ScriptedAri()
    await ari.hangup("chan-1", reason="busy")
    with pytest.raises(AttributeError, match="no operation 'hang_up'"):
        ari.hang_up  # noqa: B018 - the lookup is what fails
    with pytest.raises(TypeError):
        await ari.set_variable("chan-1", "AI_INTENT")  # no value
    with pytest.raises(AssertionError, match="no \\['answr'\\]"):
        ScriptedAri(fail={"answr": AriError("POST", "/channels/chan-1/answer", 500, "no")})
    assert ari.calls == [("hangup", ("chan-1",))]


async def test_events_for_unknown_channels_are_ignored() -> None:
    app = make_app(ScriptedAri())
    await app.handle_event({"type": "StasisEnd", "channel": {"id": "nobody"}})
    await app.handle_event({"type": "ChannelVarset"})
    assert app.calls == {}


@pytest.mark.parametrize(
    ("given", "kept"),
    [("0f8e3c1a-6b2d-4e5f-9a7b-1c2d3e4f5a6b", "0f8e3c1a-6b2d-4e5f-9a7b-1c2d3e4f5a6b"), ("x'); drop", ""), ("", "")],
)
async def test_only_a_well_formed_web_phone_session_id_is_kept(given: str, kept: str) -> None:
    ari = ScriptedAri()
    app = make_app(ari)
    await app.handle_event({"type": "StasisStart", "args": ["", "agent", given], "channel": {"id": "web-1"}})
    call = app.calls["web-1"]
    assert call.record.client_session == kept and call.record.called == "agent"
    assert app.client_call(kept)[0] is (call if kept else None)
    await app.handle_event({"type": "StasisEnd", "channel": {"id": "web-1"}})
    await finished(app)


@pytest.mark.parametrize(
    ("channelvars", "ari_url", "expected"),
    [
        (
            {"UNICASTRTP_LOCAL_ADDRESS": "10.0.0.5", "UNICASTRTP_LOCAL_PORT": "10000"},
            "http://pbx:8088",
            ("10.0.0.5", 10000),
        ),
        (
            {"UNICASTRTP_LOCAL_ADDRESS": "0.0.0.0", "UNICASTRTP_LOCAL_PORT": "10002"},
            "http://127.0.0.1:8088",
            ("127.0.0.1", 10002),
        ),
        ({}, "http://127.0.0.1:8088", ("127.0.0.1", 0)),
        ({}, "http://localhost:8088", ("127.0.0.1", 0)),
    ],
)
async def test_asterisks_rtp_address_is_always_known_and_numeric(
    channelvars: dict[str, str], ari_url: str, expected: tuple[str, int]
) -> None:
    """No channel vars must not mean "accept RTP from anyone": fall back to Asterisk's host, any port."""
    assert await asterisk_rtp_address({"channelvars": channelvars}, ari_url, "127.0.0.1") == expected


async def test_caller_words_reach_the_dialplan_only_cleaned() -> None:
    """The summary and the caller's name are expanded in dialplan arguments: no commas, pipes, ${...}."""
    ari = ScriptedAri(fail={"originate": AriError("POST", "/channels", 500, "no")})
    channel = {"id": "chan-1", "caller": {"number": "100>, 200", "name": 'Eve" <666>'}}
    call = CallSession(
        ari,  # type: ignore[arg-type]
        parse_config({}).media,
        MediaClock(),
        EchoPipeline(),
        channel,
        "receptionist",
        lambda _: asyncio.get_running_loop().create_future(),
    )
    target = TransferTarget(kind="extension", destination="PJSIP/201", description="the desk")
    variables = {"AI_SUMMARY": "call me,back|now ${SHELL(id)}\n", "AI_CALLER_NAME": "Eve)"}
    assert await call.transfer(RouteMatch("desk", target, "phrase:desk"), variables) == "unavailable"
    assert ("set_variable", ("chan-1", "AI_SUMMARY", "call me back now {SHELL id }")) in ari.calls
    assert ("set_variable", ("chan-1", "AI_CALLER_NAME", "Eve")) in ari.calls
    ((_, originate),) = [entry for entry in ari.calls if entry[0] == "originate"]
    assert originate[-1] == '"Eve 666" <100200>'
