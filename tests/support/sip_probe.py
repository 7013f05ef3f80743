"""One raw SIP INVITE from a chosen source address, to see what Asterisk answers a stranger.

sipp binds one address per run and wants a scenario per outcome; a probe only needs the final
response code, so a UDP socket is simpler and shows exactly what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass

_SDP = (
    "v=0\r\no=probe 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


@dataclass
class ProbeResult:
    codes: list[int]  # every response code seen, provisional ones included

    @property
    def final(self) -> int:
        return self.codes[-1] if self.codes else 0


def _request(
    method: str,
    ip: str,
    port: int,
    target: tuple[str, int],
    user: str,
    service: str,
    call_id: str,
    tag: str,
    to_tag: str = "",
    body: str = "",
) -> bytes:
    host, target_port = target
    lines = [
        f"{method} sip:{service}@{host}:{target_port} SIP/2.0",
        f"Via: SIP/2.0/UDP {ip}:{port};rport;branch=z9hG4bK{call_id}{method}",
        f'From: "Probe" <sip:{user}@{ip}:{port}>;tag={tag}',
        f"To: <sip:{service}@{host}:{target_port}>{';tag=' + to_tag if to_tag else ''}",
        f"Call-ID: {call_id}",
        f"CSeq: {2 if method == 'BYE' else 1} {method}",
        f"Contact: <sip:{user}@{ip}:{port}>",
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _to_tag(message: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith("to:") and ";tag=" in line:
            return line.split(";tag=", 1)[1].split(";")[0].strip()
    return ""


async def invite(
    source_ip: str, target: tuple[str, int], user: str, service: str, timeout: float = 10.0
) -> ProbeResult:
    """Send an INVITE from `source_ip` with From user `user`; return the codes until a final one.

    A final 2xx is acknowledged and the call hung up again at once; a final error is acknowledged
    as SIP requires (else Asterisk retransmits it).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source_ip, 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    call_id = f"probe{random.getrandbits(48):x}"
    tag = f"{random.getrandbits(32):x}"
    codes: list[int] = []
    try:
        body = _SDP.format(ip=source_ip, rtp=port + 2)
        await loop.sock_sendto(
            sock, _request("INVITE", source_ip, port, target, user, service, call_id, tag, body=body), target
        )
        async with asyncio.timeout(timeout):
            while not codes or codes[-1] < 200:
                data = (await loop.sock_recv(sock, 65535)).decode(errors="replace")
                if not data.startswith("SIP/2.0 "):
                    continue  # a request from Asterisk (e.g. an OPTIONS); not ours to answer here
                codes.append(int(data.split()[1]))
        to_tag = _to_tag(data)
        await loop.sock_sendto(
            sock, _request("ACK", source_ip, port, target, user, service, call_id, tag, to_tag), target
        )
        if 200 <= codes[-1] < 300:
            await loop.sock_sendto(
                sock, _request("BYE", source_ip, port, target, user, service, call_id, tag, to_tag), target
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await loop.sock_recv(sock, 65535)
    finally:
        sock.close()
    return ProbeResult(codes)
