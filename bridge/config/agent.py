"""Config sections for the conversation stack: models (stt/llm/tts/vad), turn-taking and personas.

Model paths left empty mean the packaged defaults (Whisper tiny.en, Qwen2.5 0.5B, Piper joe):
the product works with no model configuration at all, and nothing is fetched from a hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from bridge.config.section import Section

WYOMING_URI = r"^tcp://[^/:]+:\d+$"


class SttConfig(Section):
    backend: Literal["whisper", "vosk", "wyoming"] = "whisper"
    # backend = "wyoming": a Wyoming STT server (wyoming-faster-whisper), tcp://host:port.
    uri: str | None = Field(default=None, pattern=WYOMING_URI)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    model_path: Path | None = None
    # Which packaged Whisper when model_path is unset; whisper-base needs the extra
    # `pip install 'asterisk-ai-bridge[whisper-base]'` (README "Choosing the models" has the numbers).
    packaged: Literal["whisper-tiny.en", "whisper-base"] = "whisper-tiny.en"
    threads: int = Field(default=2, ge=1, le=64)
    compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    language: str = "en"
    # Whisper's beam width. Measured on the dialogue dev set (144 utterances, 8 kHz u-law, tiny.en):
    # word errors 0.284 greedy, 0.229 with 3, 0.232 with 5; ~40 ms more per utterance at p50.
    beam_size: int = Field(default=3, ge=1, le=10)
    # A second Whisper asked only when the first is unsure (mean log-probability per token below
    # second_opinion_below); the surer transcript wins. Off by default ("none"); "whisper-base" is
    # the packaged base model, or set second_opinion_path to your own CTranslate2 Whisper directory
    # (that turns it on too). README "Understanding callers" has the numbers.
    second_opinion: Literal["none", "whisper-base"] = "none"
    second_opinion_path: Path | None = None
    second_opinion_below: float = Field(default=-0.4, le=0.0)

    @model_validator(mode="after")
    def _vosk_needs_model(self) -> SttConfig:
        if self.backend == "vosk" and self.model_path is None:
            raise ValueError(
                "backend = 'vosk' needs model_path = '/path/to/vosk-model-dir' (no English Vosk model is bundled)"
            )
        if self.backend != "whisper" and (self.second_opinion != "none" or self.second_opinion_path is not None):
            raise ValueError(
                f"second_opinion needs backend = 'whisper' (backend is {self.backend!r}); "
                "remove second_opinion / second_opinion_path"
            )
        if self.backend == "wyoming" and self.uri is None:
            raise ValueError("backend = 'wyoming' needs uri = 'tcp://host:10300' (a wyoming-faster-whisper server)")
        return self


class LlmConfig(Section):
    backend: Literal["llama_cpp", "openai_http"] = "llama_cpp"
    model_path: Path | None = None
    # Which packaged GGUF when model_path is unset (README "Choosing the model" has the numbers).
    packaged: Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] = "qwen2.5-coder-1.5b"
    context_tokens: int = Field(default=2048, ge=256)
    threads: int = Field(default=2, ge=1, le=64)
    contexts: int = Field(default=2, ge=1, le=32)
    max_tokens: int = Field(default=60, ge=1, le=2048)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    model: str = "default"
    api_key_env: str = "BRIDGE_LLM_API_KEY"
    # openai_http: send a GBNF grammar that allows only the labels (and "answer: <text>"), as
    # llama.cpp's servers accept; set false for a server that rejects unknown request fields.
    constrain_labels: bool = True

    @model_validator(mode="after")
    def _http_needs_url(self) -> LlmConfig:
        if self.backend == "openai_http" and self.base_url is None:
            raise ValueError("backend = 'openai_http' needs base_url = 'http://host:port/v1'")
        return self


class TtsConfig(Section):
    backend: Literal["piper", "coqui", "flite", "espeak-ng", "wyoming"] = "piper"
    # backend = "wyoming": a Wyoming TTS server (wyoming-piper), tcp://host:port; `voice` picks one.
    uri: str | None = Field(default=None, pattern=WYOMING_URI)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    model_path: Path | None = None
    config_path: Path | None = None
    voice: str = ""
    speaker: str | None = None

    @model_validator(mode="after")
    def _coqui_needs_model(self) -> TtsConfig:
        if self.backend == "coqui" and self.model_path is None:
            raise ValueError("backend = 'coqui' needs model_path = '/path/to/model.pth' (with config.json beside it)")
        if self.backend == "wyoming" and self.uri is None:
            raise ValueError("backend = 'wyoming' needs uri = 'tcp://host:10200' (a wyoming-piper server)")
        return self


class VadConfig(Section):
    aggressiveness: int = Field(default=2, ge=0, le=3)
    min_level_dbfs: float = Field(default=-45.0, le=0)


class TurnConfig(Section):
    """How the end of a caller's turn is decided (README "Turn-taking").

    `silence`: the turn ends after conversation.end_ms of silence. `smart_turn`: when a pause
    reaches check_ms, Smart Turn v3.2 judges the audio so far: above complete_above the turn ends
    at once, below incomplete_below it waits up to hold_ms for more, in between (and without a
    verdict) end_ms still applies.
    """

    detector: Literal["silence", "smart_turn"] = "silence"
    model_path: Path | None = None  # default: the packaged file `bridge models` fetched
    check_ms: int = Field(default=120, ge=20, le=2000)
    hold_ms: int = Field(default=800, ge=100, le=5000)
    complete_above: float = Field(default=0.5, gt=0, lt=1)
    incomplete_below: float = Field(default=0.5, gt=0, lt=1)
    threads: int = Field(default=1, ge=1, le=16)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> TurnConfig:
        if self.incomplete_below > self.complete_above:
            raise ValueError(
                f"incomplete_below ({self.incomplete_below}) must not be above complete_above ({self.complete_above})"
            )
        return self


class ConversationConfig(Section):
    default_persona: str = "receptionist"
    personas_by_number: dict[str, str] = Field(default_factory=dict)
    pause_ms: int = Field(default=40, ge=20, le=2000)
    end_ms: int = Field(default=400, ge=100, le=5000)
    preroll_ms: int = Field(default=300, ge=0, le=2000)
    max_utterance_seconds: float = Field(default=20.0, gt=1)
    barge_in_min_level_dbfs: float = Field(default=-35.0, le=0)
    # Sound within 0.4 s of the agent's audio and not louder than it minus this many dB is taken
    # for the agent's own voice coming back (echo), not the caller talking over it. 0 disables.
    echo_return_loss_db: float = Field(default=6.0, ge=0, le=40)
    # That is the worst case: the guard also measures what this line returns while the agent talks
    # and, when it is less, uses the measurement (with a 6 dB margin), so a caller who goes on or
    # talks over the agent on a line without echo is heard at once. false: always the worst case.
    echo_measure: bool = True
    min_voiced_ms: int = Field(default=200, ge=0)
    # A caller who goes on talking after the end of their turn was called, before the agent's
    # answer has played this long, is still in the same turn: the answer is dropped (unheard, or
    # after a blip this short) and the whole turn is answered. 0: every end of turn is final.
    continue_within_ms: int = Field(default=400, ge=0, le=2000)
    reprompt_after_seconds: float = Field(default=8.0, gt=0)
    max_reprompts: int = Field(default=2, ge=0)
    max_call_seconds: float = Field(default=900.0, gt=0)
    history_turns: int = Field(default=8, ge=0)
    on_error: Literal["transfer", "hangup"] = "transfer"
    # Deadlines for the models, after which the call apologises and follows on_error: speech
    # recognition's final text after the end of a turn, the language model's decision and each
    # further clause of an answer, the first audio of each thing the agent says.
    stt_timeout_seconds: float = Field(default=8.0, gt=0, le=120)
    llm_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    tts_timeout_seconds: float = Field(default=8.0, gt=0, le=120)

    @model_validator(mode="after")
    def _pause_before_end(self) -> ConversationConfig:
        if self.pause_ms >= self.end_ms:
            raise ValueError(f"pause_ms ({self.pause_ms}) must be below end_ms ({self.end_ms})")
        return self


UNKNOWN_ANSWER = "I don't have that information here. I can take a message or put you through to a colleague."


class PersonaConfig(Section):
    """Who the agent is for one business, and the only facts it may state.

    `facts` are what answers are checked against: a day, time, price, number or name in an
    answer that is not in the facts (or the prompt, or the caller's own words for days and
    numbers) is replaced by `unknown_answer` before the caller hears it.
    """

    system_prompt: str = Field(min_length=1)
    greeting: str = Field(min_length=1)
    facts: tuple[str, ...] = ()
    unknown_answer: str = Field(default=UNKNOWN_ANSWER, min_length=1)
    reprompt: str = "Are you still there?"
    goodbye: str = "Thank you for calling. Goodbye."
    apology: str = "I'm sorry, I'm having a technical problem. Let me put you through to a colleague."

    def knowledge(self) -> str:
        """Everything the agent may state: the prompt and the facts, as one text."""
        return "\n".join((self.system_prompt, *self.facts))


DEFAULT_PERSONAS = {
    "receptionist": PersonaConfig(
        system_prompt="You are Sam, the friendly receptionist of Bright Smile Dental, talking to a caller on the phone.",  # noqa: E501
        facts=(
            "Opening hours: Monday to Friday 8 am to 6 pm. Saturday 9 am to 1 pm. Closed on Sunday.",
            "Address: 12 Harbour Street.",
            "Price of a cleaning: 90 dollars.",
        ),
        greeting="Thank you for calling Bright Smile Dental, this is Sam. How can I help you?",
    )
}
