"""The record writer's files: a journal that has every finished call on disk before anything else.

`journal.jsonl` in the spool folder (0700; every file 0600, they hold transcripts) is append-only
JSON lines. `{"seq": N, "record": {...}}` is one call, written with one write() and fsync'd before
`submit()` returns: about a millisecond on a local disk, once per call, so a SIGKILL loses nothing
that had ended. `{"done": N}` says the database (or the dead-letter file) has call N. The journal
is emptied whenever everything in it is done, and rewritten at start-up with only what is left; a
line that does not parse there (a write torn by a kill) goes to a quarantine file, never stopping
the bridge. Records the database refuses for good go to `deadletter-YYYYMMDD.jsonl` with the error.

A journal has one writer: while a bridge runs it holds a lock on the folder (flock, released by
the kernel even on SIGKILL), so a second bridge on the same machine started with the same
spool_dir stops at start-up instead of rewriting the first one's journal under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedWriter
from pathlib import Path

import structlog

from bridge.records import JsonObject

log = structlog.get_logger(__name__)

JOURNAL = "journal.jsonl"
FILE_MODE = 0o600
DIR_MODE = 0o700


class SpoolInUse(OSError):
    """Another process (another bridge on this machine) holds the spool folder."""


@dataclass(frozen=True)
class Entry:
    """One submitted call: `seq` is its journal number (None: it is in memory only), `offset` its line."""

    seq: int | None
    record: JsonObject
    offset: int = -1


class RecordJournal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / JOURNAL
        # A failed write may have left part of a line behind: never empty the journal in this run
        # (the next start sorts it out), and start the next line on a fresh one.
        self.damaged = False
        self._fd: int | None = None
        self._lock: int | None = None
        self._next_seq = 1
        self._torn_tail = False

    def recover(self) -> int:
        """Rewrite the journal with only the calls not yet done, first; returns how many there are.

        Also takes in `unsaved-*.jsonl` (the spool files of earlier versions). Runs before any append.
        """
        self.close()
        make_folder(self.folder)
        self._lock = _lock_folder(self.folder)
        legacy = sorted(self.folder.glob("unsaved-*.jsonl"))
        done: set[int] = set()
        for line in _lines(self.path):
            if isinstance(parsed := _parse(line), int):
                done.add(parsed)
        quarantine = _Quarantine(self.folder)
        count = 0
        fresh = self.folder / f"{JOURNAL}.new"
        with _open_file(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as out:
            for path in legacy:
                for line in _lines(path):
                    record = _parse_legacy(line)
                    if record is None:
                        quarantine.add(line)
                    else:
                        count += 1
                        out.write(_record_line(count, record))
            for line in _lines(self.path):
                parsed = _parse(line)
                if parsed is None:
                    quarantine.add(line)
                elif isinstance(parsed, Entry) and parsed.seq not in done:
                    count += 1
                    out.write(_record_line(count, parsed.record))
            out.flush()
            os.fsync(out.fileno())
        quarantine.close()
        os.replace(fresh, self.path)
        _fsync_folder(self.folder)
        for path in legacy:
            path.unlink()
        self._next_seq = count + 1
        self.damaged = False
        self._torn_tail = False
        self._open()
        return count

    def append(self, record: JsonObject) -> Entry:
        """Write one call and fsync it; raises OSError (the disk is full, the folder is gone)."""
        fd = self._fd if self._fd is not None else self._open()
        seq = self._next_seq
        line = _record_line(seq, record)
        if self._torn_tail:
            line = b"\n" + line
        offset = os.lseek(fd, 0, os.SEEK_END) + (1 if self._torn_tail else 0)
        self._write(fd, line, durable=True)
        self._next_seq += 1
        return Entry(seq, record, offset)

    def mark_done(self, seq: int | None, durable: bool = False) -> None:
        """Note that call `seq` is saved. Not fsync'd unless `durable`: a lost mark only saves a row twice."""
        if seq is None:
            return
        fd = self._fd if self._fd is not None else self._open()
        line = json.dumps({"done": seq}).encode() + b"\n"
        if self._torn_tail:
            line = b"\n" + line
        try:
            self._write(fd, line, durable=durable)
        except OSError as error:
            log.warning("storage.spool_mark_failed", seq=seq, error=str(error), hint="the row may be saved twice")

    def read_from(self, offset: int, limit: int) -> tuple[list[Entry], int]:
        """Up to `limit` calls from `offset` on, and where to read next. Safe from a worker thread."""
        entries: list[Entry] = []
        with self.path.open("rb") as journal:
            journal.seek(offset)
            while len(entries) < limit:
                line = journal.readline()
                if not line.endswith(b"\n"):
                    break  # the end, or a line being written right now
                parsed = _parse(line)
                if isinstance(parsed, Entry):
                    entries.append(Entry(parsed.seq, parsed.record, offset))
                elif parsed is None and line.strip():
                    log.warning("storage.spool_line_skipped", offset=offset, hint="quarantined at the next start")
                offset += len(line)
        return entries, offset

    def end(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_END) if self._fd is not None else 0

    def empty(self) -> None:
        """Everything in the journal is done: start it again from nothing."""
        if self._fd is not None and not self.damaged:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        """Close the journal, and remove it if nothing is left in it; then let go of the folder."""
        if self._fd is not None:
            empty = self.end() == 0 and not self.damaged
            os.close(self._fd)
            self._fd = None
            if empty:
                self.path.unlink(missing_ok=True)
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases its flock
            self._lock = None

    def _open(self) -> int:
        make_folder(self.folder)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        os.fchmod(self._fd, FILE_MODE)
        _fsync_folder(self.folder)
        return self._fd

    def _write(self, fd: int, data: bytes, durable: bool) -> None:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        except OSError:
            self.damaged = self._torn_tail = True
            raise
        self._torn_tail = False


