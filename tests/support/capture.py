"""Packet capture with tcpdump on loopback: what the caller really received, on the wire."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.support.pcap import UdpDatagram, read_udp_pcap


class LoopbackCapture:
    def __init__(self, path: Path, bpf_filter: str) -> None:
        self.path = path
        self.bpf_filter = bpf_filter
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> LoopbackCapture:
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            raise RuntimeError("tcpdump not found: install Debian's tcpdump (scripts/test does this)")
        self._process = await asyncio.create_subprocess_exec(
            tcpdump, "-i", "lo", "-n", "-U", "-s", "0", "-w", str(self.path), self.bpf_filter,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stderr is not None
        banner = b""
        while b"listening on" not in banner:
            line = await asyncio.wait_for(self._process.stderr.readline(), 10)
            if not line:
                raise RuntimeError(f"tcpdump exited before capturing: {banner.decode(errors='replace')}")
            banner += line
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()

    def datagrams(self) -> list[UdpDatagram]:
        return read_udp_pcap(self.path)
