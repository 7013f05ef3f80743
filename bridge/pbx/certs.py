"""A self-signed TLS certificate for Asterisk's HTTPS/WSS server (browsers need WSS for WebRTC).

Local use only: a browser accepts it after the user opens https://HOST:PORT/ once and confirms,
or with a flag in tests. Production sites point tls.cert_file/tls.key_file (or `bridge up
--tls-cert/--tls-key`) at a real certificate instead. Made with the openssl command, which every
Debian machine has, so no crypto library is added for a one-off file.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bridge.private_files import private_directory


class CertificateError(RuntimeError):
    pass


@dataclass(frozen=True)
class CertificatePair:
    cert_file: Path
    key_file: Path


def _subject_alt_names(hosts: list[str]) -> str:
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def self_signed(directory: Path, hosts: list[str] | None = None, days: int = 825) -> CertificatePair:
    """Write cert.pem/key.pem for `hosts` into `directory` unless both are already there."""
    pair = CertificatePair(directory / "cert.pem", directory / "key.pem")
    if pair.cert_file.exists() and pair.key_file.exists():
        return pair
    names = hosts or ["localhost", "127.0.0.1"]
    private_directory(directory)
    command = [
        "openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", str(pair.key_file), "-out", str(pair.cert_file), "-days", str(days),
        "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={_subject_alt_names(names)}",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CertificateError("openssl not found: install it (apt-get install openssl)") from None
    if result.returncode != 0:
        raise CertificateError(f"openssl could not make a certificate: {result.stderr.strip()}")
    pair.key_file.chmod(0o600)
    return pair
