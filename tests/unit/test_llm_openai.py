"""The OpenAI-compatible backend against a local SSE server (a fake server: this is a unit test)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bridge.speech.llm_openai import OpenAiCompatibleError, OpenAiCompatibleModel


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
        for piece in ["We open", " at nine", "."]:
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


async def test_streams_the_reply_and_sends_the_key(server: tuple[str, list[dict[str, object]]]) -> None:
    url, requests = server
    model = OpenAiCompatibleModel(url, "qwen", api_key="secret", max_tokens=20)
    pieces = [piece async for piece in model.reply([{"role": "user", "content": "hours?"}])]
    await model.close()
    assert "".join(pieces) == "We open at nine."
    body = requests[0]["body"]
    assert isinstance(body, dict) and body["stream"] is True and body["max_tokens"] == 20
    assert requests[0]["auth"] == "Bearer secret"


async def test_an_http_error_is_reported_with_the_server_message(server: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = server
    model = OpenAiCompatibleModel(url, "missing")
    with pytest.raises(OpenAiCompatibleError, match="HTTP 404: model not found"):
        async for _ in model.reply([{"role": "user", "content": "hi"}]):
            pass
    await model.close()


async def test_an_unreachable_server_is_an_error_not_a_hang() -> None:
    model = OpenAiCompatibleModel("http://127.0.0.1:9/v1", "x", timeout_seconds=2)
    with pytest.raises(OpenAiCompatibleError, match=r"127\.0\.0\.1:9"):
        async for _ in model.reply([{"role": "user", "content": "hi"}]):
            pass
    await model.close()
