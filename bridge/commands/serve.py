"""`bridge run`: serve calls until a signal; SIGTERM drains, SIGHUP re-reads the config."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bridge.background import BackgroundTasks
from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.exposure import check_exposure

if TYPE_CHECKING:
    from bridge.app.service import BridgeService


def serve(config: BridgeConfig, path: Path | None = None) -> int:
    from bridge.app.service import BridgeService

    check_exposure(config)
    service = BridgeService(config)

    async def _main() -> None:
        task = asyncio.create_task(service.run())
        loop = asyncio.get_running_loop()
        draining: list[asyncio.Task[None]] = []

        def stop() -> None:
            """First signal: drain (no new calls, grace for those in progress); a second: now."""
            if draining:
                task.cancel()
                return
            structlog.get_logger("bridge.cli").info(
                "bridge.stopping", grace_seconds=config.limits.shutdown_grace_seconds
            )
            draining.append(loop.create_task(service.drain()))
            draining[0].add_done_callback(lambda _: task.cancel())

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        reloads: BackgroundTasks[None] = BackgroundTasks()

        def reload_soon() -> None:
            reloads.start(_reload(service, path))

        loop.add_signal_handler(signal.SIGHUP, reload_soon)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(_main())
    return 0


async def _reload(service: BridgeService, path: Path | None) -> None:
    """SIGHUP: re-read the config file; calls in progress are not touched.

    Each SIGHUP reads the file at once; BridgeService.reload applies them one at a time, in order.
    """
    log = structlog.get_logger("bridge.cli")
    if path is None:
        log.warning("config.reload_skipped", hint="started without --config: nothing to re-read")
        return
    try:
        restart = await service.reload(load_config(path))
    except ConfigError as error:
        log.error("config.reload_failed", error=str(error), hint="the running config stays in force")
        return
    if restart:
        log.warning("config.restart_needed", sections=restart)
