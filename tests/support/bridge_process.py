"""The bridge as a real process (`python -m bridge run`), for tests that kill it or signal it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bridge.pbx.instance import AsteriskInstance


def echo_config(
    asterisk: AsteriskInstance,
    workdir: Path,
    extra: str = "",
    app: str | None = None,
    spool_dir: Path | None = None,
    storage_url: str | None = None,
    node: str = "",
    pipeline: str = 'kind = "echo"\n',
) -> str:
    """A TOML config for an echo bridge on the test Asterisk (no models, no AMI, no API), as ARI
    app `app` (default: the instance's own). Several bridges at once need a `spool_dir` each; a
    cluster's bridges share one `storage_url` and say which `node` they are."""
    settings = asterisk.settings
    spool = f'spool_dir = "{spool_dir}"\n' if spool_dir is not None else ""
    named = f'node = "{node}"\n' if node else ""
    url = storage_url or f"sqlite:///{workdir / 'calls.db'}"
    return (
        f'[ari]\nurl = "{settings.ari_url}"\nusername = "{settings.ari_user}"\npassword = "{settings.ari_password}"\n'
        f'app = "{app or settings.ari_app}"\n[media]\nrtp_port_min = 0\nrtp_port_max = 0\n[pipeline]\n{pipeline}'
        f'[ami]\nenabled = false\n[api]\nenabled = false\n[storage]\nurl = "{url}"\n'
        f'{spool}{named}[log]\nformat = "json"\n' + extra
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


class BridgeRun:
    """`bridge run --config <config>` as a real process, named `name` in failures; ready once it
    has reconciled after its first ARI connect (the dialplan's BRIDGE_APPS has been read by then)."""

    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.log: LogTail | None = None

    async def start(self, timeout: float = 60.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "run", "--config", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.log = LogTail(self.process.stdout)
        await self.wait_for("stasis.reconciled", timeout=timeout)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log entries named `name` so far."""
        assert self.log is not None
        found = []
        for line in self.log.lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == name:
                    found.append(entry)
        return found

    async def wait_for(self, event: str, timeout: float = 20.0, after: int = 0) -> None:
        assert self.log is not None
        try:
            await self.log.wait_for(f'"event": "{event}"'.encode(), timeout=timeout, after=after)
        except TimeoutError:
            tail = self.log.text()[-3000:]
            raise AssertionError(f"{self.name} did not log {event} in {timeout} s:\n{tail}") from None

    async def kill(self) -> None:
        """SIGKILL: no drain, no hand-over; the app's channels stay in Stasis for a restart to rescue."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM with no grace: the bridge exits once its records are written."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(self.process.wait(), 30) == 0

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
