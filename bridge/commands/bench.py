"""`bridge bench`: the benchmarks live in scripts/ (they drive sipp and a private Asterisk)."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.commands import EXIT_CONFIG


def bench(which: str, options: list[str]) -> int:
    """Run scripts/bench_<which>.py with `options`, from the checkout this package is in."""
    script = Path(__file__).resolve().parents[2] / "scripts" / f"bench_{which}.py"
    if not script.is_file():
        print(f"bridge bench: {script} not found; run it from a source checkout (scripts/test sets it up)")
        return EXIT_CONFIG
    import subprocess

    return subprocess.call([sys.executable, str(script), *options], cwd=script.parents[1])
