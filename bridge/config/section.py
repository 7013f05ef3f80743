"""The one base every config section shares: unknown keys are errors, values never change.

`extra="forbid"` is what turns a misspelt key into a start-up error naming it, instead of a
setting silently left at its default; `frozen` lets a reload compare old and new sections.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
