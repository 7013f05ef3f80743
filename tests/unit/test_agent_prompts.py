"""A reloaded agent's prompts: the demonstrations the model already gave carry over."""

from __future__ import annotations

import dataclasses

from bridge.conversation.prompt import DEMONSTRATION_QUESTIONS
from tests.support.fakes import ScriptedLanguageModel, fake_agent


def _has_demonstrations(messages: object) -> bool:
    return DEMONSTRATION_QUESTIONS[0] in str(messages)


async def test_a_reload_copy_of_an_unchanged_persona_has_its_demonstrations_before_it_is_warmed() -> None:
    llm = ScriptedLanguageModel(token_delay=0.0)
    agent = fake_agent([], llm=llm)
    await agent.warm(8000)
    asked = len(llm.requests)
    assert asked == len(DEMONSTRATION_QUESTIONS)
    assert _has_demonstrations(agent.prompt("receptionist").messages)

    copy = dataclasses.replace(agent, personas=dict(agent.personas))  # what a reload makes
    assert _has_demonstrations(copy.prompt("receptionist").messages)
    await copy.warm(8000)
    assert len(llm.requests) == asked  # the model is not asked again


async def test_a_changed_persona_is_asked_again() -> None:
    llm = ScriptedLanguageModel(token_delay=0.0)
    agent = fake_agent([], llm=llm)
    await agent.warm(8000)
    persona = agent.personas["receptionist"].model_copy(update={"facts": ["Opening hours: 9 am to 5 pm daily."]})
    copy = dataclasses.replace(agent, personas={"receptionist": persona})
    assert not _has_demonstrations(copy.prompt("receptionist").messages)
    await copy.warm(8000)
    assert len(llm.requests) == 2 * len(DEMONSTRATION_QUESTIONS)
    assert _has_demonstrations(copy.prompt("receptionist").messages)
