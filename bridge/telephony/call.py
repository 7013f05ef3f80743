"""One caller's session: answer, bridge with an externalMedia channel, run media, tear down.

The call owns everything it creates (bridge, externalMedia channel, RTP socket, pipeline) and
removes all of it when either channel goes away, so nothing leaks whatever order events arrive in.
If set-up fails, the caller is handed over to the dialplan with BRIDGE_RESULT=failed, where
the shipped dialplan sends them to a human queue. The words for how a call ends are in
`telephony.ending`; ringing an extension for a transfer is `telephony.transfer`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from bridge.ari.client import AriClient, AriError, AriNotFound
from bridge.ari.sanitize import caller_id, channel_text
from bridge.config import MediaConfig
from bridge.media.clock import MediaClock
from bridge.media.session import RtpSession, open_rtp_session
from bridge.pipelines.base import CallInfo, MediaPipeline, TransferOutcome
from bridge.records import CallRecord, MediaSummary, TransferSummary
from bridge.routing.intents import RouteMatch
from bridge.routing.queues import QueueMonitor
from bridge.telephony.ending import hand_over_to_dialplan, handed_over
from bridge.telephony.transfer import ExtensionLegs

if TYPE_CHECKING:
    from collections.abc import Callable

log = structlog.get_logger(__name__)


class CallSession:
    def __init__(
        self,
        ari: AriClient,
        media_config: MediaConfig,
        clock: MediaClock,
        pipeline: MediaPipeline,
        channel: dict[str, Any],
        persona: str,
        expect_stasis_start: Callable[[str], asyncio.Future[None]],
        watch_channel: Callable[[str, CallSession], None] | None = None,
        queues: QueueMonitor | None = None,
        ring_seconds: int = 20,
        direction: str = "inbound",
        called_number: str = "",
        record_calls: bool = False,
        client_session: str = "",
        node: str = "",
    ) -> None:
        self.ari = ari
        self.media_config = media_config
        self.clock = clock
        self.pipeline = pipeline
        self.channel_id: str = channel["id"]
        self.media_channel_id = f"em-{uuid.uuid4().hex}"
        self.bridge_id = f"br-{uuid.uuid4().hex}"
        caller = channel.get("caller") or {}
        self.info = CallInfo(
            call_id=self.channel_id,
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            called_number=called_number or str((channel.get("dialplan") or {}).get("exten", "")),
            direction="outbound" if direction == "outbound" else "inbound",
        )
        self.record = CallRecord(
            self.channel_id, self.info.caller_number, persona, self.info.called_number, self.info.direction
        )
        self.record.client_session = client_session
        self.record.node = node
        self.on_record_update: Callable[[CallRecord], None] | None = None
        self._record_calls = record_calls
        self._queues = queues
        self.rtp: RtpSession | None = None
        self._expect_stasis_start = expect_stasis_start
        self._gone: set[str] = set()
        self._ended = asyncio.Event()
        self.finished = asyncio.Event()
        self._bridge_created = False
        self._media_requested = False
        self._hand_over_result: str | None = None
        self._log = log.bind(call=self.channel_id)
        watch = None if watch_channel is None else (lambda leg_id: watch_channel(leg_id, self))
        self._transfer_legs = ExtensionLegs(ari, ring_seconds, expect_stasis_start, watch, self._log)

    @property
    def channel_ids(self) -> tuple[str, str]:
        return self.channel_id, self.media_channel_id

    @property
    def leg_ids(self) -> tuple[str, ...]:
        return tuple(self._transfer_legs.legs)

    def channel_gone(self, channel_id: str, reason: str, cause: int = 0) -> None:
        """Either leg left Stasis or hung up: the call is over (unless it was a transfer attempt)."""
        self._transfer_legs.gone(channel_id, cause)
        connected = self._transfer_legs.connected
        if channel_id in self._transfer_legs.legs and channel_id != connected:
            self._gone.add(channel_id)
            return
        if channel_id == self.media_channel_id and connected is not None:
            self._gone.add(channel_id)
            return  # we hung up our media leg on purpose: the caller now talks to the transfer target
        if channel_id not in self._gone:
            self._gone.add(channel_id)
            if not self.record.end_reason:
                side = {self.channel_id: "caller", connected: "transfer"}.get(channel_id, "media")
                self.record.end_reason = f"{side}:{reason}"
        self._ended.set()

    def hang_up(self, reason: str) -> None:
        """CallControl: we end the call (goodbye said); every leg is hung up in tear-down."""
        self.record.end_reason = self.record.end_reason or reason
        self._ended.set()

    def hand_over(self, result: str) -> None:
        """CallControl: give the caller to the dialplan (BRIDGE_RESULT=<result>), e.g. to a queue."""
        self._hand_over_result = result
        self._ended.set()

    def dtmf(self, channel_id: str, digit: str) -> None:
        if channel_id == self.channel_id and self._transfer_legs.connected is None:
            self.pipeline.on_dtmf(digit)

    async def send_dtmf(self, digits: str) -> None:
        """CallControl: keypad tones to the caller's side (e.g. into another system's IVR)."""
        await self.ari.send_dtmf(self.channel_id, digits)

    async def transfer(self, route: RouteMatch, variables: dict[str, str]) -> TransferOutcome:
        """CallControl: send the caller to an allowlisted target (the allowlist was checked upstream)."""
        target = route.target
        tried = self.record.transfer = TransferSummary(route.name, target.kind, target.destination, route.by)
        try:
            for name, value in variables.items():  # the caller's words: cleaned before the dialplan sees them
                await self.ari.set_variable(self.channel_id, name, channel_text(value))
            if target.kind == "extension":
                shown_as = caller_id(self.info.caller_name, self.info.caller_number)
                outcome = await self._transfer_legs.connect(
                    target.destination, shown_as, self.bridge_id, self.media_channel_id, self._quietly
                )
            else:
                await self.ari.set_variable(self.channel_id, "BRIDGE_TARGET", target.destination)
                await self.ari.set_variable(self.channel_id, "BRIDGE_TARGET_NAME", route.name)
                if target.kind == "queue" and self._queues is not None:
                    self._queues.watch_handover(self.channel_id, self._handover_event)
                self.hand_over(target.kind)
                outcome = "handed_over"
        except AriError as error:
            self._log.warning("call.transfer_failed", target=route.name, error=str(error))
            outcome = "failed"
        self.record.transfer = replace(tried, outcome=outcome)
        return outcome

    def _handover_event(self, event: dict[str, str]) -> None:
        """AMI told us what became of the caller after we let go (queue joined, answered, abandoned)."""
        self.record.handover_events.append(event)
        if self.finished.is_set() and self.on_record_update is not None:
            self.on_record_update(self.record)  # the call record was already stored: store it again

    async def run(self) -> CallRecord:
        self._log.info("call.start", caller=self.record.caller, persona=self.record.persona)
        try:
            await self._set_up()
            await self._ended.wait()
            if self._hand_over_result is not None:
                await self._hand_over_to_dialplan(self._hand_over_result)
        except (AriError, OSError, TimeoutError) as error:
            self.record.error = str(error) or type(error).__name__
            self._log.error("call.setup_failed", error=self.record.error)
            await self._hand_over_to_dialplan("failed")
        finally:
            await self._tear_down()
        return self.record

    async def _set_up(self) -> None:
        config = self.media_config
        await self.ari.answer(self.channel_id)
        self.record.answered = True
        if config.denoise:
            await self._denoise()
        self.record.caller_codec = await self._caller_codec()
        codec = config.codec_for_call(self.record.caller_codec)
        self.record.media_format = codec.name
        await self.ari.create_bridge(self.bridge_id, name=bridge_name(self.ari.app, self.channel_id))
        self._bridge_created = True
        self.rtp = RtpSession(codec, self.clock, jitter_depth=config.jitter_depth)
        await open_rtp_session(self.rtp, config.bind_host, config.rtp_port_range)
        assert self.rtp.local_address is not None
        media_ready = self._expect_stasis_start(self.media_channel_id)
        self._media_requested = True
        channel = await self.ari.external_media(
            self.media_channel_id, f"{config.external_host}:{self.rtp.local_address[1]}", codec.name
        )
        self.rtp.expect_peer(await asterisk_rtp_address(channel, self.ari.base_url, self.rtp.local_address[0]))
        await asyncio.wait_for(media_ready, config.setup_timeout_seconds)
        if self._ended.is_set():
            return
        await self.ari.add_to_bridge(self.bridge_id, self.channel_id, self.media_channel_id)
        self.rtp.on_audio = self.pipeline.on_audio
        self.pipeline.start(codec, self.rtp.playout, self)
        self.rtp.start_sending()
        self.record.media_connected = True
        if self._record_calls:
            await self._start_recording()
        self._log.info(
            "call.media_connected",
            local=self.rtp.local_address,
            asterisk=self.rtp.remote,
            format=codec.name,
            caller_codec=self.record.caller_codec,
        )

    async def _denoise(self) -> None:
        """media.denoise: speex noise suppression on the caller's audio, inside Asterisk."""
        try:
            await self.ari.set_variable(self.channel_id, "DENOISE(rx)", "on")
        except AriError as error:  # no func_speex: the call goes on without it
            self._log.warning("call.denoise_failed", error=str(error))

    async def _caller_codec(self) -> str:
        """The caller leg's own codec: WebRTC callers usually speak Opus at 48 kHz, trunks G.711."""
        try:
            formats = await self.ari.get_variable(self.channel_id, "CHANNEL(audionativeformat)")
        except AriError:
            return ""  # the caller already left; nothing to report
        return formats.strip("()").replace("|", ",")  # Asterisk writes "(opus)" or "(ulaw|alaw)"

    async def _start_recording(self) -> None:
        """Both sides, mixed, in Asterisk's recording spool (ARI: /recordings/stored/NAME/file)."""
        name = f"ai-bridge-{self.channel_id}"
        try:
            await self.ari.record_bridge(self.bridge_id, name)
        except AriError as error:  # a call without a recording is still a call
            self._log.warning("call.recording_failed", error=str(error))
            return
        self.record.recording = f"{name}.wav"

    async def _hand_over_to_dialplan(self, result: str) -> None:
        if self.channel_id in self._gone:
            return
        try:
            await hand_over_to_dialplan(self.ari, self.channel_id, result)
            self._gone.add(self.channel_id)
            self.record.end_reason = handed_over(result)
        except AriError as error:
            self._log.warning("call.hand_back_failed", error=str(error))

    async def _tear_down(self) -> None:
        await self.pipeline.stop()
        self.record.conversation = self.pipeline.report()
        if self.rtp is not None:
            self.rtp.close()
            self.record.media = _media_summary(self.rtp)
        if self._media_requested and self.media_channel_id not in self._gone:
            await self._quietly(self.ari.hangup(self.media_channel_id))
        if self.channel_id not in self._gone:
            await self._quietly(self.ari.hangup(self.channel_id))
        for leg_id in self._transfer_legs.legs:
            if leg_id not in self._gone:
                await self._quietly(self.ari.hangup(leg_id))
        if self._bridge_created:
            await self._quietly(self.ari.destroy_bridge(self.bridge_id))
        self.record.ended_at = time.time()
        self.record.end_reason = self.record.end_reason or "ended"
        media = self.record.media.as_dict() if self.record.media is not None else {}
        self._log.info("call.end", reason=self.record.end_reason, media=media)

    async def _quietly(self, operation: Any) -> None:
        """Tear-down step: 'not found' means already gone, which is the goal."""
        try:
            await operation
        except AriNotFound:
            pass
        except AriError as error:
            self._log.warning("call.teardown_error", error=str(error))


