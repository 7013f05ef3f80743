"""The `bridge` command: run the service, check a config, run a private Asterisk with the bridge."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.exposure import check_exposure, is_loopback, require_strong
from bridge.logs import configure_logging
from bridge.models.errors import ModelFileError
from bridge.pipelines.prompt import PromptError

if TYPE_CHECKING:
    from bridge.app.service import BridgeService

EXIT_CONFIG = 2
# `bridge up` creates the web phone's SIP account with this password (random if unset).
WEBPHONE_PASSWORD_ENV = "BRIDGE_WEBPHONE_PASSWORD"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge", description="Local AI voice agent bridge for Asterisk (ARI)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="connect to Asterisk's ARI and serve calls")
    run.add_argument("--config", type=Path, help="TOML config file (see config.example.toml)")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", type=Path, required=True)
    up = sub.add_parser("up", help="start a private Asterisk from asterisk/ and the bridge, ready for calls")
    up.add_argument("--config", type=Path, help="bridge config; ARI settings are taken from the instance")
    up.add_argument("--state-dir", type=Path, default=Path("var/asterisk"), help="instance directory")
    up.add_argument("--sip-port", type=int, default=5060)
    up.add_argument("--http-port", type=int, default=8088)
    up.add_argument("--ami-port", type=int, default=5038)
    up.add_argument("--bind", default="127.0.0.1", help="address Asterisk's SIP and WSS (browser callers) listen on")
    up.add_argument(
        "--manage-bind", default="127.0.0.1", help="address ARI (plain HTTP) and AMI listen on: keep it on loopback"
    )
    up.add_argument("--trunk", default="127.0.0.1", help="SIP trunk (provider) address: its calls land in [from-trunk]")
    up.add_argument("--https-port", type=int, default=8089, help="Asterisk's HTTPS/WSS port (browser callers)")
    up.add_argument("--tls-cert", type=Path, help="certificate for WSS (default: a self-signed one is made)")
    up.add_argument("--tls-key", type=Path, help="private key for --tls-cert")
    models = sub.add_parser("models", help="assemble and verify the model files the config needs")
    models.add_argument("--config", type=Path, help="bridge config (default: the packaged models)")
    models.add_argument("--rehash", action="store_true", help="re-check the sha256 of assembled files")
    doctor = sub.add_parser("doctor", help="check Asterisk (ARI, AMI, routing targets), storage, ports and models")
    doctor.add_argument("--config", type=Path, help="bridge config (default: built-in defaults)")
    doctor.add_argument("--rehash", action="store_true", help="also re-check the sha256 of model files")
    call = sub.add_parser("call", help="place a test call into the running agent and print the transcript")
    call.add_argument("--config", type=Path, help="the running bridge's config (AMI, TTS voice, call database)")
    call.add_argument("--say", default="What are your opening hours?", help="what the test caller asks")
    call.add_argument("--number", default="18005550100", help="number dialled into [from-trunk]")
    bench = sub.add_parser("bench", help="run a benchmark script (source checkout with the test tools)")
    bench.add_argument(
        "which",
        choices=["voice", "webphone", "media", "dialogue", "echo", "turn", "cluster"],
        help=(
            "voice-to-voice latency (SIP, browser), the media path, understanding on the dialogue dev set, echo,"
            " end of turn (silence vs Smart Turn),"
            " or a Kamailio cluster of 2 nodes with one killed mid-run"
        ),
    )
    bench.add_argument("options", nargs=argparse.REMAINDER, help="passed to scripts/bench_<which>.py")
    dial = sub.add_parser("dial", help="place an outbound call through the running bridge (its HTTP API)")
    dial.add_argument("number", help="number to call (digits, * and #; the trunk is outbound.endpoint)")
    dial.add_argument("--config", type=Path, help="bridge config (for api.port and api.token_env)")
    dial.add_argument("--persona", help="persona for the call (default: outbound.default_persona)")
    dial.add_argument("--dtmf", default="", help="digits to key in once answered")
    dial.add_argument("--no-wait", action="store_true", help="return once queued instead of waiting for the result")
    args = parser.parse_args(argv)

    if args.command == "bench":
        return _bench(args.which, args.options)
    try:
        config = load_config(args.config)
        if args.command == "check-config":
            config.ari.resolved_password()
            check_exposure(config)
            print(f"{args.config}: OK")
            return 0
        configure_logging(config.log.level, config.log.format)
        if args.command == "models":
            return _models(config, args.rehash)
        if args.command == "up":
            return _up(args, config)
        if args.command == "doctor":
            from bridge.doctor import run_doctor

            return run_doctor(config, args.rehash)
        if args.command == "call":
            from bridge.test_call import run_test_call

            return run_test_call(config, args.say, args.number)
        if args.command == "dial":
            from bridge.dial_client import dial as place_call

            return place_call(config.api, args.number, args.persona, args.dtmf, wait=not args.no_wait)
        return _serve(config, args.config)
    except (ConfigError, PromptError, ModelFileError) as error:
        print(f"bridge: {error}", file=sys.stderr)
        return EXIT_CONFIG


def _models(config: BridgeConfig, rehash: bool) -> int:
    from bridge.models.inventory import prepare_models

    for model in prepare_models(config.stt, config.llm, config.tts, config.turn, rehash=rehash):
        print(f"{model.role}: {model.backend}: {model.path}: OK")
    return 0


def _serve(config: BridgeConfig, path: Path | None = None) -> int:
    from bridge.app.service import BridgeService

    check_exposure(config)
    service = BridgeService(config)

    async def _main() -> None:
        task = asyncio.create_task(service.run())
        loop = asyncio.get_running_loop()
        draining: list[asyncio.Task[None]] = []

        def stop() -> None:
            """First signal: drain (no new calls, grace for those in progress); a second: now."""
            if draining:
                task.cancel()
                return
            structlog.get_logger("bridge.cli").info(
                "bridge.stopping", grace_seconds=config.limits.shutdown_grace_seconds
            )
            draining.append(loop.create_task(service.drain()))
            draining[0].add_done_callback(lambda _: task.cancel())

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        reloads: set[asyncio.Task[None]] = set()

        def reload_soon() -> None:
            reload = loop.create_task(_reload(service, path))
            reloads.add(reload)
            reload.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload_soon)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(_main())
    return 0


def _bench(which: str, options: list[str]) -> int:
    """The benchmarks live in scripts/ (they drive sipp and a private Asterisk): run one."""
    script = Path(__file__).resolve().parents[1] / "scripts" / f"bench_{which}.py"
    if not script.is_file():
        print(f"bridge bench: {script} not found; run it from a source checkout (scripts/test sets it up)")
        return EXIT_CONFIG
    import subprocess

    return subprocess.call([sys.executable, str(script), *options], cwd=script.parents[1])


async def _reload(service: BridgeService, path: Path | None) -> None:
    """SIGHUP: re-read the config file; calls in progress are not touched."""
    log = structlog.get_logger("bridge.cli")
    if path is None:
        log.warning("config.reload_skipped", hint="started without --config: nothing to re-read")
        return
    try:
        restart = await service.reload(load_config(path))
    except ConfigError as error:
        log.error("config.reload_failed", error=str(error), hint="the running config stays in force")
        return
    if restart:
        log.warning("config.restart_needed", sections=restart)


def _up(args: argparse.Namespace, config: BridgeConfig) -> int:
    from bridge.pbx.instance import AsteriskInstance, AsteriskSettings

    password = os.environ.get(config.ari.password_env) or config.ari.password or os.urandom(12).hex()
    settings = AsteriskSettings(
        sip_port=args.sip_port,
        http_port=args.http_port,
        ami_port=args.ami_port,
        bind_host=args.bind,
        manage_host=args.manage_bind,
        ari_user=config.ari.username,
        ari_password=password,
        ari_app=config.ari.app,
        ari_apps=config.ari.offered_apps,
        ami_user=config.ami.username,
        ami_password=config.ami.resolved_password() or os.urandom(12).hex(),
        trunk_host=args.trunk,
        trunk_match=args.trunk,
        https_port=args.https_port,
        webphone_user=config.webphone.username,
        webphone_password=os.environ.get(WEBPHONE_PASSWORD_ENV) or os.urandom(6).hex(),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        system_name=config.storage.node,
    )
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("bridge up: --tls-cert and --tls-key go together")
    if not is_loopback(args.bind):
        # WSS on --bind also carries ARI (Asterisk's HTTPS server serves both).
        require_strong(f"ari.password (or {config.ari.password_env})", password, f"Asterisk's HTTPS/WSS on {args.bind}")
        require_strong(WEBPHONE_PASSWORD_ENV, settings.webphone_password, f"SIP on {args.bind}")
    if not is_loopback(args.manage_bind):
        require_strong(f"ari.password (or {config.ari.password_env})", password, f"ARI on {args.manage_bind}")
        ami_key = f"ami.password (or {config.ami.password_env})"
        require_strong(ami_key, settings.ami_password, f"AMI on {args.manage_bind}")
    instance = AsteriskInstance(args.state_dir, settings)
    instance.start()
    print(
        f"Asterisk ready: SIP udp {args.bind}:{args.sip_port} (calls from {settings.trunk_match} land in "
        f"[from-trunk]), ARI {settings.ari_url}, WSS {settings.wss_url}, log {instance.output_log}",
        file=sys.stderr,
    )
    others = [app for app in config.ari.offered_apps if app != config.ari.app]
    if others:
        print(
            f"Dialplan offers calls to ARI apps {', '.join(config.ari.offered_apps)} in turn; this bridge is "
            f"{config.ari.app!r}: start one more for each of {', '.join(others)} (bridge run, ari.app = that "
            f"name, ari.url = {settings.ari_url})",
            file=sys.stderr,
        )
    webphone = config.webphone.model_copy(update={"wss_port": args.https_port})
    if config.api.enabled and webphone.enabled:
        scheme = "https" if config.api.tls_cert_file else "http"
        print(
            f"Web phone: {scheme}://{config.api.bind}:{config.api.port}/phone  user {settings.webphone_user}, "
            f"password {settings.webphone_password} (set {WEBPHONE_PASSWORD_ENV} to choose it)",
            file=sys.stderr,
        )
    ari = config.ari.model_copy(update={"url": settings.ari_url, "password": password})
    ami = config.ami.model_copy(
        update={
            "host": "127.0.0.1" if args.manage_bind in ("0.0.0.0", "::", "") else args.manage_bind,
            "port": args.ami_port,
            "username": settings.ami_user,
            "password": settings.ami_password,
        }
    )
    try:
        return _serve(config.model_copy(update={"ari": ari, "ami": ami, "webphone": webphone}), args.config)
    finally:
        instance.stop()
