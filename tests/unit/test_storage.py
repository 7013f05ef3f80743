"""Call records in SQLite (the same code serves PostgreSQL), and the writer that never loses one."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    StatementError,
)
from structlog.testing import capture_logs

from bridge.config import ConfigError
from bridge.records import CallRecord
from bridge.storage.calls import CallStore, async_url
from bridge.storage.writer import RecordWriter, is_permanent


def stored(call_id: str, caller_said: str, started_at: float = 1000.0, **extra: Any) -> dict[str, Any]:
    """A call record as JSON, as the journal and the database keep it (an older row's few keys)."""
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


def record(call_id: str, caller_said: str, started_at: float = 1000.0, **extra: Any) -> CallRecord:
    return CallRecord.from_dict(stored(call_id, caller_said, started_at, **extra))


async def test_each_row_keeps_its_node_and_search_narrows_by_node(tmp_path: Path) -> None:
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    await store.open()
    try:
        await store.save(record("a", "hello", started_at=1, node="pbx-a"))
        await store.save(record("b", "hello", started_at=2, node="pbx-b"))
        await store.save(record("old", "hello", started_at=3))  # a record written before nodes existed
        assert [row["id"] for row in await store.search(node="pbx-b")] == ["b"]
        assert await store.distinct("node") == ["pbx-a", "pbx-b"]
        old = await store.get("old")
        assert old is not None and old["node"] == ""
        with pytest.raises(IntegrityError):  # the same id from another node never replaces its row
            await store.save(record("a", "someone else", started_at=4, node="pbx-b"))
        kept = await store.get("a")
        assert kept is not None and kept["node"] == "pbx-a"
    finally:
        await store.close()


async def test_a_database_made_before_the_node_column_gets_it_at_open(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as database:
        database.execute("create table calls (id varchar(96) primary key, started_at float not null, "
                         "ended_at float, direction varchar(16) not null, caller varchar(64) not null, "
                         "called varchar(64) not null, persona varchar(64) not null, end_reason varchar(128) not null, "
                         "outcome varchar(64) not null, transfer_target varchar(64), transfer_outcome varchar(32), "
                         "intent varchar(64), caller_name varchar(128), summary text, transcript text not null, "
                         "recording_path text, error text, turns integer not null, record json not null)")  # fmt: skip
        database.execute("insert into calls values ('kept', 1, 2, 'inbound', '1', '2', 'p', 'caller', '', "
                         "null, null, null, null, null, '', null, null, 0, '{}')")  # fmt: skip
    store = CallStore(f"sqlite:///{path}")
    await store.open()
    try:
        await store.save(record("new", "hello", started_at=5, node="pbx-a"))
        assert {row["id"]: row["node"] for row in await store.search()} == {"new": "pbx-a", "kept": ""}
    finally:
        await store.close()


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

    async def save(self, row: CallRecord) -> None:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))
        self.saved.append(row.channel_id)


async def test_writer_retries_until_the_database_is_back(tmp_path: Path) -> None:
    store = FlakyStore(failures=2)
    writer = RecordWriter(store, tmp_path / "spool")  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record("a", "hello"))
    writer.submit(record("b", "hello"))
    assert await writer.drain(10)
    await writer.close()
    assert store.saved == ["a", "b"] and writer.failures == 2
    assert list((tmp_path / "spool").iterdir()) == []  # the journal is gone once everything is saved


async def test_unsaved_records_are_spooled_and_saved_at_the_next_start(tmp_path: Path) -> None:
    down = FlakyStore(failures=10**6)
    writer = RecordWriter(down, tmp_path / "spool")  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record("a", "hello"))
    writer.submit(record("b", "hello"))
    await writer.close(seconds=0.2)
    assert down.saved == [] and len(journal_lines(tmp_path / "spool")) == 2

    up = FlakyStore(failures=0)
    restarted = RecordWriter(up, tmp_path / "spool")  # type: ignore[arg-type]
    await restarted.start()
    assert await restarted.drain(5)
    await restarted.close()
    assert sorted(up.saved) == ["a", "b"]
    assert list((tmp_path / "spool").glob("*")) == []


