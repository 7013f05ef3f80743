"""The shipped Kamailio config (deploy/kamailio/) as a real private proxy: its own temp dir, its
own address and port, run in the foreground and stopped by its pid.

The config file itself is used unchanged; what differs per run (listen address, the node list,
the carrier addresses, probe interval) is passed as `-A` defines, as an operator would. Its
readiness and each node's state come from Kamailio itself (`kamcmd dispatcher.list` over the
ctl socket), never from a sleep.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import stop_server

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "kamailio" / "kamailio.cfg"


def require_kamailio() -> str:
    path = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
    if path is None:
        raise RuntimeError("kamailio not found: install Debian's kamailio (scripts/test does this)")
    return path


def _kamcmd() -> str:
    path = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
    if not Path(path).exists():
        raise RuntimeError("kamcmd not found: it comes with Debian's kamailio package")
    return path


@dataclass
class KamailioProxy:
    """Kamailio relaying calls for `dids` from `carriers` (source addresses) to `nodes` (SIP URIs)."""

    workdir: Path
    host: str
    port: int
    nodes: list[str]
    carriers: list[str]
    dids: str = "^1800555[0-9]{4}$"
    ping_interval: int = 1
    fr_timer_ms: int = 1500
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket(self) -> Path:
        return self.workdir / "kamailio_ctl"

    @property
    def log(self) -> Path:
        return self.workdir / "kamailio.log"

    def render(self) -> list[str]:
        """The node and carrier lists in the temp dir, and the command line that points at them."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        nodes = "".join(f"1 {uri} 8 0 duid=node{index}\n" for index, uri in enumerate(self.nodes))
        (self.workdir / "dispatcher.list").write_text(nodes)
        (self.workdir / "address.list").write_text("".join(f"1 {address} 32 0 carrier\n" for address in self.carriers))
        defines = {
            "LISTEN": f"udp:{self.host}:{self.port}",
            "SIP_DOMAIN": '"sip.bridge.test"',
            "DIDS": f'"{self.dids}"',
            "DISPATCHER_LIST": f'"{self.workdir / "dispatcher.list"}"',
            "ADDRESS_LIST": f'"{self.workdir / "address.list"}"',
            "CTL_SOCKET": f'"unix:{self.socket}"',
            "PING_INTERVAL": str(self.ping_interval),
            "FR_TIMER": str(self.fr_timer_ms),
            "LOG_LEVEL": "2",
        }
        options = [f"-A{name}={value}" for name, value in defines.items()]
        # -DD: stay in the foreground (the pid is Kamailio's main process); -E: log to stderr.
        return [
            require_kamailio(), "-f", str(CONFIG), "-DD", "-E", "-n", "2", "-Y", str(self.workdir),
            "-m", "64", "-M", "8", *options,
        ]  # fmt: skip

    def start(self, timeout: float = 20.0) -> None:
        command = self.render()
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"kamailio exited ({self.process.returncode}):\n{self.log_tail()}")
            if self.socket.exists() and self._states(check=False) is not None:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kamailio did not answer on {self.socket} in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def states(self) -> dict[str, str]:
        """Each node's dispatcher flags: 'AP' up (probed), 'IP' down, 'TP' failing."""
        found = self._states(check=True)
        assert found is not None
        return found

    def _states(self, check: bool) -> dict[str, str] | None:
        result = subprocess.run(
            [_kamcmd(), "-s", f"unix:{self.socket}", "dispatcher.list"], capture_output=True, text=True, timeout=5
        )
        if result.returncode != 0:
            if check:
                raise RuntimeError(f"kamcmd dispatcher.list failed: {result.stderr or result.stdout}")
            return None
        return dict(re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", result.stdout))

    def wait_for(self, uri: str, up: bool, timeout: float = 20.0) -> None:
        """Until the dispatcher has `uri` up (A) or down (I), from its probes or a failed call."""
        deadline = time.monotonic() + timeout
        want = "A" if up else "I"
        while True:
            flags = self.states().get(uri, "")
            if flags.startswith(want):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"kamailio did not mark {uri} {'up' if up else 'down'} in {timeout} s: {flags!r}")
            time.sleep(0.1)

    def wait_all_up(self, timeout: float = 20.0) -> None:
        for uri in self.nodes:
            self.wait_for(uri, up=True, timeout=timeout)

    def routed(self) -> list[str]:
        """The node each new call was relayed to, in order (the config logs `node <uri>` per try)."""
        return re.findall(r": node (sip:\S+)", self.log.read_text(errors="replace"))

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        stop_server(process)
