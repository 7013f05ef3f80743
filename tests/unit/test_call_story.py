"""Calls in words: the outcome phrase and kind from a stored record, the history's CSV and hourly series."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.records import CallRecord
from bridge.web.call_story import conversation_lines, outcome
from bridge.web.dashboard_pages import filters_form
from bridge.web.history import HistoryFilter, HistoryRow, _row, hourly, to_csv

HANGUP = "caller:ChannelHangupRequest"
TURN = {"caller": "hello", "agent": "Hi", "outcome": "answered", "at_s": 3.2, "latency_ms": {"first_frame_out": 600}}


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"channel_id": "1.1", "media_connected": True, "conversation": {"turns": [TURN]}}
    return {**base, **fields}


OUTCOMES = [
    (record(end_reason=HANGUP), "answered", "answered, caller hung up"),
    (
        record(end_reason=HANGUP, media_connected=False, conversation={}),
        "abandoned",
        "caller hung up before the agent answered",
    ),
    (
        record(end_reason="declined:at_capacity"),
        "declined",
        "declined, to the next bridge or the fallback queue: the bridge was at capacity",
    ),
    (
        record(
            end_reason="handed_back_to_dialplan:queue",
            transfer={"target": "sales", "kind": "queue", "outcome": "handed_over"},
            handover_events=[{"Event": "QueueCallerJoin"}, {"Event": "AgentConnect", "MemberName": "agent 201"}],
        ),
        "transferred",
        "sent to sales queue - answered by agent 201",
    ),
    (
        record(
            end_reason="handed_back_to_dialplan:queue",
            transfer={"target": "sales", "kind": "queue"},
            handover_events=[{"Event": "QueueCallerAbandon"}],
        ),
        "abandoned",
        "sent to sales queue - caller hung up waiting",
    ),
    (
        record(end_reason=HANGUP, transfer={"target": "frontdesk", "kind": "extension", "outcome": "busy"}),
        "answered",
        "tried frontdesk: busy",
    ),
    (
        record(end_reason="agent:message_taken", conversation={"end_reason": "message_taken", "message": "/m/1.json"}),
        "message",
        "message taken",
    ),
    (
        record(end_reason=HANGUP, conversation={"turns": [TURN], "routing": {"refused": ["the kitchen"]}}),
        "refused",
        "refused: asked for a place not listed",
    ),
    (
        record(end_reason="handed_back_to_dialplan:failed", error="externalMedia refused"),
        "failed",
        "handed to the fallback queue: bridge error",
    ),
    (
        record(end_reason="handed_back_to_dialplan:failed", conversation={"end_reason": "backend_error"}),
        "failed",
        "handed to the fallback queue: a model failed",
    ),
    (
        record(end_reason="agent:caller_goodbye", conversation={"end_reason": "caller_goodbye"}),
        "answered",
        "answered, caller said goodbye",
    ),
]


@pytest.mark.parametrize(("stored", "kind", "words"), OUTCOMES)
def test_outcome_in_words(stored: dict[str, Any], kind: str, words: str) -> None:
    told = outcome(CallRecord.from_dict(stored))  # as the history reads it back
    assert (told.kind, told.words) == (kind, words)


def test_the_conversation_includes_the_greeting_and_agent_phrases() -> None:
    turns = [TURN, {"caller": "", "agent": "Are you still there?", "outcome": "agent:reprompt", "at_s": 12.0}]
    stored = {"channel_id": "1.1", "conversation": {"greeting": "Thanks for calling", "turns": turns}}
    lines = conversation_lines(CallRecord.from_dict(stored))
    assert [(line.at_s, line.speaker, line.text) for line in lines] == [
        (0.0, "agent", "Thanks for calling"),
        (3.2, "caller", "hello"),
        (3.2, "agent", "Hi"),
        (12.0, "agent", "Are you still there?"),
    ]


def test_a_caller_who_went_on_after_a_pause_is_noted_on_their_line() -> None:
    turn = {**TURN, "continued": 1}
    stored = {"channel_id": "1.1", "conversation": {"turns": [turn]}}
    caller, agent = conversation_lines(CallRecord.from_dict(stored))
    assert (caller.speaker, caller.note) == ("caller", "went on after a pause")
    assert agent.note == TURN["outcome"]


def row(started_at: float, stored: dict[str, Any], **columns: Any) -> HistoryRow:
    return _row({"id": stored["channel_id"], "started_at": started_at, "record": stored, **columns})


def test_csv_is_what_the_filter_shows_and_never_starts_a_formula() -> None:
    rows = [
        row(
            1_800_000_000.0,
            record(end_reason=HANGUP, started_at=1_800_000_000.0, ended_at=1_800_000_042.0),
            summary="=HYPERLINK(1)",
        )
    ]
    text = to_csv(rows)
    header, line = text.splitlines()
    assert header.startswith("started,call_id,direction")
    assert "answered, caller hung up" in line and ",42.0," in line and ",600," in line
    assert "'=HYPERLINK(1)" in line


def test_hourly_series_count_each_call_once_in_its_hour() -> None:
    now = 1_800_003_600.0
    rows = [
        row(now - 4000, record(end_reason=HANGUP)),
        row(now - 2900, record(end_reason="declined:at_capacity", conversation={})),
        row(now - 100, record(end_reason=HANGUP), transfer_target="sales"),
    ]
    stats = hourly(rows, now)
    assert len(stats["hours"]) == 24 and stats["calls"] == 3
    assert sum(stats["by_outcome"]["answered"]) == 2 and sum(stats["by_outcome"]["declined"]) == 1
    assert stats["targets"] == {"(not sent anywhere)": 2, "sales": 1}
    assert [value for value in stats["voice_to_voice_p50"] if value is not None] == [600, 600]


def test_the_filter_round_trips_through_the_query_string() -> None:
    chosen = HistoryFilter.from_query(
        {"from": "2026-12-01T08:00", "outcome": "refused", "q": "invoice", "persona": "x", "node": "pbx-b"}
    )
    again = HistoryFilter.from_query(dict(pair.split("=") for pair in chosen.as_query().replace("%3A", ":").split("&")))
    assert again == chosen
    assert HistoryFilter.from_query({"outcome": "<script>"}).outcome == ""


def test_each_row_and_csv_line_names_the_node_that_took_the_call() -> None:
    rows = [row(1_800_000_000.0, record(end_reason=HANGUP), node="pbx-b")]
    assert rows[0].node == "pbx-b"
    header, line = to_csv(rows).splitlines()
    columns = header.split(",")
    assert line.split(",")[columns.index("node")] == "pbx-b"


def test_the_history_filter_offers_each_node_and_keeps_the_chosen_one() -> None:
    form = filters_form(HistoryFilter(node="pbx-b"), [], [], ["pbx-a", "pbx-b"])
    assert "<select name=node>" in form
    assert "<option value='pbx-a'>pbx-a</option>" in form and "<option value='pbx-b' selected>pbx-b</option>" in form
