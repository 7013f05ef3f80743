"""Builds the configured pipeline for each new call."""

from __future__ import annotations

from collections.abc import Callable

from bridge.config import BridgeConfig
from bridge.conversation.agent import Agent
from bridge.conversation.controller import Conversation
from bridge.pipelines.base import MediaPipeline
from bridge.pipelines.echo import EchoPipeline
from bridge.pipelines.prompt import PromptPipeline, read_wav_mono16

PipelineFactory = Callable[[str], MediaPipeline]


def pipeline_factory(config: BridgeConfig, agent: Agent | None = None) -> PipelineFactory:
    """Return a per-call constructor; files are checked now, not on the first call."""
    pipeline = config.pipeline
    if pipeline.kind == "agent":
        if agent is None:
            raise ValueError("pipeline.kind = 'agent' needs the loaded models (load_agent)")
        return lambda persona: Conversation(agent, persona)
    if pipeline.kind == "prompt":
        assert pipeline.prompt_wav is not None
        wav_path = pipeline.prompt_wav
        read_wav_mono16(wav_path)
        return lambda persona: PromptPipeline(wav_path)
    return lambda persona: EchoPipeline()