def journal_lines(spool: Path) -> list[dict[str, Any]]:
    """The calls in the spool journal that are not marked done."""
    lines = [json.loads(line) for line in (spool / "journal.jsonl").read_text().splitlines()]
    done = {line["done"] for line in lines if "done" in line}
    return [line for line in lines if "seq" in line and line["seq"] not in done]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_record_is_in_the_fsynced_journal_the_moment_it_is_submitted(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    writer = RecordWriter(FlakyStore(failures=10**6), spool)  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record("a", "hello"))  # no await in between: the writer has not even tried to save it
    assert [line["record"]["channel_id"] for line in journal_lines(spool)] == ["a"]
    assert mode(spool) == 0o700 and mode(spool / "journal.jsonl") == 0o600  # transcripts are private
    await writer.close(seconds=0)

    up = FlakyStore(failures=0)
    restarted = RecordWriter(up, spool)  # type: ignore[arg-type]
    await restarted.start()
    assert await restarted.drain(5)
    await restarted.close()
    assert up.saved == ["a"]


async def test_a_spool_folder_the_bridge_cannot_write_stops_start_up_with_the_key(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    writer = RecordWriter(FlakyStore(failures=0), tmp_path / "a-file" / "spool")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"storage\.spool_dir"):
        await writer.start()


async def test_a_second_bridge_on_the_same_spool_folder_stops_at_start_up_not_the_first(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = RecordWriter(FlakyStore(failures=10**6), spool)  # type: ignore[arg-type]
    await first.start()
    first.submit(record("a", "hello"))
    second = RecordWriter(FlakyStore(failures=0), spool)  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"storage\.spool_dir: .* in use by another bridge.*its own storage\.spool_dir"
    ):
        await second.start()
    assert first.journal.path.exists()  # the first one's journal was not rewritten under it
    await first.close(seconds=0)
    up = FlakyStore(failures=0)
    after = RecordWriter(up, spool)  # type: ignore[arg-type]
    await after.start()  # the folder is free once the first bridge stops
    assert await after.drain(5)
    await after.close()
    assert up.saved == ["a"] and list(spool.iterdir()) == []  # no lock file left behind


class RefusingStore:
    """A database that refuses one row for good, as PostgreSQL refuses a caller name that is too long."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.attempts: list[str] = []
        self.saved: list[str] = []

    async def save(self, row: CallRecord) -> None:
        self.attempts.append(row.channel_id)
        if row.channel_id == self.refuse:
            raise DataError("INSERT", {}, Exception("value too long for type character varying(64)"))
        self.saved.append(row.channel_id)


async def test_a_row_the_database_refuses_goes_to_the_dead_letter_file_and_the_next_is_saved(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    store = RefusingStore(refuse="bad")
    writer = RecordWriter(store, spool)  # type: ignore[arg-type]
    await writer.start()
    with capture_logs() as logs:
        writer.submit(record("bad", "hello", caller="1" * 80))
        writer.submit(record("good", "hello"))
        assert await writer.drain(5)
    await writer.close()
    assert store.saved == ["good"] and store.attempts == ["bad", "good"]  # refused once, never retried
    assert writer.dead_letters == 1 and writer.failures == 0
    assert [entry["call"] for entry in logs if entry["event"] == "storage.dead_letter"] == ["bad"]
    (dead,) = spool.glob("deadletter-*.jsonl")
    (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["record"]["channel_id"] == "bad" and "value too long" in letter["error"]
    assert mode(dead) == 0o600
    assert list(spool.glob("journal*")) == []  # the bad row is not loaded again at the next start


class Orig(Exception):
    """What asyncpg's errors look like to SQLAlchemy: most arrive as a plain DBAPIError with a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (DataError("INSERT", {}, Exception("too long")), True),
        (IntegrityError("INSERT", {}, Exception("null value")), True),
        (DBAPIError("INSERT", {}, Orig("22001")), True),  # string_data_right_truncation
        (StatementError("(builtins.TypeError) not JSON serializable", "INSERT", {}, TypeError()), True),
        (KeyError("channel_id"), True),  # a record the store cannot even turn into a row
        (OperationalError("INSERT", {}, Exception("database is restarting")), False),
        (DBAPIError("INSERT", {}, Orig("57P01")), False),  # admin_shutdown
        (DBAPIError("INSERT", {}, Orig("08003")), False),  # connection_does_not_exist
        (DBAPIError("INSERT", {}, Exception("closed"), connection_invalidated=True), False),
        (DisconnectionError("gone"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (TimeoutError(), False),
    ],
)
def test_permanent_refusals_are_told_from_an_unreachable_database(error: Exception, permanent: bool) -> None:
    assert is_permanent(error) is permanent


