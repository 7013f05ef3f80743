"""The shipped Grafana dashboard charts series the bridge really exports, after a real call.

One caller asks the local agent (real models) for billing through a real Asterisk; the call is
handed to a dialplan target. Then every series a panel queries, with its exact label matchers,
must be on the bridge's own scrape: a renamed metric or a typo in a panel fails here, not on an
operator's empty chart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.conversation.agent import Agent
from bridge.media.codecs import codec_for
from bridge.pbx.instance import AsteriskInstance
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.support.pcap import write_rtp_pcap
from tests.support.sipp import SippCaller
from tests.support.speech import caller_says, silence
from tests.unit.test_metrics import dashboard_selectors, missing_from

pytestmark = pytest.mark.integration

BILLING = {
    "kind": "dialplan",
    "destination": "bridge-tests,vars,1",
    "description": "our billing team",
    "phrases": ["billing", "invoice", "bill"],
}


def sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    raise AssertionError(f"no sample {name}{labels}")


async def test_every_series_the_dashboard_queries_is_on_the_scrape_after_a_real_call(
    asterisk: AsteriskInstance, workdir: Path, agent: Agent
) -> None:
    audio = silence(5.0) + caller_says("Hi, I need some help with billing.") + silence(8.0)
    pcap = workdir / "billing.pcap"
    write_rtp_pcap(pcap, audio, codec_for("ulaw"))
    caller = SippCaller(workdir, ("127.0.0.1", asterisk.settings.sip_port), pcap, hold_ms=int(len(audio) / 16) + 300)
    routing: dict[str, object] = {"routing": {"targets": {"billing": BILLING}, "operator": None}}
    async with running_bridge(asterisk, agent=agent, overrides=routing) as service:
        await caller.run(timeout=90)  # the dialplan target hangs up on the caller: sipp calls that a failure
        await wait_for_finished_calls(service, 1)
        (record,) = service.app.finished
        exposition = service.metrics.render().decode()
        persona = service.config.conversation.default_persona

    assert record.end_reason == "handed_back_to_dialplan:dialplan", record
    assert missing_from(exposition, dashboard_selectors()) == []
    # The call is counted where the panels look for it, under labels an operator can read.
    assert sample(exposition, "bridge_calls_by_outcome_total", outcome="transferred", persona=persona) == 1
    assert sample(exposition, "bridge_transfers_total", target="billing", outcome="handed_over") == 1
    assert sample(exposition, "bridge_turn_latency_seconds_count", stage="first_frame_out") >= 1
    assert sample(exposition, "bridge_model_worker_seconds_total", worker="stt") > 0
    assert sample(exposition, "bridge_model_worker_queue_depth", worker="stt") == 0
    assert record.caller not in exposition and record.channel_id not in exposition
