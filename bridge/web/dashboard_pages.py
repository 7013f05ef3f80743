"""The dashboard's HTML, rendered on the server: every value escaped, no template engine.

Charts and the live table are drawn in the browser by static/dashboard.js (uPlot, bundled like
JsSIP: no CDN) from JSON endpoints; everything else is plain HTML that works without scripts.
"""

from __future__ import annotations

import html
import time

from bridge.conversation.turns import STAGES
from bridge.records import CallRecord, ConversationReport, TurnRecord
from bridge.web.call_story import (
    OUTCOME_KINDS,
    conversation_lines,
    duration_seconds,
    median_ms,
    outcome,
    voice_to_voice_ms,
)
from bridge.web.history import HistoryFilter, HistoryRow

STATIC = "/dashboard/static"
STAGE_NAMES = {
    "endpoint": "end of turn",
    "stt_final": "speech to text",
    "decision": "decision",
    "llm_first_token": "first word",
    "first_clause": "first sentence",
    "tts_first_audio": "first audio",
    "first_frame_out": "first frame out",
}


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}:{rest:02d}"


def page(title: str, body: str, signed_in: bool = True, scripts: tuple[str, ...] = ()) -> str:
    sign_out = "<form method=post action=/logout><button>Sign out</button></form>" if signed_in else ""
    tags = "".join(f"<script src='{STATIC}/{e(name)}'></script>" for name in scripts)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{e(title)} - AI bridge</title>"
        f"<link rel=stylesheet href='{STATIC}/vendor/uplot.min.css'><link rel=stylesheet href='{STATIC}/dashboard.css'>"
        f"</head><body><header><a href=/dashboard><b>Asterisk AI bridge</b></a>{sign_out}</header>"
        f"<main>{body}</main>{tags}</body></html>"
    )


def _select(name: str, label: str, options: list[str], chosen: str) -> str:
    items = "".join(
        f"<option value='{e(value)}'{' selected' if value == chosen else ''}>{e(value or 'any')}</option>"
        for value in ["", *options]
    )
    return f"<label>{e(label)} <select name={name}>{items}</select></label>"


def filters_form(chosen: HistoryFilter, targets: list[str], personas: list[str], nodes: list[str]) -> str:
    return (
        "<form method=get action=/dashboard class=filters>"
        f"<label>from <input type=datetime-local name=from value='{e(chosen.form_value('from'))}'></label>"
        f"<label>to <input type=datetime-local name=to value='{e(chosen.form_value('to'))}'></label>"
        + _select("outcome", "outcome", list(OUTCOME_KINDS), chosen.outcome)
        + _select("target", "sent to", targets, chosen.target)
        + _select("persona", "persona", personas, chosen.persona)
        + _select("node", "node", nodes, chosen.node)
        + f"<label>text <input name=q value='{e(chosen.text)}' placeholder='words, number or name'></label>"
        "<button>Show</button>"
        f"<a class=button href='/dashboard/calls.csv?{e(chosen.as_query())}' download>Export CSV</a>"
        "</form>"
    )


def home(
    rows: list[HistoryRow], chosen: HistoryFilter, targets: list[str], personas: list[str], nodes: list[str]
) -> str:
    table = "".join(_history_row(row) for row in rows[:500])
    shown = f"{len(rows)} calls" + (" (the newest 500 listed; the CSV has all)" if len(rows) > 500 else "")
    charts = "".join(
        f"<figure><figcaption>{e(title)}</figcaption><div class=chart id={name}></div></figure>"
        for name, title in (
            ("chart-outcomes", "Calls per hour, by outcome"),
            ("chart-targets", "Where callers were sent"),
            ("chart-latency", "Voice-to-voice per hour (ms): median and p95"),
            ("chart-events", "Barge-ins and errors per hour"),
        )
    )
    return (
        "<h2>Live calls</h2>"
        "<table id=live><thead><tr><th>call</th><th>caller</th><th>persona</th><th>seconds</th><th>turns</th>"
        "<th>last said</th></tr></thead><tbody></tbody></table>"
        f"<h2>History</h2>{filters_form(chosen, targets, personas, nodes)}"
        f"<section class=charts data-query='{e(chosen.as_query())}'>{charts}</section>"
        f"<p class=meta>{e(shown)}</p>"
        "<table id=history><thead><tr><th>started</th><th>outcome</th><th>wanted</th><th>caller</th><th>name</th>"
        "<th>persona</th><th>node</th><th>duration</th><th>turns</th><th>voice-to-voice p50</th><th>summary</th>"
        "</tr></thead>"
        f"<tbody>{table}</tbody></table>"
    )


