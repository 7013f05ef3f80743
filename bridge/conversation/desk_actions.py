"""The front desk's side effects on the call: a message saved, the caller looked up beforehand.

The desk (routing/desk.py) decides; these do, each with only what it needs handed in, so the
controller keeps the call's timing and state and the I/O lives here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import structlog

from bridge.pipelines.base import CallInfo
from bridge.routing.desk import FrontDesk, MessageTaken
from bridge.routing.messages import CallerMessage
from bridge.routing.services import RoutingServices
from bridge.routing.webhooks import Webhooks

log = structlog.get_logger(__name__)


async def save_message(
    routing: RoutingServices, desk: FrontDesk, info: CallInfo, action: MessageTaken, audio: bytes, rate: int
) -> Path:
    """The caller's message (text, audio, what was said before it) into the messages folder."""
    message = CallerMessage(
        call_id=info.call_id,
        caller_number=info.caller_number,
        caller_name=desk.caller_name or info.caller_name,
        for_target=action.for_target,
        text=action.text,
        conversation=list(desk.heard),
        left_at=time.time(),
    )
    path = await asyncio.to_thread(routing.messages.save, message, audio, rate)
    log.info("routing.message_saved", path=str(path), chars=len(action.text))
    return path


async def look_up_caller(webhooks: Webhooks, info: CallInfo, persona: str) -> dict[str, str]:
    """Pre-call webhook, while the greeting plays: the caller's name and notes for the model."""
    known = await webhooks.pre_call(
        {
            "call_id": info.call_id,
            "caller_number": info.caller_number,
            "caller_name": info.caller_name,
            "called_number": info.called_number,
            "direction": info.direction,
            "persona": persona,
        }
    )
    if known:
        log.info("routing.caller_known", fields=sorted(known))
    return known
