"""The conversation controller with scripted models, driven frame by frame on a virtual clock."""

from __future__ import annotations

import threading

import pytest

from bridge.config.agent import TurnConfig
from bridge.conversation.controller import Conversation
from bridge.conversation.turns import STAGES
from bridge.media.codecs import rms
from tests.support.fakes import ScriptedLanguageModel, ScriptedTurnModel, ToneSynthesizer, fake_agent, quiet, speech
from tests.support.sim_call import SimulatedCall

pytestmark = pytest.mark.virtual_time  # frames paced by a virtual clock: no sleeping

GREETING = 1.2  # the scripted greeting is ~0.9 s of tone


def first_audio_after(call: SimulatedCall, seconds: float) -> float | None:
    start = round(seconds * 50)
    return next((i * 0.02 for i, f in enumerate(call.heard) if i >= start and rms(f) > 500), None)


def silent_between(call: SimulatedCall, start: float, end: float) -> bool:
    return all(rms(frame) <= 500 for frame in call.heard[round(start * 50) : round(end * 50)])


async def test_question_is_answered_after_the_end_of_turn_with_latency_marks() -> None:
    llm = ScriptedLanguageModel()
    agent = fake_agent(["what time do you open"], llm=llm)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.6) + quiet(2.5), 4.3)

    (turn,) = conversation.turns
    assert turn.caller_text == "what time do you open"
    assert turn.outcome == "answered"
    assert turn.agent_text == llm.reply_text
    messages = llm.requests[-1]
    assert messages[0]["role"] == "system" and "Closed on Sunday" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "what time do you open"}
    assert llm.offered[-1] == ("goodbye", "answer")  # no routing: nothing to transfer to
    latency = turn.latency_ms()
    assert set(latency) == set(STAGES)
    assert latency["stt_final"] <= latency["llm_first_token"] <= latency["first_clause"]
    assert latency["first_clause"] <= latency["tts_first_audio"] <= latency["first_frame_out"]
    # Prepared during the pause, but held until the end of turn is certain.
    assert latency["first_frame_out"] >= latency["endpoint"] >= agent.settings.end_ms - 20
    answer_at = first_audio_after(call, GREETING + 0.6)
    assert answer_at is not None and answer_at >= GREETING + 0.6 + agent.settings.end_ms / 1000 - 0.02


async def test_caller_speech_over_the_agent_silences_it_within_a_frame() -> None:
    long_reply = ScriptedLanguageModel(reply_text="Sure. " + "This is a very long answer about our hours. " * 6)
    agent = fake_agent(["tell me everything", "stop please"], llm=long_reply)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    interrupt_at = GREETING + 0.6 + 1.2
    await call.run(quiet(GREETING) + speech(0.6) + quiet(1.2) + speech(0.8) + quiet(2.0), 6.0)

    assert first_audio_after(call, GREETING + 0.6) is not None
    assert conversation.barge_ins == 1
    # Onset needs 3 voiced frames; the frame after that is already silent.
    assert silent_between(call, interrupt_at + 0.1, interrupt_at + 0.8)
    first, second = conversation.turns
    assert first.interrupted and first.outcome == "interrupted"
    assert second.caller_text == "stop please"


async def test_false_interruption_resumes_what_the_caller_missed() -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(reply_text="First part here. Second part follows now. Third part ends it.")
    # The cough comes ~300 ms into the answer: past a 200 ms continue_within_ms, so it is a
    # barge-in (inside the window it would be the caller going on with the turn).
    agent = fake_agent(["what are your hours", ""], llm=llm, synthesizer=synthesizer, continue_within_ms=200)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    cough_at = GREETING + 0.6 + 0.5
    await call.run(quiet(GREETING) + speech(0.6) + quiet(0.5) + speech(0.2) + quiet(3.5), 6.5)

    assert conversation.barge_ins == 1
    noise_turn = conversation.turns[1]
    assert noise_turn.outcome == "noise"
    resumed = synthesizer.spoken[synthesizer.spoken.index("First part here.") + 1 :]
    assert len(resumed) > len(set(resumed)), f"nothing was said again after the cough: {synthesizer.spoken}"
    assert first_audio_after(call, cough_at + 0.5) is not None


async def test_pause_then_more_speech_discards_the_prepared_answer() -> None:
    llm = ScriptedLanguageModel(token_delay=0.05)
    agent = fake_agent(["what time do you open on saturday"], llm=llm)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.5) + quiet(0.12) + speech(0.5) + quiet(2.5), 5.0)

    assert len(conversation.turns) == 1
    assert len(llm.requests) == 2, "the answer prepared at the pause should have been redone"
    assert llm.cancelled >= 1


async def test_a_short_noise_gets_no_answer() -> None:
    llm = ScriptedLanguageModel()
    agent = fake_agent(["you"], llm=llm)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.08) + quiet(1.5), 3.0)

    assert [turn.outcome for turn in conversation.turns] == ["noise"]
    assert llm.requests == []


async def test_silent_caller_is_reprompted_then_told_goodbye() -> None:
    synthesizer = ToneSynthesizer()
    agent = fake_agent([""], synthesizer=synthesizer, reprompt_after_seconds=0.5, max_reprompts=1)
    persona = agent.personas["receptionist"]
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(b"", 6.0)

    assert call.ended == "caller_silent"
    assert conversation.end_reason == "caller_silent"
    assert persona.reprompt in synthesizer.spoken
    assert persona.goodbye in synthesizer.spoken


