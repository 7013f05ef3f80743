"""Call records in a real PostgreSQL (a private cluster), from a real call through Asterisk."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.pbx.instance import AsteriskInstance
from bridge.storage.calls import CallStore
from tests.integration.conftest import _free_port, running_bridge, wait_for_finished_calls
from tests.integration.test_media_path import caller_pcap
from tests.support.postgres import PrivatePostgres
from tests.support.sipp import SippCaller

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(_free_port(socket.SOCK_STREAM))
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
