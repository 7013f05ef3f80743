"""Config sections for routing: where the agent may send callers, AMI, outbound calls, webhooks.

The transfer targets are an allowlist. Nothing a caller says (or an LLM writes) can move a call
anywhere that is not named here; Asterisk is asked at start-up whether each target exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bridge.config.section import Section
from bridge.models.paths import data_root

_DIALPLAN_TARGET = re.compile(r"^[A-Za-z0-9_-]+,[A-Za-z0-9_+*#.-]+,[0-9]+$")
_DIAL_STRING = re.compile(r"^[A-Za-z]+/[^\s,]+$")


class TransferTarget(Section):
    """One place a caller may be sent.

    kind = 'queue': an app_queue queue (destination = queue name), reached through the dialplan.
    kind = 'extension': a phone or ring group (destination = dial string, e.g. 'PJSIP/201'); the
    agent stays with the caller while it rings and only lets go once it is answered.
    kind = 'dialplan': continue at 'context,exten,priority' so your own dialplan decides.

    description is spoken ("Putting you through to <description> now"); handles and examples tell
    the model which callers belong here (examples are caller sentences, used as few-shot turns);
    phrases and dtmf route at once, before any model.
    """

    kind: Literal["queue", "extension", "dialplan"]
    destination: str = Field(min_length=1)
    description: str = Field(min_length=1)
    handles: str = ""
    examples: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#]$")

    @field_validator("phrases")
    @classmethod
    def _phrases_lowercase(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(" ".join(phrase.lower().split()) for phrase in phrases if phrase.strip())

    @model_validator(mode="after")
    def _destination_fits_kind(self) -> TransferTarget:
        if self.kind == "dialplan" and not _DIALPLAN_TARGET.match(self.destination):
            raise ValueError(f"destination {self.destination!r} must be 'context,exten,priority' for kind = 'dialplan'")
        if self.kind == "extension" and not _DIAL_STRING.match(self.destination):
            raise ValueError(
                f"destination {self.destination!r} must be a dial string like 'PJSIP/201' for kind = 'extension'"
            )
        if self.kind == "queue" and not re.match(r"^[A-Za-z0-9_.-]+$", self.destination):
            raise ValueError(f"destination {self.destination!r} is not a queue name (letters, digits, _ . -)")
        return self


# What every caller turn is classified into besides the targets (conversation/prompt.py).
MESSAGE = "message"
GOODBYE = "goodbye"
ELSEWHERE = "elsewhere"
RESERVED_LABELS = (MESSAGE, GOODBYE, ELSEWHERE, "answer")

DEFAULT_TARGETS = {
    "sales": TransferTarget(
        kind="queue",
        destination="sales",
        description="our sales team",
        handles="buying, prices, quotes, new customers",
        examples=("I'd like a quote for teeth whitening", "How much would a new crown cost me?"),
        phrases=("sales", "buy", "pricing", "quote", "new customer"),
        dtmf="1",
    ),
    "operator": TransferTarget(
        kind="queue",
        destination="support",
        description="a colleague",
        handles="a real person, a human, the front desk, anything else a person must handle",
        examples=("Can I speak to someone, please?", "I'd like to talk to a human"),
        phrases=("operator", "human", "real person", "a person", "someone", "colleague", "receptionist"),
        dtmf="0",
    ),
}


class RoutingConfig(Section):
    targets: dict[str, TransferTarget] = Field(default_factory=lambda: dict(DEFAULT_TARGETS))
    operator: str | None = "operator"
    llm_tools: bool = True
    confirm_below: float = Field(default=0.6, ge=0.0, le=1.0)
    # A refusal ("I can only put you through to ...") needs the model at least this sure that the
    # place is not on the list; less sure, the agent offers its best target or asks again. Wrongly
    # refusing a misheard request is the costlier mistake: on the dev sets' 192 spoken turns every
    # right refusal scored >= 0.73 and the two wrong ones 0.60 and 0.65.
    refuse_from: float = Field(default=0.7, ge=0.0, le=1.0)
    ring_seconds: int = Field(default=20, ge=5, le=300)
    offer_message_over_wait_seconds: float = Field(default=120.0, ge=0)
    assumed_seconds_per_caller: float = Field(default=180.0, gt=0)
    messages_dir: Path | None = None

    @field_validator("targets")
    @classmethod
    def _names_are_labels(cls, targets: dict[str, TransferTarget]) -> dict[str, TransferTarget]:
        for name in targets:
            if name in RESERVED_LABELS:
                raise ValueError(
                    f"target name {name!r} is reserved (it is one of {', '.join(RESERVED_LABELS)}); rename it"
                )
            if not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise ValueError(f"target name {name!r} must be lowercase letters, digits and _ (the model says it)")
        return targets

    @model_validator(mode="after")
    def _operator_and_digits(self) -> RoutingConfig:
        if self.operator is not None and self.operator not in self.targets:
            defined = ", ".join(sorted(self.targets)) or "none"
            raise ValueError(f"operator {self.operator!r} is not one of routing.targets ({defined})")
        seen: dict[str, str] = {}
        for name, target in self.targets.items():
            if target.dtmf is None:
                continue
            if target.dtmf in seen:
                raise ValueError(f"targets {seen[target.dtmf]!r} and {name!r} both use dtmf {target.dtmf!r}")
            seen[target.dtmf] = name
        return self

    def message_store(self) -> Path:
        return self.messages_dir if self.messages_dir is not None else data_root() / "messages"


class AmiConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "ai-bridge"
    password: str | None = None
    password_env: str = "BRIDGE_AMI_PASSWORD"

    def resolved_password(self) -> str | None:
        return self.password if self.password is not None else os.environ.get(self.password_env)


class OutboundConfig(Section):
    endpoint: str = Field(default="PJSIP/{number}@trunk", pattern=r"\{number\}")
    caller_id: str = ""
    max_concurrent: int = Field(default=2, ge=1, le=500)
    ring_seconds: int = Field(default=30, ge=5, le=300)
    default_persona: str | None = None


class WebhookConfig(Section):
    pre_call_url: str | None = Field(default=None, pattern=r"^https?://")
    post_call_url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_seconds: float = Field(default=1.5, gt=0, le=30)
