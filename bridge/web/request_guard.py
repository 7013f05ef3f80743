"""Refuses requests a browser was tricked into sending: DNS rebinding and cross-site writes.

The API on loopback needs no token, which makes it a target for any web page open on the same
machine: a page can point its own host name at 127.0.0.1 (DNS rebinding; the browser then sends
`Host: evil.example`), or post a form at http://127.0.0.1:8090 (a cross-site write; the browser
sends the page's `Origin`). So the Host must name this server, a write from a browser must come
from this server's own origin, and the JSON API takes only JSON bodies: a plain form cannot send
`application/json` without the browser asking first, and that preflight is never answered.
Clients that are not browsers (curl, `bridge dial`) send no Origin and pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_API_PREFIX = "/api/"


def host_name(authority: str) -> str:
    """The host part of a Host header or URL authority: no port, no IPv6 brackets, lower case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def allowed_host_names(bind: str, extra: list[str]) -> frozenset[str] | None:
    """The names requests may carry in Host; None when any name is fine.

    Bound to all addresses with no list given, the server cannot know the names it is reached
    by; the token (required off loopback) is what protects it then.
    """
    names = {host_name(name) for name in extra}
    if bind in WILDCARD_BINDS and not names:
        return None
    return frozenset(LOOPBACK_NAMES | names | ({host_name(bind)} if bind not in WILDCARD_BINDS else set()))


def request_guard(bind: str, allowed_hosts: list[str]) -> Middleware:
    hosts = allowed_host_names(bind, allowed_hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if hosts is not None and host_name(host) not in hosts:
            return web.json_response(
                {"error": f"Host {host!r} is not this server: add the name to api.allowed_hosts"}, status=421
            )
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("Origin")
            if origin is not None and not _same_origin(origin, host):
                return web.json_response({"error": "cross-site request refused"}, status=403)
            if request.path.startswith(JSON_API_PREFIX) and request.content_type != "application/json":
                return web.json_response({"error": "send the body as Content-Type: application/json"}, status=415)
        return await handler(request)

    return guard


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()
