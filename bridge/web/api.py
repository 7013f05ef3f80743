"""The bridge's HTTP API: place outbound calls, see their results, check health.

Bound to loopback by default. When a token is set (environment variable named by
api.token_env) every request must carry it as `Authorization: Bearer <token>`; binding to any
other address without a token is refused at start-up, so the API is never open by accident.
Requests a browser was tricked into sending (DNS rebinding, cross-site posts) are refused first
(request_guard).
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol

import structlog
from aiohttp import web

from bridge.config import ConfigError
from bridge.config.ops import ApiConfig
from bridge.telephony.outbound import BadNumber, OutboundCall
from bridge.web.dashboard import Dashboard
from bridge.web.request_guard import request_guard
from bridge.web.webphone import PHONE_PATH

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Probes and scrapers carry no token: they reveal counts, never calls or transcripts.
OPEN_PATHS = ("/health", "/metrics")
# The dashboard signs people in with a password and a session cookie instead of the bearer token;
# the web phone's callers prove themselves to Asterisk with their SIP password.
COOKIE_PATHS = ("/dashboard", "/login", "/logout")
OWN_LOGIN_PATHS = (*COOKIE_PATHS, PHONE_PATH)


class Dialer(Protocol):
    """What the API asks of the outbound dialer: place a call, list calls and their results."""

    @property
    def app_personas(self) -> Collection[str]: ...

    @property
    def calls(self) -> Mapping[str, OutboundCall]: ...

    def submit(self, number: str, persona: str | None = None, dtmf: str = "") -> OutboundCall:
        """Queue a call; raises BadNumber at once for a number that cannot be dialled."""
        ...


def build_api(
    config: ApiConfig,
    dialer: Dialer,
    health: Callable[[], dict[str, Any]],
    metrics: Callable[[], bytes] = bytes,
    dashboard: Dashboard | None = None,
    phone: Callable[[web.Application], None] | None = None,
) -> web.Application:
    token = config.token()
    if token is None and config.bind not in LOOPBACK:
        raise ConfigError(
            f"api.bind = {config.bind!r} exposes the API beyond this machine: set a token in "
            f"the environment variable {config.token_env}, or bind to 127.0.0.1"
        )

    @web.middleware
    async def authorise(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path not in OPEN_PATHS and not request.path.startswith(OWN_LOGIN_PATHS):
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    async def place_call(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": 'body must be JSON: {"number": "..."}'}, status=400)
        number = str(body.get("number", "")) if isinstance(body, dict) else ""
        persona = body.get("persona") if isinstance(body, dict) else None
        if persona is not None and persona not in dialer.app_personas:
            return web.json_response({"error": f"unknown persona {persona!r}"}, status=400)
        dtmf = str(body.get("dtmf", "")) if isinstance(body, dict) else ""
        try:
            call = dialer.submit(number, persona, dtmf)
        except BadNumber as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(call.as_dict(), status=202)

    async def get_call(request: web.Request) -> web.Response:
        call = dialer.calls.get(request.match_info["call_id"])
        if call is None:
            return web.json_response({"error": "no such call"}, status=404)
        return web.json_response(call.as_dict())

    async def list_calls(_: web.Request) -> web.Response:
        return web.json_response([call.as_dict() for call in dialer.calls.values()])

    async def get_health(_: web.Request) -> web.Response:
        state = health()
        # 503 while draining or with a stuck model too: a load balancer sends new calls elsewhere.
        ready = state.get("ari") and state.get("accepting", True) and state.get("models_ok", True)
        return web.json_response(state, status=200 if ready else 503)

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics(), content_type="text/plain", charset="utf-8")

    app = web.Application(middlewares=[request_guard(config.bind, config.allowed_hosts), authorise])
    app.router.add_post("/api/calls", place_call)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", get_call)
    app.router.add_get("/api/health", get_health)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    if dashboard is not None:
        dashboard.add_routes(app)
    if phone is not None:
        phone(app)
    return app


async def start_api(app: web.Application, config: ApiConfig) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = None
    if config.tls_cert_file is not None and config.tls_key_file is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    site = web.TCPSite(runner, config.bind, config.port, ssl_context=tls)
    await site.start()
    log.info("api.listening", bind=config.bind, port=config.port, https=tls is not None)
    return runner
