"""Prometheus metrics from finished call records."""

from __future__ import annotations

from bridge.app.call import CallRecord
from bridge.app.metrics import BridgeMetrics, end_label


def test_a_finished_call_updates_the_counters_and_histograms() -> None:
    metrics = BridgeMetrics({"calls_active": lambda: 3})
    record = CallRecord("c1", "15550001111", "receptionist", end_reason="handed_back_to_dialplan:queue")
    record.conversation = {
        "barge_ins": 1,
        "errors": [],
        "turns": [{"outcome": "routing:transfer", "latency_ms": {"endpoint": 400, "first_frame_out": 520}}],
    }
    record.transfer = {"target": "sales", "outcome": "handed_over"}
    record.media = {"packets_in": 500, "packets_out": 510, "lost": 2, "malformed": 1}
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
    from bridge.speech.workers import WorkerState

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
