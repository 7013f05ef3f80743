"""`bridge up`: a private Asterisk from asterisk/ and the bridge, ready for calls."""

from __future__ import annotations

import argparse
import os
import sys

from bridge.commands.serve import serve
from bridge.config import BridgeConfig, ConfigError
from bridge.exposure import is_loopback, require_strong

# `bridge up` creates the web phone's SIP account with this password (random if unset).
WEBPHONE_PASSWORD_ENV = "BRIDGE_WEBPHONE_PASSWORD"


def up(args: argparse.Namespace, config: BridgeConfig) -> int:
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
        return serve(config.model_copy(update={"ari": ari, "ami": ami, "webphone": webphone}), args.config)
    finally:
        instance.stop()
