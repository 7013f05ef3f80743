"""The echo guard: our own voice coming back is not the caller talking over the agent."""

from __future__ import annotations

import pytest

from bridge.conversation.controller import Conversation
from bridge.conversation.echo_guard import EchoGuard
from tests.support.audio import tone
from tests.support.fakes import ScriptedLanguageModel, fake_agent, quiet, speech
from tests.support.sim_call import SimulatedCall

pytestmark = pytest.mark.virtual_time  # frames paced by a virtual clock: no sleeping

GREETING = 1.2


def test_the_floor_follows_what_we_sent_within_the_echo_tail() -> None:
    guard = EchoGuard(return_loss_db=6.0, tail_seconds=0.4)
    loud = tone(600, 0.02, 8000, amplitude=0.3)
    assert guard.floor(now=0.0) == 0
    guard.played(loud, now=1.0)
    floor = guard.floor(now=1.1)
    assert 3000 < floor < 3900  # half (-6 dB) of the ~6950 RMS we sent
    assert guard.floor(now=1.5) == 0  # past the tail nothing of ours can come back


async def echoed_call(echo_return_loss_db: float, continue_within_ms: int = 300) -> tuple[Conversation, SimulatedCall]:
    agent = fake_agent(
        ["what time do you open"], echo_return_loss_db=echo_return_loss_db, continue_within_ms=continue_within_ms
    )
    conversation = Conversation(agent, "receptionist")
    # The line returns our voice 6 dB down, 100 ms late: louder than the fixed -35 dBFS floor.
    call = SimulatedCall(conversation, echo=(0.5, 5))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(4.0), 5.8)
    return conversation, call


async def test_the_agents_own_echo_does_not_interrupt_it() -> None:
    conversation, _ = await echoed_call(echo_return_loss_db=6.0)
    assert conversation.barge_ins == 0
    (turn,) = [turn for turn in conversation.turns if turn.caller_text]
    assert turn.outcome == "answered" and not turn.interrupted


async def test_without_the_guard_the_same_echo_stops_the_agent() -> None:
    conversation, _ = await echoed_call(echo_return_loss_db=0.0, continue_within_ms=0)  # 0 disables it
    assert conversation.barge_ins > 0
    first = conversation.turns[0]
    assert first.caller_text == "what time do you open" and first.interrupted
    assert "answered" not in [turn.outcome for turn in conversation.turns]  # the answer never got through


async def test_without_the_guard_the_echo_is_taken_for_the_caller_going_on() -> None:
    # The echo comes back 100 ms into the answer, inside continue_within_ms: the agent drops its
    # answer and listens again, over and over. Either way its own voice stopped it.
    conversation, _ = await echoed_call(echo_return_loss_db=0.0)
    (turn,) = conversation.turns
    assert turn.continued > 1
    assert turn.outcome != "answered"


async def test_a_caller_talking_over_the_echo_still_barges_in() -> None:
    long_reply = ScriptedLanguageModel(reply_text="Sure. " + "This is a very long answer about our hours. " * 6)
    agent = fake_agent(["tell me everything", "stop please"], llm=long_reply, echo_return_loss_db=6.0)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation, echo=(0.5, 5))
    # The caller speaks again while the answer plays, as loud as the agent (louder than its echo).
    await call.run(quiet(GREETING) + speech(0.6) + quiet(1.2) + speech(0.8) + quiet(2.0), 6.0)
    assert conversation.barge_ins == 1
    first, second = [turn for turn in conversation.turns if turn.caller_text]
    assert first.interrupted and second.caller_text == "stop please"


def _talk(guard: EchoGuard, returned: float, frames: int, start: float = 0.0) -> float:
    """We send a loud frame every 20 ms while the line returns `returned` of its level."""
    loud = tone(600, 0.02, 8000, amplitude=0.3)
    now = start
    for _ in range(frames):
        now += 0.02
        guard.played(loud, now=now)
        guard.floor(now=now)
        guard.heard(int(6950 * returned), now=now)
    return now


