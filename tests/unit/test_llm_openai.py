"""The OpenAI-compatible backend against a local SSE server (a fake server: this is a unit test)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bridge.speech.llm import LabelScores, label_of
from bridge.speech.llm_openai import OpenAiCompatibleError, OpenAiCompatibleModel

LABELS = ("sales", "goodbye", "answer")
# What the fake server streams, by the model name asked for.
REPLIES = {
    "qwen": ["ans", "wer: We open", " at nine", "."],
    "router": ["sa", "les"],
    "rambler": ["Sure! We open at nine."],
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    requests: list[dict[str, object]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        requests.append({"body": body, "auth": request.headers.get("Authorization")})
        if body["model"] == "missing":
            return web.Response(status=404, text="model not found")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in REPLIES[body["model"]]:
            chunk = {"choices": [{"delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", requests
    await runner.cleanup()


async def reply(model: OpenAiCompatibleModel, text: str) -> list[LabelScores | str]:
    return [piece async for piece in model.labelled_reply([{"role": "user", "content": text}], LABELS)]


async def test_streams_the_reply_and_sends_the_key(server: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = server
    model = OpenAiCompatibleModel(url, "qwen", api_key="secret", max_tokens=20)
    scores, *pieces = await reply(model, "hours?")
    await model.close()
    assert scores == LabelScores.of({"answer": 1.0}) and "".join(map(str, pieces)) == "We open at nine."
    body = requests[0]["body"]
    assert isinstance(body, dict) and body["stream"] is True and body["max_tokens"] == 20
    assert requests[0]["auth"] == "Bearer secret"
    assert str(body["grammar"]).startswith("root ::= ")  # llama.cpp servers: nothing off the list


def test_the_grammar_allows_only_the_labels_and_an_answer_line() -> None:
    from bridge.speech.llm_openai import labels_grammar

    assert labels_grammar(["sales", "goodbye", "answer"]) == 'root ::= "sales" | "goodbye" | "answer:" [^\\n]*\n'
    assert labels_grammar(["answer"]) == 'root ::= "answer:" [^\\n]*\n'


async def test_an_http_error_is_reported_with_the_server_message(server: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = server
    model = OpenAiCompatibleModel(url, "missing")
    with pytest.raises(OpenAiCompatibleError, match="HTTP 404: model not found"):
        await reply(model, "hi")
    await model.close()


async def test_a_label_ends_the_reply_and_text_off_the_list_is_an_answer(
    server: tuple[str, list[dict[str, object]]],
) -> None:
    url, _ = server
    router = OpenAiCompatibleModel(url, "router")
    assert await reply(router, "I want to buy") == [LabelScores.of({"sales": 1.0})]
    rambler = OpenAiCompatibleModel(url, "rambler")
    scores, text = await reply(rambler, "hours?")
    assert isinstance(scores, LabelScores) and (scores.best, scores.off_list) == ("answer", "sure!")
    assert text == "Sure! We open at nine."
    await router.close()
    await rambler.close()


def test_label_parsing_waits_for_a_whole_label() -> None:
    assert label_of("sa", LABELS) is None
    assert label_of("goodbye:", LABELS) == (LabelScores.of({"goodbye": 1.0}), "")
    parsed = label_of("transfer: 9999", LABELS)
    assert parsed is not None and parsed[0].best == "answer" and parsed[0].off_list == "transfer"


async def test_an_unreachable_server_is_an_error_not_a_hang() -> None:
    model = OpenAiCompatibleModel("http://127.0.0.1:9/v1", "x", timeout_seconds=2)
    with pytest.raises(OpenAiCompatibleError, match=r"127\.0\.0\.1:9"):
        await reply(model, "hi")
    await model.close()
