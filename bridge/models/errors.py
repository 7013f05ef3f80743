"""The one error every model loader raises: it names the file and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class ModelFileError(Exception):
    """A model file is missing, corrupt or unloadable; the message says which and what to do."""


def require_files(directory: Path, names: Iterable[str], what: str) -> None:
    """Raise for the first missing file, saying what the directory should have been."""
    for name in names:
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory / name}: missing; {what}")