def test_a_line_that_returns_nothing_is_measured_and_the_floor_drops() -> None:
    guard = EchoGuard(return_loss_db=6.0)
    now = _talk(guard, returned=0.0, frames=10)
    assert 3000 < guard.floor(now=now) < 3900  # not measured yet: the configured worst case
    now = _talk(guard, returned=0.0, frames=30, start=now)
    assert guard.floor(now=now) < 700  # 20 dB under our ~6950 RMS (the lowest trusted): a quiet caller is heard


def test_a_measured_echo_stays_under_the_floor() -> None:
    guard = EchoGuard(return_loss_db=6.0)
    now = _talk(guard, returned=0.1, frames=60)  # the line returns our voice 20 dB down
    floor = guard.floor(now=now)
    assert 695 < floor < 3000  # above the echo (with a margin), below the worst case


def test_a_caller_talking_over_us_keeps_the_worst_case() -> None:
    guard = EchoGuard(return_loss_db=6.0)
    now = _talk(guard, returned=0.0, frames=40)
    now = _talk(guard, returned=1.0, frames=20, start=now)  # a fifth of the last 2 s is the caller, loud
    assert 3000 < guard.floor(now=now) < 3900


def test_measuring_can_be_switched_off() -> None:
    guard = EchoGuard(return_loss_db=6.0, measure=False)
    now = _talk(guard, returned=0.0, frames=60)
    assert 3000 < guard.floor(now=now) < 3900


def quiet_speech(seconds: float) -> bytes:
    return tone(300, seconds, 8000, amplitude=0.08)  # ~11 dB under the agent's voice, over -35 dBFS


def long_answer_agent(measure: bool = True, **settings: object) -> Conversation:
    long_reply = ScriptedLanguageModel(reply_text="Sure. " + "This is a very long answer about our hours. " * 6)
    agent = fake_agent(
        ["tell me everything", "stop please", "and one more"], llm=long_reply, echo_measure=measure, **settings
    )
    return Conversation(agent, "receptionist")


@pytest.mark.parametrize("measure", [True, False])
async def test_a_quiet_caller_talking_over_an_echo_free_line_is_heard(measure: bool) -> None:
    conversation = long_answer_agent(measure)
    call = SimulatedCall(conversation)  # no echo at all
    await call.run(quiet(GREETING) + speech(0.6) + quiet(1.2) + quiet_speech(0.8) + quiet(2.0), 6.0)
    # Measured, the line returns nothing, so the caller is heard; assumed to return our voice
    # 6 dB down, the caller (11 dB under us) was taken for echo and the agent talked on.
    assert conversation.barge_ins == (1 if measure else 0)


async def test_a_caller_answering_right_after_the_greeting_does_not_spoil_the_measurement() -> None:
    # The caller starts ~80 ms after the greeting's audio ends (a normal gap), then twice talks
    # quietly over the answers. Frames after the agent went quiet are not the line's echo.
    conversation = long_answer_agent()
    call = SimulatedCall(conversation)
    audio = quiet(GREETING - 0.2) + speech(0.6) + quiet(1.2) + quiet_speech(0.8) + quiet(1.6) + quiet_speech(0.8)
    await call.run(audio + quiet(2.0), 8.0)
    assert conversation.barge_ins == 2, [turn.as_dict() for turn in conversation.turns]


@pytest.mark.parametrize("measure", [True, False])
async def test_a_line_returning_echo_20_db_down_keeps_the_agent_talking_but_hears_a_quiet_caller(
    measure: bool,
) -> None:
    # 20 dB down, 100 ms late: the measured floor sits above the echo and below the quiet caller.
    conversation = long_answer_agent(measure)
    call = SimulatedCall(conversation, echo=(0.1, 5))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(2.4) + quiet_speech(0.8) + quiet(2.0), 7.0)
    turns = [turn for turn in conversation.turns if turn.caller_text]
    assert turns[0].continued == 0  # its echo never made the agent drop its answer
    assert conversation.barge_ins == (1 if measure else 0), [turn.as_dict() for turn in turns]
