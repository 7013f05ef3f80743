"""Speech on Wyoming servers: the real wyoming-faster-whisper and wyoming-piper (what Home
Assistant users run) with the packaged model files, nothing from a hub, and a real call through
Asterisk that is heard and answered through them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.commands.doctor import check_wyoming
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from bridge.speech.tts import Speaker
from bridge.speech.workers import ModelWorker
from bridge.speech.wyoming import WyomingRecognizer, WyomingSynthesizer
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_routing import place_call
from tests.support.model_servers import VOICE, start_wyoming_servers
from tests.support.servers import free_tcp_port, stop_server
from tests.support.speech import caller_says, silence, transcribe, words

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wyoming_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    processes, stt_uri, tts_uri = start_wyoming_servers(tmp_path_factory.mktemp("wyoming"))
    try:
        yield stt_uri, tts_uri
    finally:
        for process in processes:
            stop_server(process)


async def test_doctor_checks_both_wyoming_servers(wyoming_servers: tuple[str, str]) -> None:
    stt, tts = wyoming_servers
    config = parse_config(
        {"stt": {"backend": "wyoming", "uri": stt}, "tts": {"backend": "wyoming", "uri": tts, "voice": VOICE}}
    )
    findings = await check_wyoming(config)
    assert [finding.ok for finding in findings] == [True, True], [finding.line() for finding in findings]
    assert VOICE in findings[1].detail


async def test_doctor_says_when_a_wyoming_server_is_down() -> None:
    config = parse_config({"stt": {"backend": "wyoming", "uri": f"tcp://127.0.0.1:{free_tcp_port()}"}})
    (finding,) = await check_wyoming(config)
    assert not finding.ok and "is the server running" in finding.detail


@pytest.mark.timeout(300)
async def test_a_call_is_heard_and_answered_through_wyoming(
    wyoming_servers: tuple[str, str], asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    stt, tts = wyoming_servers
    synthesizer = await asyncio.to_thread(WyomingSynthesizer, tts)
    assert synthesizer.sample_rate == 22050  # learnt from the server's AudioStart
    remote = dataclasses.replace(
        agent,
        recognizer=WyomingRecognizer(stt),
        stt_worker=ModelWorker("stt-wyoming"),
        speaker=Speaker(synthesizer),
        _phrases={},
        _rendering={},
    )
    audio = silence(4.0) + caller_says("What are your opening hours on Saturday?") + silence(10.0)
    async with running_bridge(asterisk, agent=remote) as service:
        _, wire = await place_call(asterisk, workdir, audio, "wyoming")
        await wait_for_finished_calls(service, 1, timeout=30)
        record = service.app.finished[0]
    assert record.as_dict()["conversation"]["errors"] == []
    (turn,) = [turn for turn in record.as_dict()["conversation"]["turns"] if turn["caller"]]
    assert "opening" in turn["caller"].lower(), turn  # heard by the Wyoming Whisper
    assert turn["outcome"].startswith("answered"), turn
    asked_at = wire.first_sent_voice(after=3.0)
    greeting = words(await asyncio.to_thread(transcribe, agent.recognizer, wire.received_between(0.0, asked_at), 8000))
    assert {"bright", "smile", "dental"} & greeting, greeting  # spoken by the Wyoming Piper
