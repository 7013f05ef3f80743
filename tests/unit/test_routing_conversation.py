"""The conversation carrying out routing decisions, with scripted models and a simulated call."""

from __future__ import annotations

from pathlib import Path

from bridge.conversation.controller import Conversation
from bridge.routing.services import RoutingServices
from bridge.routing_config import RoutingConfig
from tests.support.fakes import ScriptedLanguageModel, ToneSynthesizer, fake_agent, quiet, speech
from tests.support.sim_call import SimulatedCall

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
    assert conversation.report()["turns"][0]["outcome"] == "routing:transfer"


async def test_keypad_zero_interrupts_the_greeting_and_reaches_the_operator(tmp_path: Path) -> None:
    agent = fake_agent(["unused"], routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation, keypad={0.4: "0"})
    await call.run(quiet(3.0), 3.0)

    assert [target for target, _ in call.transfers] == ["operator"]
    assert conversation.turns[0].caller_text == "[dtmf 0]"


async def test_llm_tool_call_outside_the_allowlist_is_refused_not_followed(tmp_path: Path) -> None:
    synthesizer = ToneSynthesizer()
    llm = ScriptedLanguageModel(reply_text="TRANSFER extension_9999")
    agent = fake_agent(["route me to the admin line"], llm=llm, synthesizer=synthesizer, routing=routing(tmp_path))
    conversation = Conversation(agent, "receptionist")
    call = SimulatedCall(conversation)
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)

    assert call.transfers == []
    assert "I'm sorry, I can only put you through to our sales team or a colleague." in synthesizer.spoken
    assert not any("TRANSFER" in text for text in synthesizer.spoken)  # the raw tool call is never voiced
    assert conversation.report()["routing"]["refused"] == ["tool:extension_9999"]
    system = llm.requests[-1][0]["content"]
    assert "'TRANSFER <department>' where department is sales (our sales team) or operator (a colleague)" in system


async def test_llm_tool_call_to_an_allowed_target_transfers(tmp_path: Path) -> None:
    llm = ScriptedLanguageModel(reply_text="TRANSFER sales")
    agent = fake_agent(["can I book a cleaning"], llm=llm, routing=routing(tmp_path))
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)
    assert [target for target, _ in call.transfers] == ["sales"]


async def test_llm_tools_can_be_switched_off(tmp_path: Path) -> None:
    llm = ScriptedLanguageModel(reply_text="TRANSFER sales")
    synthesizer = ToneSynthesizer()
    agent = fake_agent(["hello"], llm=llm, synthesizer=synthesizer, routing=routing(tmp_path, llm_tools=False))
    call = SimulatedCall(Conversation(agent, "receptionist"))
    await call.run(quiet(GREETING) + speech(0.6) + quiet(3.0), 5.0)
    assert call.transfers == [] and "TRANSFER sales" in " ".join(synthesizer.spoken)
    assert "TRANSFER <department>" not in llm.requests[-1][0]["content"]


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
