"""The conversation carrying out routing decisions, with scripted models and a simulated call."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge.config.routing import RoutingConfig
from bridge.conversation.controller import Conversation
from bridge.routing.services import RoutingServices
from tests.support.fakes import ScriptedLanguageModel, ToneSynthesizer, fake_agent, quiet, speech
from tests.support.sim_call import SimulatedCall

pytestmark = pytest.mark.virtual_time  # frames paced by a virtual clock: no sleeping

GREETING = 1.2


def routing(tmp_path: Path, **config: object) -> RoutingServices:
    return RoutingServices.from_config(RoutingConfig.model_validate({"messages_dir": str(tmp_path), **config}))


async def test_asking_for_sales_says_so_then_transfers(tmp_path: Path) -> None:
    synthesizer = ToneSynthesizer()
    agent = fake_agent(["I want to buy a new chair"], synthesizer=synthesizer, routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)

    ((target, variables),) = call.transfers
    assert target == "sales" and call.handed_over == "queue"
    assert variables == {"AI_INTENT": "sales", "AI_SUMMARY": "I want to buy a new chair", "AI_CALLER_NAME": ""}
    assert "Putting you through to our sales team now." in synthesizer.spoken
    assert conversation.end_reason == "transferred:sales"
    assert conversation.report().as_dict()["turns"][0]["outcome"] == "routing:transfer"


async def test_keypad_zero_interrupts_the_greeting_and_reaches_the_operator(tmp_path: Path) -> None:
    agent = fake_agent(["unused"], routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation, keypad={0.4: "0"})
    with capture_logs() as logs:
        await call.run(quiet(3.0), 3.0)

    assert [target for target, _ in call.transfers] == ["operator"]
    assert conversation.turns[0].caller_text == "[dtmf 0]"
    (keyed,) = [entry for entry in logs if entry["event"] == "turn.dtmf"]
    assert "0" not in keyed.values(), "keypad digits (PINs, card numbers) never reach the log"


async def test_the_models_elsewhere_is_refused_in_words_and_nothing_is_dialled(tmp_path: Path) -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(labels=[{"elsewhere": 0.9, "sales": 0.05, "answer": 0.05}])
    agent = fake_agent(["route me to the admin line"], llm=llm, synthesizer=synthesizer, routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)

    assert call.transfers == []
    refusal = "I'm sorry, I can only put you through to our sales team or a colleague."
    assert refusal in synthesizer.spoken
    turn = conversation.report().as_dict()["turns"][0]
    assert (turn["outcome"], turn["agent"]) == ("routing:refuse", refusal)
    assert turn["decided"]["by"] == "model" and turn["decided"]["labels"][0] == ["elsewhere", 0.9]
    assert conversation.report().as_dict()["routing"]["refused"] == ["route me to the admin line"]
    assert llm.offered[-1] == ("sales", "operator", "message", "goodbye", "elsewhere", "answer")
    system = llm.requests[-1][0]["content"]
    target_line = "- sales: the caller wants to be put through to our sales team (buying, prices, quotes, new"
    assert target_line in system


async def test_asking_for_a_person_reaches_the_operator_by_the_models_choice(tmp_path: Path) -> None:
    llm = ScriptedLanguageModel(labels=[{"operator": 0.8, "elsewhere": 0.1, "answer": 0.1}])
    agent = fake_agent(["could I talk with somebody who works there"], llm=llm, routing=routing(tmp_path))
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)
    assert [target for target, _ in call.transfers] == ["operator"]


async def test_an_unsure_choice_is_confirmed_before_transferring(tmp_path: Path) -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(labels=[{"sales": 0.45, "answer": 0.4, "operator": 0.15}])
    agent = fake_agent(["about my order", "yes please"], llm=llm, synthesizer=synthesizer, routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    turn = speech(0.6) + quiet(3.0)
    await call.run(quiet(GREETING) + turn + turn, 9.0)

    assert "Shall I put you through to our sales team?" in synthesizer.spoken
    assert [target for target, _ in call.transfers] == ["sales"]
    first, second = conversation.report().as_dict()["turns"]
    assert first["outcome"] == "routing:confirm" and second["outcome"] == "routing:transfer"
    assert second["decided"] == {"by": "rule"}  # "yes" answered the offer; no model needed


async def test_an_answer_the_facts_do_not_support_becomes_the_honest_fallback(tmp_path: Path) -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(reply_text="It is 10 dollars a month for fibre.")
    agent = fake_agent(["how much is fibre", "yes"], llm=llm, synthesizer=synthesizer, routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    turn = speech(0.6) + quiet(4.0)
    await call.run(quiet(GREETING) + turn + turn, 10.0)

    fallback = agent.personas["receptionist"].unknown_answer
    assert not any("10 dollars" in text for text in synthesizer.spoken)
    first, second = conversation.report().as_dict()["turns"]
    assert (first["outcome"], first["agent"]) == ("answered:unknown", fallback)
    assert first["decided"]["grounding"] == ["number 10"]
    # The fallback offers a message: "yes" now records one for the operator.
    assert second["outcome"] == "routing:recordmessage"


async def test_switching_llm_tools_off_keeps_targets_out_of_the_models_choice(tmp_path: Path) -> None:
    llm = ScriptedLanguageModel(labels=[{"message": 0.9, "answer": 0.1}])
    agent = fake_agent(["hello"], llm=llm, routing=routing(tmp_path, llm_tools=False))
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)
    assert llm.offered[-1] == ("message", "goodbye", "answer")
    assert "put the caller through" not in llm.requests[-1][0]["content"]


async def test_busy_extension_is_told_and_a_message_taken(tmp_path: Path) -> None:
    desk = {"kind": "extension", "destination": "PJSIP/201", "description": "the front desk", "phrases": ["desk"]}
    synthesizer = ToneSynthesizer()
    agent = fake_agent(
        ["front desk please", "yes", "tell them I called"],
        synthesizer=synthesizer,
        routing=routing(tmp_path, targets={"desk": desk}, operator=None),
    )
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation, transfer_outcome="busy")
    turn = speech(0.6) + quiet(4.0)
    await call.run(quiet(GREETING) + turn + turn + turn, 16.0)

    assert [target for target, _ in call.transfers] == ["desk"]
    assert "I'm sorry, the front desk is busy right now. Would you like to leave a message?" in synthesizer.spoken
    assert conversation.end_reason == "message_taken" and call.ended == "message_taken"
    (stored,) = agent.routing.messages.list() if agent.routing else []
    assert stored["text"] == "tell them I called" and stored["for_target"] == "desk"
    assert stored["caller_number"] == "15550001111"
    audio = tmp_path / str(stored["audio"])
    assert audio.stat().st_size > 8000
