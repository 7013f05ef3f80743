"""HTTP hooks into the site's own systems: who is calling (before), what happened (after).

pre-call: POST {call_id, caller_number, caller_name, called_number, direction, persona}; the
answer may carry {"caller_name": "...", "notes": "..."}, which the agent uses for the call
(notes go to the LLM as facts about this caller). It has a short deadline: a slow CRM must not
delay the caller, so a late answer is dropped and the call goes on without it.

post-call: POST the call record (transcript, turns and latencies, transfer, outcome) once the
call has ended. Failures are logged and never touch calls; a log names only the hook's host,
since hook URLs often carry a token.
"""

from __future__ import annotations

import aiohttp
import structlog

from bridge.background import BackgroundTasks
from bridge.config.routing import WebhookConfig
from bridge.logs import url_host
from bridge.records import JsonObject

log = structlog.get_logger(__name__)


class Webhooks:
    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._tasks: BackgroundTasks[None] = BackgroundTasks()

    @property
    def enabled(self) -> bool:
        return bool(self.config.pre_call_url or self.config.post_call_url)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds))
        return self._session

    async def pre_call(self, call: dict[str, str]) -> dict[str, str]:
        """What the site knows about this caller ({} when no hook, or it failed or was late)."""
        url = self.config.pre_call_url
        if url is None:
            return {}
        try:
            async with self._client().post(url, json=call) as response:
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
        if self.config.post_call_url is None:
            return
        self._tasks.start(self._post(self.config.post_call_url, record))

    async def _post(self, url: str, record: JsonObject) -> None:
        try:
            async with self._client().post(url, json=record) as response:
                response.raise_for_status()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning(
                "webhook.post_call_failed", host=url_host(url), call=record.get("channel_id"), error=_failure(error)
            )

    async def close(self) -> None:
        await self._tasks.wait()
        if self._session is not None:
            await self._session.close()


def _failure(error: Exception) -> str:
    """What went wrong, without the URL aiohttp writes into some of its messages."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"HTTP {error.status} {error.message}".strip()
    if isinstance(error, aiohttp.InvalidURL):
        return "not a valid URL"
    return str(error) or type(error).__name__
