import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_config, parse_config


def test_defaults_are_valid() -> None:
    config = parse_config({})
    assert config.media.format == "auto"
    assert config.media.rtp_port_range == (40000, 40999)
    assert config.pipeline.kind == "agent"
    assert (config.stt.backend, config.llm.backend, config.tts.backend) == ("whisper", "llama_cpp", "piper")
    assert config.stt.model_path is config.llm.model_path is config.tts.model_path is None  # packaged models
    assert config.conversation.default_persona in config.personas


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"media": {"format": "gsm"}}, "media.format"),
        ({"media": {"rtp_port_min": 5000, "rtp_port_max": 4000}}, "swap them"),
        ({"media": {"rtp_port_min": 80, "rtp_port_max": 90}}, "1024-65535"),
        ({"media": {"format": "slin16"}}, "not supported yet"),
        ({"ari": {"url": "127.0.0.1:8088"}}, "ari.url"),
        ({"ari": {"pasword": "x"}}, "ari.pasword: unknown key"),
        ({"ari": {"app": "a:b"}}, "ari.app"),
        ({"ari": {"dialplan_apps": ["ai-bridge", "b,c"]}}, "ari.dialplan_apps: 'b,c' is not an ARI app name"),
        ({"ari": {"dialplan_apps": ["ai-bridge", "b", "b"]}}, "ari.dialplan_apps: b listed twice: each bridge"),
        ({"ari": {"dialplan_apps": ["a", "b"]}}, "ari.dialplan_apps: does not list ari.app 'ai-bridge'.*add"),
        (
            {"ari": {"dialplan_apps": "ai-bridge,b"}},
            'ari.dialplan_apps: write .* dialplan_apps = \\["ai-bridge", "b"\\]',
        ),
        ({"pipeline": {"kind": "prompt"}}, "needs prompt_wav"),
        ({"pipeline": {"kind": "prompt", "prompt_wav": "/nope.wav"}}, "does not exist"),
        ({"stt": {"backend": "vosk"}}, "stt: .*backend = 'vosk' needs model_path"),
        ({"stt": {"backend": "kaldi"}}, "stt.backend"),
        ({"llm": {"backend": "openai_http"}}, "needs base_url"),
        ({"llm": {"temperature": 5}}, "llm.temperature"),
        ({"tts": {"backend": "coqui"}}, "needs model_path"),
        ({"conversation": {"pause_ms": 500, "end_ms": 400}}, "pause_ms \\(500\\) must be below end_ms"),
        ({"conversation": {"default_persona": "sales"}}, "'sales' has no \\[personas.NAME\\] section"),
        ({"personas": {"receptionist": {"greeting": "Hi"}}}, "personas.receptionist.system_prompt"),
        ({"personas": {"receptionist": {"system_prompt": "x", "greeting": "y", "voice": "z"}}}, "voice: unknown key"),
    ],
)
def test_errors_name_the_key_and_the_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_the_dialplan_offers_calls_to_this_bridge_alone_unless_told_of_others() -> None:
    assert parse_config({}).ari.offered_apps == ("ai-bridge",)
    several = parse_config({"ari": {"app": "bridge-b", "dialplan_apps": ["bridge-a", "bridge-b"]}})
    assert several.ari.offered_apps == ("bridge-a", "bridge-b")


def test_the_node_in_call_records_is_the_host_name_unless_named() -> None:
    import socket

    assert parse_config({}).storage.resolved_node() == socket.gethostname()[:64]
    assert parse_config({"storage": {"node": "pbx-b"}}).storage.resolved_node() == "pbx-b"
    with pytest.raises(ConfigError, match=r"storage\.node"):
        parse_config({"storage": {"node": "pbx\nsystemname = x"}})  # it also names bridge up's Asterisk


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"ari": {"password_env": "MY_ARI_PW"}})
    monkeypatch.delenv("MY_ARI_PW", raising=False)
    with pytest.raises(ConfigError, match="MY_ARI_PW"):
        config.ari.resolved_password()
    monkeypatch.setenv("MY_ARI_PW", "s3cret")
    assert config.ari.resolved_password() == "s3cret"


def test_missing_and_broken_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[media\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_cli_exits_non_zero_on_bad_config(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bridge.toml"
    bad.write_text('[media]\nformat = "gsm"\n')
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "media.format" in capsys.readouterr().err


def test_the_example_config_documents_the_defaults() -> None:
    from pathlib import Path

    example = load_config(Path(__file__).resolve().parents[2] / "config.example.toml")
    defaults = parse_config({})
    sections = ("media", "stt", "llm", "tts", "vad", "conversation", "personas", "routing", "ami", "outbound")
    for section in (*sections, "webhooks", "api", "storage", "log"):
        assert getattr(example, section) == getattr(defaults, section), section
    assert example.pipeline.kind == defaults.pipeline.kind


def test_a_second_opinion_needs_the_whisper_backend() -> None:
    with pytest.raises(ConfigError, match=r"stt: second_opinion needs backend = 'whisper' \(backend is 'wyoming'\)"):
        parse_config({"stt": {"backend": "wyoming", "uri": "tcp://127.0.0.1:10300", "second_opinion": "whisper-base"}})
