"""Weak ARI/AMI passwords are refused once the service listens beyond this machine."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, parse_config
from bridge.exposure import check_exposure, weakness


@pytest.mark.parametrize("secret", ["change-me", "short", "Change-Me-Please-123", "aaaaaaaaaaaaaaaa", "password1234"])
def test_guessable_passwords_are_weak(secret: str) -> None:
    assert weakness(secret) is not None


def test_a_random_password_is_strong() -> None:
    assert weakness("3f9c1a7be04d22c8") is None


def test_loopback_asterisk_accepts_any_password() -> None:
    check_exposure(parse_config({"ari": {"password": "change-me"}, "ami": {"password": "change-me"}}))


def test_off_loopback_ari_with_the_default_password_is_refused() -> None:
    config = parse_config({"ari": {"url": "http://192.0.2.10:8088", "password": "change-me"}})
    with pytest.raises(ConfigError, match=r"ari\.password .*weak.*openssl rand"):
        check_exposure(config)


def test_off_loopback_ami_with_a_short_password_is_refused() -> None:
    config = parse_config({"ari": {"password": "3f9c1a7be04d22c8"}, "ami": {"host": "192.0.2.10", "password": "abc"}})
    with pytest.raises(ConfigError, match=r"ami\.password .*3 characters"):
        check_exposure(config)
