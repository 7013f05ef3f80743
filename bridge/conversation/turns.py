"""A turn's latency breakdown: when each stage finished, relative to the caller's last voiced frame.

Stages may finish *before* the end of turn is decided (negative endpoint-relative times are
normal): the answer is prepared speculatively during the caller's pause.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from bridge.records import JsonObject, TurnRecord

# What Whisper tends to "hear" in noise or breath; never a caller's whole turn.
NOISE_TRANSCRIPTS = {"", "you", "thank you", "thanks for watching", "so", "uh", "um", "hmm"}
STAGES = ("endpoint", "stt_final", "decision", "llm_first_token", "first_clause", "tts_first_audio", "first_frame_out")


@dataclass(slots=True)
class Turn:
    index: int
    speech_start: float
    speech_end: float = 0.0
    voiced_ms: int = 0
    caller_text: str = ""
    agent_text: str = ""
    interrupted: bool = False
    outcome: str = "pending"
    decided: JsonObject = field(default_factory=dict)
    # The turn model's "complete" probability at each pause it judged (turn.detector = smart_turn).
    end_of_turn: list[float] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    # Times the caller went on after the end of this turn was called (conversation.continue_within_ms).
    continued: int = 0

    def mark(self, stage: str, at: float | None = None) -> None:
        """Record the first time a stage completes (later repeats are ignored); `at` defaults to now
        on the running loop's clock, the one the call's deadlines and pacing run on."""
        self.marks.setdefault(stage, asyncio.get_running_loop().time() if at is None else at)

    def latency_ms(self) -> dict[str, int]:
        return {stage: round((self.marks[stage] - self.speech_end) * 1000) for stage in STAGES if stage in self.marks}

    def record(self, at_s: float | None = None) -> TurnRecord:
        """The turn as the call record keeps it; `at_s`: when it began, seconds into the call."""
        return TurnRecord(
            index=self.index,
            caller=self.caller_text,
            agent=self.agent_text,
            interrupted=self.interrupted,
            outcome=self.outcome,
            utterance_ms=round((self.speech_end - self.speech_start) * 1000),
            voiced_ms=self.voiced_ms,
            latency_ms=self.latency_ms(),
            decided=dict(self.decided),
            end_of_turn=list(self.end_of_turn),
            continued=self.continued,
            at_s=at_s,
        )

    def as_dict(self) -> JsonObject:
        return self.record().as_dict()


def is_noise(caller_text: str, voiced_ms: int, min_voiced_ms: int) -> bool:
    """A cough, a breath or a click, not a turn: too short, or heard as Whisper's noise words."""
    words = re.sub(r"[^a-z0-9' ]", "", caller_text.lower()).strip()
    return words in NOISE_TRANSCRIPTS or voiced_ms < min_voiced_ms