def write_dead_letter(folder: Path, record: JsonObject, error: str) -> Path:
    """Keep a record the database refused for good, with why, in today's dead-letter file."""
    make_folder(folder)
    path = folder / f"deadletter-{time.strftime('%Y%m%d')}.jsonl"
    line = json.dumps({"failed_at": time.time(), "error": error, "record": record}, default=str) + "\n"
    with _open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as out:
        out.write(line.encode())
        out.flush()
        os.fsync(out.fileno())
    return path


def remove_files_older_than(folder: Path, cutoff: float) -> int:
    """Dead-letter and quarantine files last written before `cutoff` (storage.retention_days)."""
    removed = 0
    for pattern in ("deadletter-*.jsonl", "quarantine-*.jsonl"):
        for path in folder.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
    return removed


def _lock_folder(folder: Path) -> int:
    """An exclusive lock on the folder itself (no lock file left behind), or SpoolInUse."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolInUse(f"{folder} is in use by another bridge process") from None
    return fd


def make_folder(folder: Path) -> None:
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(DIR_MODE)  # a folder made by an earlier version, or by hand


class _Quarantine:
    """Lines of a spool file that are not records: kept for a person to look at, out of the way."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"quarantine-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
        self.lines = 0
        self._out: BufferedWriter | None = None

    def add(self, line: bytes) -> None:
        if self._out is None:
            self._out = _open_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._out.write(line.rstrip(b"\n") + b"\n")
        self.lines += 1

    def close(self) -> None:
        if self._out is None:
            return
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        log.error(
            "storage.spool_quarantined",
            lines=self.lines,
            path=str(self.path),
            hint="spool lines that are not whole records (a write cut off by a kill); the rest were loaded",
        )


def _parse(line: bytes) -> Entry | int | None:
    """A journal line: a call (Entry), a done mark (its seq), or None for anything else."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict):
        seq, record, done = value.get("seq"), value.get("record"), value.get("done")
        if type(seq) is int and isinstance(record, dict):
            return Entry(seq, record)
        if type(done) is int and len(value) == 1:
            return done
    return None


def _parse_legacy(line: bytes) -> JsonObject | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "channel_id" in value else None


def _record_line(seq: int, record: JsonObject) -> bytes:
    return json.dumps({"seq": seq, "record": record}, default=str).encode() + b"\n"


def _lines(path: Path) -> Iterator[bytes]:
    """Each non-blank line, the last one even if it has no newline (a torn write)."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as source:
        for line in source:
            if line.strip():
                yield line


def _open_file(path: Path, flags: int) -> BufferedWriter:
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
