"""Nobody gets a call into Asterisk by naming an endpoint: `bridge up` as shipped, probed from outside.

The trunk is recognised by its address only; phones and the web phone by their user name plus a
digest password. INVITEs come from 127.0.0.2, a loopback address that is not the trunk's, so they
stand for a stranger on the network. sipvicious (svwar), the tool attackers run to find
extensions that take calls without a password, must find none.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import shutil
import signal
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bridge_process import LogTail, start_bridge_up
from tests.support.servers import free_tcp_port, free_udp_port
from tests.support.sip_probe import invite

pytestmark = pytest.mark.integration

STRANGER = "127.0.0.2"
TRUNK = "127.0.0.1"


@dataclass
class Up:
    sip_port: int
    http_port: int
    ari_password: str
    log: LogTail

    def channels(self) -> list[dict[str, object]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/ari/channels")
        token = base64.b64encode(f"ai-bridge:{self.ari_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            channels: list[dict[str, object]] = json.load(response)
        return channels


@pytest.fixture
async def bridge_up(tmp_path: Path) -> AsyncIterator[Up]:
    ports = {
        "sip-port": free_udp_port(),
        "http-port": free_tcp_port(),
        "ami-port": free_tcp_port(),
        "https-port": free_tcp_port(),
    }
    password = secrets.token_hex(16)
    config = (
        '[pipeline]\nkind = "echo"\n[api]\nenabled = false\n[log]\nformat = "json"\n'
        f'[storage]\nurl = "sqlite:///{tmp_path / "calls.db"}"\nspool_dir = "{tmp_path / "spool"}"\n'
    )
    process, log = await start_bridge_up(tmp_path, config, ports, {"BRIDGE_ARI_PASSWORD": password})
    try:
        yield Up(ports["sip-port"], ports["http-port"], password, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.mark.timeout(180)
async def test_invites_naming_an_endpoint_from_a_stranger_get_no_channel(bridge_up: Up) -> None:
    target = ("127.0.0.1", bridge_up.sip_port)
    for user, dialled in (("trunk", "18005550100"), ("agent-phone", "100"), ("webphone", "agent"), ("anyone", "100")):
        result = await invite(STRANGER, target, user, dialled)
        assert result.final in (401, 403), f"From {user} at {STRANGER}: {result.codes}"
        assert not any(200 <= code < 300 for code in result.codes)
    assert bridge_up.channels() == []
    assert "call.start" not in bridge_up.log.text()


@pytest.mark.timeout(180)
async def test_the_real_trunk_address_still_reaches_the_agent(bridge_up: Up) -> None:
    result = await invite(TRUNK, ("127.0.0.1", bridge_up.sip_port), "15551230000", "18005550100")
    assert result.final == 200, result.codes
    await bridge_up.log.wait_for(b"call.start", timeout=20)


@pytest.mark.timeout(240)
async def test_sipvicious_finds_no_extension_that_answers_without_a_password(bridge_up: Up, tmp_path: Path) -> None:
    svwar = shutil.which("svwar")
    if svwar is None:
        raise RuntimeError("svwar not found: install Debian's sipvicious (scripts/test does this)")
    names = tmp_path / "extensions.txt"
    # The shipped endpoint names, the numbers the dialplan answers, and the usual guesses.
    names.write_text(
        "\n".join(
            [
                "trunk",
                "webphone",
                "agent-phone",
                "agent",
                "18005550100",
                "100",
                "admin",
                "operator",
                "1000",
                "200",
                "201",
            ]
        )
        + "\n"
    )
    found: dict[str, str] = {}
    for method in ("REGISTER", "INVITE"):
        for selection in (["-d", str(names)], ["-e", "100-250"]):
            scan = await asyncio.create_subprocess_exec(
                svwar, "-p", str(bridge_up.sip_port), "-b", STRANGER, "-m", method, "--force", *selection, "127.0.0.1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await asyncio.wait_for(scan.communicate(), 120)
            text = output.decode(errors="replace")
            assert scan.returncode == 0, text
            for line in text.splitlines():
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                if len(cells) == 2 and cells[0] not in ("Extension", "") and not cells[0].startswith(("+", "=")):
                    found[f"{method} {cells[0]}"] = cells[1]
    assert "noauth" not in found.values(), found
    assert bridge_up.channels() == []
