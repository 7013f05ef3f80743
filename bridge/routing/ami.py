"""The AMI adapter: panoramisk's Manager as the bridge uses it (queue status, hand-over events,
the test caller's Originate).

Kept apart from the queue logic so that what AMI is (a socket, logins, reconnects) and what we
ask of it (how long is the sales queue) change separately.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from panoramisk import Manager

from bridge.config.routing import AmiConfig

log = structlog.get_logger(__name__)

QUERY_TIMEOUT = 1.0


class AmiManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager, but one that stops reconnecting once we close it."""

    closing = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: Any) -> None:
        if not self.closing:
            super().connection_lost(exc)


class AmiConnection:
    """One AMI login that keeps reconnecting in the background until closed. A question gets the
    answer's messages, or None when AMI cannot answer now (warned about once per outage)."""

    def __init__(self, config: AmiConfig) -> None:
        self.config = config
        self._manager: AmiManager | None = None
        self._warned = False
        self._login = asyncio.Event()

    @property
    def connected(self) -> bool:
        manager = self._manager
        return bool(manager is not None and manager._connected and manager.authenticated)

    async def open(self, events: Mapping[str, Callable[[Any, Any], None]], wait_seconds: float) -> bool:
        """Connect and log in, with `events` (AMI event name -> handler) registered; True if usable now."""
        config = self.config
        password = config.resolved_password()
        if not config.enabled or not password:
            log.warning(
                "ami.disabled",
                hint=f"set ami.password or {config.password_env} for queue wait times and hand-over events",
            )
            return False
        manager = AmiManager(
            loop=asyncio.get_running_loop(),
            host=config.host,
            port=config.port,
            username=config.username,
            secret=password,
            ping_delay=5,
            ping_interval=5,
            reconnect_timeout=2,
            on_login=self._logged_in,
            on_disconnect=lambda _, exc: log.warning("ami.disconnected", error=str(exc)),
        )
        for event, handler in events.items():
            manager.register_event(event, handler)
        self._manager = manager
        self._login = asyncio.Event()
        manager.connect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._login.wait(), wait_seconds)
        if not self.connected:
            log.warning(
                "ami.unavailable",
                host=config.host,
                port=config.port,
                hint="the agent works without queue wait times; check manager.conf and ami.* in the config",
            )
        return self.connected

    def _logged_in(self, _manager: Any) -> None:
        log.info("ami.connected", host=self.config.host, port=self.config.port)
        self._login.set()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.closing = True
            self._manager.close()
            self._manager = None

    async def query(self, action: dict[str, str]) -> list[Any] | None:
        manager = self._manager
        if manager is None or not self.connected:
            self._warn_once("not connected")
            return None
        try:
            result = await asyncio.wait_for(manager.send_action(dict(action)), QUERY_TIMEOUT)
        except (TimeoutError, OSError, AttributeError) as error:
            self._warn_once(str(error) or type(error).__name__)
            return None
        self._warned = False
        return list(result) if isinstance(result, list) else [result]

    def _warn_once(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("ami.query_failed", why=why, hint="carrying on without queue information")
