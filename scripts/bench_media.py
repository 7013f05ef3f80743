#!/usr/bin/env python3
"""Media-plane benchmark: N concurrent sipp calls through a private Asterisk into one bridge (echo).

Prints, per load level: calls set up, inbound frames lost (sequence gaps seen by the jitter
buffer), outbound send-interval error p50/p99/max, media-clock slips, and CPU per call for the
bridge process and for Asterisk. The bridge runs in this process (the driver itself is idle while
measuring); sipp and Asterisk are separate processes on the same 2 cores.

    .venv/bin/python scripts/bench_media.py --calls 10,50,100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.app.service import BridgeService
from bridge.config import BridgeConfig, parse_config
from bridge.logs import configure_logging
from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance, AsteriskSettings
from tests.support.audio import tone
from tests.support.pcap import write_rtp_pcap
from tests.support.servers import free_tcp_port, free_udp_port
from tests.support.sipp import SippCaller


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def start_private_asterisk(prefix: str) -> tuple[Path, AsteriskInstance]:
    """A private Asterisk on free ports in a new temp dir, for one benchmark run."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    settings = AsteriskSettings(
        sip_port=free_udp_port(), http_port=free_tcp_port(), ami_port=free_tcp_port(), https_port=free_tcp_port(),
        rtp_start=30000, rtp_end=39999, ari_password="bench", ari_app="bench",
    )  # fmt: skip
    asterisk = AsteriskInstance(workdir / "asterisk", settings)
    asterisk.start()
    return workdir, asterisk


def bench_config(asterisk: AsteriskInstance, pipeline: str) -> BridgeConfig:
    settings = asterisk.settings
    return parse_config(
        {
            "ari": {"url": settings.ari_url, "username": settings.ari_user, "password": settings.ari_password,
                    "app": settings.ari_app},
            "media": {"format": "ulaw", "rtp_port_min": 0, "rtp_port_max": 0},
            "pipeline": {"kind": pipeline},
            "log": {"level": "warning"},
            "ami": {"port": settings.ami_port, "username": settings.ami_user, "password": settings.ami_password},
            "api": {"enabled": False},
            "storage": {"url": f"sqlite:///{asterisk.base_dir / 'calls.db'}",
                        "spool_dir": str(asterisk.base_dir / "spool")},
        }
    )  # fmt: skip


async def run_level(asterisk: AsteriskInstance, workdir: Path, calls: int, seconds: float) -> dict[str, float]:
    settings = asterisk.settings
    service = BridgeService(bench_config(asterisk, "echo"))
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.events.connected.wait(), 10)
    ulaw = codec_for("ulaw")
    pcap = workdir / f"tone-{calls}.pcap"
    ramp = 2 * calls / 50.0 + 3  # set-up can lag the call rate when the cores are saturated
    sent_packets = write_rtp_pcap(pcap, tone(440, seconds + ramp + 2, 8000), ulaw)
    caller = SippCaller(
        workdir, ("127.0.0.1", settings.sip_port), pcap, hold_ms=int((seconds + ramp + 2) * 1000),
        calls=calls, concurrent=calls, rate=50, sip_port=free_udp_port(),
    )  # fmt: skip
    sipp = asyncio.create_task(caller.run(timeout=seconds + ramp + 60))
    deadline = time.monotonic() + ramp + 20
    while sum(c.record.media_connected for c in service.app.calls.values()) + len(service.app.finished) < calls:
        if time.monotonic() > deadline or sipp.done():
            break
        await asyncio.sleep(0.05)
    connected = sum(c.record.media_connected for c in service.app.calls.values())
    await asyncio.sleep(1.0)  # let every stream reach steady state before the measured window
    window = min(seconds, 5.0)
    assert asterisk.process is not None
    cpu0, ast0, t0 = own_cpu_seconds(), process_cpu_seconds(asterisk.process.pid), time.monotonic()
    await asyncio.sleep(window)
    cpu1, ast1, t1 = own_cpu_seconds(), process_cpu_seconds(asterisk.process.pid), time.monotonic()
    sessions = [c.rtp for c in service.app.calls.values() if c.rtp is not None]
    intervals = [v for s in sessions for v in s.stats.send_interval_error.values()]
    lateness = service.clock.lateness.values()
    slips = service.clock.slips
    result = await sipp
    await asyncio.sleep(0.5)
    records = list(service.app.finished)
    lost = sum(r.as_dict()["media"].get("lost", 0) + r.as_dict()["media"].get("late", 0) for r in records)
    received = sum(r.as_dict()["media"].get("packets_in", 0) for r in records)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    wall = t1 - t0
    return {
        "calls": calls,
        "connected": connected,
        "setup_failed": sum(1 for r in service.app.finished if r.error),
        "sipp_ok": result.successful_calls,
        "frames_in": received,
        "frames_lost": lost,
        "loss_pct": 100.0 * lost / max(1, received + lost),
        "sent_per_call_pcap": sent_packets,
        "send_err_p50_ms": 1000 * percentile(intervals, 0.50),
        "send_err_p99_ms": 1000 * percentile(intervals, 0.99),
        "send_err_max_ms": 1000 * max(intervals, default=0.0),
        "tick_late_p99_ms": 1000 * percentile(lateness, 0.99),
        "clock_slips": slips,
        "bridge_cpu_pct_per_call": 100 * (cpu1 - cpu0) / wall / max(1, connected),
        "bridge_cpu_pct_total": 100 * (cpu1 - cpu0) / wall,
        "asterisk_cpu_pct_total": 100 * (ast1 - ast0) / wall,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="10,50,100", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per call after ramp-up")
    args = parser.parse_args()
    configure_logging("warning")
    workdir, asterisk = start_private_asterisk("bench-media-")
    print(f"machine: {os.cpu_count()} cores; Asterisk: {asterisk.install.binary}", flush=True)
    columns = None
    try:
        for calls in [int(n) for n in args.calls.split(",")]:
            row = await run_level(asterisk, workdir, calls, args.seconds)
            if columns is None:
                columns = list(row)
                print(" | ".join(columns))
            cells = (f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
            print(" | ".join(cells), flush=True)
    finally:
        asterisk.stop()


if __name__ == "__main__":
    asyncio.run(main())
