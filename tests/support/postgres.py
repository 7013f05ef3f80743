"""A private PostgreSQL cluster for the storage tests: own temp dir, own port, trust auth on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL not found: install Debian's postgresql (scripts/test does this)")
    return Path(found[-1]).parent


class PrivatePostgres:
    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = _bin_dir()
        # Not under pytest's 0700 temp dirs: the server runs as the postgres user when we are root.
        self.base = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
        self.data = self.base / "data"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://bridge@127.0.0.1:{self.port}/calls"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_postgres, str(self.bin / tool), *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.base, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "bridge", "--auth=trust", "--no-sync")
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        # -w: pg_ctl returns once the server accepts connections (a real readiness check).
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "server.log"), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bridge", "calls")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
