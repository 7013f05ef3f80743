"""Builds the configured pipeline for each new call.

It lives with the service that wires the rooms together, not in `pipelines/`: the agent
pipeline is the conversation, which itself speaks to the call through `pipelines.base`, so a
factory inside `pipelines/` made the two packages import each other.
"""

from __future__ import annotations

from bridge.config import BridgeConfig
from bridge.conversation.agent import Agent
from bridge.conversation.controller import Conversation
from bridge.pipelines.base import PipelineFactory
from bridge.pipelines.echo import EchoPipeline
from bridge.pipelines.prompt import PromptPipeline, read_wav_mono16


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
