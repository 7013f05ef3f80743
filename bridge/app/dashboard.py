"""The operator's dashboard on the API server: live calls, call history with search, and each call's
transcript with a latency waterfall per turn.

Login is always required: a password from the environment (api.dashboard_password_env) gives a
signed, HttpOnly, SameSite=Strict session cookie for 12 hours. Without a password set the
dashboard stays shut. Pages are rendered on the server; the live table refreshes itself from
a JSON endpoint with a few lines of plain JavaScript (no CDN, nothing to build).
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from collections.abc import Callable
from hashlib import sha256
from typing import Any

from aiohttp import web

from bridge.conversation.turns import STAGES
from bridge.storage.calls import CallStore

COOKIE = "bridge_session"
SESSION_SECONDS = 12 * 3600
WATERFALL_MS_PER_PX = 4
DISABLED = "Dashboard disabled: put a password in the variable named by api.dashboard_password_env."


class Dashboard:
    def __init__(self, password: str | None, live: Callable[[], list[dict[str, Any]]], store: CallStore) -> None:
        self.password = password
        self.live = live
        self.store = store
        self._secret = secrets.token_bytes(32)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/dashboard", self.home)
        app.router.add_get("/dashboard/calls/{call_id}", self.call_page)
        app.router.add_get("/dashboard/api/live", self.live_json)

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
        return _page("Sign in", _LOGIN_FORM)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = str(form.get("password", ""))
        if self.password is None or not hmac.compare_digest(given.encode(), self.password.encode()):
            return _page("Sign in", "<p class=error>Wrong password.</p>" + _LOGIN_FORM, status=401)
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
        query = request.query.get("q", "").strip()
        rows = await self.store.search(query, limit=100)
        history = "".join(
            "<tr>"
            f"<td><a href='/dashboard/calls/{_e(row['id'])}'>{_e(_when(row['started_at']))}</a></td>"
            f"<td>{_e(row['direction'])}</td><td>{_e(row['caller'])}</td><td>{_e(row['caller_name'] or '')}</td>"
            f"<td>{_e(row['persona'])}</td><td>{row['turns']}</td><td>{_e(row['outcome'] or row['end_reason'])}</td>"
            f"<td>{_e(row['transfer_target'] or '')}</td><td>{_e(row['summary'] or '')}</td>"
            "</tr>"
            for row in rows
        )
        body = (
            "<h2>Live calls</h2>"
            "<table id=live><thead><tr><th>call</th><th>caller</th><th>persona</th><th>seconds</th><th>turns</th>"
            "<th>last said</th></tr></thead><tbody></tbody></table>"
            "<h2>History</h2>"
            f"<form method=get action=/dashboard><input name=q value='{_e(query)}' "
            "placeholder='words, number or name'> <button>Search</button></form>"
            "<table><thead><tr><th>started</th><th>dir</th><th>caller</th><th>name</th><th>persona</th><th>turns</th>"
            f"<th>outcome</th><th>transfer</th><th>summary</th></tr></thead><tbody>{history}</tbody></table>"
            f"<script>{_LIVE_SCRIPT}</script>"
        )
        return _page("Calls", body)

    async def call_page(self, request: web.Request) -> web.Response:
        self._require(request)
        call_id = request.match_info["call_id"]
        row = await self.store.get(call_id)
        if row is None:
            live = next((call for call in self.live() if call["id"] == call_id), None)
            if live is None:
                raise web.HTTPNotFound(text="no such call")
            record = {"conversation": live["conversation"], "caller": live["caller"], "persona": live["persona"]}
        else:
            record = row["record"]
        conversation = record.get("conversation") or {}
        turns = "".join(_turn_html(turn) for turn in conversation.get("turns", []))
        facts = {
            "caller": record.get("caller", ""),
            "called": record.get("called", ""),
            "caller codec": record.get("caller_codec", ""),
            "persona": record.get("persona", ""),
            "ended": record.get("end_reason", "in progress"),
            "outcome": conversation.get("end_reason", ""),
            "transfer": (record.get("transfer") or {}).get("target", ""),
            "barge-ins": conversation.get("barge_ins", 0),
        }
        summary = "".join(f"<dt>{_e(k)}</dt><dd>{_e(str(v))}</dd>" for k, v in facts.items())
        legend = "".join(f"<span class='mark s{i}'></span>{stage} " for i, stage in enumerate(STAGES))
        body = (
            f"<p><a href=/dashboard>all calls</a></p><h2>Call {_e(call_id)}</h2><dl>{summary}</dl>"
            f"<p class=legend>{legend} (ms after the caller's last voiced frame)</p>{turns}"
        )
        return _page(f"Call {call_id}", body)

    async def live_json(self, request: web.Request) -> web.Response:
        self._require(request)
        return web.json_response(self.live())


def _turn_html(turn: dict[str, Any]) -> str:
    latency = turn.get("latency_ms") or {}
    marks = "".join(
        f"<span class='mark s{i}' style='left:{max(0, latency[stage]) // WATERFALL_MS_PER_PX}px' "
        f"title='{stage} {latency[stage]} ms'></span>"
        for i, stage in enumerate(STAGES)
        if stage in latency
    )
    end = max([0, *latency.values()])
    numbers = ", ".join(f"{stage} {value}" for stage, value in latency.items())
    return (
        "<div class=turn>"
        f"<p><b>caller</b> {_e(turn.get('caller', ''))}</p><p><b>agent</b> {_e(turn.get('agent', ''))}</p>"
        f"<p class=meta>{_e(turn.get('outcome', ''))}{' (interrupted)' if turn.get('interrupted') else ''}</p>"
        f"<div class=waterfall style='width:{end // WATERFALL_MS_PER_PX + 12}px'>{marks}</div>"
        f"<p class=meta>{_e(numbers)}</p></div>"
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _page(title: str, body: str, status: int = 200) -> web.Response:
    document = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)} - AI bridge</title>"
        f"<style>{_STYLE}</style></head><body><header><b>Asterisk AI bridge</b>"
        "<form method=post action=/logout><button>Sign out</button></form></header>"
        f"<main>{body}</main></body></html>"
    )
    return web.Response(text=document, content_type="text/html", status=status)


_LOGIN_FORM = (
    "<form method=post action=/login><label>Password <input type=password name=password autofocus></label> "
    "<button>Sign in</button></form>"
)

_LIVE_SCRIPT = """
async function refresh() {
  const response = await fetch('/dashboard/api/live', {credentials: 'same-origin'});
  if (!response.ok) return;
  const body = document.querySelector('#live tbody');
  body.replaceChildren();
  for (const call of await response.json()) {
    const turns = call.conversation.turns || [];
    const last = turns.length ? turns[turns.length - 1].caller : '';
    const row = body.insertRow();
    const link = document.createElement('a');
    link.href = '/dashboard/calls/' + encodeURIComponent(call.id);
    link.textContent = call.id;
    row.insertCell().append(link);
    for (const value of [call.caller, call.persona, Math.round(call.seconds), turns.length, last]) {
      row.insertCell().textContent = value;
    }
  }
}
refresh();
setInterval(refresh, 2000);
"""

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{display:flex;justify-content:space-between;align-items:center;padding:8px 16px;background:#1d3557;color:#fff}
main{padding:16px}
table{border-collapse:collapse;width:100%;margin-bottom:16px}
td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
.error{color:#b00}
.turn{border-left:3px solid #457b9d;padding:4px 12px;margin:12px 0}
.meta{color:#666;font-size:12px;margin:2px 0}
.waterfall{position:relative;height:14px;background:#eef;margin:4px 0}
.mark{position:absolute;top:0;width:4px;height:14px;display:inline-block}
.legend .mark{position:static;margin:0 4px 0 10px}
.s0{background:#999}.s1{background:#e76f51}.s2{background:#f4a261}.s3{background:#e9c46a}
.s4{background:#2a9d8f}.s5{background:#264653}.s6{background:#6a4c93}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{color:#666}
"""
