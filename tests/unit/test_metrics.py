"""Prometheus metrics from finished call records."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.records import CallRecord, ConversationReport, MediaSummary, TransferSummary, TurnRecord
from bridge.speech.workers import WorkerState
from bridge.web.metrics import BridgeMetrics, call_outcome, end_label


def test_a_finished_call_updates_the_counters_and_histograms() -> None:
    metrics = BridgeMetrics({"calls_active": lambda: 3})
    record = CallRecord("c1", "15550001111", "receptionist", end_reason="handed_back_to_dialplan:queue")
    record.conversation = ConversationReport(
        barge_ins=1,
        turns=[TurnRecord(outcome="routing:transfer", latency_ms={"endpoint": 400, "first_frame_out": 520})],
    )
    record.transfer = TransferSummary(target="sales", outcome="handed_over")
    record.media = MediaSummary(packets_in=500, packets_out=510, lost=2, malformed=1)
    metrics.observe(record)
    text = metrics.render().decode()
    assert "bridge_calls_active 3.0" in text
    assert 'bridge_calls_total{direction="inbound",end="handed_back_to_dialplan:queue"} 1.0' in text
    assert 'bridge_turn_latency_seconds_bucket{le="0.6",stage="first_frame_out"} 1.0' in text
    assert 'bridge_turn_latency_seconds_bucket{le="0.5",stage="first_frame_out"} 0.0' in text
    assert 'bridge_turns_total{outcome="routing"} 1.0' in text
    assert "bridge_barge_ins_total 1.0" in text
    assert 'bridge_transfers_total{outcome="handed_over",target="sales"} 1.0' in text
    assert 'bridge_rtp_problems_total{reason="malformed"} 1.0' in text


def test_end_labels_stay_few() -> None:
    assert end_label("caller:ChannelHangupRequest") == "caller"
    assert end_label("handed_back_to_dialplan:failed") == "handed_back_to_dialplan:failed"
    assert end_label("") == "unknown"


def test_model_threads_and_declined_calls_are_on_the_scrape() -> None:
    states = [WorkerState("stt", True, 0.0, False, 40, 1, 0), WorkerState("llm", True, 75.0, True, 900, 0, 2)]
    metrics = BridgeMetrics({}, lambda: states)
    declined = CallRecord("c2", "15550002222", "receptionist", end_reason="declined:at_capacity")
    metrics.observe(declined)
    text = metrics.render().decode()
    assert 'bridge_model_worker_up{worker="stt"} 1.0' in text
    assert 'bridge_model_worker_up{worker="llm"} 0.0' in text  # stuck
    assert 'bridge_model_worker_restarts_total{worker="llm"} 2.0' in text
    assert 'bridge_model_worker_failures_total{worker="stt"} 1.0' in text
    assert 'bridge_calls_declined_total{reason="at_capacity"} 1.0' in text
    assert 'bridge_calls_declined_total{reason="shutting_down"} 0.0' in text


def _record(end_reason: str, media_connected: bool = True, error: str = "", **parts: dict[str, Any]) -> CallRecord:
    stored = {"channel_id": "c", "caller": "15550001111", "persona": "receptionist", "end_reason": end_reason}
    return CallRecord.from_dict({**stored, "error": error, "media_connected": media_connected, **parts})


QUEUE = {"target": "sales", "kind": "queue", "outcome": "handed_over"}
SPOKE = {"turns": [{"caller": "what time do you open", "outcome": "answer"}]}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (_record("declined:at_capacity", media_connected=False), "declined"),
        (_record("handed_back_to_dialplan:queue", transfer=QUEUE), "transferred"),
        (
            _record(
                "transfer:ChannelHangupRequest",
                transfer={"target": "support", "kind": "extension", "outcome": "answered"},
                conversation={"end_reason": "transferred:support"},
            ),
            "transferred",
        ),
        (
            _record(
                "caller_goodbye",
                transfer={"target": "support", "kind": "extension", "outcome": "no_answer"},
                conversation={"end_reason": "caller_goodbye"},
            ),
            "answered",
        ),
        (_record("message_taken", conversation={"end_reason": "message_taken"}), "message"),
        (_record("handed_back_to_dialplan:failed", conversation={"end_reason": "backend_error"}), "failed"),
        (_record("handed_back_to_dialplan:failed", media_connected=False, error="ARI 500"), "failed"),
        (
            _record("caller:ChannelHangupRequest", conversation={"routing": {"refused": ["book me a flight"]}}),
            "refused",
        ),
        (_record("caller_goodbye", conversation={"end_reason": "caller_goodbye", **SPOKE}), "answered"),
        (_record("caller_silent", conversation={"end_reason": "caller_silent"}), "answered"),
        (_record("caller:ChannelHangupRequest", conversation=SPOKE), "answered"),
        (_record("caller:StasisEnd", media_connected=False), "abandoned"),
    ],
)
def test_each_call_counts_under_one_of_a_few_outcomes(record: CallRecord, expected: str) -> None:
    assert call_outcome(record) == expected


def test_calls_by_outcome_are_labelled_with_configured_personas_only() -> None:
    metrics = BridgeMetrics({}, personas=lambda: {"receptionist": None, "sales": None})
    metrics.observe(_record("message_taken", conversation={"end_reason": "message_taken"}))
    typo = _record("caller_goodbye", conversation={"end_reason": "caller_goodbye"})
    typo.persona = "recepshunist"  # a dialplan argument nobody configured
    metrics.observe(typo)
    text = metrics.render().decode()
    assert 'bridge_calls_by_outcome_total{outcome="message",persona="receptionist"} 1.0' in text
    assert 'bridge_calls_by_outcome_total{outcome="answered",persona="other"} 1.0' in text
    assert 'bridge_calls_by_outcome_total{outcome="failed",persona="sales"} 0.0' in text  # there before any call
    assert "recepshunist" not in text and "15550001111" not in text


def test_model_queue_depth_and_time_in_jobs_are_on_the_scrape() -> None:
    states = [WorkerState("stt", True, 0.0, False, 40, 0, 0, queued=3, job_seconds=12.5)]
    text = BridgeMetrics({}, lambda: states).render().decode()
    assert 'bridge_model_worker_queue_depth{worker="stt"} 3.0' in text
    assert 'bridge_model_worker_seconds_total{worker="stt"} 12.5' in text


DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "asterisk-ai-bridge.json"
_SELECTOR = re.compile(r"\b(bridge_[a-z0-9_]+)\b(?:\{([^}]*)\})?")
_MATCHER = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')
Selector = tuple[str, frozenset[tuple[str, str]]]


def dashboard_selectors() -> set[Selector]:
    """Each series the dashboard queries: the sample name as scraped (`_bucket`, `_total`
    included, so a counter queried as a histogram is caught) and its exact label matchers."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [variable.get("definition", "") for variable in dashboard["templating"]["list"]]
    selectors = set()
    for query in queries:
        for name, matchers in _SELECTOR.findall(query):
            exact = frozenset((label, value) for label, op, value in _MATCHER.findall(matchers) if op == "=")
            selectors.add((name, exact))
    return selectors


