"""structlog set-up: JSON lines for log shippers, or readable console output for humans.

Also what a URL may show in a log line: logs are copied to places the secrets must not go.
"""

from __future__ import annotations

import logging
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit

import structlog

# Query parameters that carry credentials (libpq's password=, API tokens in webhook URLs).
SECRET_PARAMETERS = frozenset(
    {"password", "pass", "pwd", "secret", "token", "access_token", "key", "api_key", "apikey"}
)


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    """Whatever sys.stderr is now (a redirected or captured stream), not the one at start-up."""
    return structlog.PrintLogger(sys.stderr)


def redacted_url(url: str) -> str:
    """The URL with its password, and any password-like query parameter, shown as ***."""
    parts = urlsplit(url)
    shown = url
    if parts.password is not None:
        user_info, _, host = parts.netloc.rpartition("@")
        user = user_info.split(":", 1)[0]
        shown = shown.replace(parts.netloc, f"{user}:***@{host}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        masked = [(name, "***" if name.lower() in SECRET_PARAMETERS else value) for name, value in pairs]
        if masked != pairs:
            shown = shown.replace(f"?{parts.query}", f"?{urlencode(masked, safe='*')}", 1)
    return shown


def url_host(url: str) -> str:
    """Only where a URL points (host and port): webhook URLs often carry a token in the path."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: show none of it rather than fail a log line
        port = None
    return f"{host}:{port}" if port else host
