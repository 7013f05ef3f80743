"""The records one room hands another: a call, its conversation, its routing, media and transfer.

Telephony, the conversation and the front desk produce them; storage, the web, metrics and
webhooks read them. Each has one `as_dict()`: the JSON the history, the API, the dashboard and
webhooks have always carried, key for key, so stored calls and their readers do not change.
`from_dict()` reads that JSON back; rows written by older versions may lack keys, and a missing
key is the field's default (a call's start excepted: see `CallRecord.from_dict`). This module
imports nothing else of the bridge, so any room may use it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A JSON object at the edge (a stored row, a response body): what as_dict() gives and from_dict() takes.
JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One caller turn as kept: what was said each way and when each stage finished (ms after
    the caller's last voiced frame; stages may finish before it, so negative values are normal)."""

    index: int = 0
    caller: str = ""
    agent: str = ""
    interrupted: bool = False
    outcome: str = ""
    utterance_ms: int = 0
    voiced_ms: int = 0
    latency_ms: dict[str, int] = field(default_factory=dict)
    # The understanding's own account of its decision (conversation.understanding), kept as it gave it.
    decided: JsonObject = field(default_factory=dict)
    # The turn model's "complete" probability at each pause it judged (turn.detector = smart_turn).
    end_of_turn: list[float] = field(default_factory=list)
    # Times the caller went on talking after the end of the turn was called, before the answer was
    # heard (conversation.continue_within_ms): the turn is then one, answered as a whole.
    continued: int = 0
    # When the turn began, seconds into the call (the greeting starts at 0); None for a turn in progress.
    at_s: float | None = None

    def as_dict(self) -> JsonObject:
        return {
            "index": self.index,
            "caller": self.caller,
            "agent": self.agent,
            "interrupted": self.interrupted,
            "outcome": self.outcome,
            **({"decided": dict(self.decided)} if self.decided else {}),
            **({"end_of_turn": list(self.end_of_turn)} if self.end_of_turn else {}),
            **({"continued": self.continued} if self.continued else {}),
            "utterance_ms": self.utterance_ms,
            "voiced_ms": self.voiced_ms,
            "latency_ms": dict(self.latency_ms),
            **({"at_s": self.at_s} if self.at_s is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnRecord:
        at = data.get("at_s")
        return cls(
            index=int(data.get("index") or 0),
            caller=str(data.get("caller") or ""),
            agent=str(data.get("agent") or ""),
            interrupted=bool(data.get("interrupted")),
            outcome=str(data.get("outcome") or ""),
            utterance_ms=int(data.get("utterance_ms") or 0),
            voiced_ms=int(data.get("voiced_ms") or 0),
            latency_ms={str(stage): int(ms) for stage, ms in _object(data, "latency_ms").items()},
            decided=_object(data, "decided"),
            end_of_turn=[float(value) for value in _list(data, "end_of_turn")],
            continued=int(data.get("continued") or 0),
            at_s=float(at) if isinstance(at, int | float) else None,
        )


@dataclass(frozen=True, slots=True)
class RoutingReport:
    """What the front desk learnt on a call: what the caller wanted, who they are, what was refused."""

    intent: str = ""
    summary: str = ""
    caller_name: str | None = None
    refused: list[str] = field(default_factory=list)
    # The last queue asked about (routing.queues.QueueStats.as_dict); None when AMI could not say.
    queue_stats: JsonObject | None = None
    # The target offered and not yet taken or declined ("" when none).
    pending: str = ""

    def as_dict(self) -> JsonObject:
        return {
            "intent": self.intent,
            "summary": self.summary,
            "caller_name": self.caller_name,
            "refused": list(self.refused),
            "queue_stats": dict(self.queue_stats) if self.queue_stats is not None else None,
            **({"pending": self.pending} if self.pending else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingReport:
        name = data.get("caller_name")
        stats = data.get("queue_stats")
        return cls(
            intent=str(data.get("intent") or ""),
            summary=str(data.get("summary") or ""),
            caller_name=str(name) if name is not None else None,
            refused=[str(text) for text in _list(data, "refused")],
            queue_stats=dict(stats) if isinstance(stats, dict) else None,
            pending=str(data.get("pending") or ""),
        )


@dataclass(frozen=True, slots=True)
class ConversationReport:
    """What the agent pipeline keeps of a call: its turns, how it ended, what went wrong.

    A live call's report is the conversation so far (`speaking`: what the agent is saying now)."""

    persona: str = ""
    end_reason: str = ""
    barge_ins: int = 0
    # Where the caller's message was saved ("" when none was left).
    message: str = ""
    errors: list[str] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    # None when the call had no front desk (routing switched off).
    routing: RoutingReport | None = None
    greeting: str = ""
    speaking: str = ""

    def as_dict(self) -> JsonObject:
        return {
            "persona": self.persona,
            "end_reason": self.end_reason,
            "barge_ins": self.barge_ins,
            **({"message": self.message} if self.message else {}),
            "errors": list(self.errors),
            "turns": [turn.as_dict() for turn in self.turns],
            **({"routing": self.routing.as_dict()} if self.routing is not None else {}),
            "greeting": self.greeting,
            "speaking": self.speaking,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationReport:
        routing = data.get("routing")
        return cls(
            persona=str(data.get("persona") or ""),
            end_reason=str(data.get("end_reason") or ""),
            barge_ins=int(data.get("barge_ins") or 0),
            message=str(data.get("message") or ""),
            errors=[str(error) for error in _list(data, "errors")],
            turns=[TurnRecord.from_dict(turn) for turn in _list(data, "turns") if isinstance(turn, dict)],
            routing=RoutingReport.from_dict(routing) if isinstance(routing, dict) else None,
            greeting=str(data.get("greeting") or ""),
            speaking=str(data.get("speaking") or ""),
        )


@dataclass(frozen=True, slots=True)
class MediaSummary:
    """The call's RTP counters at the end: what arrived, what was dropped and why, pacing accuracy."""

    packets_in: int = 0
    packets_out: int = 0
    audio_frames_out: int = 0
    lost: int = 0
    late: int = 0
    malformed: int = 0
    foreign: int = 0
    wrong_payload_type: int = 0
    wrong_size: int = 0
    send_interval_error_p99_ms: float = 0.0

    def as_dict(self) -> JsonObject:
        return {
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "audio_frames_out": self.audio_frames_out,
            "lost": self.lost,
            "late": self.late,
            "malformed": self.malformed,
            "foreign": self.foreign,
            "wrong_payload_type": self.wrong_payload_type,
            "wrong_size": self.wrong_size,
            "send_interval_error_p99_ms": self.send_interval_error_p99_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MediaSummary:
        counts = {name: int(data.get(name) or 0) for name in _MEDIA_COUNTS}
        return cls(**counts, send_interval_error_p99_ms=float(data.get("send_interval_error_p99_ms") or 0.0))


_MEDIA_COUNTS = (
    "packets_in", "packets_out", "audio_frames_out", "lost", "late", "malformed", "foreign", "wrong_payload_type",
    "wrong_size",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TransferSummary:
    """Where the caller was sent, by which rule, and (once tried) how it went."""

    target: str = ""
    kind: str = ""
    destination: str = ""
    by: str = ""
    # pipelines.base.TransferOutcome once the transfer was tried; "" while it is under way.
    outcome: str = ""

    def as_dict(self) -> JsonObject:
        return {
            "target": self.target,
            "kind": self.kind,
            "destination": self.destination,
            "by": self.by,
            **({"outcome": self.outcome} if self.outcome else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferSummary:
        return cls(**{name: str(data.get(name) or "") for name in ("target", "kind", "destination", "by", "outcome")})


@dataclass(slots=True)
class CallRecord:
    """What happened on a call, kept after it ends: the one record storage, metrics and the web read.

    The call fills it in as it goes (so it is not frozen); the reports inside it are snapshots."""

    channel_id: str
    caller: str
    persona: str
    called: str = ""
    direction: str = "inbound"
    started_at: float = field(default_factory=time.time)
    answered: bool = False
    media_connected: bool = False
    ended_at: float | None = None
    end_reason: str = ""
    error: str = ""
    # None until the call had media (stored as {}).
    media: MediaSummary | None = None
    # None for pipelines that keep no conversation (echo, prompt; stored as {}).
    conversation: ConversationReport | None = None
    # None when the caller was not sent anywhere (stored as {}).
    transfer: TransferSummary | None = None
    recording: str = ""
    # AMI's events about the caller after a hand-over to a queue, as AMI sent them.
    handover_events: list[dict[str, str]] = field(default_factory=list)
    # The caller's codec as Asterisk negotiated it (opus, ulaw, ...); Asterisk transcodes to ours.
    caller_codec: str = ""
    # Our externalMedia leg's codec (g722: the models hear 16 kHz; ulaw: 8 kHz).
    media_format: str = ""
    # Set by the web phone (SIP header X-Bridge-Session): lets the page follow its own call.
    client_session: str = ""
    # The bridge that took the call (storage.node): several nodes may write to one database.
    node: str = ""

    def as_dict(self) -> JsonObject:
        return {
            "channel_id": self.channel_id,
            "caller": self.caller,
            "persona": self.persona,
            "called": self.called,
            "direction": self.direction,
            "started_at": self.started_at,
            "answered": self.answered,
            "media_connected": self.media_connected,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "error": self.error,
            "media": self.media.as_dict() if self.media is not None else {},
            "conversation": self.conversation.as_dict() if self.conversation is not None else {},
            "transfer": self.transfer.as_dict() if self.transfer is not None else {},
            "recording": self.recording,
            "handover_events": [dict(event) for event in self.handover_events],
            "caller_codec": self.caller_codec,
            "media_format": self.media_format,
            "client_session": self.client_session,
            "node": self.node,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallRecord:
        """A stored record; raises KeyError without a channel_id (it is not a call record at all).

        A row without its start has no known duration, so its end is left unknown too: against
        a start made up now it would read as a negative duration. The start then stands at the
        end (else now), so the record still sorts and is purged near when the call was.
        """
        media, conversation, transfer = (_object(data, key) for key in ("media", "conversation", "transfer"))
        started, ended = _number(data, "started_at"), _number(data, "ended_at")
        if started is None:
            started, ended = ended if ended is not None else time.time(), None
        return cls(
            channel_id=str(data["channel_id"]),
            caller=str(data.get("caller") or ""),
            persona=str(data.get("persona") or ""),
            called=str(data.get("called") or ""),
            direction=str(data.get("direction") or "inbound"),
            started_at=started,
            answered=bool(data.get("answered")),
            media_connected=bool(data.get("media_connected")),
            ended_at=ended,
            end_reason=str(data.get("end_reason") or ""),
            error=str(data.get("error") or ""),
            media=MediaSummary.from_dict(media) if media else None,
            conversation=ConversationReport.from_dict(conversation) if conversation else None,
            transfer=TransferSummary.from_dict(transfer) if transfer else None,
            recording=str(data.get("recording") or ""),
            handover_events=[dict(event) for event in _list(data, "handover_events") if isinstance(event, dict)],
            caller_codec=str(data.get("caller_codec") or ""),
            media_format=str(data.get("media_format") or ""),
            client_session=str(data.get("client_session") or ""),
            node=str(data.get("node") or ""),
        )


def _object(data: Mapping[str, Any], key: str) -> JsonObject:
    value = data.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) else None


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return list(value) if isinstance(value, list) else []
