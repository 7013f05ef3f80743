"""A real SIP call (sipp) into a real Asterisk reaches our Stasis app; audio flows both ways."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from bridge.app.pipelines import pipeline_factory
from bridge.app.service import BridgeService
from bridge.config import parse_config
from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance
from bridge.pipelines.echo import EchoPipeline
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.support.audio import dominant_frequency, level, tone
from tests.support.capture import LoopbackCapture
from tests.support.pcap import rtp_streams, write_rtp_pcap
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration

CALLER_TONE_HZ = 440.0
PROMPT_TONE_HZ = 1000.0


class RecordingEcho(EchoPipeline):
    """The product's echo pipeline, also keeping what it heard so the test can analyse it."""

    heard: list[bytes]

    def __init__(self) -> None:
        super().__init__()
        self.heard = []

    def on_audio(self, pcm: bytes) -> None:
        self.heard.append(pcm)
        super().on_audio(pcm)


def caller_pcap(workdir: Path, seconds: float = 2.0) -> Path:
    ulaw = codec_for("ulaw")
    path = workdir / "caller-tone.pcap"
    write_rtp_pcap(path, tone(CALLER_TONE_HZ, seconds, ulaw.sample_rate), ulaw)
    return path


def received_by_caller(capture: LoopbackCapture, caller: SippCaller) -> bytes:
    """Decode the longest RTP stream Asterisk sent to sipp's media port."""
    to_caller = [d for d in capture.datagrams() if d.dst[1] == caller.media_port]
    streams = rtp_streams(to_caller)
    assert streams, "no RTP at all reached the caller"
    longest = max(streams.values(), key=len)
    ulaw = codec_for("ulaw")
    return b"".join(ulaw.decode(packet.payload) for _, packet in longest if packet.payload_type == 0)


async def assert_nothing_left(asterisk: AsteriskInstance, service: BridgeService) -> None:
    assert await service.client.list_channels() == []
    assert await service.client.list_bridges() == []
    assert service.app.calls == {}
    assert service.clock.sink_count == 0


@pytest.mark.parametrize("audio_format", ["ulaw", "alaw"])
async def test_echo_call_carries_audio_both_ways(asterisk: AsteriskInstance, workdir: Path, audio_format: str) -> None:
    pipelines: list[RecordingEcho] = []

    def make_pipeline(persona: str) -> RecordingEcho:
        pipelines.append(RecordingEcho())
        return pipelines[-1]

    async with running_bridge(asterisk, make_pipeline, format=audio_format) as service:
        caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir), hold_ms=3500)
        async with LoopbackCapture(workdir / "caller.pcap", f"udp and dst port {caller.media_port}") as capture:
            result = await caller.run(timeout=30)
        assert result.returncode == 0 and result.successful_calls == 1, result.output
        await wait_for_finished_calls(service, 1)

        record = service.app.finished[0]
        assert record.persona == "receptionist"
        assert record.caller == "15551230000"
        assert record.media_connected and not record.error
        assert record.media.packets_in >= 80, record.media
        assert record.media.malformed == record.media.foreign == record.media.wrong_payload_type == 0

        rate = codec_for(audio_format).sample_rate
        heard = b"".join(pipelines[0].heard)
        assert level(heard) > 1000
        assert dominant_frequency(heard, rate) == pytest.approx(CALLER_TONE_HZ, abs=15)

        back = received_by_caller(capture, caller)
        assert level(back) > 1000, "the caller heard silence"
        assert dominant_frequency(back, 8000) == pytest.approx(CALLER_TONE_HZ, abs=15)
        await assert_nothing_left(asterisk, service)


async def test_prompt_pipeline_is_heard_by_the_caller(asterisk: AsteriskInstance, workdir: Path) -> None:
    prompt = workdir / "prompt.wav"
    with wave.open(str(prompt), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(tone(PROMPT_TONE_HZ, 1.5, 16000))
    silent_pcap = workdir / "silence.pcap"
    ulaw = codec_for("ulaw")
    write_rtp_pcap(silent_pcap, bytes(ulaw.pcm_frame_bytes * 150), ulaw)

    prompt_pipelines = pipeline_factory(parse_config({"pipeline": {"kind": "prompt", "prompt_wav": str(prompt)}}))
    async with running_bridge(asterisk, prompt_pipelines, format="ulaw") as service:
        caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), silent_pcap, hold_ms=3000)
        async with LoopbackCapture(workdir / "caller.pcap", f"udp and dst port {caller.media_port}") as capture:
            result = await caller.run(timeout=30)
        assert result.successful_calls == 1, result.output
        await wait_for_finished_calls(service, 1)
        back = received_by_caller(capture, caller)
        assert level(back) > 1000
        assert dominant_frequency(back, 8000) == pytest.approx(PROMPT_TONE_HZ, abs=15)
        await assert_nothing_left(asterisk, service)


async def test_concurrent_calls_and_a_stray_sender(asterisk: AsteriskInstance, workdir: Path) -> None:
    import socket

    async with running_bridge(asterisk, format="ulaw") as service:
        caller = SippCaller(
            workdir,
            ("127.0.0.1", asterisk.settings.sip_port),
            caller_pcap(workdir),
            hold_ms=3000,
            calls=4,
            concurrent=4,
        )
        call = asyncio.create_task(caller.run(timeout=40))
        for _ in range(200):
            if len(service.app.calls) == 4 and all(c.record.media_connected for c in service.app.calls.values()):
                break
            await asyncio.sleep(0.02)
        stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for session in [c.rtp for c in service.app.calls.values()]:
            assert session is not None and session.local_address is not None
            stray.sendto(b"\x80\x00" + bytes(170), session.local_address)
        stray.close()
        result = await call
        assert result.successful_calls == 4, result.output
        await wait_for_finished_calls(service, 4)
        records = list(service.app.finished)
        assert all(r.media.packets_in >= 80 for r in records), [r.media for r in records]
        assert sum(r.media.foreign for r in records) == 4
        await assert_nothing_left(asterisk, service)


async def test_media_denoise_turns_asterisks_noise_suppression_on_for_the_caller(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    """media.denoise: steady hiss from the caller reaches our leg much quieter (speex DENOISE(rx))."""
    import numpy as np

    ulaw = codec_for("ulaw")
    hiss = np.random.default_rng(3).normal(0, 2000, ulaw.sample_rate * 4).astype(np.int16).tobytes()
    path = workdir / "hiss.pcap"
    write_rtp_pcap(path, hiss, ulaw)
    heard_level = {}
    pipelines: list[RecordingEcho] = []

    def make_pipeline(persona: str) -> RecordingEcho:
        pipelines.append(RecordingEcho())
        return pipelines[-1]

    for denoise in (False, True):
        pipelines.clear()
        async with running_bridge(asterisk, make_pipeline, overrides={"media": {"denoise": denoise}}) as service:
            caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), path, hold_ms=4500)
            result = await caller.run(timeout=30)
            assert result.successful_calls == 1, result.output
            await wait_for_finished_calls(service, 1)
        (pipeline,) = pipelines
        heard = b"".join(pipeline.heard)
        last_second = heard[-ulaw.sample_rate * 2 * 2 : -ulaw.sample_rate * 2]  # the hiss, adapted to
        heard_level[denoise] = level(last_second)
    assert heard_level[False] > 1000, heard_level  # the hiss itself got through
    assert heard_level[True] < heard_level[False] / 2, heard_level
