"""The persona is chosen once, when the call arrives: the record names the persona the pipeline
was built for, never a name the dialplan asked for that nobody configured."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from bridge.ari.client import AriError
from bridge.config import parse_config
from bridge.media.clock import MediaClock
from bridge.pipelines.base import MediaPipeline
from bridge.pipelines.echo import EchoPipeline
from bridge.telephony.stasis import CallSettings, StasisApplication
from tests.unit.test_call_session import ScriptedAri

PERSONAS = {"receptionist", "sales"}


def app_building_for(built: list[str], **options: object) -> StasisApplication:
    """A Stasis app whose calls fail at answer (no media needed) and whose pipelines note their persona."""

    def pipeline(persona: str) -> MediaPipeline:
        built.append(persona)
        return EchoPipeline()

    ari = ScriptedAri(fail={"answer": AriError("POST", "/channels/c/answer", 500, "test")})
    config = parse_config({"media": {"rtp_port_min": 0, "rtp_port_max": 0}})
    app = StasisApplication(
        ari,  # type: ignore[arg-type]
        config.media,
        MediaClock(),
        lambda: CallSettings(
            pipeline,
            default_persona="receptionist",
            personas=frozenset(PERSONAS),
            personas_by_number={"18005550199": "sales"},
        ),
        **options,  # type: ignore[arg-type]
    )
    ari.application = app
    return app


async def arrives(app: StasisApplication, args: list[str]) -> None:
    await app.handle_event({"type": "StasisStart", "args": args, "channel": {"id": "c", "caller": {"number": "1"}}})
    async with app.call_finished:
        await asyncio.wait_for(app.call_finished.wait_for(lambda: len(app.finished) >= 1), 5)


@pytest.mark.parametrize(
    ("args", "persona"),
    [
        (["sales"], "sales"),  # asked for by name
        (["", "18005550199"], "sales"),  # by the number called
        ([], "receptionist"),  # neither: the default
        (["recepshunist"], "receptionist"),  # a typo in the dialplan: the default, said so in the record
    ],
)
async def test_the_record_names_the_persona_the_pipeline_was_built_for(args: list[str], persona: str) -> None:
    built: list[str] = []
    app = app_building_for(built)
    await arrives(app, args)
    assert built == [persona]
    assert app.finished[0].persona == persona


async def test_an_unknown_persona_is_logged_by_the_name_asked_for() -> None:
    app = app_building_for([])
    with capture_logs() as logs:
        await arrives(app, ["recepshunist"])
    (warning,) = [entry for entry in logs if entry["event"] == "call.unknown_persona"]
    assert (warning["asked"], warning["persona"], warning["call"]) == ("recepshunist", "receptionist", "c")


async def test_a_declined_call_is_recorded_with_the_persona_it_would_have_had() -> None:
    built: list[str] = []
    app = app_building_for(built, max_calls=0)
    await arrives(app, ["recepshunist"])
    assert built == [] and app.finished[0].end_reason == "declined:at_capacity"
    assert app.finished[0].persona == "receptionist"
