"""Render the repository's asterisk/ config set with concrete values.

One source of truth: the product and every test instance use the same files, differing only in
the values (ports, directories, credentials). Placeholders look like {{NAME}}, which never occurs
in Asterisk syntax; a placeholder with no value is an error, not a silent blank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from bridge.private_files import private_directory, write_private

PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
CONFIG_SOURCE = Path(__file__).resolve().parents[2] / "asterisk"


class RenderError(Exception):
    pass


def render_text(text: str, values: Mapping[str, str], name: str = "template") -> str:
    missing = sorted({key for key in PLACEHOLDER.findall(text) if key not in values})
    if missing:
        raise RenderError(f"{name}: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def render_config_dir(target: Path, values: Mapping[str, str], source: Path = CONFIG_SOURCE) -> list[Path]:
    """Write every *.conf from `source` into `target` with placeholders filled in.

    They hold the ARI, AMI and SIP passwords, so they are owner-only (Asterisk runs as our user).
    """
    private_directory(target)
    written = []
    for template in sorted(source.glob("*.conf")):
        output = target / template.name
        write_private(output, render_text(template.read_text(), values, template.name).encode("utf-8"))
        written.append(output)
    if not written:
        raise RenderError(f"no *.conf templates in {source}")
    return written
