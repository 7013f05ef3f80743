"""The web phone in a real headless Chromium: browser -> Asterisk WSS + DTLS-SRTP -> Stasis -> bridge.

Chromium's fake microphone plays a WAV once; what the caller hears is recorded off the remote
WebRTC track inside the page (tests/support/browser.py). Nothing is simulated between the page
and the agent: JsSIP, Opus, ICE, DTLS-SRTP, Asterisk's transcoding, externalMedia and the models.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from bridge.app.service import BridgeService
from bridge.conversation.agent import Agent
from bridge.media.resample import resample_pcm16
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.support.browser import TAP_RATE, BrowserPhone, write_wav
from tests.support.servers import free_port as _free_port
from tests.support.speech import caller_says, silence, similarity, transcribe, words

pytestmark = pytest.mark.integration
MIC_RATE = 48000
FRAME = TAP_RATE // 50  # 20 ms at the tap's rate


@asynccontextmanager
async def web_bridge(
    asterisk: AsteriskInstance, agent: Agent | None = None, **webphone: object
) -> AsyncIterator[tuple[BridgeService, str]]:
    port = _free_port(socket.SOCK_STREAM)
    overrides = {
        "api": {"enabled": True, "port": port},
        # No wss_url: the page finds Asterisk on its own host, as on a single-box install.
        "webphone": {"wss_port": asterisk.settings.https_port, **webphone},
    }
    async with running_bridge(asterisk, agent=agent, overrides=overrides) as service:
        yield service, f"http://127.0.0.1:{port}/phone"


def tone(seconds: float, hz: float = 440.0, rate: int = MIC_RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2").tobytes()


def frame_levels(pcm: bytes) -> np.ndarray:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
    return np.sqrt((frames**2).mean(axis=1))


def dominant_hz(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / TAP_RATE)[spectrum.argmax()])


def mic_speech_span(mic: bytes, threshold: float = 300.0) -> tuple[int, int]:
    """First and last voiced 20 ms frame of the caller's microphone channel."""
    voiced = np.flatnonzero(frame_levels(mic) > threshold)
    assert voiced.size, "the fake microphone delivered no speech"
    return int(voiced[0]), int(voiced[-1])


def clip(pcm: bytes, start_frame: int, end_frame: int | None = None) -> bytes:
    end = None if end_frame is None else end_frame * FRAME * 2
    return pcm[start_frame * FRAME * 2 : end]


async def no_channels_left(asterisk: AsteriskInstance) -> str:
    for _ in range(100):
        shown = (await asyncio.to_thread(asterisk.cli, "core show channels count")).stdout
        if shown.startswith("0 active channels"):
            return shown
        await asyncio.sleep(0.05)
    return shown


async def call_that_fails(
    asterisk: AsteriskInstance,
    tmp_path: Path,
    password: str | None = None,
    webphone: dict[str, object] | None = None,
    **browser_options: bool,
) -> tuple[dict[str, object], int]:
    """Press Call, wait for the page to give up, and return what it shows and how many calls the bridge saw."""
    mic = write_wav(tmp_path / "mic.wav", silence(5.0, MIC_RATE), MIC_RATE)
    async with (
        web_bridge(asterisk, **(webphone or {})) as (service, url),
        BrowserPhone(url, mic, **browser_options) as browser,
    ):
        await browser.call(asterisk.settings.webphone_user, password or asterisk.settings.webphone_password)
        await browser.wait_until("window.phone.errorKind !== null && window.phone.state !== 'connecting'", 30)
        state = await browser.phone_state()
        left = await no_channels_left(asterisk)
        calls = len(service.app.finished) + len(service.app.calls)
    assert left.startswith("0 active channels"), left
    return state, calls


