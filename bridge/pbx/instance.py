"""A private Asterisk instance: its own directory, its own ports, started and stopped by us.

Used by the tests (one per test session), the benchmarks and `bridge up`. Readiness is checked
for real: `core waitfullybooted`, then an authenticated ARI request, never a sleep.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

from bridge.dialplan import apps_global
from bridge.models.paths import cache_root
from bridge.pbx.certs import CertificatePair, self_signed
from bridge.pbx.render import render_config_dir
from bridge.private_files import private_directory

DEFAULT_CACHE = cache_root()


class AsteriskNotInstalled(RuntimeError):
    pass


class AsteriskStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class AsteriskInstall:
    """Where the Asterisk binary, its modules and its data (sounds) are."""

    binary: Path
    module_dir: Path
    data_dir: Path

    @classmethod
    def find(cls, prefix: Path | None = None) -> AsteriskInstall:
        prefix = prefix or Path(os.environ.get("BRIDGE_ASTERISK_PREFIX", DEFAULT_CACHE / "asterisk"))
        private = cls(
            prefix / "bin" / "asterisk",
            prefix / "root/usr/lib/x86_64-linux-gnu/asterisk/modules",
            prefix / "root/usr/share/asterisk",
        )
        if private.binary.exists():
            return private
        system = shutil.which("asterisk")
        if system:
            for modules in ("/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/asterisk/modules"):
                if Path(modules).is_dir():
                    return cls(Path(system), Path(modules), Path("/usr/share/asterisk"))
        raise AsteriskNotInstalled(
            f"Asterisk not found in {prefix} nor on PATH; install it with scripts/install_asterisk.sh"
        )


@dataclass
class AsteriskSettings:
    """The values that make one instance distinct; defaults are the product's standard ports."""

    sip_port: int = 5060
    http_port: int = 8088
    https_port: int = 8089
    ami_port: int = 5038
    rtp_start: int = 10000
    rtp_end: int = 20000
    bind_host: str = "127.0.0.1"  # SIP and HTTPS/WSS (browser callers)
    manage_host: str = "127.0.0.1"  # plain HTTP (ARI) and AMI: loopback unless told otherwise
    ari_user: str = "ai-bridge"
    ari_password: str = "change-me"
    ari_app: str = "ai-bridge"
    # Every bridge's app on this Asterisk (the dialplan's BRIDGE_APPS); empty: ari_app alone.
    ari_apps: tuple[str, ...] = ()
    # asterisk.conf systemname: set per node when several Asterisks share one call database.
    system_name: str = ""
    ami_user: str = "ai-bridge"
    ami_password: str = "change-me"
    fallback_queue: str = "support"
    trunk_host: str = "127.0.0.1"
    trunk_match: str = "127.0.0.1"
    webphone_user: str = "webphone"
    webphone_password: str = "change-me"
    # The outbound-only staff endpoint's inbound password: random, so nobody can call in as it.
    agent_phone_password: str = field(default_factory=lambda: secrets.token_hex(16))
    # None: a self-signed certificate is made in the instance's keys directory.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def values(self, etc_dir: Path, var_dir: Path, install: AsteriskInstall) -> dict[str, str]:
        tls = self.certificate(var_dir / "keys")
        return {
            "ETC_DIR": str(etc_dir),
            "VAR_DIR": str(var_dir),
            "MODULE_DIR": str(install.module_dir),
            "MOH_DIR": str(var_dir / "moh"),
            "DATA_DIR": str(install.data_dir),
            "SIP_BIND": self.bind_host,
            "SIP_PORT": str(self.sip_port),
            "HTTP_BIND": self.manage_host,
            "HTTPS_BIND": self.bind_host,
            "HTTP_PORT": str(self.http_port),
            "AMI_BIND": self.manage_host,
            "AMI_PORT": str(self.ami_port),
            "RTP_START": str(self.rtp_start),
            "RTP_END": str(self.rtp_end),
            "ARI_USER": self.ari_user,
            "ARI_PASSWORD": self.ari_password,
            "ARI_APPS": apps_global(self.ari_apps or (self.ari_app,)),
            "ARI_ALLOWED_ORIGINS": f"localhost:{self.http_port}",
            "AMI_USER": self.ami_user,
            "AMI_PASSWORD": self.ami_password,
            "FALLBACK_QUEUE": self.fallback_queue,
            "TRUNK_HOST": self.trunk_host,
            "TRUNK_MATCH": self.trunk_match,
            "HTTPS_PORT": str(self.https_port),
            "TLS_CERT": str(tls.cert_file),
            "TLS_KEY": str(tls.key_file),
            "WEBPHONE_USER": self.webphone_user,
            "WEBPHONE_PASSWORD": self.webphone_password,
            "AGENT_PHONE_PASSWORD": self.agent_phone_password,
            "WEBRTC_MEDIA_BIND": self._webrtc_media_bind(),
            "SYSTEM_NAME": f"systemname = {self.system_name}" if self.system_name else "",
            **self.extra,
        }

    def certificate(self, keys_dir: Path) -> CertificatePair:
        if self.tls_cert is not None and self.tls_key is not None:
            return CertificatePair(self.tls_cert.resolve(), self.tls_key.resolve())
        return self_signed(keys_dir, [self.bind_host, "localhost"] if self.bind_host != "localhost" else None)

    def _webrtc_media_bind(self) -> str:
        """Browser media on the address Asterisk listens on (also its only ICE host candidate).

        Bound to all addresses, Asterisk offers every interface as a candidate, as it should.
        """
        if self.bind_host in ("0.0.0.0", "::", ""):
            return ""
        return f"media_address = {self.bind_host}\nbind_rtp_to_media_address = yes"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.bind_host}:{self.https_port}/ws"

    @property
    def ari_url(self) -> str:
        host = "127.0.0.1" if self.manage_host in ("0.0.0.0", "::", "") else self.manage_host
        return f"http://{host}:{self.http_port}"


