"""Echo: the caller hears themselves. Proves audio flows both ways through Asterisk."""

from __future__ import annotations

from bridge.media.codecs import Codec
from bridge.media.playout import PlayoutQueue
from bridge.pipelines.base import CallControl
from bridge.records import ConversationReport


class EchoPipeline:
    def __init__(self) -> None:
        self._output: PlayoutQueue | None = None

    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        self._output = output

    def on_audio(self, pcm: bytes) -> None:
        if self._output is not None:
            self._output.put(pcm)

    def on_dtmf(self, digit: str) -> None:
        return None

    async def stop(self) -> None:
        self._output = None

    def report(self) -> ConversationReport | None:
        return None