@pytest.mark.parametrize(
    ("codecs", "shown", "asterisk_codec"), [([], "opus 48 kHz", "opus"), (["PCMU"], "PCMU 8 kHz", "ulaw")]
)
async def test_browser_call_media_flows_both_ways_in_the_negotiated_codec(
    asterisk: AsteriskInstance, tmp_path: Path, codecs: list[str], shown: str, asterisk_codec: str
) -> None:
    """Echo pipeline: the 440 Hz the fake microphone plays comes back on the remote track; muted, it stops.

    Opus when the browser offers it (Asterisk prefers it); G.711 when the page is set to offer only that.
    """
    mic = write_wav(tmp_path / "mic.wav", silence(0.5, MIC_RATE) + tone(20.0), MIC_RATE)
    settings = asterisk.settings
    async with web_bridge(asterisk, codecs=codecs) as (service, url), BrowserPhone(url, mic) as browser:
        await browser.call(settings.webphone_user, settings.webphone_password)
        await browser.wait_for_state("connected", timeout=20)
        await browser.wait_for_remote_audio()
        await browser.wait_until("window.phone.codec !== null")
        _, open_mic = await browser.listen(2.5)
        await browser.click("#mute")
        await browser.listen(0.5)  # the audio already on its way back before the mute
        _, muted = await browser.listen(2.0)
        state = await browser.phone_state()
        await browser.hang_up()
        await browser.wait_for_state("ended")
        await wait_for_finished_calls(service, 1)
        left = await no_channels_left(asterisk)

    record = service.app.finished[-1]
    assert state["codec"] == shown, state
    assert state["status"] == f"Connected ({shown})"
    assert record.caller_codec == asterisk_codec and record.caller == settings.webphone_user
    assert record.client_session == state["session"], (record.client_session, state["session"])
    # Media in both directions on the bridge's leg (loss there is the media-path tests' subject; a
    # loaded CI box with Chromium on it sees a few late frames from Asterisk's mixer).
    assert record.media_connected and min(record.media.packets_in, record.media.audio_frames_out) > 100
    assert abs(dominant_hz(open_mic) - 440) < 10, dominant_hz(open_mic)
    assert np.median(frame_levels(open_mic)) > 1000, "the echo of the tone was not heard"
    assert np.median(frame_levels(muted)) < 50, "muted, the caller's tone still came back"
    assert record.end_reason == "caller:ChannelHangupRequest"
    assert left.startswith("0 active channels"), left


async def test_browser_caller_hears_the_greeting_and_gets_an_answer(
    asterisk: AsteriskInstance, tmp_path: Path, agent: Agent
) -> None:
    question = "What are your opening hours on Saturday?"
    voice = resample_pcm16(caller_says(question, rate=16000), 16000, MIC_RATE)
    mic = write_wav(tmp_path / "mic.wav", silence(8.0, MIC_RATE) + voice + silence(20.0, MIC_RATE), MIC_RATE)
    settings = asterisk.settings
    async with web_bridge(asterisk, agent) as (service, url), BrowserPhone(url, mic) as browser:
        await browser.call(settings.webphone_user, settings.webphone_password)
        await browser.wait_for_remote_audio()
        await browser.start_tap()
        await browser.wait_for_state("connected")
        await browser.wait_until(
            "(phone.transcript?.turns || []).some((turn) => turn.agent && turn.outcome !== 'pending')", 40
        )
        mic_pcm, heard = await browser.take_tap()
        state = await browser.phone_state()
        rows = await browser.transcript_rows()
        await browser.screenshot(tmp_path / "webphone.png")
        await browser.hang_up()
        await wait_for_finished_calls(service, 1)

    record = service.app.finished[-1]
    turns = record.as_dict()["conversation"]["turns"]
    assert (record.caller_codec, record.media_format) == ("opus", "g722"), record  # a wideband leg
    assert similarity(turns[0]["caller"], question.lower().rstrip("?")) >= 0.6, turns
    assert turns[0]["outcome"] == "answered", turns
    assert "first_frame_out" in turns[0]["latency_ms"], turns[0]

    first, last = mic_speech_span(mic_pcm)
    greeting = words(await asyncio.to_thread(transcribe, agent.recognizer, clip(heard, 0, first), TAP_RATE))
    answer = words(await asyncio.to_thread(transcribe, agent.recognizer, clip(heard, last), TAP_RATE))
    assert {"bright", "smile", "dental"} & greeting, greeting
    # Whisper writes the hours as "9 am", "9am" or "nine": any of them is the Saturday hours.
    assert re.search(r"saturday|nine|one|\d|a\.?m|p\.?m", " ".join(answer)), answer

    # The page showed both sides live, with the turn's latency.
    text = "\n".join(rows)
    assert "Bright Smile Dental" in text, rows
    assert any(row.startswith("You") and "hours" in row.lower() for row in rows), rows
    assert f"{turns[0]['latency_ms']['first_frame_out']} ms" in text, rows
    assert state["transcript"]["turns"][0]["caller"] == turns[0]["caller"]


