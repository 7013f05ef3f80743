"""Writes finished calls to the store in the background, and never loses one.

The media path and the call tasks only put a record on a queue. If the database is down the
writer retries with backoff; at shutdown whatever could not be saved is spooled to a JSON-lines
file, which the next start loads back into the database first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from bridge.storage.calls import CallStore

log = structlog.get_logger(__name__)

MAX_BACKOFF = 30.0


class RecordWriter:
    def __init__(self, store: CallStore, spool_dir: Path) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.saved = 0
        self.failures = 0
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._in_flight: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._spool_files: list[Path] = []
        self._spooled_records = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (1 if self._in_flight is not None else 0)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="record-writer")
        for record in self._load_spool():
            self.submit(record)

    def submit(self, record: dict[str, Any]) -> None:
        self._idle.clear()
        self._queue.put_nowait(record)

    async def drain(self, seconds: float) -> bool:
        """Wait until everything submitted is saved; False if the time ran out first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)
        return not self.pending

    async def close(self, seconds: float = 5.0) -> None:
        await self.drain(seconds)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = ([self._in_flight] if self._in_flight is not None else []) + self._take_all()
        if left:
            path = self._spool(left)
            log.error("storage.spooled", records=len(left), path=str(path), hint="saved to the database at next start")

    async def _run(self) -> None:
        while True:
            record = await self._queue.get()
            self._in_flight = record
            delay = 0.5
            while True:
                try:
                    await self.store.save(record)
                    break
                except (SQLAlchemyError, OSError) as error:
                    self.failures += 1
                    log.warning("storage.save_failed", call=record.get("channel_id"), error=str(error), retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_BACKOFF)
            self._in_flight = None
            self.saved += 1
            if self._queue.empty():
                self._idle.set()
            if self._spool_files and self.saved >= self._spooled_records:
                for path in self._spool_files:
                    path.unlink(missing_ok=True)  # every record from these files is in the database now
                self._spool_files = []

    def _take_all(self) -> list[dict[str, Any]]:
        records = []
        while not self._queue.empty():
            records.append(self._queue.get_nowait())
        return records

    def _spool(self, records: list[dict[str, Any]]) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"unsaved-{time.strftime('%Y%m%dT%H%M%S')}-{id(self):x}.jsonl"
        with path.open("a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
        return path

    def _load_spool(self) -> list[dict[str, Any]]:
        if not self.spool_dir.is_dir():
            return []
        records = []
        for path in sorted(self.spool_dir.glob("unsaved-*.jsonl")):
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            self._spool_files.append(path)
        self._spooled_records = len(records)
        if records:
            log.info("storage.spool_loaded", records=len(records))
        return records
