"""The caller's side of the call: which frames are their voice, and the turn they are taking.

Three gates decide whether a frame is the caller talking: the VAD, a level floor while the agent
speaks (a caller addressing us is louder than our own echo or the room), and the echo guard.
What passes feeds the endpointer; the open turn, its transcriber and the turn model's verdicts
live here, so the conversation acts on whole turns and never on frames. All of it runs on the
media path, once per 20 ms frame: bookkeeping only, the models work in tasks.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from bridge.background import BackgroundTasks
from bridge.conversation.agent import Agent
from bridge.conversation.echo_guard import EchoGuard
from bridge.conversation.endpointing import Endpointer, EndpointSettings, Signal
from bridge.conversation.turn_judge import TurnJudge
from bridge.conversation.turns import Turn
from bridge.media.codecs import FRAME_MS, rms
from bridge.speech.stt import FEED_BATCH_FRAMES, Transcriber


class Listener:
    """The caller's side of one call, kept apart from the agent's so the per-frame decisions
    (is this their voice, has their turn ended) are bookkeeping the conversation never repeats."""

    def __init__(self, agent: Agent, rate: int, hints: str, tasks: BackgroundTasks[Any]) -> None:
        settings = agent.settings
        turn = agent.turn_settings
        self._agent = agent
        self._rate = rate
        self._hints = hints
        self._tasks = tasks
        self._judge = (
            TurnJudge(agent.turn_model, agent.turn_worker, turn)
            if agent.turn_model is not None and agent.turn_worker is not None and turn is not None
            else None
        )
        self._endpointer = Endpointer(
            EndpointSettings(
                pause_ms=settings.pause_ms,
                end_ms=settings.end_ms,
                preroll_ms=settings.preroll_ms,
                max_utterance_ms=int(settings.max_utterance_seconds * 1000),
                check_ms=turn.check_ms if self._judge is not None and turn is not None else 0,
                hold_ms=turn.hold_ms if turn is not None else 0,
            )
        )
        self._barge_in_rms = int(32768 * 10 ** (settings.barge_in_min_level_dbfs / 20))
        self.echo = (
            EchoGuard(settings.echo_return_loss_db, measure=settings.echo_measure)
            if settings.echo_return_loss_db > 0
            else None
        )
        self._vad = agent.voice_detector(rate)
        self.turn: Turn | None = None
        self.transcriber: Transcriber | None = None
        # The turn handed over last, kept in case the caller goes on (`continue_turn`), with its audio.
        self.last_closed: tuple[Turn, Transcriber] | None = None
        self._closed_audio: list[bytes] = []
        self._voiced_before = 0  # voiced ms of a continued turn before the caller went on
        self._flushing = False

    @property
    def in_speech(self) -> bool:
        return self._endpointer.in_speech

    def hear(self, pcm: bytes, now: float, agent_audible: bool) -> tuple[bool, list[Signal]]:
        """One frame from the caller: whether it was their voice, and the turn-taking signals it caused.
        The level floor applies only while the caller can hear the agent: before its reply plays,
        a quiet caller going on is still heard (and continues their turn)."""
        voiced = self._vad.is_speech(pcm)
        echo = self.echo
        level = rms(pcm) if voiced or echo is not None else 0
        if voiced and agent_audible and level < self._barge_in_rms:
            voiced = False  # quieter than a caller addressing us: our own echo or the room
        elif voiced and echo is not None and level <= echo.floor(now):
            voiced = False  # no louder than our own voice coming back: echo
        if echo is not None and agent_audible:
            # After the floor: this frame measures the line for the next ones. Only while the
            # caller can hear the agent: in the tail after it stopped (finished, cut off by a
            # barge-in, dropped) the caller's own answer would be measured as the line's echo.
            echo.heard(level, now)
        if voiced and self.turn is not None:
            self.turn.speech_end = now
        signals = self._endpointer.feed(pcm, voiced)
        if self.turn is not None:
            self.turn.voiced_ms = self._voiced_before + self._endpointer.voiced_ms
        if self.transcriber is not None and Signal.ONSET not in signals:
            self.transcriber.feed([pcm])
            self._flush_transcriber_soon()
        return voiced, signals

    def open_turn(self, index: int, now: float) -> None:
        """The caller started (Signal.ONSET): a turn from the pre-roll on, and its transcription."""
        utterance = self._endpointer.utterance
        self.turn = Turn(index, speech_start=now - len(utterance) * FRAME_MS / 1000, speech_end=now)
        self.transcriber = Transcriber(self._agent.recognizer, self._agent.stt_worker, self._rate, self._hints)
        self.transcriber.feed(utterance)
        self.last_closed = None
        self._closed_audio = []
        self._voiced_before = 0

    def continue_turn(self, now: float) -> Turn:
        """The caller started again (Signal.ONSET) right after their turn was handed over: it is the
        same turn, and what they say now is transcribed after what they said before."""
        assert self.last_closed is not None
        turn, transcriber = self.last_closed
        self.turn, self.transcriber, self.last_closed = turn, transcriber, None
        self._voiced_before = turn.voiced_ms
        turn.speech_end = now
        transcriber.feed(self._endpointer.utterance)
        earlier, self._closed_audio = self._closed_audio, []
        self._endpointer.carry_on(earlier, len(earlier) * FRAME_MS)
        return turn

    def close_turn(self, final: bool = False) -> tuple[Turn | None, Transcriber | None]:
        """The turn is over (Signal.END, or TOO_LONG: `final`, it cannot be continued): hand it
        over and listen for the next one."""
        turn, transcriber = self.turn, self.transcriber
        self.last_closed = (turn, transcriber) if turn is not None and transcriber is not None and not final else None
        self._closed_audio = self._endpointer.utterance if self.last_closed is not None else []
        self._endpointer.reset()
        self.turn = self.transcriber = None
        self._voiced_before = 0
        return turn, transcriber

    def judge_pause(self) -> Coroutine[Any, Any, None]:
        """Work for a task (Signal.CHECK): the turn model's verdict on the pause just reached."""
        return self._judge_turn(self._endpointer.pause_number)

    async def _judge_turn(self, pause: int) -> None:
        """Ask the turn model about this pause; its verdict ends the turn now or holds it open."""
        assert self._judge is not None
        turn = self.turn
        verdict = await self._judge.complete(list(self._endpointer.utterance), self._rate)
        if verdict is None or turn is not self.turn or turn is None:
            return
        complete, probability = verdict
        turn.end_of_turn.append(round(probability, 3))
        self._endpointer.settle(pause, complete)

    def _flush_transcriber_soon(self) -> None:
        transcriber = self.transcriber
        if transcriber is None or self._flushing or transcriber.pending_frames() < FEED_BATCH_FRAMES:
            return
        self._flushing = True

        async def flush() -> None:
            try:
                await transcriber.flush()
            finally:
                self._flushing = False

        self._tasks.start(flush())
