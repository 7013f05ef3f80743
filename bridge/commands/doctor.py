"""`bridge doctor`: check everything a call needs, before a caller finds out, and say how to fix it.

Each check prints OK or FAIL with the reason and the fix; the exit status is the number of
failures (0: ready for calls). It changes nothing, except that the packaged LLM file is
assembled if it is missing, as `bridge models` does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.engine import make_url

from bridge.ari.client import AriClient, AriError, AriUnreachable
from bridge.config import BridgeConfig, ConfigError
from bridge.dialplan import APPS_GLOBAL, DialplanApps, listed_apps
from bridge.logs import redacted_url
from bridge.models.errors import ModelFileError
from bridge.routing.queues import QueueMonitor
from bridge.routing.validation import missing_targets
from bridge.storage.calls import CallStore


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.check}: {self.detail}"


Check = Callable[[BridgeConfig], Awaitable[list[Finding]]]


async def check_ari(config: BridgeConfig) -> list[Finding]:
    ari = config.ari
    try:
        password = ari.resolved_password()
    except ConfigError as error:
        return [Finding("ari", False, str(error))]
    async with AriClient(ari.url, ari.username, password, ari.app) as client:
        try:
            info = await client.asterisk_info()
        except AriUnreachable as error:
            return [Finding("ari", False, f"{error.message}; is Asterisk running with http.conf enabled?")]
        except AriError as error:
            hint = "check ari.conf and ari.username/password" if error.status == 401 else "is res_ari loaded?"
            return [Finding("ari", False, f"{ari.url} answered {error.status} {error.message}; {hint}")]
        version = info.get("system", {}).get("version", "?")
        return [Finding("ari", True, f"{ari.url} as {ari.username!r}, Asterisk {version}")]


async def check_dialplan(config: BridgeConfig) -> list[Finding]:
    """The dialplan's BRIDGE_APPS offers calls to this bridge's app (several bridges: bridge.dialplan)."""
    try:
        password = config.ari.resolved_password()
    except ConfigError:
        return []  # check_ari reports it
    async with AriClient(config.ari.url, config.ari.username, password, config.ari.app) as client:
        try:
            value = await client.global_variable(APPS_GLOBAL)
        except AriError:
            return []  # check_ari reports it
    apps = DialplanApps(config.ari.app, listed_apps(value))
    problem = apps.problem()
    if problem is not None:
        # A dialplan from before BRIDGE_APPS still serves one bridge: only a list without us fails.
        return [Finding("dialplan", not apps.listed, problem)]
    return [Finding("dialplan", True, f"{APPS_GLOBAL} = {value} (this bridge: {config.ari.app})")]


async def check_model_server(config: BridgeConfig) -> list[Finding]:
    """llm.backend = "openai_http": the server answers, has the model, and replies to a 1-token ask."""
    llm = config.llm
    if llm.backend != "openai_http" or llm.base_url is None:
        return []
    base = llm.base_url.rstrip("/")
    key = os.environ.get(llm.api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    probe = {"model": llm.model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async with session.get(f"{base}/models") as response:
                if response.status != 200:
                    hint = (
                        f"check {llm.api_key_env}"
                        if response.status in (401, 403)
                        else "is it an OpenAI-style /v1 URL?"
                    )
                    return [Finding("model server", False, f"{base}/models answered {response.status}; {hint}")]
                listed = [str(item.get("id")) for item in (await response.json()).get("data", [])]
            started = asyncio.get_running_loop().time()
            async with session.post(f"{base}/chat/completions", json=probe) as response:
                if response.status != 200:
                    detail = (await response.text())[:160]
                    return [Finding("model server", False, f"a 1-token chat request got {response.status}: {detail}")]
            took = (asyncio.get_running_loop().time() - started) * 1000
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        reason = str(error) or type(error).__name__
        return [Finding("model server", False, f"{base}: {reason}; is the server running (llm.base_url)?")]
    note = (
        ""
        if llm.model in listed or not listed
        else f" (llm.model {llm.model!r} not listed: the server's one model answers)"
    )
    return [
        Finding(
            "model server",
            True,
            f"{base}: {', '.join(listed) or 'no model list'}; 1-token reply in {took:.0f} ms{note}",
        )
    ]


async def check_wyoming(config: BridgeConfig) -> list[Finding]:
    """stt/tts backend = "wyoming": each server answers Describe with what it offers."""
    from bridge.speech.wyoming import WyomingError, describe

    findings = []
    for role, backend, uri in (
        ("stt", config.stt.backend, config.stt.uri),
        ("tts", config.tts.backend, config.tts.uri),
    ):
        if backend != "wyoming" or uri is None:
            continue
        try:
            info = await asyncio.to_thread(describe, uri)
        except (WyomingError, ValueError) as error:
            findings.append(Finding(f"wyoming {role}", False, f"{error}; is the server running ({role}.uri)?"))
            continue
        if role == "stt":
            names = [model.name for program in info.asr for model in program.models if model.installed]
        else:  # wyoming-piper lists every voice it can fetch; the one asked for must be among them
            names = [voice.name for program in info.tts for voice in program.voices if voice.installed]
        wanted = config.tts.voice if role == "tts" else ""
        if not names:
            findings.append(Finding(f"wyoming {role}", False, f"{uri} has nothing installed to use"))
        elif wanted and wanted not in names:
            findings.append(Finding(f"wyoming {role}", False, f"{uri} has no voice {wanted!r} (tts.voice)"))
        else:
            offer = f"voice {wanted} ({len(names)} listed)" if wanted else ", ".join(names[:3])
            findings.append(Finding(f"wyoming {role}", True, f"{uri}: {offer}"))
    return findings


async def check_ami_and_targets(config: BridgeConfig) -> list[Finding]:
    monitor = QueueMonitor(config.ami)
    findings = []
    try:
        if not config.ami.enabled:
            findings.append(Finding("ami", True, "disabled (no queue wait times)"))
        elif not config.ami.resolved_password():
            reason = f"no AMI password; set ami.password or {config.ami.password_env} (a manager.conf user)"
            findings.append(Finding("ami", False, reason))
        elif await monitor.start(wait_seconds=3):
            findings.append(Finding("ami", True, f"{config.ami.host}:{config.ami.port} as {config.ami.username!r}"))
        else:
            findings.append(
                Finding(
                    "ami",
                    False,
                    f"cannot log in at {config.ami.host}:{config.ami.port} as {config.ami.username!r}; "
                    f"check manager.conf and ami.password / {config.ami.password_env}",
                )
            )
        password = config.ari.resolved_password()
        async with AriClient(config.ari.url, config.ari.username, password, config.ari.app) as client:
            problems = await missing_targets(config.routing, client, monitor if monitor.connected else None)
    except (ConfigError, AriError) as error:
        return [*findings, Finding("routing", False, f"targets not checked: {error}")]
    finally:
        monitor.close()
    findings += [Finding("routing", False, problem) for problem in problems]
    if not problems:
        findings.append(Finding("routing", True, f"targets known to Asterisk: {', '.join(config.routing.targets)}"))
    return findings


async def check_models(config: BridgeConfig, rehash: bool = False) -> list[Finding]:
    from bridge.commands.models import prepare_models

    try:
        files = await asyncio.to_thread(prepare_models, config.stt, config.llm, config.tts, config.turn, rehash)
    except ModelFileError as error:
        return [Finding("models", False, str(error))]
    return [Finding(f"model {model.role}", True, f"{model.backend}: {model.path}") for model in files]


async def check_ports(config: BridgeConfig) -> list[Finding]:
    media = config.media
    findings = []
    if media.rtp_port_range is not None:
        low, high = media.rtp_port_range
        for port in (low, high):
            findings.append(_bindable("rtp", socket.SOCK_DGRAM, media.bind_host, port, "media.rtp_port_min/max"))
    if config.api.enabled:
        findings.append(_bindable("api", socket.SOCK_STREAM, config.api.bind, config.api.port, "api.port"))
    return findings


async def check_webphone(config: BridgeConfig) -> list[Finding]:
    """Asterisk's WSS answers a SIP WebSocket upgrade, and the page's account is a PJSIP endpoint."""
    webphone = config.webphone
    if not (config.api.enabled and webphone.enabled):
        return []
    ari_host = urlsplit(config.ari.url).hostname or "127.0.0.1"
    url = webphone.wss_url or f"wss://{ari_host}:{webphone.wss_port}/ws"
    findings = [await _websocket_finding(url)]
    try:
        password = config.ari.resolved_password()
    except ConfigError:
        return findings  # check_ari reports it
    async with AriClient(config.ari.url, config.ari.username, password, config.ari.app) as client:
        try:
            known = await client.endpoint_exists("PJSIP", webphone.username)
        except AriError:
            return findings  # check_ari reports it
    detail = (
        f"PJSIP endpoint {webphone.username!r} exists"
        if known
        else f"no PJSIP endpoint {webphone.username!r}: add one from [webrtc-endpoint] in pjsip.conf "
        "or fix webphone.username"
    )
    findings.append(Finding("webphone account", known, detail))
    return findings


async def _websocket_finding(url: str) -> Finding:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    note = ""
    timeout = aiohttp.ClientWSTimeout(ws_close=5)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for context in (True, unverified):
            try:
                async with session.ws_connect(url, protocols=("sip",), ssl=context, timeout=timeout):
                    return Finding("webphone wss", True, f"{url} accepts SIP WebSocket connections{note}")
            except aiohttp.ClientConnectorCertificateError:
                note = "; its certificate is not trusted (self-signed?): each browser must accept it once"
            except aiohttp.WSServerHandshakeError as error:
                return Finding(
                    "webphone wss", False,
                    f"{url} refused the WebSocket ({error.status}); load res_http_websocket and "
                    "res_pjsip_transport_websocket and add a wss transport to pjsip.conf",
                )  # fmt: skip
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                return Finding(
                    "webphone wss", False,
                    f"nothing answers at {url} ({type(error).__name__}); enable TLS in http.conf "
                    "(tlsenable, tlsbindaddr, tlscertfile) or fix webphone.wss_url / webphone.wss_port",
                )  # fmt: skip
    return Finding("webphone wss", False, f"{url}: no TLS connection")


async def check_storage(config: BridgeConfig) -> list[Finding]:
    url = config.storage.resolved_url()
    database = make_url(url).database or ""
    if url.startswith("sqlite") and database and not _exists(database):
        return [_sqlite_to_be_created(database)]
    store = CallStore(url)
    try:
        async with store.engine.connect():
            pass
    except Exception as error:  # noqa: BLE001 - any driver error means the same to the operator
        return [Finding("storage", False, f"cannot open {redacted_url(url)}: {error}; check storage.url")]
    finally:
        await store.close()
    return [Finding("storage", True, redacted_url(url))]


def _exists(path: str) -> bool:
    return Path(path).expanduser().exists()


def _sqlite_to_be_created(database: str) -> Finding:
    """No database file yet: fine if the bridge will be able to create it at first start."""
    folder = next(parent for parent in Path(database).expanduser().parents if parent.exists())
    if os.access(folder, os.W_OK):
        return Finding("storage", True, f"{database} (created at first start)")
    return Finding("storage", False, f"cannot create {database}: {folder} is not writable; check storage.url")


def _bindable(check: str, kind: int, host: str, port: int, key: str) -> Finding:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            reason = f"{host}:{port} is not free ({error.strerror}); change {key} or stop what holds it"
            return Finding(check, False, reason)
    return Finding(check, True, f"{host}:{port} free")


async def diagnose(config: BridgeConfig, rehash: bool = False) -> list[Finding]:
    findings: list[Finding] = []
    for check in (
        check_ari,
        check_dialplan,
        check_ami_and_targets,
        check_storage,
        check_ports,
        check_webphone,
        check_model_server,
        check_wyoming,
    ):
        findings += await check(config)
    findings += await check_models(config, rehash)
    return findings


def run_doctor(config: BridgeConfig, rehash: bool) -> int:
    findings = asyncio.run(diagnose(config, rehash))
    for finding in findings:
        print(finding.line())
    failures = sum(1 for finding in findings if not finding.ok)
    print(f"{failures} problem(s)" if failures else "ready for calls")
    return min(failures, 100)
