"""The operator's dashboard on the API server: live calls, the call history in words with filters,
charts and CSV, and each call's conversation, latency waterfall and recordings.

Login is always required: a password from the environment (api.dashboard_password_env) gives a
signed, HttpOnly, SameSite=Strict session cookie for 12 hours. Without a password set the
dashboard stays shut. Recordings are fetched from Asterisk through ARI and messages from the
message folder only for a signed-in operator; the browser never talks to Asterisk.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from aiohttp import web

from bridge.ari.client import AriError
from bridge.records import CallRecord, ConversationReport, JsonObject
from bridge.routing.messages import message_audio
from bridge.storage.calls import CallStore
from bridge.web import dashboard_pages as pages
from bridge.web.history import HistoryFilter, history, hourly, to_csv

COOKIE = "bridge_session"
SESSION_SECONDS = 12 * 3600
DISABLED = "Dashboard disabled: put a password in the variable named by api.dashboard_password_env."
WEB_ROOT = Path(__file__).resolve().parent

Recordings = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A call in progress as the dashboard shows it: who, which persona, the conversation so far."""

    id: str
    caller: str
    persona: str
    direction: str
    seconds: float
    conversation: ConversationReport | None

    def as_dict(self) -> JsonObject:
        return {
            "id": self.id,
            "caller": self.caller,
            "persona": self.persona,
            "direction": self.direction,
            "seconds": self.seconds,
            "conversation": self.conversation.as_dict() if self.conversation is not None else {},
        }


class Dashboard:
    def __init__(
        self,
        password: str | None,
        live: Callable[[], list[LiveCall]],
        store: CallStore,
        recordings: Recordings | None = None,
        messages_dir: Path | None = None,
    ) -> None:
        self.password = password
        self.live = live
        self.store = store
        self.recordings = recordings
        self.messages_dir = messages_dir
        self._secret = secrets.token_bytes(32)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/dashboard", self.home)
        app.router.add_get("/dashboard/calls.csv", self.csv_export)
        app.router.add_get("/dashboard/calls/{call_id}", self.call_page)
        app.router.add_get("/dashboard/calls/{call_id}/recording", self.recording)
        app.router.add_get("/dashboard/calls/{call_id}/message", self.message_audio)
        app.router.add_get("/dashboard/api/live", self.live_json)
        app.router.add_get("/dashboard/api/stats", self.stats_json)
        # Public libraries and the page's own script/style: nothing about calls.
        app.router.add_static(pages.STATIC, WEB_ROOT / "static", append_version=False)

    # -- sessions ------------------------------------------------------------------------------

    def _sign(self, expires: int) -> str:
        return hmac.new(self._secret, str(expires).encode(), sha256).hexdigest()

    def signed_in(self, request: web.Request) -> bool:
        expires, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, self._sign(int(expires)))

    def _require(self, request: web.Request) -> None:
        if self.password is None:
            raise web.HTTPForbidden(text=DISABLED)
        if not self.signed_in(request):
            raise web.HTTPSeeOther("/login")

    async def login_page(self, _: web.Request) -> web.Response:
        return _html(pages.page("Sign in", pages.LOGIN_FORM, signed_in=False))

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = str(form.get("password", ""))
        if self.password is None or not hmac.compare_digest(given.encode(), self.password.encode()):
            body = "<p class=error>Wrong password.</p>" + pages.LOGIN_FORM
            return _html(pages.page("Sign in", body, signed_in=False), status=401)
        expires = int(time.time()) + SESSION_SECONDS
        response = web.HTTPSeeOther("/dashboard")
        response.set_cookie(
            COOKIE, f"{expires}.{self._sign(expires)}", max_age=SESSION_SECONDS, httponly=True, samesite="Strict"
        )
        raise response

    async def logout(self, _: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE)
        raise response

    # -- pages ---------------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        self._require(request)
        chosen = HistoryFilter.from_query(request.query)
        rows = await history(self.store, chosen)
        targets = await self.store.distinct("transfer_target")
        personas = await self.store.distinct("persona")
        nodes = await self.store.distinct("node")
        body = pages.home(rows, chosen, targets, personas, nodes)
        return _html(pages.page("Calls", body, scripts=("vendor/uplot.min.js", "dashboard.js")))

    async def csv_export(self, request: web.Request) -> web.Response:
        self._require(request)
        rows = await history(self.store, HistoryFilter.from_query(request.query))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return web.Response(
            text=to_csv(rows),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
        )

    async def stats_json(self, request: web.Request) -> web.Response:
        self._require(request)
        rows = await history(self.store, HistoryFilter.from_query(request.query))
        return web.json_response(hourly(rows))

    async def call_page(self, request: web.Request) -> web.Response:
        self._require(request)
        call_id = request.match_info["call_id"]
        record = await self._record(call_id)
        base = f"/dashboard/calls/{call_id}"
        recording = f"{base}/recording" if record.recording and self.recordings else ""
        message = f"{base}/message" if await self._message_wav(record) is not None else ""
        return _html(pages.page(f"Call {call_id}", pages.call_page(call_id, record, recording, message)))

    async def recording(self, request: web.Request) -> web.StreamResponse:
        self._require(request)
        record = await self._record(request.match_info["call_id"])
        name = record.recording
        if not name or self.recordings is None:
            raise web.HTTPNotFound(text="this call has no recording")
        try:
            audio = await self.recordings(name.removesuffix(".wav"))
        except AriError as error:
            raise web.HTTPNotFound(text=f"Asterisk has no recording {name}: {error.message}") from None
        return web.Response(body=audio, content_type="audio/wav", headers={"Cache-Control": "private, no-store"})

    async def message_audio(self, request: web.Request) -> web.StreamResponse:
        self._require(request)
        wav = await self._message_wav(await self._record(request.match_info["call_id"]))
        if wav is None:
            raise web.HTTPNotFound(text="this call has no message audio")
        return web.FileResponse(wav, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store"})

    async def live_json(self, request: web.Request) -> web.Response:
        self._require(request)
        return web.json_response([call.as_dict() for call in self.live()])

    # -- helpers -------------------------------------------------------------------------------

    async def _record(self, call_id: str) -> CallRecord:
        """The stored call, else a call in progress: so far, only who and what was said."""
        row = await self.store.get(call_id)
        if row is not None:
            return CallRecord.from_dict({"channel_id": call_id, **row["record"]})
        live = next((call for call in self.live() if call.id == call_id), None)
        if live is None:
            raise web.HTTPNotFound(text="no such call")
        return CallRecord(call_id, live.caller, live.persona, conversation=live.conversation)

    async def _message_wav(self, record: CallRecord) -> Path | None:
        """The message's audio (file reads off the event loop)."""
        saved = record.conversation.message if record.conversation is not None else ""
        if self.messages_dir is None or not saved:
            return None
        return await asyncio.to_thread(message_audio, Path(str(saved)), self.messages_dir)


def _html(document: str, status: int = 200) -> web.Response:
    return web.Response(text=document, content_type="text/html", status=status)
