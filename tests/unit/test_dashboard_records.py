"""The dashboard reads typed records: a live call's JSON is the shape the page's script has always
read, and a call's page comes from its stored JSON or, while it runs, from the live call."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.records import CallRecord, ConversationReport, RoutingReport, TurnRecord
from bridge.web.dashboard import Dashboard, LiveCall

LIVE = LiveCall(
    "live-1",
    "15551230000",
    "receptionist",
    "inbound",
    12.5,
    ConversationReport(
        "receptionist",
        greeting="Hello, Sam here.",
        turns=[TurnRecord(0, "are you open", "We open at nine.", outcome="answered", at_s=2.5)],
        speaking="Anything else?",
    ),
)


class StoredCalls:
    """The call database as the call page asks it: one stored call, by id."""

    def __init__(self, record: CallRecord) -> None:
        self.rows = {record.channel_id: {"id": record.channel_id, "record": record.as_dict()}}

    async def get(self, call_id: str) -> dict[str, Any] | None:
        return self.rows.get(call_id)


async def signed_in_client(live: list[LiveCall], stored: CallRecord) -> TestClient[Any, Any]:
    dashboard = Dashboard("pw", lambda: live, StoredCalls(stored))  # type: ignore[arg-type]
    app = web.Application()
    dashboard.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    login = await client.post("/login", data={"password": "pw"}, allow_redirects=False)
    assert login.status == 303
    return client


def finished_call() -> CallRecord:
    record = CallRecord("done-1", "15550001111", "receptionist", started_at=100.0)
    record.ended_at, record.end_reason = 130.0, "caller:ChannelHangupRequest"
    record.conversation = ConversationReport(
        turns=[TurnRecord(0, "sales please", "Putting you through.", latency_ms={"first_frame_out": 640})],
        routing=RoutingReport(intent="sales"),
        barge_ins=2,
    )
    return record


async def test_live_calls_are_served_as_the_json_the_page_reads() -> None:
    client = await signed_in_client([LIVE], finished_call())
    try:
        live = await (await client.get("/dashboard/api/live")).json()
    finally:
        await client.close()
    assert live == [
        {
            "id": "live-1",
            "caller": "15551230000",
            "persona": "receptionist",
            "direction": "inbound",
            "seconds": 12.5,
            "conversation": {
                "persona": "receptionist",
                "end_reason": "",
                "barge_ins": 0,
                "errors": [],
                "turns": [LIVE.conversation.turns[0].as_dict()],  # type: ignore[union-attr]
                "greeting": "Hello, Sam here.",
                "speaking": "Anything else?",
            },
        }
    ]


async def test_a_call_page_comes_from_the_stored_record_or_the_live_call() -> None:
    client = await signed_in_client([LIVE], finished_call())
    try:
        stored = await (await client.get("/dashboard/calls/done-1")).text()
        running = await (await client.get("/dashboard/calls/live-1")).text()
        missing = await client.get("/dashboard/calls/nobody")
    finally:
        await client.close()
    assert "<dd>sales</dd>" in stored and "<dd>2</dd>" in stored and "Putting you through." in stored
    assert "640 ms" in stored
    assert "<dd>in progress</dd>" in running and "We open at nine." in running and "15551230000" in running
    assert missing.status == 404
