"""Writes finished calls to the store in the background, and never loses one.

A call's record is in the spool journal (bridge/storage/spool.py) before `submit()` returns, so
neither a database outage nor a SIGKILL loses it; it is marked done once the database has it.
At most `memory_limit` records wait in memory; past that they wait in the journal only and are
read back in order. While the database is down the writer retries with backoff; a row the database
refuses for good (too long, a constraint) goes to a dead-letter file and the writer moves on, so
one bad row never holds up the rest. The next start loads whatever the journal still has first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bridge.config import ConfigError
from bridge.records import CallRecord, JsonObject
from bridge.storage.calls import CallStore
from bridge.storage.spool import Entry, RecordJournal, SpoolInUse, remove_files_older_than, write_dead_letter

log = structlog.get_logger(__name__)

MAX_BACKOFF = 30.0
MEMORY_LIMIT = 1000
PURGE_EVERY = 3600.0

# SQLSTATE classes that say "the database, not this row": connection (08), rollback such as a
# deadlock (40), out of resources (53), lock not available (55), shutting down (57), system (58).
_TRANSIENT_SQLSTATES = ("08", "40", "53", "55", "57", "58")


def is_permanent(error: Exception) -> bool:
    """True if saving this row again cannot work: the database refused the row itself.

    asyncpg's errors mostly reach SQLAlchemy as a plain DBAPIError (a too-long value is one, with
    SQLSTATE 22001), so the SQLSTATE decides where the class does not.
    """
    transient = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, OSError, TimeoutError)
    if isinstance(error, transient):
        return False
    if isinstance(error, (DataError, IntegrityError)):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return False
        state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        return not (isinstance(state, str) and state[:2] in _TRANSIENT_SQLSTATES)
    if isinstance(error, StatementError):
        return True  # the row could not even be sent (a value the column cannot take)
    return not isinstance(error, SQLAlchemyError)  # the engine's own state (a pool timeout...) is transient


class RecordWriter:
    def __init__(
        self,
        store: CallStore,
        spool_dir: Path,
        *,
        memory_limit: int = MEMORY_LIMIT,
        retention_days: float = 0,
        on_expired: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.memory_limit = max(1, memory_limit)
        self.retention_days = retention_days
        # Told the recordings and messages of calls about to be purged, to delete them too.
        self.on_expired = on_expired
        self.saved = 0
        self.failures = 0
        self.dead_letters = 0
        self.journal = RecordJournal(spool_dir)
        self._queue: deque[Entry] = deque()
        self._in_flight: Entry | None = None
        # Records past the memory limit wait in the journal only, from this offset on.
        self._backlog_offset: int | None = None
        self._backlog_count = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loading: list[JsonObject] | None = None
        self._keep_journal = False  # a record that is neither saved nor dead-lettered is still in it
        self._task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._queue) + self._backlog_count + (1 if self._in_flight is not None else 0)

    @property
    def in_memory(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        """Load the journal left by the last run first, then take new records."""
        self._loading = []
        try:
            left = await asyncio.to_thread(self.journal.recover)
        except SpoolInUse as error:
            raise ConfigError(
                f"storage.spool_dir: {error}; each bridge on one machine needs its own storage.spool_dir "
                "(several bridges on one Asterisk: one spool folder per ari.app)"
            ) from None
        except OSError as error:
            raise ConfigError(
                f"storage.spool_dir: cannot keep call records in {self.spool_dir} ({error}); "
                "make it a folder the bridge can write, or set storage.spool_dir"
            ) from None
        finally:
            early, self._loading = self._loading, None
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="record-writer")
        if left:
            log.info("storage.spool_loaded", records=left)
            self._idle.clear()
            self._backlog_offset, self._backlog_count = 0, left
            self._wakeup.set()
        for record in early:
            self._submit(record)
        if self.retention_days > 0:
            self._purge_task = loop.create_task(self._purge_every_hour(), name="record-retention")

    def submit(self, record: CallRecord) -> None:
        """Put one finished call in the journal (fsync'd) and then in line for the database."""
        self._submit(record.as_dict())

    def _submit(self, record: JsonObject) -> None:
        """The journal holds each record as JSON; it is read back into a CallRecord to be saved."""
        if self._loading is not None:
            self._loading.append(record)  # the journal is being rewritten; appended right after
            return
        try:
            entry = self.journal.append(record)
        except OSError as error:
            log.error(
                "storage.spool_failed",
                call=record.get("channel_id"),
                path=str(self.journal.path),
                error=str(error),
                hint="the record is kept in memory only; check the spool folder's disk",
            )
            entry = Entry(None, record)
            self._queue.append(entry)
        else:
            if self._task is None:
                return  # not running: the next start loads it from the journal
            if self._backlog_offset is None and len(self._queue) < self.memory_limit:
                self._queue.append(entry)
            else:
                if self._backlog_offset is None:
                    self._backlog_offset = entry.offset
                self._backlog_count += 1
        self._idle.clear()
        self._wakeup.set()

    async def drain(self, seconds: float) -> bool:
        """Wait until everything submitted is saved; False if the time ran out first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)
        return not self.pending

    async def close(self, seconds: float = 5.0) -> None:
        await self.drain(seconds)
        for task in (self._task, self._purge_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._purge_task = None
        left = self.pending
        memory_only = [entry.record for entry in self._queue if entry.seq is None]
        if self._in_flight is not None and self._in_flight.seq is None:
            memory_only.append(self._in_flight.record)
        for record in memory_only:
            self._submit(record)  # one more try at the journal
        self.journal.close()
        if left:
            log.error(
                "storage.spooled", records=left, path=str(self.journal.path), hint="saved to the database at next start"
            )

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._backlog_offset is not None:
                    await self._read_backlog()
                    continue
                self._wakeup.clear()
                self._settle()
                await self._wakeup.wait()
                continue
            entry = self._in_flight = self._queue.popleft()
            error = await self._save(entry.record)
            if error is None:
                self.saved += 1
                self.journal.mark_done(entry.seq)
            elif await self._dead_letter(entry, error):
                self.journal.mark_done(entry.seq, durable=True)
            self._in_flight = None

    def _settle(self) -> None:
        """Nothing is waiting: empty the journal (everything in it is done) and say so."""
        if not self._keep_journal and self.journal.end() > 0:
            try:
                self.journal.empty()
            except OSError as error:
                log.warning("storage.spool_empty_failed", error=str(error))
        self._idle.set()

    async def _read_backlog(self) -> None:
        offset = self._backlog_offset or 0
        room = self.memory_limit - len(self._queue)
        try:
            entries, offset = await asyncio.to_thread(self.journal.read_from, offset, room)
        except OSError as error:
            log.error("storage.spool_read_failed", error=str(error), hint="the records stay there for the next start")
            self._keep_journal = True
            self._backlog_offset, self._backlog_count = None, 0
            return
        self._queue.extend(entries)
        self._backlog_count = max(0, self._backlog_count - len(entries))
        if offset >= self.journal.end():
            self._backlog_offset, self._backlog_count = None, 0  # submit() appends in this thread: nothing after
        else:
            self._backlog_offset = offset

    async def _save(self, record: JsonObject) -> str | None:
        """None once saved; the error's text if the database refuses this row for good (or the
        journal's JSON is no call record at all)."""
        delay = 0.5
        while True:
            try:
                await self.store.save(CallRecord.from_dict(record))
                return None
            except Exception as error:  # noqa: BLE001 - a row that cannot be saved must not stop the writer
                if is_permanent(error):
                    return f"{error.__class__.__name__}: {error}"
                self.failures += 1
                log.warning("storage.save_failed", call=record.get("channel_id"), error=str(error), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    async def _dead_letter(self, entry: Entry, error: str) -> bool:
        call = entry.record.get("channel_id")
        try:
            path = await asyncio.to_thread(write_dead_letter, self.spool_dir, entry.record, error)
        except OSError as failure:
            self._keep_journal = True
            log.error("storage.dead_letter_failed", call=call, error=error, write_error=str(failure))
            return False
        self.dead_letters += 1
        log.error(
            "storage.dead_letter",
            call=call,
            error=error.splitlines()[0],  # the whole text, with the statement, is in the file
            path=str(path),
            hint="the database refused this row; it is kept in that file and the next calls go on",
        )
        return True

    async def purge_old_calls(self) -> tuple[int, int]:
        """storage.retention_days: delete older calls and dead-letter files; returns how many of each."""
        if self.retention_days <= 0:
            return 0, 0
        cutoff = time.time() - self.retention_days * 86400
        if self.on_expired is not None:
            await self.on_expired(await self.store.attachments_before(cutoff))
        calls = await self.store.purge(cutoff)
        files = await asyncio.to_thread(remove_files_older_than, self.spool_dir, cutoff)
        if calls or files:
            log.info("storage.purged", calls=calls, files=files, older_than_days=self.retention_days)
        return calls, files

    async def _purge_every_hour(self) -> None:
        while True:
            try:
                await self.purge_old_calls()
            except (SQLAlchemyError, OSError) as error:
                log.warning("storage.purge_failed", error=str(error), retry_in=PURGE_EVERY)
            await asyncio.sleep(PURGE_EVERY)
