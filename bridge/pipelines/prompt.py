"""Prompt: play a WAV file to the caller, then echo them (a line test an engineer can dial)."""

from __future__ import annotations

import wave
from pathlib import Path

from bridge.media.codecs import SAMPLE_WIDTH, Codec
from bridge.media.playout import PlayoutQueue
from bridge.media.resample import resample_pcm16
from bridge.pipelines.base import CallControl
from bridge.pipelines.echo import EchoPipeline


class PromptError(Exception):
    pass


def read_wav_mono16(path: Path) -> tuple[bytes, int]:
    """Read a 16-bit mono WAV; anything else is refused with the reason."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != SAMPLE_WIDTH or wav.getnchannels() != 1:
                raise PromptError(
                    f"{path}: need 16-bit mono WAV, got {8 * wav.getsampwidth()}-bit "
                    f"{wav.getnchannels()}-channel (convert with: sox in.wav -b 16 -c 1 out.wav)"
                )
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except (OSError, EOFError, wave.Error) as error:
        raise PromptError(f"{path}: cannot read WAV: {error}") from error


class PromptPipeline(EchoPipeline):
    def __init__(self, wav_path: Path) -> None:
        super().__init__()
        self._pcm, self._rate = read_wav_mono16(wav_path)
        self._playing = False

    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        super().start(codec, output, control)
        output.put(resample_pcm16(self._pcm, self._rate, codec.sample_rate))
        output.end_segment()
        self._playing = True

    def on_audio(self, pcm: bytes) -> None:
        if self._playing and self._output is not None and len(self._output) > 0:
            return
        self._playing = False
        super().on_audio(pcm)
