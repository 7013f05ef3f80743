"""Call records in a database: SQLite by default, PostgreSQL by URL, through SQLAlchemy's asyncio API.

One row per call: who called whom, how it ended, where it was sent, the transcript (as text, for
search) and the whole record as JSON (turns with their latencies, media counters, hand-over
events). The schema is created at start-up if missing; the same code runs on both databases.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridge.records import CallRecord

metadata = sa.MetaData()

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.String(96), primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False, index=True),
    sa.Column("ended_at", sa.Float),
    sa.Column("direction", sa.String(16), nullable=False, default="inbound"),
    sa.Column("caller", sa.String(64), nullable=False, default="", index=True),
    sa.Column("called", sa.String(64), nullable=False, default=""),
    sa.Column("persona", sa.String(64), nullable=False, default=""),
    # Which bridge (Asterisk node) took the call, when several share one database (storage.node).
    sa.Column("node", sa.String(64), nullable=False, default="", server_default="", index=True),
    sa.Column("end_reason", sa.String(128), nullable=False, default=""),
    sa.Column("outcome", sa.String(64), nullable=False, default=""),
    sa.Column("transfer_target", sa.String(64)),
    sa.Column("transfer_outcome", sa.String(32)),
    sa.Column("intent", sa.String(64)),
    sa.Column("caller_name", sa.String(128)),
    sa.Column("summary", sa.Text),
    sa.Column("transcript", sa.Text, nullable=False, default=""),
    sa.Column("recording_path", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("turns", sa.Integer, nullable=False, default=0),
    sa.Column("record", sa.JSON, nullable=False),
)

# pg_advisory_xact_lock key that serialises schema creation between bridges sharing a database.
_SCHEMA_LOCK = 0x62726964676531

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """'sqlite:///calls.db' or 'postgresql://user@host/db' -> the asyncio driver's URL."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        if parsed.drivername in _DRIVERS.values():
            return url
        raise ValueError(f"storage.url: {parsed.drivername!r} is not supported; use sqlite:/// or postgresql://")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def row_for(record: CallRecord) -> dict[str, Any]:
    """The columns of one call; the whole record goes in as JSON (its `as_dict()`)."""
    conversation = record.conversation
    routing = conversation.routing if conversation is not None else None
    transfer = record.transfer
    turns = conversation.turns if conversation is not None else []
    lines = []
    for turn in turns:
        if turn.caller:
            lines.append(f"caller: {turn.caller}")
        if turn.agent:
            lines.append(f"agent: {turn.agent}")
    return {
        "id": record.channel_id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "direction": record.direction or "inbound",
        "caller": record.caller,
        "called": record.called,
        "persona": record.persona,
        "node": record.node,
        "end_reason": record.end_reason,
        "outcome": conversation.end_reason if conversation is not None else "",
        "transfer_target": transfer.target if transfer is not None else None,
        "transfer_outcome": (transfer.outcome or None) if transfer is not None else None,
        "intent": (routing.intent or None) if routing is not None else None,
        "caller_name": routing.caller_name if routing is not None else None,
        "summary": routing.summary if routing is not None else None,
        "transcript": "\n".join(lines),
        "recording_path": record.recording or (conversation.message if conversation is not None else "") or None,
        "error": record.error or None,
        "turns": len(turns),
        "record": record.as_dict(),
    }


class CallStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(async_url(url), hide_parameters=True)

    async def open(self) -> None:
        """Create the database file's folder (SQLite) and the table if they are missing."""
        parsed = make_url(self.url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            await asyncio.to_thread(_make_private_file, parsed.database)
        async with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several nodes of a cluster starting at once on one fresh database: without the
                # lock two CREATE TABLEs race and one fails on PostgreSQL's catalogue (pg_type).
                await connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            await connection.run_sync(metadata.create_all)
            await connection.run_sync(_add_missing_columns)

    async def save(self, record: CallRecord) -> None:
        """Insert or replace one call's row (a record may be saved again once hand-over events arrive).

        Only the same node's row is replaced: another node's call with the same id (two Asterisks
        without their own systemname) fails as a duplicate key and is dead-lettered, not lost.
        """
        row = row_for(record)
        async with self.engine.begin() as connection:
            await connection.execute(sa.delete(calls).where(calls.c.id == row["id"], calls.c.node == row["node"]))
            await connection.execute(sa.insert(calls).values(**row))

    async def get(self, call_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            result = await connection.execute(sa.select(calls).where(calls.c.id == call_id))
            row = result.mappings().first()
        return dict(row) if row is not None else None

    async def search(
        self,
        text: str = "",
        limit: int = 50,
        offset: int = 0,
        since: float | None = None,
        until: float | None = None,
        persona: str = "",
        target: str = "",
        node: str = "",
    ) -> list[dict[str, Any]]:
        """Newest first; `text` matches transcript, caller number, caller name or summary; the
        others narrow by start time, persona, transfer target and node."""
        query = sa.select(calls).order_by(calls.c.started_at.desc()).limit(limit).offset(offset)
        if since is not None:
            query = query.where(calls.c.started_at >= since)
        if until is not None:
            query = query.where(calls.c.started_at < until)
        if persona:
            query = query.where(calls.c.persona == persona)
        if target:
            query = query.where(calls.c.transfer_target == target)
        if node:
            query = query.where(calls.c.node == node)
        if text:
            pattern = f"%{text.lower()}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(calls.c.transcript).like(pattern),
                    calls.c.caller.like(pattern),
                    sa.func.lower(calls.c.caller_name).like(pattern),
                    sa.func.lower(calls.c.summary).like(pattern),
                )
            )
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [dict(row) for row in result.mappings()]

    async def distinct(self, column: str) -> list[str]:
        """The values a filter can offer (personas, transfer targets), sorted."""
        field = calls.c[column]
        async with self.engine.connect() as connection:
            result = await connection.execute(sa.select(field).where(field.is_not(None)).distinct())
            return sorted(str(value) for value in result.scalars() if value)

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            result = await connection.execute(sa.select(sa.func.count()).select_from(calls))
            return int(result.scalar_one())

    async def attachments_before(self, before: float) -> list[str]:
        """The recording names and message paths of calls that started before `before` (what a
        purge would leave behind)."""
        query = sa.select(calls.c.recording_path).where(
            calls.c.started_at < before, calls.c.recording_path.is_not(None)
        )
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [str(path) for path in result.scalars() if path]

    async def purge(self, before: float) -> int:
        """Delete the calls that started before `before` (storage.retention_days); returns how many."""
        async with self.engine.begin() as connection:
            result = await connection.execute(sa.delete(calls).where(calls.c.started_at < before))
        return int(result.rowcount)

    async def close(self) -> None:
        await self.engine.dispose()


def _add_missing_columns(connection: sa.Connection) -> None:
    """Columns added after a database was created (`node`) are added to it in place: create_all
    makes missing tables only, and a bridge upgraded on an old database must not fail its inserts."""
    present = {column["name"] for column in sa.inspect(connection).get_columns("calls")}
    if "node" not in present:
        connection.execute(sa.text("ALTER TABLE calls ADD COLUMN node VARCHAR(64) NOT NULL DEFAULT ''"))
        connection.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_calls_node ON calls (node)"))


def _make_private_file(database: str) -> None:
    """The folder, and the file created owner-only before SQLite opens it (callers' data; SQLite
    gives its journal and WAL files the database file's mode)."""
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