def _history_row(row: HistoryRow) -> str:
    p50 = row.voice_to_voice_p50
    return (
        f"<tr class='kind-{e(row.outcome.kind)}'>"
        f"<td><a href='/dashboard/calls/{e(row.id)}'>{e(when(row.started_at))}</a></td>"
        f"<td class=outcome>{e(row.outcome.words)}</td><td>{e(row.intent)}</td><td>{e(row.caller)}</td>"
        f"<td>{e(row.caller_name)}</td><td>{e(row.persona)}</td><td>{e(row.node)}</td>"
        f"<td>{e(seconds(row.duration_s))}</td>"
        f"<td>{row.turns}</td><td>{'' if p50 is None else f'{p50} ms'}</td><td>{e(row.summary)}</td></tr>"
    )


def call_page(call_id: str, record: CallRecord, recording_url: str, message_url: str) -> str:
    conversation = record.conversation or ConversationReport()
    told = outcome(record) if record.end_reason else None
    facts: dict[str, object] = {
        "caller": record.caller,
        "called": record.called,
        "caller codec": record.caller_codec,
        "our leg": record.media_format,
        "persona": record.persona,
        "node": record.node,
        "outcome": told.words if told else "in progress",
        "wanted": conversation.routing.intent if conversation.routing is not None else "",
        "duration": seconds(duration_seconds(record)),
        "voice-to-voice p50": f"{median_ms(voice_to_voice_ms(record)) or '-'} ms",
        "barge-ins": conversation.barge_ins,
        "ended because": record.end_reason,
    }
    summary = "".join(f"<dt>{e(key)}</dt><dd>{e(value)}</dd>" for key, value in facts.items() if value != "")
    audio = "".join(
        f"<figure><figcaption>{e(label)}</figcaption><audio controls preload=none src='{e(url)}'></audio></figure>"
        for label, url in (("Call recording", recording_url), ("Message left", message_url))
        if url
    )
    lines = "".join(
        f"<li class={line.speaker}><span class=at>{e(seconds(line.at_s))}</span><b>{line.speaker}</b> "
        f"{e(line.text)}{f' <span class=meta>{e(line.note)}</span>' if line.note else ''}</li>"
        for line in conversation_lines(record)
    )
    return (
        f"<p><a href=/dashboard>all calls</a></p><h2>Call {e(call_id)}</h2><dl>{summary}</dl>{audio}"
        f"<h3>Conversation</h3><ol class=conversation>{lines}</ol>"
        f"<h3>Where the time went, per turn</h3>{waterfall(conversation.turns)}"
    )


def waterfall(turns: list[TurnRecord]) -> str:
    """One bar per turn, every bar on the same scale (the slowest turn fills the width); each
    segment is one stage, labelled, with its milliseconds on hover."""
    timed = [turn for turn in turns if turn.latency_ms]
    if not timed:
        return "<p class=meta>No timed turns.</p>"
    slowest = max(max(turn.latency_ms.values()) for turn in timed) or 1
    legend = "".join(f"<span><i class='s{i}'></i>{e(STAGE_NAMES[stage])}</span>" for i, stage in enumerate(STAGES))
    bars = []
    for turn in timed:
        latency = turn.latency_ms
        segments, previous = [], 0
        for i, stage in enumerate(STAGES):
            if stage not in latency:
                continue
            value = max(previous, int(latency[stage]))
            width = 100 * (value - previous) / slowest
            label = STAGE_NAMES[stage] if width > 9 else ""
            segments.append(
                f"<span class='seg s{i}' style='width:{width:.2f}%' title='{e(STAGE_NAMES[stage])}: {value} ms "
                f"(+{value - previous} ms)'>{e(label)}</span>"
            )
            previous = value
        said = turn.caller[:60]
        bars.append(
            f"<div class=wf-row><div class=wf-label>{e(said)}<span class=meta> {previous} ms</span></div>"
            f"<div class=wf-bar>{''.join(segments)}</div></div>"
        )
    scale = f"<div class=wf-scale><span>0</span><span>{slowest // 2} ms</span><span>{slowest} ms</span></div>"
    return f"<div class=waterfall><p class=legend>{legend}</p>{''.join(bars)}{scale}</div>"


LOGIN_FORM = (
    "<form method=post action=/login><label>Password <input type=password name=password autofocus></label> "
    "<button>Sign in</button></form>"
)
