"""Messages callers leave with the agent: a JSON file with the transcript, and the audio as WAV.

One directory, one pair of files per message, named by time and call, written atomically: a
crash never leaves half a message, and any tool (or a person with `ls`) can pick them up. They
hold what callers said, so they are readable by the bridge's user only (0600, folder 0700).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

from bridge.private_files import private_directory, write_private


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
        private_directory(self.directory)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(message.left_at))
        # Appended, not Path.with_suffix: channel ids look like "1733087512.42", and every call
        # that began in the same second would otherwise share "1733087512.json".
        base = f"{stamp}-{file_name_part(message.call_id)}"
        record = asdict(message)
        if audio:
            wav_path = self.directory / f"{base}.wav"
            _write_atomically(wav_path, wav_bytes(audio, sample_rate))
            record["audio"] = wav_path.name
        json_path = self.directory / f"{base}.json"
        _write_atomically(json_path, json.dumps(record, indent=2).encode("utf-8"))
        return json_path

    def list(self) -> list[dict[str, object]]:
        if not self.directory.is_dir():
            return []
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(self.directory.glob("*.json"))]


def file_name_part(call_id: str) -> str:
    """A channel id as part of a file name: no path separators or other surprises."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", call_id).lstrip(".") or "call"


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> None:
    path.write_bytes(wav_bytes(pcm, sample_rate))


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    write_private(partial, data)
    os.replace(partial, path)


def message_audio(path: Path, folder: Path) -> Path | None:
    """A stored message's audio file, only if both lie in the message folder (the record names
    the message; nothing outside the folder is ever read or served)."""
    folder = folder.resolve()
    path = path.resolve()
    if path.parent != folder or not path.is_file():
        return None
    try:
        audio = json.loads(path.read_text(encoding="utf-8")).get("audio")
    except (OSError, ValueError, AttributeError):
        return None
    wav = (folder / audio).resolve() if isinstance(audio, str) and audio else None
    return wav if wav is not None and wav.parent == folder and wav.is_file() else None


def forget_message(path: Path, folder: Path) -> bool:
    """Delete a stored message (its JSON and its audio), only inside the message folder."""
    path = path.resolve()
    if path.parent != folder.resolve() or not path.is_file():
        return False
    wav = message_audio(path, folder)
    if wav is not None:
        wav.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return True


def forget_messages_before(folder: Path, cutoff: float) -> int:
    """Delete every message (JSON and audio) last written before `cutoff`; returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob("*.json"):
        try:
            old = path.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if old and forget_message(path, folder.resolve()):
            removed += 1
    return removed
