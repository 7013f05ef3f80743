"""Call records in a real PostgreSQL (a private cluster), from real calls through Asterisk: saved,
kept through a database outage and a SIGKILL of the bridge, and not held up by a refused row."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstance
from bridge.storage.calls import CallStore
from tests.integration.conftest import running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import caller_pcap
from tests.support.bridge_process import echo_config, start_bridge
from tests.support.postgres import PrivatePostgres
from tests.support.servers import free_port as _free_port
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration


class RestartablePostgres(PrivatePostgres):
    """The private cluster, which a test can stop (an outage) and start again with its data."""

    def pause(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "server.log"), "-w", "start")


@pytest.fixture(scope="module")
def postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres(_free_port(socket.SOCK_STREAM))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_call_is_recorded_in_postgresql(
    asterisk: AsteriskInstance, workdir: Path, postgres: PrivatePostgres
) -> None:
    storage = {"storage": {"url": postgres.url, "record_calls": True}}
    async with running_bridge(asterisk, overrides=storage) as service:
        caller = SippCaller(
            workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir), caller="15550004444", hold_ms=2000
        )
        result = await caller.run(timeout=30)
        await wait_for_finished_calls(service, 1)
        assert await service.records.drain(10)
        call_id = service.app.finished[0].channel_id
        recording = await service.client.request("GET", f"/recordings/stored/ai-bridge-{call_id}")
    assert result.successful_calls == 1, result.output
    assert recording["format"] == "wav"

    store = CallStore(postgres.url)  # a separate connection: the row is really in the database
    try:
        row = await store.get(call_id)
        assert row is not None and row["caller"] == "15550004444" and row["persona"] == "receptionist"
        assert row["record"]["media"]["packets_in"] > 50
        assert row["recording_path"] == f"ai-bridge-{call_id}.wav"
        assert [found["id"] for found in await store.search("4444")] == [call_id]
    finally:
        await store.close()


def journaled_calls(spool: Path) -> list[str]:
    journal = spool / "journal.jsonl"
    if not journal.exists():
        return []
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
    return [line["record"]["channel_id"] for line in lines if "record" in line]


async def rows_of(url: str, call_ids: list[str], seconds: float) -> list[str]:
    """The calls among `call_ids` that have a row, once all do or the time is up."""
    store = CallStore(url)
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            found = [call_id for call_id in call_ids if await store.get(call_id) is not None]
            if len(found) == len(call_ids) or asyncio.get_running_loop().time() >= deadline:
                return found
            await asyncio.sleep(0.25)
    finally:
        await store.close()


async def test_calls_made_while_the_database_is_down_survive_a_sigkill_of_the_bridge(
    asterisk: AsteriskInstance, workdir: Path, postgres: RestartablePostgres
) -> None:
    spool = workdir / "spool"
    config = workdir / "bridge.toml"
    sqlite = f'url = "sqlite:///{workdir / "calls.db"}"'
    config.write_text(echo_config(asterisk, workdir).replace(sqlite, f'url = "{postgres.url}"\nspool_dir = "{spool}"'))
    process = await start_bridge(config)  # the database must be up at start-up
    output = asyncio.ensure_future(process.stdout.read()) if process.stdout else None
    paused = False
    try:
        await asyncio.to_thread(postgres.pause)
        paused = True
        caller = SippCaller(
            workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir),
            caller="15550006666", hold_ms=1500, calls=5, concurrent=5, rate=20,
        )  # fmt: skip
        result = await caller.run(timeout=40)
        assert result.successful_calls == 5, result.output
        for _ in range(100):
            if len(call_ids := journaled_calls(spool)) == 5:
                break
            await asyncio.sleep(0.1)
        assert len(call_ids) == 5, call_ids
        os.kill(process.pid, signal.SIGKILL)  # the records were only ever in the bridge and its spool
        await process.wait()
        await asyncio.to_thread(postgres.resume)
        paused = False
        process = await start_bridge(config)
        saved = await rows_of(postgres.url, call_ids, seconds=20)
    finally:
        if paused:
            await asyncio.to_thread(postgres.resume)
        if process.returncode is None:
            process.terminate()
            await process.wait()
        if output is not None:
            output.cancel()

    assert sorted(saved) == sorted(call_ids)
    assert list(spool.glob("deadletter-*.jsonl")) == []  # an unreachable database is no reason to give up a row


async def test_a_caller_id_too_long_for_postgresql_does_not_stop_the_next_calls_row(
    asterisk: AsteriskInstance, workdir: Path, postgres: RestartablePostgres
) -> None:
    spool = workdir / "spool"
    long_caller = "1" * 80  # calls.caller is VARCHAR(64): PostgreSQL refuses the row (SQLite would not)
    storage = {"storage": {"url": postgres.url, "spool_dir": str(spool)}}
    async with running_bridge(asterisk, overrides=storage) as service:
        for number in (long_caller, "15550007777"):
            caller = SippCaller(
                workdir, ("127.0.0.1", asterisk.settings.sip_port), caller_pcap(workdir), caller=number, hold_ms=1000
            )
            result = await caller.run(timeout=30)
            assert result.successful_calls == 1, result.output
        await wait_for_finished_calls(service, 2)
        assert await service.records.drain(10)
        refused, accepted = service.app.finished[0], service.app.finished[1]
        dead_letters = service.records.dead_letters
    assert len(refused.caller) > 64 and long_caller.startswith(refused.caller)  # Asterisk keeps 79 digits of it

    assert await rows_of(postgres.url, [accepted.channel_id], seconds=1) == [accepted.channel_id]
    assert await rows_of(postgres.url, [refused.channel_id], seconds=0) == []
    assert dead_letters == 1
    (dead,) = spool.glob("deadletter-*.jsonl")
    (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["record"]["channel_id"] == refused.channel_id and "too long" in letter["error"]
