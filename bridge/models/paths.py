"""Where the bridge keeps what it builds: the private Asterisk and assembled model files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("BRIDGE_CACHE", Path.home() / ".cache" / "asterisk-ai-bridge"))


def models_dir() -> Path:
    return cache_root() / "models"


def data_root() -> Path:
    """Where the bridge keeps what it records (call database, messages): data, not cache."""
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return Path(os.environ.get("BRIDGE_DATA", base / "asterisk-ai-bridge"))
