"""Builds the shared `Agent` from config: load each backend once, verify model files, fail early.

Loading happens before the bridge subscribes to ARI, so no call is accepted by a process whose
models are missing; every failure is a ModelFileError naming the file and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog

from bridge.config import BridgeConfig
from bridge.config.agent import LlmConfig, SttConfig, TtsConfig, TurnConfig, VadConfig
from bridge.conversation.agent import Agent, TurnModel, VoiceDetector
from bridge.models.assembly import PACKAGED_LLMS, Progress, assemble
from bridge.models.paths import models_dir
from bridge.routing.services import RoutingServices
from bridge.speech.llm import LanguageModel
from bridge.speech.stt import SpeechRecognizer
from bridge.speech.tts import Speaker, SpeechSynthesizer
from bridge.speech.workers import ModelWorker

log = structlog.get_logger(__name__)


def load_agent(config: BridgeConfig, progress: Progress | None = None) -> Agent:
    recognizer = load_recognizer(config.stt)
    llm = load_language_model(config.llm, progress)
    synthesizer = load_synthesizer(config.tts)
    turn_model = load_turn_model(config.turn)
    return Agent(
        recognizer=recognizer,
        stt_worker=ModelWorker("stt"),
        llm=llm,
        speaker=Speaker(synthesizer),
        voice_detector=voice_detector_factory(config.vad),
        personas=dict(config.personas),
        settings=config.conversation,
        routing=RoutingServices.from_config(config.routing),
        turn_model=turn_model,
        turn_worker=ModelWorker("turn") if turn_model is not None else None,
        turn_settings=config.turn,
    )


def load_turn_model(config: TurnConfig) -> TurnModel | None:
    """Smart Turn when turn.detector asks for it (None: silence alone ends turns)."""
    if config.detector == "silence":
        return None
    from bridge.speech.turn_model import SmartTurnModel, packaged_smart_turn

    path = config.model_path or packaged_smart_turn()
    log.info("models.turn", detector=config.detector, path=str(path))
    return SmartTurnModel(path, threads=config.threads)


def load_recognizer(config: SttConfig) -> SpeechRecognizer:
    if config.backend == "wyoming":
        from bridge.speech.wyoming import WyomingRecognizer

        assert config.uri is not None
        log.info("models.stt", backend="wyoming", uri=config.uri)
        return WyomingRecognizer(config.uri, config.language, config.timeout_seconds)
    if config.backend == "vosk":
        from bridge.speech.stt_vosk import VoskRecognizer

        assert config.model_path is not None
        return VoskRecognizer(config.model_path)
    from bridge.speech.stt_whisper import WhisperRecognizer

    path = config.model_path or packaged_whisper(config.packaged)
    log.info("models.stt", backend="whisper", path=str(path))
    second: WhisperRecognizer | None = None
    if config.second_opinion_path is not None or config.second_opinion != "none":
        second_path = config.second_opinion_path or packaged_whisper(config.second_opinion)
        log.info("models.stt_second_opinion", path=str(second_path), below=config.second_opinion_below)
        second = WhisperRecognizer(
            second_path,
            threads=config.threads,
            compute_type=config.compute_type,
            language=config.language,
            beam_size=config.beam_size,
        )
    return WhisperRecognizer(
        path,
        threads=config.threads,
        compute_type=config.compute_type,
        language=config.language,
        beam_size=config.beam_size,
        second_opinion=second,
        second_opinion_below=config.second_opinion_below,
    )


def load_language_model(config: LlmConfig, progress: Progress | None = None) -> LanguageModel:
    if config.backend == "openai_http":
        from bridge.speech.llm_openai import OpenAiCompatibleModel

        assert config.base_url is not None
        return OpenAiCompatibleModel(
            config.base_url,
            config.model,
            api_key=os.environ.get(config.api_key_env),
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            constrain_labels=config.constrain_labels,
        )
    from bridge.speech.llm_llama import LlamaLanguageModel

    path = config.model_path or default_llm_model(config.packaged, progress)
    log.info("models.llm", backend="llama_cpp", path=str(path))
    return LlamaLanguageModel(
        path,
        context_tokens=config.context_tokens,
        threads=config.threads,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        contexts=config.contexts,
    )


def packaged_whisper(packaged: str) -> Path:
    from bridge.speech.stt_whisper import default_whisper_model

    if packaged == "whisper-base":
        from bridge.models.whisper_base import packaged_whisper_base

        return packaged_whisper_base()
    return default_whisper_model()


def default_llm_model(packaged: str, progress: Progress | None = None) -> Path:
    """A packaged Qwen2.5 GGUF (llm.packaged), assembled from its part packages into the cache once."""
    return assemble(PACKAGED_LLMS[packaged], models_dir(), progress)


def load_synthesizer(config: TtsConfig) -> SpeechSynthesizer:
    if config.backend == "wyoming":
        from bridge.speech.wyoming import WyomingSynthesizer

        assert config.uri is not None
        log.info("models.tts", backend="wyoming", uri=config.uri)
        return WyomingSynthesizer(config.uri, config.voice or None, config.timeout_seconds)
    if config.backend == "piper":
        from bridge.speech.tts_piper import PiperSynthesizer, default_piper_voice

        path = config.model_path or default_piper_voice()
        log.info("models.tts", backend="piper", path=str(path))
        return PiperSynthesizer(path)
    if config.backend == "coqui":
        from bridge.speech.tts_coqui import CoquiSynthesizer

        assert config.model_path is not None
        return CoquiSynthesizer(config.model_path, config.config_path, config.speaker)
    from bridge.speech.tts_command import CommandSynthesizer

    return CommandSynthesizer(config.backend, config.voice)


def voice_detector_factory(config: VadConfig) -> Callable[[int], VoiceDetector]:
    from bridge.speech.vad import WebRtcVoiceDetector

    def build(sample_rate: int) -> VoiceDetector:
        return WebRtcVoiceDetector(sample_rate, config.aggressiveness, config.min_level_dbfs)

    return build
