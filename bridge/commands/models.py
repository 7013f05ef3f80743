"""`bridge models`: assemble and verify the model files a config needs, with progress bars.

Run by the installer (so the first call does not wait for a 491 MB assembly) and by operators
after replacing a model. It checks files; loading them is start-up's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tqdm import tqdm

from bridge.config import BridgeConfig
from bridge.config.agent import LlmConfig, SttConfig, TtsConfig, TurnConfig
from bridge.models.assembly import PACKAGED_LLMS, Progress, forget_verification
from bridge.models.errors import ModelFileError
from bridge.models.paths import models_dir


@dataclass(frozen=True, slots=True)
class ModelFile:
    role: str
    backend: str
    path: str


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    """A byte progress bar that appears on the first update (nothing is shown for a cached file)."""
    bars: list[tqdm[None]] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, desc=label))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def prepare_models(
    stt: SttConfig, llm: LlmConfig, tts: TtsConfig, turn: TurnConfig | None = None, rehash: bool = False
) -> list[ModelFile]:
    """Check (and for the packaged GGUF, assemble) every model file; raises ModelFileError."""
    from bridge.conversation.loading import default_llm_model

    files = [_speech_to_text(stt)]
    if llm.backend == "openai_http":
        files.append(ModelFile("llm", "openai_http", str(llm.base_url)))
    elif llm.model_path is not None:
        from bridge.speech.llm_llama import check_gguf

        check_gguf(llm.model_path)
        files.append(ModelFile("llm", "llama_cpp", str(llm.model_path)))
    else:
        spec = PACKAGED_LLMS[llm.packaged]
        if rehash:
            forget_verification(spec, models_dir())
        with progress_bar(spec.name) as progress:
            files.append(ModelFile("llm", "llama_cpp", str(default_llm_model(llm.packaged, progress))))
    files.append(_text_to_speech(tts))
    if turn is not None and (found := _turn_model(turn)) is not None:
        files.append(found)
    return files


def _turn_model(turn: TurnConfig) -> ModelFile | None:
    """Smart Turn's file: the configured one, else fetched once from its wheel. With the silence
    detector it is fetched too (so switching needs no network later), but not having it is fine."""
    from bridge.speech.turn_model import fetch_smart_turn

    if turn.model_path is not None:
        if not turn.model_path.is_file():
            raise ModelFileError(f"turn.model_path {turn.model_path} does not exist")
        return ModelFile("turn", "smart_turn", str(turn.model_path))
    try:
        return ModelFile("turn", "smart_turn", str(fetch_smart_turn()))
    except ModelFileError:
        if turn.detector == "smart_turn":
            raise
        return None


def _speech_to_text(stt: SttConfig) -> ModelFile:
    if stt.backend == "wyoming":
        return ModelFile("stt", "wyoming", str(stt.uri))
    if stt.backend == "vosk":
        from bridge.speech.stt_vosk import check_vosk_dir

        assert stt.model_path is not None
        check_vosk_dir(stt.model_path)
        return ModelFile("stt", "vosk", str(stt.model_path))
    from bridge.conversation.loading import packaged_whisper
    from bridge.speech.stt_whisper import check_whisper_dir

    path = stt.model_path or packaged_whisper(stt.packaged)
    check_whisper_dir(path)
    return ModelFile("stt", "whisper", str(path))


def _text_to_speech(tts: TtsConfig) -> ModelFile:
    if tts.backend == "wyoming":
        return ModelFile("tts", "wyoming", str(tts.uri))
    if tts.backend == "piper":
        from bridge.speech.tts_piper import check_piper_voice, default_piper_voice

        path = tts.model_path or default_piper_voice()
        check_piper_voice(path)
        return ModelFile("tts", "piper", str(path))
    if tts.backend == "coqui":
        assert tts.model_path is not None
        return ModelFile("tts", "coqui", str(tts.model_path))
    return ModelFile("tts", tts.backend, "(Debian package)")


def print_models(config: BridgeConfig, rehash: bool) -> int:
    """`bridge models`: prepare every model file, one line per file."""
    for model in prepare_models(config.stt, config.llm, config.tts, config.turn, rehash=rehash):
        print(f"{model.role}: {model.backend}: {model.path}: OK")
    return 0
