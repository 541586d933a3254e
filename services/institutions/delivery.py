"""How an institution receives instructions: its Kafka topic, a signed webhook, or both."""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.models import Institution
from services.kit.errors import InvalidInput


async def configure(
    session: AsyncSession,
    *,
    institution_id: str,
    kafka: bool,
    webhook_url: str | None,
    rotate_secret: bool = False,
) -> str | None:
    """Set the channels; returns the webhook signing secret when one is (newly) made, else None."""
    institution = await session.get(Institution, institution_id, with_for_update=True)
    if institution is None:
        raise InvalidInput(f"no institution {institution_id}")
    if webhook_url is not None and urlparse(webhook_url).scheme not in ("http", "https"):
        raise InvalidInput("webhook_url must be an http(s) URL")
    if not kafka and webhook_url is None:
        raise InvalidInput("an institution needs at least one delivery channel")
    institution.kafka_delivery = kafka
    institution.webhook_url = webhook_url
    secret: str | None = None
    if webhook_url is None:
        institution.webhook_secret = None
    elif rotate_secret or institution.webhook_secret is None:
        secret = "whsec_" + secrets.token_urlsafe(32)
        institution.webhook_secret = secret
    await session.flush()
    return secret
