"""Vosk (Kaldi) recogniser: truly streaming, so the final result after the endpoint is nearly free.

No English Vosk model installs from a package registry, so users point `stt.model_path` at a
model directory they downloaded (e.g. vosk-model-small-en-us). The test suite exercises this
code with the packaged Korean model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bridge.models.errors import ModelFileError, require_files

SAMPLE_RATE = 16000


def check_vosk_dir(model_dir: Path) -> None:
    require_files(
        model_dir,
        ("am/final.mdl", "conf/mfcc.conf"),
        "stt.model_path must be an unpacked Vosk model directory (with am/, conf/, graph/), "
        "e.g. from alphacephei.com/vosk/models",
    )


class VoskRecognizer:
    name = "vosk"
    sample_rate = SAMPLE_RATE

    def __init__(self, model_dir: Path) -> None:
        check_vosk_dir(model_dir)
        import vosk

        vosk.SetLogLevel(-1)
        self._vosk = vosk
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as error:  # noqa: BLE001 - vosk raises bare Exception on a bad model
            raise ModelFileError(f"{model_dir}: Vosk model failed to load ({error}); re-download it") from None

    def open_stream(self, hints: str = "") -> VoskStream:
        """`hints` are ignored: a Vosk grammar would restrict, not bias, what it hears."""
        return VoskStream(self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE))


class VoskStream:
    def __init__(self, recognizer: Any) -> None:
        self._recognizer = recognizer
        self._committed: list[str] = []

    def accept(self, pcm: bytes) -> None:
        if self._recognizer.AcceptWaveform(pcm):
            self._commit(self._recognizer.Result())

    def partial(self) -> str:
        current = json.loads(self._recognizer.PartialResult()).get("partial", "")
        return " ".join([*self._committed, current]).strip()

    def final(self) -> str:
        self._commit(self._recognizer.FinalResult())
        return " ".join(self._committed).strip()

    def _commit(self, result_json: str) -> None:
        text = json.loads(result_json).get("text", "").strip()
        if text:
            self._committed.append(text)
