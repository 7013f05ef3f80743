"""What the model is told about the call so far: the history window and the caller's facts."""

from __future__ import annotations

from bridge.conversation.memory import ConversationMemory


def test_the_history_keeps_the_last_turns_in_the_models_own_words() -> None:
    memory = ConversationMemory(history_turns=2)
    for n in range(3):
        memory.remember(f"caller {n}", f"answer: agent {n}")
    memory.remember(None, "answer: resumed")  # what a cough interrupted, said again
    assert [m["content"] for m in memory.recent()] == [
        "answer: agent 1",
        "caller 2",
        "answer: agent 2",
        "answer: resumed",
    ]
    assert ConversationMemory(history_turns=0).recent() == []


def test_caller_facts_name_and_notes_or_nothing() -> None:
    memory = ConversationMemory(history_turns=8)
    assert memory.caller_facts(None) == ""
    memory.caller_notes = "Has an appointment on Friday."
    assert (
        memory.caller_facts("Maria") == "About this caller: The caller's name is Maria. Has an appointment on Friday."
    )