def missing_from(exposition: str, selectors: set[Selector]) -> list[str]:
    families = text_string_to_metric_families(exposition)
    samples = [(sample.name, sample.labels) for family in families for sample in family.samples]
    return sorted(
        f"{name}{dict(wanted)}"
        for name, wanted in selectors
        if not any(found == name and wanted <= labels.items() for found, labels in samples)
    )


def test_the_grafana_dashboard_is_importable_and_every_panel_queries_the_bridge() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39 and dashboard["uid"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and "bridge_" in target["expr"], panel["title"]
    titles = {panel["title"] for panel in panels}
    assert {"Calls per minute by outcome", "Voice-to-voice latency", "Model queue depth"} <= titles


def test_every_series_the_dashboard_queries_is_one_the_bridge_exports() -> None:
    live = ("calls_active", "ari_connected", "ami_connected", "outbound_active", "records_pending", "max_calls")
    states = [WorkerState("stt", True, 0.0, False, 4, 0, 0, 1, 0.8)]
    metrics = BridgeMetrics({name: lambda: 1.0 for name in live}, lambda: states, lambda: ["receptionist"])
    turn = {"outcome": "routing:transfer", "latency_ms": {"first_frame_out": 700}}
    record = _record("handed_back_to_dialplan:queue", transfer=QUEUE, conversation={"turns": [turn]})
    metrics.observe(record)
    assert missing_from(metrics.render().decode(), dashboard_selectors()) == []
