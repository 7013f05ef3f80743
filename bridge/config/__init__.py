"""Where the bridge's configuration comes from: `load_config(path)` and the sections it holds.

The sections live by room: the bridge itself (ARI, media, pipeline, limits, log) in `file`,
the conversation stack in `agent`, routing and outbound calls in `routing`, and the service's
own HTTP server and call database in `ops`. All share one base (`section.Section`).
"""

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
from bridge.config.file import (
    AriConfig,
    BridgeConfig,
    ConfigError,
    LimitsConfig,
    LogConfig,
    MediaConfig,
    PipelineConfig,
    load_config,
    parse_config,
)
from bridge.config.ops import ApiConfig, StorageConfig, WebphoneConfig
from bridge.config.routing import AmiConfig, OutboundConfig, RoutingConfig, TransferTarget, WebhookConfig

__all__ = [
    "DEFAULT_PERSONAS",
    "AmiConfig",
    "ApiConfig",
    "AriConfig",
    "BridgeConfig",
    "ConfigError",
    "ConversationConfig",
    "LimitsConfig",
    "LlmConfig",
    "LogConfig",
    "MediaConfig",
    "OutboundConfig",
    "PersonaConfig",
    "PipelineConfig",
    "RoutingConfig",
    "StorageConfig",
    "SttConfig",
    "TransferTarget",
    "TtsConfig",
    "TurnConfig",
    "VadConfig",
    "WebhookConfig",
    "WebphoneConfig",
    "load_config",
    "parse_config",
]
