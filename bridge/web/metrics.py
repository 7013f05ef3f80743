"""Prometheus metrics: calls, turn latencies, barge-ins, transfers, RTP health, connections.

Counters are updated once per finished call from its record (never on the media path); gauges
read live state when scraped. Each service has its own registry, so several can run in one process.
Labels stay few: never a number or a call id; personas are the configured names (else "other").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.records import CallRecord, ConversationReport, MediaSummary
from bridge.speech.workers import WorkerState
from bridge.telephony.ending import HANDED_OVER
from bridge.web.call_story import OUTCOME_KINDS, OutcomeKind, outcome

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)


def _drops(media: MediaSummary) -> dict[str, int]:
    """RTP packets lost or dropped on the call, by reason (the label values of bridge_rtp_problems)."""
    return {
        "lost": media.lost,
        "late": media.late,
        "malformed": media.malformed,
        "foreign": media.foreign,
        "wrong_payload_type": media.wrong_payload_type,
        "wrong_size": media.wrong_size,
    }


def end_label(end_reason: str) -> str:
    """Few label values: 'caller', 'media', 'caller_goodbye', 'handed_back_to_dialplan:queue', ..."""
    if end_reason.startswith(HANDED_OVER):
        return end_reason
    return end_reason.split(":", 1)[0] or "unknown"


def call_outcome(record: CallRecord) -> OutcomeKind:
    """The call's ending in the history's own words, so a chart of bridge_calls_by_outcome_total
    and the dashboard's outcome filter count the same calls the same way."""
    return outcome(record).kind


def persona_label(persona: str, known: Collection[str] | None) -> str:
    """A configured persona's name; anything else (a typo in a dialplan argument) is 'other'."""
    if known is None:
        return persona or "other"
    return persona if persona in known else "other"


class BridgeMetrics:
    def __init__(
        self,
        live: dict[str, Callable[[], float]],
        workers: Callable[[], list[WorkerState]] = list,
        personas: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """`personas` reads the configured persona names (live, so a reload's new persona counts)."""
        self._personas = personas
        self.registry = registry = CollectorRegistry()
        registry.register(_WorkerCollector(workers))
        for name, read in live.items():
            Gauge(f"bridge_{name}", _LIVE_HELP.get(name, name), registry=registry).set_function(read)
        self.calls = Counter("bridge_calls", "Finished calls by ending", ["direction", "end"], registry=registry)
        self.outcomes = Counter(
            "bridge_calls_by_outcome",
            "Finished calls by outcome (answered, transferred, message, refused, declined, failed, abandoned)",
            ["outcome", "persona"],
            registry=registry,
        )
        for persona in personas() if personas is not None else ():
            for kind in OUTCOME_KINDS:
                self.outcomes.labels(kind, persona)  # present at 0, so rate() works from the first call
        self.turn_latency = Histogram(
            "bridge_turn_latency_seconds",
            "Per-turn stage completion after the caller's last voiced frame",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.turns = Counter("bridge_turns", "Caller turns by outcome", ["outcome"], registry=registry)
        self.barge_ins = Counter("bridge_barge_ins", "Times a caller talked over the agent", registry=registry)
        self.backend_errors = Counter("bridge_backend_errors", "Model backend failures", registry=registry)
        self.transfers = Counter(
            "bridge_transfers", "Transfers by target and outcome", ["target", "outcome"], registry=registry
        )
        self.declined = Counter(
            "bridge_calls_declined",
            "Inbound calls sent straight back to the dialplan (at_capacity: limits.max_calls; shutting_down)",
            ["reason"],
            registry=registry,
        )
        for reason in ("at_capacity", "shutting_down"):
            self.declined.labels(reason)  # present at 0, so alerts can use rate() from the start
        self.rtp_packets = Counter("bridge_rtp_packets", "RTP packets", ["direction"], registry=registry)
        self.rtp_dropped = Counter("bridge_rtp_problems", "RTP packets lost or dropped", ["reason"], registry=registry)

    def observe(self, record: CallRecord) -> None:
        self.calls.labels(record.direction, end_label(record.end_reason)).inc()
        known = self._personas() if self._personas is not None else None
        self.outcomes.labels(call_outcome(record), persona_label(record.persona, known)).inc()
        if record.end_reason.startswith("declined:"):
            self.declined.labels(record.end_reason.removeprefix("declined:")).inc()
            return
        conversation = record.conversation or ConversationReport()
        for turn in conversation.turns:
            self.turns.labels(turn.outcome.split(":", 1)[0]).inc()
            for stage, milliseconds in turn.latency_ms.items():
                self.turn_latency.labels(stage).observe(milliseconds / 1000)
        self.barge_ins.inc(conversation.barge_ins)
        self.backend_errors.inc(len(conversation.errors))
        if record.transfer is not None:
            self.transfers.labels(record.transfer.target, record.transfer.outcome).inc()
        media = record.media or MediaSummary()
        self.rtp_packets.labels("in").inc(media.packets_in)
        self.rtp_packets.labels("out").inc(media.packets_out)
        for reason, count in _drops(media).items():
            self.rtp_dropped.labels(reason).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _WorkerCollector(Collector):
    """The model threads as they are at scrape time (one label value per model: stt, tts, llm)."""

    def __init__(self, workers: Callable[[], list[WorkerState]]) -> None:
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        states = self._workers()
        up = GaugeMetricFamily(
            "bridge_model_worker_up", "1 while the model thread runs and is not stuck", labels=["worker"]
        )
        busy = GaugeMetricFamily(
            "bridge_model_worker_busy_seconds", "How long the model's current job has run", labels=["worker"]
        )
        jobs = CounterMetricFamily("bridge_model_worker_jobs", "Model jobs (LLM: steps) run", labels=["worker"])
        failures = CounterMetricFamily("bridge_model_worker_failures", "Model jobs that raised", labels=["worker"])
        restarts = CounterMetricFamily(
            "bridge_model_worker_restarts", "Times a dead or stuck model thread was replaced", labels=["worker"]
        )
        queued = GaugeMetricFamily(
            "bridge_model_worker_queue_depth",
            "Jobs waiting for the model thread (LLM: generations sharing it, running or waiting)",
            labels=["worker"],
        )
        seconds = CounterMetricFamily(
            "bridge_model_worker_seconds",
            "Time spent in model jobs; divided by the jobs' rate, the mean job (LLM: step) time",
            labels=["worker"],
        )
        for state in states:
            up.add_metric([state.name], float(state.healthy))
            busy.add_metric([state.name], state.busy_seconds)
            jobs.add_metric([state.name], state.jobs)
            failures.add_metric([state.name], state.failures)
            restarts.add_metric([state.name], state.restarts)
            queued.add_metric([state.name], state.queued)
            seconds.add_metric([state.name], state.job_seconds)
        yield from (up, busy, jobs, failures, restarts, queued, seconds)


_LIVE_HELP = {
    "calls_active": "Calls in progress",
    "ari_connected": "1 while the ARI events websocket is connected",
    "ami_connected": "1 while AMI is connected and logged in",
    "outbound_active": "Outbound calls ringing or in progress",
    "records_pending": "Finished calls not yet in the call database",
    "max_calls": "Calls the bridge takes at once (limits.max_calls)",
    "accepting_calls": "1 while new calls are taken; 0 while draining for shutdown",
}
