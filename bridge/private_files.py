"""Files that hold secrets or callers' words: only the bridge's own user may read them.

Modes are set explicitly rather than left to the umask, which is 022 on most systems (so a
plain write is world-readable) and is whatever the service manager chose under systemd.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


def private_directory(path: Path) -> Path:
    """Make `path` (and any missing parents) owner-only; a directory that already exists is left as it is,
    since its owner may share it on purpose."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        folder.chmod(PRIVATE_DIRECTORY)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, which is owner-only from its first byte (an existing file is narrowed too)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(descriptor, PRIVATE_FILE)  # O_CREAT's mode applies to new files only
        file.write(data)
