"""The records between rooms: the JSON they give is the shape stored history, the API, the dashboard
and webhooks have always read, and stored JSON (older rows too) reads back into the same record."""

from __future__ import annotations

import json

from bridge.conversation.turns import Turn
from bridge.records import (
    CallRecord,
    ConversationReport,
    MediaSummary,
    RoutingReport,
    TransferSummary,
    TurnRecord,
)
from bridge.web.call_story import duration_seconds

TURN_JSON = {
    "index": 0,
    "caller": "sales please",
    "agent": "Putting you through.",
    "interrupted": False,
    "outcome": "routing:transfer",
    "decided": {"by": "model", "labels": [["sales", 0.9]]},
    "end_of_turn": [0.2, 0.93],
    "utterance_ms": 900,
    "voiced_ms": 640,
    "latency_ms": {"endpoint": 410, "first_frame_out": 620},
    "at_s": 3.2,
}
CONVERSATION_JSON = {
    "persona": "receptionist",
    "end_reason": "transferred:sales",
    "barge_ins": 1,
    "message": "/var/lib/bridge/messages/1.json",
    "errors": ["LlmError: gone"],
    "turns": [TURN_JSON],
    "routing": {
        "intent": "sales",
        "summary": "sales please",
        "caller_name": "Jane",
        "refused": ["book me a flight"],
        "queue_stats": {"queue": "sales", "callers": 1, "members": 2},
        "pending": "sales",
    },
    "greeting": "Hello, Sam here.",
    "speaking": "",
}
RECORD_JSON = {
    "channel_id": "1.1",
    "caller": "15550001111",
    "persona": "receptionist",
    "called": "18005550100",
    "direction": "inbound",
    "started_at": 1000.5,
    "answered": True,
    "media_connected": True,
    "ended_at": 1042.0,
    "end_reason": "handed_back_to_dialplan:queue",
    "error": "",
    "media": {
        "packets_in": 500,
        "packets_out": 510,
        "audio_frames_out": 480,
        "lost": 2,
        "late": 1,
        "malformed": 0,
        "foreign": 0,
        "wrong_payload_type": 0,
        "wrong_size": 0,
        "send_interval_error_p99_ms": 0.412,
    },
    "conversation": CONVERSATION_JSON,
    "transfer": {"target": "sales", "kind": "queue", "destination": "sales", "by": "model", "outcome": "handed_over"},
    "recording": "ai-bridge-1.1.wav",
    "handover_events": [{"Event": "AgentConnect", "MemberName": "agent 201"}],
    "caller_codec": "opus",
    "media_format": "g722",
    "client_session": "",
    "node": "pbx-a",
}


def test_a_whole_record_reads_back_from_its_stored_json_unchanged() -> None:
    record = CallRecord.from_dict(json.loads(json.dumps(RECORD_JSON)))
    assert isinstance(record.conversation, ConversationReport) and isinstance(record.media, MediaSummary)
    assert record.conversation.routing == RoutingReport(
        "sales", "sales please", "Jane", ["book me a flight"], {"queue": "sales", "callers": 1, "members": 2}, "sales"
    )
    assert record.conversation.turns[0].latency_ms["first_frame_out"] == 620
    assert record.transfer == TransferSummary("sales", "queue", "sales", "model", "handed_over")
    assert record.as_dict() == RECORD_JSON
    assert CallRecord.from_dict(record.as_dict()) == record


def test_what_is_not_there_is_left_out_as_before() -> None:
    """Keys that were only written when they had a value are still only written then."""
    assert TurnRecord(1, "hi", "hello", outcome="answered").as_dict() == {
        "index": 1,
        "caller": "hi",
        "agent": "hello",
        "interrupted": False,
        "outcome": "answered",
        "utterance_ms": 0,
        "voiced_ms": 0,
        "latency_ms": {},
    }
    assert "message" not in ConversationReport().as_dict() and "routing" not in ConversationReport().as_dict()
    assert "pending" not in RoutingReport().as_dict()
    assert RoutingReport().as_dict()["queue_stats"] is None
    assert TransferSummary("sales", "queue", "sales", "phrase:sales").as_dict() == {
        "target": "sales",
        "kind": "queue",
        "destination": "sales",
        "by": "phrase:sales",
    }


def test_a_call_without_media_conversation_or_transfer_stores_empty_objects() -> None:
    """The echo pipeline keeps no conversation; a declined call never had media: both were {}."""
    record = CallRecord("2.1", "100", "receptionist", started_at=5.0)
    stored = record.as_dict()
    assert (stored["media"], stored["conversation"], stored["transfer"]) == ({}, {}, {})
    again = CallRecord.from_dict(stored)
    assert (again.media, again.conversation, again.transfer) == (None, None, None)
    assert again == record


def test_an_older_row_with_few_keys_reads_with_defaults() -> None:
    old = {
        "channel_id": "3.1",
        "started_at": 7.0,
        "conversation": {"turns": [{"caller": "hello", "latency_ms": {}}, "not a turn"], "routing": {}},
        "transfer": {"target": "sales"},
        "media": {"packets_in": 12},
    }
    record = CallRecord.from_dict(old)
    assert (record.caller, record.direction, record.node, record.ended_at) == ("", "inbound", "", None)
    assert record.conversation is not None
    (turn,) = record.conversation.turns
    assert (turn.caller, turn.agent, turn.outcome, turn.at_s, turn.decided) == ("hello", "", "", None, {})
    assert record.conversation.routing == RoutingReport()
    assert record.conversation.barge_ins == 0 and record.conversation.errors == []
    assert record.transfer == TransferSummary(target="sales")
    assert record.media == MediaSummary(packets_in=12)


def test_an_older_row_without_its_start_has_no_duration_rather_than_a_negative_one() -> None:
    record = CallRecord.from_dict({"channel_id": "4.1", "ended_at": 1000.0})
    assert (record.started_at, record.ended_at, duration_seconds(record)) == (1000.0, None, None)
    timed = CallRecord("4.2", "100", "receptionist", started_at=990.0, ended_at=1000.0)
    assert CallRecord.from_dict(timed.as_dict()) == timed
    assert (timed.as_dict()["started_at"], timed.as_dict()["ended_at"], duration_seconds(timed)) == (
        990.0,
        1000.0,
        10.0,
    )


def test_a_live_turn_becomes_the_record_the_report_keeps() -> None:
    turn = Turn(2, speech_start=10.0, speech_end=11.25, voiced_ms=900, caller_text="hi", agent_text="hello")
    turn.outcome = "answered"
    turn.marks["first_frame_out"] = 11.85
    kept = turn.record(at_s=4.0)
    assert kept == TurnRecord(2, "hi", "hello", False, "answered", 1250, 900, {"first_frame_out": 600}, at_s=4.0)
    assert turn.as_dict() == {key: value for key, value in kept.as_dict().items() if key != "at_s"}
