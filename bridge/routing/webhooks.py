"""HTTP hooks into the site's own systems: who is calling (before), what happened (after).

pre-call: POST {call_id, caller_number, caller_name, called_number, direction, persona}; the
answer may carry {"caller_name": "...", "notes": "..."}, which the agent uses for the call
(notes go to the LLM as facts about this caller). It has a short deadline: a slow CRM must not
delay the caller, so a late answer is dropped and the call goes on without it.

post-call: POST the call record (transcript, turns and latencies, transfer, outcome) once the
call has ended. Failures are logged and never touch calls; a log names only the hook's host,
since hook URLs often carry a token.

The URLs and deadline may change on a config reload: each request reads the settings current
when it is made. A finished call's record goes to the post-call URL configured when it is
sent, not the one it started under: an operator who moves or re-keys the hook wants records
there from now on, and the old address may already refuse them.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import structlog

from bridge.background import BackgroundTasks
from bridge.config.routing import WebhookConfig
from bridge.logs import url_host
from bridge.records import JsonObject

log = structlog.get_logger(__name__)


class Webhooks:
    def __init__(self, config: Callable[[], WebhookConfig]) -> None:
        """`config`: read afresh for each request (the service's reloadable snapshot)."""
        self._config = config
        self._session: aiohttp.ClientSession | None = None
        self._tasks: BackgroundTasks[None] = BackgroundTasks()

    @property
    def config(self) -> WebhookConfig:
        """The hooks as configured now."""
        return self._config()

    @property
    def enabled(self) -> bool:
        config = self.config
        return bool(config.pre_call_url or config.post_call_url)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def pre_call(self, call: dict[str, str]) -> dict[str, str]:
        """What the site knows about this caller ({} when no hook, or it failed or was late)."""
        config = self.config
        url = config.pre_call_url
        if url is None:
            return {}
        try:
            async with self._client().post(url, json=call, timeout=_deadline(config)) as response:
                response.raise_for_status()
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("webhook.pre_call_failed", host=url_host(url), error=_failure(error))
            return {}
        if not isinstance(body, dict):
            log.warning("webhook.pre_call_bad_answer", host=url_host(url), hint="answer with a JSON object")
            return {}
        return {key: str(body[key]) for key in ("caller_name", "notes") if body.get(key)}

    def post_call(self, record: JsonObject) -> None:
        """Send the finished call's record in the background."""
        config = self.config
        if config.post_call_url is None:
            return
        self._tasks.start(self._post(config.post_call_url, _deadline(config), record))

    async def _post(self, url: str, deadline: aiohttp.ClientTimeout, record: JsonObject) -> None:
        try:
            async with self._client().post(url, json=record, timeout=deadline) as response:
                response.raise_for_status()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning(
                "webhook.post_call_failed", host=url_host(url), call=record.get("channel_id"), error=_failure(error)
            )

    async def close(self) -> None:
        await self._tasks.wait()
        if self._session is not None:
            await self._session.close()


def _deadline(config: WebhookConfig) -> aiohttp.ClientTimeout:
    """Per request, so a reloaded webhooks.timeout_seconds applies to the next one."""
    return aiohttp.ClientTimeout(total=config.timeout_seconds)


def _failure(error: Exception) -> str:
    """What went wrong, without the URL aiohttp writes into some of its messages."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status} {error.message}".strip()
    if isinstance(error, aiohttp.InvalidURL):
        return "not a valid URL"
    return str(error) or type(error).__name__
