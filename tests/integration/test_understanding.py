"""The agent understands real spoken calls (Asterisk + sipp + the default models): it answers from
the facts, invents nothing, and puts a caller who asks for a person through by its own choice.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_routing import clear_queue, only_record, place_call, queue_members
from tests.support.speech import caller_says, silence, similarity

pytestmark = pytest.mark.integration

# No phrases on the operator: "a real person" must be understood, not matched by a rule.
TARGETS = {
    "sales": {"kind": "queue", "destination": "sales", "description": "our sales team", "handles": "buying"},
    "operator": {
        "kind": "queue",
        "destination": "support",
        "description": "a colleague",
        "handles": "a real person, a human, the front desk",
    },
}


async def test_a_spoken_call_is_answered_from_the_facts_and_a_person_request_reaches_the_operator(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    audio = (
        silence(5.0)
        + caller_says("Are you open on Sunday?")
        + silence(7.0)
        + caller_says("How much does your fibre plan cost?")
        + silence(8.0)
        + caller_says("Can I talk to a real person please?")
        + silence(8.0)
    )
    overrides = {"routing": {"targets": TARGETS, "operator": "operator"}}
    await queue_members(asterisk, "support", "Local/nobody@bridge-tests")  # staffed: the transfer goes ahead
    try:
        async with running_bridge(asterisk, agent=agent, overrides=overrides) as service:
            await place_call(asterisk, workdir, audio, "understanding")
            await wait_for_finished_calls(service, 1)
            record = only_record(service)
    finally:
        await clear_queue(asterisk, "support", "Local/nobody@bridge-tests")

    turns = [turn for turn in record.as_dict()["conversation"]["turns"] if turn["caller"]]
    sunday = next(turn for turn in turns if similarity(turn["caller"], "are you open on sunday") >= 0.6)
    assert sunday["outcome"] == "answered" and re.search(r"\bclosed\b|\bnot open\b", sunday["agent"], re.I), sunday
    price = next(turn for turn in turns if similarity(turn["caller"], "how much does your fibre plan cost") >= 0.5)
    assert price["outcome"].startswith("answered"), price
    assert not re.search(r"\d|dollar", price["agent"], re.I), price  # the facts price only a cleaning
    person = turns[-1]
    assert person["decided"]["by"] == "model" and person["decided"]["labels"][0][0] == "operator", person
    assert record.as_dict()["transfer"].get("target") == "operator", record.transfer
    assert record.as_dict()["conversation"]["routing"]["refused"] == []
