"""The dashboard as an operator sees it, in the real Chromium, over a database of real calls.

22+ calls go through the real Asterisk into the real bridge: echo calls (some over max_calls, so
declined to the fallback queue) and conversations with the real local agent (one talking over
the greeting: a barge-in). Then the page is checked the way a person would look at it: the
outcomes in words, charts drawn with data points, a filter and its CSV, a call's conversation
and waterfall, and the call recording playing in the page. Screenshots land in the test's tmp
directory for review.
"""

from __future__ import annotations

import asyncio
import csv
import io
import socket
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from bridge.conversation.agent import Agent
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import caller_pcap
from tests.integration.test_routing import place_call
from tests.support.browser import CHROMIUM, QUIET_FLAGS
from tests.support.servers import free_port as _free_port
from tests.support.sipp import SippCaller
from tests.support.speech import caller_says, silence

pytestmark = pytest.mark.integration

PASSWORD = "dashboard-test-password"
ECHO_CALLS = 18
AGENT_QUESTIONS = ("What are your opening hours?", "Where are you located?", "Do you have parking?")


@pytest.mark.timeout(480)
async def test_an_operator_reads_the_dashboard_of_real_calls(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's chromium (scripts/test does this)")
    monkeypatch.setenv("TEST_DASHBOARD_PASSWORD", PASSWORD)
    storage = {"url": f"sqlite:///{workdir / 'calls.db'}", "spool_dir": str(workdir / "spool"), "record_calls": True}

    # Echo calls, six at a time against a limit of four: some are declined to the fallback queue.
    async with running_bridge(asterisk, None, overrides={"storage": storage, "limits": {"max_calls": 4}}) as echo:
        target = ("127.0.0.1", asterisk.settings.sip_port)
        caller = SippCaller(workdir, target, caller_pcap(workdir), hold_ms=2500, calls=ECHO_CALLS, concurrent=6)
        result = await caller.run(timeout=120)
        assert result.successful_calls == ECHO_CALLS, result.output
        await wait_for_finished_calls(echo, ECHO_CALLS, timeout=30)
        assert await echo.records.drain(10)
    declined = sum(record.end_reason.startswith("declined:") for record in echo.app.finished)
    assert declined >= 1

    port = _free_port(socket.SOCK_STREAM)
    api = {"enabled": True, "port": port, "dashboard_password_env": "TEST_DASHBOARD_PASSWORD"}
    base = f"http://127.0.0.1:{port}"
    async with running_bridge(asterisk, agent=agent, overrides={"storage": storage, "api": api}) as service:
        talks = [
            place_call(asterisk, workdir, silence(4.0) + caller_says(question) + silence(7.0), f"agent-{index}")
            for index, question in enumerate(AGENT_QUESTIONS)
        ]
        # Talking straight over the greeting: a barge-in.
        talks.append(
            place_call(
                asterisk, workdir, silence(0.6) + caller_says("Hello, is anybody there?") + silence(7.0), "barge"
            )
        )
        await asyncio.gather(*talks)
        await wait_for_finished_calls(service, len(talks), timeout=60)
        assert await service.records.drain(10)
        assert await service.store.count() >= 20
        conversation_call = next(
            r for r in service.app.finished if r.as_dict()["conversation"].get("turns") and r.recording
        )

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=QUIET_FLAGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            await page.goto(f"{base}/dashboard")
            assert page.url.endswith("/login")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button")
            await page.wait_for_url(f"{base}/dashboard")
            await page.wait_for_function("window.bridgeChartsReady === true", timeout=15000)
            charts = await page.evaluate("window.bridgeCharts")
            for name in ("chart-outcomes", "chart-targets", "chart-latency", "chart-events"):
                assert charts[name]["points"] > 0, (name, charts)
                assert await page.locator(f"#{name} canvas").count() == 1, name
            outcomes = await page.locator("#history td.outcome").all_inner_texts()
            assert len(outcomes) >= 20
            assert "answered, caller hung up" in outcomes
            assert "declined, to the next bridge or the fallback queue: the bridge was at capacity" in outcomes
            await page.screenshot(path=str(workdir / "dashboard.png"), full_page=True)

            await page.select_option("select[name=outcome]", "declined")
            await page.click("form.filters button")
            await page.wait_for_load_state("load")
            shown = await page.locator("#history td.outcome").all_inner_texts()
            assert shown and set(shown) == {
                "declined, to the next bridge or the fallback queue: the bridge was at capacity"
            }
            async with page.expect_download() as download_info:
                await page.click("text=Export CSV")
            download = await download_info.value
            text = await asyncio.to_thread(Path(await download.path()).read_text)
            exported = list(csv.DictReader(io.StringIO(text)))
            assert len(exported) == len(shown) == declined
            assert {row["outcome_kind"] for row in exported} == {"declined"}

            await page.goto(f"{base}/dashboard/calls/{conversation_call.channel_id}")
            lines = await page.locator(".conversation li").all_inner_texts()
            assert lines[0].startswith("0:00") and "greeting" in lines[0]
            assert any("caller" in line for line in lines)
            assert await page.locator(".wf-row").count() >= 1
            assert await page.locator(".wf-bar .seg").count() >= 4  # labelled stages, scaled bars
            audio = page.locator("audio").first
            await audio.evaluate("a => a.play()")
            await page.wait_for_function(
                "() => { const a = document.querySelector('audio'); return !a.paused && a.currentTime > 0.2; }",
                timeout=15000,
            )
            await page.screenshot(path=str(workdir / "call.png"), full_page=True)
            await browser.close()
    for shot in ("dashboard.png", "call.png"):
        assert (workdir / shot).stat().st_size > 10_000
