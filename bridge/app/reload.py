"""What a config reload may change while calls run, and what needs a restart.

Reloading never touches a call in progress: each call keeps the persona, prompts and routing it
started with; new calls get the new ones. Connections, media, models, storage and the API
server are built once at start-up, so changes there are reported and wait for a restart.
"""

from __future__ import annotations

import dataclasses

from bridge.config import BridgeConfig
from bridge.conversation.agent import Agent
from bridge.routing.queues import QueueMonitor
from bridge.routing.services import RoutingServices
from bridge.routing.webhooks import Webhooks

LIVE_SECTIONS = ("personas", "conversation", "routing", "outbound", "webhooks", "log")


def restart_only_changes(old: BridgeConfig, new: BridgeConfig) -> list[str]:
    """Top-level sections that differ but cannot change while running."""
    return [
        name
        for name in BridgeConfig.model_fields
        if name not in LIVE_SECTIONS and getattr(old, name) != getattr(new, name)
    ]


def live_part(old: BridgeConfig, new: BridgeConfig) -> BridgeConfig:
    """`new` with every restart-only section kept as it is in `old`."""
    keep = {name: getattr(old, name) for name in BridgeConfig.model_fields if name not in LIVE_SECTIONS}
    return new.model_copy(update=keep)


def reloaded_agent(agent: Agent, config: BridgeConfig, queues: QueueMonitor, webhooks: Webhooks) -> Agent:
    """The same models with `config`'s personas, conversation settings and routing.

    A copy, never a change: a call in progress keeps the agent it started with. The copy shares
    the rendered phrases and demonstrations but builds its own prompts: until its `warm()` has
    run they lack the demonstrations, and the LLM cache is not prefilled with them.
    """
    routing = dataclasses.replace(RoutingServices.from_config(config.routing, queues), webhooks=webhooks)
    return dataclasses.replace(agent, personas=dict(config.personas), settings=config.conversation, routing=routing)
