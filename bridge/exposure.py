"""Refuses to run with a guessable password on a service that listens beyond this machine.

ARI and AMI can originate calls anywhere the dialplan reaches (toll fraud), so a default
password is harmless only while they listen on loopback. Off loopback the bridge will not start
with one, and says which key to change and how to make a good value.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.config import BridgeConfig, ConfigError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MIN_SECRET_LENGTH = 12
# Shipped defaults, vendor defaults and the usual first choices.
KNOWN_WEAK = frozenset({"change-me", "changeme", "password", "secret", "asterisk", "admin", "amp111", "freepbx"})
HOW_TO_MAKE_ONE = "e.g. the output of `openssl rand -hex 16`"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def weakness(secret: str) -> str | None:
    """Why a password is too weak to face a network, or None when it is fine."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"it has {len(secret)} characters (at least {MIN_SECRET_LENGTH} are needed)"
    lowered = secret.lower()
    if any(word in lowered for word in KNOWN_WEAK):
        return "it is or contains a well-known default password"
    if len(set(secret)) < 4:
        return "it repeats too few characters"
    return None


def require_strong(key: str, secret: str, where: str) -> None:
    reason = weakness(secret)
    if reason is not None:
        raise ConfigError(
            f"{key}: {where} listens beyond this machine and this password is weak: {reason}. "
            f"Set a random one ({HOW_TO_MAKE_ONE}), or keep the service on 127.0.0.1"
        )


def check_exposure(config: BridgeConfig) -> None:
    """ARI and AMI passwords must be strong when the bridge reaches them off loopback."""
    ari_host = urlsplit(config.ari.url).hostname or ""
    if not is_loopback(ari_host):
        require_strong(
            f"ari.password (or {config.ari.password_env})", config.ari.resolved_password(), f"ARI at {config.ari.url}"
        )
    ami_password = config.ami.resolved_password()
    if config.ami.enabled and ami_password and not is_loopback(config.ami.host):
        require_strong(
            f"ami.password (or {config.ami.password_env})", ami_password, f"AMI at {config.ami.host}:{config.ami.port}"
        )