async def test_wrong_password_is_named_on_the_page(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    state, calls = await call_that_fails(asterisk, tmp_path, password="not-the-password")
    assert state["errorKind"] == "auth" and state["state"] == "failed", state
    assert "refused the user name or password" in str(state["shownError"]), state
    assert calls == 0, "a caller with a wrong password reached the agent"


async def test_refused_microphone_is_named_on_the_page(asterisk: AsteriskInstance, tmp_path: Path) -> None:
    state, calls = await call_that_fails(asterisk, tmp_path, allow_microphone=False)
    assert state["errorKind"] == "microphone", state
    assert "Microphone access was refused" in str(state["shownError"]), state
    assert state["state"] == "idle" and calls == 0, state


async def test_ice_failure_is_named_on_the_page_and_the_call_is_cleaned_up(
    asterisk: AsteriskInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Media forced through a TURN server that is not there: no path, so ICE cannot connect."""
    monkeypatch.setenv("BRIDGE_TURN_PASSWORD", "secret")
    webphone: dict[str, object] = {
        "ice_servers": [f"turn:127.0.0.1:{_free_port(socket.SOCK_DGRAM)}"],
        "turn_username": "nobody",
        "ice_transport_policy": "relay",
        "media_timeout_seconds": 4,
    }
    state, calls = await call_that_fails(asterisk, tmp_path, webphone=webphone)
    assert state["errorKind"] == "ice" and state["state"] == "failed", state
    assert "ICE" in str(state["shownError"]) and "TURN" in str(state["shownError"]), state
    assert state["status"] == "Call ended: no audio path", state
    assert calls == 0, "the call never had media, yet the agent got it"


@pytest.mark.parametrize("problem", ["certificate not accepted", "nothing listening"])
async def test_unreachable_asterisk_is_named_on_the_page(
    asterisk: AsteriskInstance, tmp_path: Path, problem: str
) -> None:
    trusted = problem != "certificate not accepted"
    port = asterisk.settings.https_port if not trusted else _free_port(socket.SOCK_STREAM)
    state, calls = await call_that_fails(asterisk, tmp_path, webphone={"wss_port": port}, trust_self_signed=trusted)
    assert state["errorKind"] == "connection", state
    shown = str(state["shownError"])
    assert f"Could not connect to Asterisk at wss://127.0.0.1:{port}/ws" in shown, state
    assert f"open https://127.0.0.1:{port}/ws once in this browser and accept it" in shown, state
    assert calls == 0


async def test_keypad_digit_reaches_the_agent_and_routes_the_call(
    asterisk: AsteriskInstance, tmp_path: Path, agent: Agent
) -> None:
    """0 on the page's keypad (RFC 4733 in the WebRTC media) asks for a person: the operator queue."""
    mic = write_wav(tmp_path / "mic.wav", silence(30.0, MIC_RATE), MIC_RATE)
    settings = asterisk.settings
    async with web_bridge(asterisk, agent) as (service, url), BrowserPhone(url, mic) as browser:
        await browser.call(settings.webphone_user, settings.webphone_password)
        await browser.wait_for_state("connected")
        await browser.click("#keypad button:text-is('0')")
        await wait_for_finished_calls(service, 1, timeout=30)
        await browser.hang_up()

    record = service.app.finished[-1]
    assert record.as_dict()["transfer"] == {
        "target": "operator", "kind": "queue", "destination": "support", "by": "dtmf:0", "outcome": "handed_over"
    }  # fmt: skip
    assert record.as_dict()["conversation"]["turns"][0]["caller"] == "[dtmf 0]"
