"""Drive sipp, the real SIP peer: render a caller scenario that plays a pcap, run it, check it."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_udp_port

_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller plays audio then hangs up">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:{caller}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {payload_type} 101
      a=rtpmap:{payload_type} {rtpmap}
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:{caller}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:{caller}@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_RTPMAP = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000"}


def _through_a_proxy(scenario: str) -> str:
    """The caller scenario for calls through a SIP proxy (Kamailio): keep the Record-Route set of
    the 200 OK and send ACK and BYE to the node's Contact along that route, as a real phone does
    (sent to the proxy's own address, a BYE would have no route to the node that has the call)."""
    routed = (
        scenario.replace('<recv response="200" rtd="true"/>', '<recv response="200" rtd="true" rrs="true"/>')
        .replace("ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0", "ACK [next_url] SIP/2.0\n      [routes]")
        .replace("BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0", "BYE [next_url] SIP/2.0\n      [routes]")
    )
    assert routed.count("[routes]") == 2 and 'rrs="true"' in routed, "the caller scenario changed: update this"
    return routed


_ANSWERER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="phone that answers, plays audio and waits for the far end to hang up">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="{ring_ms}"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=phone 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  {play}
  <recv request="BYE" timeout="{wait_ms}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""

_BUSY = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="phone that is busy">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def require_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp not found: install Debian's sip-tester (scripts/test does this)")
    return path


@dataclass
class SippResult:
    returncode: int
    output: str
    successful_calls: int
    failed_calls: int


@dataclass
class SippCaller:
    """One sipp process placing `calls` calls (up to `concurrent` at once) that each play a pcap."""

    workdir: Path
    target: tuple[str, int]
    pcap: Path
    service: str = "18005550100"
    caller: str = "15551230000"
    payload_type: int = 0
    hold_ms: int = 3000
    calls: int = 1
    concurrent: int = 1
    rate: float = 10.0
    sip_port: int = 0
    media_port: int = 0
    # Through a SIP proxy that record-routes (Kamailio): in-dialog requests follow the route set.
    via_proxy: bool = False

    def __post_init__(self) -> None:
        self.sip_port = self.sip_port or free_udp_port()
        self.media_port = self.media_port or free_udp_port()

    def scenario(self) -> Path:
        path = self.workdir / f"caller-{self.sip_port}.xml"
        template = _through_a_proxy(_SCENARIO) if self.via_proxy else _SCENARIO
        path.write_text(
            template.format(
                caller=self.caller,
                payload_type=self.payload_type,
                rtpmap=_RTPMAP[self.payload_type],
                pcap=self.pcap,
                hold_ms=self.hold_ms,
            )
        )
        return path

    async def run(self, timeout: float = 120.0) -> SippResult:
        options = [
            f"{self.target[0]}:{self.target[1]}",
            "-s", self.service,
            "-l", str(self.concurrent),
            "-r", str(self.rate),
            "-timeout", f"{int(timeout)}s",
            "-timeout_error",
            "-recv_timeout", "20000",
        ]  # fmt: skip
        errors = self.workdir / f"sipp-{self.sip_port}-errors.log"
        process = await _start_sipp(
            self.workdir, self.scenario(), self.sip_port, self.media_port, self.calls, errors, options
        )
        return await _result(process, errors, timeout + 30)


async def _start_sipp(
    workdir: Path, scenario: Path, sip_port: int, media_port: int, calls: int, errors: Path, options: list[str]
) -> asyncio.subprocess.Process:
    command = [
        require_sipp(),
        *options,
        "-sf", str(scenario),
        "-i", "127.0.0.1",
        "-p", str(sip_port),
        "-mp", str(media_port),
        "-m", str(calls),
        "-nostdin",
        "-trace_err",
        "-error_file", str(errors),
    ]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=workdir
    )


async def _result(process: asyncio.subprocess.Process, errors: Path, timeout: float) -> SippResult:
    """Wait for sipp to exit; its final statistics (and error log) tell how the calls went."""
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    return _read_result(process.returncode or 0, stdout.decode(errors="replace"), errors)


def _read_result(returncode: int, output: str, errors: Path) -> SippResult:
    if errors.exists():
        output += "\n" + errors.read_text(errors="replace")[-4000:]
    successful, failed = _counts(output)
    return SippResult(returncode, output, successful, failed)


def _counts(output: str) -> tuple[int, int]:
    successful = failed = 0
    for line in output.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) >= 3 and parts[0].startswith("Successful call"):
            successful = int(parts[2] or 0)
        elif len(parts) >= 3 and parts[0].startswith("Failed call"):
            failed = int(parts[2] or 0)
    return successful, failed


@dataclass
class SippPhone:
    """A phone Asterisk dials (queue member, transfer target, outbound callee): one sipp UAS.

    mode 'answer': rings for `ring_ms`, answers, plays `pcap` if given, waits for BYE.
    mode 'busy': answers every INVITE with 486 Busy Here.
    """

    workdir: Path
    mode: str = "answer"
    pcap: Path | None = None
    ring_ms: int = 500
    wait_ms: int = 60000
    calls: int = 1
    sip_port: int = 0
    media_port: int = 0

    def __post_init__(self) -> None:
        self.sip_port = self.sip_port or free_udp_port()
        self.media_port = self.media_port or free_udp_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def dial_string(self) -> str:
        return f"PJSIP/agent-phone/sip:phone@127.0.0.1:{self.sip_port}"

    def scenario(self) -> Path:
        path = self.workdir / f"phone-{self.sip_port}.xml"
        if self.mode == "busy":
            path.write_text(_BUSY)
        else:
            play = f'<nop><action><exec play_pcap_audio="{self.pcap}"/></action></nop>' if self.pcap else ""
            path.write_text(_ANSWERER.format(ring_ms=self.ring_ms, wait_ms=self.wait_ms, play=play))
        return path

    @property
    def _errors(self) -> Path:
        return self.workdir / f"phone-{self.sip_port}-errors.log"

    async def start(self) -> None:
        self._process = await _start_sipp(
            self.workdir, self.scenario(), self.sip_port, self.media_port, self.calls, self._errors, []
        )

    async def finish(self, timeout: float = 60.0) -> SippResult:
        """Wait for the phone's calls to complete (sipp exits after `calls` calls)."""
        assert self._process is not None, "start() first"
        return await _result(self._process, self._errors, timeout)

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
