"""Config reload while calls run: new calls get the new config, calls in progress carry on."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from bridge.config import ConfigError, parse_config
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import bridge_config, running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import caller_pcap
from tests.support.bridge_process import echo_config, read_until, start_bridge
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration

SALES_LINE = {"system_prompt": "You sell dental supplies.", "greeting": "Sales line, how can I help?"}


async def test_reload_applies_to_new_calls_only_and_refuses_bad_targets(
    asterisk: AsteriskInstance, workdir: Path
) -> None:
    target = ("127.0.0.1", asterisk.settings.sip_port)
    async with running_bridge(asterisk) as service:
        ongoing = SippCaller(workdir, target, caller_pcap(workdir, 6.0), service="18005550199", hold_ms=6000)
        first = asyncio.create_task(ongoing.run(timeout=30))
        for _ in range(250):
            if service.app.calls:
                break
            await asyncio.sleep(0.02)
        raw = bridge_config(asterisk)
        raw["pipeline"] = {"kind": "echo"}
        raw["personas"] = {"sales_line": SALES_LINE, "receptionist": {"system_prompt": "x", "greeting": "Hello."}}
        raw["conversation"] = {"personas_by_number": {"18005550199": "sales_line"}}
        assert await service.reload(parse_config(raw)) == []
        later = SippCaller(workdir, target, caller_pcap(workdir), service="18005550199", hold_ms=1500)
        second = await later.run(timeout=30)
        assert (await first).successful_calls == 1  # the call in progress was not dropped
        assert second.successful_calls == 1
        await wait_for_finished_calls(service, 2)
        personas = [record.persona for record in sorted(service.app.finished, key=lambda r: r.started_at)]

        raw["media"] = {**raw["media"], "jitter_depth": 5}  # type: ignore[dict-item]
        assert await service.reload(parse_config(raw)) == ["media"]
        assert service.config.media.jitter_depth == 3  # kept until a restart
        raw["routing"] = {
            "targets": {"x": {"kind": "queue", "destination": "nosuch", "description": "x"}},
            "operator": None,
        }
        with pytest.raises(ConfigError, match="reload refused"):
            await service.reload(parse_config(raw))
        assert set(service.config.routing.targets) == {"sales", "operator"}

    assert personas == ["receptionist", "sales_line"]


async def test_sighup_reloads_the_config_file(asterisk: AsteriskInstance, workdir: Path) -> None:
    config = workdir / "bridge.toml"
    base = echo_config(asterisk, workdir)
    config.write_text(base)
    process = await start_bridge(config)
    try:
        assert process.stdout is not None
        config.write_text(base + '[conversation]\npersonas_by_number = { "18005550199" = "receptionist" }\n')
        process.send_signal(signal.SIGHUP)
        await read_until(process.stdout, b"config.reloaded")
        config.write_text(base + "[vad]\naggressiveness = 3\n")
        process.send_signal(signal.SIGHUP)
        line = await read_until(process.stdout, b"config.reloaded")
    finally:
        process.terminate()
        await process.wait()
    assert b"vad" in line  # reported as needing a restart (models are loaded once)
