"""What a call's media pipeline looks like to the call: audio in, a playout queue out, call control."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from bridge.media.codecs import Codec
from bridge.media.playout import PlayoutQueue
from bridge.records import ConversationReport
from bridge.routing.intents import RouteMatch

# How a transfer went: the caller left for the queue/dialplan, the extension answered and the
# caller now talks to it, or why the extension could not be reached (the agent stays).
TransferOutcome = Literal["handed_over", "answered", "busy", "no_answer", "unavailable", "failed"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    caller_number: str
    caller_name: str
    called_number: str
    direction: Literal["inbound", "outbound"] = "inbound"


class CallControl(Protocol):
    """What a pipeline may ask of the call it runs in."""

    @property
    def info(self) -> CallInfo:
        """Who is calling whom."""

    async def transfer(self, route: RouteMatch, variables: dict[str, str]) -> TransferOutcome:
        """Send the caller to an allowlisted target, telling the dialplan `variables`."""

    async def send_dtmf(self, digits: str) -> None:
        """Play keypad tones to the far end (e.g. to steer another system's IVR)."""

    def hang_up(self, reason: str) -> None:
        """End the call (after the pipeline has said goodbye): every leg is hung up."""

    def hand_over(self, result: str) -> None:
        """Give the caller to the dialplan with BRIDGE_RESULT=`result`, e.g. to reach a human queue."""


class MediaPipeline(Protocol):
    def start(self, codec: Codec, output: PlayoutQueue, control: CallControl) -> None:
        """Begin the conversation; audio for the caller goes into `output`."""

    def on_audio(self, pcm: bytes) -> None:
        """One decoded 20 ms frame from the caller. Must return at once (media path)."""

    def on_dtmf(self, digit: str) -> None:
        """A keypad digit from the caller (RFC 4733 or SIP INFO, as Asterisk reports it)."""

    async def stop(self) -> None:
        """Cancel any work in flight; called once when the call ends."""

    def report(self) -> ConversationReport | None:
        """What the pipeline wants kept in the call record (transcript, turns, latencies); None
        from a pipeline with no conversation to keep (echo, prompt)."""


# Builds each new call's pipeline for the persona the call asked for.
PipelineFactory = Callable[[str], MediaPipeline]
