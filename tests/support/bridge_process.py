"""The bridge as a real process (`python -m bridge run`), for tests that kill it or signal it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bridge.pbx.instance import AsteriskInstance


def echo_config(
    asterisk: AsteriskInstance, workdir: Path, extra: str = "", app: str | None = None, spool_dir: Path | None = None
) -> str:
    """A TOML config for an echo bridge on the test Asterisk (no models, no AMI, no API), as ARI
    app `app` (default: the instance's own). Several bridges at once need a `spool_dir` each."""
    settings = asterisk.settings
    spool = f'spool_dir = "{spool_dir}"\n' if spool_dir is not None else ""
    return (
        f'[ari]\nurl = "{settings.ari_url}"\nusername = "{settings.ari_user}"\npassword = "{settings.ari_password}"\n'
        f'app = "{app or settings.ari_app}"\n[media]\nrtp_port_min = 0\nrtp_port_max = 0\n[pipeline]\nkind = "echo"\n'
        f'[ami]\nenabled = false\n[api]\nenabled = false\n[storage]\nurl = "sqlite:///{workdir / "calls.db"}"\n'
        f'{spool}[log]\nformat = "json"\n' + extra
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


class LogTail:
    """Keeps reading a bridge process's log lines so tests can wait for one that has not come yet."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[bytes] = []
        self.ended = False
        self._new = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._new:
                self.lines.append(line)
                self._new.notify_all()
        async with self._new:  # the process exited: a waiter learns it now, not at its deadline
            self.ended = True
            self._new.notify_all()

    def text(self) -> str:
        return b"".join(self.lines).decode(errors="replace")

    async def wait_for(self, marker: bytes, timeout: float = 60.0, after: int = 0) -> bytes:
        """The first line from index `after` on that contains `marker`."""
        async with asyncio.timeout(timeout), self._new:
            while True:
                for line in self.lines[after:]:
                    if marker in line:
                        return line
                if self.ended or self._task.done():
                    raise AssertionError(f"the bridge exited before logging {marker!r}:\n{self.text()[-3000:]}")
                await self._new.wait()


async def start_bridge_up(
    workdir: Path, config: str, ports: dict[str, int], env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, LogTail]:
    """`bridge up` (a private Asterisk from asterisk/ plus the bridge) until it is connected to ARI."""
    path = workdir / "up.toml"
    path.write_text(config)
    options = [f"--{name}={port}" for name, port in ports.items()]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "up", "--config", str(path), "--state-dir", str(workdir / "state"), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **env},
    )  # fmt: skip
    assert process.stdout is not None
    tail = LogTail(process.stdout)
    await tail.wait_for(b"ari.connected", timeout=90)
    return process, tail
