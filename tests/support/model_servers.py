"""The real model servers a site runs beside its bridges, started from the packaged models:
llama-cpp-python's OpenAI-compatible server and the Wyoming STT (faster-whisper) and TTS (Piper)
servers. Shared by the model-server and Wyoming tests and by `bridge bench cluster`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from bridge.conversation.loading import default_llm_model, packaged_whisper
from bridge.speech.tts_piper import default_piper_voice
from bridge.speech.wyoming import WyomingError, describe
from tests.support.servers import free_tcp_port, start_server, stop_server

LLM_ALIAS = "qwen2.5-coder-1.5b"
VOICE = "en_US-joe-medium"


def serving_models(url: str) -> bool:
    """Readiness of an OpenAI-compatible server: /models answers (the model is loaded)."""
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=1):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def answers_describe(uri: str) -> bool:
    """Readiness of a Wyoming server: it answers Describe (its model is loaded)."""
    try:
        describe(uri, timeout=1)
    except WyomingError:
        return False
    return True


def start_llama_server(workdir: Path, threads: int = 2) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m llama_cpp.server` with the packaged 1.5B model, until /v1/models answers."""
    port = free_tcp_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_llm_model(LLM_ALIAS)),
        "--model_alias", LLM_ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        "--n_threads", str(threads),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    return start_server(command, workdir / "llama-server.log", lambda: serving_models(url), "llama_cpp.server"), url


def start_wyoming_servers(workdir: Path, threads: int = 2) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    """wyoming-faster-whisper (Whisper tiny.en) and wyoming-piper (the joe voice), offline; returns
    the processes and the STT and TTS URIs once both answer Describe."""
    voices = workdir / "voices"  # wyoming-piper looks for <voice>.onnx(.json) in its data dir
    voices.mkdir(parents=True, exist_ok=True)
    packaged = default_piper_voice()
    shutil.copy(packaged, voices / f"{VOICE}.onnx")
    shutil.copy(f"{packaged}.json", voices / f"{VOICE}.onnx.json")
    stt_uri, tts_uri = f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"
    commands = {
        stt_uri: [
            sys.executable, "-m", "wyoming_faster_whisper", "--uri", stt_uri, "--model",
            str(packaged_whisper("whisper-tiny.en")), "--data-dir", str(workdir / "stt"), "--local-files-only",
            "--stt-library", "faster-whisper", "--language", "en", "--compute-type", "int8",
            "--cpu-threads", str(threads),
        ],
        tts_uri: [
            sys.executable, "-m", "wyoming_piper", "--uri", tts_uri, "--voice", VOICE, "--data-dir", str(voices),
            "--local-files-only",
        ],
    }  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for uri, command in commands.items():
            log = workdir / f"{uri.rsplit(':', 1)[1]}.log"
            processes.append(start_server(command, log, lambda uri=uri: answers_describe(uri), uri, seconds=90))
    except BaseException:
        for process in processes:
            stop_server(process)
        raise
    return processes, stt_uri, tts_uri
