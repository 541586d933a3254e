"""API shapes of answers and contacts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.schemas.events import NonBlank, Phone


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: Literal["safe", "defrauded"]


class AnswerOut(BaseModel):
    """Deliberately says nothing about the person or the case."""

    recorded: bool
    message: str


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    language: Literal["zh", "ug", "kk"]
    push_id: NonBlank | None = Field(
        None, max_length=200, description="the anti-fraud app's push id, if installed"
    )


class ContactRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
