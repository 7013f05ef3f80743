"""The LLM on a model server: llama-cpp-python's real OpenAI-compatible server running the packaged
GGUF, the bridge's openai_http backend in front of it, and a real call through Asterisk.

This is the set-up a site uses when the model runs on another box (a GPU server): the bridge
sends the same prompt, labels and few-shot turns, and parses the reply's first word as the label.
`bridge doctor` checks the server the same way it checks Asterisk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.commands.doctor import check_model_server
from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from bridge.speech.llm_openai import OpenAiCompatibleModel
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_routing import place_call
from tests.support.model_servers import LLM_ALIAS as ALIAS
from tests.support.model_servers import start_llama_server
from tests.support.servers import free_tcp_port, stop_server
from tests.support.speech import caller_says, silence

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with the packaged model, until its /v1/models answers."""
    process, url = start_llama_server(tmp_path_factory.mktemp("llama-server"))
    try:
        yield url
    finally:
        stop_server(process)


async def test_doctor_checks_the_model_server(llama_server: str) -> None:
    config = parse_config({"llm": {"backend": "openai_http", "base_url": llama_server, "model": ALIAS}})
    (finding,) = await check_model_server(config)
    assert finding.ok, finding.line()
    assert ALIAS in finding.detail and "1-token reply in" in finding.detail


async def test_doctor_says_when_the_model_server_is_down() -> None:
    config = parse_config({"llm": {"backend": "openai_http", "base_url": f"http://127.0.0.1:{free_tcp_port()}/v1"}})
    (finding,) = await check_model_server(config)
    assert not finding.ok and "is the server running" in finding.detail


@pytest.mark.timeout(300)
async def test_a_call_is_answered_by_the_model_on_the_server(
    llama_server: str, asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    # A busy 2-core CI box evaluates the ~1,300-token prompt slowly the first time: allow for it.
    model = OpenAiCompatibleModel(llama_server, ALIAS, max_tokens=60, timeout_seconds=60)
    remote = dataclasses.replace(agent, llm=model)
    # The caller stays on long enough for a slow first answer to be played to its end.
    audio = silence(4.0) + caller_says("What are your opening hours on Saturday?") + silence(20.0)
    async with running_bridge(asterisk, agent=remote) as service:
        await place_call(asterisk, workdir, audio, "model-server")
        await wait_for_finished_calls(service, 1, timeout=40)
        record = service.app.finished[0]
    assert record.as_dict()["conversation"]["errors"] == []
    (turn,) = [turn for turn in record.as_dict()["conversation"]["turns"] if turn["caller"]]
    assert turn["outcome"].startswith("answered"), turn
    assert turn["decided"]["labels"][0][0] == "answer", turn["decided"]
    # The persona's facts say Saturday 9 am to 1 pm: the answer, grounded, is about those hours.
    assert any(word in turn["agent"].lower() for word in ("9", "nine", "saturday", "1 pm")), turn
