"""The call history as the dashboard shows it: filters, rows in words, CSV, and hourly series.

Filters come from the page's query string and go back into the CSV link, so the export is
exactly what the filter shows. The per-hour series for the charts are computed from the same
rows (at most HISTORY_LIMIT calls), so the pictures and the table never disagree.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from bridge.records import CallRecord, ConversationReport, JsonObject
from bridge.storage.calls import CallStore
from bridge.web.call_story import OUTCOME_KINDS, Outcome, duration_seconds, median_ms, outcome, voice_to_voice_ms

HISTORY_LIMIT = 2000
DEFAULT_HOURS = 24
_TIME_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type=datetime-local> sends


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    since: float | None = None
    until: float | None = None
    outcome: str = ""
    target: str = ""
    persona: str = ""
    node: str = ""
    text: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> HistoryFilter:
        kind = query.get("outcome", "")
        return cls(
            since=_parse_time(query.get("from", "")),
            until=_parse_time(query.get("to", "")),
            outcome=kind if kind in OUTCOME_KINDS else "",
            target=query.get("target", "").strip(),
            persona=query.get("persona", "").strip(),
            node=query.get("node", "").strip(),
            text=query.get("q", "").strip(),
        )

    def as_query(self) -> str:
        values = {
            "from": _format_time(self.since),
            "to": _format_time(self.until),
            "outcome": self.outcome,
            "target": self.target,
            "persona": self.persona,
            "node": self.node,
            "q": self.text,
        }
        return urlencode({key: value for key, value in values.items() if value})

    def form_value(self, key: str) -> str:
        return {"from": _format_time(self.since), "to": _format_time(self.until)}.get(key, "")


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: str
    started_at: float
    direction: str
    caller: str
    caller_name: str
    persona: str
    node: str
    intent: str
    outcome: Outcome
    target: str
    duration_s: float | None
    turns: int
    voice_to_voice_ms: list[int]
    barge_ins: int
    errors: int
    summary: str

    @property
    def voice_to_voice_p50(self) -> int | None:
        return median_ms(self.voice_to_voice_ms)


async def history(store: CallStore, chosen: HistoryFilter, limit: int = HISTORY_LIMIT) -> list[HistoryRow]:
    found = await store.search(
        chosen.text,
        limit=limit,
        since=chosen.since,
        until=chosen.until,
        persona=chosen.persona,
        target=chosen.target,
        node=chosen.node,
    )
    rows = [_row(found_row) for found_row in found]
    return [row for row in rows if not chosen.outcome or row.outcome.kind == chosen.outcome]


def _row(row: Mapping[str, Any]) -> HistoryRow:
    """A database row (its columns, and the whole record as JSON) as the history shows it."""
    record = CallRecord.from_dict({"channel_id": row["id"], **(row.get("record") or {})})
    conversation = record.conversation or ConversationReport()
    return HistoryRow(
        id=str(row["id"]),
        started_at=float(row["started_at"]),
        direction=str(row.get("direction") or ""),
        caller=str(row.get("caller") or ""),
        caller_name=str(row.get("caller_name") or ""),
        persona=str(row.get("persona") or ""),
        node=str(row.get("node") or ""),
        intent=str(row.get("intent") or ""),
        outcome=outcome(record),
        target=str(row.get("transfer_target") or ""),
        duration_s=duration_seconds(record),
        turns=int(row.get("turns") or 0),
        voice_to_voice_ms=voice_to_voice_ms(record),
        barge_ins=conversation.barge_ins,
        errors=len(conversation.errors) + (1 if record.error else 0),
        summary=str(row.get("summary") or ""),
    )


CSV_COLUMNS = (
    "started", "call_id", "direction", "caller", "caller_name", "persona", "node", "intent", "outcome", "outcome_kind",
    "target", "duration_s", "turns", "voice_to_voice_p50_ms", "barge_ins", "errors", "summary",
)  # fmt: skip


def to_csv(rows: list[HistoryRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.started_at)),
                row.id,
                row.direction,
                _cell(row.caller),
                _cell(row.caller_name),
                row.persona,
                row.node,
                row.intent,
                row.outcome.words,
                row.outcome.kind,
                row.target,
                "" if row.duration_s is None else f"{row.duration_s:.1f}",
                row.turns,
                "" if row.voice_to_voice_p50 is None else row.voice_to_voice_p50,
                row.barge_ins,
                row.errors,
                _cell(row.summary),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """Caller-controlled text never starts a formula when the CSV is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def hourly(rows: list[HistoryRow], now: float | None = None) -> JsonObject:
    """Series per hour for the charts, from the first hour with a call (or DEFAULT_HOURS ago)."""
    now = time.time() if now is None else now
    end = math.floor(now / 3600) * 3600
    first = min((row.started_at for row in rows), default=now - DEFAULT_HOURS * 3600)
    start = min(math.floor(first / 3600) * 3600, end - (DEFAULT_HOURS - 1) * 3600)
    hours = list(range(int(start), int(end) + 1, 3600))
    index = {hour: position for position, hour in enumerate(hours)}
    by_outcome = {kind: [0] * len(hours) for kind in OUTCOME_KINDS}
    latency: list[list[int]] = [[] for _ in hours]
    barge_ins = [0] * len(hours)
    errors = [0] * len(hours)
    for row in rows:
        position = index.get(int(math.floor(row.started_at / 3600) * 3600))
        if position is None:
            continue
        by_outcome[row.outcome.kind][position] += 1
        latency[position] += row.voice_to_voice_ms
        barge_ins[position] += row.barge_ins
        errors[position] += row.errors
    targets = Counter(row.target or "(not sent anywhere)" for row in rows)
    return {
        "hours": hours,
        "by_outcome": {kind: counts for kind, counts in by_outcome.items() if any(counts)},
        "voice_to_voice_p50": [median_ms(values) for values in latency],
        "voice_to_voice_p95": [_p95(values) for values in latency],
        "barge_ins": barge_ins,
        "errors": errors,
        "targets": dict(targets.most_common()),
        "calls": len(rows),
    }


def _p95(values: list[int]) -> int | None:
    if len(values) < 2:
        return values[0] if values else None
    return round(statistics.quantiles(values, n=20, method="inclusive")[18])


def _parse_time(text: str) -> float | None:
    try:
        return datetime.strptime(text.strip(), _TIME_FORMAT).timestamp() if text.strip() else None
    except ValueError:
        return None


def _format_time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime(_TIME_FORMAT) if epoch is not None else ""
