"""The turn prompt: labels from the config, facts, example turns, and the recogniser's hints."""

from __future__ import annotations

from bridge.config.agent import DEFAULT_PERSONAS, PersonaConfig
from bridge.config.routing import RoutingConfig, TransferTarget
from bridge.conversation.prompt import agent_turn, build_prompt, hearing_hints

PERSONA = PersonaConfig(
    system_prompt="You are Alex at Northwind Fibre.",
    greeting="Hi.",
    facts=("Closed on Sunday.", "Dana Whitfield is the care manager."),
)


def test_labels_are_the_targets_then_the_fixed_ones() -> None:
    prompt = build_prompt(PERSONA, RoutingConfig())
    assert prompt.labels == ("sales", "operator", "message", "goodbye", "elsewhere", "answer")
    system = prompt.messages[0]["content"]
    assert "- Closed on Sunday." in system and "- elsewhere:" in system
    assert PERSONA.unknown_answer in system


def test_target_examples_are_chat_turns_interleaved_across_labels() -> None:
    support = TransferTarget(kind="queue", destination="support", description="support", examples=("My wifi is down",))
    routing = RoutingConfig(targets={"support": support}, operator=None)
    turns = build_prompt(PERSONA, routing).messages[1:]
    pairs = [(turns[i]["content"], turns[i + 1]["content"]) for i in range(0, len(turns), 2)]
    assert ("My wifi is down", "support") in pairs
    labels = [answer.split(":")[0] for _, answer in pairs]
    assert labels[:5] == ["support", "message", "goodbye", "elsewhere", "answer"]  # one of each first


def test_demonstrations_go_last_as_answers() -> None:
    prompt = build_prompt(PERSONA, None, (("Where are you?", "At 12 Harbour Street."),))
    assert prompt.labels == ("goodbye", "answer")
    assert list(prompt.messages[-2:]) == [
        {"role": "user", "content": "Where are you?"},
        {"role": "assistant", "content": "answer: At 12 Harbour Street."},
    ]
    assert agent_turn("sales", "Putting you through") == "sales"


def test_a_turn_puts_caller_notes_after_the_fixed_prompt() -> None:
    prompt = build_prompt(DEFAULT_PERSONAS["receptionist"], RoutingConfig())
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "answer: Hello."}]
    messages = prompt.for_turn(history, "hours?", notes="About this caller: VIP.")
    assert messages[: len(prompt.messages)] == list(prompt.messages)
    assert messages[len(prompt.messages)] == {"role": "system", "content": "About this caller: VIP."}
    assert messages[-1] == {"role": "user", "content": "hours?"}


def test_hints_name_the_business_and_its_people() -> None:
    assert hearing_hints(PERSONA, RoutingConfig()) == "Alex, Northwind Fibre, Dana Whitfield."
