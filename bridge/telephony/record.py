"""What happened on a call, kept after it ends: the one record storage, metrics and the web read."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

# The web phone's own call id (caller-chosen, so only ever used as a lookup key).
CLIENT_SESSION = re.compile(r"[A-Za-z0-9-]{16,64}")


@dataclass(slots=True)
class CallRecord:
    """What happened on a call, kept after it ends (for tests now, storage and dashboards later)."""

    channel_id: str
    caller: str
    persona: str
    called: str = ""
    direction: str = "inbound"
    started_at: float = field(default_factory=time.time)
    answered: bool = False
    media_connected: bool = False
    ended_at: float | None = None
    end_reason: str = ""
    error: str = ""
    media: dict[str, Any] = field(default_factory=dict)
    conversation: dict[str, Any] = field(default_factory=dict)
    transfer: dict[str, Any] = field(default_factory=dict)
    recording: str = ""
    handover_events: list[dict[str, str]] = field(default_factory=list)
    # The caller's codec as Asterisk negotiated it (opus, ulaw, ...); Asterisk transcodes to ours.
    caller_codec: str = ""
    # Our externalMedia leg's codec (g722: the models hear 16 kHz; ulaw: 8 kHz).
    media_format: str = ""
    # Set by the web phone (SIP header X-Bridge-Session): lets the page follow its own call.
    client_session: str = ""
    # The bridge that took the call (storage.node): several nodes may write to one database.
    node: str = ""
