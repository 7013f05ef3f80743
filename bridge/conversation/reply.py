"""One thing the agent says: clauses arrive (from the LLM or fixed text), are voiced in order and held
until released.

A speculative reply is built while the caller is merely pausing; its audio waits behind
`released` until the end of turn is confirmed, and is thrown away if the caller goes on. The
reply remembers where each clause ends in the playout stream, so after a barge-in the agent
knows what the caller actually heard and what it could resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

from bridge.conversation.deadlines import next_within
from bridge.conversation.turns import Turn
from bridge.media.codecs import FRAME_MS
from bridge.media.playout import PlayoutQueue
from bridge.speech.tts import Speaker


@dataclass(slots=True)
class Clause:
    text: str
    audio: bytes | None = None
    ends_at_frame: int | None = None


class Reply:
    def __init__(
        self,
        speaker: Speaker,
        rate: int,
        output: PlayoutQueue,
        turn: Turn | None = None,
        first_audio_seconds: float = 8.0,
    ) -> None:
        self.speaker = speaker
        self.first_audio_seconds = first_audio_seconds  # per chunk: past it, speech synthesis has stalled
        self.rate = rate
        self.output = output
        self.turn = turn
        self.released = asyncio.Event()
        self.clauses: list[Clause] = []
        self.started_output = False
        self.first_frame = 0  # where its audio starts in the playout stream, once started_output
        # Set once saying it has consequences that cannot be taken back (a message was saved).
        self.final = False
        self.llm_go = threading.Event()
        self.llm_go.set()
        self._incoming: asyncio.Queue[Clause | None] = asyncio.Queue()

    def add(self, text: str, audio: bytes | None = None) -> None:
        if not self.clauses:
            self.llm_go.clear()  # until the first clause has audio: it is the critical path
        clause = Clause(text, audio)
        self.clauses.append(clause)
        self._incoming.put_nowait(clause)

    def close(self) -> None:
        """No more clauses will come."""
        self._incoming.put_nowait(None)

    async def play(self) -> None:
        """Voice each clause as it arrives; returns when the last one is queued for playout."""
        while (clause := await self._incoming.get()) is not None:
            if clause.audio is not None:
                await self._emit(clause.audio)
            else:
                async with contextlib.aclosing(self.speaker.speak(clause.text, self.rate)) as chunks:
                    while True:
                        try:
                            audio = await next_within(chunks, self.first_audio_seconds, "speech synthesis")
                        except StopAsyncIteration:
                            break
                        if self.turn is not None:
                            self.turn.mark("tts_first_audio")
                        self.llm_go.set()
                        await self._emit(audio)
            self.output.end_segment()
            clause.ends_at_frame = self.output.frames_queued_total

    async def _emit(self, audio: bytes) -> None:
        await self.released.wait()
        if not self.started_output:
            self.started_output = True
            self.first_frame = self.output.frames_queued_total
            turn = self.turn
            if turn is not None:
                self.output.notify_next_frame(lambda: turn.mark("first_frame_out"))
        self.output.put(audio)

    def heard_and_unheard(self, played_frame: int) -> tuple[str, list[str]]:
        """Split the reply at the caller's playout position: what they heard, what they did not."""
        heard: list[str] = []
        unheard: list[str] = []
        for clause in self.clauses:
            finished = clause.ends_at_frame is not None and clause.ends_at_frame <= played_frame
            (heard if finished and not unheard else unheard).append(clause.text)
        return " ".join(heard), unheard

    def played_ms(self) -> int:
        """How much of this reply the caller has heard so far."""
        if not self.started_output:
            return 0
        return max(0, self.output.frames_played_total - self.first_frame) * FRAME_MS

    @property
    def text(self) -> str:
        return " ".join(clause.text for clause in self.clauses)
