"""Coqui TTS, for users who bring a Coqui model (optional extra: pip install 'asterisk-ai-bridge[coqui]').

Coqui pulls in PyTorch (several GB), so it is not installed by default; the loader says so
instead of failing with an import error deep inside a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bridge.models.errors import ModelFileError


class CoquiSynthesizer:
    name = "coqui"

    def __init__(self, model_path: Path, config_path: Path | None = None, speaker: str | None = None) -> None:
        config_path = config_path or model_path.with_name("config.json")
        for required in (model_path, config_path):
            if not required.is_file():
                raise ModelFileError(
                    f"{required}: missing; tts.model_path must be a Coqui model file with config.json beside it "
                    f"(or set tts.config_path)"
                )
        try:
            from TTS.api import TTS
        except ModuleNotFoundError:
            raise ModelFileError(
                "tts.backend = 'coqui' needs the optional Coqui package: pip install 'asterisk-ai-bridge[coqui]'"
            ) from None
        try:
            self._tts: Any = TTS(model_path=str(model_path), config_path=str(config_path), progress_bar=False)
        except Exception as error:  # noqa: BLE001 - Coqui raises many unrelated types
            raise ModelFileError(f"{model_path}: Coqui model failed to load ({error})") from None
        self._speaker = speaker
        self.sample_rate = int(self._tts.synthesizer.output_sample_rate)

    def synthesize(self, text: str) -> Iterator[bytes]:
        samples = np.asarray(self._tts.tts(text=text, speaker=self._speaker), dtype=np.float32)
        yield (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
