"""The routing parts every call shares: the allowlist rules, the queue monitor, the message box."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.routing.desk import TOOL_PREFIX, FrontDesk
from bridge.routing.intents import IntentRules
from bridge.routing.messages import MessageBox
from bridge.routing.queues import QueueMonitor
from bridge.routing.webhooks import Webhooks
from bridge.routing_config import RoutingConfig


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

    def tool_instructions(self) -> str:
        """What the LLM is told about transfers (empty when llm_tools is off): a fixed reply form.

        The reply is parsed, and the name in it checked against the allowlist, before anything
        happens; a name that is not a target gets a refusal, never a transfer.
        """
        if not self.config.llm_tools or not self.config.targets:
            return ""
        names = [f"{name} ({target.description})" for name, target in self.config.targets.items()]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        # Wording measured with Qwen2.5 0.5B: looser forms ("if the caller asks for one of them")
        # made it transfer ordinary questions such as "is there parking?".
        return (
            "\nIf, and only if, the caller asks to be put through to a department, reply with the single line "
            f"'{TOOL_PREFIX} <department>' where department is {listed}."
        )

    def desk(self) -> FrontDesk:
        """A fresh front desk for one call."""
        return FrontDesk(self.rules, self.config, self.queues)
