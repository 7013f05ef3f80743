"""The events websocket against nothing, a rejecting server and a server that drops us."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from bridge.ari.events import AriEventStream
from tests.support.servers import free_tcp_port


async def run_until(stream: AriEventStream, handler: Any, condition: Any, timeout: float = 10) -> None:
    task = asyncio.create_task(stream.run(handler))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "condition not reached"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ignore(event: dict[str, Any]) -> None:
    pass


async def test_asterisk_down_is_reported_and_retried() -> None:
    stream = AriEventStream(f"http://127.0.0.1:{free_tcp_port()}", "u", "p", "app")
    with capture_logs() as logs:
        await run_until(stream, ignore, lambda: sum(e["event"] == "ari.unreachable" for e in logs) >= 2)
    failure = next(e for e in logs if e["event"] == "ari.unreachable")
    assert "is Asterisk running" in failure["hint"]
    assert any(e["event"] == "ari.retrying" for e in logs)


async def test_events_are_delivered_and_the_stream_reconnects() -> None:
    connections = 0

    async def events(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        assert request.query["app"] == "app"
        assert request.headers["Authorization"].startswith("Basic ")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(f'{{"type": "StasisStart", "n": {connections}}}')
        await ws.send_str("not json")
        await ws.close()  # Asterisk restarting
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    received: list[dict[str, Any]] = []

    async def collect(event: dict[str, Any]) -> None:
        received.append(event)

    stream = AriEventStream(str(server.make_url("")).rstrip("/"), "u", "p", "app")
    try:
        await run_until(stream, collect, lambda: len(received) >= 2)
    finally:
        await server.close()
    assert [event["n"] for event in received[:2]] == [1, 2]
    assert stream.connections >= 2


async def test_wrong_credentials_get_a_specific_hint() -> None:
    async def events(request: web.Request) -> web.Response:
        return web.Response(status=401)

    app = web.Application()
    app.router.add_get("/ari/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stream = AriEventStream(str(server.make_url("")).rstrip("/"), "bob", "wrong", "app")
    try:
        with capture_logs() as logs:
            await run_until(stream, ignore, lambda: any(e["event"] == "ari.rejected" for e in logs))
    finally:
        await server.close()
    rejected = next(e for e in logs if e["event"] == "ari.rejected")
    assert rejected["status"] == 401 and "'bob'" in rejected["hint"]


async def test_an_event_whose_handler_raises_is_logged_and_the_next_one_still_arrives() -> None:
    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "StasisStart", "n": 1}')
        await ws.send_str('{"type": "StasisStart", "n": 2}')
        await ws.receive()  # stay connected until the client goes
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    received: list[int] = []

    async def fragile(event: dict[str, Any]) -> None:
        if event["n"] == 1:
            raise KeyError("channel")
        received.append(event["n"])

    stream = AriEventStream(str(server.make_url("")).rstrip("/"), "u", "p", "app")
    try:
        with capture_logs() as logs:
            await run_until(stream, fragile, lambda: received == [2])
    finally:
        await server.close()
    assert stream.connections == 1  # the same socket carried on
    failed = next(e for e in logs if e["event"] == "ari.event_handler_failed")
    assert failed["event_type"] == "StasisStart"


assert WSMsgType.TEXT  # aiohttp's message types are what the stream filters on
