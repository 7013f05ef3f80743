"""Speech to text and text to speech on Wyoming servers (the protocol Home Assistant users run:
wyoming-faster-whisper, wyoming-piper), for sites that keep the models on another box.

The bridge already runs every model call on a worker thread, so the client is synchronous: a
TCP socket per request with a deadline on every read, framed by the `wyoming` library's own
event reader and writer. Whisper on Wyoming is not streaming: the utterance is sent at the end
of the turn and the transcript comes back. Piper streams audio sentence by sentence.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast
from urllib.parse import urlsplit

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

STT_RATE = 16000
CHUNK_BYTES = 32000  # one second of 16 kHz audio per AudioChunk


class WyomingError(RuntimeError):
    """The server is unreachable, answered with an error, or went quiet past the deadline."""


def address(uri: str) -> tuple[str, int]:
    """ "tcp://host:port" -> (host, port)."""
    parts = urlsplit(uri)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ValueError(f"{uri!r}: give a Wyoming server as tcp://host:port")
    return parts.hostname, parts.port


class _Connection:
    def __init__(self, uri: str, timeout: float) -> None:
        self.uri = uri
        try:
            self._socket = socket.create_connection(address(uri), timeout=timeout)
        except OSError as error:
            raise WyomingError(f"{uri}: {error.strerror or error}") from error
        self._stream = cast(BinaryIO, self._socket.makefile("rwb"))

    def send(self, *events: Event) -> None:
        for event in events:
            write_event(event, self._stream)
        self._stream.flush()

    def receive(self) -> Event:
        try:
            event = read_event(self._stream)
        except (OSError, TimeoutError) as error:
            raise WyomingError(f"{self.uri}: no answer ({error})") from error
        if event is None:
            raise WyomingError(f"{self.uri}: the server closed the connection")
        if Error.is_type(event.type):
            raise WyomingError(f"{self.uri}: {Error.from_event(event).text}")
        return event

    def close(self) -> None:
        self._stream.close()
        self._socket.close()


def describe(uri: str, timeout: float = 5.0) -> Info:
    """What the server offers (its models or voices): the check `bridge doctor` runs."""
    connection = _Connection(uri, timeout)
    try:
        connection.send(Describe().event())
        while True:
            event = connection.receive()
            if Info.is_type(event.type):
                return Info.from_event(event)
    finally:
        connection.close()


@dataclass
class WyomingRecognizer:
    uri: str
    language: str = "en"
    timeout: float = 10.0
    name: str = "wyoming"
    sample_rate: int = STT_RATE

    def open_stream(self, hints: str = "") -> WyomingStream:
        return WyomingStream(self)


@dataclass
class WyomingStream:
    recognizer: WyomingRecognizer
    audio: bytearray = field(default_factory=bytearray)

    def accept(self, pcm: bytes) -> None:
        self.audio += pcm

    def partial(self) -> str:
        return ""  # the server transcribes whole utterances only

    def final(self) -> str:
        if not self.audio:
            return ""
        recognizer = self.recognizer
        connection = _Connection(recognizer.uri, recognizer.timeout)
        audio = bytes(self.audio)
        format_ = {"rate": STT_RATE, "width": 2, "channels": 1}
        try:
            connection.send(Transcribe(language=recognizer.language).event(), AudioStart(**format_).event())
            for start in range(0, len(audio), CHUNK_BYTES):
                connection.send(AudioChunk(audio=audio[start : start + CHUNK_BYTES], **format_).event())
            connection.send(AudioStop().event())
            while True:
                event = connection.receive()
                if Transcript.is_type(event.type):
                    return Transcript.from_event(event).text.strip()
        finally:
            connection.close()


class WyomingSynthesizer:
    """Text to speech on a Wyoming TTS server; its voice's sample rate is learnt at start-up."""

    name = "wyoming"

    def __init__(self, uri: str, voice: str | None = None, timeout: float = 10.0) -> None:
        self.uri = uri
        self.voice = voice
        self.timeout = timeout
        self.sample_rate = 0
        for _ in self.synthesize("Ready."):
            break  # the first AudioStart tells the rate

    def synthesize(self, text: str) -> Iterator[bytes]:
        connection = _Connection(self.uri, self.timeout)
        try:
            request = Synthesize(text=text)
            if self.voice:
                from wyoming.tts import SynthesizeVoice

                request = Synthesize(text=text, voice=SynthesizeVoice(name=self.voice))
            connection.send(request.event())
            while True:
                event = connection.receive()
                if AudioStart.is_type(event.type):
                    self.sample_rate = AudioStart.from_event(event).rate
                elif AudioChunk.is_type(event.type):
                    chunk = AudioChunk.from_event(event)
                    if chunk.width != 2 or chunk.channels != 1:
                        raise WyomingError(
                            f"{self.uri}: audio must be 16-bit mono (got {chunk.width * 8}-bit x {chunk.channels})"
                        )
                    yield chunk.audio
                elif AudioStop.is_type(event.type):
                    return
        finally:
            connection.close()
