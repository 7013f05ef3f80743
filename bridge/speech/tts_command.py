"""Fallback voices from Debian packages (flite, espeak-ng), run as a process per sentence.

No model files to manage and they start instantly; flite stays intelligible at 8 kHz, espeak-ng
is robotic. Useful when Piper is not installed, and as a clearly different voice in tests.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator

from bridge.models.errors import ModelFileError

# The text may start with "-" ("-5 degrees", or a caller's words repeated back), so it can never
# be read as an option: flite's -t takes the next argument whatever it is, espeak-ng stops
# reading options at "--".
COMMANDS = {
    "flite": lambda voice, text: ["flite", "-voice", voice or "slt", "-o", "/dev/stdout", "-t", text],
    "espeak-ng": lambda voice, text: ["espeak-ng", "-v", voice or "en-us", "--stdout", "--", text],
}


class CommandSynthesizer:
    def __init__(self, program: str, voice: str = "") -> None:
        if program not in COMMANDS:
            raise ValueError(f"unknown TTS program {program!r}; choose one of {', '.join(COMMANDS)}")
        if shutil.which(program) is None:
            raise ModelFileError(f"{program}: not on PATH; install it with: apt-get install {program}")
        self.name = program
        self.voice = voice
        self.sample_rate = wav_rate(self._run("test"))

    def synthesize(self, text: str) -> Iterator[bytes]:
        yield wav_samples(self._run(text))

    def _run(self, text: str) -> bytes:
        command = COMMANDS[self.name](self.voice, text)
        return subprocess.run(command, capture_output=True, check=True, timeout=30).stdout


def wav_rate(wav: bytes) -> int:
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    return int(struct.unpack_from("<I", wav, 24)[0])


def wav_samples(wav: bytes) -> bytes:
    """PCM after the data chunk header; espeak-ng's stdout header carries bogus sizes, so ignore them."""
    start = wav.find(b"data", 12)
    if start < 0:
        raise ValueError("WAV stream has no data chunk")
    data = wav[start + 8 :]
    return data[: len(data) - len(data) % 2]
