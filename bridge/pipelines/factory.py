"""Builds the configured pipeline for each new call."""

from __future__ import annotations

from collections.abc import Callable

from bridge.config import PipelineConfig
from bridge.pipelines.base import MediaPipeline
from bridge.pipelines.echo import EchoPipeline
from bridge.pipelines.prompt import PromptPipeline, read_wav_mono16

PipelineFactory = Callable[[str], MediaPipeline]


def pipeline_factory(config: PipelineConfig) -> PipelineFactory:
    """Return a per-call constructor; the prompt file is checked now, not on the first call."""
    if config.kind == "prompt":
        assert config.prompt_wav is not None
        wav_path = config.prompt_wav
        read_wav_mono16(wav_path)
        return lambda persona: PromptPipeline(wav_path)
    return lambda persona: EchoPipeline()
