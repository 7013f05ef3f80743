"""Messages callers leave with the agent: a JSON file with the transcript, and the audio as WAV.

One directory, one pair of files per message, named by time and call, written atomically: a
crash never leaves half a message, and any tool (or a person with `ls`) can pick them up.
"""

from __future__ import annotations

import json
import os
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class CallerMessage:
    call_id: str
    caller_number: str
    caller_name: str
    for_target: str | None
    text: str
    conversation: list[str]
    left_at: float


class MessageBox:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, message: CallerMessage, audio: bytes = b"", sample_rate: int = 8000) -> Path:
        """Store one message; returns the JSON file's path. Runs in a worker thread (file I/O)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(message.left_at))
        base = self.directory / f"{stamp}-{message.call_id}"
        record = asdict(message)
        if audio:
            wav_path = base.with_suffix(".wav")
            _write_atomically(wav_path, lambda path: write_wav(path, audio, sample_rate))
            record["audio"] = wav_path.name
        json_path = base.with_suffix(".json")
        _write_atomically(json_path, lambda path: path.write_text(json.dumps(record, indent=2), encoding="utf-8"))
        return json_path

    def list(self) -> list[dict[str, object]]:
        if not self.directory.is_dir():
            return []
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(self.directory.glob("*.json"))]


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)
