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
