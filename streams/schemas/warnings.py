"""The contract with the warning channels: what Stopline posts to an SMS gateway or push provider,
and the delivery receipts they post back. Both directions are signed (see services.notifier.signing):
`X-Stopline-Timestamp` (unix seconds) and `X-Stopline-Signature: v1=<hex HMAC-SHA256 of
"<timestamp>.<body>">`; `Idempotency-Key` repeats `message_id`, which stays the same across retries.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streams.schemas.events import Instant

Language = Literal["zh", "ug", "kk"]
Channel = Literal["sms", "push"]


class SmsMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: uuid.UUID = Field(description="idempotency key; a retry carries the same id")
    to: str = Field(description="E.164 phone number")
    language: Language
    text: str
    receipt_url: str = Field(description="where to post the delivery receipt")


class PushMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: uuid.UUID
    to: str = Field(description="the app installation's push id")
    language: Language
    title: str
    body: str
    answer_url: str = Field(description="the one-time link the person answers through")
    receipt_url: str


class Receipt(BaseModel):
    """Posted by a gateway to `receipt_url` once it knows whether the message reached the handset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: uuid.UUID
    status: Literal["delivered", "failed"]
    at: Instant | None = None
    detail: str | None = Field(None, max_length=500)


sms_adapter: TypeAdapter[SmsMessage] = TypeAdapter(SmsMessage)
push_adapter: TypeAdapter[PushMessage] = TypeAdapter(PushMessage)