def bridge_name(app: str, channel_id: str) -> str:
    """Our mixing bridges carry the ARI app's name, so a restarted bridge finds its own leftovers
    (and never touches another application's bridges on the same Asterisk)."""
    return f"{app}:{channel_id}"


async def asterisk_rtp_address(channel: dict[str, Any], ari_url: str, local_host: str) -> tuple[str, int]:
    """Where Asterisk's externalMedia channel sends from (its channel vars), as an IP address.

    Without the vars (or bound to all addresses), it is Asterisk's host with any port: the first
    packet from there is latched. A host name is resolved, since packets carry addresses, in the
    family of our own socket (so "localhost" is 127.0.0.1, not ::1, for an IPv4 socket).
    """
    variables = channel.get("channelvars") or {}
    host = str(variables.get("UNICASTRTP_LOCAL_ADDRESS") or "")
    port = int(variables.get("UNICASTRTP_LOCAL_PORT") or 0)
    if host in ("", "0.0.0.0", "::"):
        host = urlsplit(ari_url).hostname or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        family = socket.AF_INET6 if ":" in local_host else socket.AF_INET
        found = await asyncio.get_running_loop().getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
        host = str(found[0][4][0])
    return host, port


def _media_summary(rtp: RtpSession) -> MediaSummary:
    stats = rtp.stats
    jitter = rtp.jitter.stats
    return MediaSummary(
        packets_in=stats.packets_in,
        packets_out=stats.packets_out,
        audio_frames_out=stats.audio_frames_out,
        lost=jitter.lost,
        late=jitter.late,
        malformed=stats.malformed,
        foreign=stats.foreign,
        wrong_payload_type=stats.wrong_payload_type,
        wrong_size=stats.wrong_size,
        send_interval_error_p99_ms=round(stats.send_interval_error.percentile(0.99) * 1000, 3),
    )