async def test_a_torn_last_line_is_quarantined_and_the_whole_lines_are_loaded(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    lines = [
        json.dumps({"seq": 1, "record": stored("a", "hello")}),
        json.dumps({"seq": 2, "record": stored("b", "hello")}),
        json.dumps({"done": 1}),
        "not json at all",
        json.dumps({"seq": 3, "record": stored("c", "hello")}),
    ]
    torn = json.dumps({"seq": 4, "record": stored("d", "hello")})[:40]  # the bridge was killed mid-write
    (spool / "journal.jsonl").write_text("\n".join(lines) + "\n" + torn)
    (spool / "unsaved-20260101T000000-1.jsonl").write_text(json.dumps(stored("old", "hello")) + "\n")  # older spool
    store = FlakyStore(failures=0)
    writer = RecordWriter(store, spool)  # type: ignore[arg-type]
    with capture_logs() as logs:
        await writer.start()
        assert await writer.drain(5)
    await writer.close()
    assert store.saved == ["old", "b", "c"]  # "a" was already done
    (quarantine,) = spool.glob("quarantine-*.jsonl")
    assert quarantine.read_text().splitlines() == ["not json at all", torn]
    assert mode(quarantine) == 0o600
    assert [entry["lines"] for entry in logs if entry["event"] == "storage.spool_quarantined"] == [2]
    assert sorted(path.name for path in spool.iterdir()) == [quarantine.name]


class GatedStore:
    """A database that takes nothing until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.saved: list[str] = []

    async def save(self, row: CallRecord) -> None:
        await self.gate.wait()
        self.saved.append(row.channel_id)


async def test_past_the_memory_limit_records_wait_in_the_journal_and_none_is_lost(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    store = GatedStore()
    writer = RecordWriter(store, spool, memory_limit=3)  # type: ignore[arg-type]
    await writer.start()
    ids = [f"call-{number:02d}" for number in range(10)]
    for call_id in ids:
        writer.submit(record(call_id, "hello"))
        await asyncio.sleep(0)
        assert writer.in_memory <= 3
    assert writer.pending == 10 and len(journal_lines(spool)) == 10
    store.gate.set()
    assert await writer.drain(5)
    await writer.close()
    assert store.saved == ids  # all of them, in the order they ended

    for call_id in ids:  # a backlog bigger than the limit, left by the last run
        writer.submit(record(call_id, "again"))
    later = GatedStore()
    later.gate.set()
    restarted = RecordWriter(later, spool, memory_limit=3)  # type: ignore[arg-type]
    await restarted.start()
    assert restarted.in_memory == 0 and restarted.pending == 10  # read from the journal as room is made
    assert await restarted.drain(5)
    await restarted.close()
    assert later.saved == ids


async def test_calls_and_dead_letters_past_the_retention_are_deleted(tmp_path: Path) -> None:
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}")
    await store.open()
    spool = tmp_path / "spool"
    spool.mkdir()
    old_letter = spool / "deadletter-20200101.jsonl"
    old_letter.write_text("{}\n")
    month_ago = time.time() - 30 * 86400
    os.utime(old_letter, (month_ago, month_ago))
    try:
        await store.save(record("old", "hello", started_at=month_ago, recording="ai-bridge-old.wav"))
        await store.save(record("new", "hello", started_at=time.time()))
        expired: list[str] = []

        async def forget(attachments: list[str]) -> None:
            expired.extend(attachments)

        writer = RecordWriter(store, spool, retention_days=7, on_expired=forget)
        assert await writer.purge_old_calls() == (1, 1)
        assert expired == ["ai-bridge-old.wav"]  # its recording is deleted with it
        assert [row["id"] for row in await store.search()] == ["new"] and not old_letter.exists()
        assert await RecordWriter(store, spool).purge_old_calls() == (0, 0)  # 0 days: keep everything
    finally:
        await store.close()


async def test_the_sqlite_database_file_is_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "data" / "calls.db"
    store = CallStore(f"sqlite:///{database}")
    await store.open()
    await store.close()
    assert database.stat().st_mode & 0o777 == 0o600


def test_a_purged_message_goes_with_its_audio_and_only_from_the_message_folder(tmp_path: Path) -> None:
    from bridge.routing.messages import forget_message

    folder = tmp_path / "messages"
    folder.mkdir()
    (folder / "m.wav").write_bytes(b"RIFF")
    (folder / "m.json").write_text('{"audio": "m.wav"}')
    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"audio": "../x"}')
    assert forget_message(folder / "m.json", folder.resolve())
    assert not (folder / "m.json").exists() and not (folder / "m.wav").exists()
    assert not forget_message(outside, folder.resolve()) and outside.exists()

    from bridge.routing.messages import forget_messages_before

    (folder / "new.json").write_text("{}")
    (folder / "old.json").write_text("{}")
    month_ago = time.time() - 30 * 86400
    os.utime(folder / "old.json", (month_ago, month_ago))
    assert forget_messages_before(folder, time.time() - 7 * 86400) == 1
    assert [path.name for path in folder.iterdir()] == ["new.json"]