async def test_caller_saying_goodbye_ends_the_call() -> None:
    agent = fake_agent(["okay thanks, bye"])
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.5) + quiet(3.0), 5.0)
    assert call.ended == "caller_goodbye"


async def test_backend_failure_apologises_and_hands_over() -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(fail_with=RuntimeError("llama crashed"))
    agent = fake_agent(["can I book a cleaning"], llm=llm, synthesizer=synthesizer)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.5) + quiet(3.0), 5.0)

    assert call.handed_over == "failed"
    assert conversation.end_reason == "backend_error"
    assert conversation.errors == ["RuntimeError: llama crashed"]
    assert agent.personas["receptionist"].apology in synthesizer.spoken
    assert conversation.turns[0].outcome == "error"


async def test_backend_failure_can_hang_up_instead() -> None:
    llm = ScriptedLanguageModel(fail_with=RuntimeError("llama crashed"))
    agent = fake_agent(["can I book a cleaning"], llm=llm, on_error="hangup")
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.5) + quiet(3.0), 5.0)
    assert call.ended == "backend_error" and call.handed_over == ""


async def test_call_ends_at_the_maximum_length() -> None:
    agent = fake_agent([""], max_call_seconds=1.5)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(b"", 4.0)
    assert call.ended == "max_duration"


async def test_unknown_persona_falls_back_to_the_default() -> None:
    conversation = Conversation(fake_agent([""]), "no-such-persona")
    assert conversation.persona_name == "receptionist"


async def test_a_recogniser_that_hangs_gets_the_apology_and_the_hand_over() -> None:
    stall = threading.Event()
    agent = fake_agent(["can I book a cleaning"], stt_timeout_seconds=0.5)
    agent.recognizer.stall = stall  # type: ignore[attr-defined]
    synthesizer = agent.speaker.synthesizer
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    try:
        await call.run(quiet(GREETING) + speech(0.5) + quiet(4.0), 6.0)
    finally:
        stall.set()
    assert call.handed_over == "failed" and conversation.end_reason == "backend_error"
    assert conversation.errors == ["ModelStalled: speech recognition gave nothing for 0.5 s"]
    assert agent.personas["receptionist"].apology in synthesizer.spoken  # type: ignore[attr-defined]


async def test_a_language_model_that_never_answers_gets_the_apology_and_the_hand_over() -> None:
    agent = fake_agent(["can I book a cleaning"], llm=ScriptedLanguageModel(stall=True), llm_timeout_seconds=0.5)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.5) + quiet(4.0), 6.0)
    assert call.handed_over == "failed"
    assert conversation.errors == ["ModelStalled: the language model gave nothing for 0.5 s"]
    assert conversation.turns[0].outcome == "error"


async def test_a_synthesiser_that_hangs_mid_answer_ends_the_call_gracefully() -> None:
    synthesizer = ToneSynthesizer(stall_on="8 am")
    agent = fake_agent(["what time do you open"], synthesizer=synthesizer, tts_timeout_seconds=0.5)
    for text in (agent.personas["receptionist"].greeting, agent.personas["receptionist"].apology):
        await agent.phrase(text, 8000)  # rendered at start-up in the product (Agent.warm)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    try:
        await call.run(quiet(GREETING) + speech(0.5) + quiet(4.0), 6.0)
    finally:
        synthesizer.release.set()
    assert call.handed_over == "failed"
    assert conversation.errors == ["ModelStalled: speech synthesis gave nothing for 0.5 s"]
    assert first_audio_after(call, GREETING + 1.5) is not None  # the cached apology was heard


TURN = TurnConfig(detector="smart_turn", check_ms=100, hold_ms=1000)


async def test_a_complete_verdict_answers_before_the_fixed_silence() -> None:
    turn_model = ScriptedTurnModel([0.97])
    agent = fake_agent(["what time do you open"], turn_model=turn_model, turn=TURN, end_ms=600)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.6) + quiet(2.5), 4.3)

    (turn,) = conversation.turns
    assert turn.end_of_turn == [0.97]
    assert 0.8 <= turn_model.heard_seconds[0] <= 1.1  # pre-roll + speech + 100 ms of pause, at 16 kHz
    assert turn.latency_ms()["endpoint"] < 600 - 200  # well before end_ms of silence
    answer_at = first_audio_after(call, GREETING + 0.6)
    assert answer_at is not None and answer_at < GREETING + 0.6 + 0.6


async def test_an_incomplete_verdict_keeps_listening_through_a_pause_longer_than_end_ms() -> None:
    turn_model = ScriptedTurnModel([0.1, 0.95])
    agent = fake_agent(["my number is five five five zero one two three"], turn_model=turn_model, turn=TURN)
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    # A 500 ms pause: end_ms (200) alone would have ended the turn in it.
    await call.run(quiet(GREETING) + speech(0.6) + quiet(0.5) + speech(0.6) + quiet(2.5), 5.5)

    (turn,) = conversation.turns
    assert turn.end_of_turn == [0.1, 0.95]
    assert turn.caller_text == "my number is five five five zero one two three"
