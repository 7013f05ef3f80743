"""The shipped docker-compose.yml is valid compose (checked by docker-compose itself, no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose not found: install Debian's docker-compose (scripts/test does this)")
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **env},
        cwd=REPO,
    )


def test_compose_file_is_valid_with_the_password_set() -> None:
    result = compose("config", env={"BRIDGE_ARI_PASSWORD": "x"})
    assert result.returncode == 0, result.stderr
    assert "network_mode: host" in result.stdout and "docker/Dockerfile" in result.stdout


def test_compose_refuses_to_start_without_the_ari_password() -> None:
    result = compose("config", env={})
    assert result.returncode != 0
    assert "set BRIDGE_ARI_PASSWORD" in result.stderr


def test_the_image_exposes_only_sip_rtp_and_wss() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    exposed = {port for line in dockerfile.splitlines() if line.startswith("EXPOSE") for port in line.split()[1:]}
    assert exposed == {"5060/udp", "8089/tcp", "10000-20000/udp"}
    # `bridge up --bind 0.0.0.0` opens SIP and WSS only; ARI and AMI keep their loopback default.
    assert "--manage-bind" not in dockerfile
