"""Wideband callers get a 16 kHz leg (G.722) to the bridge; narrowband trunks keep u-law.

A 6 kHz tone cannot survive 8 kHz audio (its Nyquist limit is 4 kHz), so hearing one come back
proves both directions of our leg were wideband: the sipp caller speaks G.722 (static payload
type 9), the echo pipeline plays back what reached it, and the capture between Asterisk and the
caller is decoded with G.722 again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.support.audio import dominant_frequency, tone
from tests.support.capture import LoopbackCapture
from tests.support.pcap import write_rtp_pcap
from tests.support.sipp import SippCaller
from tests.support.wire import calls_on_wire

pytestmark = pytest.mark.integration

G722 = codec_for("g722")
HIGH_HZ = 6000


async def test_a_g722_caller_gets_a_g722_leg_and_a_6khz_tone_goes_both_ways(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    pcap = workdir / "wideband.pcap"
    write_rtp_pcap(pcap, tone(HIGH_HZ, 3.0, G722.sample_rate, amplitude=0.3), G722)
    async with running_bridge(asterisk, None) as service:  # media.format = "auto", the default
        caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), pcap, payload_type=9, hold_ms=3500)
        async with LoopbackCapture(workdir / "wideband-wire.pcap", f"udp and port {caller.media_port}") as capture:
            result = await caller.run(timeout=40)
        await wait_for_finished_calls(service, 1)
        record = service.app.finished[0]
    assert result.successful_calls == 1, result.output
    assert (record.caller_codec, record.media_format) == ("g722", "g722"), record
    (wire,) = calls_on_wire(capture.datagrams(), caller.media_port, G722)
    echoed = wire.received_between(1.0, 3.0)
    assert len(echoed) > G722.sample_rate  # over a second of audio came back
    assert dominant_frequency(echoed, G722.sample_rate) == pytest.approx(HIGH_HZ, abs=60)


async def test_a_ulaw_trunk_call_still_gets_a_ulaw_leg(asterisk: AsteriskInstance, workdir: Path) -> None:
    ulaw = codec_for("ulaw")
    pcap = workdir / "narrow.pcap"
    write_rtp_pcap(pcap, tone(1000, 2.0, ulaw.sample_rate), ulaw)
    async with running_bridge(asterisk, None) as service:
        caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), pcap, hold_ms=2500)
        result, _ = await asyncio.gather(caller.run(timeout=40), wait_for_finished_calls(service, 1, timeout=40))
        record = service.app.finished[0]
    assert result.successful_calls == 1, result.output
    assert (record.caller_codec, record.media_format) == ("ulaw", "ulaw"), record
