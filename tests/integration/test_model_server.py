"""The LLM on a model server: llama-cpp-python's real OpenAI-compatible server running the packaged
GGUF, the bridge's openai_http backend in front of it, and a real call through Asterisk.

This is the set-up a site uses when the model runs on another box (a GPU server): the bridge
sends the same prompt, labels and few-shot turns, and parses the reply's first word as the label.
`bridge doctor` checks the server the same way it checks Asterisk.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.conversation.agent import Agent
from bridge.conversation.loading import default_llm_model
from bridge.doctor import check_model_server
from bridge.pbx.instance import AsteriskInstance
from bridge.speech.llm_openai import OpenAiCompatibleModel
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_routing import place_call
from tests.support.speech import caller_says, silence

pytestmark = pytest.mark.integration

ALIAS = "qwen2.5-coder-1.5b"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Poll /models until it answers (the model is loaded), the process dies, or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"llama_cpp.server did not answer on {url} in {seconds:.0f} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with the packaged model, until its /v1/models answers."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(default_llm_model("qwen2.5-coder-1.5b")),
        "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(url, process, log, seconds=120)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_doctor_checks_the_model_server(llama_server: str) -> None:
    config = parse_config({"llm": {"backend": "openai_http", "base_url": llama_server, "model": ALIAS}})
    (finding,) = await check_model_server(config)
    assert finding.ok, finding.line()
    assert ALIAS in finding.detail and "1-token reply in" in finding.detail


async def test_doctor_says_when_the_model_server_is_down() -> None:
    config = parse_config({"llm": {"backend": "openai_http", "base_url": f"http://127.0.0.1:{_free_port()}/v1"}})
    (finding,) = await check_model_server(config)
    assert not finding.ok and "is the server running" in finding.detail


@pytest.mark.timeout(300)
async def test_a_call_is_answered_by_the_model_on_the_server(
    llama_server: str, asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    remote = dataclasses.replace(agent, llm=OpenAiCompatibleModel(llama_server, ALIAS, max_tokens=60))
    audio = silence(4.0) + caller_says("What are your opening hours on Saturday?") + silence(10.0)
    async with running_bridge(asterisk, agent=remote) as service:
        await place_call(asterisk, workdir, audio, "model-server")
        await wait_for_finished_calls(service, 1, timeout=30)
        record = service.app.finished[0]
    assert record.conversation["errors"] == []
    (turn,) = [turn for turn in record.conversation["turns"] if turn["caller"]]
    assert turn["outcome"].startswith("answered"), turn
    assert turn["decided"]["labels"][0][0] == "answer", turn["decided"]
    # The persona's facts say Saturday 9 am to 1 pm: the answer, grounded, is about those hours.
    assert any(word in turn["agent"].lower() for word in ("9", "nine", "saturday", "1 pm")), turn
