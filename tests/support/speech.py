"""Caller speech for tests, in a voice that is not the agent's, and transcription of what came back.

The caller speaks with flite's 'slt' voice (a different engine and speaker from the agent's
Piper 'joe'), so a test that transcribes the agent cannot be fooled by an echo of the caller.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess

from bridge.media.resample import resample_pcm16
from bridge.speech.stt import SpeechRecognizer
from bridge.speech.tts_command import wav_rate, wav_samples


def caller_says(text: str, rate: int = 8000, voice: str = "slt") -> bytes:
    if shutil.which("flite") is None:
        raise RuntimeError("flite not found: install Debian's flite (scripts/test does this)")
    wav = subprocess.run(["flite", "-voice", voice, "-t", text, "-o", "/dev/stdout"], capture_output=True, check=True)
    return resample_pcm16(wav_samples(wav.stdout), wav_rate(wav.stdout), rate)


def silence(seconds: float, rate: int = 8000) -> bytes:
    return bytes(int(seconds * rate) * 2)


def transcribe(recognizer: SpeechRecognizer, pcm: bytes, rate: int) -> str:
    """Blocking: the whole clip through a fresh stream of the product's recogniser."""
    stream = recognizer.open_stream()
    stream.accept(resample_pcm16(pcm, rate, recognizer.sample_rate))
    return stream.final()


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def similarity(heard: str, said: str) -> float:
    """How close a transcript is to what was said (0..1, word-sequence match ratio).

    Whisper tiny on 8 kHz synthetic speech gets most words right but not every one every time
    ("office located" once came back as "off-sloated"), so transcripts are compared, not equated.
    """
    return difflib.SequenceMatcher(None, re.findall(r"[a-z0-9']+", heard.lower()), said.lower().split()).ratio()
