"""Asterisk REST Interface (ARI) client on aiohttp: the REST calls the bridge makes.

Only the calls we use are wrapped, each named after the ARI resource it touches. Errors from
Asterisk become `AriError` with the HTTP status and Asterisk's own message, so a failed call can be
logged precisely and ended on its own without touching other calls.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import quote

import aiohttp

Json = dict[str, Any]


class AriError(Exception):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


class AriNotFound(AriError):
    """The channel or bridge no longer exists (usually: the caller already hung up)."""


class AriUnreachable(AriError):
    """Asterisk did not answer at all (not running, wrong URL, http.conf disabled)."""


class AriClient:
    def __init__(self, base_url: str, username: str, password: str, app: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self.username = username
        self._headers = {"Authorization": aiohttp.encode_basic_auth(username, password)}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Many calls set up at once: queueing for a pooled connection is not a connect failure,
            # so only the socket connect is bounded tightly; the pool is sized for call bursts.
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=15, sock_connect=3),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, **params: str | int) -> Any:
        url = f"{self.base_url}/ari{path}"
        query = {key: str(value) for key, value in params.items()}
        try:
            async with self.session.request(method, url, params=query) as response:
                body = await response.text()
                if response.status >= 400:
                    raise _error_for(method, path, response.status, body)
                if not body:
                    return None
                return await response.json(content_type=None)
        except aiohttp.ClientConnectionError as error:
            raise AriUnreachable(method, path, 0, f"cannot reach Asterisk at {self.base_url}: {error}") from error
        except TimeoutError as error:
            raise AriUnreachable(method, path, 0, f"Asterisk at {self.base_url} did not answer in time") from error

    # asterisk -------------------------------------------------------------------------------
    async def asterisk_info(self) -> Json:
        result: Json = await self.request("GET", "/asterisk/info")
        return result

    # channels -------------------------------------------------------------------------------
    async def user_event(self, name: str) -> None:
        """An event that comes back to us on the events socket, after everything sent before it."""
        await self.request("POST", f"/events/user/{name}", application=self.app)

    async def application_channels(self) -> list[str]:
        """Channels currently in our Stasis application (by id)."""
        result: Json = await self.request("GET", f"/applications/{self.app}")
        return [str(channel_id) for channel_id in result.get("channel_ids", [])]

    async def list_channels(self) -> list[Json]:
        result: list[Json] = await self.request("GET", "/channels")
        return result

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", reason=reason)

    async def get_variable(self, channel_id: str, variable: str) -> str:
        result: Json = await self.request("GET", f"/channels/{channel_id}/variable", variable=variable)
        return str(result.get("value", ""))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", variable=variable, value=value)

    async def continue_in_dialplan(self, channel_id: str) -> None:
        """Hand the channel back to the dialplan right after its Stasis() application."""
        await self.request("POST", f"/channels/{channel_id}/continue")

    async def send_dtmf(self, channel_id: str, digits: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/dtmf", dtmf=digits, between=120, duration=100)

    async def originate(
        self, channel_id: str, endpoint: str, app_args: str, ring_seconds: int, caller_id: str = ""
    ) -> Json:
        """Dial `endpoint`; when it answers, the new channel enters our Stasis app with `app_args`."""
        params: dict[str, str | int] = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args,
            "channelId": channel_id,
            "timeout": ring_seconds,
        }
        if caller_id:
            params["callerId"] = caller_id
        result: Json = await self.request("POST", "/channels", **params)
        return result

    async def endpoint_exists(self, technology: str, resource: str) -> bool:
        try:
            await self.request("GET", f"/endpoints/{technology}/{resource}")
        except AriNotFound:
            return False
        return True

    async def endpoint_known(self, technology: str, resource: str) -> bool | None:
        """endpoint_exists, or None when Asterisk could not be asked (routing.validation's question)."""
        try:
            return await self.endpoint_exists(technology, resource)
        except AriError:
            return None

    async def global_variable(self, variable: str) -> str:
        result: Json = await self.request("GET", "/asterisk/variable", variable=variable)
        return str(result.get("value", ""))

    async def external_media(self, channel_id: str, external_host: str, audio_format: str) -> Json:
        """Create the externalMedia channel that streams the call's audio to us over RTP/UDP."""
        result: Json = await self.request(
            "POST",
            "/channels/externalMedia",
            app=self.app,
            channelId=channel_id,
            external_host=external_host,
            format=audio_format,
            encapsulation="rtp",
            transport="udp",
            connection_type="client",
            direction="both",
        )
        return result

    # bridges --------------------------------------------------------------------------------
    async def list_bridges(self) -> list[Json]:
        result: list[Json] = await self.request("GET", "/bridges")
        return result

    async def create_bridge(self, bridge_id: str, name: str = "") -> Json:
        result: Json = await self.request("POST", "/bridges", type="mixing", bridgeId=bridge_id, name=name)
        return result

    async def add_to_bridge(self, bridge_id: str, *channel_ids: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", channel=",".join(channel_ids))

    async def record_bridge(self, bridge_id: str, name: str) -> None:
        """Record the bridge's mix (both sides) to Asterisk's recording spool as NAME.wav."""
        await self.request(
            "POST", f"/bridges/{bridge_id}/record", name=name, format="wav", ifExists="overwrite", terminateOn="none"
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    # recordings -----------------------------------------------------------------------------
    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{quote(name, safe='')}")

    async def stored_recording(self, name: str) -> bytes:
        """A finished recording's audio (NAME without .wav), from Asterisk's recording spool."""
        path = f"/recordings/stored/{quote(name, safe='')}/file"
        try:
            async with self.session.get(f"{self.base_url}/ari{path}") as response:
                if response.status >= 400:
                    raise _error_for("GET", path, response.status, await response.text())
                return await response.read()
        except aiohttp.ClientConnectionError as error:
            raise AriUnreachable("GET", path, 0, f"cannot reach Asterisk at {self.base_url}: {error}") from error


def _error_for(method: str, path: str, status: int, body: str) -> AriError:
    message = body.strip()
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(body).get("message", message))
    cls = AriNotFound if status == 404 else AriError
    return cls(method, path, status, message or "no message")
