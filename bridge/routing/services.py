"""The routing parts every call shares: the allowlist rules, the queue monitor, the message box."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config.routing import RoutingConfig
from bridge.routing.desk import FrontDesk
from bridge.routing.intents import IntentRules
from bridge.routing.messages import MessageBox
from bridge.routing.queues import QueueMonitor
from bridge.routing.webhooks import Webhooks


@dataclass
class RoutingServices:
    config: RoutingConfig
    rules: IntentRules
    messages: MessageBox
    queues: QueueMonitor | None = None
    webhooks: Webhooks | None = None

    @classmethod
    def from_config(cls, config: RoutingConfig, queues: QueueMonitor | None = None) -> RoutingServices:
        return cls(config, IntentRules(config.targets), MessageBox(config.message_store()), queues)

    def desk(self, goodbye: str) -> FrontDesk:
        """A fresh front desk for one call (`goodbye`: the persona's last words)."""
        return FrontDesk(self.rules, self.config, self.queues, goodbye=goodbye)
