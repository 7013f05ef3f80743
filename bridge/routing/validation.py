"""At start-up, ask Asterisk whether every transfer target in the allowlist exists.

A queue that is not in queues.conf or an extension with no endpoint would otherwise only show
up when a caller asks for it. Only definite answers count: if Asterisk cannot be asked (AMI or
ARI down), the target is reported as unverified and the bridge starts anyway.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from bridge.config.routing import RoutingConfig
from bridge.routing.queues import QueueMonitor

log = structlog.get_logger(__name__)


class EndpointDirectory(Protocol):
    """Whether Asterisk has a SIP/IAX endpoint: all routing needs of ARI (the ARI client is one)."""

    async def endpoint_known(self, technology: str, resource: str) -> bool | None:
        """True or False as Asterisk answered; None when it could not be asked."""
        ...


async def missing_targets(routing: RoutingConfig, ari: EndpointDirectory, queues: QueueMonitor | None) -> list[str]:
    """One line per target Asterisk says does not exist, naming the config key and the fix."""
    problems: list[str] = []
    unverified: list[str] = []
    queue_names = await queues.queue_names() if queues is not None else None
    for name, target in routing.targets.items():
        key = f"routing.targets.{name}.destination"
        if target.kind == "queue":
            if queue_names is None:
                unverified.append(name)
            elif target.destination not in queue_names:
                known = ", ".join(sorted(queue_names)) or "none"
                problems.append(
                    f"{key}: queue {target.destination!r} does not exist in Asterisk (queues there: {known}); "
                    "add it to queues.conf or fix the name"
                )
        elif target.kind == "extension":
            technology, _, resource = target.destination.partition("/")
            endpoint = resource.split("/", 1)[0].split("@", 1)[0]
            if technology.upper() not in ("PJSIP", "SIP", "IAX2"):
                unverified.append(name)
                continue
            exists = await ari.endpoint_known(technology.upper(), endpoint)
            if exists is None:
                unverified.append(name)
                continue
            if not exists:
                problems.append(
                    f"{key}: Asterisk has no endpoint {technology}/{endpoint}; "
                    "add it to pjsip.conf or fix the dial string"
                )
        else:
            context, exten, _ = target.destination.split(",")
            found = await queues.has_extension(context, exten) if queues is not None else None
            if found is None:
                unverified.append(name)
            elif not found:
                problems.append(f"{key}: the dialplan has no extension {exten!r} in context [{context}]")
    if unverified:
        log.warning("routing.targets_unverified", targets=unverified, hint="Asterisk (AMI/ARI) could not be asked")
    return problems
