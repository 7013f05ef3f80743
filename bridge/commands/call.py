"""`bridge call`: place a test call into the running agent and print what was said.

The question is spoken by the configured TTS voice into a WAV file; Asterisk (on this machine)
originates a Local channel into [from-trunk] that plays it, so the call takes the same way in as
a caller from the trunk: dialplan, Stasis, the agent. The transcript is then read back from the
call database. Needs AMI (to originate) and the bridge running with the same config.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import wave
from pathlib import Path

from bridge.config import BridgeConfig, ConfigError
from bridge.conversation.loading import load_synthesizer
from bridge.records import CallRecord, ConversationReport
from bridge.routing.ami import AmiManager
from bridge.speech.tts import Speaker
from bridge.storage.calls import CallStore

TEST_CALLER = "5550000"
RATE = 8000
GREETING_ALLOWANCE_SECONDS = 7.0  # the caller waits for the greeting before asking
ANSWER_ALLOWANCE_SECONDS = 8.0


async def speak_to_wav(config: BridgeConfig, text: str, folder: Path) -> Path:
    speaker = Speaker(load_synthesizer(config.tts))
    try:
        pcm = await speaker.render(text, RATE)
    finally:
        speaker.close()
    silence = bytes(2 * RATE)
    audio = silence * int(GREETING_ALLOWANCE_SECONDS) + pcm + silence * int(ANSWER_ALLOWANCE_SECONDS)
    return await asyncio.to_thread(_write_wav, folder / "question.wav", audio)


def _write_wav(path: Path, pcm: bytes) -> Path:
    path.parent.chmod(0o755)  # Asterisk reads the file, perhaps as another user
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    path.chmod(0o644)
    return path


async def originate(config: BridgeConfig, number: str, sound: Path) -> None:
    ami = config.ami
    password = ami.resolved_password()
    if not password:
        raise ConfigError(f"ami.password: bridge call originates over AMI; set ami.password or {ami.password_env}")
    logged_in = asyncio.Event()
    manager = AmiManager(loop=asyncio.get_running_loop(), host=ami.host, port=ami.port, username=ami.username,
                      secret=password, ping_delay=60, on_login=lambda _: logged_in.set())  # fmt: skip
    manager.connect()
    try:
        try:
            await asyncio.wait_for(logged_in.wait(), 5)
        except TimeoutError:
            raise ConfigError(
                f"ami: cannot log in to {ami.host}:{ami.port} as {ami.username!r}; check manager.conf"
            ) from None
        answer = await manager.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{number}@from-trunk",
                "Application": "Playback",
                "Data": str(sound.with_suffix("")),
                "CallerID": f'"bridge call" <{TEST_CALLER}>',
                "Async": "false",
                "Timeout": "15000",
            }
        )
        if not answer.success:
            raise ConfigError(f"ami: Originate refused: {answer.get('Message', answer)}")
    finally:
        manager.closing = True
        manager.close()


async def wait_for_record(config: BridgeConfig, since: float, seconds: float) -> CallRecord | None:
    store = CallStore(config.storage.resolved_url())
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for row in await store.search(TEST_CALLER, limit=5):
                if row["caller"] == TEST_CALLER and row["started_at"] >= since and row["ended_at"]:
                    return CallRecord.from_dict({"channel_id": row["id"], **row["record"]})
            await asyncio.sleep(0.5)
        return None
    finally:
        await store.close()


async def place_test_call(config: BridgeConfig, question: str, number: str) -> CallRecord | None:
    with tempfile.TemporaryDirectory(prefix="bridge-call-") as folder:
        sound = await speak_to_wav(config, question, Path(folder))
        since = time.time() - 1
        await originate(config, number, sound)
        duration = GREETING_ALLOWANCE_SECONDS + ANSWER_ALLOWANCE_SECONDS + 10
        return await wait_for_record(config, since, duration + 30)


def run_test_call(config: BridgeConfig, question: str, number: str) -> int:
    record = asyncio.run(place_test_call(config, question, number))
    if record is None:
        print("bridge call: the call did not reach the agent (is `bridge run` up with this config?)")
        return 1
    conversation = record.conversation or ConversationReport()
    print(f"call {record.channel_id}: {conversation.end_reason or record.end_reason}")
    for turn in conversation.turns:
        print(f"  caller: {turn.caller}\n  agent:  {turn.agent}\n  latency_ms: {turn.latency_ms}")
    return 0
