"""Bridge configuration: a TOML file validated at start-up.

Every error names the offending key and what to do about it, and the process exits non-zero,
so a typo is found when the service starts rather than when the first caller rings.
Secrets (the ARI password) may come from the environment so config files can be shared.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from bridge.config.agent import (
    DEFAULT_PERSONAS,
    ConversationConfig,
    LlmConfig,
    PersonaConfig,
    SttConfig,
    TtsConfig,
    TurnConfig,
    VadConfig,
)
from bridge.config.ops import ApiConfig, StorageConfig, WebphoneConfig
from bridge.config.routing import AmiConfig, OutboundConfig, RoutingConfig, WebhookConfig
from bridge.config.section import Section
from bridge.dialplan import APP_NAME, APP_NAME_PATTERN, APP_NAME_RULE, APPS_GLOBAL
from bridge.media.codecs import WIDEBAND_CALLER_CODECS, Codec, codec_for


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator."""


class AriConfig(Section):
    url: str = Field(default="http://127.0.0.1:8088", pattern=r"^https?://[^/]+$")
    username: str = "ai-bridge"
    password: str | None = None
    password_env: str = "BRIDGE_ARI_PASSWORD"
    app: str = Field(default="ai-bridge", pattern=APP_NAME_PATTERN)
    # Every bridge's app on this Asterisk, for the dialplan that `bridge up` renders (the global
    # BRIDGE_APPS): [ai-agent] offers each call to them in turn. Empty: this bridge's app alone.
    dialplan_apps: tuple[str, ...] = ()
    reconnect_max_seconds: float = Field(default=30.0, gt=0)

    @field_validator("dialplan_apps", mode="before")
    @classmethod
    def _apps_as_list(cls, value: object) -> object:
        if isinstance(value, str):
            names = ", ".join(f'"{name.strip()}"' for name in value.split(",") if name.strip())
            raise ValueError(f"write the apps as a TOML list: dialplan_apps = [{names}]")
        return value

    @field_validator("dialplan_apps")
    @classmethod
    def _apps_listable(cls, apps: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Names the dialplan can split and use; this bridge's own among them (else no call comes)."""
        for name in apps:
            if not APP_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an ARI app name: {APP_NAME_RULE} (one name per list item)")
        doubled = sorted({name for name in apps if apps.count(name) > 1})
        if doubled:
            raise ValueError(
                f"{', '.join(doubled)} listed twice: each bridge needs its own app name "
                "(a second connection with the same name takes the app over)"
            )
        own = info.data.get("app")
        if apps and own is not None and own not in apps:
            raise ValueError(
                f"does not list ari.app {own!r}: {APPS_GLOBAL} would never offer a call to this bridge; "
                f"add {own!r} to the list"
            )
        return apps

    @property
    def offered_apps(self) -> tuple[str, ...]:
        """The apps the dialplan offers calls to: dialplan_apps, or this bridge's app alone."""
        return self.dialplan_apps or (self.app,)

    def resolved_password(self) -> str:
        value = self.password if self.password is not None else os.environ.get(self.password_env)
        if not value:
            raise ConfigError(
                f"ari.password: no ARI password; set ari.password in the config file "
                f"or the environment variable {self.password_env}"
            )
        return value


MediaFormat = Literal["auto", "ulaw", "alaw", "g722", "slin16"]


class MediaConfig(Section):
    # Our externalMedia leg's codec. auto: G.722 (16 kHz, wideband) when the caller's own codec is
    # wideband (a browser's Opus, a G.722 phone), else u-law; Asterisk transcodes the rest.
    format: MediaFormat = "auto"
    bind_host: str = "127.0.0.1"
    advertise_host: str | None = None
    rtp_port_min: int = Field(default=40000, ge=0, le=65535)
    rtp_port_max: int = Field(default=40999, ge=0, le=65535)
    jitter_depth: int = Field(default=3, ge=1, le=50)
    setup_timeout_seconds: float = Field(default=5.0, gt=0)
    # Asterisk's speex noise suppression (DENOISE(rx), func_speex) on what the caller sends, before
    # our VAD and STT. Off by default: README "Noise" has what it did to hearing on the dev set.
    denoise: bool = False

    @model_validator(mode="after")
    def _format_carries_both_ways(self) -> MediaConfig:
        if self.format == "slin16":
            raise ValueError(
                "'slin16' is not supported yet: Asterisk 22.10 sends slin16 to us but plays none of our "
                "slin16 audio to the caller (measured with bridge_simple and softmix); use 'ulaw' or 'alaw'"
            )
        return self

    @model_validator(mode="after")
    def _range_ordered(self) -> MediaConfig:
        if self.rtp_port_min == self.rtp_port_max == 0:
            return self
        if min(self.rtp_port_min, self.rtp_port_max) < 1024:
            raise ValueError("RTP ports must be 1024-65535 (or both 0 for ephemeral ports)")
        if self.rtp_port_min > self.rtp_port_max:
            raise ValueError(
                f"rtp_port_min ({self.rtp_port_min}) is above rtp_port_max ({self.rtp_port_max}); swap them"
            )
        return self

    @property
    def rtp_port_range(self) -> tuple[int, int] | None:
        """The UDP range for our RTP sockets; None means let the OS pick (tests)."""
        if self.rtp_port_min == self.rtp_port_max == 0:
            return None
        return self.rtp_port_min, self.rtp_port_max

    def codec_for_call(self, caller_codecs: str) -> Codec:
        """The leg's codec for a caller whose native formats are `caller_codecs` ("opus", "ulaw,alaw")."""
        if self.format != "auto":
            return codec_for(self.format)
        wideband = any(name.strip() in WIDEBAND_CALLER_CODECS for name in caller_codecs.split(","))
        return codec_for("g722" if wideband else "ulaw")

    def call_rates(self) -> tuple[int, ...]:
        """The audio rates calls can run at (fixed phrases are rendered once for each)."""
        if self.format == "auto":
            return (codec_for("ulaw").sample_rate, codec_for("g722").sample_rate)
        return (codec_for(self.format).sample_rate,)

    @property
    def external_host(self) -> str:
        """Where Asterisk should send the call's RTP: our advertised or bound address."""
        return self.advertise_host or self.bind_host


class PipelineConfig(Section):
    kind: Literal["echo", "prompt", "agent"] = "agent"
    prompt_wav: Path | None = None

    @model_validator(mode="after")
    def _prompt_has_file(self) -> PipelineConfig:
        if self.kind == "prompt":
            if self.prompt_wav is None:
                raise ValueError("kind = 'prompt' needs prompt_wav = '/path/to/file.wav'")
            if not self.prompt_wav.is_file():
                raise ValueError(f"prompt_wav {str(self.prompt_wav)!r} does not exist; give a readable WAV file")
        return self


# Conversations the default models carry on one core with voice-to-voice latency intact
# (measured: 2 cores, Whisper tiny.en + Qwen2.5 1.5B + Piper, about 4 calls).
AGENT_CALLS_PER_CORE = 2
# Echo and prompt pipelines only move audio (~0.2 % of a core per call).
MEDIA_CALLS_PER_CORE = 100


class LimitsConfig(Section):
    """How much the bridge takes on, and how it lets go."""

    # Calls in progress at once; a call over the limit goes straight back to the dialplan
    # (BRIDGE_RESULT=declined: the next bridge, else the fallback queue) before any model work.
    # 0: sized from the CPU.
    max_calls: int = Field(default=0, ge=0, le=10_000)
    # On SIGTERM: calls in progress may finish for this long, then go to the dialplan.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)

    def resolved_max_calls(self, pipeline: str) -> int:
        if self.max_calls:
            return self.max_calls
        per_core = AGENT_CALLS_PER_CORE if pipeline == "agent" else MEDIA_CALLS_PER_CORE
        return per_core * (os.cpu_count() or 1)


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "console"


class BridgeConfig(Section):
    ari: AriConfig = AriConfig()
    media: MediaConfig = MediaConfig()
    pipeline: PipelineConfig = PipelineConfig()
    log: LogConfig = LogConfig()
    limits: LimitsConfig = LimitsConfig()
    stt: SttConfig = SttConfig()
    llm: LlmConfig = LlmConfig()
    tts: TtsConfig = TtsConfig()
    vad: VadConfig = VadConfig()
    turn: TurnConfig = TurnConfig()
    conversation: ConversationConfig = ConversationConfig()
    personas: dict[str, PersonaConfig] = Field(default_factory=lambda: dict(DEFAULT_PERSONAS))
    routing: RoutingConfig = RoutingConfig()
    ami: AmiConfig = AmiConfig()
    outbound: OutboundConfig = OutboundConfig()
    webhooks: WebhookConfig = WebhookConfig()
    api: ApiConfig = ApiConfig()
    storage: StorageConfig = StorageConfig()
    webphone: WebphoneConfig = WebphoneConfig()

    @model_validator(mode="after")
    def _named_personas_exist(self) -> BridgeConfig:
        """Every place a persona is named (default, per number, outbound) names a defined one."""
        named = {"conversation.default_persona": self.conversation.default_persona}
        for number, persona in self.conversation.personas_by_number.items():
            named[f"conversation.personas_by_number[{number!r}]"] = persona
        if self.outbound.default_persona is not None:
            named["outbound.default_persona"] = self.outbound.default_persona
        for key, persona in named.items():
            if persona not in self.personas:
                raise ValueError(
                    f"{key} = {persona!r} has no [personas.NAME] section; "
                    f"defined: {', '.join(sorted(self.personas)) or 'none'}"
                )
        return self


def load_config(path: Path | None) -> BridgeConfig:
    """Read and validate a config file; `None` gives the defaults."""
    raw: dict[str, object] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found; pass --config with an existing file") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_config(raw, source=str(path) if path else "defaults")


def parse_config(raw: dict[str, object], source: str = "config") -> BridgeConfig:
    try:
        return BridgeConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against config.example.toml"
        elif "input" in problem and problem["type"] not in ("missing",):
            message = f"{message} (got {problem['input']!r})"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)
