"""Servers as real processes for the tests: a free port for one, start it, wait until it answers, stop it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing uses now (the OS picks it; another process could take it
    before the server binds it, which on a test machine does not happen in practice)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


def free_udp_port() -> int:
    return free_port(socket.SOCK_DGRAM)


def start_server(
    command: list[str], log: Path, ready: Callable[[], bool], what: str, seconds: float = 120
) -> subprocess.Popen[bytes]:
    """Start `command` (output to `log`) and poll `ready()` until true, with a deadline; a server
    that exits or never gets ready fails with the end of its log."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        if ready():
            return process
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"{what} was not ready in {seconds:.0f} s:\n{log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
