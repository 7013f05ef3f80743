"""The per-call conversation: greet, listen, endpoint, think, speak, yield to barge-in, say goodbye.

Everything the media path calls (`on_audio`) is bookkeeping that returns in microseconds;
recognition, generation and synthesis run as tasks on the model workers. States follow from
three facts: is the caller mid-utterance (`Listener`), is a reply in flight or queued for
playout (`ReplySlot`, `AgentVoice`), and the call's `phase`. The answer to an utterance is
prepared at the caller's first pause (`Responder`) and released only at the end of turn, so
most of the model time hides inside the silence we must wait for anyway.

What is left here is what needs the whole call at once: turn-taking between the two sides,
carrying out the front desk's decisions, and ending the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Literal

import structlog

from bridge.background import BackgroundTasks
from bridge.conversation.agent import Agent
from bridge.conversation.desk_actions import look_up_caller, save_message
from bridge.conversation.endpointing import Signal
from bridge.conversation.listener import Listener
from bridge.conversation.memory import ConversationMemory, label_for
from bridge.conversation.reply import Reply
from bridge.conversation.reply_slot import ReplySlot
from bridge.conversation.responder import Responder
from bridge.conversation.turns import Turn
from bridge.conversation.understanding import Understanding
from bridge.conversation.voice import AgentVoice
from bridge.media.codecs import Codec
from bridge.media.playout import PlayoutQueue
from bridge.pipelines.base import CallControl
from bridge.records import ConversationReport
from bridge.routing.desk import Action, FrontDesk, Goodbye, MessageTaken, RecordMessage, Transfer
from bridge.routing.webhooks import Webhooks
from bridge.speech.stt import Transcriber

log = structlog.get_logger(__name__)

WATCHDOG_SECONDS = 0.25
MAX_MESSAGE_SECONDS = 120


class Conversation:
    """One call's MediaPipeline when pipeline.kind = "agent"."""

    def __init__(self, agent: Agent, persona: str) -> None:
        self.agent = agent
        # Stasis resolved the name already (an unknown one got the default); this fallback is for
        # direct construction (tests, benches).
        self.persona_name, self.persona = agent.persona(persona)
        settings = agent.settings
        self.settings = settings
        self._memory = ConversationMemory(settings.history_turns)
        self.turns: list[Turn] = []
        self.end_reason = ""
        self.errors: list[str] = []
        self.message_path = ""
        self.barge_ins = 0
        self._tasks: BackgroundTasks[Any] = BackgroundTasks()
        self._replies = ReplySlot(self._tasks, self._reply_failed, self._reply_done)
        # "talking" until a transfer is under way or the call is ending; "transferring" goes back
        # to "talking" when the phone did not answer; "ending" is final.
        self.phase: Literal["talking", "transferring", "ending"] = "talking"
        self._started_at = asyncio.get_running_loop().time()
        self._idle_since = self._started_at
        self._reprompts = 0
        self._desk = agent.routing.desk(self.persona.goodbye) if agent.routing is not None else None
        self._hints = agent.hints(self.persona_name)
        self._understanding = Understanding(agent.llm, agent.prompt(self.persona_name), self.persona, self._desk)
        # The desk and the history as they were before the reply in flight was decided, to undo what
        # deciding it changed if the caller goes on instead of hearing it.
        self._desk_before: FrontDesk | None = None
        self._history_before = self._memory.snapshot()
        self._message_audio: bytearray | None = None
        self._log = log.bind(persona=self.persona_name)

    # -- MediaPipeline -------------------------------------------------------------------------

    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        self._rate = codec.sample_rate
        self._control = control
        self._voice = AgentVoice(self.agent, codec.sample_rate, output, self._replies)
        self._listener = Listener(self.agent, codec.sample_rate, self._hints, self._tasks)
        self._responder = Responder(
            self.agent, codec.sample_rate, self._understanding, self._memory, self._desk, self._replies, self._log
        )
        if self._listener.echo is not None:
            output.on_frame = self._listener.echo.played
        self._voice.say(self.persona.greeting)
        self._spawn(self._watchdog())
        routing = self.agent.routing
        if routing is not None and routing.webhooks is not None and routing.webhooks.config.pre_call_url:
            self._spawn(self._look_up_caller(routing.webhooks))

    def on_audio(self, pcm: bytes) -> None:
        now = asyncio.get_running_loop().time()
        if self._message_audio is not None and len(self._message_audio) < MAX_MESSAGE_SECONDS * 2 * self._rate:
            self._message_audio += pcm
        voiced, signals = self._listener.hear(pcm, now, self._voice.audible)
        if voiced:
            self._idle_since = now
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
            speaking=self._replies.reply.text if self._replies.reply is not None else "",
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
            self._spawn(self._listener.judge_pause())
        else:
            self._caller_finished(now, too_long=signal is Signal.TOO_LONG)

    def _caller_started(self, now: float) -> None:
        if self.phase == "transferring":
            return
        if self._caller_went_on(now):
            return
        if self._voice.speaking:
            self._barge_in(now)
        self._listener.open_turn(len(self.turns), now)

    def _caller_went_on(self, now: float) -> bool:
        """The caller talks again right after their turn was called over, before its reply has been
        heard for longer than conversation.continue_within_ms: they had only paused ("my number is
        555 ... 0123"). The reply is dropped and the turn goes on, to be answered as a whole,
        instead of the agent talking over them and then answering half a sentence."""
        reply, closed = self._replies.reply, self._listener.last_closed
        window = self.settings.continue_within_ms
        if window == 0 or self.phase != "talking" or reply is None or closed is None:
            return False
        turn = closed[0]
        played = reply.played_ms()
        if reply.turn is not turn or not reply.released.is_set() or reply.final or played > window:
            return False
        self._voice.interrupt()  # what it had not said stays unheard: resumed if this turn is noise
        self._undo_decision()
        turn.marks.clear()  # the turn stays in the record, pending, should the call end now
        turn.outcome, turn.decided, turn.agent_text = "pending", {}, ""
        turn.continued += 1
        self._listener.continue_turn(now)
        self._log.info("turn.continued", turn=turn.index, heard_ms=played)
        return True

    def _prepare_reply(self) -> None:
        turn, transcriber = self._listener.turn, self._listener.transcriber
        if self.phase == "ending" or turn is None or transcriber is None:
            return
        turn.marks.clear()
        self._start_reply(turn, transcriber)

    def _start_reply(self, turn: Turn, transcriber: Transcriber) -> None:
        """Decide and say the reply to `turn`, keeping what the decision may change to undo it."""
        reply = self._voice.new_reply(turn)
        self._desk_before = self._desk.snapshot() if self._desk is not None else None
        self._history_before = self._memory.snapshot()
        self._replies.start(reply, self._respond(turn, transcriber, reply))

    def _undo_decision(self) -> None:
        if self._desk is not None and self._desk_before is not None:
            self._desk.restore(self._desk_before)
        self._memory.restore(self._history_before)

    def _discard_prepared_reply(self) -> None:
        """The caller went on: forget the speculative answer and what deciding it changed."""
        reply = self._replies.reply
        if reply is not None and not reply.released.is_set():
            self._replies.cancel()
            self._undo_decision()
            if self._listener.turn is not None:
                self._listener.turn.marks.clear()

    def _caller_finished(self, now: float, too_long: bool) -> None:
        turn, transcriber = self._listener.close_turn(final=too_long)
        if turn is None or transcriber is None or self.phase == "ending":
            return
        turn.mark("endpoint", now)
        if too_long:
            turn.outcome = "cut_at_max_length"
        if turn not in self.turns:  # a continued turn is there already
            self.turns.append(turn)
        if self._replies.reply is None or self._replies.reply.turn is not turn:
            self._start_reply(turn, transcriber)
        assert self._replies.reply is not None
        self._replies.reply.released.set()

    def _barge_in(self, now: float) -> None:
        """The caller talks over the agent: silence it within a frame, keep what was not heard."""
        reply, heard, dropped = self._voice.interrupt()
        self.barge_ins += 1
        if reply is not None:
            if reply.turn is not None:
                reply.turn.interrupted = True
                if reply.turn.outcome == "pending":
                    reply.turn.outcome = "interrupted"
                reply.turn.agent_text = heard
            self._memory.remember(reply.turn.caller_text if reply.turn else None, heard)
        self._log.info("turn.barge_in", dropped_frames=dropped, unheard=len(self._replies.unheard))

    # -- replies -------------------------------------------------------------------------------

    async def _respond(self, turn: Turn, transcriber: Transcriber, reply: Reply) -> None:
        playing = asyncio.ensure_future(reply.play())
        try:
            action = await self._responder.respond(turn, transcriber, reply)
            if action is not None:
                await self._act(turn, action, reply, playing)
                return
            await playing
            await self._voice.wait_for_playout()
            if turn.outcome == "pending":
                turn.outcome = "answered"
            turn.agent_text = turn.agent_text or reply.text
            self._log_turn(turn)
            self._spawn(self._responder.prefill_history())
        finally:
            if not playing.done():
                playing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await playing

    def _speak(self, text: str, outcome: str) -> None:
        """Something the agent says unasked (a re-prompt, a failed transfer): a turn of its own."""
        now = asyncio.get_running_loop().time()
        turn = Turn(len(self.turns), speech_start=now, speech_end=now, agent_text=text, outcome=outcome)
        self.turns.append(turn)
        self._voice.say(text)

    def _reply_failed(self, reply: Reply, error: Exception) -> None:
        """A backend failed mid-reply: end the call gracefully instead of leaving silence."""
        self.errors.append(f"{type(error).__name__}: {error}")
        self._log.error("conversation.backend_failed", error=str(error), exc_info=True)
        if reply.turn is not None:
            reply.turn.outcome = "error"
            if reply.turn not in self.turns:
                self.turns.append(reply.turn)
        self._spawn(self._fail())

    def _reply_done(self) -> None:
        """The caller's silence (re-prompts, caller_silent) counts from the end of the last reply."""
        self._idle_since = asyncio.get_running_loop().time()

    # -- the front desk's decisions ------------------------------------------------------------

    async def _act(self, turn: Turn, action: Action, reply: Reply, playing: asyncio.Future[None]) -> None:
        """A routing decision: say what happens, then do it (transfer, record, end)."""
        await reply.released.wait()
        self._replies.forget_unheard()
        goodbye = isinstance(action, Goodbye)
        turn.outcome = "goodbye" if goodbye else f"routing:{type(action).__name__.lower()}"
        turn.agent_text = action.say
        # A saved message is final. A message prompt is not: callers who stop mid-sentence ("I have
        # an appointment on Thursday ...") are often taken to want one, and going on fixes that
        # (measured with bench turn --live: with the prompt final, 8 of 14 split requests were these).
        reply.final = isinstance(action, MessageTaken)
        if isinstance(action, MessageTaken):
            await self._save_message(action)
        reply.add(action.say, self.agent.cached_phrase(action.say, self._rate))  # not cached: streamed
        reply.close()
        self._memory.remember(turn.caller_text, action.say if goodbye else label_for(action))
        await playing
        await self._voice.wait_for_playout()
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
            self._spawn(self._responder.prefill_history())

    async def _on_digit(self, digit: str) -> None:
        assert self._desk is not None
        action = await self._desk.on_digit(digit)
        if action is None or self.phase == "ending":
            return
        now = asyncio.get_running_loop().time()
        self._voice.silence()
        turn = Turn(len(self.turns), speech_start=now, speech_end=now, caller_text=f"[dtmf {digit}]")
        self.turns.append(turn)
        reply = self._voice.new_reply(turn)
        reply.released.set()
        playing = asyncio.ensure_future(reply.play())
        self._replies.start(reply, self._act(turn, action, reply, playing))

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

    # -- call lifecycle ------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        settings = self.settings
        while self.phase != "ending":
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = asyncio.get_running_loop().time()
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
        return self._voice.quiet and talking and not self._listener.in_speech

    async def _fail(self) -> None:
        transfer = self.settings.on_error == "transfer"
        await self._finish(self.persona.apology, "backend_error", hand_over=transfer)

    async def _finish(self, text: str, reason: str, hand_over: bool = False) -> None:
        """Say a last phrase, then end the call or hand it to the dialplan (a human queue)."""
        if self.phase == "ending":
            return
        self.phase = "ending"
        self._voice.silence()
        now = asyncio.get_running_loop().time()
        self.turns.append(Turn(len(self.turns), now, now, agent_text=text, outcome=f"agent:{reason}"))
        try:
            await self._voice.say_last(text)
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
