"""The per-call conversation: greet, listen, endpoint, think, speak, yield to barge-in, say goodbye.

Everything the media path calls (`on_audio`) is bookkeeping that returns in microseconds;
recognition, generation and synthesis run as tasks on the model workers. States follow from
three facts: is the caller mid-utterance (the endpointer), is a reply in flight or queued for
playout (`_reply`), and is the call ending. The answer to an utterance is prepared at the
caller's first pause and released only at the end of turn, so most of the model time hides
inside the silence we must wait for anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any, Literal

import structlog

from bridge.background import BackgroundTasks
from bridge.conversation.agent import Agent
from bridge.conversation.deadlines import next_within, stalled_after
from bridge.conversation.desk_actions import look_up_caller, save_message
from bridge.conversation.echo_guard import EchoGuard
from bridge.conversation.endpointing import Endpointer, EndpointSettings, Signal
from bridge.conversation.memory import ConversationMemory, label_for
from bridge.conversation.prompt import agent_turn
from bridge.conversation.reply import Reply
from bridge.conversation.turn_judge import TurnJudge
from bridge.conversation.turns import Turn, is_noise
from bridge.conversation.understanding import Decided, Understanding
from bridge.media.codecs import FRAME_MS, Codec, rms
from bridge.media.playout import PlayoutQueue
from bridge.pipelines.base import CallControl
from bridge.records import ConversationReport
from bridge.routing.desk import Action, FrontDesk, Goodbye, MessageTaken, RecordMessage, Transfer
from bridge.routing.webhooks import Webhooks
from bridge.speech.llm import ANSWER
from bridge.speech.stt import FEED_BATCH_FRAMES, Transcriber

log = structlog.get_logger(__name__)

WATCHDOG_SECONDS = 0.25
MAX_MESSAGE_SECONDS = 120


class Conversation:
    def __init__(self, agent: Agent, persona: str) -> None:
        self.agent = agent
        self.persona_name, self.persona = agent.persona(persona)
        settings = agent.settings
        self.settings = settings
        turn = agent.turn_settings
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
        self._echo = EchoGuard(settings.echo_return_loss_db) if settings.echo_return_loss_db > 0 else None
        self._memory = ConversationMemory(settings.history_turns)
        self.turns: list[Turn] = []
        self.end_reason = ""
        self.errors: list[str] = []
        self.message_path = ""
        self.barge_ins = 0
        self._tasks: BackgroundTasks[Any] = BackgroundTasks()
        self._turn: Turn | None = None
        self._transcriber: Transcriber | None = None
        self._flushing = False
        self._reply: Reply | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._unheard: list[str] = []
        # "talking" until a transfer is under way or the call is ending; "transferring" goes back
        # to "talking" when the phone did not answer; "ending" is final.
        self.phase: Literal["talking", "transferring", "ending"] = "talking"
        self._started_at = time.monotonic()
        self._idle_since = self._started_at
        self._reprompts = 0
        self._desk = agent.routing.desk(self.persona.goodbye) if agent.routing is not None else None
        self._hints = agent.hints(self.persona_name)
        self._understanding = Understanding(agent.llm, agent.prompt(self.persona_name), self.persona, self._desk)
        self._desk_before: FrontDesk | None = None
        self._message_audio: bytearray | None = None
        self._log = log.bind(persona=self.persona_name)

    # -- MediaPipeline -------------------------------------------------------------------------

    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        self._rate = codec.sample_rate
        self._output = output
        if self._echo is not None:
            output.on_frame = self._echo.played
        self._control = control
        self._vad = self.agent.voice_detector(codec.sample_rate)
        self._greet()
        self._spawn(self._watchdog())
        routing = self.agent.routing
        if routing is not None and routing.webhooks is not None and routing.webhooks.config.pre_call_url:
            self._spawn(self._look_up_caller(routing.webhooks))

    def on_audio(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self._message_audio is not None and len(self._message_audio) < MAX_MESSAGE_SECONDS * 2 * self._rate:
            self._message_audio += pcm
        voiced = self._vad.is_speech(pcm)
        level = rms(pcm) if voiced else 0
        if voiced and self._agent_speaking() and level < self._barge_in_rms:
            voiced = False  # quieter than a caller addressing us: our own echo or the room
        elif voiced and self._echo is not None and level <= self._echo.floor(now):
            voiced = False  # no louder than our own voice coming back: echo
        if voiced:
            self._idle_since = now
            if self._turn is not None:
                self._turn.speech_end = now
        signals = self._endpointer.feed(pcm, voiced)
        if self._turn is not None:
            self._turn.voiced_ms = self._endpointer.voiced_ms
        if self._transcriber is not None and Signal.ONSET not in signals:
            self._transcriber.feed([pcm])
            self._flush_transcriber_soon()
        for signal in signals:
            self._on_signal(signal, now)

    def on_dtmf(self, digit: str) -> None:
        if self._desk is None or self.phase != "talking":
            return
        self._log.info("turn.dtmf")  # never the digit: callers key in PINs and card numbers
        self._spawn(self._on_digit(digit))

    async def stop(self) -> None:
        self.phase = "ending"
        tasks = list(self._tasks)
        self._tasks.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def report(self) -> ConversationReport:
        return ConversationReport(
            persona=self.persona_name,
            end_reason=self.end_reason,
            barge_ins=self.barge_ins,
            message=self.message_path,
            errors=list(self.errors),
            # at_s: when the turn began, seconds into the call (the greeting starts at 0).
            turns=[turn.record(at_s=round(turn.speech_start - self._started_at, 2)) for turn in self.turns],
            routing=self._desk.report() if self._desk is not None else None,
            greeting=self.persona.greeting,
            # What the agent is saying right now (live views; the turn gets it once said).
            speaking=self._reply.text if self._reply is not None else "",
        )

    # -- turn-taking ---------------------------------------------------------------------------

    def _on_signal(self, signal: Signal, now: float) -> None:
        if signal is Signal.ONSET:
            self._caller_started(now)
        elif signal is Signal.PAUSE:
            self._prepare_reply()
        elif signal is Signal.RESUME:
            self._discard_prepared_reply()
        elif signal is Signal.CHECK:
            self._spawn(self._judge_turn(self._endpointer.pause_number))
        else:
            self._caller_finished(now, too_long=signal is Signal.TOO_LONG)

    def _caller_started(self, now: float) -> None:
        if self.phase == "transferring":
            return
        if self._agent_speaking():
            self._barge_in(now)
        utterance = self._endpointer.utterance
        self._turn = Turn(len(self.turns), speech_start=now - len(utterance) * FRAME_MS / 1000, speech_end=now)
        self._transcriber = Transcriber(self.agent.recognizer, self.agent.stt_worker, self._rate, self._hints)
        self._transcriber.feed(utterance)

    def _prepare_reply(self) -> None:
        if self.phase == "ending" or self._turn is None or self._transcriber is None:
            return
        self._turn.marks.clear()
        reply = self._new_reply(self._turn)
        self._desk_before = self._desk.snapshot() if self._desk is not None else None
        self._set_reply(reply, self._respond(self._turn, self._transcriber, reply))

    async def _judge_turn(self, pause: int) -> None:
        """Ask the turn model about this pause; its verdict ends the turn now or holds it open."""
        assert self._judge is not None
        turn = self._turn
        verdict = await self._judge.complete(list(self._endpointer.utterance), self._rate)
        if verdict is None or turn is not self._turn or turn is None:
            return
        complete, probability = verdict
        turn.end_of_turn.append(round(probability, 3))
        self._endpointer.settle(pause, complete)

    def _discard_prepared_reply(self) -> None:
        """The caller went on: forget the speculative answer and what deciding it changed."""
        if self._reply is not None and not self._reply.released.is_set():
            self._cancel_reply()
            if self._desk is not None and self._desk_before is not None:
                self._desk.restore(self._desk_before)
            if self._turn is not None:
                self._turn.marks.clear()

    def _caller_finished(self, now: float, too_long: bool) -> None:
        turn, transcriber = self._turn, self._transcriber
        self._endpointer.reset()
        self._turn = self._transcriber = None
        if turn is None or transcriber is None or self.phase == "ending":
            return
        turn.mark("endpoint", now)
        if too_long:
            turn.outcome = "cut_at_max_length"
        self.turns.append(turn)
        if self._reply is None or self._reply.turn is not turn:
            reply = self._new_reply(turn)
            self._set_reply(reply, self._respond(turn, transcriber, reply))
        assert self._reply is not None
        self._reply.released.set()

    def _barge_in(self, now: float) -> None:
        """The caller talks over the agent: silence it within a frame, keep what was not heard."""
        reply = self._reply
        played = self._output.frames_played_total
        dropped = self._output.clear()
        self.barge_ins += 1
        if reply is not None:
            heard, unheard = reply.heard_and_unheard(played)
            self._unheard = unheard
            if reply.turn is not None:
                reply.turn.interrupted = True
                if reply.turn.outcome == "pending":
                    reply.turn.outcome = "interrupted"
                reply.turn.agent_text = heard
            self._memory.remember(reply.turn.caller_text if reply.turn else None, heard)
        self._cancel_reply()
        self._log.info("turn.barge_in", dropped_frames=dropped, unheard=len(self._unheard))

    # -- replies -------------------------------------------------------------------------------

    async def _respond(self, turn: Turn, transcriber: Transcriber, reply: Reply) -> None:
        playing = asyncio.ensure_future(reply.play())
        try:
            async with stalled_after(self.settings.stt_timeout_seconds, "speech recognition"):
                text = await transcriber.final()
            turn.mark("stt_final")
            turn.caller_text = text
            if is_noise(turn.caller_text, turn.voiced_ms, self.settings.min_voiced_ms):
                await reply.released.wait()
                turn.outcome = "noise"
                self._resume_unheard(reply)
            else:
                self._unheard = []
                async with stalled_after(self.settings.llm_timeout_seconds, "the language model"):
                    decided = await self._understanding.decide(
                        text, self._memory.recent(), self._caller_facts(), reply.llm_go, turn
                    )
                turn.decided = decided.as_dict()
                if decided.action is not None:
                    await self._act(turn, decided.action, reply, playing)
                    return
                await self._answer(turn, text, decided, reply)
            await playing
            await self._output.wait_for_playout()
            if turn.outcome == "pending":
                turn.outcome = "answered"
            turn.agent_text = turn.agent_text or reply.text
            self._log_turn(turn)
            self._spawn(self._prefill_history())
        finally:
            if not playing.done():
                playing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await playing

    async def _answer(self, turn: Turn, text: str, decided: Decided, reply: Reply) -> None:
        """Stream the grounded answer into the reply, clause by clause."""
        clauses = aiter(decided.clauses(turn))
        try:
            while True:
                try:
                    clause = await next_within(clauses, self.settings.llm_timeout_seconds, "the language model")
                except StopAsyncIteration:
                    break
                turn.mark("first_clause")
                reply.add(clause, self.agent.cached_phrase(clause, self._rate))
        finally:
            await decided.close()
        reply.close()
        if decided.answer is not None and decided.answer.fell_back:
            turn.outcome = "answered:unknown"
        turn.decided = decided.as_dict()
        self._understanding.after_answer(decided)
        turn.agent_text = reply.text
        self._memory.remember(text, agent_turn(ANSWER, reply.text))
        await reply.released.wait()

    async def _act(self, turn: Turn, action: Action, reply: Reply, playing: asyncio.Future[None]) -> None:
        """A routing decision: say what happens, then do it (transfer, record, end)."""
        await reply.released.wait()
        self._unheard = []
        goodbye = isinstance(action, Goodbye)
        turn.outcome = "goodbye" if goodbye else f"routing:{type(action).__name__.lower()}"
        turn.agent_text = action.say
        if isinstance(action, MessageTaken):
            await self._save_message(action)
        reply.add(action.say, self.agent.cached_phrase(action.say, self._rate))  # not cached: streamed
        reply.close()
        self._memory.remember(turn.caller_text, action.say if goodbye else label_for(action))
        await playing
        await self._output.wait_for_playout()
        self._log_turn(turn)
        if goodbye:
            self._end("caller_goodbye")
        elif isinstance(action, RecordMessage):
            self._message_audio = bytearray()
        elif isinstance(action, MessageTaken):
            self._end("message_taken")
        elif isinstance(action, Transfer):
            self.phase = "transferring"
            self._spawn(self._transfer(action))
        else:
            self._spawn(self._prefill_history())

    async def _on_digit(self, digit: str) -> None:
        assert self._desk is not None
        action = await self._desk.on_digit(digit)
        if action is None or self.phase == "ending":
            return
        now = time.monotonic()
        self._cancel_reply()
        self._output.clear()
        turn = Turn(len(self.turns), speech_start=now, speech_end=now, caller_text=f"[dtmf {digit}]")
        self.turns.append(turn)
        reply = self._new_reply(turn)
        reply.released.set()
        playing = asyncio.ensure_future(reply.play())
        self._set_reply(reply, self._act(turn, action, reply, playing))

    async def _transfer(self, action: Transfer) -> None:
        assert self._desk is not None
        outcome = await self._control.transfer(action.route, self._desk.variables())
        self._log.info("routing.transfer", target=action.route.name, by=action.route.by, outcome=outcome)
        if outcome in ("handed_over", "answered"):
            self.phase = "ending"
            self.end_reason = f"transferred:{action.route.name}"
            return
        if self.phase != "transferring":
            return  # the call ended while the phone rang
        self.phase = "talking"
        self._speak(self._desk.transfer_failed(action.route, outcome).say, "agent:transfer_failed")

    async def _look_up_caller(self, webhooks: Webhooks) -> None:
        known = await look_up_caller(webhooks, self._control.info, self.persona_name)
        if self._desk is not None and known.get("caller_name"):
            self._desk.caller_name = self._desk.caller_name or known["caller_name"]
        self._memory.caller_notes = known.get("notes", "")

    async def _save_message(self, action: MessageTaken) -> None:
        assert self._desk is not None and self.agent.routing is not None
        audio, self._message_audio = bytes(self._message_audio or b""), None
        path = await save_message(self.agent.routing, self._desk, self._control.info, action, audio, self._rate)
        self.message_path = str(path)

    def _resume_unheard(self, reply: Reply) -> None:
        """A false interruption (noise, a cough): say what the caller missed, or nothing."""
        for clause in self._unheard:
            reply.add(clause)
        if self._unheard:
            self._memory.remember(None, " ".join(self._unheard))
            self._log.info("turn.resumed", clauses=len(self._unheard))
        self._unheard = []
        reply.close()

    def _greet(self) -> None:
        reply = self._new_reply()
        reply.released.set()
        self._set_reply(reply, self._say(reply, self.persona.greeting))

    def _speak(self, text: str, outcome: str) -> None:
        """Something the agent says unasked (a re-prompt, a failed transfer): a turn of its own."""
        now = time.monotonic()
        turn = Turn(len(self.turns), speech_start=now, speech_end=now, agent_text=text, outcome=outcome)
        self.turns.append(turn)
        reply = self._new_reply()
        reply.released.set()
        self._set_reply(reply, self._say(reply, text))

    async def _say(self, reply: Reply, text: str) -> None:
        playing = asyncio.ensure_future(reply.play())
        try:
            async with stalled_after(self.settings.tts_timeout_seconds, "speech synthesis"):
                audio = await self.agent.phrase(text, self._rate)
            reply.add(text, audio)
            reply.close()
            await playing
            await self._output.wait_for_playout()
        finally:
            playing.cancel()

    def _new_reply(self, turn: Turn | None = None) -> Reply:
        return Reply(self.agent.speaker, self._rate, self._output, turn, self.settings.tts_timeout_seconds)

    def _set_reply(self, reply: Reply, work: Coroutine[Any, Any, None]) -> None:
        self._cancel_reply()
        self._reply = reply
        self._reply_task = self._spawn(self._guarded(reply, work))
        self._reply_task.add_done_callback(lambda _: work.close())  # cancelled before it ever ran

    async def _guarded(self, reply: Reply, work: Coroutine[Any, Any, None]) -> None:
        """Run one reply; a backend failure ends the call gracefully instead of leaving silence."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any backend may fail; the call must not go silent
            self.errors.append(f"{type(error).__name__}: {error}")
            self._log.error("conversation.backend_failed", error=str(error), exc_info=True)
            if reply.turn is not None:
                reply.turn.outcome = "error"
                if reply.turn not in self.turns:
                    self.turns.append(reply.turn)
            self._spawn(self._fail())
        finally:
            if self._reply is reply:
                self._reply = None
                self._reply_task = None
                self._idle_since = time.monotonic()

    def _cancel_reply(self) -> None:
        if self._reply_task is not None:
            self._reply_task.cancel()
        self._reply = None
        self._reply_task = None

    def _agent_speaking(self) -> bool:
        reply = self._reply
        return len(self._output) > 0 or (reply is not None and reply.released.is_set())

    # -- call lifecycle ------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        settings = self.settings
        while self.phase != "ending":
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = time.monotonic()
            if now - self._started_at > settings.max_call_seconds:
                self._log.info("conversation.max_duration")
                await self._finish(self.persona.goodbye, "max_duration")
            elif self._is_idle() and now - self._idle_since > settings.reprompt_after_seconds:
                if self._reprompts >= settings.max_reprompts:
                    await self._finish(self.persona.goodbye, "caller_silent")
                else:
                    self._reprompts += 1
                    self._idle_since = now
                    self._speak(self.persona.reprompt, "agent:reprompt")

    def _is_idle(self) -> bool:
        talking = self.phase == "talking"
        return self._reply is None and talking and not self._endpointer.in_speech and len(self._output) == 0

    async def _fail(self) -> None:
        transfer = self.settings.on_error == "transfer"
        await self._finish(self.persona.apology, "backend_error", hand_over=transfer)

    async def _finish(self, text: str, reason: str, hand_over: bool = False) -> None:
        """Say a last phrase, then end the call or hand it to the dialplan (a human queue)."""
        if self.phase == "ending":
            return
        self.phase = "ending"
        self._cancel_reply()
        self._output.clear()
        now = time.monotonic()
        self.turns.append(Turn(len(self.turns), now, now, agent_text=text, outcome=f"agent:{reason}"))
        try:
            async with stalled_after(self.settings.tts_timeout_seconds, "speech synthesis"):
                audio = await self.agent.phrase(text, self._rate)
            self._output.put(audio)
            self._output.end_segment()
            await self._output.wait_for_playout()
        except Exception as error:  # noqa: BLE001 - even the last phrase may fail; still end the call
            self._log.error("conversation.last_phrase_failed", error=str(error))
        self._end(reason, hand_over)

    def _end(self, reason: str, hand_over: bool = False) -> None:
        self.phase = "ending"
        self.end_reason = reason
        self._log.info("conversation.end", reason=reason, turns=len(self.turns))
        if hand_over:
            self._control.hand_over("failed")
        else:
            self._control.hang_up(reason)

    # -- helpers -------------------------------------------------------------------------------

    def _caller_facts(self) -> str:
        return self._memory.caller_facts(self._desk.caller_name if self._desk is not None else None)

    async def _prefill_history(self) -> None:
        """While the caller speaks, get the LLM's cache ready for the conversation so far."""
        try:
            prompt = self._understanding.prompt
            await self.agent.llm.prefill(prompt.for_turn(self._memory.recent(), "", self._caller_facts())[:-1])
        except Exception as error:  # noqa: BLE001 - an optimisation; the reply itself will surface failures
            self._log.warning("conversation.prefill_failed", error=str(error))

    def _flush_transcriber_soon(self) -> None:
        transcriber = self._transcriber
        if transcriber is None or self._flushing or transcriber.pending_frames() < FEED_BATCH_FRAMES:
            return
        self._flushing = True

        async def flush() -> None:
            try:
                await transcriber.flush()
            finally:
                self._flushing = False

        self._spawn(flush())

    def _log_turn(self, turn: Turn) -> None:
        self._log.info(
            "turn.done",
            turn=turn.index,
            outcome=turn.outcome,
            caller=turn.caller_text,
            agent=turn.agent_text,
            latency_ms=turn.latency_ms(),
        )

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self._tasks.start(work)
