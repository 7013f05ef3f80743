"""The one snapshot of what a config reload may change for new calls.

The Stasis app, the outbound dialer, the webhooks and the agent each need a slice of the
running config. They used to hold copies that a reload updated one by one, so a setting added
later and forgotten in one reload step kept its start-up value there without a word. Now the
service holds one `LiveSettings`; each reader gets a callable returning its slice of the
current one, and a reload builds a whole new snapshot and swaps that one reference. A call
reads its slice once when it starts and keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from bridge.config import BridgeConfig
from bridge.config.routing import WebhookConfig
from bridge.conversation.agent import Agent
from bridge.pipelines.base import PipelineFactory
from bridge.telephony.outbound import OutboundSettings
from bridge.telephony.stasis import CallSettings


@dataclass(frozen=True)
class LiveSettings:
    """The running config and everything derived from it that new calls are started with."""

    config: BridgeConfig  # restart-only sections stay as at start-up (reload.live_part)
    calls: CallSettings
    outbound: OutboundSettings
    # The agent pipeline's models with this config's personas, conversation settings and routing
    # (the pipelines above build each call's conversation from it); None for echo and prompt.
    agent: Agent | None = None

    @property
    def webhooks(self) -> WebhookConfig:
        return self.config.webhooks


def live_settings(config: BridgeConfig, pipelines: PipelineFactory, agent: Agent | None = None) -> LiveSettings:
    """Everything a new call reads, derived from `config` in one place."""
    personas = frozenset(config.personas)
    default = config.conversation.default_persona
    calls = CallSettings(
        pipelines,
        default_persona=default,
        personas=personas,
        personas_by_number=MappingProxyType(dict(config.conversation.personas_by_number)),
        ring_seconds=config.routing.ring_seconds,
    )
    return LiveSettings(config, calls, OutboundSettings.resolve(config.outbound, default, personas), agent)
