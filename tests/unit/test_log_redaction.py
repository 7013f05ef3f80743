"""Secrets stay out of logs and doctor output: database passwords, webhook tokens, SQL parameters."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from structlog.testing import capture_logs

from bridge.commands.doctor import check_storage
from bridge.config import parse_config
from bridge.config.routing import WebhookConfig
from bridge.logs import redacted_url, url_host
from bridge.routing.webhooks import Webhooks
from bridge.storage.calls import CallStore

SECRET = "s3cr3t-T0K3N"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://bob:{SECRET}@db:5432/calls", "postgresql://bob:***@db:5432/calls"),
        (f"postgresql://bob:p@ss{SECRET}@db/calls", "postgresql://bob:***@db/calls"),
        (f"postgresql://bob@db/calls?password={SECRET}&sslmode=require", "postgresql://bob@db/calls?password=***&sslmode=require"),
        ("sqlite:////var/lib/bridge/calls.db", "sqlite:////var/lib/bridge/calls.db"),
        ("postgresql://bob@db/calls", "postgresql://bob@db/calls"),
    ],
)  # fmt: skip
def test_a_logged_url_never_shows_a_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://hooks.example.com/services/{SECRET}?token={SECRET}", "hooks.example.com"),
        (f"http://{SECRET}:{SECRET}@crm.local:8080/hook", "crm.local:8080"),
        ("http://[::1]:9000/x", "[::1]:9000"),
        ("http://crm.local:notaport/x", "crm.local"),
    ],
)
def test_a_webhook_is_logged_by_its_host_only(url: str, shown: str) -> None:
    assert url_host(url) == shown


@pytest.fixture
async def failing_hook() -> AsyncIterator[str]:
    """A CRM that answers 500 (aiohttp puts the request URL into that error's message)."""

    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_failing_webhooks_log_no_token(failing_hook: str) -> None:
    hook = f"{failing_hook}/hooks/{SECRET}?token={SECRET}"
    unreachable = f"http://127.0.0.1:1/hooks/{SECRET}"
    with capture_logs() as logs:
        for pre, post in ((hook, hook), (unreachable, unreachable)):
            webhooks = Webhooks(functools.partial(WebhookConfig, pre_call_url=pre, post_call_url=post))
            assert await webhooks.pre_call({"call_id": "c1"}) == {}
            webhooks.post_call({"channel_id": "c1"})
            await webhooks.close()
    assert [entry["event"] for entry in logs] == ["webhook.pre_call_failed", "webhook.post_call_failed"] * 2
    assert SECRET not in json.dumps(logs, default=str)
    assert logs[0]["host"] == failing_hook.removeprefix("http://") and "500" in logs[0]["error"]


async def test_doctor_shows_the_database_without_its_password() -> None:
    url = f"postgresql://bob:{SECRET}@127.0.0.1:1/calls?password={SECRET}"
    (finding,) = await check_storage(parse_config({"storage": {"url": url}}))
    assert not finding.ok and "127.0.0.1:1/calls" in finding.detail
    assert SECRET not in finding.detail


async def test_sql_errors_do_not_carry_the_callers_data() -> None:
    """SQLAlchemy puts a failed statement's parameters (transcripts, numbers) into its message."""
    store = CallStore("sqlite://")
    try:
        async with store.engine.connect() as connection:
            with pytest.raises(SQLAlchemyError) as failure:
                await connection.execute(sa.text("SELECT :said FROM no_such_table"), {"said": SECRET})
    finally:
        await store.close()
    assert SECRET not in str(failure.value)
