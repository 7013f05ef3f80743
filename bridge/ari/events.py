"""The ARI events websocket, kept connected for as long as the bridge runs.

Asterisk may be down when we start, may restart, or may drop the socket; in each case we say
what happened in plain words and reconnect with capped exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger(__name__)

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class AriEventStream:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        max_backoff: float = 30.0,
    ) -> None:
        scheme = "wss" if base_url.startswith("https") else "ws"
        host = base_url.split("://", 1)[1].rstrip("/")
        self.url = f"{scheme}://{host}/ari/events"
        self.app = app
        self.username = username
        self._headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.connections = 0

    async def run(self, handler: EventHandler, on_connect: Callable[[], Awaitable[None]] | None = None) -> None:
        """Receive events forever, reconnecting after any failure; cancel to stop."""
        backoff = 0.5
        async with aiohttp.ClientSession(headers=self._headers) as session:
            while True:
                try:
                    async with session.ws_connect(
                        self.url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=20
                    ) as socket:
                        self.connections += 1
                        self.connected.set()
                        backoff = 0.5
                        log.info("ari.connected", url=self.url, app=self.app)
                        if on_connect is not None:
                            await on_connect()
                        await self._pump(socket, handler)
                    log.warning("ari.disconnected", url=self.url, reason="Asterisk closed the events socket")
                except aiohttp.WSServerHandshakeError as error:
                    hint = _handshake_hint(error.status, self)
                    log.error("ari.rejected", url=self.url, status=error.status, hint=hint)
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    log.error(
                        "ari.unreachable",
                        url=self.url,
                        error=str(error) or type(error).__name__,
                        hint="is Asterisk running, with http.conf enabled and res_ari loaded?",
                    )
                self.connected.clear()
                delay = backoff * random.uniform(0.8, 1.2)
                log.info("ari.retrying", in_seconds=round(delay, 2))
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._max_backoff)

    async def _pump(self, socket: aiohttp.ClientWebSocketResponse, handler: EventHandler) -> None:
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                event = json.loads(message.data)
            except ValueError:
                log.warning("ari.bad_event", data=str(message.data)[:200])
                continue
            if isinstance(event, dict):
                try:
                    await handler(event)
                except Exception:  # one bad event (or a bug in its handler) must not end the stream
                    log.exception("ari.event_handler_failed", event_type=str(event.get("type")))


def _handshake_hint(status: int, stream: AriEventStream) -> str:
    if status == 401:
        return f"ARI rejected user {stream.username!r}: check ari.conf and the bridge's ari.username/password"
    if status == 404:
        return "no ARI at this URL: is res_ari loaded and http.conf enabled?"
    return "unexpected answer from Asterisk's HTTP server"