class AsteriskInstance:
    def __init__(self, base_dir: Path, settings: AsteriskSettings, install: AsteriskInstall | None = None) -> None:
        self.base_dir = base_dir.resolve()
        self.settings = settings
        self.install = install or AsteriskInstall.find()
        self.etc_dir = self.base_dir / "etc"
        self.var_dir = self.base_dir / "var"
        self.config_file = self.etc_dir / "asterisk.conf"
        self.output_log = self.base_dir / "asterisk.out"
        self.process: subprocess.Popen[bytes] | None = None

    def render(self) -> None:
        render_config_dir(self.etc_dir, self.settings.values(self.etc_dir, self.var_dir, self.install))
        for sub in ("cache", "lib", "keys", "moh", "spool", "spool/recording", "run", "log", "sbin"):
            private_directory(self.var_dir / sub)  # call recordings, voicemail, the TLS key

    def start(self, timeout: float = 30.0) -> None:
        self.render()
        with self.output_log.open("ab") as output:
            self.process = subprocess.Popen(
                [str(self.install.binary), "-f", "-C", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AsteriskStartError(f"Asterisk not fully booted in {timeout:.0f} s\n{self.log_tail()}")
            result = self.cli("core waitfullybooted", timeout=remaining, check=False)
            if result.returncode == 0 and "fully booted" in result.stdout:
                break
            time.sleep(0.05)  # control socket not created yet; poll again
        while not self.ari_answers():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AsteriskStartError(f"ARI did not answer on {self.settings.ari_url}\n{self.log_tail()}")
            time.sleep(0.05)

    def ari_answers(self) -> bool:
        settings = self.settings
        token = b64encode(f"{settings.ari_user}:{settings.ari_password}".encode()).decode()
        request = urllib.request.Request(
            f"{settings.ari_url}/ari/asterisk/info", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def cli(self, command: str, timeout: float = 10.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.install.binary), "-C", str(self.config_file), "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AsteriskStartError(f"asterisk -rx {command!r} failed: {result.stderr or result.stdout}")
        return result

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.cli("core stop now", timeout=timeout, check=False)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.output_log.exists():
            return ""
        return "\n".join(self.output_log.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AsteriskStartError(
                f"Asterisk exited with code {self.process.returncode} during start-up\n{self.log_tail()}"
            )
