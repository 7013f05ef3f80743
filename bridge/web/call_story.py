"""What happened on a call, in the words an operator would use, from its stored record.

The record keeps everything (ARI end reasons, the conversation's own end, the transfer and the
queue's AMI events); people reading the history want one phrase: "sent to sales queue -
answered by agent 201", "message taken", "refused: asked for a place not listed". One function
turns a record into that phrase and a small fixed kind (for filters, charts and metrics), so the
dashboard, the CSV and the metrics all say the same thing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Literal

from bridge.records import CallRecord, ConversationReport, TransferSummary
from bridge.telephony.ending import HANDED_OVER, handed_over

OutcomeKind = Literal["answered", "transferred", "message", "refused", "declined", "failed", "abandoned"]
OUTCOME_KINDS: tuple[OutcomeKind, ...] = (
    "answered", "transferred", "message", "refused", "declined", "failed", "abandoned",
)  # fmt: skip

_DECLINED = {"at_capacity": "the bridge was at capacity", "shutting_down": "the bridge was shutting down"}
_CONVERSATION_ENDS = {
    "caller_goodbye": "answered, caller said goodbye",
    "caller_silent": "answered, caller went silent",
    "max_duration": "answered, ended at the longest call allowed",
}
_TRANSFER_RESULTS = {
    "busy": "busy",
    "no_answer": "no answer",
    "failed": "could not be reached",
    "unavailable": "unavailable",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    words: str


def outcome(record: CallRecord) -> Outcome:
    """The call's ending as an operator would say it."""
    end = record.end_reason
    conversation = record.conversation or ConversationReport()
    ended_by = conversation.end_reason
    if end.startswith("declined:"):
        reason = _DECLINED.get(end.removeprefix("declined:"), end.removeprefix("declined:"))
        return Outcome("declined", f"declined, to the next bridge or the fallback queue: {reason}")
    if record.transfer is not None and record.transfer.target:
        return _transferred(record.transfer, record.handover_events)
    if ended_by == "message_taken" or conversation.message:
        return Outcome("message", "message taken")
    if ended_by == "backend_error":
        where = "handed to the fallback queue" if end.startswith(HANDED_OVER) else "ended"
        return Outcome("failed", f"{where}: a model failed")
    if end.startswith(handed_over("failed")):
        cause = "bridge error" if record.error else "bridge stopping or unavailable"
        return Outcome("failed", f"handed to the fallback queue: {cause}")
    if conversation.routing is not None and conversation.routing.refused:
        return Outcome("refused", "refused: asked for a place not listed")
    if ended_by in _CONVERSATION_ENDS:
        return Outcome("answered", _CONVERSATION_ENDS[ended_by])
    if not record.media_connected and end.startswith("caller:"):
        return Outcome("abandoned", "caller hung up before the agent answered")
    if end.startswith("caller:"):
        said = any(turn.caller for turn in conversation.turns)
        return Outcome("answered", "answered, caller hung up" if said else "answered, caller hung up without speaking")
    if record.error:
        return Outcome("failed", f"ended: {record.error}")
    return Outcome("answered", "ended by the agent" if end else "in progress")


def _transferred(transfer: TransferSummary, events: list[dict[str, str]]) -> Outcome:
    target = transfer.target
    if transfer.kind == "queue":
        words = f"sent to {target} queue"
        connected = next((event for event in events if event.get("Event") == "AgentConnect"), None)
        if connected is not None:
            member = connected.get("MemberName") or connected.get("Interface") or "an agent"
            return Outcome("transferred", f"{words} - answered by {member}")
        if any(event.get("Event") == "QueueCallerAbandon" for event in events):
            return Outcome("abandoned", f"{words} - caller hung up waiting")
        return Outcome("transferred", words)
    if transfer.kind == "dialplan":
        return Outcome("transferred", f"sent to {target} (dialplan)")
    if transfer.outcome == "answered":
        return Outcome("transferred", f"put through to {target} - answered")
    if transfer.outcome in _TRANSFER_RESULTS:
        return Outcome("answered", f"tried {target}: {_TRANSFER_RESULTS[transfer.outcome]}")
    return Outcome("transferred", f"put through to {target}")


def duration_seconds(record: CallRecord) -> float | None:
    return record.ended_at - record.started_at if record.ended_at is not None else None


def voice_to_voice_ms(record: CallRecord) -> list[int]:
    """Per answered turn: caller's last voiced frame to the agent's first frame out."""
    turns = record.conversation.turns if record.conversation is not None else []
    return [turn.latency_ms["first_frame_out"] for turn in turns if "first_frame_out" in turn.latency_ms]


def median_ms(values: list[int]) -> int | None:
    return round(statistics.median(values)) if values else None


@dataclass(frozen=True, slots=True)
class Line:
    """One thing said on the call, for the call page's conversation."""

    at_s: float | None
    speaker: Literal["agent", "caller"]
    text: str
    note: str = ""


def conversation_lines(record: CallRecord) -> list[Line]:
    """The whole conversation in order: the greeting, each caller turn and what the agent said,
    and what the agent said unasked (re-prompts, desk phrases, the goodbye)."""
    conversation = record.conversation or ConversationReport()
    lines = []
    if conversation.greeting:
        lines.append(Line(0.0, "agent", conversation.greeting, "greeting"))
    for turn in conversation.turns:
        if turn.caller:
            went_on = "went on after a pause" if turn.continued == 1 else f"went on after {turn.continued} pauses"
            lines.append(Line(turn.at_s, "caller", turn.caller, went_on if turn.continued else ""))
        if turn.agent:
            interrupted = " (interrupted)" if turn.interrupted else ""
            lines.append(Line(turn.at_s, "agent", turn.agent, turn.outcome + interrupted))
    return lines
