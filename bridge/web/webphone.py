"""The browser phone on the API server: a page that calls the agent through Asterisk's WebRTC.

The page is static (HTML, one script, JsSIP bundled from npm: no CDN). Media and SIP go from
the browser straight to Asterisk (WSS, DTLS-SRTP); the bridge only serves the page, tells it
where Asterisk is, and answers its polls for the live transcript of its own call. The page
names its call with a random id sent as the SIP header X-Bridge-Session, which the dialplan
hands to the Stasis app; that id is the only key to the transcript, so it is unguessable.
Whoever owns the calls hands in the lookup and what it finds as a `PhoneCall` view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bridge.config.ops import WebphoneConfig
from bridge.records import CallRecord, ConversationReport, JsonObject
from bridge.telephony.record import CLIENT_SESSION

WEB_ROOT = Path(__file__).resolve().parent
# Served without the API token: the page is public, the SIP password is what lets a caller in.
PHONE_PATH = "/phone"


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """The web phone's own call as the page may see it: in progress (`live`) or finished."""

    record: CallRecord
    # The conversation so far (a live call's pipeline report) or as it was kept at the end.
    report: ConversationReport | None
    live: bool


CallLookup = Callable[[str], PhoneCall | None]


def add_phone_routes(app: web.Application, config: WebphoneConfig, find_call: CallLookup) -> None:
    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_ROOT / "phone.html", headers=_NO_CACHE)

    async def settings(_: web.Request) -> web.Response:
        return web.json_response(config.browser_settings(), headers=_NO_CACHE)

    async def call_state(request: web.Request) -> web.Response:
        session = request.match_info["session"]
        if not CLIENT_SESSION.fullmatch(session):
            return web.json_response({"error": "malformed session id"}, status=400)
        call = find_call(session)
        if call is not None and call.live:
            return web.json_response(_live(call), headers=_NO_CACHE)
        if call is not None:
            return web.json_response(_finished(call.record), headers=_NO_CACHE)
        return web.json_response({"state": "unknown"}, status=404, headers=_NO_CACHE)

    app.router.add_get(PHONE_PATH, page)
    app.router.add_get(f"{PHONE_PATH}/settings.json", settings)
    app.router.add_get(f"{PHONE_PATH}/calls/{{session}}", call_state)
    app.router.add_static(f"{PHONE_PATH}/static", WEB_ROOT / "static", append_version=False)


_NO_CACHE = {"Cache-Control": "no-store"}


def _live(call: PhoneCall) -> JsonObject:
    return {
        "state": "connected" if call.record.media_connected else "connecting",
        **_conversation(call.record, call.report),
    }


def _finished(record: CallRecord) -> JsonObject:
    return {"state": "ended", "end_reason": record.end_reason, **_conversation(record, record.conversation)}


def _conversation(record: CallRecord, report: ConversationReport | None) -> JsonObject:
    """Only what the caller heard and said, with latencies: no routing internals, no errors."""
    return {
        "call_id": record.channel_id,
        "persona": record.persona,
        "caller_codec": record.caller_codec,
        "greeting": report.greeting if report is not None else "",
        "speaking": report.speaking if report is not None else "",
        "turns": [turn.as_dict() for turn in report.turns] if report is not None else [],
    }
