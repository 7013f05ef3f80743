"""The bridge as a real process (`python -m bridge run`), for tests that kill it or signal it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bridge.pbx.instance import AsteriskInstance


def echo_config(asterisk: AsteriskInstance, workdir: Path, extra: str = "") -> str:
    """A TOML config for an echo bridge on the test Asterisk (no models, no AMI, no API)."""
    settings = asterisk.settings
    return (
        f'[ari]\nurl = "{settings.ari_url}"\nusername = "{settings.ari_user}"\npassword = "{settings.ari_password}"\n'
        f'app = "{settings.ari_app}"\n[media]\nrtp_port_min = 0\nrtp_port_max = 0\n[pipeline]\nkind = "echo"\n'
        f'[ami]\nenabled = false\n[api]\nenabled = false\n[storage]\nurl = "sqlite:///{workdir / "calls.db"}"\n'
        '[log]\nformat = "json"\n' + extra
    )


async def start_bridge(config: Path) -> asyncio.subprocess.Process:
    """Start `bridge run` and return once it is connected to ARI (its own log line says so)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    await read_until(process.stdout, b"ari.connected")
    return process


async def read_until(stream: asyncio.StreamReader, marker: bytes) -> bytes:
    while True:
        line = await asyncio.wait_for(stream.readline(), 60)
        assert line, "the bridge process exited"
        if marker in line:
            return line
