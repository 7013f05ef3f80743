"""A caller talks to the local agent through a real Asterisk (sipp plays synthesized caller speech).

What the caller said is checked in the call record's transcript; what the agent said is taken off
the wire (tcpdump between Asterisk and sipp) and transcribed, so these tests hear exactly what a
caller would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

import pytest

from bridge.conversation.agent import Agent
from bridge.media.codecs import codec_for, rms
from bridge.pbx.instance import AsteriskInstance
from bridge.records import CallRecord
from bridge.speech.llm import ChatMessage, LabelScores
from bridge.speech.stt import RecognitionStream, SpeechRecognizer
from bridge.speech.workers import ModelWorker, Supervised
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_faults import until
from tests.integration.test_routing_fallback import wait_for_queue_caller
from tests.support.capture import LoopbackCapture
from tests.support.pcap import write_rtp_pcap
from tests.support.sipp import SippCaller
from tests.support.speech import caller_says, silence, similarity, transcribe, words
from tests.support.wire import SILENT_RMS, WireAudio, calls_on_wire

pytestmark = pytest.mark.integration

ULAW = codec_for("ulaw")


async def call_agent(asterisk: AsteriskInstance, workdir: Path, audio: bytes, name: str) -> tuple[WireAudio, int]:
    pcap = workdir / f"{name}.pcap"
    write_rtp_pcap(pcap, audio, ULAW)
    caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), pcap, hold_ms=int(len(audio) / 16) + 300)
    async with LoopbackCapture(workdir / f"{name}-wire.pcap", f"udp and port {caller.media_port}") as capture:
        result = await caller.run(timeout=60)
    assert result.successful_calls == 1, result.output
    (wire,) = calls_on_wire(capture.datagrams(), caller.media_port)
    return wire, caller.media_port


async def hear(agent: Agent, pcm: bytes) -> set[str]:
    return words(await asyncio.to_thread(transcribe, agent.recognizer, pcm, 8000))


def only_record(service_records: list[CallRecord]) -> CallRecord:
    assert len(service_records) == 1
    return service_records[0]


async def test_caller_question_gets_a_spoken_answer_on_topic(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    question = caller_says("Where are you located?")
    audio = silence(5.0) + question + silence(7.0)
    async with running_bridge(asterisk, agent=agent) as service:
        wire, _ = await call_agent(asterisk, workdir, audio, "question")
        await wait_for_finished_calls(service, 1)
        record = only_record(list(service.app.finished))

    turns = record.as_dict()["conversation"]["turns"]
    assert len(turns) == 1, record.conversation
    assert similarity(turns[0]["caller"], "where are you located") >= 0.7, turns[0]
    assert turns[0]["outcome"] == "answered"
    assert set(turns[0]["latency_ms"]) == {
        "endpoint", "stt_final", "decision", "llm_first_token", "first_clause", "tts_first_audio", "first_frame_out"
    }  # fmt: skip

    asked_at = wire.first_sent_voice(after=4.0)
    greeting = await hear(agent, wire.received_between(0.0, asked_at))
    assert {"bright", "smile", "dental"} & greeting, greeting
    answer = await hear(agent, wire.received_between(asked_at, 99.0))
    assert {"harbour", "harbor", "street", "12"} & answer, answer


async def test_caller_barging_in_silences_the_agent(asterisk: AsteriskInstance, workdir: Path, agent: Agent) -> None:
    interruption = caller_says("Sorry, what are your opening hours on Saturday?")
    audio = silence(1.2) + interruption + silence(7.0)
    async with running_bridge(asterisk, agent=agent) as service:
        wire, _ = await call_agent(asterisk, workdir, audio, "barge-in")
        await wait_for_finished_calls(service, 1)
        record = only_record(list(service.app.finished))

    assert record.as_dict()["conversation"]["barge_ins"] == 1, record.conversation
    onset = wire.first_sent_voice()
    finished = wire.last_sent_voice(before=onset + 6)
    greeting_spans = [span for span in wire.received_voice_spans() if span[0] < onset]
    assert greeting_spans, "the greeting never started"
    # The greeting runs ~4 s; once the caller talks over it, the line from the agent goes quiet.
    while_caller_talks = wire.received_between(onset + 0.4, finished)
    assert rms(while_caller_talks) < SILENT_RMS, "agent kept talking over the caller"
    turn = record.as_dict()["conversation"]["turns"][0]
    assert similarity(turn["caller"], "sorry what are your opening hours on saturday") >= 0.7, turn
    answer = await hear(agent, wire.received_between(finished, 99.0))
    assert {"saturday", "9", "nine", "1", "pm", "9am", "1pm"} & answer, answer


class BrokenLanguageModel:
    """An LLM backend that fails mid-call, as a crashed model server would."""

    name = "broken"

    def workers(self) -> list[Supervised]:
        return []

    async def prefill(self, messages: list[ChatMessage], everywhere: bool = False) -> None:
        return None

    async def labelled_reply(
        self, messages: list[ChatMessage], labels: Sequence[str], go: object = None
    ) -> AsyncGenerator[LabelScores | str, None]:
        yield LabelScores.of({"answer": 1.0})
        yield "Let me"
        raise RuntimeError("model server went away")


async def test_backend_failure_apologises_and_transfers_to_the_queue(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    broken = dataclasses.replace(agent, llm=BrokenLanguageModel())
    audio = silence(5.0) + caller_says("Can I book a cleaning please?") + silence(9.0)
    async with running_bridge(asterisk, agent=broken) as service:
        call = asyncio.create_task(call_agent(asterisk, workdir, audio, "broken"))
        await wait_for_queue_caller(asterisk, timeout=30)
        await wait_for_finished_calls(service, 1)
        record = only_record(list(service.app.finished))
        wire, _ = await call

    assert record.end_reason == "handed_back_to_dialplan:failed"
    assert record.as_dict()["conversation"]["end_reason"] == "backend_error"
    assert any("model server went away" in error for error in record.as_dict()["conversation"]["errors"])
    asked_at = wire.first_sent_voice(after=4.0)
    apology = await hear(agent, wire.received_between(asked_at, asked_at + 8.0))
    assert {"sorry", "colleague", "problem"} & apology, apology


@dataclasses.dataclass
class WedgedOnce:
    """The real Whisper, except that the first final() never returns until released: a stuck
    decoder thread, which no exception announces."""

    real: SpeechRecognizer
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    wedged: bool = False

    @property
    def name(self) -> str:
        return self.real.name

    @property
    def sample_rate(self) -> int:
        return self.real.sample_rate

    def open_stream(self, hints: str = "") -> RecognitionStream:
        stream = self.real.open_stream(hints)
        if self.wedged:
            return stream
        self.wedged = True
        return _WedgedStream(stream, self.release)


@dataclasses.dataclass
class _WedgedStream:
    real: RecognitionStream
    release: threading.Event

    def accept(self, pcm: bytes) -> None:
        self.real.accept(pcm)

    def partial(self) -> str:
        return self.real.partial()

    def final(self) -> str:
        self.release.wait(120)
        return self.real.final()


async def test_a_stuck_recogniser_sends_the_caller_to_a_person_and_is_restarted_for_the_next_call(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    recognizer = WedgedOnce(agent.recognizer)
    stt = ModelWorker("stt", stall_seconds=1.0)
    wedged = dataclasses.replace(agent, recognizer=recognizer, stt_worker=stt)
    question = caller_says("What are your opening hours?")
    try:
        async with running_bridge(asterisk, agent=wedged, conversation={"stt_timeout_seconds": 2.0}) as service:
            first = asyncio.create_task(call_agent(asterisk, workdir, silence(5.0) + question + silence(8.0), "stuck"))
            await wait_for_queue_caller(asterisk, timeout=30)
            await wait_for_finished_calls(service, 1)
            stuck = service.app.finished[0]
            assert stuck.end_reason == "handed_back_to_dialplan:failed"
            assert stuck.as_dict()["conversation"]["errors"] == [
                "ModelStalled: speech recognition gave nothing for 2 s"
            ]
            await until(lambda: stt.state().restarts > 0, 15, "the supervisor (every 5 s) to restart it")
            assert service.health()["models"]["stt"]["restarts"] == 1
            assert service.health()["models_ok"]

            await call_agent(asterisk, workdir, silence(5.0) + question + silence(8.0), "after")
            await wait_for_finished_calls(service, 2)
            answered = service.app.finished[1]
            await first
    finally:
        recognizer.release.set()
    (turn,) = [turn for turn in answered.as_dict()["conversation"]["turns"] if turn["caller"]]
    assert turn["outcome"].startswith("answered"), turn
    assert "opening" in turn["caller"].lower()  # heard by the real Whisper on its fresh thread


async def test_smart_turn_judges_the_callers_pause_in_a_real_call(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    """turn.detector = "smart_turn": the real model judges the real call's audio at the pause, its
    verdict is in the turn record, and the caller is answered."""
    from bridge.config.agent import TurnConfig
    from bridge.conversation.loading import load_turn_model

    settings = TurnConfig(detector="smart_turn")
    judged = dataclasses.replace(
        agent, turn_model=load_turn_model(settings), turn_worker=ModelWorker("turn"), turn_settings=settings
    )
    audio = silence(5.0) + caller_says("Where are you located?") + silence(7.0)
    async with running_bridge(asterisk, agent=judged) as service:
        await call_agent(asterisk, workdir, audio, "smart-turn")
        await wait_for_finished_calls(service, 1)
        record = only_record(list(service.app.finished))

    (turn,) = record.as_dict()["conversation"]["turns"]
    assert turn["outcome"] == "answered", turn
    assert turn["end_of_turn"] and all(0.0 <= p <= 1.0 for p in turn["end_of_turn"]), turn
    assert similarity(turn["caller"], "where are you located") >= 0.7, turn
    assert {"harbour", "harbor", "street", "12"} & words(turn["agent"]), turn
