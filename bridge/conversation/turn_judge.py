"""Asks the turn model, at a pause, whether the caller has finished (turn.detector = "smart_turn").

The verdict runs on its own model thread so it never waits behind speech recognition, and has a
deadline shorter than the silence it would save: a late, failed or stalled verdict is simply
dropped and the fixed end-of-turn silence decides, as without a model.
"""

from __future__ import annotations

import asyncio

import numpy as np
import structlog

from bridge.config.agent import TurnConfig
from bridge.conversation.agent import TurnModel
from bridge.media.resample import resample_pcm16
from bridge.speech.turn_model import SAMPLE_RATE, WINDOW_SECONDS
from bridge.speech.workers import ModelWorker

log = structlog.get_logger(__name__)

VERDICT_DEADLINE_SECONDS = 0.5


class TurnJudge:
    def __init__(self, model: TurnModel, worker: ModelWorker, settings: TurnConfig) -> None:
        self.model = model
        self.worker = worker
        self.settings = settings

    async def complete(self, frames: list[bytes], rate: int) -> tuple[bool | None, float] | None:
        """(complete? - None when unsure -, probability) for the utterance so far, or None without
        a verdict in time."""
        keep = WINDOW_SECONDS * rate * 2  # bytes of 16-bit audio the model looks at
        pcm = b"".join(frames)[-keep:]

        def judge() -> float:
            audio = np.frombuffer(resample_pcm16(pcm, rate, SAMPLE_RATE), dtype=np.int16)
            return self.model.complete_probability(audio.astype(np.float32) / 32768.0)

        try:
            probability = await asyncio.wait_for(self.worker.run(judge), VERDICT_DEADLINE_SECONDS)
        except Exception as error:  # noqa: BLE001 - any failure means: let silence decide
            log.warning("turn.verdict_failed", error=str(error) or type(error).__name__)
            return None
        return verdict(probability, self.settings), probability


def verdict(probability: float, settings: TurnConfig) -> bool | None:
    """Complete, incomplete, or unsure (leave it to the silence)."""
    if probability > settings.complete_above:
        return True
    if probability < settings.incomplete_below:
        return False
    return None
