"""Call records in SQLite (the same code serves PostgreSQL), and the writer that never loses one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bridge.storage.calls import CallStore, async_url
from bridge.storage.writer import RecordWriter


def record(call_id: str, caller_said: str, started_at: float = 1000.0, **extra: Any) -> dict[str, Any]:
    return {
        "channel_id": call_id,
        "caller": "15550001111",
        "called": "18005550100",
        "direction": "inbound",
        "persona": "receptionist",
        "started_at": started_at,
        "ended_at": started_at + 30,
        "end_reason": "handed_back_to_dialplan:queue",
        "error": "",
        "transfer": {"target": "sales", "outcome": "handed_over"},
        "conversation": {
            "end_reason": "transferred:sales",
            "turns": [{"caller": caller_said, "agent": "Putting you through to our sales team now.", "latency_ms": {}}],
            "routing": {"intent": "sales", "caller_name": "Jane Doe", "summary": caller_said},
        },
        **extra,
    }


def test_urls_get_their_asyncio_drivers() -> None:
    assert async_url("sqlite:////var/lib/x/calls.db") == "sqlite+aiosqlite:////var/lib/x/calls.db"
    assert async_url("postgresql://bridge:pw@db/calls") == "postgresql+asyncpg://bridge:pw@db/calls"
    with pytest.raises(ValueError, match=r"storage\.url"):
        async_url("mysql://db/calls")


async def test_calls_are_stored_searched_and_replaced(tmp_path: Path) -> None:
    store = CallStore(f"sqlite:///{tmp_path / 'nested' / 'calls.db'}")
    await store.open()
    try:
        await store.save(record("a", "I want to buy a chair", started_at=1))
        await store.save(record("b", "What are your opening hours", started_at=2))
        row = await store.get("a")
        assert row is not None
        assert row["transfer_target"] == "sales" and row["intent"] == "sales" and row["caller_name"] == "Jane Doe"
        assert row["transcript"] == "caller: I want to buy a chair\nagent: Putting you through to our sales team now."
        assert row["record"]["conversation"]["turns"][0]["caller"] == "I want to buy a chair"
        assert [r["id"] for r in await store.search()] == ["b", "a"]  # newest first
        assert [r["id"] for r in await store.search("OPENING")] == ["b"]
        assert [r["id"] for r in await store.search("jane")] == ["b", "a"]
        await store.save(
            record("a", "I want to buy a chair", started_at=1, handover_events=[{"Event": "AgentConnect"}])
        )
        assert await store.count() == 2
        again = await store.get("a")
        assert again is not None and again["record"]["handover_events"] == [{"Event": "AgentConnect"}]
    finally:
        await store.close()


class FlakyStore:
    """Fails the first `failures` saves, as a database that is restarting would."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.saved: list[str] = []

    async def save(self, row: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))
        self.saved.append(row["channel_id"])


async def test_writer_retries_until_the_database_is_back(tmp_path: Path) -> None:
    store = FlakyStore(failures=2)
    writer = RecordWriter(store, tmp_path / "spool")  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record("a", "hello"))
    writer.submit(record("b", "hello"))
    assert await writer.drain(10)
    await writer.close()
    assert store.saved == ["a", "b"] and writer.failures == 2
    assert not (tmp_path / "spool").exists()  # nothing had to be spooled


async def test_unsaved_records_are_spooled_and_saved_at_the_next_start(tmp_path: Path) -> None:
    down = FlakyStore(failures=10**6)
    writer = RecordWriter(down, tmp_path / "spool")  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record("a", "hello"))
    writer.submit(record("b", "hello"))
    await writer.close(seconds=0.2)
    assert down.saved == [] and len(list((tmp_path / "spool").glob("unsaved-*.jsonl"))) == 1

    up = FlakyStore(failures=0)
    restarted = RecordWriter(up, tmp_path / "spool")  # type: ignore[arg-type]
    await restarted.start()
    assert await restarted.drain(5)
    await restarted.close()
    assert sorted(up.saved) == ["a", "b"]
    assert list((tmp_path / "spool").glob("*")) == []
