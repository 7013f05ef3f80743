"""Semantic end of turn: Smart Turn v3.2 says whether the caller's words so far sound finished.

Silence alone cannot tell "I'd like to book an appointment." from "my number is 555 ..." — both
stop. Smart Turn (pipecat-ai, BSD-2) is a small Whisper-encoder classifier over the last 8 s of
audio at 16 kHz; one inference is ~45-85 ms on one core here. Its input is Whisper's 80-bin
log-mel of the waveform after zero-mean unit-variance normalisation, left-padded to 8 s;
faster-whisper's own feature extractor computes the same features (checked to 4e-7).

The ONNX file ships inside the `pipecat-ai` 1.14.0 wheel. We do not install pipecat (its
dependencies are a framework's); `bridge models` downloads that one wheel from the package index
with `pip download --no-deps`, takes the one file out and checks its pinned sha256. A user may
point `turn.model_path` at their own copy instead; nothing is fetched at run time.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bridge.models.assembly import sha256_file
from bridge.models.errors import ModelFileError
from bridge.models.paths import models_dir

SAMPLE_RATE = 16000
WINDOW_SECONDS = 8
MODEL_NAME = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
MODEL_SIZE = 8_679_182
WHEEL = "pipecat-ai==1.14.0"
MEMBER = f"pipecat/audio/turn/smart_turn/data/{MODEL_NAME}"
_NORM_EPS = 1e-7


def packaged_smart_turn() -> Path:
    """The verified model file: from an installed pipecat-ai, else from the models folder."""
    spec = importlib.util.find_spec("pipecat")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        inside = Path(next(iter(spec.submodule_search_locations))) / MEMBER.removeprefix("pipecat/")
        if inside.is_file() and sha256_file(inside) == MODEL_SHA256:
            return inside
    path = models_dir() / MODEL_NAME
    if not path.is_file():
        raise ModelFileError(
            f"the Smart Turn model {path} is missing; run 'bridge models' (it takes {MODEL_NAME} out of "
            f"the {WHEEL} wheel) or set turn.model_path, or turn.detector = 'silence'"
        )
    if sha256_file(path) != MODEL_SHA256:
        raise ModelFileError(f"{path} does not match its pinned sha256; delete it and run 'bridge models'")
    return path


def fetch_smart_turn() -> Path:
    """Set-up step: the model file out of the pipecat-ai wheel (PyPI), verified, into the models folder."""
    target = models_dir() / MODEL_NAME
    if target.is_file() and sha256_file(target) == MODEL_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smart-turn-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        result = subprocess.run([*command, "-d", folder, WHEEL], capture_output=True, text=True, timeout=600)
        wheels = list(Path(folder).glob("pipecat_ai-*.whl"))
        if result.returncode != 0 or not wheels:
            raise ModelFileError(
                f"could not download {WHEEL} for the Smart Turn model ({result.stderr.strip()[-300:]}); "
                "set turn.model_path to a copy of smart-turn-v3.2-cpu.onnx, or turn.detector = 'silence'"
            )
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(MEMBER) as source, partial.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    if sha256_file(partial) != MODEL_SHA256:
        partial.unlink()
        raise ModelFileError(f"{MEMBER} in {WHEEL} does not match its pinned sha256; not installed")
    os.replace(partial, target)
    return target


class SmartTurnModel:
    """Probability that the turn is complete, from the caller's audio (16 kHz float32)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        if not path.is_file():
            raise ModelFileError(f"turn.model_path {path} does not exist")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own unexported types
            raise ModelFileError(f"{path}: the turn model failed to load ({error}); replace it") from None
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE)

    def complete_probability(self, audio: np.ndarray) -> float:
        """`audio`: the utterance so far, 16 kHz float32 in [-1, 1]; only its last 8 s count."""
        samples = SAMPLE_RATE * WINDOW_SECONDS
        window = np.zeros(samples, dtype=np.float32)
        tail = audio[-samples:].astype(np.float32)
        window[samples - tail.size :] = tail
        window = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        features = self._features(window, padding=0)[:, : samples // 160]
        outputs = self._session.run(None, {"input_features": features[None].astype(np.float32)})
        return float(np.asarray(outputs[0]).reshape(-1)[0])
