"""The `bridge` program: its arguments, and which command in `bridge/commands/` each runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.commands import EXIT_CONFIG
from bridge.config import ConfigError, load_config
from bridge.exposure import check_exposure
from bridge.logs import configure_logging
from bridge.models.errors import ModelFileError
from bridge.pipelines.prompt import PromptError


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
        from bridge.commands.bench import bench as run_bench

        return run_bench(args.which, args.options)
    try:
        config = load_config(args.config)
        if args.command == "check-config":
            config.ari.resolved_password()
            check_exposure(config)
            print(f"{args.config}: OK")
            return 0
        configure_logging(config.log.level, config.log.format)
        if args.command == "models":
            from bridge.commands.models import print_models

            return print_models(config, args.rehash)
        if args.command == "up":
            from bridge.commands.up import up as run_up

            return run_up(args, config)
        if args.command == "doctor":
            from bridge.commands.doctor import run_doctor

            return run_doctor(config, args.rehash)
        if args.command == "call":
            from bridge.commands.call import run_test_call

            return run_test_call(config, args.say, args.number)
        if args.command == "dial":
            from bridge.commands.dial import dial as place_call

            return place_call(config.api, args.number, args.persona, args.dtmf, wait=not args.no_wait)
        from bridge.commands.serve import serve

        return serve(config, args.config)
    except (ConfigError, PromptError, ModelFileError) as error:
        print(f"bridge: {error}", file=sys.stderr)
        return EXIT_CONFIG
